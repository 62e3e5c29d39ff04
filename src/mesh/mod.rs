//! Triangle meshes of label maps: an isosurface extractor that always gives closed, consistently
//! oriented surfaces ([`isosurface`]), the world-space surface of one label ([`label_surface`]),
//! and binary STL files ([`write_stl`], [`read_stl`]).

pub(crate) mod labels;
mod stl;
mod tetra;

use std::collections::HashMap;
use std::path::PathBuf;

use thiserror::Error;

pub use labels::{label_surface, label_surfaces, labels_present};
pub use stl::{read_stl, write_stl, Stl, StlSummary};
pub use tetra::isosurface;

/// What can go wrong when meshes are read or written, or labels are collected for meshing.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MeshError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "{path}: truncated or oversized STL: {triangles} triangles need {expected} bytes, \
         the file has {actual}"
    )]
    StlSize {
        path: PathBuf,
        triangles: u64,
        expected: u64,
        actual: u64,
    },

    #[error("{path}: too short for a binary STL ({actual} bytes, at least 84 are needed)")]
    StlTooShort { path: PathBuf, actual: u64 },

    #[error(
        "{path}: ASCII STL is not supported (the file starts with \"solid\" and its size does \
         not match a binary STL)"
    )]
    AsciiStl { path: PathBuf },

    #[error("label map has {channels} channels per voxel, expected 1")]
    Channels { channels: usize },

    #[error(
        "label map value {value} at voxel ({i}, {j}, {k}) is not a label (labels are whole \
         numbers from 0 to 4294967295)"
    )]
    NotALabel {
        value: f64,
        i: usize,
        j: usize,
        k: usize,
    },
}

/// A triangle mesh with shared vertices. Triangles list vertex indices counter-clockwise when
/// seen from outside, so `(b − a) × (c − a)` points outward.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mesh {
    pub vertices: Vec<[f32; 3]>,
    pub triangles: Vec<[u32; 3]>,
}

impl Mesh {
    /// The unit normal of every triangle, from its winding; a degenerate triangle (zero area)
    /// gets the zero vector.
    pub fn normals(&self) -> Vec<[f32; 3]> {
        self.triangles
            .iter()
            .map(|t| triangle_normal(t.map(|v| self.vertices[v as usize])))
            .collect()
    }

    /// `V − E + F`; 2 for each closed surface of sphere topology, 0 for a torus.
    pub fn euler_characteristic(&self) -> i64 {
        let mut edges = std::collections::HashSet::new();
        for t in &self.triangles {
            for (a, b) in triangle_edges(t) {
                edges.insert((a.min(b), a.max(b)));
            }
        }
        self.vertices.len() as i64 - edges.len() as i64 + self.triangles.len() as i64
    }

    /// True when every undirected edge belongs to exactly two triangles that run along it in
    /// opposite directions: the surface has no holes and a consistent orientation.
    pub fn is_closed(&self) -> bool {
        let mut directed: HashMap<(u32, u32), u32> = HashMap::new();
        for t in &self.triangles {
            for edge in triangle_edges(t) {
                *directed.entry(edge).or_default() += 1;
            }
        }
        directed
            .iter()
            .all(|(&(a, b), &count)| count == 1 && a != b && directed.get(&(b, a)) == Some(&1))
    }

    /// The enclosed volume by the divergence theorem: positive when the normals point outward.
    pub fn signed_volume(&self) -> f64 {
        let mut sum = 0.0;
        for t in &self.triangles {
            let [a, b, c] = t.map(|v| self.vertices[v as usize].map(f64::from));
            sum += a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0])
                + a[2] * (b[0] * c[1] - b[1] * c[0]);
        }
        sum / 6.0
    }

    /// The smallest and largest coordinate on each axis, or None for a mesh without vertices.
    pub fn bounds(&self) -> Option<([f32; 3], [f32; 3])> {
        let first = *self.vertices.first()?;
        Some(self.vertices.iter().fold((first, first), |(lo, hi), v| {
            (
                [lo[0].min(v[0]), lo[1].min(v[1]), lo[2].min(v[2])],
                [hi[0].max(v[0]), hi[1].max(v[1]), hi[2].max(v[2])],
            )
        }))
    }
}

fn triangle_edges(t: &[u32; 3]) -> [(u32, u32); 3] {
    [(t[0], t[1]), (t[1], t[2]), (t[2], t[0])]
}

/// The unit normal of the triangle `(a, b, c)`, or zero when it has no area.
pub(crate) fn triangle_normal([a, b, c]: [[f32; 3]; 3]) -> [f32; 3] {
    let u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]].map(f64::from);
    let v = [c[0] - a[0], c[1] - a[1], c[2] - a[2]].map(f64::from);
    let n = [
        u[1] * v[2] - u[2] * v[1],
        u[2] * v[0] - u[0] * v[2],
        u[0] * v[1] - u[1] * v[0],
    ];
    let length = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
    if length > 0.0 && length.is_finite() {
        n.map(|x| (x / length) as f32)
    } else {
        [0.0; 3]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit cube with outward winding: 8 vertices, 12 triangles.
    fn cube() -> Mesh {
        let vertices = (0..8)
            .map(|n| [(n & 1) as f32, ((n >> 1) & 1) as f32, ((n >> 2) & 1) as f32])
            .collect();
        let triangles = vec![
            [0, 2, 1],
            [1, 2, 3],
            [4, 5, 6],
            [5, 7, 6],
            [0, 1, 4],
            [1, 5, 4],
            [2, 6, 3],
            [3, 6, 7],
            [0, 4, 2],
            [2, 4, 6],
            [1, 3, 5],
            [3, 7, 5],
        ];
        Mesh {
            vertices,
            triangles,
        }
    }

    #[test]
    fn unit_cube_is_closed_with_outward_normals() {
        let mesh = cube();
        assert!(mesh.is_closed());
        assert_eq!(mesh.euler_characteristic(), 2);
        assert!((mesh.signed_volume() - 1.0).abs() < 1e-12);
        assert_eq!(mesh.bounds(), Some(([0.0; 3], [1.0; 3])));

        // Each normal points away from the cube's centre.
        for (t, n) in mesh.triangles.iter().zip(mesh.normals()) {
            let centre: Vec<f32> = (0..3)
                .map(|a| t.iter().map(|&v| mesh.vertices[v as usize][a]).sum::<f32>() / 3.0)
                .collect();
            let out: f32 = (0..3).map(|a| (centre[a] - 0.5) * n[a]).sum();
            assert!(out > 0.0, "triangle {t:?} normal {n:?}");
            assert!((n.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn a_hole_or_a_flipped_triangle_is_not_closed() {
        let mut holed = cube();
        holed.triangles.pop();
        assert!(!holed.is_closed());

        let mut flipped = cube();
        flipped.triangles[0].swap(1, 2);
        assert!(!flipped.is_closed());
    }

    #[test]
    fn degenerate_triangle_has_zero_normal() {
        let n = triangle_normal([[0.0; 3], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]);
        assert_eq!(n, [0.0; 3]);
    }
}
