//! NIfTI-1 (`.nii`, `.nii.gz`): the header is parsed by the `nifti` crate, the payload and the
//! geometry here; the writer is our own (the crate writes only from `ndarray` arrays).
//!
//! NIfTI world space is RAS; ours is LPS, so the first two rows of every affine change sign.
//! The reader takes the sform when `sform_code > 0`, else the qform when `qform_code > 0`,
//! else the voxel sizes alone. The writer stores both forms (codes 1, scanner); NIfTI keeps
//! them in f32, so geometry survives a round trip to about 1e-7 relative.

use std::io::{Read, Write};
use std::path::Path;

use nifti::{NiftiHeader, NiftiType};

use super::scalar::{self, move_axis_first, move_first_axis_to, Endian, ScalarType};
use super::{write_atomic, IoError, Volume, Voxels};

const HEADER_SIZE: usize = 348;
const DATA_OFFSET: usize = 352;

fn nifti_error(path: &Path, message: impl Into<String>) -> IoError {
    IoError::Nifti {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn is_gz(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// Reads a `.nii` or `.nii.gz` file; `max_bytes` bounds the decoded payload.
pub fn read_nifti(path: &Path, max_bytes: u64) -> Result<Volume, IoError> {
    let file = std::fs::File::open(path).map_err(|e| IoError::io(path, e))?;
    let mut stream: Box<dyn Read> = if is_gz(path) {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            file,
        )))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let mut head = vec![0u8; HEADER_SIZE];
    stream
        .read_exact(&mut head)
        .map_err(|e| IoError::io(path, e))?;
    let header =
        NiftiHeader::from_reader(&head[..]).map_err(|e| nifti_error(path, e.to_string()))?;

    let (scalar, type_name) = match header.data_type() {
        Ok(NiftiType::Uint8) => (ScalarType::U8, "uint8"),
        Ok(NiftiType::Int8) => (ScalarType::I8, "int8"),
        Ok(NiftiType::Int16) => (ScalarType::I16, "int16"),
        Ok(NiftiType::Uint16) => (ScalarType::U16, "uint16"),
        Ok(NiftiType::Int32) => (ScalarType::I32, "int32"),
        Ok(NiftiType::Uint32) => (ScalarType::U32, "uint32"),
        Ok(NiftiType::Int64) => (ScalarType::I64, "int64"),
        Ok(NiftiType::Uint64) => (ScalarType::U64, "uint64"),
        Ok(NiftiType::Float32) => (ScalarType::F32, "float"),
        Ok(NiftiType::Float64) => (ScalarType::F64, "double"),
        other => {
            let msg = format!("datatype {} ({other:?}) is not supported", header.datatype);
            return Err(nifti_error(path, msg));
        }
    };

    let ndim = header.dim[0] as usize;
    if !(1..=7).contains(&ndim) || header.dim[1..=ndim].contains(&0) {
        return Err(nifti_error(
            path,
            format!("dim {:?} is not valid", header.dim),
        ));
    }
    let mut sizes = [1usize; 3];
    for (a, s) in sizes.iter_mut().enumerate().take(ndim.min(3)) {
        *s = header.dim[a + 1] as usize;
    }
    let channels: usize = header.dim[4..=ndim.max(3)]
        .iter()
        .map(|&d| d as usize)
        .product();
    let all_sizes: Vec<usize> = header.dim[1..=ndim].iter().map(|&d| d as usize).collect();
    let bytes = sizes.iter().product::<usize>() as u128 * channels as u128 * scalar.size() as u128;
    if bytes > max_bytes as u128 {
        return Err(IoError::TooLarge {
            path: path.to_path_buf(),
            sizes: all_sizes,
            type_name: type_name.into(),
            bytes,
            limit: max_bytes,
        });
    }
    let offset = header.vox_offset;
    if !(offset >= HEADER_SIZE as f32 && offset < 1e9) {
        return Err(nifti_error(
            path,
            format!("vox_offset {offset} is not valid"),
        ));
    }
    let skip = offset as u64 - HEADER_SIZE as u64;
    std::io::copy(&mut (&mut stream).take(skip), &mut std::io::sink())
        .map_err(|e| IoError::io(path, e))?;
    let mut payload = Vec::new();
    stream
        .take(bytes as u64 + 1)
        .read_to_end(&mut payload)
        .map_err(|e| IoError::io(path, e))?;
    if payload.len() as u128 != bytes {
        return Err(IoError::DataLength {
            path: path.to_path_buf(),
            sizes: all_sizes,
            type_name: type_name.into(),
            expected: bytes as u64,
            got: payload.len() as u64,
        });
    }

    let endian = match header.endianness {
        nifti::Endianness::Little => Endian::Little,
        nifti::Endianness::Big => Endian::Big,
    };
    let mut voxels = scalar::decode(&payload, scalar, endian);
    if channels > 1 {
        voxels = move_axis_first(&voxels, &[sizes[0], sizes[1], sizes[2], channels], 3);
    }
    let (slope, inter) = (header.scl_slope, header.scl_inter);
    if slope != 0.0 && slope.is_finite() && inter.is_finite() && (slope, inter) != (1.0, 0.0) {
        voxels = match voxels {
            Voxels::F64(v) => {
                Voxels::F64(v.iter().map(|&x| x * slope as f64 + inter as f64).collect())
            }
            other => Voxels::F32(other.to_f32().iter().map(|&x| x * slope + inter).collect()),
        };
    }

    let (spacing, direction, origin) = ras_geometry(&header, path)?;
    Ok(Volume {
        sizes,
        channels,
        voxels,
        spacing,
        origin,
        direction,
        key_values: Vec::new(),
    })
}

/// Spacing, directions (columns) and origin.
type Geometry = ([f64; 3], [[f64; 3]; 3], [f64; 3]);

/// The geometry in LPS of a NIfTI header.
fn ras_geometry(h: &NiftiHeader, path: &Path) -> Result<Geometry, IoError> {
    let mut m = [[0.0f64; 3]; 3];
    let mut t = [0.0f64; 3];
    if h.sform_code > 0 {
        for (r, row) in [h.srow_x, h.srow_y, h.srow_z].iter().enumerate() {
            for c in 0..3 {
                m[r][c] = row[c] as f64;
            }
            t[r] = row[3] as f64;
        }
    } else if h.qform_code > 0 {
        let (b, c, d) = (h.quatern_b as f64, h.quatern_c as f64, h.quatern_d as f64);
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        let rot = [
            [
                a * a + b * b - c * c - d * d,
                2.0 * (b * c - a * d),
                2.0 * (b * d + a * c),
            ],
            [
                2.0 * (b * c + a * d),
                a * a + c * c - b * b - d * d,
                2.0 * (c * d - a * b),
            ],
            [
                2.0 * (b * d - a * c),
                2.0 * (c * d + a * b),
                a * a + d * d - c * c - b * b,
            ],
        ];
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        for r in 0..3 {
            for col in 0..3 {
                let s = h.pixdim[col + 1] as f64 * if col == 2 { qfac } else { 1.0 };
                m[r][col] = rot[r][col] * s;
            }
        }
        t = [h.quatern_x as f64, h.quatern_y as f64, h.quatern_z as f64];
    } else {
        for (a, row) in m.iter_mut().enumerate() {
            row[a] = h.pixdim[a + 1] as f64;
        }
    }

    // RAS → LPS: negate the x and y rows.
    for r in 0..2 {
        t[r] = -t[r];
        for x in &mut m[r] {
            *x = -*x;
        }
    }
    let mut spacing = [0.0; 3];
    let mut direction = [[0.0; 3]; 3];
    for c in 0..3 {
        let norm = (m[0][c].powi(2) + m[1][c].powi(2) + m[2][c].powi(2)).sqrt();
        if !(norm > 0.0 && norm.is_finite()) {
            return Err(nifti_error(
                path,
                format!("axis {c} of the affine has length {norm}"),
            ));
        }
        spacing[c] = norm;
        for r in 0..3 {
            direction[r][c] = m[r][c] / norm;
        }
    }
    if t.iter().any(|x| !x.is_finite()) {
        return Err(nifti_error(path, format!("origin {t:?} is not finite")));
    }
    Ok((spacing, direction, t))
}

fn datatype_code(scalar: ScalarType) -> i16 {
    match scalar {
        ScalarType::U8 => 2,
        ScalarType::I16 => 4,
        ScalarType::I32 => 8,
        ScalarType::F32 => 16,
        ScalarType::F64 => 64,
        ScalarType::I8 => 256,
        ScalarType::U16 => 512,
        ScalarType::U32 => 768,
        ScalarType::I64 => 1024,
        ScalarType::U64 => 1280,
    }
}

/// Quaternion (b, c, d) and qfac of a direction matrix given in RAS.
fn quaternion(dir_ras: [[f64; 3]; 3]) -> ([f64; 3], f64) {
    let mut r = dir_ras;
    let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
        - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
        + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
    let qfac = if det < 0.0 { -1.0 } else { 1.0 };
    for row in r.iter_mut() {
        row[2] *= qfac;
    }
    let trace = r[0][0] + r[1][1] + r[2][2];
    let (a, b, c, d);
    if trace > 0.0 {
        let s = (trace + 1.0).sqrt() * 2.0;
        a = 0.25 * s;
        b = (r[2][1] - r[1][2]) / s;
        c = (r[0][2] - r[2][0]) / s;
        d = (r[1][0] - r[0][1]) / s;
    } else if r[0][0] > r[1][1] && r[0][0] > r[2][2] {
        let s = (1.0 + r[0][0] - r[1][1] - r[2][2]).max(0.0).sqrt() * 2.0;
        a = (r[2][1] - r[1][2]) / s;
        b = 0.25 * s;
        c = (r[0][1] + r[1][0]) / s;
        d = (r[0][2] + r[2][0]) / s;
    } else if r[1][1] > r[2][2] {
        let s = (1.0 + r[1][1] - r[0][0] - r[2][2]).max(0.0).sqrt() * 2.0;
        a = (r[0][2] - r[2][0]) / s;
        b = (r[0][1] + r[1][0]) / s;
        c = 0.25 * s;
        d = (r[1][2] + r[2][1]) / s;
    } else {
        let s = (1.0 + r[2][2] - r[0][0] - r[1][1]).max(0.0).sqrt() * 2.0;
        a = (r[1][0] - r[0][1]) / s;
        b = (r[0][2] + r[2][0]) / s;
        c = (r[1][2] + r[2][1]) / s;
        d = 0.25 * s;
    }
    let sign = if a < 0.0 { -1.0 } else { 1.0 };
    ([b * sign, c * sign, d * sign], qfac)
}

/// Writes a single-file NIfTI-1 (`.nii`, or gzip-compressed `.nii.gz`), little-endian.
pub fn write_nifti(path: &Path, volume: &Volume) -> Result<(), IoError> {
    let fail = |message: String| IoError::Write {
        path: path.to_path_buf(),
        message,
    };
    let n = volume.voxel_count() * volume.channels;
    if volume.voxels.len() != n || n == 0 {
        return Err(fail(format!(
            "{} voxels for sizes {:?}",
            volume.voxels.len(),
            volume.sizes
        )));
    }
    if volume
        .sizes
        .iter()
        .chain([&volume.channels])
        .any(|&s| s > i16::MAX as usize)
    {
        return Err(fail(format!(
            "NIfTI-1 sizes stop at 32767, got {:?}",
            volume.sizes
        )));
    }
    let scalar = ScalarType::of(&volume.voxels);

    // LPS → RAS affine: negate the x and y rows.
    let flip = [-1.0, -1.0, 1.0];
    let mut dir_ras = [[0.0; 3]; 3];
    let mut affine = [[0.0f64; 4]; 3];
    for r in 0..3 {
        for c in 0..3 {
            dir_ras[r][c] = volume.direction[r][c] * flip[r];
            affine[r][c] = dir_ras[r][c] * volume.spacing[c];
        }
        affine[r][3] = volume.origin[r] * flip[r];
    }
    let (q, qfac) = quaternion(dir_ras);

    let mut h = vec![0u8; DATA_OFFSET];
    let put_i16 = |h: &mut [u8], at: usize, v: i16| h[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 = |h: &mut [u8], at: usize, v: f32| h[at..at + 4].copy_from_slice(&v.to_le_bytes());
    h[0..4].copy_from_slice(&(HEADER_SIZE as i32).to_le_bytes());
    h[38] = b'r';
    let ndim: i16 = if volume.channels > 1 { 5 } else { 3 };
    let dims = [
        ndim,
        volume.sizes[0] as i16,
        volume.sizes[1] as i16,
        volume.sizes[2] as i16,
    ];
    for (i, d) in dims
        .iter()
        .chain(&[1, volume.channels as i16, 1, 1])
        .enumerate()
    {
        put_i16(&mut h, 40 + 2 * i, *d);
    }
    if volume.channels > 1 {
        put_i16(&mut h, 68, 1007); // intent: vector
    }
    put_i16(&mut h, 70, datatype_code(scalar));
    put_i16(&mut h, 72, (scalar.size() * 8) as i16);
    let pixdim = [
        qfac,
        volume.spacing[0],
        volume.spacing[1],
        volume.spacing[2],
        1.0,
        1.0,
        1.0,
        1.0,
    ];
    for (i, p) in pixdim.iter().enumerate() {
        put_f32(&mut h, 76 + 4 * i, *p as f32);
    }
    put_f32(&mut h, 108, DATA_OFFSET as f32);
    put_f32(&mut h, 112, 1.0);
    h[123] = 2; // xyzt_units: millimetres
    let descrip = b"written by enamel";
    h[148..148 + descrip.len()].copy_from_slice(descrip);
    put_i16(&mut h, 252, 1);
    put_i16(&mut h, 254, 1);
    for (i, v) in q
        .iter()
        .chain(&[affine[0][3], affine[1][3], affine[2][3]])
        .enumerate()
    {
        put_f32(&mut h, 256 + 4 * i, *v as f32);
    }
    for (r, row) in affine.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            put_f32(&mut h, 280 + 16 * r + 4 * c, *v as f32);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");

    let ordered = if volume.channels > 1 {
        let s = volume.sizes;
        move_first_axis_to(&volume.voxels, &[s[0], s[1], s[2], volume.channels], 3)
    } else {
        volume.voxels.clone()
    };
    h.extend_from_slice(&scalar::encode(&ordered, Endian::Little));
    if is_gz(path) {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        enc.write_all(&h).map_err(|e| IoError::io(path, e))?;
        h = enc.finish().map_err(|e| IoError::io(path, e))?;
    }
    write_atomic(path, &h)
}
