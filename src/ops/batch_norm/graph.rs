//! batch_norm3d on the autograd tape, with PyTorch's running statistics.

use std::sync::Arc;

use super::{BatchStats, RunningStats, EPS, MOMENTUM};
use crate::autograd::{BackwardOp, Tape, Var};
use crate::backend::Backend;
use crate::tensor::{Result, Tensor, TensorError};

/// Hyper-parameters of a batch norm layer (PyTorch defaults: momentum 0.1, eps 1e-5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    pub momentum: f64,
    pub eps: f64,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            momentum: MOMENTUM,
            eps: EPS,
        }
    }
}

/// Batch norm over the channels of a 5-D tensor. In training mode the batch statistics
/// normalise `x` and update `running`; in eval mode `running` normalises and is left alone.
pub fn batch_norm(
    tape: &mut Tape,
    x: Var,
    gamma: Var,
    beta: Var,
    running: &mut RunningStats<f64>,
    training: bool,
    config: BatchNormConfig,
) -> Result<Var> {
    let c = tape.value(x).dims5("batch_norm3d")?[1];
    if running.running_mean.len() != c || running.running_var.len() != c {
        return Err(TensorError::Invalid {
            op: "batch_norm3d",
            message: format!(
                "running statistics hold {} channels, the input has {c}",
                running.running_mean.len()
            ),
        });
    }

    let backend = tape.backend();
    let eps = config.eps as f32;
    let (y, saved) = if training {
        let (y, stats) =
            backend.batch_norm_train(tape.value(x), tape.value(gamma), tape.value(beta), eps)?;
        running.update(&stats, config.momentum);
        (y, Saved::Batch(stats))
    } else {
        let y = backend.batch_norm_eval(
            tape.value(x),
            tape.value(gamma),
            tape.value(beta),
            running,
            eps,
        )?;
        (y, Saved::Running(running.clone()))
    };

    let op = BatchNormBackward {
        x: tape.shared(x),
        gamma: tape.shared(gamma),
        saved,
        eps,
    };
    Ok(tape.record(y, &[x, gamma, beta], || op))
}

/// The statistics that normalised the input.
enum Saved {
    /// Training mode: the batch's own, which depend on x.
    Batch(BatchStats),
    /// Eval mode: the running statistics, constants for backward.
    Running(RunningStats<f64>),
}

/// Saved for backward: the input, gamma, and the statistics that normalised it.
pub struct BatchNormBackward {
    x: Arc<Tensor>,
    gamma: Arc<Tensor>,
    saved: Saved,
    eps: f32,
}

impl BackwardOp for BatchNormBackward {
    fn name(&self) -> &'static str {
        "batch_norm3d"
    }

    fn backward(
        &self,
        backend: &dyn Backend,
        gy: &Tensor,
        _needed: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let (dx, dgamma, dbeta) = match &self.saved {
            Saved::Batch(stats) => {
                backend.batch_norm_backward_train(&self.x, gy, &self.gamma, stats, self.eps)?
            }
            Saved::Running(running) => {
                backend.batch_norm_backward_eval(&self.x, gy, &self.gamma, running, self.eps)?
            }
        };
        Ok(vec![Some(dx), Some(dgamma), Some(dbeta)])
    }
}
