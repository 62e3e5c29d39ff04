//! The NRRD writer: NRRD0004 in LPS, attached or detached, any encoding.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use super::header::Encoding;
use super::values::escape;
use super::Nrrd;
use crate::io::scalar::{self, Endian, ScalarType};
use crate::io::{write_atomic, IoError};

/// How to write: encoding (gzip by default), byte order (little by default), compression
/// level (0–9 for gzip, 1–9 for bzip2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    pub encoding: Encoding,
    pub endian: Endian,
    pub compression_level: u32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            encoding: Encoding::Gzip,
            endian: Endian::Little,
            compression_level: 6,
        }
    }
}

/// Writes `nrrd` to `path`: a `.nhdr` path gets a detached header and a data file beside it
/// named after it (`brain.nhdr` → `brain.raw.gz` for gzip); any other path one attached file.
pub fn write_nrrd(path: &Path, nrrd: &Nrrd, options: &WriteOptions) -> Result<(), IoError> {
    let volume = &nrrd.volume;
    let fail = |message: String| IoError::Write {
        path: path.to_path_buf(),
        message,
    };
    let expected = volume.voxel_count() * volume.channels;
    if volume.voxels.len() != expected || expected == 0 {
        let n = volume.voxels.len();
        return Err(fail(format!(
            "{n} voxels for sizes {:?} × {}",
            volume.sizes, volume.channels
        )));
    }
    let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
    if !finite(&volume.spacing) || !finite(&volume.origin) || volume.spacing.contains(&0.0) {
        let g = format!("spacing {:?}, origin {:?}", volume.spacing, volume.origin);
        return Err(fail(format!(
            "the geometry is not finite and non-zero: {g}"
        )));
    }

    let detached = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("nhdr"));
    let payload = encode_payload(nrrd, options).map_err(|e| IoError::io(path, e))?;
    let mut header = header_text(nrrd, options);
    if detached {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let suffix = match options.encoding {
            Encoding::Raw => "raw",
            Encoding::Gzip => "raw.gz",
            Encoding::Bzip2 => "raw.bz2",
            Encoding::Ascii => "txt",
            Encoding::Hex => "hex",
        };
        let data_name = format!("{stem}.{suffix}");
        writeln!(header, "data file: {data_name}").ok();
        push_key_values(&mut header, nrrd, path)?;
        let data_path = path.with_file_name(&data_name);
        write_atomic(&data_path, &payload)?;
        write_atomic(path, header.as_bytes())
    } else {
        push_key_values(&mut header, nrrd, path)?;
        header.push('\n');
        let mut bytes = header.into_bytes();
        bytes.extend_from_slice(&payload);
        write_atomic(path, &bytes)
    }
}

fn vector(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x}")).collect();
    format!("({})", parts.join(","))
}

fn header_text(nrrd: &Nrrd, options: &WriteOptions) -> String {
    let volume = &nrrd.volume;
    let scalar = ScalarType::of(&volume.voxels);
    let has_channels = volume.channels > 1 || nrrd.channel_kind.is_some();
    let mut h = String::from("NRRD0004\n# written by enamel\n");
    writeln!(h, "type: {}", scalar.nrrd_name()).ok();
    writeln!(h, "dimension: {}", if has_channels { 4 } else { 3 }).ok();
    h.push_str("space: left-posterior-superior\n");

    let mut sizes: Vec<String> = volume.sizes.iter().map(usize::to_string).collect();
    let mut directions: Vec<String> = (0..3)
        .map(|c| {
            let d = volume.direction;
            let s = volume.spacing[c];
            vector(&[d[0][c] * s, d[1][c] * s, d[2][c] * s])
        })
        .collect();
    let mut kinds = vec!["domain".to_string(); 3];
    if has_channels {
        sizes.insert(0, volume.channels.to_string());
        directions.insert(0, "none".into());
        kinds.insert(
            0,
            nrrd.channel_kind.clone().unwrap_or_else(|| "vector".into()),
        );
    }
    writeln!(h, "sizes: {}", sizes.join(" ")).ok();
    writeln!(h, "space directions: {}", directions.join(" ")).ok();
    writeln!(h, "kinds: {}", kinds.join(" ")).ok();
    if let Some(content) = &nrrd.content {
        writeln!(h, "content: {}", content.replace('\n', " ")).ok();
    }
    if scalar.size() > 1 && options.encoding.is_binary() {
        let e = match options.endian {
            Endian::Little => "little",
            Endian::Big => "big",
        };
        writeln!(h, "endian: {e}").ok();
    }
    writeln!(h, "encoding: {}", options.encoding.nrrd_name()).ok();
    writeln!(h, "space origin: {}", vector(&volume.origin)).ok();
    if let Some(m) = &nrrd.measurement_frame {
        let cols: Vec<String> = (0..3)
            .map(|c| vector(&[m[0][c], m[1][c], m[2][c]]))
            .collect();
        writeln!(h, "measurement frame: {}", cols.join(" ")).ok();
    }
    h
}

fn push_key_values(h: &mut String, nrrd: &Nrrd, path: &Path) -> Result<(), IoError> {
    for (k, v) in &nrrd.volume.key_values {
        if k.contains(":=") || k.is_empty() || k.starts_with('#') {
            let message = format!("key {k:?} cannot be written as `key:=value`");
            return Err(IoError::Write {
                path: path.to_path_buf(),
                message,
            });
        }
        writeln!(h, "{}:={}", escape(k), escape(v)).ok();
    }
    Ok(())
}

fn encode_payload(nrrd: &Nrrd, options: &WriteOptions) -> std::io::Result<Vec<u8>> {
    let voxels = &nrrd.volume.voxels;
    let level = options.compression_level;
    Ok(match options.encoding {
        Encoding::Raw => scalar::encode(voxels, options.endian),
        Encoding::Gzip => {
            let raw = scalar::encode(voxels, options.endian);
            let level = flate2::Compression::new(level.min(9));
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), level);
            enc.write_all(&raw)?;
            enc.finish()?
        }
        Encoding::Bzip2 => {
            let raw = scalar::encode(voxels, options.endian);
            let level = bzip2::Compression::new(level.clamp(1, 9));
            let mut enc = bzip2::write::BzEncoder::new(Vec::new(), level);
            enc.write_all(&raw)?;
            enc.finish()?
        }
        Encoding::Hex => {
            let raw = scalar::encode(voxels, options.endian);
            let mut text = String::with_capacity(raw.len() * 2 + raw.len() / 32 + 1);
            for line in raw.chunks(32) {
                for b in line {
                    write!(text, "{b:02x}").ok();
                }
                text.push('\n');
            }
            text.into_bytes()
        }
        Encoding::Ascii => {
            let per_line = (nrrd.volume.sizes[0] * nrrd.volume.channels).max(1);
            let values = scalar::format_values(voxels);
            let mut text = String::new();
            for line in values.chunks(per_line) {
                text.push_str(&line.join(" "));
                text.push('\n');
            }
            text.into_bytes()
        }
    })
}
