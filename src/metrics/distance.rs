//! Exact Euclidean distance transform (Felzenszwalb and Huttenlocher, "Distance Transforms of
//! Sampled Functions"): the squared distance is separable, so it is computed by one pass per
//! axis, each taking the lower envelope of parabolas along every line of voxels.

use rayon::prelude::*;

/// Squared distance in mm² from every voxel to the nearest `true` voxel of `mask` (i fastest,
/// then j, then k), with voxel size `spacing` in mm along each axis. Every value is
/// `f64::INFINITY` when the mask has no `true` voxel.
///
/// # Panics
/// When `mask.len()` is not `sizes[0] · sizes[1] · sizes[2]`.
pub fn squared_distance_to(mask: &[bool], sizes: [usize; 3], spacing: [f64; 3]) -> Vec<f64> {
    let [si, sj, sk] = sizes;
    assert_eq!(
        mask.len(),
        si * sj * sk,
        "squared_distance_to: {} voxels for sizes {sizes:?}",
        mask.len()
    );
    let mut d: Vec<f64> = mask
        .iter()
        .map(|&m| if m { 0.0 } else { f64::INFINITY })
        .collect();
    if d.is_empty() {
        return d;
    }

    // Axis i: contiguous lines.
    d.par_chunks_mut(si)
        .for_each_init(Envelope::default, |env, line| {
            env.transform_in_place(line, spacing[0]);
        });

    // Axis j: lines with stride si inside each k slab.
    d.par_chunks_mut(si * sj)
        .for_each_init(Envelope::default, |env, slab| {
            let mut line = vec![0.0; sj];
            for i in 0..si {
                for (j, x) in line.iter_mut().enumerate() {
                    *x = slab[j * si + i];
                }
                env.transform_in_place(&mut line, spacing[1]);
                for (j, x) in line.iter().enumerate() {
                    slab[j * si + i] = *x;
                }
            }
        });

    // Axis k: lines with stride si·sj; each j plane is computed apart, then scattered back.
    let planes: Vec<Vec<f64>> = (0..sj)
        .into_par_iter()
        .map_init(Envelope::default, |env, j| {
            let mut plane = vec![0.0; si * sk];
            let mut line = vec![0.0; sk];
            for i in 0..si {
                for (k, x) in line.iter_mut().enumerate() {
                    *x = d[(k * sj + j) * si + i];
                }
                env.transform_in_place(&mut line, spacing[2]);
                for (k, x) in line.iter().enumerate() {
                    plane[k * si + i] = *x;
                }
            }
            plane
        })
        .collect();
    for (j, plane) in planes.iter().enumerate() {
        for k in 0..sk {
            let row = (k * sj + j) * si;
            d[row..row + si].copy_from_slice(&plane[k * si..(k + 1) * si]);
        }
    }
    d
}

/// Scratch space for the lower envelope of one line.
#[derive(Default)]
struct Envelope {
    /// Positions (voxel numbers) of the parabolas in the envelope.
    apex: Vec<usize>,
    /// Where (in mm) each parabola of the envelope starts to be the lowest.
    start: Vec<f64>,
    input: Vec<f64>,
}

impl Envelope {
    /// Replaces `f` by `min_p (step·(q − p))² + f[p]` for every q; infinite entries are no
    /// parabola at all.
    fn transform_in_place(&mut self, f: &mut [f64], step: f64) {
        self.apex.clear();
        self.start.clear();
        self.input.clear();
        self.input.extend_from_slice(f);
        let f_in = &self.input;
        let x = |q: usize| q as f64 * step;

        for q in 0..f_in.len() {
            if f_in[q].is_infinite() {
                continue;
            }
            let mut from = f64::NEG_INFINITY;
            while let Some(&p) = self.apex.last() {
                // Where the parabola at q becomes lower than the one at p.
                let s = ((f_in[q] + x(q) * x(q)) - (f_in[p] + x(p) * x(p))) / (2.0 * (x(q) - x(p)));
                if s <= *self.start.last().expect("one start per apex") {
                    self.apex.pop();
                    self.start.pop();
                } else {
                    from = s;
                    break;
                }
            }
            self.apex.push(q);
            self.start.push(from);
        }

        if self.apex.is_empty() {
            f.fill(f64::INFINITY);
            return;
        }
        let mut k = 0;
        for (q, out) in f.iter_mut().enumerate() {
            while k + 1 < self.apex.len() && self.start[k + 1] < x(q) {
                k += 1;
            }
            let p = self.apex[k];
            *out = (x(q) - x(p)) * (x(q) - x(p)) + f_in[p];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_two_seeds() {
        let mask = [false, true, false, false, false, true, false];
        let d = squared_distance_to(&mask, [7, 1, 1], [0.5, 1.0, 1.0]);
        let expected = [0.25, 0.0, 0.25, 1.0, 0.25, 0.0, 0.25];
        assert_eq!(d, expected);
    }

    #[test]
    fn empty_mask_is_infinite() {
        let d = squared_distance_to(&[false; 8], [2, 2, 2], [1.0; 3]);
        assert!(d.iter().all(|x| x.is_infinite()));
    }

    #[test]
    fn single_seed_is_exact_in_3d() {
        let sizes = [4, 3, 5];
        let spacing = [0.5, 2.0, 1.25];
        let mut mask = vec![false; 60];
        let seed = [3, 1, 2];
        mask[(seed[2] * 3 + seed[1]) * 4 + seed[0]] = true;
        let d = squared_distance_to(&mask, sizes, spacing);
        for k in 0..5 {
            for j in 0..3 {
                for i in 0..4 {
                    let p = [i, j, k];
                    let exact: f64 = (0..3)
                        .map(|a| ((p[a] as f64 - seed[a] as f64) * spacing[a]).powi(2))
                        .sum();
                    assert_eq!(d[(k * 3 + j) * 4 + i], exact, "{p:?}");
                }
            }
        }
    }
}
