//! conv_transpose3d on the autograd tape.

use std::sync::Arc;

use crate::autograd::{BackwardOp, Tape, Var};
use crate::backend::{Backend, TransposeGeometry};
use crate::tensor::{Result, Tensor};

/// `y = conv_transpose3d(x, weight) + bias` with weight layout `in,out,k,k,k`.
pub fn conv_transpose3d(
    tape: &mut Tape,
    x: Var,
    weight: Var,
    bias: Option<Var>,
    geometry: TransposeGeometry,
) -> Result<Var> {
    let y = tape.backend().conv_transpose3d(
        tape.value(x),
        tape.value(weight),
        bias.map(|b| tape.value(b)),
        geometry,
    )?;
    let inputs: Vec<Var> = [Some(x), Some(weight), bias]
        .into_iter()
        .flatten()
        .collect();
    let saved = ConvTranspose3dBackward {
        x: tape.shared(x),
        weight: tape.shared(weight),
        geometry,
        has_bias: bias.is_some(),
    };
    Ok(tape.record(y, &inputs, || saved))
}

/// Saved for backward: the input and the weight.
pub struct ConvTranspose3dBackward {
    x: Arc<Tensor>,
    weight: Arc<Tensor>,
    geometry: TransposeGeometry,
    has_bias: bool,
}

impl BackwardOp for ConvTranspose3dBackward {
    fn name(&self) -> &'static str {
        "conv_transpose3d"
    }

    fn backward(
        &self,
        backend: &dyn Backend,
        gy: &Tensor,
        needed: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let dx = if needed[0] {
            Some(backend.conv_transpose3d_backward_input(
                gy,
                &self.weight,
                self.geometry,
                self.x.shape(),
            )?)
        } else {
            None
        };
        let (dweight, dbias) = if needed[1..].iter().any(|&n| n) {
            let (dw, db) = backend.conv_transpose3d_backward_params(
                &self.x,
                gy,
                self.geometry,
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
