//! Activations: ReLU (gradient 0 at exactly 0), sigmoid (stable for large |x|) and softmax over
//! the channel axis of an `N,C,D,H,W` tensor (max-subtracted), with their backwards. The checked
//! functions validate lengths and call the kernels in [`cpu`].

pub mod cpu;
mod graph;

#[cfg(test)]
mod tests;

pub use graph::{relu, sigmoid, softmax, ReluBackward, SigmoidBackward, SoftmaxBackward};

use crate::ops::Real;
use crate::tensor::{numel, Result, TensorError};

fn check_same(op: &'static str, what: &[(&str, usize)], expected: usize) -> Result<()> {
    for &(name, len) in what {
        if len != expected {
            return Err(TensorError::Invalid {
                op,
                message: format!("{name} holds {len} values, expected {expected}"),
            });
        }
    }
    Ok(())
}

pub fn relu_forward<T: Real>(x: &[T]) -> Vec<T> {
    cpu::relu_forward(x)
}

/// `dx = gy` where `x > 0`, else 0.
pub fn relu_backward<T: Real>(x: &[T], gy: &[T]) -> Result<Vec<T>> {
    check_same("relu", &[("gy", gy.len())], x.len())?;
    Ok(cpu::relu_backward(x, gy))
}

pub fn sigmoid_forward<T: Real>(x: &[T]) -> Vec<T> {
    cpu::sigmoid_forward(x)
}

/// From the forward's output `y`.
pub fn sigmoid_backward<T: Real>(y: &[T], gy: &[T]) -> Result<Vec<T>> {
    check_same("sigmoid", &[("gy", gy.len())], y.len())?;
    Ok(cpu::sigmoid_backward(y, gy))
}

/// Softmax over `C` of `x` with `dims = [N, C, D, H, W]`.
pub fn softmax_forward<T: Real>(x: &[T], dims: [usize; 5]) -> Result<Vec<T>> {
    check_same("softmax", &[("x", x.len())], numel(&dims)?)?;
    let mut y = vec![T::zero(); x.len()];
    cpu::softmax_forward(x, dims, &mut y);
    Ok(y)
}

/// From the forward's output `y`.
pub fn softmax_backward<T: Real>(y: &[T], gy: &[T], dims: [usize; 5]) -> Result<Vec<T>> {
    check_same(
        "softmax",
        &[("y", y.len()), ("gy", gy.len())],
        numel(&dims)?,
    )?;
    let mut dx = vec![T::zero(); y.len()];
    cpu::softmax_backward(y, gy, dims, &mut dx);
    Ok(dx)
}
