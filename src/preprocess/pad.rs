//! Crop and pad to a size, recorded as a [`Padding`] so results map back to the original grid.

use super::{Array3, PreprocessError, Result};
use crate::io::Volume;

/// Where the added (or removed) voxels go along each axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Placement {
    /// All after the data (index 0 stays index 0).
    #[default]
    End,
    /// Split around the data, the odd voxel after it.
    Centre,
}

/// How a grid was padded or cropped: output voxel `o` holds input voxel `o − before` (per axis);
/// a negative `before` means voxels were cropped from the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Padding {
    pub original: [usize; 3],
    pub before: [isize; 3],
    pub sizes: [usize; 3],
}

impl Padding {
    /// Maps an array on the padded grid back to the original grid; voxels that were cropped
    /// away get `fill`.
    pub fn undo(&self, padded: &Array3, fill: f32) -> Result<Array3> {
        if padded.sizes != self.sizes {
            let message = format!("expected sizes {:?}, got {:?}", self.sizes, padded.sizes);
            return Err(PreprocessError::Invalid {
                op: "Padding::undo",
                message,
            });
        }
        let inverse = Padding {
            original: self.sizes,
            before: self.before.map(|b| -b),
            sizes: self.original,
        };
        Ok(inverse.apply(padded, fill))
    }

    /// Places `input` (of the original sizes) on the new grid, `fill` elsewhere.
    pub fn apply(&self, input: &Array3, fill: f32) -> Array3 {
        let mut out = Array3::filled(self.sizes, fill);
        let src = |o: usize, a: usize| -> Option<usize> {
            let s = o as isize - self.before[a];
            (s >= 0 && (s as usize) < self.original[a]).then_some(s as usize)
        };
        for k in 0..self.sizes[2] {
            let Some(sk) = src(k, 2) else { continue };
            for j in 0..self.sizes[1] {
                let Some(sj) = src(j, 1) else { continue };
                for i in 0..self.sizes[0] {
                    if let Some(si) = src(i, 0) {
                        let o = out.index(i, j, k);
                        out.data[o] = input.get(si, sj, sk);
                    }
                }
            }
        }
        out
    }

    /// The origin of the new grid, so that its voxels keep their world positions.
    pub fn shift_origin(&self, volume: &Volume) -> [f64; 3] {
        volume.index_to_world(self.before.map(|b| -b as f64))
    }
}

/// The multiple a U-Net with `n_blocks` resolution levels needs: 2^(n_blocks−1).
pub fn multiple_for_blocks(n_blocks: usize) -> usize {
    1 << n_blocks.saturating_sub(1).min(30)
}

fn split(total: isize, placement: Placement) -> isize {
    match placement {
        Placement::End => 0,
        Placement::Centre => total / 2,
    }
}

/// Pads and/or crops to `sizes`; `fill` goes into new voxels.
pub fn pad_or_crop_to(
    input: &Array3,
    sizes: [usize; 3],
    placement: Placement,
    fill: f32,
) -> Result<(Array3, Padding)> {
    if sizes.contains(&0) {
        let message = format!("target sizes {sizes:?} must be ≥ 1");
        return Err(PreprocessError::Invalid {
            op: "pad_or_crop_to",
            message,
        });
    }
    let before = [0, 1, 2].map(|a| split(sizes[a] as isize - input.sizes[a] as isize, placement));
    let padding = Padding {
        original: input.sizes,
        before,
        sizes,
    };
    Ok((padding.apply(input, fill), padding))
}

/// Pads each axis up to the next multiple of `multiple` (e.g. 163×112×120 → 168×120×120 for 8).
pub fn pad_to_multiple(
    input: &Array3,
    multiple: usize,
    placement: Placement,
    fill: f32,
) -> Result<(Array3, Padding)> {
    if multiple == 0 {
        let message = "the multiple must be ≥ 1".to_string();
        return Err(PreprocessError::Invalid {
            op: "pad_to_multiple",
            message,
        });
    }
    let sizes = input.sizes.map(|n| n.div_ceil(multiple) * multiple);
    pad_or_crop_to(input, sizes, placement, fill)
}

/// The box `start .. start + sizes`, which must lie inside the array.
pub fn crop(input: &Array3, start: [usize; 3], sizes: [usize; 3]) -> Result<(Array3, Padding)> {
    for a in 0..3 {
        if sizes[a] == 0 || start[a] + sizes[a] > input.sizes[a] {
            let message = format!(
                "box at {start:?} of sizes {sizes:?} is not inside {:?}",
                input.sizes
            );
            return Err(PreprocessError::Invalid {
                op: "crop",
                message,
            });
        }
    }
    let padding = Padding {
        original: input.sizes,
        before: start.map(|s| -(s as isize)),
        sizes,
    };
    Ok((padding.apply(input, 0.0), padding))
}
