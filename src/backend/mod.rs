//! The op interface every backend implements: `cpu` (native Rust, the reference), `emu` (the
//! CUDA kernels compiled for the host) and `cuda`. The autograd tape and the U-Net call only
//! this trait, so a network runs unchanged on any backend.
//!
//! Tensors may be stored as f32 or f16; every method computes in f32 and returns its result in
//! the storage type of its main input (gradients of parameters are always f32). The `cpu`
//! backend also accepts f64 storage and then computes in f64: its reference mode, checked
//! against the float64 PyTorch fixtures.

pub mod choice;
mod cpu;
pub mod cuda;
pub mod device;

pub use cpu::{host_memory, Cpu};

use crate::ops::batch_norm::{BatchStats, RunningStats};
use crate::tensor::{Result, Tensor};

/// Geometry of a transposed convolution (cubic kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransposeGeometry {
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub output_padding: usize,
}

impl TransposeGeometry {
    /// The U-Net's upsampling: kernel 2, stride 2, no padding.
    pub const K2S2: TransposeGeometry = TransposeGeometry {
        kernel: 2,
        stride: 2,
        pad: 0,
        output_padding: 0,
    };
}

/// A point in a backend's stream of work, from [`Backend::mark`].
pub enum Mark {
    /// The host clock, read when all work queued before it had finished.
    Host(std::time::Instant),
    /// A device's own marker (a CUDA event), read on the device's clock.
    Device(Box<dyn std::any::Any + Send + Sync>),
}

pub trait Backend: Send + Sync {
    fn name(&self) -> &'static str;

    /// Marks the point the work queued so far will have reached, for timing it with
    /// [`Backend::seconds_since`]. A backend whose ops return finished work reads the clock.
    fn mark(&self) -> Result<Mark> {
        Ok(Mark::Host(std::time::Instant::now()))
    }

    /// Seconds of work from `start` to everything queued now, waiting for it to finish: on a
    /// GPU measured by the device between two events, so neither the launches' host overhead
    /// nor a late read of the clock is counted.
    fn seconds_since(&self, start: &Mark) -> Result<f64> {
        match start {
            Mark::Host(t) => Ok(t.elapsed().as_secs_f64()),
            Mark::Device(_) => Err(crate::tensor::invalid(
                "timing",
                format!("a device mark given to the {} backend", self.name()),
            )),
        }
    }

    /// The most device memory in use at once so far, for backends that manage device memory.
    fn peak_memory_bytes(&self) -> Option<u64> {
        None
    }

    /// `t` where this backend's ops read it fastest: a device backend copies it into device
    /// memory once (an input that several ops read), the CPU keeps it as it is.
    fn place(&self, t: Tensor) -> Result<Tensor> {
        Ok(t)
    }

    /// Cross-correlation, stride 1, zero padding `pad` on every side.
    fn conv3d(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        pad: usize,
    ) -> Result<Tensor>;
    fn conv3d_backward_input(
        &self,
        gy: &Tensor,
        weight: &Tensor,
        pad: usize,
        x_shape: &[usize],
    ) -> Result<Tensor>;
    /// Gradients of the weight and (when `bias`) the bias, both f32.
    fn conv3d_backward_params(
        &self,
        x: &Tensor,
        gy: &Tensor,
        pad: usize,
        weight_shape: &[usize],
        bias: bool,
    ) -> Result<(Tensor, Option<Tensor>)>;

    /// Transposed convolution; weight layout `in,out,k,k,k` as in PyTorch.
    fn conv_transpose3d(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        geometry: TransposeGeometry,
    ) -> Result<Tensor>;
    fn conv_transpose3d_backward_input(
        &self,
        gy: &Tensor,
        weight: &Tensor,
        geometry: TransposeGeometry,
        x_shape: &[usize],
    ) -> Result<Tensor>;
    fn conv_transpose3d_backward_params(
        &self,
        x: &Tensor,
        gy: &Tensor,
        geometry: TransposeGeometry,
        weight_shape: &[usize],
        bias: bool,
    ) -> Result<(Tensor, Option<Tensor>)>;

    /// Training-mode batch norm: normalise with the batch mean and biased variance, which it
    /// returns (accumulated in f64).
    fn batch_norm_train(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
    ) -> Result<(Tensor, BatchStats)>;
    /// Eval-mode batch norm with the given (running) statistics.
    fn batch_norm_eval(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        running: &RunningStats<f64>,
        eps: f32,
    ) -> Result<Tensor>;
    /// Gradients of x, gamma and beta after a training-mode forward (the batch statistics
    /// depend on x).
    fn batch_norm_backward_train(
        &self,
        x: &Tensor,
        gy: &Tensor,
        gamma: &Tensor,
        stats: &BatchStats,
        eps: f32,
    ) -> Result<(Tensor, Tensor, Tensor)>;
    /// Gradients of x, gamma and beta after an eval-mode forward (fixed statistics).
    fn batch_norm_backward_eval(
        &self,
        x: &Tensor,
        gy: &Tensor,
        gamma: &Tensor,
        running: &RunningStats<f64>,
        eps: f32,
    ) -> Result<(Tensor, Tensor, Tensor)>;

    /// Max-pool, kernel 2, stride 2, floor mode. Returns the output and, per output element,
    /// the flat index `d·H·W + h·W + w` of the chosen input element (i32).
    fn max_pool3d(&self, x: &Tensor) -> Result<(Tensor, Tensor)>;
    fn max_pool3d_backward(
        &self,
        gy: &Tensor,
        indices: &Tensor,
        x_shape: &[usize],
    ) -> Result<Tensor>;

    fn relu(&self, x: &Tensor) -> Result<Tensor>;
    /// `gy` where `x > 0`, else 0.
    fn relu_backward(&self, x: &Tensor, gy: &Tensor) -> Result<Tensor>;
    fn sigmoid(&self, x: &Tensor) -> Result<Tensor>;
    /// `gy · y · (1 − y)` from the sigmoid's output `y`.
    fn sigmoid_backward(&self, y: &Tensor, gy: &Tensor) -> Result<Tensor>;
    /// Softmax over the channel axis of a 5-D tensor.
    fn softmax(&self, x: &Tensor) -> Result<Tensor>;
    /// `y · (gy − Σ_c gy·y)` from the softmax's output `y`.
    fn softmax_backward(&self, y: &Tensor, gy: &Tensor) -> Result<Tensor>;

    /// Channel concatenation `[a, b]` (a first).
    fn concat(&self, a: &Tensor, b: &Tensor) -> Result<Tensor>;
    /// The inverse of `concat`: the first `channels_a` channels and the rest.
    fn split(&self, y: &Tensor, channels_a: usize) -> Result<(Tensor, Tensor)>;

    /// Sigmoid + binary Dice over the whole batch: the loss and d loss / d logits.
    fn dice_binary(&self, logits: &Tensor, target: &Tensor) -> Result<(f64, Tensor)>;
    /// Softmax + categorical Dice averaged over the classes present in `labels` (u8, N,D,H,W):
    /// the loss and d loss / d logits.
    fn dice_categorical(&self, logits: &Tensor, labels: &Tensor) -> Result<(f64, Tensor)>;

    /// `a + b`, elementwise (gradient accumulation).
    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor>;
    /// `x · s`, elementwise.
    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor>;
}
