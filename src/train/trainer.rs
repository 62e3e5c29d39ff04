//! The training loop: forward, Dice loss, backward, loss scaling, optimizer step, with every
//! piece of state that `--resume` needs to continue exactly.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use super::config::{OptimizerKind, Precision, Stage, TrainConfig};
use super::data::{sample_batch, Sample};
use crate::autograd::Tape;
use crate::backend::Backend;
use crate::nn::UNet;
use crate::ops::dice::{dice_binary, dice_categorical};
use crate::optim::{Adam, AdamConfig, GradScaler, GradScalerConfig, RmsProp, RmsPropConfig};
use crate::rng::Rng;
use crate::tensor::{DType, Tensor};

pub enum Optimizer {
    Adam(Adam<f32>),
    RmsProp(RmsProp<f32>),
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, lr: f64, param_lens: &[usize]) -> Result<Self> {
        Ok(match kind {
            OptimizerKind::Adam => Optimizer::Adam(Adam::new(
                AdamConfig {
                    lr,
                    ..AdamConfig::default()
                },
                param_lens,
            )?),
            OptimizerKind::Rmsprop => Optimizer::RmsProp(RmsProp::new(
                RmsPropConfig {
                    lr,
                    ..RmsPropConfig::default()
                },
                param_lens,
            )?),
        })
    }

    fn step(&mut self, params: &mut [&mut [f32]], grads: &[&[f32]]) -> Result<()> {
        match self {
            Optimizer::Adam(o) => o.step(params, grads)?,
            Optimizer::RmsProp(o) => o.step(params, grads)?,
        }
        Ok(())
    }

    pub fn lr(&self) -> f64 {
        match self {
            Optimizer::Adam(o) => o.config.lr,
            Optimizer::RmsProp(o) => o.config.lr,
        }
    }
}

/// What one step did.
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    pub loss: f64,
    /// False when an inf/NaN gradient made the loss scaler skip the update.
    pub applied: bool,
    pub loss_scale: f32,
    pub seconds: f64,
}

pub struct Trainer {
    pub config: TrainConfig,
    pub net: UNet,
    pub optimizer: Optimizer,
    pub scaler: GradScaler,
    pub rng: Rng,
    /// Epochs completed.
    pub epoch: usize,
    /// Steps completed.
    pub step: u64,
    backend: Arc<dyn Backend>,
}

impl Trainer {
    pub fn new(config: TrainConfig, net: UNet, backend: Arc<dyn Backend>) -> Result<Self> {
        let mut net = net;
        let lens: Vec<usize> = net
            .parameters_mut()
            .iter()
            .map(|(_, t)| t.numel())
            .collect();
        let optimizer = Optimizer::new(config.optimizer, config.lr, &lens)?;
        let scaler = GradScaler::new(GradScalerConfig::default())?;
        let rng = Rng::new(config.seed ^ 0x5eed_7a11);
        Ok(Trainer {
            config,
            net,
            optimizer,
            scaler,
            rng,
            epoch: 0,
            step: 0,
            backend,
        })
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    fn dtype(&self) -> DType {
        match self.config.precision {
            Precision::F32 => DType::F32,
            Precision::Mixed => DType::F16,
        }
    }

    /// One optimisation step on a fresh batch.
    pub fn train_step(&mut self, samples: &[Sample]) -> Result<StepReport> {
        let started = Instant::now();
        let dtype = self.dtype();
        let batch = sample_batch(samples, &self.config, dtype, &mut self.rng)?;

        let mut tape = Tape::new(self.backend.clone());
        let x = tape.placed_leaf(batch.x, false)?;
        let forward = self.net.forward(&mut tape, x, true, dtype)?;
        let loss = match self.config.stage {
            Stage::Binary => dice_binary(&mut tape, forward.logits, &batch.target)?,
            Stage::Categories => dice_categorical(&mut tape, forward.logits, &batch.target)?,
        };
        let loss_value = tape.value(loss).as_f64()[0];

        // With f16 activations the loss is scaled so small gradients survive f16 storage.
        let scale = match self.config.precision {
            Precision::F32 => 1.0,
            Precision::Mixed => self.scaler.scale,
        };
        let mut grads = tape.backward(loss, Tensor::scalar(scale))?;
        let mut grad_values: Vec<Vec<f32>> = forward
            .params
            .iter()
            .map(|(name, var)| {
                let grad = grads
                    .take(*var)
                    .with_context(|| format!("no gradient reached {name}"))?;
                // Read back from the device (where it lives there) with errors reported.
                Ok(grad.into_host()?.to_f32_vec())
            })
            .collect::<Result<_>>()?;
        drop(tape);

        let applied = match self.config.precision {
            Precision::F32 => {
                let finite = grad_values.iter().all(|g| g.iter().all(|v| v.is_finite()));
                if finite {
                    self.apply(&grad_values)?;
                }
                finite
            }
            Precision::Mixed => {
                let mut views: Vec<&mut [f32]> =
                    grad_values.iter_mut().map(|g| g.as_mut_slice()).collect();
                let found_inf = self.scaler.unscale_and_check(&mut views);
                if !found_inf {
                    self.apply(&grad_values)?;
                }
                self.scaler.update(found_inf);
                !found_inf
            }
        };
        self.step += 1;
        Ok(StepReport {
            loss: loss_value,
            applied,
            loss_scale: self.scaler.scale,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    fn apply(&mut self, grads: &[Vec<f32>]) -> Result<()> {
        let mut params = self.net.parameters_mut();
        let mut views: Vec<&mut [f32]> = params
            .iter_mut()
            .map(|(name, t)| {
                t.f32_slice_mut()
                    .with_context(|| format!("parameter {name} is not stored as f32"))
            })
            .collect::<Result<_>>()?;
        let grad_views: Vec<&[f32]> = grads.iter().map(|g| g.as_slice()).collect();
        self.optimizer.step(&mut views, &grad_views)
    }
}
