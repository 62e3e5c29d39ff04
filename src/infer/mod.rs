//! Sliding-window inference: a network trained on patches predicts a volume of any size.
//!
//! Windows of the training patch size cover the volume with the requested overlap, the last
//! one flush with the end; each window's prediction is weighted by a Gaussian (σ = patch/8
//! per axis, positive everywhere) and the weighted sum divided by the summed weights. A volume
//! smaller than the patch along an axis is padded with a constant and cropped back.

use std::sync::Arc;

use crate::autograd::Tape;
use crate::backend::Backend;
use crate::nn::UNet;
use crate::ops::activation::{sigmoid, softmax};
use crate::preprocess::Array3;
use crate::tensor::{DType, Result, Tensor};

/// Window starts along one axis: the fewest windows whose step is at most
/// `patch·(1 − overlap)` (at least 1), spread evenly so the last ends at the axis end.
pub fn window_starts(axis: usize, patch: usize, overlap: f64) -> Vec<usize> {
    if axis <= patch {
        return vec![0];
    }
    let target = (patch as f64 * (1.0 - overlap)).max(1.0);
    let span = (axis - patch) as f64;
    let steps = (span / target).ceil() as usize;
    (0..=steps)
        .map(|i| (span * i as f64 / steps as f64).round() as usize)
        .collect()
}

/// The Gaussian importance map of a window (D,H,W), largest at the centre, normalised to a
/// maximum of 1 and clamped below at 1e-3 so every voxel keeps a positive weight.
pub fn gaussian_weights(patch: [usize; 3]) -> Vec<f32> {
    let axis = |n: usize| -> Vec<f64> {
        let sigma = n as f64 / 8.0;
        let centre = (n as f64 - 1.0) / 2.0;
        (0..n)
            .map(|i| (-((i as f64 - centre).powi(2)) / (2.0 * sigma * sigma)).exp())
            .collect()
    };
    let (gd, gh, gw) = (axis(patch[0]), axis(patch[1]), axis(patch[2]));
    let mut weights = Vec::with_capacity(patch.iter().product());
    for a in &gd {
        for b in &gh {
            for c in &gw {
                weights.push(a * b * c);
            }
        }
    }
    let max = weights.iter().cloned().fold(0.0f64, f64::max);
    weights
        .iter()
        .map(|&v| ((v / max) as f32).max(1e-3))
        .collect()
}

/// Anything that maps a window `[1,1,D,H,W]` to per-class scores `[1,C,D,H,W]`.
pub trait WindowModel {
    fn classes(&self) -> usize;
    fn predict(&mut self, window: Tensor) -> Result<Tensor>;
}

/// A U-Net in eval mode: sigmoid probabilities for one output channel, softmax otherwise.
pub struct NetModel<'a> {
    pub net: &'a mut UNet,
    pub backend: Arc<dyn Backend>,
    pub dtype: DType,
}

impl WindowModel for NetModel<'_> {
    fn classes(&self) -> usize {
        self.net.config.out_channels
    }

    fn predict(&mut self, window: Tensor) -> Result<Tensor> {
        let mut tape = Tape::no_grad(self.backend.clone());
        let x = tape.placed_leaf(window.into_dtype(self.dtype), false)?;
        let out = self.net.forward(&mut tape, x, false, self.dtype)?;
        let probs = if self.classes() == 1 {
            sigmoid(&mut tape, out.logits)?
        } else {
            softmax(&mut tape, out.logits)?
        };
        Ok(tape.value(probs).to_host()?.into_dtype(DType::F32))
    }
}

/// Per-class scores of `image` (one `Array3` per class), window by window.
pub fn sliding_window(
    model: &mut dyn WindowModel,
    image: &Array3,
    patch: [usize; 3],
    overlap: f64,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Array3>> {
    let [pd, ph, pw] = patch;
    let [si, sj, sk] = image.sizes;
    // Work on a grid at least as large as the patch; constant padding at the far end.
    let grid = [si.max(pw), sj.max(ph), sk.max(pd)];
    let fill = image
        .data
        .iter()
        .cloned()
        .fold(f32::INFINITY, f32::min)
        .min(0.0);
    let padded = pad_end(image, grid, fill);

    let classes = model.classes();
    let voxels = grid.iter().product::<usize>();
    let mut sums = vec![0.0f32; classes * voxels];
    let mut weight_sum = vec![0.0f32; voxels];
    let weights = gaussian_weights(patch);
    let ones = vec![1.0; weights.len()];

    let starts_k = window_starts(grid[2], pd, overlap);
    let starts_j = window_starts(grid[1], ph, overlap);
    let starts_i = window_starts(grid[0], pw, overlap);
    let total = starts_k.len() * starts_j.len() * starts_i.len();
    let mut done = 0;
    for &k0 in &starts_k {
        for &j0 in &starts_j {
            for &i0 in &starts_i {
                let mut window = Vec::with_capacity(pd * ph * pw);
                for k in 0..pd {
                    for j in 0..ph {
                        let from = (k0 + k) * grid[0] * grid[1] + (j0 + j) * grid[0] + i0;
                        window.extend_from_slice(&padded[from..from + pw]);
                    }
                }
                let scores = model.predict(Tensor::from_f32(&[1, 1, pd, ph, pw], window)?)?;
                let scores = scores.as_f32();
                for c in 0..classes {
                    let class_scores = &scores[c * pd * ph * pw..(c + 1) * pd * ph * pw];
                    let class_sums = &mut sums[c * voxels..(c + 1) * voxels];
                    accumulate(
                        class_sums,
                        class_scores,
                        &weights,
                        grid,
                        [k0, j0, i0],
                        patch,
                    );
                }
                accumulate(&mut weight_sum, &ones, &weights, grid, [k0, j0, i0], patch);
                done += 1;
                progress(done, total);
            }
        }
    }

    Ok((0..classes)
        .map(|c| {
            let mut data = Vec::with_capacity(si * sj * sk);
            for k in 0..sk {
                for j in 0..sj {
                    let from = k * grid[0] * grid[1] + j * grid[0];
                    for i in 0..si {
                        data.push(sums[c * voxels + from + i] / weight_sum[from + i]);
                    }
                }
            }
            Array3 {
                sizes: image.sizes,
                data,
            }
        })
        .collect())
}

fn pad_end(image: &Array3, grid: [usize; 3], fill: f32) -> Vec<f32> {
    if grid == image.sizes {
        return image.data.clone();
    }
    let mut out = vec![fill; grid.iter().product()];
    let [si, sj, sk] = image.sizes;
    for k in 0..sk {
        for j in 0..sj {
            let from = (k * sj + j) * si;
            let to = k * grid[0] * grid[1] + j * grid[0];
            out[to..to + si].copy_from_slice(&image.data[from..from + si]);
        }
    }
    out
}

fn accumulate(
    target: &mut [f32],
    window: &[f32],
    weights: &[f32],
    grid: [usize; 3],
    start: [usize; 3],
    patch: [usize; 3],
) {
    let [pd, ph, pw] = patch;
    for k in 0..pd {
        for j in 0..ph {
            let to = (start[0] + k) * grid[0] * grid[1] + (start[1] + j) * grid[0] + start[2];
            let from = (k * ph + j) * pw;
            for i in 0..pw {
                target[to + i] += window[from + i] * weights[from + i];
            }
        }
    }
}

/// The class of the highest score per voxel; with one channel, score > 0.5 is class 1.
pub fn argmax(scores: &[Array3]) -> Array3 {
    let sizes = scores[0].sizes;
    let data = (0..scores[0].data.len())
        .map(|n| {
            if scores.len() == 1 {
                return if scores[0].data[n] > 0.5 { 1.0 } else { 0.0 };
            }
            let mut best = 0;
            for c in 1..scores.len() {
                if scores[c].data[n] > scores[best].data[n] {
                    best = c;
                }
            }
            best as f32
        })
        .collect();
    Array3 { sizes, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_layouts_cover_the_axis_with_the_last_flush() {
        assert_eq!(window_starts(100, 50, 0.5), vec![0, 25, 50]);
        assert_eq!(window_starts(110, 64, 0.5), vec![0, 23, 46]);
        assert_eq!(window_starts(40, 72, 0.5), vec![0]);
        let ones = window_starts(5, 1, 0.5);
        assert_eq!(ones, vec![0, 1, 2, 3, 4]);
        assert_eq!(window_starts(100, 50, 0.5).len().pow(2), 9);
    }

    /// Returns its input as the single class score.
    struct Identity;

    impl WindowModel for Identity {
        fn classes(&self) -> usize {
            1
        }

        fn predict(&mut self, window: Tensor) -> Result<Tensor> {
            Ok(window)
        }
    }

    #[test]
    fn identity_model_gives_back_the_input_of_any_size() {
        let sizes = [130, 100, 40];
        let n: usize = sizes.iter().product();
        let image = Array3 {
            sizes,
            data: (0..n).map(|v| (v % 977) as f32 * 0.01).collect(),
        };
        let out = sliding_window(&mut Identity, &image, [72, 120, 120], 0.5, |_, _| {}).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].sizes, sizes);
        assert!(out[0].data.iter().all(|v| v.is_finite()));
        let worst = out[0]
            .data
            .iter()
            .zip(&image.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-4, "worst difference {worst}");
    }
}
