//! RMSprop, PyTorch's single-tensor rule without momentum and not centred:
//!
//! ```text
//! g = grad + weight_decay·p
//! v = α·v + (1 − α)·g²
//! p = p − lr · g / (sqrt(v) + eps)
//! ```
//! (`eps` outside the square root, as in PyTorch).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{check_config, check_lr_eps_weight_decay, check_params, Result, CHUNK};
use crate::ops::Real;

const NAME: &str = "RMSprop";

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RmsPropConfig {
    pub lr: f64,
    pub alpha: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for RmsPropConfig {
    /// PyTorch's defaults.
    fn default() -> Self {
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// The state of one parameter: PyTorch's `step` and `square_avg`.
#[derive(Clone, Debug, PartialEq)]
pub struct RmsPropState<T> {
    pub step: u64,
    pub square_avg: Vec<T>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RmsProp<T = f32> {
    pub config: RmsPropConfig,
    /// One state per parameter, in the order of the slices given to [`RmsProp::step`].
    pub states: Vec<RmsPropState<T>>,
}

impl<T: Real> RmsProp<T> {
    /// Zero averages for parameters of the given lengths; an error for an invalid config.
    pub fn new(config: RmsPropConfig, param_lens: &[usize]) -> Result<Self> {
        let RmsPropConfig {
            lr,
            alpha,
            eps,
            weight_decay,
        } = config;
        check_lr_eps_weight_decay(NAME, lr, eps, weight_decay)?;
        check_config(
            NAME,
            "alpha",
            alpha,
            (0.0..=1.0).contains(&alpha),
            "0 <= alpha <= 1",
        )?;
        let states = param_lens
            .iter()
            .map(|&n| RmsPropState {
                step: 0,
                square_avg: vec![T::zero(); n],
            })
            .collect();
        Ok(RmsProp { config, states })
    }

    /// One update of every parameter with its gradient.
    pub fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        let lens: Vec<usize> = self.states.iter().map(|s| s.square_avg.len()).collect();
        check_params(NAME, params, grads, &lens)?;
        let config = self.config;
        let (lr, alpha, w) = (
            T::of(config.lr),
            T::of(config.alpha),
            T::of(1.0 - config.alpha),
        );
        let (eps, weight_decay) = (T::of(config.eps), T::of(config.weight_decay));

        for ((param, grad), state) in params.iter_mut().zip(grads).zip(&mut self.states) {
            state.step += 1;
            param
                .par_chunks_mut(CHUNK)
                .zip(grad.par_chunks(CHUNK))
                .zip(state.square_avg.par_chunks_mut(CHUNK))
                .for_each(|((p, g), v)| {
                    for i in 0..p.len() {
                        let g = if config.weight_decay != 0.0 {
                            g[i] + weight_decay * p[i]
                        } else {
                            g[i]
                        };
                        v[i] = v[i] * alpha + w * g * g;
                        p[i] -= lr * (g / (v[i].sqrt() + eps));
                    }
                });
        }
        Ok(())
    }
}
