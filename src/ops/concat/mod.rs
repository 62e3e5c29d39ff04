//! Concatenation of two `N,C,D,H,W` tensors over channels (`a` first, as in the U-Net decoder's
//! `cat([up, skip])`) and its backward, the split of the upstream gradient.

pub mod cpu;
mod graph;

#[cfg(test)]
mod tests;

pub use graph::{concat, ConcatBackward};

use crate::tensor::{numel, Result, TensorError};

const OP: &str = "concat";

/// The output dims `[N, Ca + Cb, D, H, W]`, or an error when `a` and `b` differ in anything but
/// the channel count.
pub fn output_dims(a: [usize; 5], b: [usize; 5]) -> Result<[usize; 5]> {
    if a[0] != b[0] || a[2..] != b[2..] {
        return Err(TensorError::ShapeMismatch {
            op: OP,
            left: a.to_vec(),
            right: b.to_vec(),
        });
    }
    Ok([a[0], a[1] + b[1], a[2], a[3], a[4]])
}

fn check_len(what: &str, len: usize, dims: [usize; 5]) -> Result<()> {
    let expected = numel(&dims)?;
    if len != expected {
        return Err(TensorError::Invalid {
            op: OP,
            message: format!("{what} holds {len} values, expected {expected} for shape {dims:?}"),
        });
    }
    Ok(())
}

/// `cat([a, b], dim=1)`.
pub fn forward<T: Copy + Default>(
    a: &[T],
    a_dims: [usize; 5],
    b: &[T],
    b_dims: [usize; 5],
) -> Result<Vec<T>> {
    let y_dims = output_dims(a_dims, b_dims)?;
    check_len("a", a.len(), a_dims)?;
    check_len("b", b.len(), b_dims)?;
    let mut y = vec![T::default(); numel(&y_dims)?];
    let volume = a_dims[2] * a_dims[3] * a_dims[4];
    cpu::forward(
        a_dims[0],
        a,
        a_dims[1] * volume,
        b,
        b_dims[1] * volume,
        &mut y,
    );
    Ok(y)
}

/// Splits `gy` (of the concatenation's shape) into `(da, db)`.
pub fn backward<T: Copy + Default>(
    gy: &[T],
    a_dims: [usize; 5],
    b_dims: [usize; 5],
) -> Result<(Vec<T>, Vec<T>)> {
    check_len("gy", gy.len(), output_dims(a_dims, b_dims)?)?;
    let mut da = vec![T::default(); numel(&a_dims)?];
    let mut db = vec![T::default(); numel(&b_dims)?];
    let volume = a_dims[2] * a_dims[3] * a_dims[4];
    cpu::backward(
        a_dims[0],
        gy,
        a_dims[1] * volume,
        b_dims[1] * volume,
        &mut da,
        &mut db,
    );
    Ok((da, db))
}
