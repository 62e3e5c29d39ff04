//! BatchNorm3d (affine, tracking running statistics), PyTorch semantics.
//!
//! Training mode normalises each channel with the batch mean and the BIASED batch variance
//! (divided by `M = N·D·H·W`) and moves the running statistics by `momentum` towards the batch
//! mean and the UNBIASED variance (`M/(M−1)`); eval mode normalises with the running
//! statistics. Like PyTorch, training on `M = 1` value per channel is refused (the unbiased
//! variance does not exist); see [`RunningStats::update`] for what the raw helper does then.
//!
//! The checked functions here validate the slice lengths against `dims = [N, C, D, H, W]` and
//! call the kernels in [`cpu`].

pub mod cpu;
mod graph;

#[cfg(test)]
mod tests;

pub use graph::{batch_norm, BatchNormBackward, BatchNormConfig};

pub use cpu::{BatchStats, RunningStats};

use crate::ops::Real;
use crate::tensor::{Result, TensorError};

/// PyTorch's defaults.
pub const EPS: f64 = 1e-5;
pub const MOMENTUM: f64 = 0.1;

const OP: &str = "batch_norm3d";

fn check_len(what: &str, len: usize, expected: usize) -> Result<()> {
    if len != expected {
        return Err(TensorError::Invalid {
            op: OP,
            message: format!("{what} holds {len} values, expected {expected}"),
        });
    }
    Ok(())
}

/// Checks `x`-sized slices against `dims` and the per-channel slices against `C`.
fn check(dims: [usize; 5], full: &[(&str, usize)], per_channel: &[(&str, usize)]) -> Result<()> {
    let total = crate::tensor::numel(&dims)?;
    for &(what, len) in full {
        check_len(what, len, total)?;
    }
    for &(what, len) in per_channel {
        check_len(what, len, dims[1])?;
    }
    Ok(())
}

/// Training-mode forward (see [`cpu::forward_train`]); an error on a length mismatch or when a
/// channel holds a single value.
pub fn forward_train<T: Real>(
    x: &[T],
    dims: [usize; 5],
    gamma: &[T],
    beta: &[T],
    eps: f64,
    y: &mut [T],
) -> Result<BatchStats> {
    check(
        dims,
        &[("x", x.len()), ("y", y.len())],
        &[("gamma", gamma.len()), ("beta", beta.len())],
    )?;
    let m = dims[0] * dims[2] * dims[3] * dims[4];
    if m < 2 {
        return Err(TensorError::Invalid {
            op: OP,
            message: format!(
                "training needs more than 1 value per channel, got input shape {dims:?} \
                 ({m} per channel)"
            ),
        });
    }
    Ok(cpu::forward_train(x, dims, gamma, beta, eps, y))
}

/// Eval-mode forward with the running statistics.
pub fn forward_eval<T: Real>(
    x: &[T],
    dims: [usize; 5],
    gamma: &[T],
    beta: &[T],
    running: &RunningStats<T>,
    eps: f64,
    y: &mut [T],
) -> Result<()> {
    check(
        dims,
        &[("x", x.len()), ("y", y.len())],
        &[
            ("gamma", gamma.len()),
            ("beta", beta.len()),
            ("running_mean", running.running_mean.len()),
            ("running_var", running.running_var.len()),
        ],
    )?;
    cpu::forward_eval(x, dims, gamma, beta, running, eps, y);
    Ok(())
}

/// Training-mode backward; returns `(dgamma, dbeta)` and writes `dx`.
pub fn backward_train<T: Real>(
    x: &[T],
    dims: [usize; 5],
    gy: &[T],
    gamma: &[T],
    stats: &BatchStats,
    eps: f64,
    dx: &mut [T],
) -> Result<(Vec<T>, Vec<T>)> {
    check(
        dims,
        &[("x", x.len()), ("gy", gy.len()), ("dx", dx.len())],
        &[
            ("gamma", gamma.len()),
            ("mean", stats.mean.len()),
            ("var", stats.var_biased.len()),
        ],
    )?;
    Ok(cpu::backward_train(x, dims, gy, gamma, stats, eps, dx))
}

/// Eval-mode backward; returns `(dgamma, dbeta)` and writes `dx`.
pub fn backward_eval<T: Real>(
    x: &[T],
    dims: [usize; 5],
    gy: &[T],
    gamma: &[T],
    running: &RunningStats<T>,
    eps: f64,
    dx: &mut [T],
) -> Result<(Vec<T>, Vec<T>)> {
    check(
        dims,
        &[("x", x.len()), ("gy", gy.len()), ("dx", dx.len())],
        &[
            ("gamma", gamma.len()),
            ("running_mean", running.running_mean.len()),
            ("running_var", running.running_var.len()),
        ],
    )?;
    Ok(cpu::backward_eval(x, dims, gy, gamma, running, eps, dx))
}
