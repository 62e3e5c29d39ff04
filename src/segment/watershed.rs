//! Splitting touching teeth: a marker-controlled watershed on the distance to the surface.
//!
//! Two teeth that touch form one region with a waist where they meet: the distance from the
//! inside to the region's surface is high in each tooth's core and low at the waist. Starting
//! from one marker per tooth (each tooth's deepest voxel), voxels are claimed from the deepest
//! down, each by the marker whose flood reaches it first, so the pieces meet at the waist.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::components::{face_neighbours, position, Component};
use crate::io::Volume;
use crate::metrics::distance::squared_distance_to;

/// A component cut out of its volume with one voxel of background around it.
pub struct LocalGrid {
    pub sizes: [usize; 3],
    origin: [usize; 3],
    volume_sizes: [usize; 3],
}

impl LocalGrid {
    pub fn around(c: &Component, volume_sizes: [usize; 3]) -> Self {
        let mut lo = [usize::MAX; 3];
        let mut hi = [0usize; 3];
        for &v in &c.voxels {
            let p = position(v, volume_sizes);
            for a in 0..3 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
        LocalGrid {
            sizes: [0, 1, 2].map(|a| hi[a] - lo[a] + 3),
            origin: lo,
            volume_sizes,
        }
    }

    pub fn count(&self) -> usize {
        self.sizes.iter().product()
    }

    pub fn to_local(&self, v: usize) -> usize {
        let p = position(v, self.volume_sizes);
        let l = [0, 1, 2].map(|a| p[a] - self.origin[a] + 1);
        l[0] + self.sizes[0] * (l[1] + self.sizes[1] * l[2])
    }
}

/// Distance (mm) from every voxel of `c` to the nearest voxel outside it, on its local grid.
pub fn depth(c: &Component, grid: &LocalGrid, spacing: [f64; 3]) -> Vec<f64> {
    let mut outside = vec![true; grid.count()];
    for &v in &c.voxels {
        outside[grid.to_local(v)] = false;
    }
    squared_distance_to(&outside, grid.sizes, spacing)
        .into_iter()
        .map(f64::sqrt)
        .collect()
}

#[derive(PartialEq)]
struct Front {
    depth: f64,
    /// Order of arrival: on a plateau of equal depth the floods advance breadth first, so
    /// neither marker wins ground by its position in memory.
    arrival: u64,
    voxel: usize,
    marker: usize,
}

impl Eq for Front {}

impl Ord for Front {
    fn cmp(&self, other: &Self) -> Ordering {
        // Deepest first, then first come first served.
        self.depth
            .total_cmp(&other.depth)
            .then(other.arrival.cmp(&self.arrival))
    }
}

impl PartialOrd for Front {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `c` split into one piece per marker (volume indices of voxels of `c`, distinct).
pub fn split_at_markers(c: &Component, geometry: &Volume, markers: &[usize]) -> Vec<Component> {
    if markers.len() < 2 {
        return vec![c.clone()];
    }
    let grid = LocalGrid::around(c, geometry.sizes);
    let depth = depth(c, &grid, geometry.spacing);
    let mut inside = vec![false; grid.count()];
    for &v in &c.voxels {
        inside[grid.to_local(v)] = true;
    }
    let mut owner = vec![usize::MAX; grid.count()];
    let mut heap = BinaryHeap::new();
    let mut arrival = 0u64;
    let mut push = |heap: &mut BinaryHeap<Front>, voxel: usize, marker: usize| {
        heap.push(Front {
            depth: depth[voxel],
            arrival,
            voxel,
            marker,
        });
        arrival += 1;
    };
    for (m, &v) in markers.iter().enumerate() {
        let l = grid.to_local(v);
        owner[l] = m;
        push(&mut heap, l, m);
    }
    while let Some(Front { voxel, marker, .. }) = heap.pop() {
        for n in face_neighbours(voxel, grid.sizes) {
            if inside[n] && owner[n] == usize::MAX {
                owner[n] = marker;
                push(&mut heap, n, marker);
            }
        }
    }
    let mut pieces = vec![Vec::new(); markers.len()];
    for &v in &c.voxels {
        pieces[owner[grid.to_local(v)]].push(v);
    }
    pieces
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|voxels| Component {
            label: c.label,
            voxels,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Voxels;

    #[test]
    fn two_touching_balls_part_at_their_waist() {
        // Two balls of radius 5 voxels, centres 9 apart along i: they overlap in a thin lens.
        let sizes = [26, 14, 14];
        let centres = [[8.0, 7.0, 7.0], [17.0, 7.0, 7.0]];
        let mut voxels = Vec::new();
        let mut nearest = Vec::new();
        for v in 0..sizes.iter().product::<usize>() {
            let p = position(v, sizes).map(|x| x as f64);
            let d: Vec<f64> = centres
                .iter()
                .map(|c| {
                    ((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2) + (p[2] - c[2]).powi(2)).sqrt()
                })
                .collect();
            if d[0] <= 5.0 || d[1] <= 5.0 {
                voxels.push(v);
                nearest.push(usize::from(d[1] < d[0]));
            }
        }
        let c = Component {
            label: 3,
            voxels: voxels.clone(),
        };
        let geometry = Volume::new(sizes, Voxels::U8(vec![0; sizes.iter().product()]), [1.0; 3]);
        let at = |p: [usize; 3]| p[0] + sizes[0] * (p[1] + sizes[1] * p[2]);
        let pieces = split_at_markers(&c, &geometry, &[at([8, 7, 7]), at([17, 7, 7])]);
        assert_eq!(pieces.len(), 2);
        assert_eq!(
            pieces.iter().map(|p| p.voxels.len()).sum::<usize>(),
            voxels.len()
        );
        // Every voxel goes to the ball whose centre is nearer, except on the mid-plane.
        let mut wrong = 0;
        for (piece, expected) in pieces.iter().zip([0, 1]) {
            for v in &piece.voxels {
                let i = voxels.binary_search(v).unwrap();
                let p = position(*v, sizes);
                if nearest[i] != expected && p[0] != 12 && p[0] != 13 {
                    wrong += 1;
                }
            }
        }
        assert_eq!(wrong, 0);
    }
}
