//! NRRD (teem's "nearly raw raster data", versions NRRD0001 to NRRD0005): reader and writer.
//!
//! Reading: attached (`.nrrd`) and detached (`.nhdr`) headers, `data file` as one name, as
//! `LIST` or as a `%d` pattern, `line skip`, `byte skip` (−1: the data are the last bytes of a
//! raw file; for gzip and bzip2 the skip counts decompressed bytes), encodings raw, gzip,
//! bzip2, ascii and hex, either byte order, every integer and float type, dimension 1 to 4.
//! A non-spatial axis (a `none` space direction, or a kind such as `vector`) becomes the
//! channels of the volume; spaces such as RAS or LAS are converted to LPS. The payload's
//! length is checked against `sizes` before it is decoded, and compressed data are inflated
//! only up to the length the header allows.
//!
//! Writing: `NRRD0004`, space `left-posterior-superior`, gzip by default, to a temporary file
//! renamed into place.

mod data;
mod geometry;
mod header;
mod values;
mod write;

use std::path::{Path, PathBuf};

pub use header::{parse_header, Encoding, Header};
pub use write::{write_nrrd, WriteOptions};

use super::scalar::move_axis_first;
pub use super::scalar::{Endian, ScalarType};
use super::{IoError, Volume};

/// The default limit on the decoded payload: 16 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 16 << 30;

/// A volume read from NRRD, with what NRRD says beyond the volume itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Nrrd {
    pub volume: Volume,
    /// Measurement frame (columns), converted to LPS like the geometry.
    pub measurement_frame: Option<[[f64; 3]; 3]>,
    /// The `kinds` entry of the channel axis (`vector`, `RGB-color`, ...), if any.
    pub channel_kind: Option<String>,
    pub content: Option<String>,
    /// The `space` field as written in the file.
    pub space: Option<String>,
    /// What was converted while reading (e.g. "space right-anterior-superior converted ...").
    pub notes: Vec<String>,
}

impl Nrrd {
    /// A volume with no NRRD-specific extras.
    pub fn from_volume(volume: Volume) -> Self {
        Nrrd {
            volume,
            measurement_frame: None,
            channel_kind: None,
            content: None,
            space: None,
            notes: Vec::new(),
        }
    }
}

/// How much a reader accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// Largest decoded payload in bytes.
    pub max_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Reads a `.nrrd` or `.nhdr` file.
pub fn read_nrrd(path: &Path) -> Result<Nrrd, IoError> {
    read_nrrd_with(path, &ReadOptions::default())
}

pub fn read_nrrd_with(path: &Path, options: &ReadOptions) -> Result<Nrrd, IoError> {
    // Read the magic first so that a large file which is not NRRD is refused cheaply.
    let mut magic = [0u8; 8];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| IoError::io(path, e))?;
        let n = f.read(&mut magic).map_err(|e| IoError::io(path, e))?;
        if n < 8 || &magic[..7] != b"NRRD000" {
            let first_line = String::from_utf8_lossy(&magic[..n]).into_owned();
            return Err(IoError::NotNrrd {
                path: path.to_path_buf(),
                first_line,
            });
        }
    }
    let bytes = std::fs::read(path).map_err(|e| IoError::io(path, e))?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    decode(&bytes, Some(&base), path, options)
}

/// Reads a NRRD file held in memory (the fuzzing entry point). Detached data files are looked
/// up in `base_dir`; with `None`, a detached header is an error.
pub fn read_from_bytes(bytes: &[u8], base_dir: Option<&Path>) -> Result<Nrrd, IoError> {
    read_from_bytes_with(bytes, base_dir, &ReadOptions::default())
}

pub fn read_from_bytes_with(
    bytes: &[u8],
    base_dir: Option<&Path>,
    options: &ReadOptions,
) -> Result<Nrrd, IoError> {
    decode(bytes, base_dir, Path::new("<memory>"), options)
}

fn decode(
    bytes: &[u8],
    base_dir: Option<&Path>,
    path: &Path,
    options: &ReadOptions,
) -> Result<Nrrd, IoError> {
    let header = parse_header(bytes, path)?;
    let layout = geometry::layout(&header, path)?;
    let cx = data::DataContext {
        path,
        base_dir,
        max_bytes: options.max_bytes,
    };
    let mut voxels = data::read_payload(&header, bytes, &cx)?;
    if let Some(axis) = layout.channel_axis.filter(|&a| a > 0) {
        voxels = move_axis_first(&voxels, &header.sizes, axis);
    }
    for note in &layout.notes {
        tracing::info!("{}: {note}", path.display());
    }

    let volume = Volume {
        sizes: layout.sizes,
        channels: layout.channels,
        voxels,
        spacing: layout.spacing,
        origin: layout.origin,
        direction: layout.direction,
        key_values: header.key_values.clone(),
    };
    Ok(Nrrd {
        volume,
        measurement_frame: layout.measurement_frame,
        channel_kind: layout.channel_kind,
        content: header.content.clone(),
        space: header.space.clone(),
        notes: layout.notes,
    })
}
