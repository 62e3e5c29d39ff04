//! Element-wise activations and the softmax over channels on the CPU. Element-wise kernels run
//! in parallel chunks; the softmax reads the `C` values of a voxel at stride `D·H·W`.

use rayon::prelude::*;

use crate::ops::Real;

/// Elements per parallel task.
const CHUNK: usize = 1 << 15;

/// `f(a[i], b[i])` for every i, in parallel chunks, collected straight into the output (no
/// zero-filled buffer first).
fn zip_map<T: Real>(a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync) -> Vec<T> {
    a.par_iter()
        .zip(b)
        .with_min_len(CHUNK)
        .map(|(&av, &bv)| f(av, bv))
        .collect()
}

/// `f(x[i])` for every i, as [`zip_map`].
fn map<T: Real>(x: &[T], f: impl Fn(T) -> T + Sync) -> Vec<T> {
    x.par_iter().with_min_len(CHUNK).map(|&v| f(v)).collect()
}

/// `y = max(x, 0)`; a NaN stays NaN.
pub fn relu_forward<T: Real>(x: &[T]) -> Vec<T> {
    map(x, |v| if v < T::zero() { T::zero() } else { v })
}

/// `dx = gy` where `x > 0`, else 0 (also at exactly 0). Passing the output `y` instead of `x`
/// gives the same result, since `y > 0` exactly where `x > 0`.
pub fn relu_backward<T: Real>(x: &[T], gy: &[T]) -> Vec<T> {
    zip_map(x, gy, |xv, g| if xv > T::zero() { g } else { T::zero() })
}

/// `1/(1 + e^−x)`, evaluated so that no intermediate overflows: for `x < 0` as `e^x/(1 + e^x)`.
pub fn sigmoid<T: Real>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

pub fn sigmoid_forward<T: Real>(x: &[T]) -> Vec<T> {
    map(x, sigmoid)
}

/// From the output: `dx = gy·y·(1 − y)`.
pub fn sigmoid_backward<T: Real>(y: &[T], gy: &[T]) -> Vec<T> {
    zip_map(y, gy, |yv, g| g * yv * (T::one() - yv))
}

/// For every voxel of every sample, `f(offset, stride)` where `offset` is the flat index of
/// channel 0 and `stride = D·H·W` steps through the channels; the results in voxel order.
fn per_voxel<P, F>(dims: [usize; 5], f: F) -> Vec<P>
where
    P: Copy + Default + Send,
    F: Fn(usize, usize) -> P + Sync,
{
    let [n, c, d, h, w] = dims;
    let s = d * h * w;
    let mut out = vec![P::default(); n * s];
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(j, chunk)| {
            for (k, o) in chunk.iter_mut().enumerate() {
                let voxel = j * CHUNK + k;
                *o = f((voxel / s) * c * s + voxel % s, s);
            }
        });
    out
}

/// `out[n,c,v] = f(a[n,c,v], b[n,c,v], voxel[n,v])` over channel blocks in parallel.
fn channel_map<T, P, F>(dims: [usize; 5], a: &[T], b: &[T], voxel: &[P], out: &mut [T], f: F)
where
    T: Real,
    P: Copy + Sync,
    F: Fn(T, T, P) -> T + Sync,
{
    let [_, c, d, h, w] = dims;
    let s = d * h * w;
    if s == 0 {
        return;
    }
    out.par_chunks_mut(s).enumerate().for_each(|(i, block)| {
        let range = i * s..(i + 1) * s;
        let per = &voxel[(i / c) * s..(i / c + 1) * s];
        let inputs = a[range.clone()].iter().zip(&b[range]);
        for ((o, (&av, &bv)), &p) in block.iter_mut().zip(inputs).zip(per) {
            *o = f(av, bv, p);
        }
    });
}

/// Softmax over the channel axis: `y_c = e^(x_c − max) / Σ_k e^(x_k − max)` per voxel.
pub fn softmax_forward<T: Real>(x: &[T], dims: [usize; 5], y: &mut [T]) {
    let c = dims[1];
    let norm = per_voxel(dims, |o, s| {
        let max = (0..c).map(|k| x[o + k * s]).fold(T::neg_infinity(), T::max);
        let sum = (0..c).map(|k| (x[o + k * s] - max).exp()).sum::<T>();
        (max, sum)
    });
    channel_map(dims, x, x, &norm, y, |xv, _, (max, sum)| {
        (xv - max).exp() / sum
    });
}

/// Softmax backward from the output: `dx_c = y_c·(gy_c − Σ_k y_k·gy_k)`.
pub fn softmax_backward<T: Real>(y: &[T], gy: &[T], dims: [usize; 5], dx: &mut [T]) {
    let c = dims[1];
    let dot = per_voxel(dims, |o, s| {
        (0..c).map(|k| y[o + k * s] * gy[o + k * s]).sum::<T>()
    });
    channel_map(dims, y, gy, &dot, dx, |yv, g, d| yv * (g - d));
}
