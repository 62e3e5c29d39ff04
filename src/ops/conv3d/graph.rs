//! conv3d on the autograd tape.

use std::sync::Arc;

use crate::autograd::{BackwardOp, Tape, Var};
use crate::backend::Backend;
use crate::tensor::{Result, Tensor};

/// `y = conv3d(x, weight) + bias`, stride 1, zero padding `pad`.
pub fn conv3d(tape: &mut Tape, x: Var, weight: Var, bias: Option<Var>, pad: usize) -> Result<Var> {
    let y = tape.backend().conv3d(
        tape.value(x),
        tape.value(weight),
        bias.map(|b| tape.value(b)),
        pad,
    )?;
    let inputs: Vec<Var> = [Some(x), Some(weight), bias]
        .into_iter()
        .flatten()
        .collect();
    let saved = Conv3dBackward {
        x: tape.shared(x),
        weight: tape.shared(weight),
        pad,
        has_bias: bias.is_some(),
    };
    Ok(tape.record(y, &inputs, || saved))
}

/// Saved for backward: the input and the weight.
pub struct Conv3dBackward {
    x: Arc<Tensor>,
    weight: Arc<Tensor>,
    pad: usize,
    has_bias: bool,
}

impl BackwardOp for Conv3dBackward {
    fn name(&self) -> &'static str {
        "conv3d"
    }

    fn backward(
        &self,
        backend: &dyn Backend,
        gy: &Tensor,
        needed: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let dx = if needed[0] {
            Some(backend.conv3d_backward_input(gy, &self.weight, self.pad, self.x.shape())?)
        } else {
            None
        };
        let params_needed = needed[1..].iter().any(|&n| n);
        let (dweight, dbias) = if params_needed {
            let (dw, db) = backend.conv3d_backward_params(
                &self.x,
                gy,
                self.pad,
                self.weight.shape(),
                self.has_bias,
            )?;
            (Some(dw), db)
        } else {
            (None, None)
        };
        let mut grads = vec![dx, dweight];
        if self.has_bias {
            grads.push(dbias);
        }
        Ok(grads)
    }
}
