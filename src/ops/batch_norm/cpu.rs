//! BatchNorm3d on the CPU: forward in training and eval mode, the running-statistics update and
//! both backwards. Layout `N,C,D,H,W`; a channel's values are the `N` blocks of `D·H·W`
//! contiguous voxels at `(n·C + c)·D·H·W`. Reductions accumulate in f64.

use std::ops::Range;

use rayon::prelude::*;

use crate::ops::Real;

/// Elements per parallel task: large enough to amortise the scheduling, small enough that a
/// single channel of a training patch (1,036,800 voxels) still spreads over all cores.
const BLOCK: usize = 1 << 15;

/// The batch statistics of a training forward, per channel, kept for the backward.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchStats {
    pub mean: Vec<f64>,
    /// The biased variance (divided by `M = N·D·H·W`), the one used to normalise.
    pub var_biased: Vec<f64>,
    /// `M`, the number of values per channel.
    pub count: usize,
}

impl BatchStats {
    /// `1/sqrt(var_biased + eps)` per channel.
    pub fn inv_std(&self, eps: f64) -> Vec<f64> {
        self.var_biased
            .iter()
            .map(|&v| 1.0 / (v + eps).sqrt())
            .collect()
    }
}

/// The running statistics of one BatchNorm layer (PyTorch's buffers).
#[derive(Clone, Debug, PartialEq)]
pub struct RunningStats<T> {
    pub running_mean: Vec<T>,
    pub running_var: Vec<T>,
    pub num_batches_tracked: i64,
}

impl<T: Real> RunningStats<T> {
    /// PyTorch's initial buffers: mean 0, variance 1, no batch seen.
    pub fn new(channels: usize) -> Self {
        RunningStats {
            running_mean: vec![T::zero(); channels],
            running_var: vec![T::one(); channels],
            num_batches_tracked: 0,
        }
    }

    /// The running mean and `1 / sqrt(running_var + eps)` per channel, in f64: what eval mode
    /// normalises with.
    fn mean_and_inv_std(&self, eps: f64) -> (Vec<f64>, Vec<f64>) {
        let mean = self.running_mean.iter().map(|v| v.f64()).collect();
        let inv_std = self
            .running_var
            .iter()
            .map(|v| 1.0 / (v.f64() + eps).sqrt())
            .collect();
        (mean, inv_std)
    }

    /// `running = (1 − momentum)·running + momentum·batch`, with the UNBIASED batch variance
    /// `var_biased·M/(M−1)`, and `num_batches_tracked += 1`.
    ///
    /// `M = 1`: `F.batch_norm` refuses to train on it ("Expected more than 1 value per channel
    /// when training"), and so does [`super::forward_train`]; PyTorch's raw kernel would compute
    /// `0/0` and put NaN into `running_var`. Should this raw helper see it anyway, the
    /// correction is taken as 1 (the batch variance, 0, is used as is) so that no inf/NaN
    /// enters the buffers.
    pub fn update(&mut self, stats: &BatchStats, momentum: f64) {
        let m = stats.count as f64;
        let correction = if stats.count > 1 { m / (m - 1.0) } else { 1.0 };
        for c in 0..self.running_mean.len() {
            let rm = self.running_mean[c].f64();
            let rv = self.running_var[c].f64();
            self.running_mean[c] = T::of((1.0 - momentum) * rm + momentum * stats.mean[c]);
            self.running_var[c] =
                T::of((1.0 - momentum) * rv + momentum * stats.var_biased[c] * correction);
        }
        self.num_batches_tracked += 1;
    }
}

/// Per-channel sums of `K` quantities. `f(c, range)` sums over the flat index range `range`,
/// which lies inside one `(n, c)` block. The partial sums are combined in a fixed order, so the
/// result does not depend on the number of threads.
pub(crate) fn channel_sums<const K: usize, F>(dims: [usize; 5], f: F) -> Vec<[f64; K]>
where
    F: Fn(usize, Range<usize>) -> [f64; K] + Sync,
{
    let [n, c, d, h, w] = dims;
    let s = d * h * w;
    let tasks: Vec<(usize, Range<usize>)> = (0..n * c)
        .flat_map(|i| {
            (0..s)
                .step_by(BLOCK)
                .map(move |start| (i, i * s + start..i * s + (start + BLOCK).min(s)))
        })
        .collect();
    let partial: Vec<(usize, [f64; K])> = tasks
        .into_par_iter()
        .map(|(i, r)| (i % c, f(i % c, r)))
        .collect();

    let mut sums = vec![[0.0; K]; c];
    for (ch, p) in partial {
        for k in 0..K {
            sums[ch][k] += p[k];
        }
    }
    sums
}

/// `Σ term(a[i], b[i])` over the pairs of `a` and `b` (equal lengths) for `K` quantities, in
/// f64. Each quantity is kept in `LANES` partial sums that take turns, so consecutive
/// additions do not wait on each other (a single running f64 sum is bound by the adder's
/// latency); the partial sums are then added in a fixed order, so the result depends on the
/// data alone.
#[inline]
pub(crate) fn lane_sums<const K: usize, A: Copy, B: Copy>(
    a: &[A],
    b: &[B],
    term: impl Fn(A, B) -> [f64; K],
) -> [f64; K] {
    const LANES: usize = 8;
    let mut acc = [[0.0f64; LANES]; K];
    let (chunks_a, chunks_b) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (rest_a, rest_b) = (chunks_a.remainder(), chunks_b.remainder());
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for lane in 0..LANES {
            let t = term(ca[lane], cb[lane]);
            for k in 0..K {
                acc[k][lane] += t[k];
            }
        }
    }
    for (lane, (&va, &vb)) in rest_a.iter().zip(rest_b).enumerate() {
        let t = term(va, vb);
        for k in 0..K {
            acc[k][lane] += t[k];
        }
    }
    acc.map(|lanes| lanes.iter().sum())
}

/// Fills `out` block by block in parallel: `f(c, offset, chunk)` writes `chunk`, which starts at
/// flat index `offset` and lies inside one `(n, c)` block.
pub(crate) fn map_channel_blocks<T, F>(out: &mut [T], dims: [usize; 5], f: F)
where
    T: Send,
    F: Fn(usize, usize, &mut [T]) + Sync,
{
    let [_, c, d, h, w] = dims;
    let s = d * h * w;
    if s == 0 {
        return;
    }
    out.par_chunks_mut(s).enumerate().for_each(|(i, block)| {
        block
            .par_chunks_mut(BLOCK)
            .enumerate()
            .for_each(|(j, chunk)| f(i % c, i * s + j * BLOCK, chunk));
    });
}

/// The batch mean and biased variance per channel (two passes, for accuracy).
pub fn batch_stats<T: Real>(x: &[T], dims: [usize; 5]) -> BatchStats {
    let [n, _, d, h, w] = dims;
    let count = n * d * h * w;
    let m = count.max(1) as f64;

    let mean: Vec<f64> = channel_sums(dims, |_, r| {
        let xs = &x[r];
        lane_sums(xs, xs, |v, _| [v.f64()])
    })
    .into_iter()
    .map(|[s]| s / m)
    .collect();
    let var_biased = channel_sums(dims, |c, r| {
        let (xs, mu) = (&x[r], mean[c]);
        lane_sums(xs, xs, |v, _| [(v.f64() - mu).powi(2)])
    })
    .into_iter()
    .map(|[s]| s / m)
    .collect();
    BatchStats {
        mean,
        var_biased,
        count,
    }
}

/// `y = gamma·(x − mean[c])·inv_std[c] + beta` with per-channel f64 statistics.
fn normalize<T: Real>(
    x: &[T],
    dims: [usize; 5],
    gamma: &[T],
    beta: &[T],
    mean: &[f64],
    inv_std: &[f64],
    y: &mut [T],
) {
    // Centring before scaling keeps f32 accurate when the mean is large against the spread.
    let coef: Vec<[T; 3]> = (0..gamma.len())
        .map(|c| [T::of(mean[c]), T::of(gamma[c].f64() * inv_std[c]), beta[c]])
        .collect();
    map_channel_blocks(y, dims, |c, offset, chunk| {
        let [mu, scale, shift] = coef[c];
        for (yv, &xv) in chunk.iter_mut().zip(&x[offset..]) {
            *yv = scale * (xv - mu) + shift;
        }
    });
}

/// Training-mode forward: normalise with the batch mean and the biased batch variance.
/// Returns the statistics for [`RunningStats::update`] and [`backward_train`].
pub fn forward_train<T: Real>(
    x: &[T],
    dims: [usize; 5],
    gamma: &[T],
    beta: &[T],
    eps: f64,
    y: &mut [T],
) -> BatchStats {
    let stats = batch_stats(x, dims);
    normalize(x, dims, gamma, beta, &stats.mean, &stats.inv_std(eps), y);
    stats
}

/// Eval-mode forward: normalise with the running statistics.
pub fn forward_eval<T: Real>(
    x: &[T],
    dims: [usize; 5],
    gamma: &[T],
    beta: &[T],
    running: &RunningStats<T>,
    eps: f64,
    y: &mut [T],
) {
    let (mean, inv_std) = running.mean_and_inv_std(eps);
    normalize(x, dims, gamma, beta, &mean, &inv_std, y);
}

/// `(Σ gy, Σ gy·x_hat)` per channel with `x_hat = (x − mean)·inv_std`.
fn param_grads<T: Real>(
    x: &[T],
    dims: [usize; 5],
    gy: &[T],
    mean: &[f64],
    inv_std: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let sums = channel_sums(dims, |c, r| {
        let (mu, scale) = (mean[c], inv_std[c]);
        lane_sums(&x[r.clone()], &gy[r], |xv, g| {
            let g = g.f64();
            [g, g * (xv.f64() - mu) * scale]
        })
    });
    sums.into_iter().map(|[a, b]| (a, b)).unzip()
}

/// Training-mode backward through the batch statistics. Writes `dx` and returns
/// `(dgamma, dbeta)`:
/// `dx = gamma·inv_std/M · (M·gy − Σgy − x_hat·Σ(gy·x_hat))`.
pub fn backward_train<T: Real>(
    x: &[T],
    dims: [usize; 5],
    gy: &[T],
    gamma: &[T],
    stats: &BatchStats,
    eps: f64,
    dx: &mut [T],
) -> (Vec<T>, Vec<T>) {
    let inv_std = stats.inv_std(eps);
    let (dbeta, dgamma) = param_grads(x, dims, gy, &stats.mean, &inv_std);
    let m = stats.count.max(1) as f64;

    // dx = a·gy + b·(x − mean) + k per channel, folded from the formula above.
    let coef: Vec<[T; 4]> = (0..gamma.len())
        .map(|c| {
            let a = gamma[c].f64() * inv_std[c];
            let b = -a * dgamma[c] * inv_std[c] / m;
            [
                T::of(a),
                T::of(b),
                T::of(-a * dbeta[c] / m),
                T::of(stats.mean[c]),
            ]
        })
        .collect();
    map_channel_blocks(dx, dims, |c, offset, chunk| {
        let [a, b, k, mu] = coef[c];
        let r = offset..offset + chunk.len();
        for ((d, &g), &xv) in chunk.iter_mut().zip(&gy[r.clone()]).zip(&x[r]) {
            *d = a * g + b * (xv - mu) + k;
        }
    });
    (
        dgamma.into_iter().map(T::of).collect(),
        dbeta.into_iter().map(T::of).collect(),
    )
}

/// Eval-mode backward: the statistics are constants, so `dx = gy·gamma/sqrt(running_var + eps)`.
/// Writes `dx` and returns `(dgamma, dbeta)`.
pub fn backward_eval<T: Real>(
    x: &[T],
    dims: [usize; 5],
    gy: &[T],
    gamma: &[T],
    running: &RunningStats<T>,
    eps: f64,
    dx: &mut [T],
) -> (Vec<T>, Vec<T>) {
    let (mean, inv_std) = running.mean_and_inv_std(eps);
    let (dbeta, dgamma) = param_grads(x, dims, gy, &mean, &inv_std);

    let scale: Vec<T> = (0..gamma.len())
        .map(|c| T::of(gamma[c].f64() * inv_std[c]))
        .collect();
    map_channel_blocks(dx, dims, |c, offset, chunk| {
        for (d, &g) in chunk.iter_mut().zip(&gy[offset..]) {
            *d = scale[c] * g;
        }
    });
    (
        dgamma.into_iter().map(T::of).collect(),
        dbeta.into_iter().map(T::of).collect(),
    )
}
