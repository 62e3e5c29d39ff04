//! [`CudaDevice`]: one GPU as a [`DeviceApi`]. A context on one device, the context's default
//! stream for every launch and copy (so copies and kernels are ordered without events), and
//! one module per kernel file, compiled and loaded the first time one of its kernels runs.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};

use cudarc::driver::{result, sys, CudaContext, CudaEvent, CudaFunction, CudaModule};
use cudarc::nvrtc::Ptx;

use super::compile::{arch_for, default_cache_dir, KernelCompiler};
use super::probe::LibrarySearch;
use super::sources::file_of;
use super::CudaError;
use crate::backend::device::{DeviceApi, RawBuffer};
use crate::backend::Mark;
use crate::launch::{DevicePtr, KernelArgs, LaunchConfig, LaunchError};

const DEVICE: &str = "cuda";

fn driver(call: &str) -> impl Fn(result::DriverError) -> CudaError + '_ {
    move |e| CudaError::Driver {
        call: call.to_string(),
        message: e.to_string(),
    }
}

fn device_error(message: String) -> LaunchError {
    LaunchError::Device {
        device: DEVICE,
        message,
    }
}

fn poisoned<T>(_: T) -> LaunchError {
    device_error("a kernel table lock was poisoned by a panic".into())
}

/// A GPU with the enamel kernels.
pub struct CudaDevice {
    ctx: Arc<CudaContext>,
    ordinal: usize,
    arch: String,
    device_name: String,
    total_memory: usize,
    compiler: KernelCompiler,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<String, CudaFunction>>,
}

impl CudaDevice {
    /// The device `$ENAMEL_CUDA_DEVICE` (default 0), with libraries found through
    /// [`LibrarySearch::from_env`] and cubins cached in [`default_cache_dir`].
    pub fn from_env() -> Result<Self, CudaError> {
        let ordinal = match std::env::var("ENAMEL_CUDA_DEVICE") {
            Ok(value) => value.trim().parse().map_err(|_| CudaError::BadEnv {
                var: "ENAMEL_CUDA_DEVICE",
                value,
                expected: "a device number (0, 1, ...)",
            })?,
            Err(_) => 0,
        };
        CudaDevice::open(&LibrarySearch::from_env(), ordinal, default_cache_dir())
    }

    /// Device `ordinal`: loads the libraries, creates the context and reads the device's
    /// architecture and memory. Kernels are compiled later, when first launched.
    pub fn open(
        search: &LibrarySearch,
        ordinal: usize,
        cache_dir: Option<std::path::PathBuf>,
    ) -> Result<Self, CudaError> {
        search.load_cuda()?;
        search.load_nvrtc()?;
        result::init().map_err(driver("cuInit"))?;
        let count = result::device::get_count().map_err(driver("cuDeviceGetCount"))?;
        let count = usize::try_from(count).unwrap_or(0);
        if ordinal >= count {
            return Err(CudaError::NoDevice { ordinal, count });
        }
        let ctx = CudaContext::new(ordinal).map_err(driver("cuDevicePrimaryCtxRetain"))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(driver("cuDeviceGetAttribute"))?;
        let total_memory = ctx.total_mem().map_err(driver("cuDeviceTotalMem"))?;
        let device_name = ctx.name().map_err(driver("cuDeviceGetName"))?;
        let compiler = KernelCompiler::new(cache_dir)?;
        // CUDA 13 dropped the architectures before sm_75; a system NVRTC 13 can shadow the
        // 12.x one (cudarc opens `libnvrtc.so` before `libnvrtc.so.12`).
        let (nvrtc_major, nvrtc_minor) = compiler.nvrtc();
        if nvrtc_major >= 13 && major * 10 + minor < 75 {
            return Err(CudaError::Nvrtc {
                call: "nvrtcVersion",
                message: format!(
                    "NVRTC {nvrtc_major}.{nvrtc_minor} cannot compile for {device_name} \
                     ({}); put NVRTC 12.x first (ENAMEL_NVRTC_DIR with \
                     nvidia-cuda-nvrtc-cu12, and LD_LIBRARY_PATH)",
                    arch_for(major, minor)
                ),
            });
        }
        Ok(CudaDevice {
            ctx,
            ordinal,
            arch: arch_for(major, minor),
            device_name,
            total_memory,
            compiler,
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
        })
    }

    /// The device's memory in bytes.
    pub fn total_memory(&self) -> usize {
        self.total_memory
    }

    /// `sm_XY` of the device.
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// E.g. `cuda:0 NVIDIA GeForce GTX 1060 6GB (sm_61, 6144 MiB, NVRTC 12.9)`.
    pub fn describe(&self) -> String {
        let (major, minor) = self.compiler.nvrtc();
        format!(
            "cuda:{} {} ({}, {} MiB, NVRTC {major}.{minor})",
            self.ordinal,
            self.device_name,
            self.arch,
            self.total_memory >> 20
        )
    }

    fn bind(&self) -> Result<(), LaunchError> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| device_error(format!("cuCtxSetCurrent: {e}")))
    }

    /// The function `kernel`, loading (and if need be compiling) its file's module first.
    fn function(&self, kernel: &str) -> Result<CudaFunction, LaunchError> {
        if let Some(f) = self.functions.lock().map_err(poisoned)?.get(kernel) {
            return Ok(f.clone());
        }
        let file = file_of(kernel).ok_or_else(|| LaunchError::UnknownKernel {
            name: kernel.to_string(),
            device: DEVICE,
        })?;

        let module = {
            let mut modules = self.modules.lock().map_err(poisoned)?;
            match modules.get(file.name) {
                Some(module) => module.clone(),
                None => {
                    let module = self.load_module(file)?;
                    modules.insert(file.name, module.clone());
                    module
                }
            }
        };
        let function = module
            .load_function(kernel)
            .map_err(|e| LaunchError::KernelFault {
                kernel: kernel.to_string(),
                message: format!("cuModuleGetFunction in {}: {e}", file.name),
            })?;
        self.functions
            .lock()
            .map_err(poisoned)?
            .insert(kernel.to_string(), function.clone());
        Ok(function)
    }

    /// Loads `file`'s module from its cubin; a cached cubin the driver refuses is compiled
    /// afresh once.
    fn load_module(
        &self,
        file: &super::sources::KernelFile,
    ) -> Result<Arc<CudaModule>, LaunchError> {
        let compile_error = |e: CudaError| device_error(e.to_string());
        let cubin = self
            .compiler
            .cubin(file, &self.arch)
            .map_err(compile_error)?;
        match self.ctx.load_module(Ptx::from_binary(cubin)) {
            Ok(module) => Ok(module),
            Err(first) => {
                tracing::warn!("{}: cached cubin refused ({first}); recompiling", file.name);
                let fresh = self
                    .compiler
                    .compile(file, &self.arch)
                    .map_err(compile_error)?;
                self.ctx
                    .load_module(Ptx::from_binary(fresh.cubin))
                    .map_err(|e| device_error(format!("cuModuleLoadData({}): {e}", file.name)))
            }
        }
    }
}

impl DeviceApi for CudaDevice {
    fn name(&self) -> &'static str {
        DEVICE
    }

    fn alloc(&self, bytes: usize) -> Result<Box<dyn RawBuffer>, LaunchError> {
        self.bind()?;
        // SAFETY: a plain allocation in the bound context; freed in CudaBuffer's drop.
        let ptr = unsafe { result::malloc_sync(bytes.max(1)) }.map_err(|e| {
            if e.0 == sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY {
                LaunchError::OutOfMemory { requested: bytes }
            } else {
                device_error(format!("cuMemAlloc({bytes}): {e}"))
            }
        })?;
        Ok(Box::new(CudaBuffer {
            ctx: self.ctx.clone(),
            ptr,
            bytes,
        }))
    }

    unsafe fn launch(
        &self,
        kernel: &str,
        config: &LaunchConfig,
        args: &KernelArgs,
    ) -> Result<(), LaunchError> {
        config.validate(kernel)?;
        let function = self.function(kernel)?;
        self.bind()?;
        let mut params: Vec<*mut c_void> = args.param_pointers();
        let [gx, gy, gz] = config.grid;
        let [bx, by, bz] = config.block;
        // SAFETY: the parameter pointers address `args`' slots, alive across the call; the
        // caller vouches that the arguments match the kernel and the device pointers are
        // valid. The null stream is the context's default stream.
        unsafe {
            result::launch_kernel(
                function.cu_function(),
                (gx, gy, gz),
                (bx, by, bz),
                config.shared_bytes,
                std::ptr::null_mut(),
                &mut params,
            )
        }
        .map_err(|e| LaunchError::KernelFault {
            kernel: kernel.to_string(),
            message: format!("cuLaunchKernel `{kernel}`: {e}"),
        })
    }

    fn synchronize(&self) -> Result<(), LaunchError> {
        self.bind()?;
        self.ctx
            .synchronize()
            .map_err(|e| device_error(format!("a kernel failed (cuCtxSynchronize): {e}")))
    }

    /// A timing event recorded on the default stream, behind every launch so far.
    fn mark(&self) -> Result<Mark, LaunchError> {
        self.bind()?;
        let event = self
            .ctx
            .new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(|e| device_error(format!("cuEventCreate: {e}")))?;
        event
            .record(&self.ctx.default_stream())
            .map_err(|e| device_error(format!("cuEventRecord: {e}")))?;
        Ok(Mark::Device(Box::new(event)))
    }

    fn seconds_between(&self, start: &Mark, end: &Mark) -> Result<f64, LaunchError> {
        let (Some(start), Some(end)) = (cuda_event(start), cuda_event(end)) else {
            return Err(device_error(
                "timing needs two CUDA events of this device".into(),
            ));
        };
        // Waits for `end`, then reads the device's own clock between the two events.
        let ms = start
            .elapsed_ms(end)
            .map_err(|e| device_error(format!("cuEventElapsedTime: {e}")))?;
        Ok(f64::from(ms) / 1e3)
    }
}

fn cuda_event(mark: &Mark) -> Option<&CudaEvent> {
    match mark {
        Mark::Device(any) => any.downcast_ref::<CudaEvent>(),
        Mark::Host(_) => None,
    }
}

/// Device memory from `cuMemAlloc`. Copies are synchronous `cuMemcpy` calls, which the
/// default stream orders after every kernel launched before them.
struct CudaBuffer {
    ctx: Arc<CudaContext>,
    ptr: sys::CUdeviceptr,
    bytes: usize,
}

impl CudaBuffer {
    fn check_size(&self, host: usize) -> Result<(), LaunchError> {
        if host != self.bytes {
            return Err(LaunchError::CopySize {
                buffer: self.bytes,
                host,
            });
        }
        self.ctx
            .bind_to_thread()
            .map_err(|e| device_error(format!("cuCtxSetCurrent: {e}")))
    }
}

impl RawBuffer for CudaBuffer {
    fn ptr(&self) -> DevicePtr {
        DevicePtr(self.ptr)
    }

    fn len_bytes(&self) -> usize {
        self.bytes
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), LaunchError> {
        self.check_size(bytes.len())?;
        // SAFETY: the buffer holds `self.bytes` == `bytes.len()` bytes of device memory.
        unsafe { result::memcpy_htod_sync(self.ptr, bytes) }
            .map_err(|e| device_error(format!("cuMemcpyHtoD({} bytes): {e}", bytes.len())))
    }

    fn read(&self, out: &mut [u8]) -> Result<(), LaunchError> {
        self.check_size(out.len())?;
        // SAFETY: as in write, in the other direction.
        unsafe { result::memcpy_dtoh_sync(out, self.ptr) }
            .map_err(|e| device_error(format!("cuMemcpyDtoH({} bytes): {e}", out.len())))
    }
}

impl Drop for CudaBuffer {
    fn drop(&mut self) {
        if self.ctx.bind_to_thread().is_ok() {
            // SAFETY: `ptr` came from cuMemAlloc in this context and is freed once.
            let _ = unsafe { result::free_sync(self.ptr) };
        }
    }
}
