//! Isosurfaces by marching tetrahedra.
//!
//! Every grid cube is split into the same six tetrahedra around its main diagonal (the Kuhn
//! split). Neighbouring cubes then cut their shared face along the same diagonal, so the pieces
//! of surface meet edge to edge and there are no ambiguous cases: inside one tetrahedron the
//! level set of the linear interpolant is a single triangle or a single quadrilateral. The
//! surface is therefore closed and a manifold for every input, unlike the classic 256-case
//! marching cubes table, whose ambiguous faces can leave holes.

use std::collections::HashMap;

use super::Mesh;

/// The six tetrahedra of a cube, as corner numbers `x + 2y + 4z`. Each goes from corner 0 to
/// corner 7 one axis step at a time, and each is listed with positive orientation
/// (`det(v1 − v0, v2 − v0, v3 − v0) > 0`); the three odd axis orders have their last two
/// corners swapped for that.
pub(crate) const TETRAHEDRA: [[u8; 4]; 6] = [
    [0, 1, 3, 7],
    [0, 2, 6, 7],
    [0, 4, 5, 7],
    [0, 1, 7, 5],
    [0, 4, 7, 6],
    [0, 2, 7, 3],
];

/// Keeps edge vertices off the grid points, where several edges would share one position and
/// give triangles of zero area. A thousandth of a voxel is far below any meaningful accuracy.
const MIN_FRACTION: f64 = 1e-3;

/// The surface where `values` (i fastest, then j, then k) cross `level`, in index coordinates.
///
/// A point is inside when its value is above `level`. Everything beyond the grid counts as
/// outside, as if the grid were padded by one voxel, so a surface that touches the border still
/// closes. Vertices are interpolated linearly along the edges of the tetrahedra (the grid edges
/// and the cube and face diagonals), one vertex per crossed edge, and kept at least a
/// thousandth of the edge away from its ends; an edge to the padding or to a NaN value (also
/// outside) is crossed halfway. Triangles wind counter-clockwise seen from outside, so their
/// normals point away from the values above the level.
///
/// # Panics
/// When `values.len()` is not `sizes[0] · sizes[1] · sizes[2]`.
pub fn isosurface(values: &[f32], sizes: [usize; 3], level: f32) -> Mesh {
    let (positions, triangles) = isosurface_f64(values, sizes, level);
    Mesh {
        vertices: positions.iter().map(|p| p.map(|x| x as f32)).collect(),
        triangles,
    }
}

/// [`isosurface`] with vertex positions in f64, for callers that map them further.
pub(crate) fn isosurface_f64(
    values: &[f32],
    sizes: [usize; 3],
    level: f32,
) -> (Vec<[f64; 3]>, Vec<[u32; 3]>) {
    assert_eq!(
        values.len(),
        sizes.iter().product::<usize>(),
        "isosurface: {} values for sizes {sizes:?}",
        values.len()
    );
    let grid = PaddedGrid::new(values, sizes, level);
    let mut builder = Builder {
        grid: &grid,
        edge_vertices: HashMap::new(),
        positions: Vec::new(),
        triangles: Vec::new(),
    };

    // Cubes of the padded grid: corner (x, y, z) with 0 ≤ x ≤ sizes[0] + 1 in padded
    // coordinates, where padded index 1 is the grid's first voxel.
    let [nx, ny, nz] = sizes.map(|n| n + 1);
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                builder.cube([x, y, z]);
            }
        }
    }
    (builder.positions, builder.triangles)
}

/// The values with a conceptual one-voxel border that lies below the level.
struct PaddedGrid<'a> {
    values: &'a [f32],
    sizes: [usize; 3],
    level: f64,
}

impl<'a> PaddedGrid<'a> {
    fn new(values: &'a [f32], sizes: [usize; 3], level: f32) -> Self {
        PaddedGrid {
            values,
            sizes,
            level: f64::from(level),
        }
    }

    /// The value at padded coordinates `p` (grid index + 1), clamped to the f32 range; NaN on
    /// the border (NaN is never above the level, so it is outside).
    fn value(&self, p: [usize; 3]) -> f64 {
        let [x, y, z] = p;
        let [sx, sy, sz] = self.sizes;
        if x == 0 || y == 0 || z == 0 || x > sx || y > sy || z > sz {
            return f64::NAN;
        }
        let v = self.values[((z - 1) * sy + (y - 1)) * sx + (x - 1)];
        f64::from(v.clamp(f32::MIN, f32::MAX))
    }
}

struct Builder<'a, 'g> {
    grid: &'g PaddedGrid<'a>,
    /// Vertex number of each crossed edge, keyed by its lower padded point and its step.
    edge_vertices: HashMap<(usize, u8), u32>,
    positions: Vec<[f64; 3]>,
    triangles: Vec<[u32; 3]>,
}

impl Builder<'_, '_> {
    fn cube(&mut self, origin: [usize; 3]) {
        let corners: [[usize; 3]; 8] = std::array::from_fn(|c| corner_point(origin, c as u8));
        let values = corners.map(|p| self.grid.value(p));
        let inside = values.map(|v| v > self.grid.level);
        if inside.iter().all(|&i| i) || inside.iter().all(|&i| !i) {
            return;
        }

        for tet in TETRAHEDRA {
            let tet_inside = tet.map(|c| inside[c as usize]);
            let count = tet_inside.iter().filter(|&&i| i).count();
            if count == 0 || count == 4 {
                continue;
            }
            // Reorder the tetrahedron as (a, b, c, d) with the same orientation, inside
            // corners first (for three inside: the outside corner first).
            let lone_outside = count == 3;
            let first = |n: usize| tet_inside[n] != lone_outside;
            let order = positive_order(first);
            let [a, b, c, d] = order.map(|n| tet[n] as usize);
            let mut e = |from: usize, to: usize| self.edge_vertex(&corners, &values, from, to);
            match count {
                1 => {
                    let tri = [e(a, b), e(a, c), e(a, d)];
                    self.triangles.push(tri);
                }
                3 => {
                    let tri = [e(a, b), e(a, d), e(a, c)];
                    self.triangles.push(tri);
                }
                _ => {
                    let (ac, ad, bd, bc) = (e(a, c), e(a, d), e(b, d), e(b, c));
                    self.triangles.push([ac, ad, bd]);
                    self.triangles.push([ac, bd, bc]);
                }
            }
        }
    }

    /// The vertex where the edge between cube corners `u` and `w` crosses the level, created
    /// the first time any tetrahedron asks for it.
    fn edge_vertex(
        &mut self,
        corners: &[[usize; 3]; 8],
        values: &[f64; 8],
        u: usize,
        w: usize,
    ) -> u32 {
        // Tetrahedron edges join corners whose bits are nested, so the one with fewer bits is
        // the lower point on every axis.
        let (lo, hi) = if (u as u8).count_ones() < (w as u8).count_ones() {
            (u, w)
        } else {
            (w, u)
        };
        let step = (lo ^ hi) as u8;
        let [sx, sy, _] = self.grid.sizes.map(|n| n + 2);
        let p = corners[lo];
        let key = ((p[2] * sy + p[1]) * sx + p[0], step);
        if let Some(&vertex) = self.edge_vertices.get(&key) {
            return vertex;
        }

        // Measure from the outside end, whose value is ≤ level < the inside value.
        let (out, inn) = if values[lo] > self.grid.level {
            (hi, lo)
        } else {
            (lo, hi)
        };
        // Next to the border or a NaN there is no value to interpolate: cross halfway.
        let t = if values[out].is_nan() {
            0.5
        } else {
            let t = (self.grid.level - values[out]) / (values[inn] - values[out]);
            t.clamp(MIN_FRACTION, 1.0 - MIN_FRACTION)
        };
        let (a, b) = (corners[out], corners[inn]);
        let position: [f64; 3] = std::array::from_fn(|axis| {
            a[axis] as f64 - 1.0 + t * (b[axis] as f64 - a[axis] as f64)
        });

        let vertex = self.positions.len() as u32;
        self.positions.push(position);
        self.edge_vertices.insert(key, vertex);
        vertex
    }
}

/// Padded grid point of corner `c` (bits `x + 2y + 4z`) of the cube at `origin`.
fn corner_point(origin: [usize; 3], c: u8) -> [usize; 3] {
    [
        origin[0] + (c & 1) as usize,
        origin[1] + ((c >> 1) & 1) as usize,
        origin[2] + ((c >> 2) & 1) as usize,
    ]
}

/// A permutation of the positions 0..4 that lists those where `first` holds before the others
/// and is even, so it keeps the tetrahedron's orientation (fixed by swapping two positions of
/// the same group).
fn positive_order(first: impl Fn(usize) -> bool) -> [usize; 4] {
    let chosen: Vec<usize> = (0..4).filter(|&p| first(p)).collect();
    let mut order = [0usize; 4];
    for (slot, p) in order
        .iter_mut()
        .zip(chosen.iter().copied().chain((0..4).filter(|&p| !first(p))))
    {
        *slot = p;
    }
    let inversions = (0..4)
        .flat_map(|i| (i + 1..4).map(move |j| (i, j)))
        .filter(|&(i, j)| order[i] > order[j])
        .count();
    if inversions % 2 == 1 {
        if chosen.len() <= 2 {
            order.swap(2, 3);
        } else {
            order.swap(0, 1);
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corner(c: u8) -> [f64; 3] {
        corner_point([0, 0, 0], c).map(|x| x as f64)
    }

    #[test]
    fn tetrahedra_are_positive_and_fill_the_cube() {
        let mut volume = 0.0;
        for tet in TETRAHEDRA {
            let [p0, p1, p2, p3] = tet.map(corner);
            let u: [f64; 3] = std::array::from_fn(|a| p1[a] - p0[a]);
            let v: [f64; 3] = std::array::from_fn(|a| p2[a] - p0[a]);
            let w: [f64; 3] = std::array::from_fn(|a| p3[a] - p0[a]);
            let det = u[0] * (v[1] * w[2] - v[2] * w[1]) - u[1] * (v[0] * w[2] - v[2] * w[0])
                + u[2] * (v[0] * w[1] - v[1] * w[0]);
            assert_eq!(det, 1.0, "tetrahedron {tet:?}");
            volume += det / 6.0;
            // Consecutive corners differ by one axis step (nested bits).
            for pair in tet.windows(2) {
                let (lo, hi) = (pair[0].min(pair[1]), pair[0].max(pair[1]));
                assert_eq!(lo & hi, lo);
            }
        }
        assert!((volume - 1.0).abs() < 1e-12);
    }

    #[test]
    fn positive_order_is_even_and_puts_chosen_first() {
        for mask in 1u8..15 {
            let first = |n: usize| mask & (1 << n) != 0;
            let order = positive_order(first);
            let chosen = mask.count_ones() as usize;
            assert!(
                order[..chosen].iter().all(|&n| first(n)),
                "{mask:b} {order:?}"
            );
            assert!(
                order[chosen..].iter().all(|&n| !first(n)),
                "{mask:b} {order:?}"
            );
            let mut sorted = order;
            sorted.sort();
            assert_eq!(sorted, [0, 1, 2, 3]);
            let inversions = (0..4)
                .flat_map(|i| (i + 1..4).map(move |j| (i, j)))
                .filter(|&(i, j)| order[i] > order[j])
                .count();
            assert_eq!(inversions % 2, 0);
        }
    }

    #[test]
    fn single_voxel_gives_a_closed_surface_around_it() {
        let mesh = isosurface(&[1.0], [1, 1, 1], 0.5);
        assert!(mesh.is_closed());
        assert_eq!(mesh.euler_characteristic(), 2);
        assert!(mesh.signed_volume() > 0.0);
        let (lo, hi) = mesh.bounds().unwrap();
        assert_eq!(lo, [-0.5; 3]);
        assert_eq!(hi, [0.5; 3]);
    }

    #[test]
    fn crossings_interpolate_inside_and_fall_halfway_at_the_border() {
        // Along i: 0 → 4 crosses level 1 a quarter of the way; beyond the last voxel, halfway.
        let mesh = isosurface(&[0.0, 4.0], [2, 1, 1], 1.0);
        assert!(mesh.is_closed());
        let (lo, hi) = mesh.bounds().unwrap();
        assert_eq!((lo[0], hi[0]), (0.25, 1.5));
        assert_eq!((lo[1], hi[1]), (-0.5, 0.5));

        // A value just below the level puts the crossing a thousandth of a voxel from it.
        let mesh = isosurface(&[1.0, 4.0], [2, 1, 1], 1.0);
        let (lo, _) = mesh.bounds().unwrap();
        assert!((lo[0] - 0.001).abs() < 1e-6, "{lo:?}");
    }

    #[test]
    fn nan_is_outside_and_nothing_above_level_is_empty() {
        let mesh = isosurface(&[f32::NAN, 0.0, -1.0, 0.5], [2, 2, 1], 0.5);
        assert!(mesh.vertices.is_empty() && mesh.triangles.is_empty());
    }
}
