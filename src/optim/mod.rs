//! Optimizers with PyTorch's exact update rules (Adam, RMSprop) and dynamic loss scaling
//! (`torch.amp.GradScaler`). Parameters and gradients are flat slices, one per parameter
//! tensor; the state is kept per parameter in public fields, so a checkpoint can save and
//! restore it. Generic over [`Real`](crate::ops::Real): the engine uses f32 master weights,
//! the tests also run f64.

mod adam;
mod grad_scaler;
mod rmsprop;

#[cfg(test)]
mod tests;

pub use adam::{Adam, AdamConfig, AdamState};
pub use grad_scaler::{GradScaler, GradScalerConfig};
pub use rmsprop::{RmsProp, RmsPropConfig, RmsPropState};

use thiserror::Error;

/// What can go wrong when an optimizer is built or stepped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OptimError {
    #[error("{optimizer}: {field} = {value} is invalid; expected {expected}")]
    Config {
        optimizer: &'static str,
        field: &'static str,
        value: f64,
        expected: &'static str,
    },

    #[error("{optimizer}: {got} {what} for {expected} parameters")]
    Count {
        optimizer: &'static str,
        what: &'static str,
        expected: usize,
        got: usize,
    },

    #[error("{optimizer}: parameter {index} holds {expected} values but its {what} holds {got}")]
    Length {
        optimizer: &'static str,
        index: usize,
        what: &'static str,
        expected: usize,
        got: usize,
    },
}

pub type Result<T> = std::result::Result<T, OptimError>;

/// Elements per parallel task of an element-wise update.
const CHUNK: usize = 1 << 14;

/// An error unless `value` lies in the accepted range.
fn check_config(
    optimizer: &'static str,
    field: &'static str,
    value: f64,
    ok: bool,
    expected: &'static str,
) -> Result<()> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(OptimError::Config {
            optimizer,
            field,
            value,
            expected,
        })
    }
}

/// The checks shared by every optimizer: `lr`, `eps` and `weight_decay` finite and >= 0.
fn check_lr_eps_weight_decay(
    optimizer: &'static str,
    lr: f64,
    eps: f64,
    weight_decay: f64,
) -> Result<()> {
    check_config(optimizer, "lr", lr, lr >= 0.0, "lr >= 0")?;
    check_config(optimizer, "eps", eps, eps >= 0.0, "eps >= 0")?;
    check_config(
        optimizer,
        "weight_decay",
        weight_decay,
        weight_decay >= 0.0,
        ">= 0",
    )
}

/// An error unless there is one gradient and one state of the right length per parameter.
fn check_params<T>(
    optimizer: &'static str,
    params: &[&mut [T]],
    grads: &[&[T]],
    state_lens: &[usize],
) -> Result<()> {
    for (what, got) in [("parameters", params.len()), ("gradients", grads.len())] {
        if got != state_lens.len() {
            return Err(OptimError::Count {
                optimizer,
                what,
                expected: state_lens.len(),
                got,
            });
        }
    }
    for (index, (p, g)) in params.iter().zip(grads).enumerate() {
        for (what, got) in [
            ("gradient", g.len()),
            ("optimizer state", state_lens[index]),
        ] {
            if got != p.len() {
                return Err(OptimError::Length {
                    optimizer,
                    index,
                    what,
                    expected: p.len(),
                    got,
                });
            }
        }
    }
    Ok(())
}
