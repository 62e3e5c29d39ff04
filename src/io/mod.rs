//! Volume files: NRRD (our own reader and writer), NIfTI, and the `Volume` type with its
//! geometry.
//!
//! [`read_volume`] and [`write_volume`] choose the format by the file name: `.nrrd` (attached
//! header), `.nhdr` (detached header), `.nii`, `.nii.gz`. World coordinates are always LPS.

mod error;
pub mod nifti;
pub mod nrrd;
pub mod scalar;
mod volume;

use std::path::Path;

pub use error::IoError;
pub use volume::{Volume, Voxels};

/// The file formats enamel reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Nrrd,
    Nifti,
}

/// The format of `path` by its name.
pub fn format_of(path: &Path) -> Result<Format, IoError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase());
    match name.as_deref() {
        Some(n) if n.ends_with(".nrrd") || n.ends_with(".nhdr") => Ok(Format::Nrrd),
        Some(n) if n.ends_with(".nii") || n.ends_with(".nii.gz") => Ok(Format::Nifti),
        _ => Err(IoError::UnknownFormat {
            path: path.to_path_buf(),
        }),
    }
}

/// Reads a volume from `.nrrd`, `.nhdr`, `.nii` or `.nii.gz`.
pub fn read_volume(path: &Path) -> Result<Volume, IoError> {
    match format_of(path)? {
        Format::Nrrd => Ok(nrrd::read_nrrd(path)?.volume),
        Format::Nifti => nifti::read_nifti(path, nrrd::DEFAULT_MAX_BYTES),
    }
}

/// Writes a volume: NRRD with gzip (`.nrrd` attached, `.nhdr` detached), or NIfTI-1 (`.nii`,
/// `.nii.gz`). The file appears complete or not at all (temporary file, then rename).
pub fn write_volume(path: &Path, volume: &Volume) -> Result<(), IoError> {
    match format_of(path)? {
        Format::Nrrd => {
            let nrrd = nrrd::Nrrd::from_volume(volume.clone());
            nrrd::write_nrrd(path, &nrrd, &nrrd::WriteOptions::default())
        }
        Format::Nifti => nifti::write_nifti(path, volume),
    }
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(IoError::io(path, e));
    }
    Ok(())
}
