//! relu, sigmoid and softmax on the autograd tape.

use std::sync::Arc;

use crate::autograd::{BackwardOp, Tape, Var};
use crate::backend::Backend;
use crate::tensor::{Result, Tensor};

pub fn relu(tape: &mut Tape, x: Var) -> Result<Var> {
    let y = Arc::new(tape.backend().relu(tape.value(x))?);
    // y > 0 exactly where x > 0, so the output serves as the mask and x can be freed.
    let saved = ReluBackward { y: Arc::clone(&y) };
    Ok(tape.record_shared(y, &[x], || saved))
}

pub fn sigmoid(tape: &mut Tape, x: Var) -> Result<Var> {
    let y = Arc::new(tape.backend().sigmoid(tape.value(x))?);
    let saved = SigmoidBackward { y: Arc::clone(&y) };
    Ok(tape.record_shared(y, &[x], || saved))
}

/// Softmax over the channels of a 5-D tensor.
pub fn softmax(tape: &mut Tape, x: Var) -> Result<Var> {
    let y = Arc::new(tape.backend().softmax(tape.value(x))?);
    let saved = SoftmaxBackward { y: Arc::clone(&y) };
    Ok(tape.record_shared(y, &[x], || saved))
}

/// Saved for backward: the output (its sign is the input's).
pub struct ReluBackward {
    y: Arc<Tensor>,
}

impl BackwardOp for ReluBackward {
    fn name(&self) -> &'static str {
        "relu"
    }

    fn backward(
        &self,
        backend: &dyn Backend,
        gy: &Tensor,
        _: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(backend.relu_backward(&self.y, gy)?)])
    }
}

/// Saved for backward: the output.
pub struct SigmoidBackward {
    y: Arc<Tensor>,
}

impl BackwardOp for SigmoidBackward {
    fn name(&self) -> &'static str {
        "sigmoid"
    }

    fn backward(
        &self,
        backend: &dyn Backend,
        gy: &Tensor,
        _: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(backend.sigmoid_backward(&self.y, gy)?)])
    }
}

/// Saved for backward: the output.
pub struct SoftmaxBackward {
    y: Arc<Tensor>,
}

impl BackwardOp for SoftmaxBackward {
    fn name(&self) -> &'static str {
        "softmax"
    }

    fn backward(
        &self,
        backend: &dyn Backend,
        gy: &Tensor,
        _: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(backend.softmax_backward(&self.y, gy)?)])
    }
}
