//! batch_norm3d on the autograd tape, with PyTorch's running statistics.

use std::sync::Arc;

use crate::autograd::{BackwardOp, Tape, Var};
use crate::backend::Backend;
use crate::tensor::{Result, Tensor, TensorError};

/// The buffers of a BatchNorm3d layer (PyTorch's `running_mean`, `running_var`,
/// `num_batches_tracked`).
#[derive(Clone, Debug, PartialEq)]
pub struct RunningStats {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub num_batches_tracked: i64,
}

impl RunningStats {
    /// PyTorch's initial state: mean 0, variance 1, no batch seen.
    pub fn new(channels: usize) -> Self {
        RunningStats {
            mean: vec![0.0; channels],
            var: vec![1.0; channels],
            num_batches_tracked: 0,
        }
    }

    /// `running ← (1 − momentum)·running + momentum·batch`, with the UNBIASED batch variance
    /// (biased · M/(M−1)).
    pub fn update(
        &mut self,
        batch_mean: &[f32],
        batch_var_biased: &[f32],
        count: usize,
        momentum: f32,
    ) {
        let correction = count as f64 / (count as f64 - 1.0);
        for c in 0..self.mean.len() {
            let unbiased = batch_var_biased[c] as f64 * correction;
            self.mean[c] = ((1.0 - momentum as f64) * self.mean[c] as f64
                + momentum as f64 * batch_mean[c] as f64) as f32;
            self.var[c] =
                ((1.0 - momentum as f64) * self.var[c] as f64 + momentum as f64 * unbiased) as f32;
        }
        self.num_batches_tracked += 1;
    }
}

/// Hyper-parameters of a batch norm layer (PyTorch defaults: momentum 0.1, eps 1e-5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    pub momentum: f32,
    pub eps: f32,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            momentum: 0.1,
            eps: 1e-5,
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
    running: &mut RunningStats,
    training: bool,
    config: BatchNormConfig,
) -> Result<Var> {
    let [n, c, d, h, w] = tape.value(x).dims5("batch_norm3d")?;
    for (name, var) in [("weight", gamma), ("bias", beta)] {
        if tape.value(var).numel() != c {
            return Err(TensorError::Invalid {
                op: "batch_norm3d",
                message: format!(
                    "{name} has {} values for {c} channels",
                    tape.value(var).numel()
                ),
            });
        }
    }
    if running.mean.len() != c || running.var.len() != c {
        return Err(TensorError::Invalid {
            op: "batch_norm3d",
            message: format!(
                "running statistics hold {} channels, input has {c}",
                running.mean.len()
            ),
        });
    }

    let backend = tape.backend();
    let (y, mean, var) = if training {
        let count = n * d * h * w;
        if count < 2 {
            return Err(TensorError::Invalid {
                op: "batch_norm3d",
                message: format!(
                    "training needs more than one value per channel, got {count} (input {:?})",
                    [n, c, d, h, w]
                ),
            });
        }
        let (y, stats) = backend.batch_norm_train(
            tape.value(x),
            tape.value(gamma),
            tape.value(beta),
            config.eps,
        )?;
        running.update(&stats.mean, &stats.var, stats.count, config.momentum);
        (y, stats.mean, stats.var)
    } else {
        let y = backend.batch_norm_eval(
            tape.value(x),
            tape.value(gamma),
            tape.value(beta),
            &running.mean,
            &running.var,
            config.eps,
        )?;
        (y, running.mean.clone(), running.var.clone())
    };

    let saved = BatchNormBackward {
        x: tape.shared(x),
        gamma: tape.shared(gamma),
        mean,
        var,
        eps: config.eps,
        training,
    };
    Ok(tape.record(y, &[x, gamma, beta], || saved))
}

/// Saved for backward: the input, gamma, and the statistics that normalised it.
pub struct BatchNormBackward {
    x: Arc<Tensor>,
    gamma: Arc<Tensor>,
    mean: Vec<f32>,
    var: Vec<f32>,
    eps: f32,
    training: bool,
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
        let (dx, dgamma, dbeta) = backend.batch_norm_backward(
            &self.x,
            gy,
            &self.gamma,
            &self.mean,
            &self.var,
            self.eps,
            self.training,
        )?;
        Ok(vec![Some(dx), Some(dgamma), Some(dbeta)])
    }
}
