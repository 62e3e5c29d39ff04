//! MaxPool3d with kernel 2 and stride 2 (floor mode) on the CPU. Each output voxel keeps the
//! flat index `d·H·W + h·W + w` of its maximum inside the `(n, c)` input volume (PyTorch's
//! `return_indices`), so the backward scatters each upstream value to exactly one input.
//!
//! Window scan order: depth offset slowest, width offset fastest; a later value replaces the
//! current maximum only when strictly greater, so ties go to the FIRST maximum. A NaN always
//! replaces the current maximum (as PyTorch's CPU kernel does), so a window holding a NaN
//! yields NaN, with the index of its last NaN.

use rayon::prelude::*;

use crate::ops::Real;

/// The pooled sizes `[N, C, D/2, H/2, W/2]` (trailing odd planes, rows and columns dropped).
pub fn output_dims(dims: [usize; 5]) -> [usize; 5] {
    let [n, c, d, h, w] = dims;
    [n, c, d / 2, h / 2, w / 2]
}

/// Writes the window maxima to `y` and their flat in-volume indices to `indices`, both of
/// [`output_dims`] size.
pub fn forward<T: Real>(x: &[T], dims: [usize; 5], y: &mut [T], indices: &mut [u32]) {
    let [_, _, d, h, w] = dims;
    let [_, _, od, oh, ow] = output_dims(dims);
    let (in_volume, out_volume) = (d * h * w, od * oh * ow);
    if out_volume == 0 {
        return;
    }

    y.par_chunks_mut(out_volume)
        .zip(indices.par_chunks_mut(out_volume))
        .enumerate()
        .for_each(|(i, (y, indices))| {
            let xv = &x[i * in_volume..(i + 1) * in_volume];
            for zd in 0..od {
                for zh in 0..oh {
                    for zw in 0..ow {
                        let o = (zd * oh + zh) * ow + zw;
                        let first = (2 * zd * h + 2 * zh) * w + 2 * zw;
                        let (mut best, mut best_at) = (xv[first], first);
                        for kd in 0..2 {
                            for kh in 0..2 {
                                for kw in 0..2 {
                                    let at = first + (kd * h + kh) * w + kw;
                                    let v = xv[at];
                                    if v > best || v.is_nan() {
                                        best = v;
                                        best_at = at;
                                    }
                                }
                            }
                        }
                        y[o] = best;
                        indices[o] = best_at as u32;
                    }
                }
            }
        });
}

/// Scatters `gy` (output sized) to `dx` (input sized) at the saved indices; zero elsewhere.
pub fn backward<T: Real>(gy: &[T], indices: &[u32], dims: [usize; 5], dx: &mut [T]) {
    let [_, _, d, h, w] = dims;
    let [_, _, od, oh, ow] = output_dims(dims);
    let (in_volume, out_volume) = (d * h * w, od * oh * ow);
    if in_volume == 0 {
        return;
    }

    dx.par_chunks_mut(in_volume)
        .enumerate()
        .for_each(|(i, dx)| {
            dx.fill(T::zero());
            let range = i * out_volume..(i + 1) * out_volume;
            for (&g, &at) in gy[range.clone()].iter().zip(&indices[range]) {
                dx[at as usize] += g;
            }
        });
}
