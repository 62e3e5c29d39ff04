//! Adam, PyTorch's single-tensor rule (no AMSGrad; `weight_decay` is the L2 kind added to the
//! gradient, not AdamW):
//!
//! ```text
//! g = grad + weight_decay·p
//! m = m + (1 − β1)·(g − m)            v = β2·v + (1 − β2)·g²
//! p = p − lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + eps)
//! ```
//! with `t` the 1-based step of the parameter. The scalars are computed in f64 and the
//! element-wise work in the parameter type.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{check_config, check_lr_eps_weight_decay, check_params, Result, CHUNK};
use crate::ops::Real;

const NAME: &str = "Adam";

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    /// PyTorch's defaults.
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// The state of one parameter: PyTorch's `step`, `exp_avg`, `exp_avg_sq`.
#[derive(Clone, Debug, PartialEq)]
pub struct AdamState<T> {
    pub step: u64,
    pub exp_avg: Vec<T>,
    pub exp_avg_sq: Vec<T>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Adam<T = f32> {
    pub config: AdamConfig,
    /// One state per parameter, in the order of the slices given to [`Adam::step`].
    pub states: Vec<AdamState<T>>,
}

impl<T: Real> Adam<T> {
    /// Zero moments for parameters of the given lengths; an error for an invalid config.
    pub fn new(config: AdamConfig, param_lens: &[usize]) -> Result<Self> {
        let AdamConfig {
            lr,
            betas: (b1, b2),
            eps,
            weight_decay,
        } = config;
        check_lr_eps_weight_decay(NAME, lr, eps, weight_decay)?;
        check_config(
            NAME,
            "betas.0",
            b1,
            (0.0..1.0).contains(&b1),
            "0 <= beta1 < 1",
        )?;
        check_config(
            NAME,
            "betas.1",
            b2,
            (0.0..1.0).contains(&b2),
            "0 <= beta2 < 1",
        )?;
        let states = param_lens
            .iter()
            .map(|&n| AdamState {
                step: 0,
                exp_avg: vec![T::zero(); n],
                exp_avg_sq: vec![T::zero(); n],
            })
            .collect();
        Ok(Adam { config, states })
    }

    /// One update of every parameter with its gradient.
    pub fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        let lens: Vec<usize> = self
            .states
            .iter()
            .map(|s| s.exp_avg.len().min(s.exp_avg_sq.len()))
            .collect();
        check_params(NAME, params, grads, &lens)?;
        for ((param, grad), state) in params.iter_mut().zip(grads).zip(&mut self.states) {
            update(&self.config, state, param, grad);
        }
        Ok(())
    }
}

fn update<T: Real>(config: &AdamConfig, state: &mut AdamState<T>, param: &mut [T], grad: &[T]) {
    state.step += 1;
    let (b1, b2) = config.betas;
    let t = state.step as f64;
    let step_size = T::of(config.lr / (1.0 - b1.powf(t)));
    let bias_correction2_sqrt = T::of((1.0 - b2.powf(t)).sqrt());
    let (w1, b2, w2) = (T::of(1.0 - b1), T::of(b2), T::of(1.0 - config.betas.1));
    let (eps, weight_decay) = (T::of(config.eps), T::of(config.weight_decay));

    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(state.exp_avg.par_chunks_mut(CHUNK))
        .zip(state.exp_avg_sq.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| {
            for i in 0..p.len() {
                let g = if config.weight_decay != 0.0 {
                    g[i] + weight_decay * p[i]
                } else {
                    g[i]
                };
                m[i] += w1 * (g - m[i]);
                v[i] = v[i] * b2 + w2 * g * g;
                let denom = v[i].sqrt() / bias_correction2_sqrt + eps;
                p[i] -= step_size * (m[i] / denom);
            }
        });
}
