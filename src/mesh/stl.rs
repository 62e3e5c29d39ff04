//! Binary STL: an 80-byte header, a little-endian u32 triangle count, then 50 bytes per
//! triangle (normal, three vertices, all f32, and a u16 attribute word).

use std::path::Path;

use super::{Mesh, MeshError};
use crate::nn::checkpoint::write_atomic;

const HEADER_BYTES: usize = 80;
const TRIANGLE_BYTES: usize = 50;

/// What [`write_stl`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct StlSummary {
    pub triangles: usize,
    pub bytes: usize,
    /// Set when the mesh had no triangles (the file is then a valid, empty 84-byte STL).
    pub warning: Option<String>,
}

/// The contents of a binary STL file.
#[derive(Clone, Debug, PartialEq)]
pub struct Stl {
    /// The header with trailing NUL bytes and spaces removed.
    pub header: String,
    pub triangles: Vec<[[f32; 3]; 3]>,
    pub normals: Vec<[f32; 3]>,
}

/// Writes `mesh` as a binary STL with a unit normal per triangle, all at once (temporary file,
/// then rename). The header names the writer and `name`, and never starts with "solid" (which
/// would make readers take the file for ASCII STL). A mesh without triangles gives a valid
/// 84-byte file and a warning naming `name`, returned and logged.
pub fn write_stl(path: &Path, mesh: &Mesh, name: &str) -> Result<StlSummary, MeshError> {
    let mut bytes = Vec::with_capacity(HEADER_BYTES + 4 + TRIANGLE_BYTES * mesh.triangles.len());

    let mut header = format!("enamel binary STL: {name}").into_bytes();
    header.resize(HEADER_BYTES, b' ');
    bytes.extend_from_slice(&header);

    let count = u32::try_from(mesh.triangles.len()).map_err(|_| MeshError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} triangles exceed the STL limit of 2^32 − 1",
                mesh.triangles.len()
            ),
        ),
    })?;
    bytes.extend_from_slice(&count.to_le_bytes());

    for (triangle, normal) in mesh.triangles.iter().zip(mesh.normals()) {
        for x in normal {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        for &v in triangle {
            for x in mesh.vertices[v as usize] {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
        bytes.extend_from_slice(&0u16.to_le_bytes());
    }

    write_atomic(path, &bytes).map_err(|source| MeshError::Io {
        path: path.to_path_buf(),
        source,
    })?;

    let warning = mesh.triangles.is_empty().then(|| {
        let message = format!("{name}: no surface, wrote an empty STL {}", path.display());
        tracing::warn!("{message}");
        message
    });
    Ok(StlSummary {
        triangles: mesh.triangles.len(),
        bytes: bytes.len(),
        warning,
    })
}

/// Reads a binary STL file. A file whose size does not match its triangle count is an error
/// naming the file and both sizes.
pub fn read_stl(path: &Path) -> Result<Stl, MeshError> {
    let bytes = std::fs::read(path).map_err(|source| MeshError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let actual = bytes.len() as u64;
    if bytes.len() < HEADER_BYTES + 4 {
        return Err(MeshError::StlTooShort {
            path: path.to_path_buf(),
            actual,
        });
    }

    let count = u32::from_le_bytes(read4(&bytes, HEADER_BYTES)) as u64;
    let expected = (HEADER_BYTES + 4) as u64 + count * TRIANGLE_BYTES as u64;
    if actual != expected {
        if bytes.starts_with(b"solid") {
            return Err(MeshError::AsciiStl {
                path: path.to_path_buf(),
            });
        }
        return Err(MeshError::StlSize {
            path: path.to_path_buf(),
            triangles: count,
            expected,
            actual,
        });
    }

    let header = String::from_utf8_lossy(&bytes[..HEADER_BYTES])
        .trim_end_matches(['\0', ' '])
        .to_string();
    let mut triangles = Vec::with_capacity(count as usize);
    let mut normals = Vec::with_capacity(count as usize);
    for record in bytes[HEADER_BYTES + 4..].chunks_exact(TRIANGLE_BYTES) {
        let vector = |n: usize| -> [f32; 3] {
            std::array::from_fn(|a| f32::from_le_bytes(read4(record, 12 * n + 4 * a)))
        };
        normals.push(vector(0));
        triangles.push([vector(1), vector(2), vector(3)]);
    }
    Ok(Stl {
        header,
        triangles,
        normals,
    })
}

fn read4(bytes: &[u8], at: usize) -> [u8; 4] {
    [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]
}
