//! Dynamic loss scaling for mixed precision, as `torch.amp.GradScaler`: the loss is multiplied
//! by `scale` before the backward; [`GradScaler::unscale_and_check`] divides the gradients by it
//! and reports any inf/NaN, in which case the caller SKIPS the optimizer step (parameters and
//! moments untouched); [`GradScaler::update`] then halves the scale and restarts the growth
//! count, or after `growth_interval` clean steps in a row doubles it.
//!
//! Like PyTorch the scale is an f32 and a growth that would overflow it to inf is not applied
//! (the count still restarts), so the scale stays finite. Unlike PyTorch, a backoff that would
//! underflow the scale to 0 is not applied either (that takes ~150 failed steps in a row).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{check_config, Result, CHUNK};
use crate::ops::Real;

const NAME: &str = "GradScaler";

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradScalerConfig {
    pub init_scale: f32,
    pub growth_factor: f32,
    pub backoff_factor: f32,
    pub growth_interval: u32,
}

impl Default for GradScalerConfig {
    /// PyTorch's defaults.
    fn default() -> Self {
        GradScalerConfig {
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
        }
    }
}

/// The scaler's whole state (all fields public for checkpoints).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradScaler {
    pub config: GradScalerConfig,
    /// The current loss scale.
    pub scale: f32,
    /// Clean steps in a row since the last change of the scale.
    pub growth_tracker: u32,
}

impl GradScaler {
    pub fn new(config: GradScalerConfig) -> Result<Self> {
        let GradScalerConfig {
            init_scale,
            growth_factor,
            backoff_factor,
            growth_interval,
        } = config;
        check_config(
            NAME,
            "init_scale",
            init_scale as f64,
            init_scale > 0.0,
            "> 0",
        )?;
        check_config(
            NAME,
            "growth_factor",
            growth_factor as f64,
            growth_factor > 1.0,
            "> 1",
        )?;
        let backoff_ok = backoff_factor > 0.0 && backoff_factor < 1.0;
        check_config(
            NAME,
            "backoff_factor",
            backoff_factor as f64,
            backoff_ok,
            "in (0, 1)",
        )?;
        check_config(
            NAME,
            "growth_interval",
            growth_interval as f64,
            growth_interval > 0,
            ">= 1",
        )?;
        Ok(GradScaler {
            config,
            scale: init_scale,
            growth_tracker: 0,
        })
    }

    /// Multiplies every gradient by `1/scale` (computed like PyTorch: in f64, rounded to f32)
    /// and returns whether any unscaled value is inf or NaN.
    pub fn unscale_and_check<T: Real>(&self, grads: &mut [&mut [T]]) -> bool {
        let inv_scale = T::of((1.0 / self.scale as f64) as f32 as f64);
        let mut found_inf = false;
        for grad in grads.iter_mut() {
            let bad = grad
                .par_chunks_mut(CHUNK)
                .map(|chunk| {
                    let mut bad = false;
                    for g in chunk.iter_mut() {
                        *g *= inv_scale;
                        bad |= !g.is_finite();
                    }
                    bad
                })
                .reduce(|| false, |a, b| a || b);
            found_inf |= bad;
        }
        found_inf
    }

    /// Adjusts the scale after a step: backoff and restart on `found_inf`, growth after
    /// `growth_interval` clean steps.
    pub fn update(&mut self, found_inf: bool) {
        if found_inf {
            let lower = self.scale * self.config.backoff_factor;
            if lower > 0.0 {
                self.scale = lower;
            }
            self.growth_tracker = 0;
            return;
        }
        self.growth_tracker += 1;
        if self.growth_tracker >= self.config.growth_interval {
            let higher = self.scale * self.config.growth_factor;
            if higher.is_finite() {
                self.scale = higher;
            }
            self.growth_tracker = 0;
        }
    }
}
