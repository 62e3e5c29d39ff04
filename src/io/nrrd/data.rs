//! The NRRD payload: locating it (attached or in data files), skipping, decoding, and checking
//! its length against the header before anything large is allocated.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::header::{Encoding, Header};
use super::values::resolve;
use crate::io::scalar::{self, Endian};
use crate::io::{IoError, Voxels};

/// Where and how much to read.
pub struct DataContext<'a> {
    /// Names the file in errors.
    pub path: &'a Path,
    /// The folder of the header, for detached data; `None` refuses detached headers.
    pub base_dir: Option<&'a Path>,
    /// Largest payload (decoded bytes) that will be accepted.
    pub max_bytes: u64,
}

/// Decodes the payload of `file` (the whole header file's bytes) into voxels, in file order.
pub fn read_payload(header: &Header, file: &[u8], cx: &DataContext) -> Result<Voxels, IoError> {
    let tsize = header.scalar.size();
    let wide: u128 = header
        .sizes
        .iter()
        .fold(tsize as u128, |acc, &n| acc.saturating_mul(n as u128));
    if wide > cx.max_bytes as u128 {
        return Err(IoError::TooLarge {
            path: cx.path.to_path_buf(),
            sizes: header.sizes.clone(),
            type_name: header.scalar.nrrd_name().into(),
            bytes: wide,
            limit: cx.max_bytes,
        });
    }
    let total = wide as u64;

    let endian = match header.endian {
        Some(e) => e,
        None if tsize == 1 || header.encoding == Encoding::Ascii => Endian::Little,
        None => {
            return Err(IoError::MissingField {
                path: cx.path.to_path_buf(),
                field: "endian",
            })
        }
    };
    if header.byte_skip == -1 && header.encoding != Encoding::Raw {
        let value = header.byte_skip.to_string();
        return Err(field(
            cx.path,
            "byte skip",
            &value,
            "-1 is allowed only with raw encoding",
        ));
    }

    let length_error = |path: &Path, expected: u64, got: u64| IoError::DataLength {
        path: path.to_path_buf(),
        sizes: header.sizes.clone(),
        type_name: header.scalar.nrrd_name().into(),
        expected,
        got,
    };

    // Each source: its path and whether it is a detached data file.
    let mut sources: Vec<(PathBuf, bool)> = Vec::new();
    let per_source = match &header.data_files {
        None => {
            if !header.has_header_end {
                return Err(IoError::NoHeaderEnd {
                    path: cx.path.to_path_buf(),
                });
            }
            sources.push((cx.path.to_path_buf(), false));
            total
        }
        Some(files) => {
            let Some(base) = cx.base_dir else {
                let v = files.names.join(" ");
                return Err(field(
                    cx.path,
                    "data file",
                    &v,
                    "detached data need the header's folder",
                ));
            };
            let n = files.names.len() as u64;
            let per = match files.subdim {
                Some(d) => header.sizes[..d].iter().product::<usize>() as u64 * tsize as u64,
                None => total / n,
            };
            if per * n != total {
                let v = files.names.join(" ");
                let msg = format!("{n} files cannot hold {total} bytes in equal parts");
                return Err(field(cx.path, "data file", &v, msg));
            }
            for name in &files.names {
                sources.push((resolve(base, name), true));
            }
            per
        }
    };

    let mut bytes: Vec<u8> = Vec::new();
    let mut text = String::new();
    for (source_path, detached) in sources {
        let owned;
        let raw: &[u8] = if detached {
            owned = read_detached(&source_path, header, per_source)?;
            &owned
        } else {
            &file[header.header_len.min(file.len())..]
        };
        let raw = skip_lines(raw, header.line_skip)
            .ok_or_else(|| length_error(&source_path, per_source, 0))?;
        match header.encoding {
            Encoding::Raw => {
                let part = if header.byte_skip == -1 {
                    let n = per_source as usize;
                    if (raw.len() as u64) < per_source {
                        return Err(length_error(&source_path, per_source, raw.len() as u64));
                    }
                    &raw[raw.len() - n..]
                } else {
                    skip_bytes(raw, header.byte_skip as u64)
                        .ok_or_else(|| length_error(&source_path, per_source, 0))?
                };
                check_len(part.len() as u64, per_source, &source_path, &length_error)?;
                bytes.extend_from_slice(part);
            }
            Encoding::Gzip | Encoding::Bzip2 => {
                let skip = header.byte_skip as u64;
                let cap = per_source + skip + 1;
                let out = decompress(raw, header.encoding, cap, &source_path)?;
                let part = skip_bytes(&out, skip)
                    .ok_or_else(|| length_error(&source_path, per_source, 0))?;
                check_len(part.len() as u64, per_source, &source_path, &length_error)?;
                bytes.extend_from_slice(part);
            }
            Encoding::Hex => {
                let part = skip_bytes(raw, header.byte_skip as u64)
                    .ok_or_else(|| length_error(&source_path, per_source, 0))?;
                let decoded = decode_hex(part, &source_path)?;
                check_len(
                    decoded.len() as u64,
                    per_source,
                    &source_path,
                    &length_error,
                )?;
                bytes.extend_from_slice(&decoded);
            }
            Encoding::Ascii => {
                let part = skip_bytes(raw, header.byte_skip as u64)
                    .ok_or_else(|| length_error(&source_path, per_source, 0))?;
                let count = tokens(part).count() as u64;
                check_len(
                    count * tsize as u64,
                    per_source,
                    &source_path,
                    &length_error,
                )?;
                text.push_str(&String::from_utf8_lossy(part));
                text.push('\n');
            }
        }
    }

    if header.encoding == Encoding::Ascii {
        let parsed = scalar::parse_tokens(tokens(text.as_bytes()), header.scalar);
        return parsed.map_err(|tok| IoError::Decode {
            path: cx.path.to_path_buf(),
            encoding: "ascii",
            message: format!("{tok:?} is not a {} value", header.scalar.nrrd_name()),
        });
    }
    Ok(scalar::decode(&bytes, header.scalar, endian))
}

fn field(path: &Path, name: &str, value: &str, message: impl Into<String>) -> IoError {
    IoError::Field {
        path: path.to_path_buf(),
        field: name.into(),
        value: value.into(),
        message: message.into(),
    }
}

fn check_len(
    got: u64,
    expected: u64,
    path: &Path,
    error: &dyn Fn(&Path, u64, u64) -> IoError,
) -> Result<(), IoError> {
    if got == expected {
        Ok(())
    } else {
        Err(error(path, expected, got))
    }
}

/// Reads a detached data file: only its tail for `byte skip: -1`, else all of it (its real
/// length bounds the allocation, whatever the header claims).
fn read_detached(path: &Path, header: &Header, per_source: u64) -> Result<Vec<u8>, IoError> {
    let file = std::fs::File::open(path).map_err(|e| IoError::io(path, e))?;
    let len = file.metadata().map_err(|e| IoError::io(path, e))?.len();
    let mut out = Vec::new();
    if header.encoding == Encoding::Raw && header.byte_skip == -1 {
        // Only the last bytes are data: read the tail.
        use std::io::{Seek, SeekFrom};
        let mut file = file;
        let keep = per_source.min(len);
        file.seek(SeekFrom::Start(len - keep))
            .map_err(|e| IoError::io(path, e))?;
        file.take(keep)
            .read_to_end(&mut out)
            .map_err(|e| IoError::io(path, e))?;
        return Ok(out);
    }
    file.take(len)
        .read_to_end(&mut out)
        .map_err(|e| IoError::io(path, e))?;
    Ok(out)
}

fn skip_lines(bytes: &[u8], count: usize) -> Option<&[u8]> {
    let mut rest = bytes;
    for _ in 0..count {
        let p = rest.iter().position(|&b| b == b'\n')?;
        rest = &rest[p + 1..];
    }
    Some(rest)
}

fn skip_bytes(bytes: &[u8], count: u64) -> Option<&[u8]> {
    if count > bytes.len() as u64 {
        None
    } else {
        Some(&bytes[count as usize..])
    }
}

/// Decompresses at most `cap` bytes, so a lying header or a compression bomb stops early.
fn decompress(raw: &[u8], encoding: Encoding, cap: u64, path: &Path) -> Result<Vec<u8>, IoError> {
    let mut out = Vec::new();
    let result = match encoding {
        Encoding::Gzip => flate2::read::MultiGzDecoder::new(raw)
            .take(cap)
            .read_to_end(&mut out),
        _ => bzip2::read::MultiBzDecoder::new(raw)
            .take(cap)
            .read_to_end(&mut out),
    };
    result.map_err(|e| IoError::Decode {
        path: path.to_path_buf(),
        encoding: encoding.nrrd_name(),
        message: e.to_string(),
    })?;
    Ok(out)
}

fn decode_hex(text: &[u8], path: &Path) -> Result<Vec<u8>, IoError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<u8> = None;
    for &c in text {
        if c.is_ascii_whitespace() {
            continue;
        }
        let nibble = (c as char).to_digit(16).ok_or_else(|| IoError::Decode {
            path: path.to_path_buf(),
            encoding: "hex",
            message: format!("{:?} is not a hex digit", c as char),
        })? as u8;
        match high.take() {
            None => high = Some(nibble),
            Some(h) => out.push(h << 4 | nibble),
        }
    }
    if high.is_some() {
        return Err(IoError::Decode {
            path: path.to_path_buf(),
            encoding: "hex",
            message: "an odd number of hex digits".into(),
        });
    }
    Ok(out)
}

/// Whitespace- or comma-separated values of the ascii encoding.
fn tokens(text: &[u8]) -> impl Iterator<Item = &str> {
    text.split(|&b| b.is_ascii_whitespace() || b == b',')
        .filter(|t| !t.is_empty())
        .map(|t| std::str::from_utf8(t).unwrap_or("\u{fffd}"))
}
