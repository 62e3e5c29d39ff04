//! `--device`: which backend runs the ops.

use std::sync::Arc;

use anyhow::{bail, Result};
use enamel::backend::device::Device;
use enamel::backend::{Backend, Cpu};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    /// A CUDA GPU when one can be used, else the CPU (with a notice).
    Auto,
    /// The native CPU backend.
    Cpu,
    /// The CUDA kernels run by NVRTC on a GPU.
    Cuda,
    /// The CUDA kernels compiled for this CPU (slow; for testing kernels).
    Emu,
}

pub fn backend(choice: DeviceChoice) -> Result<Arc<dyn Backend>> {
    match choice {
        DeviceChoice::Cpu => Ok(Arc::new(Cpu::new())),
        DeviceChoice::Emu => Ok(Arc::new(Device::emu())),
        DeviceChoice::Cuda => bail!(
            "the cuda backend is not available in this build yet: the kernels run on `emu` \
             (the emulator) and the native `cpu` backend; use --device cpu"
        ),
        DeviceChoice::Auto => {
            // TODO: try the cuda backend first once it exists; until then auto means cpu.
            eprintln!("note: no usable CUDA backend in this build; running on the cpu backend");
            Ok(Arc::new(Cpu::new()))
        }
    }
}
