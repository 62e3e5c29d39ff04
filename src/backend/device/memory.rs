//! Device memory as the device backends see it: raw buffers behind one small trait, so the
//! emulator's host memory and CUDA's device memory are used the same way.

use crate::launch::emu::EmuBuffer;
use crate::launch::{DevicePtr, LaunchError};

/// A block of device memory. Reads and writes copy whole buffers.
pub trait RawBuffer: Send + Sync {
    fn ptr(&self) -> DevicePtr;
    fn len_bytes(&self) -> usize;
    fn write(&mut self, bytes: &[u8]) -> Result<(), LaunchError>;
    fn read(&self, out: &mut [u8]) -> Result<(), LaunchError>;
}

impl RawBuffer for EmuBuffer {
    fn ptr(&self) -> DevicePtr {
        self.device_ptr()
    }

    fn len_bytes(&self) -> usize {
        EmuBuffer::len_bytes(self)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), LaunchError> {
        self.copy_from_host(bytes)
    }

    fn read(&self, out: &mut [u8]) -> Result<(), LaunchError> {
        self.copy_to_host(out)
    }
}
