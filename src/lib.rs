//! enamel: a 3D U-Net training engine with hand-written CUDA kernels, and the dental CT tooth
//! segmenter built on it.
//!
//! Layers, bottom up: [`tensor`] (shapes, f32/f16 storage), [`ops`] (one folder per op family:
//! forward and backward on the CPU, the reference every other backend is checked against),
//! [`backend`] (the op interface the autograd tape calls), [`autograd`] (the tape), [`nn`]
//! (the reference U-Net and checkpoints), [`optim`] (Adam, RMSprop, loss scaling), [`io`]
//! (NRRD, NIfTI, volumes), [`preprocess`], [`phantom`].

pub mod autograd;
pub mod backend;
pub mod fixtures;
pub mod infer;
pub mod io;
pub mod launch;
pub mod mesh;
pub mod metrics;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod perf;
pub mod phantom;
pub mod preprocess;
pub mod rng;
pub mod segment;
pub mod selftest;
pub mod tensor;
pub mod train;

pub use tensor::{DType, Tensor, TensorError};
