//! Dice losses on the autograd tape. The gradient with respect to the logits is computed
//! together with the loss (one pass over the data) and scaled by the upstream gradient.

use crate::autograd::{BackwardOp, Tape, Var};
use crate::backend::Backend;
use crate::tensor::{DType, Result, Tensor, TensorError};

/// Sigmoid + binary Dice over the whole batch; `target` is a 0/1 tensor shaped like `logits`.
pub fn dice_binary(tape: &mut Tape, logits: Var, target: &Tensor) -> Result<Var> {
    let (loss, dlogits) = tape.backend().dice_binary(tape.value(logits), target)?;
    Ok(
        tape.record(loss_tensor(loss, &dlogits), &[logits], || DiceBackward {
            dlogits,
        }),
    )
}

/// Softmax + categorical Dice averaged over the classes present in `labels` (u8 N,D,H,W).
pub fn dice_categorical(tape: &mut Tape, logits: Var, labels: &Tensor) -> Result<Var> {
    let (loss, dlogits) = tape
        .backend()
        .dice_categorical(tape.value(logits), labels)?;
    Ok(
        tape.record(loss_tensor(loss, &dlogits), &[logits], || DiceBackward {
            dlogits,
        }),
    )
}

/// The loss as a one-element tensor: f64 in the CPU reference mode, f32 otherwise.
fn loss_tensor(loss: f64, dlogits: &Tensor) -> Tensor {
    match dlogits.dtype() {
        DType::F64 => Tensor::from_f64(&[1], vec![loss]).expect("one value"),
        _ => Tensor::scalar(loss as f32),
    }
}

/// Saved for backward: d loss / d logits.
pub struct DiceBackward {
    dlogits: Tensor,
}

impl BackwardOp for DiceBackward {
    fn name(&self) -> &'static str {
        "dice_loss"
    }

    fn backward(
        &self,
        backend: &dyn Backend,
        gy: &Tensor,
        _: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let scale = match gy.as_f64().as_ref() {
            [s] => *s,
            _ => {
                return Err(TensorError::Invalid {
                    op: "dice_loss",
                    message: format!("the gradient of a scalar loss has shape {:?}", gy.shape()),
                })
            }
        };
        Ok(vec![Some(backend.scale(&self.dlogits, scale as f32)?)])
    }
}
