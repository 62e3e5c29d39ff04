//! The native CPU backend: runs the kernels of `ops::<op>` on the host. f16 storage is widened
//! to f32 and results are stored back in the input's storage type; f64 storage (the reference
//! mode) runs the same generic kernels in f64.

use std::borrow::Cow;

mod conv;
pub mod host_memory;
mod ops;

use conv::*;
use ops::*;

use super::{Backend, TransposeGeometry};
use crate::ops::batch_norm::{BatchStats, RunningStats};
use crate::ops::Real;
pub(super) use crate::tensor::{dims5, invalid};
use crate::tensor::{DType, Result, Tensor};

/// The `cpu` backend. Kernels run on rayon's global pool (`RAYON_NUM_THREADS` sets its size).
#[derive(Clone, Debug, Default)]
pub struct Cpu;

impl Cpu {
    pub fn new() -> Self {
        Cpu
    }
}

/// The arithmetic type of a call: f64 for f64 storage, f32 for f32 and f16.
pub(super) trait Compute: Real {
    fn read(t: &Tensor) -> Cow<'_, [Self]>;
    /// Values computed in this type, stored as `dtype` (f16 rounds to nearest).
    fn store(shape: &[usize], values: Vec<Self>, dtype: DType) -> Result<Tensor>;
    /// Small per-channel values (parameter gradients): f32, or f64 in the reference mode.
    fn param(shape: &[usize], values: Vec<Self>) -> Result<Tensor>;
    fn running(r: &RunningStats<f64>) -> RunningStats<Self>;
}

impl Compute for f32 {
    fn read(t: &Tensor) -> Cow<'_, [f32]> {
        t.as_f32()
    }

    fn store(shape: &[usize], values: Vec<f32>, dtype: DType) -> Result<Tensor> {
        Tensor::from_f32_as(shape, values, dtype)
    }

    fn param(shape: &[usize], values: Vec<f32>) -> Result<Tensor> {
        Tensor::from_f32(shape, values)
    }

    fn running(r: &RunningStats<f64>) -> RunningStats<f32> {
        RunningStats {
            running_mean: r.running_mean.iter().map(|&v| v as f32).collect(),
            running_var: r.running_var.iter().map(|&v| v as f32).collect(),
            num_batches_tracked: r.num_batches_tracked,
        }
    }
}

impl Compute for f64 {
    fn read(t: &Tensor) -> Cow<'_, [f64]> {
        t.as_f64()
    }

    fn store(shape: &[usize], values: Vec<f64>, _dtype: DType) -> Result<Tensor> {
        Tensor::from_f64(shape, values)
    }

    fn param(shape: &[usize], values: Vec<f64>) -> Result<Tensor> {
        Tensor::from_f64(shape, values)
    }

    fn running(r: &RunningStats<f64>) -> RunningStats<f64> {
        r.clone()
    }
}

/// Calls `$f::<f64>` for f64 storage of `$t` and `$f::<f32>` otherwise, after checking that
/// `$t` holds floating-point values.
macro_rules! by_precision {
    ($op:expr, $t:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match float_dtype($op, $t)? {
            DType::F64 => $f::<f64>($($arg),*),
            _ => $f::<f32>($($arg),*),
        }
    };
}

fn float_dtype(op: &'static str, t: &Tensor) -> Result<DType> {
    match t.dtype() {
        d @ (DType::F32 | DType::F16 | DType::F64) => Ok(d),
        other => Err(invalid(
            op,
            format!("expected floating-point storage, got {}", other.name()),
        )),
    }
}

impl Backend for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn conv3d(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        pad: usize,
    ) -> Result<Tensor> {
        by_precision!("conv3d", x, conv3d(x, weight, bias, pad))
    }

    fn conv3d_backward_input(
        &self,
        gy: &Tensor,
        weight: &Tensor,
        pad: usize,
        x_shape: &[usize],
    ) -> Result<Tensor> {
        by_precision!(
            "conv3d",
            gy,
            conv3d_backward_input(gy, weight, pad, x_shape)
        )
    }

    fn conv3d_backward_params(
        &self,
        x: &Tensor,
        gy: &Tensor,
        pad: usize,
        weight_shape: &[usize],
        bias: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        by_precision!(
            "conv3d",
            x,
            conv3d_backward_params(x, gy, pad, weight_shape, bias)
        )
    }

    fn conv_transpose3d(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        geometry: TransposeGeometry,
    ) -> Result<Tensor> {
        by_precision!(
            "conv_transpose3d",
            x,
            conv_transpose3d(x, weight, bias, geometry)
        )
    }

    fn conv_transpose3d_backward_input(
        &self,
        gy: &Tensor,
        weight: &Tensor,
        geometry: TransposeGeometry,
        x_shape: &[usize],
    ) -> Result<Tensor> {
        by_precision!(
            "conv_transpose3d",
            gy,
            conv_transpose3d_backward_input(gy, weight, geometry, x_shape)
        )
    }

    fn conv_transpose3d_backward_params(
        &self,
        x: &Tensor,
        gy: &Tensor,
        geometry: TransposeGeometry,
        weight_shape: &[usize],
        bias: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        by_precision!(
            "conv_transpose3d",
            x,
            conv_transpose3d_backward_params(x, gy, geometry, weight_shape, bias)
        )
    }

    fn batch_norm_train(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
    ) -> Result<(Tensor, BatchStats)> {
        by_precision!("batch_norm3d", x, batch_norm_train(x, gamma, beta, eps))
    }

    fn batch_norm_eval(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        running: &RunningStats<f64>,
        eps: f32,
    ) -> Result<Tensor> {
        by_precision!(
            "batch_norm3d",
            x,
            batch_norm_eval(x, gamma, beta, running, eps)
        )
    }

    fn batch_norm_backward_train(
        &self,
        x: &Tensor,
        gy: &Tensor,
        gamma: &Tensor,
        stats: &BatchStats,
        eps: f32,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        by_precision!(
            "batch_norm3d",
            gy,
            batch_norm_backward(x, gy, gamma, BnMode::Train(stats), eps)
        )
    }

    fn batch_norm_backward_eval(
        &self,
        x: &Tensor,
        gy: &Tensor,
        gamma: &Tensor,
        running: &RunningStats<f64>,
        eps: f32,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        by_precision!(
            "batch_norm3d",
            gy,
            batch_norm_backward(x, gy, gamma, BnMode::Eval(running), eps)
        )
    }

    fn max_pool3d(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        by_precision!("max_pool3d", x, max_pool3d(x))
    }

    fn max_pool3d_backward(
        &self,
        gy: &Tensor,
        indices: &Tensor,
        x_shape: &[usize],
    ) -> Result<Tensor> {
        by_precision!("max_pool3d", gy, max_pool3d_backward(gy, indices, x_shape))
    }

    fn relu(&self, x: &Tensor) -> Result<Tensor> {
        by_precision!("relu", x, relu(x))
    }

    fn relu_backward(&self, x: &Tensor, gy: &Tensor) -> Result<Tensor> {
        by_precision!("relu", gy, relu_backward(x, gy))
    }

    fn sigmoid(&self, x: &Tensor) -> Result<Tensor> {
        by_precision!("sigmoid", x, sigmoid(x))
    }

    fn sigmoid_backward(&self, y: &Tensor, gy: &Tensor) -> Result<Tensor> {
        by_precision!("sigmoid", gy, sigmoid_backward(y, gy))
    }

    fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        by_precision!("softmax", x, softmax(x))
    }

    fn softmax_backward(&self, y: &Tensor, gy: &Tensor) -> Result<Tensor> {
        by_precision!("softmax", gy, softmax_backward(y, gy))
    }

    fn concat(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        by_precision!("concat", a, concat_channels(a, b))
    }

    fn split(&self, y: &Tensor, channels_a: usize) -> Result<(Tensor, Tensor)> {
        by_precision!("concat", y, split_channels(y, channels_a))
    }

    fn dice_binary(&self, logits: &Tensor, target: &Tensor) -> Result<(f64, Tensor)> {
        by_precision!("dice_binary", logits, dice_binary(logits, target))
    }

    fn dice_categorical(&self, logits: &Tensor, labels: &Tensor) -> Result<(f64, Tensor)> {
        by_precision!("dice_categorical", logits, dice_categorical(logits, labels))
    }

    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        by_precision!("add", a, add(a, b))
    }

    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor> {
        by_precision!("scale", x, scale(x, s))
    }
}
