//! Patches: fixed chunks along one axis, sliding windows with overlap (and their stitching),
//! and random sampling that favours foreground.

use super::{Array3, PreprocessError, Result};
use crate::rng::Rng;

/// A box cut from a larger array, with where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Patch {
    pub start: [usize; 3],
    pub data: Array3,
}

/// What to do with the end of an axis that a whole chunk does not fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LastChunk {
    /// Leave the remainder out.
    Drop,
    /// Move the last chunk back so it ends at the border (it overlaps the one before).
    Shift,
    /// Pad the last chunk to full length with the value.
    Pad(f32),
}

fn invalid(op: &'static str, message: String) -> PreprocessError {
    PreprocessError::Invalid { op, message }
}

/// The box `start .. start + sizes`, which must lie inside `a`.
pub fn extract(a: &Array3, start: [usize; 3], sizes: [usize; 3]) -> Result<Array3> {
    if (0..3).any(|d| sizes[d] == 0 || start[d] + sizes[d] > a.sizes[d]) {
        let msg = format!(
            "box at {start:?} of sizes {sizes:?} is not inside {:?}",
            a.sizes
        );
        return Err(invalid("extract", msg));
    }
    let mut data = Vec::with_capacity(sizes.iter().product());
    for k in start[2]..start[2] + sizes[2] {
        for j in start[1]..start[1] + sizes[1] {
            let row = a.index(start[0], j, k);
            data.extend_from_slice(&a.data[row..row + sizes[0]]);
        }
    }
    Array3::new(sizes, data)
}

/// Writes `patch` into `target` at `start`, clipped to the target.
pub fn insert(target: &mut Array3, start: [usize; 3], patch: &Array3) {
    for k in 0..patch.sizes[2] {
        for j in 0..patch.sizes[1] {
            for i in 0..patch.sizes[0] {
                let (ti, tj, tk) = (start[0] + i, start[1] + j, start[2] + k);
                if ti < target.sizes[0] && tj < target.sizes[1] && tk < target.sizes[2] {
                    let t = target.index(ti, tj, tk);
                    target.data[t] = patch.get(i, j, k);
                }
            }
        }
    }
}

/// Chunks of `len` slices along `axis` (0, 1 or 2): the reference pipeline's 72-slice chunks.
pub fn chunks_along(a: &Array3, axis: usize, len: usize, last: LastChunk) -> Result<Vec<Patch>> {
    if axis > 2 || len == 0 {
        return Err(invalid(
            "chunks_along",
            format!("axis {axis} and length {len}"),
        ));
    }
    let n = a.sizes[axis];
    let mut starts: Vec<usize> = (0..n / len).map(|c| c * len).collect();
    let rest = n % len;
    let mut patches = Vec::new();
    match last {
        LastChunk::Drop => {}
        LastChunk::Shift if rest > 0 => {
            if n < len {
                let msg = format!("axis {axis} has {n} slices, fewer than one chunk of {len}");
                return Err(invalid("chunks_along", msg));
            }
            starts.push(n - len);
        }
        LastChunk::Shift => {}
        LastChunk::Pad(fill) if rest > 0 => {
            let mut start = [0; 3];
            start[axis] = n - rest;
            let mut sizes = a.sizes;
            sizes[axis] = rest;
            let tail = extract(a, start, sizes)?;
            let mut data = Array3::filled(
                {
                    sizes[axis] = len;
                    sizes
                },
                fill,
            );
            insert(&mut data, [0; 3], &tail);
            patches.push(Patch { start, data });
        }
        LastChunk::Pad(_) => {}
    }
    let mut out = Vec::with_capacity(starts.len() + patches.len());
    for s in starts {
        let mut start = [0; 3];
        start[axis] = s;
        let mut sizes = a.sizes;
        sizes[axis] = len;
        out.push(Patch {
            start,
            data: extract(a, start, sizes)?,
        });
    }
    out.extend(patches);
    Ok(out)
}

/// Starts of sliding patches of `patch` sizes overlapping by `overlap` voxels, covering the
/// whole grid (the last patch of an axis is moved back to end at the border).
pub fn sliding_starts(
    sizes: [usize; 3],
    patch: [usize; 3],
    overlap: [usize; 3],
) -> Result<Vec<[usize; 3]>> {
    let mut per_axis: Vec<Vec<usize>> = Vec::new();
    for d in 0..3 {
        if patch[d] == 0 || patch[d] > sizes[d] || overlap[d] >= patch[d] {
            let msg = format!("patch {patch:?} with overlap {overlap:?} on a grid of {sizes:?}");
            return Err(invalid("sliding_starts", msg));
        }
        let stride = patch[d] - overlap[d];
        let mut s: Vec<usize> = (0..=sizes[d] - patch[d]).step_by(stride).collect();
        if *s.last().unwrap_or(&0) + patch[d] < sizes[d] {
            s.push(sizes[d] - patch[d]);
        }
        per_axis.push(s);
    }
    let mut starts = Vec::new();
    for &k in &per_axis[2] {
        for &j in &per_axis[1] {
            for &i in &per_axis[0] {
                starts.push([i, j, k]);
            }
        }
    }
    Ok(starts)
}

/// Reassembles patches on a grid of `sizes`, averaging where they overlap (0 where none lies).
pub fn stitch_mean(sizes: [usize; 3], patches: &[Patch]) -> Array3 {
    let mut sum = Array3::filled(sizes, 0.0);
    let mut count = vec![0u32; sum.len()];
    for p in patches {
        for k in 0..p.data.sizes[2] {
            for j in 0..p.data.sizes[1] {
                for i in 0..p.data.sizes[0] {
                    let (ti, tj, tk) = (p.start[0] + i, p.start[1] + j, p.start[2] + k);
                    if ti < sizes[0] && tj < sizes[1] && tk < sizes[2] {
                        let t = sum.index(ti, tj, tk);
                        sum.data[t] += p.data.get(i, j, k);
                        count[t] += 1;
                    }
                }
            }
        }
    }
    for (x, &c) in sum.data.iter_mut().zip(&count) {
        if c > 1 {
            *x /= c as f32;
        }
    }
    sum
}

/// Random patch positions: a `foreground_fraction` of them centred on a random foreground
/// voxel (label > 0), the rest uniform. Seeded, so runs repeat.
#[derive(Clone, Debug)]
pub struct PatchSampler {
    pub patch: [usize; 3],
    pub foreground_fraction: f64,
    rng: Rng,
}

impl PatchSampler {
    pub fn new(patch: [usize; 3], foreground_fraction: f64, seed: u64) -> Result<Self> {
        if patch.contains(&0) || !(0.0..=1.0).contains(&foreground_fraction) {
            let msg = format!("patch {patch:?}, foreground fraction {foreground_fraction}");
            return Err(invalid("PatchSampler::new", msg));
        }
        Ok(PatchSampler {
            patch,
            foreground_fraction,
            rng: Rng::new(seed),
        })
    }

    /// `count` patch starts inside a grid the size of `labels`. Without foreground, every
    /// patch is uniform.
    pub fn sample(&mut self, labels: &Array3, count: usize) -> Result<Vec<[usize; 3]>> {
        let sizes = labels.sizes;
        if (0..3).any(|d| self.patch[d] > sizes[d]) {
            let msg = format!("patch {:?} is larger than the grid {sizes:?}", self.patch);
            return Err(invalid("PatchSampler::sample", msg));
        }
        let foreground: Vec<usize> = (0..labels.len())
            .filter(|&n| labels.data[n] > 0.0)
            .collect();
        let mut starts = Vec::with_capacity(count);
        for _ in 0..count {
            let want_fg = self.rng.uniform() < self.foreground_fraction;
            let start = if want_fg && !foreground.is_empty() {
                let n = foreground[self.rng.below(foreground.len())];
                let at = [
                    n % sizes[0],
                    n / sizes[0] % sizes[1],
                    n / (sizes[0] * sizes[1]),
                ];
                [0, 1, 2].map(|d| {
                    at[d]
                        .saturating_sub(self.patch[d] / 2)
                        .min(sizes[d] - self.patch[d])
                })
            } else {
                [0, 1, 2].map(|d| self.rng.below(sizes[d] - self.patch[d] + 1))
            };
            starts.push(start);
        }
        Ok(starts)
    }
}
