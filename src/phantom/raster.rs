//! Drawing the teeth into the grid: every voxel takes the tissue of the tooth that covers it
//! (where crowns of neighbours overlap, the tooth whose mesio-distal centre is nearer in
//! relative terms), then each tooth keeps only its largest 6-connected piece.

use rayon::prelude::*;

use super::tooth::ToothModel;
use super::Tissue;

/// Slot value of a voxel no tooth covers.
pub(crate) const NO_TOOTH: u8 = u8::MAX;

/// Index ranges (inclusive) of a tooth's bounding box along i, j, k; `None` when the box
/// misses the grid.
pub(crate) type IndexBox = [(usize, usize); 3];

/// Per voxel: which tooth (index into the layout's teeth, or `NO_TOOTH`) and its tissue.
pub(crate) struct ToothMaps {
    pub slot: Vec<u8>,
    pub tissue: Vec<Tissue>,
}

/// Inclusive index range of the grid coordinates (sorted ascending) within [lo, hi].
fn index_range(coords: &[f64], lo: f64, hi: f64) -> Option<(usize, usize)> {
    let first = coords.partition_point(|&c| c < lo);
    let end = coords.partition_point(|&c| c <= hi);
    (first < end).then(|| (first, end - 1))
}

/// The grid box holding a tooth, from its model-space bounding box.
pub(crate) fn index_box(tooth: &ToothModel, model: &[Vec<f64>; 3]) -> Option<IndexBox> {
    let (lo, hi) = tooth.local_bounds();
    let mut min = [f64::INFINITY; 3];
    let mut max = [f64::NEG_INFINITY; 3];
    for corner in 0..8 {
        let local = [
            if corner & 1 == 0 { lo[0] } else { hi[0] },
            if corner & 2 == 0 { lo[1] } else { hi[1] },
            if corner & 4 == 0 { lo[2] } else { hi[2] },
        ];
        let p = tooth.to_model(local);
        for a in 0..3 {
            min[a] = min[a].min(p[a]);
            max[a] = max[a].max(p[a]);
        }
    }
    Some([
        index_range(&model[0], min[0], max[0])?,
        index_range(&model[1], min[1], max[1])?,
        index_range(&model[2], min[2], max[2])?,
    ])
}

/// Draws the present teeth. Slices are independent, so the result does not depend on how
/// they are scheduled; within a voxel, ties go to the earlier tooth.
pub(crate) fn rasterize(
    teeth: &[ToothModel],
    boxes: &[Option<IndexBox>],
    model: &[Vec<f64>; 3],
) -> ToothMaps {
    let [xs, ys, zs] = model;
    let (nx, plane) = (xs.len(), xs.len() * ys.len());
    let mut maps = ToothMaps {
        slot: vec![NO_TOOTH; plane * zs.len()],
        tissue: vec![Tissue::Air; plane * zs.len()],
    };

    maps.slot
        .par_chunks_mut(plane)
        .zip(maps.tissue.par_chunks_mut(plane))
        .enumerate()
        .for_each(|(k, (slot, tissue))| {
            let z = zs[k];
            let mut score = vec![f64::INFINITY; plane];
            for (index, (tooth, bounds)) in teeth.iter().zip(boxes).enumerate() {
                let Some([(i0, i1), (j0, j1), (k0, k1)]) = *bounds else {
                    continue;
                };
                // Upper teeth live above the occlusal plane, lower teeth below it.
                if !tooth.present || k < k0 || k > k1 || (tooth.upper != (z > 0.0)) || z == 0.0 {
                    continue;
                }
                for (j, &y) in ys.iter().enumerate().take(j1 + 1).skip(j0) {
                    for (i, &x) in xs.iter().enumerate().take(i1 + 1).skip(i0) {
                        let Some(hit) = tooth.classify([x, y, z]) else {
                            continue;
                        };
                        let at = j * nx + i;
                        if hit.score < score[at] {
                            score[at] = hit.score;
                            slot[at] = index as u8;
                            tissue[at] = hit.tissue;
                        }
                    }
                }
            }
        });
    maps
}

/// Keeps, for each tooth, only its largest 6-connected component (the first one found in
/// index order on a tie); voxels of the other pieces (thin root tips cut off by the grid)
/// lose their tooth. Returns the voxel count of each tooth.
pub(crate) fn keep_largest_components(
    maps: &mut ToothMaps,
    boxes: &[Option<IndexBox>],
    sizes: [usize; 3],
) -> Vec<usize> {
    let (nx, ny) = (sizes[0], sizes[1]);
    let mut counts = vec![0usize; boxes.len()];
    for (index, bounds) in boxes.iter().enumerate() {
        let Some([(i0, i1), (j0, j1), (k0, k1)]) = *bounds else {
            continue;
        };
        let (bx, by, bz) = (i1 - i0 + 1, j1 - j0 + 1, k1 - k0 + 1);
        let global = |l: usize| {
            let (i, j, k) = (l % bx + i0, (l / bx) % by + j0, l / (bx * by) + k0);
            (k * ny + j) * nx + i
        };

        // Component id per voxel of the box (0: not this tooth or not yet visited).
        let mut component = vec![0u32; bx * by * bz];
        let mut sizes_of = vec![0usize];
        let mut queue = Vec::new();
        for start in 0..component.len() {
            if component[start] != 0 || maps.slot[global(start)] != index as u8 {
                continue;
            }
            let id = sizes_of.len() as u32;
            component[start] = id;
            queue.clear();
            queue.push(start);
            let mut head = 0;
            while head < queue.len() {
                let l = queue[head];
                head += 1;
                let (i, j, k) = (l % bx, (l / bx) % by, l / (bx * by));
                let mut visit = |n: usize| {
                    if component[n] == 0 && maps.slot[global(n)] == index as u8 {
                        component[n] = id;
                        queue.push(n);
                    }
                };
                if i > 0 {
                    visit(l - 1);
                }
                if i + 1 < bx {
                    visit(l + 1);
                }
                if j > 0 {
                    visit(l - bx);
                }
                if j + 1 < by {
                    visit(l + bx);
                }
                if k > 0 {
                    visit(l - bx * by);
                }
                if k + 1 < bz {
                    visit(l + bx * by);
                }
            }
            sizes_of.push(queue.len());
        }

        let Some((best, &largest)) = sizes_of
            .iter()
            .enumerate()
            .skip(1)
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
        else {
            continue;
        };
        for (l, &id) in component.iter().enumerate() {
            if id != 0 && id as usize != best {
                maps.slot[global(l)] = NO_TOOTH;
            }
        }
        counts[index] = largest;
    }
    counts
}
