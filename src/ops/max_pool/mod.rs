//! MaxPool3d, kernel 2, stride 2, floor mode, with PyTorch's `return_indices` semantics: the
//! gradient of a window goes to ONE element, the first maximum in scan order (see [`cpu`] for
//! the tie and NaN rules). Trailing planes, rows and columns that do not fill a window are
//! ignored and get zero gradient.

pub mod cpu;
mod graph;

#[cfg(test)]
mod tests;

pub use graph::{max_pool3d, MaxPool3dBackward};

pub use cpu::output_dims;

use crate::ops::Real;
use crate::tensor::{numel, Result, TensorError};

const OP: &str = "max_pool3d";

fn check_len(what: &str, len: usize, expected: usize) -> Result<()> {
    if len != expected {
        return Err(TensorError::Invalid {
            op: OP,
            message: format!("{what} holds {len} values, expected {expected}"),
        });
    }
    Ok(())
}

fn check_dims(dims: [usize; 5]) -> Result<(usize, usize)> {
    let volume = dims[2] * dims[3] * dims[4];
    if volume > u32::MAX as usize {
        return Err(TensorError::Invalid {
            op: OP,
            message: format!("a D·H·W volume of {volume} voxels does not fit the u32 indices"),
        });
    }
    Ok((numel(&dims)?, numel(&output_dims(dims))?))
}

/// Pools `x` of `dims`; returns `(y, indices)` of [`output_dims`] size.
pub fn forward<T: Real>(x: &[T], dims: [usize; 5]) -> Result<(Vec<T>, Vec<u32>)> {
    let (input_len, output_len) = check_dims(dims)?;
    check_len("x", x.len(), input_len)?;
    let mut y = vec![T::zero(); output_len];
    let mut indices = vec![0u32; output_len];
    cpu::forward(x, dims, &mut y, &mut indices);
    Ok((y, indices))
}

/// The input gradient for input `dims`: `gy` scattered to the saved `indices`.
pub fn backward<T: Real>(gy: &[T], indices: &[u32], dims: [usize; 5]) -> Result<Vec<T>> {
    let (input_len, output_len) = check_dims(dims)?;
    check_len("gy", gy.len(), output_len)?;
    check_len("indices", indices.len(), output_len)?;
    let volume = dims[2] * dims[3] * dims[4];
    if let Some(&bad) = indices.iter().find(|&&i| i as usize >= volume) {
        return Err(TensorError::Invalid {
            op: OP,
            message: format!("index {bad} lies outside the {volume}-voxel input volume"),
        });
    }
    let mut dx = vec![T::zero(); input_len];
    cpu::backward(gy, indices, dims, &mut dx);
    Ok(dx)
}
