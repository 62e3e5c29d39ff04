//! Volume files: NRRD (our own reader and writer), NIfTI, and the `Volume` type with its
//! geometry.

mod volume;

pub use volume::{Volume, Voxels};
