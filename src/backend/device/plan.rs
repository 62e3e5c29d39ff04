//! The `plan` device: runs no kernel and holds no memory, but goes through every allocation
//! and launch of the device backend, so a computation's device memory is measured exactly —
//! for a GPU that is not here. Allocations are the same calls, in the same order and sizes, as
//! on `cuda`, and the caching allocator counts them the same way; launches are checked
//! (configuration, kernel name) and skipped. Values read back are zeros, so what a plan
//! computes is meaningless; only its memory figures and its errors are.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{DeviceApi, RawBuffer};
use crate::launch::emu::EmuLauncher;
use crate::launch::{DevicePtr, KernelArgs, LaunchConfig, LaunchError};

/// Device addresses handed out by the plan, spaced like real allocations.
const ALIGNMENT: u64 = 256;

pub struct PlanDevice {
    kernels: HashSet<String>,
    next_address: AtomicU64,
}

impl Default for PlanDevice {
    fn default() -> Self {
        PlanDevice {
            kernels: EmuLauncher::new().kernel_names().into_iter().collect(),
            next_address: AtomicU64::new(ALIGNMENT),
        }
    }
}

impl DeviceApi for PlanDevice {
    fn name(&self) -> &'static str {
        "plan"
    }

    fn alloc(&self, bytes: usize) -> Result<Box<dyn RawBuffer>, LaunchError> {
        let span = (bytes as u64).max(1).div_ceil(ALIGNMENT) * ALIGNMENT;
        let address = self.next_address.fetch_add(span, Ordering::Relaxed);
        Ok(Box::new(PlanBuffer { address, bytes }))
    }

    unsafe fn launch(
        &self,
        kernel: &str,
        config: &LaunchConfig,
        _args: &KernelArgs,
    ) -> Result<(), LaunchError> {
        config.validate(kernel)?;
        if !self.kernels.contains(kernel) {
            return Err(LaunchError::UnknownKernel {
                name: kernel.to_string(),
                device: "plan",
            });
        }
        Ok(())
    }

    fn synchronize(&self) -> Result<(), LaunchError> {
        Ok(())
    }
}

/// An allocation of the plan: an address and a size, no memory.
struct PlanBuffer {
    address: u64,
    bytes: usize,
}

impl PlanBuffer {
    fn check_size(&self, host: usize) -> Result<(), LaunchError> {
        if host == self.bytes {
            Ok(())
        } else {
            Err(LaunchError::CopySize {
                buffer: self.bytes,
                host,
            })
        }
    }
}

impl RawBuffer for PlanBuffer {
    fn ptr(&self) -> DevicePtr {
        DevicePtr(self.address)
    }

    fn len_bytes(&self) -> usize {
        self.bytes
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), LaunchError> {
        self.check_size(bytes.len())
    }

    fn read(&self, out: &mut [u8]) -> Result<(), LaunchError> {
        self.check_size(out.len())?;
        out.fill(0);
        Ok(())
    }
}
