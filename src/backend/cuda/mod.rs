//! The `cuda` backend: the kernels of `kernels/` compiled by NVRTC for the GPU's exact
//! architecture and launched through the CUDA driver (cudarc, loaded at run time, so the
//! crate builds and runs without any CUDA installed).
//!
//! - [`probe`]: finds libcuda and libnvrtc before cudarc is called (it panics on a missing
//!   library) and turns their absence into an error that says where it looked.
//! - [`sources`]: the kernel sources, embedded in the binary.
//! - [`compile`]: NVRTC to cubin, with a disk cache; testable without a GPU.
//! - [`device`]: [`CudaDevice`], the [`crate::backend::device::DeviceApi`] on a GPU.

pub mod compile;
mod device;
pub mod probe;
pub mod sources;

pub use compile::{default_cache_dir, KernelCompiler};
pub use device::CudaDevice;
pub use probe::LibrarySearch;

use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CudaError {
    #[error("cannot load {library}: looked for {looked}; {hint}")]
    Library {
        library: &'static str,
        looked: String,
        hint: &'static str,
    },

    #[error("NVRTC {call}: {message}")]
    Nvrtc { call: &'static str, message: String },

    #[error("NVRTC could not compile {file} (options: {options}):\n{log}")]
    Compile {
        file: String,
        options: String,
        log: String,
    },

    #[error("CUDA driver, {call}: {message}")]
    Driver { call: String, message: String },

    #[error("no CUDA device {ordinal}: the driver sees {count} device(s)")]
    NoDevice { ordinal: usize, count: usize },

    #[error("{var}={value:?} is not {expected}")]
    BadEnv {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
}
