//! Tooth categories → tooth instances with FDI numbers.
//!
//! Each connected region of one category is a candidate tooth. Regions smaller than an island
//! threshold are dropped. A category occurs once per quadrant, so a region with a large share
//! in two or more quadrants — the two central incisors touching at the midline, an upper and a
//! lower molar in occlusion — is that many teeth, split by a watershed on the distance to the
//! region's surface from each quadrant's deepest voxel. Quadrants come from the side of the
//! arch (patient right/left of the midline, world x) and the jaw (upper/lower, world z);
//! pieces of one category in one quadrant are one tooth: FDI = quadrant · 10 + category.
//!
//! The jaw of a tooth follows from its shape: the crown is the bulky end, so the voxel mass of
//! an upper tooth sits below the middle of its height (crown down) and that of a lower tooth
//! above. The teeth vote, weighted by size; when both jaws are present, the height that best
//! separates the votes is the occlusal plane and every piece is assigned by its centroid.

use std::collections::BTreeMap;

use super::components::{components, face_neighbours, Component};
use super::watershed::{depth, split_at_markers, LocalGrid};
use crate::io::Volume;

/// How categories become instances.
#[derive(Clone, Copy, Debug)]
pub struct InstanceOptions {
    /// Regions smaller than this (mm³) are removed.
    pub min_island_mm3: f64,
    /// Split touching teeth of one category with a distance watershed.
    pub split_touching: bool,
    /// World x (mm, LPS) of the patient's midline; default: the centroid of all tooth voxels.
    pub midline_x: Option<f64>,
}

impl Default for InstanceOptions {
    fn default() -> Self {
        InstanceOptions {
            min_island_mm3: 10.0,
            split_touching: true,
            midline_x: None,
        }
    }
}

/// One tooth instance.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ToothInstance {
    pub fdi: u8,
    pub category: u8,
    pub voxels: usize,
    pub volume_mm3: f64,
    /// World centroid (mm, LPS).
    pub centroid_mm: [f64; 3],
    /// Connected pieces the tooth was assembled from.
    pub pieces: usize,
}

/// The result: an FDI number per voxel (0: none) and the teeth.
#[derive(Clone, Debug)]
pub struct Instances {
    pub labels: Vec<u8>,
    pub teeth: Vec<ToothInstance>,
    /// Voxels of regions removed as islands (their category was cleared).
    pub removed: Vec<usize>,
    pub midline_x: f64,
    /// World z of the occlusal plane when both jaws were found.
    pub occlusal_z: Option<f64>,
}

/// Instances of the tooth categories (0 background, 1..=8) on `geometry`'s grid. Small
/// pieces are relabelled to the category they touch or, touching none, removed, in place.
pub fn instances(geometry: &Volume, categories: &mut [u8], options: &InstanceOptions) -> Instances {
    let sizes = geometry.sizes;
    let count = geometry.voxel_count();
    let voxel_mm3 = geometry.spacing.iter().product::<f64>();
    let world = |index: [f64; 3]| geometry.index_to_world(index);

    let small = |c: &Component| (c.voxels.len() as f64) * voxel_mm3 < options.min_island_mm3;
    let (kept, removed) = settle_small_pieces(categories, sizes, small);

    let occlusal_z = occlusal_plane(geometry, &kept);
    // With one jaw only, every tooth goes to the jaw most of the teeth vote for.
    let one_jaw_upper = kept.iter().map(|c| jaw_vote(geometry, c)).sum::<f64>() >= 0.0;
    let jaw_at = |z: f64| occlusal_z.map_or(one_jaw_upper, |plane| z >= plane);
    let component_jaws: Vec<bool> = kept
        .iter()
        .map(|c| jaw_at(world(c.centroid(sizes))[2]))
        .collect();
    // Without a given midline or teeth on both sides to find one by symmetry, the midline
    // is only a guess (the teeth's centroid): it still names sides, but parts no tooth.
    let (midline_x, midline_known) = match options.midline_x {
        Some(x) => (x, true),
        None => {
            let start = world(mean_index(kept.iter(), sizes))[0];
            let x_of = |c: &Component| world(c.centroid(sizes))[0];
            match symmetric_midline(&kept, &component_jaws, start, x_of) {
                Some(x) => (x, true),
                None => (start, false),
            }
        }
    };
    let quadrant_at = |p: [f64; 3]| -> u8 {
        match (jaw_at(p[2]), p[0] > midline_x) {
            (true, false) => 1,
            (true, true) => 2,
            (false, true) => 3,
            (false, false) => 4,
        }
    };
    let split_key = |p: [f64; 3]| -> u8 {
        if midline_known {
            quadrant_at(p)
        } else {
            u8::from(jaw_at(p[2]))
        }
    };

    // One category covers a quadrant at most once: a component with a large share of its
    // voxels in two or more quadrants is that many touching teeth, parted by a watershed
    // from each quadrant's deepest voxel.
    let mut pieces: Vec<Component> = Vec::new();
    for c in kept {
        let markers = if options.split_touching {
            quadrant_markers(&c, geometry, &split_key)
        } else {
            Vec::new()
        };
        pieces.extend(split_at_markers(&c, geometry, &markers));
    }

    let mut teeth: BTreeMap<u8, (u8, Vec<usize>, usize)> = BTreeMap::new();
    for piece in pieces {
        let quadrant = quadrant_at(world(piece.centroid(sizes)));
        let category = piece.label.min(9) as u8;
        let entry = teeth
            .entry(quadrant * 10 + category)
            .or_insert((category, Vec::new(), 0));
        entry.1.extend_from_slice(&piece.voxels);
        entry.2 += 1;
    }

    let mut labels = vec![0u8; count];
    let teeth = teeth
        .into_iter()
        .map(|(fdi, (category, voxels, pieces))| {
            for &v in &voxels {
                labels[v] = fdi;
            }
            let tooth = Component {
                label: u32::from(category),
                voxels,
            };
            ToothInstance {
                fdi,
                category,
                voxels: tooth.voxels.len(),
                volume_mm3: tooth.voxels.len() as f64 * voxel_mm3,
                centroid_mm: world(tooth.centroid(sizes)),
                pieces,
            }
        })
        .collect();
    Instances {
        labels,
        teeth,
        removed,
        midline_x,
        occlusal_z,
    }
}

/// Small pieces (`small`) of one category inside a tooth of another are that tooth misread:
/// they take the category they touch most. Small pieces touching no other tooth are islands
/// and are cleared. Returns the remaining components and the cleared voxels.
fn settle_small_pieces(
    categories: &mut [u8],
    sizes: [usize; 3],
    small: impl Fn(&Component) -> bool,
) -> (Vec<Component>, Vec<usize>) {
    let count = categories.len();
    let mut removed = Vec::new();
    for c in components(count, sizes, |v| u32::from(categories[v])) {
        if !small(&c) {
            continue;
        }
        let mut touching = [0usize; 256];
        for &v in &c.voxels {
            for n in face_neighbours(v, sizes) {
                let other = categories[n];
                if other != 0 && u32::from(other) != c.label {
                    touching[usize::from(other)] += 1;
                }
            }
        }
        let (best, hits) = (1..256)
            .map(|l| (l, touching[l]))
            .max_by_key(|&(l, n)| (n, usize::MAX - l))
            .unwrap_or((0, 0));
        let relabel = if hits > 0 { best as u8 } else { 0 };
        for &v in &c.voxels {
            categories[v] = relabel;
        }
        if relabel == 0 {
            removed.extend_from_slice(&c.voxels);
        }
    }
    // Relabelled pieces have merged into their neighbours; what is still small is an island.
    let mut kept = Vec::new();
    for c in components(count, sizes, |v| u32::from(categories[v])) {
        if small(&c) {
            for &v in &c.voxels {
                categories[v] = 0;
            }
            removed.extend_from_slice(&c.voxels);
        } else {
            kept.push(c);
        }
    }
    (kept, removed)
}

/// The voxel-weighted mean index of some components.
fn mean_index<'a>(parts: impl Iterator<Item = &'a Component>, sizes: [usize; 3]) -> [f64; 3] {
    let (mut sum, mut total) = ([0.0f64; 3], 0usize);
    for c in parts {
        let centroid = c.centroid(sizes);
        for a in 0..3 {
            sum[a] += centroid[a] * c.voxels.len() as f64;
        }
        total += c.voxels.len();
    }
    sum.map(|s| s / total.max(1) as f64)
}

fn index_f64(v: usize, sizes: [usize; 3]) -> [f64; 3] {
    super::components::position(v, sizes).map(|p| p as f64)
}

/// The midline as the arch's axis of symmetry: for every category and jaw with teeth on both
/// sides of the current estimate, the midpoint of the two sides' centroids (world x); the
/// median of those midpoints is the next estimate. Missing teeth do not pull it aside, as
/// they do the plain centroid that starts the iteration. `None` when no category and jaw
/// has teeth on both sides.
fn symmetric_midline(
    pieces: &[Component],
    upper: &[bool],
    start: f64,
    x_of: impl Fn(&Component) -> f64,
) -> Option<f64> {
    let xs: Vec<f64> = pieces.iter().map(&x_of).collect();
    let mut midline = start;
    let mut found = false;
    for _ in 0..4 {
        let mut midpoints = Vec::new();
        for category in 1..=8u32 {
            for jaw in [true, false] {
                let mut sides = [(0.0f64, 0.0f64); 2];
                for (i, p) in pieces.iter().enumerate() {
                    if p.label == category && upper[i] == jaw {
                        let side = &mut sides[usize::from(xs[i] > midline)];
                        side.0 += xs[i] * p.voxels.len() as f64;
                        side.1 += p.voxels.len() as f64;
                    }
                }
                if sides[0].1 > 0.0 && sides[1].1 > 0.0 {
                    midpoints.push((sides[0].0 / sides[0].1 + sides[1].0 / sides[1].1) / 2.0);
                }
            }
        }
        if midpoints.is_empty() {
            break;
        }
        found = true;
        midpoints.sort_by(f64::total_cmp);
        let n = midpoints.len();
        let next = if n % 2 == 1 {
            midpoints[n / 2]
        } else {
            (midpoints[n / 2 - 1] + midpoints[n / 2]) / 2.0
        };
        if (next - midline).abs() < 1e-9 {
            break;
        }
        midline = next;
    }
    found.then_some(midline)
}

/// The deepest voxel of `c` in each part (`part_at` of a world position: a quadrant, or a
/// jaw) holding at least a quarter of its voxels, when there are two or more such parts.
fn quadrant_markers(
    c: &Component,
    geometry: &Volume,
    part_at: &impl Fn([f64; 3]) -> u8,
) -> Vec<usize> {
    let quadrants: Vec<u8> = c
        .voxels
        .iter()
        .map(|&v| part_at(geometry.index_to_world(index_f64(v, geometry.sizes))))
        .collect();
    let mut counts = [0usize; 5];
    for &q in &quadrants {
        counts[usize::from(q)] += 1;
    }
    let large: Vec<u8> = (0..=4u8)
        .filter(|&q| counts[usize::from(q)] * 4 >= c.voxels.len())
        .collect();
    if large.len() < 2 {
        return Vec::new();
    }
    let grid = LocalGrid::around(c, geometry.sizes);
    let depth = depth(c, &grid, geometry.spacing);
    large
        .iter()
        .map(|&q| {
            let mut best = (f64::NEG_INFINITY, usize::MAX);
            for (&v, &vq) in c.voxels.iter().zip(&quadrants) {
                let d = depth[grid.to_local(v)];
                if vq == q && d > best.0 {
                    best = (d, v);
                }
            }
            best.1
        })
        .collect()
}

/// World z of voxel `v`.
fn world_z(geometry: &Volume, v: usize) -> f64 {
    let p = super::components::position(v, geometry.sizes);
    geometry.index_to_world([p[0] as f64, p[1] as f64, p[2] as f64])[2]
}

/// The crown vote of one tooth: positive for an upper tooth (mass below the middle of its
/// height), negative for a lower one, weighted by its voxels.
fn jaw_vote(geometry: &Volume, c: &Component) -> f64 {
    let (mut lo, mut hi, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
    for &v in &c.voxels {
        let z = world_z(geometry, v);
        lo = lo.min(z);
        hi = hi.max(z);
        sum += z;
    }
    let mean = sum / c.voxels.len().max(1) as f64;
    let middle = (lo + hi) / 2.0;
    let n = c.voxels.len() as f64;
    if mean < middle {
        n
    } else if mean > middle {
        -n
    } else {
        0.0
    }
}

/// The occlusal plane's world z when the teeth's votes show both jaws (each at least 15% of
/// the voxels) and one height separates them (misplacing at most 10%), else `None`: the
/// height that misplaces the fewest voted voxels.
fn occlusal_plane(geometry: &Volume, teeth: &[Component]) -> Option<f64> {
    let mut votes: Vec<(f64, f64)> = teeth
        .iter()
        .map(|c| {
            let z = c.voxels.iter().map(|&v| world_z(geometry, v)).sum::<f64>()
                / c.voxels.len().max(1) as f64;
            (z, jaw_vote(geometry, c))
        })
        .collect();
    let upper: f64 = votes.iter().filter(|v| v.1 > 0.0).map(|v| v.1).sum();
    let lower: f64 = votes.iter().filter(|v| v.1 < 0.0).map(|v| -v.1).sum();
    let all = upper + lower;
    if all == 0.0 || upper < 0.15 * all || lower < 0.15 * all {
        return None;
    }
    votes.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Threshold between votes[i-1] and votes[i]: everything from i on is upper.
    let mut best = (f64::INFINITY, 0);
    for i in 1..votes.len() {
        let wrong: f64 = votes[..i]
            .iter()
            .filter(|v| v.1 > 0.0)
            .map(|v| v.1)
            .sum::<f64>()
            + votes[i..]
                .iter()
                .filter(|v| v.1 < 0.0)
                .map(|v| -v.1)
                .sum::<f64>();
        if wrong < best.0 {
            best = (wrong, i);
        }
    }
    // Two jaws only when one height separates the votes well: fragments of cut-off or
    // misread teeth vote at random and must not invent a second jaw.
    let i = best.1;
    (i > 0 && best.0 <= 0.1 * all).then(|| (votes[i - 1].0 + votes[i].0) / 2.0)
}
