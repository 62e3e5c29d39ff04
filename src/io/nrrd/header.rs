//! The NRRD header: from text lines to typed fields, with no interpretation of the geometry.

use std::path::Path;

use super::values::{parse_data_file, parse_vector_list, unescape};
use crate::io::scalar::{Endian, ScalarType};
use crate::io::IoError;

/// How the payload is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Encoding {
    Raw,
    #[default]
    Gzip,
    Bzip2,
    Ascii,
    Hex,
}

impl Encoding {
    pub fn nrrd_name(self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Gzip => "gzip",
            Encoding::Bzip2 => "bzip2",
            Encoding::Ascii => "ascii",
            Encoding::Hex => "hex",
        }
    }

    fn from_nrrd(name: &str) -> Option<Self> {
        Some(match name {
            "raw" => Encoding::Raw,
            "gz" | "gzip" => Encoding::Gzip,
            "bz2" | "bzip2" => Encoding::Bzip2,
            "txt" | "text" | "ascii" => Encoding::Ascii,
            "hex" => Encoding::Hex,
            _ => return None,
        })
    }

    /// Whether the byte order matters for this encoding.
    pub fn is_binary(self) -> bool {
        !matches!(self, Encoding::Ascii)
    }
}

/// Detached data: the files in order, and how many axes each holds (`None`: an equal share).
#[derive(Clone, Debug, PartialEq)]
pub struct DataFiles {
    pub names: Vec<String>,
    pub subdim: Option<usize>,
}

/// The fields of a NRRD header as written, parsed into values.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub version: u8,
    pub scalar: ScalarType,
    pub dimension: usize,
    pub sizes: Vec<usize>,
    pub encoding: Encoding,
    pub endian: Option<Endian>,
    pub space: Option<String>,
    pub space_dimension: Option<usize>,
    /// One entry per axis; `None` where the file says `none`.
    pub space_directions: Option<Vec<Option<Vec<f64>>>>,
    pub space_origin: Option<Vec<f64>>,
    pub spacings: Option<Vec<f64>>,
    pub kinds: Option<Vec<String>>,
    /// Vectors as written (each is a column of the frame).
    pub measurement_frame: Option<Vec<Vec<f64>>>,
    pub data_files: Option<DataFiles>,
    pub line_skip: usize,
    pub byte_skip: i64,
    pub content: Option<String>,
    pub key_values: Vec<(String, String)>,
    /// Bytes from the start of the file to the first byte after the blank line ending the
    /// header (the file length when there is none).
    pub header_len: usize,
    /// Whether a blank line ended the header.
    pub has_header_end: bool,
}

/// Fields that are valid NRRD but carry nothing a volume needs; they are accepted and dropped.
const IGNORED_FIELDS: &[&str] = &[
    "block size",
    "min",
    "max",
    "old min",
    "old max",
    "sample units",
    "space units",
    "units",
    "labels",
    "centers",
    "centerings",
    "thicknesses",
    "axis mins",
    "axis maxs",
    "number",
];

fn canonical_field(name: &str) -> &str {
    match name {
        "blocksize" => "block size",
        "oldmin" => "old min",
        "oldmax" => "old max",
        "datafile" => "data file",
        "lineskip" => "line skip",
        "byteskip" => "byte skip",
        "axismins" => "axis mins",
        "axismaxs" => "axis maxs",
        "spacedimension" => "space dimension",
        "spaceorigin" => "space origin",
        "spacedirections" => "space directions",
        "measurementframe" => "measurement frame",
        other => other,
    }
}

/// Lines of `bytes` with their start offsets, `\n` or `\r\n` ended.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= bytes.len() {
            return None;
        }
        let rest = &bytes[start..];
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(p) => (&rest[..p], start + p + 1),
            None => (rest, bytes.len()),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let at = start;
        start = next;
        Some((at, line))
    })
}

pub(super) struct Ctx<'a> {
    pub(super) path: &'a Path,
}

impl Ctx<'_> {
    pub(super) fn field(&self, field: &str, value: &str, message: impl Into<String>) -> IoError {
        IoError::Field {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            value: value.to_string(),
            message: message.into(),
        }
    }
}

/// Parses the header at the start of `bytes`. `path` only names the file in errors.
pub fn parse_header(bytes: &[u8], path: &Path) -> Result<Header, IoError> {
    let cx = Ctx { path };
    let mut it = lines(bytes);
    let first = it.next().map(|(_, l)| l).unwrap_or(b"");
    let version = match first {
        [b'N', b'R', b'R', b'D', b'0', b'0', b'0', v @ b'1'..=b'5'] => v - b'0',
        _ => {
            let shown: String = String::from_utf8_lossy(&first[..first.len().min(40)]).into();
            return Err(IoError::NotNrrd {
                path: path.to_path_buf(),
                first_line: shown,
            });
        }
    };

    let mut fields: Vec<(String, String)> = Vec::new();
    let mut key_values = Vec::new();
    let mut list_files: Option<Vec<String>> = None;
    let mut header_len = bytes.len();
    let mut has_header_end = false;
    for (line_no, (at, raw)) in it.enumerate() {
        let line = String::from_utf8_lossy(raw);
        if line.is_empty() {
            header_len = at + raw.len() + 1;
            if bytes.get(at) == Some(&b'\r') {
                header_len += 1;
            }
            header_len = header_len.min(bytes.len());
            has_header_end = true;
            break;
        }
        if let Some(files) = list_files.as_mut() {
            files.push(line.trim().to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = line.split_once(":=") {
            if !key.contains(": ") {
                key_values.push((unescape(key), unescape(value)));
                continue;
            }
        }
        let Some((name, value)) = line.split_once(": ") else {
            return Err(IoError::BadLine {
                path: path.to_path_buf(),
                line: line_no + 2,
                text: line.chars().take(80).collect(),
            });
        };
        let name = canonical_field(name.trim()).to_string();
        let value = value.trim().to_string();
        if fields.iter().any(|(n, _)| *n == name) {
            return Err(IoError::DuplicateField {
                path: path.to_path_buf(),
                field: name,
            });
        }
        if name == "data file" && value.split_whitespace().next() == Some("LIST") {
            list_files = Some(Vec::new());
        }
        fields.push((name, value));
    }

    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    for (name, value) in &fields {
        let known = matches!(
            name.as_str(),
            "type"
                | "dimension"
                | "sizes"
                | "encoding"
                | "endian"
                | "space"
                | "space dimension"
                | "space directions"
                | "space origin"
                | "spacings"
                | "kinds"
                | "measurement frame"
                | "data file"
                | "line skip"
                | "byte skip"
                | "content"
        );
        if !known && !IGNORED_FIELDS.contains(&name.as_str()) {
            return Err(IoError::UnknownField {
                path: path.to_path_buf(),
                field: name.clone(),
                value: value.clone(),
            });
        }
    }

    let missing = |field: &'static str| IoError::MissingField {
        path: path.to_path_buf(),
        field,
    };
    let type_text = get("type").ok_or_else(|| missing("type"))?;
    let scalar = ScalarType::from_nrrd(type_text)
        .ok_or_else(|| cx.field("type", type_text, "not a supported scalar type"))?;
    let dim_text = get("dimension").ok_or_else(|| missing("dimension"))?;
    let dimension: usize = dim_text
        .parse()
        .ok()
        .filter(|d| (1..=4).contains(d))
        .ok_or_else(|| cx.field("dimension", dim_text, "expected 1, 2, 3 or 4"))?;
    let per_axis = |field: &str, n: usize| -> Result<(), IoError> {
        if n == dimension {
            Ok(())
        } else {
            let v = get(field).unwrap_or("");
            Err(cx.field(
                field,
                v,
                format!("{n} entries given, dimension is {dimension}"),
            ))
        }
    };

    let sizes_text = get("sizes").ok_or_else(|| missing("sizes"))?;
    let sizes = sizes_text
        .split_whitespace()
        .map(|s| s.parse::<usize>().ok().filter(|&n| n > 0))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| cx.field("sizes", sizes_text, "each size must be a whole number ≥ 1"))?;
    per_axis("sizes", sizes.len())?;

    let enc_text = get("encoding").ok_or_else(|| missing("encoding"))?;
    let encoding = Encoding::from_nrrd(enc_text).ok_or_else(|| {
        cx.field(
            "encoding",
            enc_text,
            "expected raw, gzip, bzip2, ascii or hex",
        )
    })?;
    let endian = match get("endian") {
        None => None,
        Some("little") => Some(Endian::Little),
        Some("big") => Some(Endian::Big),
        Some(v) => return Err(cx.field("endian", v, "expected little or big")),
    };

    let space = get("space").map(str::to_string);
    let space_dimension = match get("space dimension") {
        None => None,
        Some(v) => Some(
            v.parse::<usize>()
                .ok()
                .filter(|d| (1..=4).contains(d))
                .ok_or_else(|| cx.field("space dimension", v, "expected 1 to 4"))?,
        ),
    };
    let space_directions = match get("space directions") {
        None => None,
        Some(v) => {
            let entries = parse_vector_list(v)
                .ok_or_else(|| cx.field("space directions", v, "expected (x,y,z) or none"))?;
            per_axis("space directions", entries.len())?;
            Some(entries)
        }
    };
    let space_origin = match get("space origin") {
        None => None,
        Some(v) => match parse_vector_list(v).as_deref() {
            Some([Some(o)]) => Some(o.clone()),
            _ => return Err(cx.field("space origin", v, "expected one vector (x,y,z)")),
        },
    };
    let measurement_frame = match get("measurement frame") {
        None => None,
        Some(v) => {
            let entries = parse_vector_list(v)
                .ok_or_else(|| cx.field("measurement frame", v, "expected vectors (x,y,z)"))?;
            let cols = entries.into_iter().collect::<Option<Vec<_>>>();
            Some(cols.ok_or_else(|| cx.field("measurement frame", v, "`none` is not allowed"))?)
        }
    };
    let spacings = match get("spacings") {
        None => None,
        Some(v) => {
            let s = v
                .split_whitespace()
                .map(|t| t.parse::<f64>().ok())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| cx.field("spacings", v, "expected numbers or nan"))?;
            per_axis("spacings", s.len())?;
            Some(s)
        }
    };
    let kinds = match get("kinds") {
        None => None,
        Some(v) => {
            let k: Vec<String> = v.split_whitespace().map(str::to_string).collect();
            per_axis("kinds", k.len())?;
            Some(k)
        }
    };

    let line_skip = match get("line skip") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| cx.field("line skip", v, "expected a whole number ≥ 0"))?,
    };
    let byte_skip = match get("byte skip") {
        None => 0,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|&b| b >= -1)
            .ok_or_else(|| cx.field("byte skip", v, "expected -1 or a whole number ≥ 0"))?,
    };
    let data_files = match get("data file") {
        None => None,
        Some(v) => Some(parse_data_file(v, list_files, &cx, dimension)?),
    };

    Ok(Header {
        version,
        scalar,
        dimension,
        sizes,
        encoding,
        endian,
        space,
        space_dimension,
        space_directions,
        space_origin,
        spacings,
        kinds,
        measurement_frame,
        data_files,
        line_skip,
        byte_skip,
        content: get("content").map(str::to_string),
        key_values,
        header_len,
        has_header_end,
    })
}
