//! The `emu` device: the CUDA kernels compiled for the CPU by build.rs through the shim in
//! `kernels/emu/`, and "device" memory that is host memory (a device pointer is a host address).

use std::alloc::{self, Layout};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::NonNull;

use super::{DevicePtr, KernelArgs, KernelLauncher, LaunchConfig, LaunchError};

const DEVICE: &str = "emu";

/// `cudaMalloc` aligns to 256 bytes; kernels may rely on it for vector loads.
const ALIGNMENT: usize = 256;

// Status codes of enamel_emu_launch (kernels/emu/launch.cpp).
const STATUS_OK: c_int = 0;
const STATUS_UNKNOWN_KERNEL: c_int = 1;
const STATUS_INVALID_CONFIG: c_int = 2;
const STATUS_ARGUMENT_MISMATCH: c_int = 3;
const STATUS_KERNEL_FAULT: c_int = 4;

extern "C" {
    fn enamel_emu_launch(
        name: *const c_char,
        grid: *const u32,
        block: *const u32,
        shared_bytes: u32,
        args: *mut *mut c_void,
        arg_sizes: *const usize,
        arg_count: usize,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
    fn enamel_emu_kernel_count() -> usize;
    fn enamel_emu_kernel_name(index: usize) -> *const c_char;
}

/// Runs kernels on the CPU emulator. Launches are synchronous: a kernel has finished, and any
/// fault has been reported, when [`KernelLauncher::launch`] returns.
#[derive(Clone, Copy, Debug, Default)]
pub struct EmuLauncher;

impl EmuLauncher {
    pub fn new() -> Self {
        Self
    }

    /// Names of all kernels compiled into the emulator.
    pub fn kernel_names(&self) -> Vec<String> {
        // SAFETY: the index functions only read the static kernel tables; every index below
        // the count names a kernel with a NUL-terminated static name.
        unsafe {
            (0..enamel_emu_kernel_count())
                .filter_map(|i| {
                    let name = enamel_emu_kernel_name(i);
                    (!name.is_null()).then(|| CStr::from_ptr(name).to_string_lossy().into_owned())
                })
                .collect()
        }
    }
}

impl KernelLauncher for EmuLauncher {
    fn device_name(&self) -> &'static str {
        DEVICE
    }

    unsafe fn launch(
        &self,
        kernel: &str,
        config: &LaunchConfig,
        args: &KernelArgs,
    ) -> Result<(), LaunchError> {
        config.validate(kernel)?;
        let name = CString::new(kernel).map_err(|_| LaunchError::BadName {
            name: kernel.to_string(),
        })?;
        let mut params = args.param_pointers();
        let mut error = vec![0u8; 2048];

        // SAFETY: all pointers passed live across the call; the caller vouches (see the trait)
        // that the device pointers in `args` are valid for what the kernel does with them.
        let status = unsafe {
            enamel_emu_launch(
                name.as_ptr(),
                config.grid.as_ptr(),
                config.block.as_ptr(),
                config.shared_bytes,
                params.as_mut_ptr(),
                args.sizes().as_ptr(),
                args.len(),
                error.as_mut_ptr().cast(),
                error.len(),
            )
        };
        if status == STATUS_OK {
            return Ok(());
        }

        let end = error.iter().position(|&b| b == 0).unwrap_or(error.len());
        let message = String::from_utf8_lossy(&error[..end]).into_owned();
        let kernel = kernel.to_string();
        Err(match status {
            STATUS_UNKNOWN_KERNEL => LaunchError::UnknownKernel {
                name: kernel,
                device: DEVICE,
            },
            STATUS_INVALID_CONFIG => LaunchError::InvalidConfig { kernel, message },
            STATUS_ARGUMENT_MISMATCH => LaunchError::ArgumentMismatch { kernel, message },
            STATUS_KERNEL_FAULT => LaunchError::KernelFault { kernel, message },
            _ => LaunchError::Device {
                device: DEVICE,
                message,
            },
        })
    }

    fn synchronize(&self) -> Result<(), LaunchError> {
        Ok(())
    }
}

/// A block of emulator "device" memory: host memory, 256-byte aligned, filled with 0xFF bytes
/// (NaN in f16/f32/f64) when allocated so that reading what no kernel wrote shows. Freed on drop.
#[derive(Debug)]
pub struct EmuBuffer {
    data: NonNull<u8>,
    bytes: usize,
}

// SAFETY: the buffer exclusively owns its allocation; it holds no thread-bound state.
unsafe impl Send for EmuBuffer {}
// SAFETY: shared references only read through `data` (copy_to_host); writes need `&mut self`.
unsafe impl Sync for EmuBuffer {}

impl EmuBuffer {
    pub fn alloc(bytes: usize) -> Result<Self, LaunchError> {
        let layout = Self::layout(bytes)?;
        // SAFETY: the layout has a nonzero size (at least one alignment unit).
        let data = unsafe { alloc::alloc(layout) };
        let data = NonNull::new(data).ok_or(LaunchError::OutOfMemory { requested: bytes })?;
        // SAFETY: `data` is a fresh allocation of `layout.size()` bytes.
        unsafe { std::ptr::write_bytes(data.as_ptr(), 0xff, layout.size()) };
        Ok(Self { data, bytes })
    }

    /// A buffer holding a copy of `values`.
    pub fn from_host<T: bytemuck::Pod>(values: &[T]) -> Result<Self, LaunchError> {
        let mut buffer = Self::alloc(std::mem::size_of_val(values))?;
        buffer.copy_from_host(values)?;
        Ok(buffer)
    }

    fn layout(bytes: usize) -> Result<Layout, LaunchError> {
        Layout::from_size_align(bytes.max(1).next_multiple_of(ALIGNMENT), ALIGNMENT)
            .map_err(|_| LaunchError::OutOfMemory { requested: bytes })
    }

    pub fn len_bytes(&self) -> usize {
        self.bytes
    }

    pub fn device_ptr(&self) -> DevicePtr {
        DevicePtr(self.data.as_ptr() as u64)
    }

    /// Copies `values` into the buffer; their size must equal the buffer's.
    pub fn copy_from_host<T: bytemuck::Pod>(&mut self, values: &[T]) -> Result<(), LaunchError> {
        let host: &[u8] = bytemuck::cast_slice(values);
        if host.len() != self.bytes {
            return Err(LaunchError::CopySize {
                buffer: self.bytes,
                host: host.len(),
            });
        }
        // SAFETY: the buffer owns `bytes` bytes at `data`; `host` is a distinct allocation.
        unsafe { std::ptr::copy_nonoverlapping(host.as_ptr(), self.data.as_ptr(), self.bytes) };
        Ok(())
    }

    /// Copies the buffer into `values`; their size must equal the buffer's.
    pub fn copy_to_host<T: bytemuck::Pod>(&self, values: &mut [T]) -> Result<(), LaunchError> {
        let host: &mut [u8] = bytemuck::cast_slice_mut(values);
        if host.len() != self.bytes {
            return Err(LaunchError::CopySize {
                buffer: self.bytes,
                host: host.len(),
            });
        }
        // SAFETY: as in copy_from_host, in the other direction.
        unsafe { std::ptr::copy_nonoverlapping(self.data.as_ptr(), host.as_mut_ptr(), self.bytes) };
        Ok(())
    }

    /// The buffer's contents as `len_bytes / size_of::<T>()` values.
    pub fn to_vec<T: bytemuck::Pod>(&self) -> Result<Vec<T>, LaunchError> {
        let size = std::mem::size_of::<T>();
        if size == 0 || !self.bytes.is_multiple_of(size) {
            return Err(LaunchError::CopySize {
                buffer: self.bytes,
                host: size,
            });
        }
        let mut values = vec![T::zeroed(); self.bytes / size];
        self.copy_to_host(&mut values)?;
        Ok(values)
    }
}

impl Drop for EmuBuffer {
    fn drop(&mut self) {
        if let Ok(layout) = Self::layout(self.bytes) {
            // SAFETY: `data` was allocated in `alloc` with this same layout.
            unsafe { alloc::dealloc(self.data.as_ptr(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_buffers_read_as_nan_and_copies_round_trip() {
        let mut buffer = EmuBuffer::alloc(12).unwrap();
        assert_eq!(buffer.device_ptr().0 % ALIGNMENT as u64, 0);
        assert!(buffer.to_vec::<f32>().unwrap().iter().all(|v| v.is_nan()));

        buffer.copy_from_host(&[1.0f32, -2.0, 3.5]).unwrap();
        assert_eq!(buffer.to_vec::<f32>().unwrap(), vec![1.0, -2.0, 3.5]);
        assert!(matches!(
            buffer.copy_from_host(&[1.0f32; 2]),
            Err(LaunchError::CopySize {
                buffer: 12,
                host: 8
            })
        ));
        assert!(matches!(
            buffer.to_vec::<f64>(),
            Err(LaunchError::CopySize { .. })
        ));
    }
}
