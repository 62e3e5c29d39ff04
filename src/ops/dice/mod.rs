//! Dice losses (sums over the whole batch, ε = 1e-5, f64 accumulation) and Dice metrics.
//!
//! - Binary: `1 − (2Σp·t + ε)/(Σp² + Σt² + ε)` with `p = sigmoid(logits)`. An empty target with
//!   an empty prediction gives ≈0, never NaN (ε keeps the ratio defined).
//! - Categorical: `p = softmax(logits)` over channels; for each class `c` present in the label
//!   map, `dice_c` on `(p_c, labels == c)`; the loss is the mean of `1 − dice_c` over the
//!   present classes. Absent classes get gradient only through the softmax normalisation.
//!   A label map with no voxel at all has no present class: loss 0, zero gradient.

pub mod cpu;
mod graph;

#[cfg(test)]
mod tests;

pub use graph::{dice_binary, dice_categorical, DiceBackward};

pub use cpu::{hard_dice_per_class, CategoricalDice};

use crate::ops::Real;
use crate::tensor::{numel, Result, TensorError};

/// The ε of both losses.
pub const EPS: f64 = 1e-5;

/// Binary Dice loss and `∂loss/∂logits` for `logits` and a same-sized 0/1 `target`.
pub fn binary_dice_loss<T: Real>(logits: &[T], target: &[T], eps: f64) -> Result<(f64, Vec<T>)> {
    if logits.len() != target.len() {
        return Err(TensorError::Invalid {
            op: "sigmoid_binary_dice_loss",
            message: format!(
                "target holds {} values, logits {}",
                target.len(),
                logits.len()
            ),
        });
    }
    let mut dlogits = vec![T::zero(); logits.len()];
    let loss = cpu::binary_dice_loss(logits, target, eps, &mut dlogits);
    Ok((loss, dlogits))
}

/// Checks a label map of `N·D·H·W` class indices against logits of `dims = [N, C, D, H, W]`.
fn check_labels(labels: &[u8], dims: [usize; 5], op: &'static str) -> Result<()> {
    let [n, c, d, h, w] = dims;
    let expected = numel(&[n, d, h, w])?;
    if labels.len() != expected {
        return Err(TensorError::Invalid {
            op,
            message: format!(
                "labels hold {} values, expected N·D·H·W = {expected} for logits {dims:?}",
                labels.len()
            ),
        });
    }
    if let Some((at, &bad)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= c) {
        return Err(TensorError::Invalid {
            op,
            message: format!("label {bad} at voxel {at} is not a class of the {c} logit channels"),
        });
    }
    Ok(())
}

/// Categorical Dice loss of `logits` (`dims`) against the label map; returns the loss with the
/// per-class soft Dice, and `∂loss/∂logits`.
pub fn categorical_dice_loss<T: Real>(
    logits: &[T],
    dims: [usize; 5],
    labels: &[u8],
    eps: f64,
) -> Result<(CategoricalDice, Vec<T>)> {
    const OP: &str = "softmax_categorical_dice_loss";
    let expected = numel(&dims)?;
    if logits.len() != expected {
        return Err(TensorError::Invalid {
            op: OP,
            message: format!("logits hold {} values, expected {expected}", logits.len()),
        });
    }
    check_labels(labels, dims, OP)?;
    let mut dlogits = vec![T::zero(); logits.len()];
    let result = cpu::categorical_dice_loss(logits, dims, labels, eps, &mut dlogits);
    Ok((result, dlogits))
}

/// Hard labels from logits: argmax over channels (first on ties), or `logits > 0` for `C = 1`.
pub fn predict_labels<T: Real>(logits: &[T], dims: [usize; 5]) -> Result<Vec<u8>> {
    let expected = numel(&dims)?;
    if logits.len() != expected || dims[1] == 0 || dims[1] > 256 {
        return Err(TensorError::Invalid {
            op: "predict_labels",
            message: format!(
                "logits hold {} values for shape {dims:?} (expected {expected}, 1 to 256 channels)",
                logits.len()
            ),
        });
    }
    Ok(cpu::predict_labels(logits, dims))
}
