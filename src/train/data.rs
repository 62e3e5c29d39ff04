//! Training data: volumes read, normalised and label-mapped once, rotated copies for
//! augmentation, and patches cut from them as tensors.
//!
//! A volume of sizes `[I, J, K]` (i fastest) is, unchanged in memory, the tensor
//! `[1, 1, K, J, I]`: D is k, H is j, W is i.

use anyhow::{bail, Context, Result};

use super::config::{Half, Intensity, Pair, Stage, TrainConfig};
use crate::io::{read_volume, Volume};
use crate::preprocess::{crop, rotate, Array3, Axis, Interpolation, LabelMap};
use crate::rng::Rng;
use crate::tensor::{DType, Tensor};

/// One training volume: intensities in [0, 1] and class indices.
pub struct Sample {
    pub image: Array3,
    pub classes: Array3,
}

/// The label map a stage uses when none is given.
pub fn default_label_map(stage: Stage, labels: &Array3) -> LabelMap {
    let max = labels.data.iter().fold(0.0f32, |m, &v| m.max(v));
    match stage {
        Stage::Binary => {
            let mut pairs = vec![(0i64, 0u32)];
            pairs.extend((1..=max as i64).map(|v| (v, 1)));
            LabelMap::from_pairs(&pairs)
        }
        Stage::Categories if max <= 8.0 => {
            LabelMap::from_pairs(&(0..=8).map(|v| (v, v as u32)).collect::<Vec<_>>())
        }
        Stage::Categories => {
            // FDI numbers: quadrant·10 + position; the position is the category.
            let mut pairs = vec![(0i64, 0u32)];
            for quadrant in 1..=4 {
                pairs.extend((1..=8).map(|p| (quadrant * 10 + p, p as u32)));
            }
            LabelMap::from_pairs(&pairs)
        }
    }
}

/// Reads an image and its labels, checks that they share a grid, normalises the image to
/// [0, 1] and maps the labels to classes.
pub fn load_pair(
    pair: &Pair,
    stage: Stage,
    label_map: &[(i64, u32)],
    intensity: Intensity,
) -> Result<(Sample, Volume)> {
    let image = read_volume(&pair.image)
        .with_context(|| format!("reading image {}", pair.image.display()))?;
    let labels = read_volume(&pair.labels)
        .with_context(|| format!("reading labels {}", pair.labels.display()))?;
    if image.sizes != labels.sizes || image.channels != 1 || labels.channels != 1 {
        bail!(
            "{} (sizes {:?}, {} channel(s)) and {} (sizes {:?}, {} channel(s)) do not share one \
             scalar grid",
            pair.image.display(),
            image.sizes,
            image.channels,
            pair.labels.display(),
            labels.sizes,
            labels.channels
        );
    }
    let mut values = Array3::from_volume(&image)?;
    intensity.apply(&mut values);
    let raw = Array3::from_volume(&labels)?;
    let map = if label_map.is_empty() {
        default_label_map(stage, &raw)
    } else {
        LabelMap::from_pairs(label_map)
    };
    let classes = map
        .apply(&raw)
        .with_context(|| format!("mapping the labels of {}", pair.labels.display()))?;
    if let Some(&bad) = classes
        .data
        .iter()
        .find(|&&c| c as usize >= stage.classes())
    {
        bail!(
            "{}: class {bad} is out of range for the {:?} stage ({} classes); give --label-map",
            pair.labels.display(),
            stage,
            stage.classes()
        );
    }
    Ok((
        Sample {
            image: values,
            classes,
        },
        image,
    ))
}

/// The part of `sample` on one side of the patient's midline: the world x (LPS: +x is the
/// patient's left) of the centroid of its labelled voxels. The i axis must run along ±x.
pub fn half_of(sample: &Sample, volume: &Volume, half: Half) -> Result<Sample> {
    let x_of_i = volume.direction[0][0];
    if x_of_i.abs() < 0.99 {
        bail!(
            "splitting at the midline needs the i axis along x; its direction is {:?}",
            [
                volume.direction[0][0],
                volume.direction[1][0],
                volume.direction[2][0]
            ]
        );
    }
    let si = sample.classes.sizes[0];
    let (mut sum, mut count) = (0.0, 0usize);
    for (n, &c) in sample.classes.data.iter().enumerate() {
        if c > 0.0 {
            sum += (n % si) as f64;
            count += 1;
        }
    }
    if count == 0 {
        bail!("no labelled voxel to find the midline from");
    }
    let mid = (sum / count as f64).round() as usize;
    // Index i grows towards +x (the left) when the direction's x is positive.
    let left_is_high_i = x_of_i > 0.0;
    let take_high = (half == Half::Left) == left_is_high_i;
    let (start, len) = if take_high { (mid, si - mid) } else { (0, mid) };
    if len == 0 {
        bail!("the midline at i = {mid} leaves nothing on the {half:?} side");
    }
    let sizes = [len, sample.image.sizes[1], sample.image.sizes[2]];
    let (image, _) = crop(&sample.image, [start, 0, 0], sizes)?;
    let (classes, _) = crop(&sample.classes, [start, 0, 0], sizes)?;
    Ok(Sample { image, classes })
}

/// Every training sample and its rotated copies (about the k axis, linear for images and
/// nearest for labels).
pub fn load_training_set(config: &TrainConfig) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for pair in &config.train {
        let (sample, volume) = load_pair(pair, config.stage, &config.label_map, config.intensity)?;
        let sample = match config.half {
            Some(half) => half_of(&sample, &volume, half)?,
            None => sample,
        };
        for &angle in config.augment_rotations.iter().filter(|&&a| a != 0.0) {
            samples.push(Sample {
                image: rotate(&sample.image, Axis::K, angle, Interpolation::Linear, 0.0),
                classes: rotate(&sample.classes, Axis::K, angle, Interpolation::Nearest, 0.0),
            });
        }
        samples.push(sample);
    }
    Ok(samples)
}

/// A batch of patches: the input `[B,1,D,H,W]` and the target (binary: `[B,1,D,H,W]` 0/1
/// in `dtype`; categories: class indices `[B,D,H,W]` as u8).
pub struct Batch {
    pub x: Tensor,
    pub target: Tensor,
}

/// Cuts `batch` patches of `patch` (D,H,W), each from a random sample; a share
/// `foreground_fraction` of them is centred on a random foreground voxel.
pub fn sample_batch(
    samples: &[Sample],
    config: &TrainConfig,
    dtype: DType,
    rng: &mut Rng,
) -> Result<Batch> {
    let [d, h, w] = config.patch;
    let sizes = [w, h, d];
    let voxels = d * h * w;
    let mut x = Vec::with_capacity(config.batch * voxels);
    let mut classes = Vec::with_capacity(config.batch * voxels);
    for _ in 0..config.batch {
        let sample = &samples[rng.below(samples.len())];
        let grid = sample.image.sizes;
        if (0..3).any(|a| sizes[a] > grid[a]) {
            bail!(
                "patch D,H,W {:?} is larger than a training volume of D,H,W {:?}",
                config.patch,
                [grid[2], grid[1], grid[0]]
            );
        }
        let start = if rng.uniform() < config.foreground_fraction {
            foreground_start(&sample.classes, sizes, rng)
        } else {
            None
        }
        .unwrap_or_else(|| [0, 1, 2].map(|a| rng.below(grid[a] - sizes[a] + 1)));
        for k in 0..d {
            for j in 0..h {
                let from = sample.image.index(start[0], start[1] + j, start[2] + k);
                x.extend_from_slice(&sample.image.data[from..from + w]);
                classes.extend_from_slice(&sample.classes.data[from..from + w]);
            }
        }
    }
    let n = config.batch;
    let x = Tensor::from_f32(&[n, 1, d, h, w], x)?.into_dtype(dtype);
    let target = match config.stage {
        Stage::Binary => Tensor::from_f32(&[n, 1, d, h, w], classes)?.into_dtype(dtype),
        Stage::Categories => {
            Tensor::from_u8(&[n, d, h, w], classes.iter().map(|&c| c as u8).collect())?
        }
    };
    Ok(Batch { x, target })
}

/// A patch start that puts a random foreground voxel at the patch centre (clamped to the
/// grid), or None when the sample has no foreground. Rejection sampling keeps this O(1) in
/// memory: a few hundred draws find foreground covering even 0.1% of the volume.
fn foreground_start(classes: &Array3, sizes: [usize; 3], rng: &mut Rng) -> Option<[usize; 3]> {
    let grid = classes.sizes;
    for _ in 0..4096 {
        let n = rng.below(classes.len());
        if classes.data[n] > 0.0 {
            let at = [n % grid[0], n / grid[0] % grid[1], n / (grid[0] * grid[1])];
            return Some(
                [0, 1, 2].map(|a| at[a].saturating_sub(sizes[a] / 2).min(grid[a] - sizes[a])),
            );
        }
    }
    None
}
