//! max_pool3d (kernel 2, stride 2) on the autograd tape.

use crate::autograd::{BackwardOp, Tape, Var};
use crate::backend::Backend;
use crate::tensor::{Result, Tensor};

pub fn max_pool3d(tape: &mut Tape, x: Var) -> Result<Var> {
    let (y, indices) = tape.backend().max_pool3d(tape.value(x))?;
    let x_shape = tape.value(x).shape().to_vec();
    Ok(tape.record(y, &[x], || MaxPool3dBackward { indices, x_shape }))
}

/// Saved for backward: where each output's maximum came from, and the input's shape.
pub struct MaxPool3dBackward {
    indices: Tensor,
    x_shape: Vec<usize>,
}

impl BackwardOp for MaxPool3dBackward {
    fn name(&self) -> &'static str {
        "max_pool3d"
    }

    fn backward(
        &self,
        backend: &dyn Backend,
        gy: &Tensor,
        _needed: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(backend.max_pool3d_backward(
            gy,
            &self.indices,
            &self.x_shape,
        )?)])
    }
}
