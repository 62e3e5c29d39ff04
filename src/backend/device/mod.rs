//! The backend of the CUDA kernels, shared by `emu` (the kernels compiled for the host) and
//! `cuda` (the same kernels compiled by NVRTC): every op uploads its inputs, launches kernels
//! through the one launch layer, and downloads its result.
//!
//! TODO: tensors live on the host between ops, so every op pays an upload and a download.
//! That is right for testing kernels and launches on the emulator; on a real GPU the tensors
//! should stay resident in device memory (a device storage variant of `Tensor`).

mod allocator;
pub mod conv;
mod kernels;
mod loss;
mod memory;
mod norm;
mod ops;
mod optim;

pub use allocator::{CachingAllocator, MemoryStats};
pub use memory::RawBuffer;

use std::sync::Arc;

use crate::launch::emu::{EmuBuffer, EmuLauncher};
use crate::launch::{DevicePtr, KernelArgs, KernelLauncher, LaunchConfig, LaunchError};
use crate::tensor::{DType, HostData, Result, Tensor, TensorError};

/// A device: something that launches kernels and allocates memory for them.
pub trait DeviceApi: Send + Sync {
    fn name(&self) -> &'static str;
    fn alloc(&self, bytes: usize) -> std::result::Result<Box<dyn RawBuffer>, LaunchError>;
    /// # Safety
    /// The arguments must match the kernel's parameters and every pointer must address a
    /// live buffer large enough for what the kernel touches.
    unsafe fn launch(
        &self,
        kernel: &str,
        config: &LaunchConfig,
        args: &KernelArgs,
    ) -> std::result::Result<(), LaunchError>;
    fn synchronize(&self) -> std::result::Result<(), LaunchError>;
}

/// The emulator as a device.
#[derive(Default)]
pub struct EmuDevice {
    launcher: EmuLauncher,
}

impl DeviceApi for EmuDevice {
    fn name(&self) -> &'static str {
        "emu"
    }

    fn alloc(&self, bytes: usize) -> std::result::Result<Box<dyn RawBuffer>, LaunchError> {
        Ok(Box::new(EmuBuffer::alloc(bytes)?))
    }

    unsafe fn launch(
        &self,
        kernel: &str,
        config: &LaunchConfig,
        args: &KernelArgs,
    ) -> std::result::Result<(), LaunchError> {
        // SAFETY: forwarded; the caller upholds the contract.
        unsafe { self.launcher.launch(kernel, config, args) }
    }

    fn synchronize(&self) -> std::result::Result<(), LaunchError> {
        self.launcher.synchronize()
    }
}

/// A tensor's values in device memory, with the shape and storage type they came with.
pub struct DeviceTensor {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub buffer: Box<dyn RawBuffer>,
}

impl DeviceTensor {
    pub fn ptr(&self) -> DevicePtr {
        self.buffer.ptr()
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

pub(crate) fn launch_error(op: &'static str, e: LaunchError) -> TensorError {
    TensorError::Invalid {
        op,
        message: e.to_string(),
    }
}

/// The device backend: kernels on a [`DeviceApi`], memory through a [`CachingAllocator`].
#[derive(Clone)]
pub struct Device {
    api: Arc<dyn DeviceApi>,
    allocator: CachingAllocator,
}

impl Device {
    /// A device with no memory budget.
    pub fn new(api: Arc<dyn DeviceApi>) -> Self {
        Device::with_budget(api, None)
    }

    /// A device that holds at most `budget` bytes of device memory (in use plus cached).
    pub fn with_budget(api: Arc<dyn DeviceApi>, budget: Option<usize>) -> Self {
        Device {
            api,
            allocator: CachingAllocator::new(budget),
        }
    }

    /// The emulator: the CUDA kernels compiled for this CPU.
    pub fn emu() -> Self {
        Device::new(Arc::new(EmuDevice::default()))
    }

    /// Bytes in use, cached and at the peak, and the budget.
    pub fn memory_stats(&self) -> MemoryStats {
        self.allocator.stats()
    }

    /// Returns the cached (freed) buffers to the device.
    pub fn release_cached_memory(&self) {
        self.allocator.release_cached();
    }

    pub fn api(&self) -> &dyn DeviceApi {
        self.api.as_ref()
    }

    /// Uninitialised device memory for `shape` values stored as `dtype`.
    pub fn alloc(&self, op: &'static str, shape: &[usize], dtype: DType) -> Result<DeviceTensor> {
        let bytes = crate::tensor::numel(shape)? * dtype.size();
        let buffer = self
            .allocator
            .alloc(self.api.as_ref(), bytes)
            .map_err(|e| TensorError::Invalid {
                op,
                message: e.to_string(),
            })?;
        Ok(DeviceTensor {
            shape: shape.to_vec(),
            dtype,
            buffer,
        })
    }

    /// A copy of `t` in device memory, in its own storage type.
    pub fn upload(&self, op: &'static str, t: &Tensor) -> Result<DeviceTensor> {
        let mut d = self.alloc(op, t.shape(), t.dtype())?;
        let bytes: &[u8] = match t.data() {
            HostData::F32(v) => bytemuck::cast_slice(v),
            HostData::F16(v) => bytemuck::cast_slice(v),
            HostData::U8(v) => v,
            HostData::I32(v) => bytemuck::cast_slice(v),
            HostData::F64(v) => bytemuck::cast_slice(v),
        };
        d.buffer.write(bytes).map_err(|e| launch_error(op, e))?;
        Ok(d)
    }

    /// Values on the host, f32 widened to `t`'s storage type: for small per-channel vectors
    /// (bias, BN statistics) that kernels read as f32.
    pub fn upload_f32(
        &self,
        op: &'static str,
        shape: &[usize],
        values: &[f32],
    ) -> Result<DeviceTensor> {
        self.upload(op, &Tensor::from_f32(shape, values.to_vec())?)
    }

    /// The device values as a host tensor.
    pub fn download(&self, op: &'static str, d: &DeviceTensor) -> Result<Tensor> {
        self.api.synchronize().map_err(|e| launch_error(op, e))?;
        let n = d.numel();
        let read = |out: &mut [u8]| d.buffer.read(out).map_err(|e| launch_error(op, e));
        match d.dtype {
            DType::F32 => {
                let mut v = vec![0.0f32; n];
                read(bytemuck::cast_slice_mut(&mut v))?;
                Tensor::from_f32(&d.shape, v)
            }
            DType::F16 => {
                let mut v = vec![half::f16::ZERO; n];
                read(bytemuck::cast_slice_mut(&mut v))?;
                Tensor::from_f16(&d.shape, v)
            }
            DType::U8 => {
                let mut v = vec![0u8; n];
                read(&mut v)?;
                Tensor::from_u8(&d.shape, v)
            }
            DType::I32 => {
                let mut v = vec![0i32; n];
                read(bytemuck::cast_slice_mut(&mut v))?;
                Tensor::from_i32(&d.shape, v)
            }
            DType::F64 => {
                let mut v = vec![0.0f64; n];
                read(bytemuck::cast_slice_mut(&mut v))?;
                Tensor::from_f64(&d.shape, v)
            }
        }
    }

    /// Launches `kernel`; errors name the op and the kernel.
    ///
    /// # Safety
    /// As [`DeviceApi::launch`].
    pub unsafe fn launch(
        &self,
        op: &'static str,
        kernel: &str,
        config: LaunchConfig,
        args: &KernelArgs,
    ) -> Result<()> {
        config.validate(kernel).map_err(|e| launch_error(op, e))?;
        // SAFETY: forwarded; the caller upholds the contract.
        unsafe { self.api.launch(kernel, &config, args) }.map_err(|e| launch_error(op, e))
    }
}
