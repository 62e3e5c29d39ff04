//! The backend of the CUDA kernels, shared by `emu` (the kernels compiled for the host) and
//! `cuda` (the same kernels compiled by NVRTC): ops launch kernels through the one launch
//! layer and return their results resident in device memory ([`Tensor::resident`]), so a
//! network's activations and gradients stay on the device from op to op. A host tensor is
//! uploaded when an op first needs it; values come back to the host only when host code reads
//! them (a loss, a reduction's sums, the parameter gradients for the optimizer). The bytes
//! copied each way are counted ([`Device::transfers`]).

mod allocator;
pub mod conv;
mod kernels;
mod loss;
mod memory;
mod norm;
mod ops;
mod optim;
mod plan;

pub use allocator::{CachingAllocator, MemoryStats};
pub use memory::RawBuffer;
pub use plan::PlanDevice;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::backend::Mark;
use crate::launch::emu::{EmuBuffer, EmuLauncher};
use crate::launch::{DevicePtr, KernelArgs, KernelLauncher, LaunchConfig, LaunchError};
use crate::tensor::{DType, HostData, ResidentBuffer, Result, Tensor, TensorError};

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

    /// Marks the point the launches so far will have reached (after them, on the device's
    /// clock). By default: waits for them and reads the host clock.
    fn mark(&self) -> std::result::Result<Mark, LaunchError> {
        self.synchronize()?;
        Ok(Mark::Host(std::time::Instant::now()))
    }

    /// Seconds between two marks of this device, waiting for the later one.
    fn seconds_between(&self, start: &Mark, end: &Mark) -> std::result::Result<f64, LaunchError> {
        match (start, end) {
            (Mark::Host(a), Mark::Host(b)) => Ok(b.duration_since(*a).as_secs_f64()),
            _ => Err(LaunchError::Device {
                device: self.name(),
                message: "marks of another device cannot be timed here".into(),
            }),
        }
    }
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

/// A tensor's values on the device for one op: its own buffer when it is resident on this
/// device, else a fresh upload.
pub enum Staged<'a> {
    Resident(&'a DeviceTensor),
    Uploaded(DeviceTensor),
}

impl std::ops::Deref for Staged<'_> {
    type Target = DeviceTensor;

    fn deref(&self) -> &DeviceTensor {
        match self {
            Staged::Resident(d) => d,
            Staged::Uploaded(d) => d,
        }
    }
}

/// Bytes copied between host and device since the device was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transfers {
    pub to_device: u64,
    pub to_host: u64,
}

#[derive(Default)]
struct TransferCounters {
    to_device: AtomicU64,
    to_host: AtomicU64,
}

/// A device buffer behind a resident [`Tensor`]; holds its device so that reading it back
/// can wait for the kernels that write it.
struct ResidentValues {
    device: Device,
    values: DeviceTensor,
    /// Argmax indices written by this device's max_pool3d (so known to be in their windows).
    pool_indices: bool,
}

impl ResidentBuffer for ResidentValues {
    fn len_bytes(&self) -> usize {
        self.values.buffer.len_bytes()
    }

    fn read(&self, out: &mut [u8]) -> std::result::Result<(), String> {
        self.device
            .read_back(&self.values, out)
            .map_err(|e| e.to_string())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn invalid_op(op: &'static str, e: TensorError) -> TensorError {
    TensorError::Invalid {
        op,
        message: e.to_string(),
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
    transfers: Arc<TransferCounters>,
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
            transfers: Arc::default(),
        }
    }

    /// Identifies this device (and its clones, which share its memory).
    fn id(&self) -> usize {
        Arc::as_ptr(&self.transfers) as usize
    }

    /// Bytes copied to and from the device so far.
    pub fn transfers(&self) -> Transfers {
        Transfers {
            to_device: self.transfers.to_device.load(Ordering::Relaxed),
            to_host: self.transfers.to_host.load(Ordering::Relaxed),
        }
    }

    /// The resident values behind `t` when they are on this device under `t`'s shape (a
    /// reshaped resident tensor is read back and uploaded again, as a host tensor would be).
    fn resident_values<'a>(&self, t: &'a Tensor) -> Option<&'a ResidentValues> {
        let values = t
            .resident_buffer()?
            .as_any()
            .downcast_ref::<ResidentValues>()?;
        (values.device.id() == self.id() && values.values.shape == t.shape()).then_some(values)
    }

    /// `t`'s values when they are resident on this device.
    fn resident<'a>(&self, t: &'a Tensor) -> Option<&'a DeviceTensor> {
        self.resident_values(t).map(|v| &v.values)
    }

    /// Whether `t` holds indices that this device's max_pool3d wrote.
    pub(super) fn made_pool_indices(&self, t: &Tensor) -> bool {
        self.resident_values(t).is_some_and(|v| v.pool_indices)
    }

    /// Whether `t` is resident on this device.
    pub fn holds(&self, t: &Tensor) -> bool {
        self.resident(t).is_some()
    }

    /// `values` as a tensor that stays resident on this device.
    pub fn keep(&self, op: &'static str, values: DeviceTensor) -> Result<Tensor> {
        self.keep_as(op, values, false)
    }

    fn keep_as(
        &self,
        op: &'static str,
        values: DeviceTensor,
        pool_indices: bool,
    ) -> Result<Tensor> {
        let (shape, dtype) = (values.shape.clone(), values.dtype);
        let buffer = Arc::new(ResidentValues {
            device: self.clone(),
            values,
            pool_indices,
        });
        Tensor::resident(&shape, dtype, buffer).map_err(|e| invalid_op(op, e))
    }

    /// Max-pool indices this device wrote, kept resident and marked as such.
    pub(super) fn keep_pool_indices(&self, values: DeviceTensor) -> Result<Tensor> {
        self.keep_as("max_pool3d", values, true)
    }

    /// Waits for the kernels, then copies `d`'s bytes into `out`.
    fn read_back(&self, d: &DeviceTensor, out: &mut [u8]) -> std::result::Result<(), LaunchError> {
        self.api.synchronize()?;
        d.buffer.read(out)?;
        self.transfers
            .to_host
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// The emulator: the CUDA kernels compiled for this CPU.
    pub fn emu() -> Self {
        Device::new(Arc::new(EmuDevice::default()))
    }

    /// A device that runs nothing and measures the device memory of what runs on it
    /// ([`PlanDevice`]), within `budget` bytes if given.
    pub fn plan(budget: Option<usize>) -> Self {
        Device::with_budget(Arc::new(PlanDevice::default()), budget)
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

    /// `t` on this device for an op that only reads it: where it is when it is resident
    /// here, else uploaded.
    pub fn upload<'a>(&self, op: &'static str, t: &'a Tensor) -> Result<Staged<'a>> {
        match self.resident(t) {
            Some(d) => Ok(Staged::Resident(d)),
            None => self.upload_copy(op, t).map(Staged::Uploaded),
        }
    }

    /// A copy of `t` in device memory of its own, in its own storage type, for a kernel that
    /// changes it in place: copied on the device when it is resident here, else uploaded.
    pub fn upload_copy(&self, op: &'static str, t: &Tensor) -> Result<DeviceTensor> {
        let t = match self.resident(t) {
            Some(values) if values.buffer.len_bytes() % 2 == 0 => {
                return self.copy_on_device(op, values);
            }
            // Odd byte counts (u8 labels) go through the host.
            Some(_) => std::borrow::Cow::Owned(t.to_host()?),
            None => std::borrow::Cow::Borrowed(t),
        };
        let mut d = self.alloc(op, t.shape(), t.dtype())?;
        let bytes: &[u8] = match t.data() {
            HostData::F32(v) => bytemuck::cast_slice(v),
            HostData::F16(v) => bytemuck::cast_slice(v),
            HostData::U8(v) => v,
            HostData::I32(v) => bytemuck::cast_slice(v),
            HostData::F64(v) => bytemuck::cast_slice(v),
        };
        d.buffer.write(bytes).map_err(|e| launch_error(op, e))?;
        self.transfers
            .to_device
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(d)
    }

    /// A fresh buffer holding `values`' bytes, copied by a kernel.
    fn copy_on_device(&self, op: &'static str, values: &DeviceTensor) -> Result<DeviceTensor> {
        let copy = self.alloc(op, &values.shape, values.dtype)?;
        let units = values.buffer.len_bytes() / 2;
        let args = KernelArgs::new()
            .ptr(values.ptr())
            .ptr(copy.ptr())
            .i64(units as i64);
        let config = kernels::grid_1d(units);
        // SAFETY: both buffers hold `units` 16-bit units.
        unsafe { self.launch(op, "copy_halfwords", config, &args) }?;
        Ok(copy)
    }

    /// Device memory for `shape` values of `dtype` (4 bytes each: f32 or i32), all zero bits.
    pub fn zeros(&self, op: &'static str, shape: &[usize], dtype: DType) -> Result<DeviceTensor> {
        if dtype.size() != 4 {
            return Err(TensorError::Invalid {
                op,
                message: format!("zeroed device buffers are f32 or i32, not {}", dtype.name()),
            });
        }
        let d = self.alloc(op, shape, dtype)?;
        let n = d.numel();
        let args = KernelArgs::new().ptr(d.ptr()).i64(n as i64);
        // SAFETY: d holds n 32-bit words.
        unsafe { self.launch(op, "zero_words", kernels::grid_1d(n), &args) }?;
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
        self.upload_copy(op, &Tensor::from_f32(shape, values.to_vec())?)
    }

    /// The device values as a host tensor (for small results the host needs at once:
    /// reductions' sums, flags).
    pub fn download(&self, op: &'static str, d: &DeviceTensor) -> Result<Tensor> {
        let n = d.numel();
        let read = |out: &mut [u8]| self.read_back(d, out).map_err(|e| launch_error(op, e));
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
