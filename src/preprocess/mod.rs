//! The preprocessing pipeline: crop and pad (recorded, so predictions map back), intensity
//! scaling, rotation augmentation, patches, and label mapping.
//!
//! Everything works on [`Array3`]: one channel of f32 values with sizes `[i, j, k]`, i fastest,
//! exactly the layout of a single-channel [`Volume`](crate::io::Volume). Geometry stays with the
//! volume; [`Array3::from_volume`] and [`Array3::into_volume`] cross over, and
//! [`Padding::shift_origin`] moves the origin for a padded or cropped grid.

mod intensity;
mod labels;
mod pad;
mod patches;
mod rotate;

pub use intensity::{ct_window, min_max, MinMax};
pub use labels::LabelMap;
pub use pad::{crop, multiple_for_blocks, pad_or_crop_to, pad_to_multiple, Padding, Placement};
pub use patches::{
    chunks_along, extract, insert, sliding_starts, stitch_mean, LastChunk, Patch, PatchSampler,
};
pub use rotate::{rotate, rotations, Axis, Interpolation};

use thiserror::Error;

use crate::io::{Volume, Voxels};

/// What can go wrong in preprocessing.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PreprocessError {
    #[error("{op}: sizes {sizes:?} hold {expected} values but {got} were given")]
    DataLength {
        op: &'static str,
        sizes: [usize; 3],
        expected: usize,
        got: usize,
    },

    #[error("{op}: {message}")]
    Invalid { op: &'static str, message: String },

    #[error("label value {value} at voxel {index:?} has no class in the mapping")]
    UnmappedLabel { value: f32, index: [usize; 3] },
}

pub type Result<T> = std::result::Result<T, PreprocessError>;

/// One channel of f32 values, i fastest, then j, then k.
#[derive(Clone, Debug, PartialEq)]
pub struct Array3 {
    pub sizes: [usize; 3],
    pub data: Vec<f32>,
}

impl Array3 {
    pub fn new(sizes: [usize; 3], data: Vec<f32>) -> Result<Self> {
        let expected = sizes.iter().product();
        if data.len() != expected {
            return Err(PreprocessError::DataLength {
                op: "Array3::new",
                sizes,
                expected,
                got: data.len(),
            });
        }
        Ok(Array3 { sizes, data })
    }

    pub fn filled(sizes: [usize; 3], value: f32) -> Self {
        Array3 {
            sizes,
            data: vec![value; sizes.iter().product()],
        }
    }

    /// The values of a single-channel volume as f32.
    pub fn from_volume(volume: &Volume) -> Result<Self> {
        if volume.channels != 1 {
            let message = format!("expected one channel, the volume has {}", volume.channels);
            return Err(PreprocessError::Invalid {
                op: "Array3::from_volume",
                message,
            });
        }
        Array3::new(volume.sizes, volume.voxels.to_f32())
    }

    /// A float volume with the geometry of `like` (sizes from `self`).
    pub fn into_volume(self, like: &Volume) -> Volume {
        let mut v = like.with_voxels(Voxels::F32(self.data));
        v.sizes = self.sizes;
        v
    }

    /// A label map (values rounded to the nearest integer in 0..=255) with `like`'s geometry.
    pub fn into_volume_u8(self, like: &Volume) -> Volume {
        let labels = self
            .data
            .iter()
            .map(|&v| v.round().clamp(0.0, 255.0) as u8)
            .collect();
        let mut v = like.with_voxels(Voxels::U8(labels));
        v.sizes = self.sizes;
        v
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Flat position of (i, j, k).
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        (k * self.sizes[1] + j) * self.sizes[0] + i
    }

    pub fn get(&self, i: usize, j: usize, k: usize) -> f32 {
        self.data[self.index(i, j, k)]
    }
}
