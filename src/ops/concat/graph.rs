//! Channel concatenation on the autograd tape.

use crate::autograd::{BackwardOp, Tape, Var};
use crate::backend::Backend;
use crate::tensor::{Result, Tensor};

/// `cat([a, b], dim = 1)`, a first.
pub fn concat(tape: &mut Tape, a: Var, b: Var) -> Result<Var> {
    let y = tape.backend().concat(tape.value(a), tape.value(b))?;
    let channels_a = tape.value(a).shape()[1];
    Ok(tape.record(y, &[a, b], || ConcatBackward { channels_a }))
}

/// Saved for backward: where the split goes.
pub struct ConcatBackward {
    channels_a: usize,
}

impl BackwardOp for ConcatBackward {
    fn name(&self) -> &'static str {
        "concat"
    }

    fn backward(
        &self,
        backend: &dyn Backend,
        gy: &Tensor,
        _: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let (da, db) = backend.split(gy, self.channels_a)?;
        Ok(vec![Some(da), Some(db)])
    }
}
