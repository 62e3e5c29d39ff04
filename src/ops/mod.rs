//! The ops of the engine, one folder per op family. Each folder's `cpu.rs` holds the native
//! CPU forward and backward on f32 slices (the reference for the CUDA kernels and the
//! emulator); its `mod.rs` holds the shapes, checks and tests.

pub mod activation;
pub mod batch_norm;
pub mod concat;
pub mod conv3d;
pub mod conv_transpose3d;
pub mod dice;
#[cfg(test)]
pub(crate) mod gradcheck;
pub mod max_pool;
pub mod real;

pub use real::Real;
