//! Scalar types and byte orders shared by the NRRD and NIfTI code: bytes ↔ [`Voxels`].

use super::Voxels;

/// The stored type of a voxel value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarType {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

/// Byte order of multi-byte values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Endian {
    #[default]
    Little,
    Big,
}

impl ScalarType {
    pub fn size(self) -> usize {
        match self {
            ScalarType::I8 | ScalarType::U8 => 1,
            ScalarType::I16 | ScalarType::U16 => 2,
            ScalarType::I32 | ScalarType::U32 | ScalarType::F32 => 4,
            ScalarType::I64 | ScalarType::U64 | ScalarType::F64 => 8,
        }
    }

    /// The NRRD name (`int16`, `float`, ...).
    pub fn nrrd_name(self) -> &'static str {
        match self {
            ScalarType::I8 => "int8",
            ScalarType::U8 => "uint8",
            ScalarType::I16 => "int16",
            ScalarType::U16 => "uint16",
            ScalarType::I32 => "int32",
            ScalarType::U32 => "uint32",
            ScalarType::I64 => "int64",
            ScalarType::U64 => "uint64",
            ScalarType::F32 => "float",
            ScalarType::F64 => "double",
        }
    }

    /// Every spelling the NRRD specification accepts for a type.
    pub fn from_nrrd(name: &str) -> Option<Self> {
        let t = match name {
            "signed char" | "int8" | "int8_t" => ScalarType::I8,
            "uchar" | "unsigned char" | "uint8" | "uint8_t" => ScalarType::U8,
            "short" | "short int" | "signed short" | "signed short int" | "int16" | "int16_t" => {
                ScalarType::I16
            }
            "ushort" | "unsigned short" | "unsigned short int" | "uint16" | "uint16_t" => {
                ScalarType::U16
            }
            "int" | "signed int" | "int32" | "int32_t" => ScalarType::I32,
            "uint" | "unsigned int" | "uint32" | "uint32_t" => ScalarType::U32,
            "longlong"
            | "long long"
            | "long long int"
            | "signed long long"
            | "signed long long int"
            | "int64"
            | "int64_t" => ScalarType::I64,
            "ulonglong"
            | "unsigned long long"
            | "unsigned long long int"
            | "uint64"
            | "uint64_t" => ScalarType::U64,
            "float" => ScalarType::F32,
            "double" => ScalarType::F64,
            _ => return None,
        };
        Some(t)
    }

    pub fn of(voxels: &Voxels) -> Self {
        match voxels {
            Voxels::I8(_) => ScalarType::I8,
            Voxels::U8(_) => ScalarType::U8,
            Voxels::I16(_) => ScalarType::I16,
            Voxels::U16(_) => ScalarType::U16,
            Voxels::I32(_) => ScalarType::I32,
            Voxels::U32(_) => ScalarType::U32,
            Voxels::I64(_) => ScalarType::I64,
            Voxels::U64(_) => ScalarType::U64,
            Voxels::F32(_) => ScalarType::F32,
            Voxels::F64(_) => ScalarType::F64,
        }
    }
}

macro_rules! decode_as {
    ($bytes:expr, $endian:expr, $t:ty) => {{
        const N: usize = std::mem::size_of::<$t>();
        $bytes
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                match $endian {
                    Endian::Little => <$t>::from_le_bytes(a),
                    Endian::Big => <$t>::from_be_bytes(a),
                }
            })
            .collect()
    }};
}

/// Values from bytes; `bytes.len()` must be a multiple of the type size (the rest is ignored).
pub fn decode(bytes: &[u8], scalar: ScalarType, endian: Endian) -> Voxels {
    match scalar {
        ScalarType::I8 => Voxels::I8(bytes.iter().map(|&b| b as i8).collect()),
        ScalarType::U8 => Voxels::U8(bytes.to_vec()),
        ScalarType::I16 => Voxels::I16(decode_as!(bytes, endian, i16)),
        ScalarType::U16 => Voxels::U16(decode_as!(bytes, endian, u16)),
        ScalarType::I32 => Voxels::I32(decode_as!(bytes, endian, i32)),
        ScalarType::U32 => Voxels::U32(decode_as!(bytes, endian, u32)),
        ScalarType::I64 => Voxels::I64(decode_as!(bytes, endian, i64)),
        ScalarType::U64 => Voxels::U64(decode_as!(bytes, endian, u64)),
        ScalarType::F32 => Voxels::F32(decode_as!(bytes, endian, f32)),
        ScalarType::F64 => Voxels::F64(decode_as!(bytes, endian, f64)),
    }
}

macro_rules! encode_from {
    ($v:expr, $endian:expr, $t:ty) => {{
        let mut out = Vec::with_capacity($v.len() * std::mem::size_of::<$t>());
        for x in $v.iter() {
            match $endian {
                Endian::Little => out.extend_from_slice(&x.to_le_bytes()),
                Endian::Big => out.extend_from_slice(&x.to_be_bytes()),
            }
        }
        out
    }};
}

/// Bytes of every value in the given byte order.
pub fn encode(voxels: &Voxels, endian: Endian) -> Vec<u8> {
    match voxels {
        Voxels::I8(v) => v.iter().map(|&x| x as u8).collect(),
        Voxels::U8(v) => v.clone(),
        Voxels::I16(v) => encode_from!(v, endian, i16),
        Voxels::U16(v) => encode_from!(v, endian, u16),
        Voxels::I32(v) => encode_from!(v, endian, i32),
        Voxels::U32(v) => encode_from!(v, endian, u32),
        Voxels::I64(v) => encode_from!(v, endian, i64),
        Voxels::U64(v) => encode_from!(v, endian, u64),
        Voxels::F32(v) => encode_from!(v, endian, f32),
        Voxels::F64(v) => encode_from!(v, endian, f64),
    }
}

macro_rules! parse_all {
    ($tokens:expr, $t:ty) => {{
        let mut out: Vec<$t> = Vec::new();
        for tok in $tokens {
            out.push(tok.parse::<$t>().map_err(|_| tok.to_string())?);
        }
        out
    }};
}

/// Values from text tokens (the NRRD `ascii` encoding). The error holds the bad token.
pub fn parse_tokens<'a>(
    tokens: impl Iterator<Item = &'a str>,
    scalar: ScalarType,
) -> Result<Voxels, String> {
    let parse_float = |tok: &str| -> Option<f64> {
        match tok.to_ascii_lowercase().as_str() {
            "nan" => Some(f64::NAN),
            "inf" | "+inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            _ => tok.parse::<f64>().ok(),
        }
    };
    Ok(match scalar {
        ScalarType::I8 => Voxels::I8(parse_all!(tokens, i8)),
        ScalarType::U8 => Voxels::U8(parse_all!(tokens, u8)),
        ScalarType::I16 => Voxels::I16(parse_all!(tokens, i16)),
        ScalarType::U16 => Voxels::U16(parse_all!(tokens, u16)),
        ScalarType::I32 => Voxels::I32(parse_all!(tokens, i32)),
        ScalarType::U32 => Voxels::U32(parse_all!(tokens, u32)),
        ScalarType::I64 => Voxels::I64(parse_all!(tokens, i64)),
        ScalarType::U64 => Voxels::U64(parse_all!(tokens, u64)),
        ScalarType::F32 => {
            let mut out = Vec::new();
            for tok in tokens {
                let x = parse_float(tok).ok_or_else(|| tok.to_string())?;
                out.push(if x.is_nan() {
                    f32::NAN
                } else {
                    tok.parse::<f32>().unwrap_or(x as f32)
                });
            }
            Voxels::F32(out)
        }
        ScalarType::F64 => {
            let mut out = Vec::new();
            for tok in tokens {
                out.push(parse_float(tok).ok_or_else(|| tok.to_string())?);
            }
            Voxels::F64(out)
        }
    })
}

/// Every value as text, one token each (shortest form that reads back to the same value).
pub fn format_values(voxels: &Voxels) -> Vec<String> {
    fn fmt<T: ToString>(v: &[T]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }
    match voxels {
        Voxels::I8(v) => fmt(v),
        Voxels::U8(v) => fmt(v),
        Voxels::I16(v) => fmt(v),
        Voxels::U16(v) => fmt(v),
        Voxels::I32(v) => fmt(v),
        Voxels::U32(v) => fmt(v),
        Voxels::I64(v) => fmt(v),
        Voxels::U64(v) => fmt(v),
        Voxels::F32(v) => fmt(v),
        Voxels::F64(v) => fmt(v),
    }
}

/// `$body` (generic over the element type, with the values bound to `$v`) on every variant,
/// its result wrapped in the same variant.
macro_rules! map_each_variant {
    ($voxels:expr, $v:ident => $body:expr) => {
        match $voxels {
            Voxels::I8($v) => Voxels::I8($body),
            Voxels::U8($v) => Voxels::U8($body),
            Voxels::I16($v) => Voxels::I16($body),
            Voxels::U16($v) => Voxels::U16($body),
            Voxels::I32($v) => Voxels::I32($body),
            Voxels::U32($v) => Voxels::U32($body),
            Voxels::I64($v) => Voxels::I64($body),
            Voxels::U64($v) => Voxels::U64($body),
            Voxels::F32($v) => Voxels::F32($body),
            Voxels::F64($v) => Voxels::F64($body),
        }
    };
}

/// Reorders interleaved values so that the axis `from` of `sizes` (row-major from the fastest
/// axis) becomes the fastest axis. Used to put channels first.
pub fn move_axis_first(voxels: &Voxels, sizes: &[usize], from: usize) -> Voxels {
    map_each_variant!(voxels, v => permute(&v[..], sizes, from))
}

/// Inverse of [`move_axis_first`]: the fastest axis becomes axis `to` of `sizes` (the sizes
/// of the result, fastest first).
pub fn move_first_axis_to(voxels: &Voxels, sizes: &[usize], to: usize) -> Voxels {
    map_each_variant!(voxels, v => unpermute(&v[..], sizes, to))
}

/// `sizes` are the source sizes (fastest first); the result has axis `from` fastest, the others
/// in their order.
fn permute<T: Copy>(src: &[T], sizes: &[usize], from: usize) -> Vec<T> {
    let inner: usize = sizes[..from].iter().product();
    let n = sizes[from];
    let outer: usize = sizes[from + 1..].iter().product();
    let mut out = Vec::with_capacity(src.len());
    for o in 0..outer {
        for i in 0..inner {
            for c in 0..n {
                out.push(src[(o * n + c) * inner + i]);
            }
        }
    }
    out
}

/// `sizes` are the result sizes (fastest first); the source has axis `to` fastest.
fn unpermute<T: Copy>(src: &[T], sizes: &[usize], to: usize) -> Vec<T> {
    let inner: usize = sizes[..to].iter().product();
    let n = sizes[to];
    let outer: usize = sizes[to + 1..].iter().product();
    let mut out = Vec::with_capacity(src.len());
    for o in 0..outer {
        for c in 0..n {
            for i in 0..inner {
                out.push(src[(o * inner + i) * n + c]);
            }
        }
    }
    out
}
