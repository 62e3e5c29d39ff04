//! The one launch layer every kernel call goes through, whichever device runs it.
//!
//! A launch is a kernel name, a [`LaunchConfig`] (grid, block, dynamic shared memory) and a
//! [`KernelArgs`] list packed the way `cuLaunchKernel` wants it: one pointer per parameter,
//! pointing at the parameter's value. The `cuda` backend hands exactly that to the driver; the
//! `emu` backend ([`emu::EmuLauncher`]) hands it to the CPU emulator built from the same `.cu`
//! sources (see `kernels/emu/`), so emulator tests exercise this code too.

mod args;
pub mod emu;

pub use args::{DevicePtr, KernelArgs};

use thiserror::Error;

/// Threads per block that every CUDA device since compute capability 2.0 accepts.
pub const MAX_THREADS_PER_BLOCK: u32 = 1024;

/// Dynamic shared memory a block may use without opting in (and all a GTX 1060 has).
pub const MAX_DYNAMIC_SHARED_BYTES: u32 = 48 * 1024;

/// What can go wrong between asking for a launch and the kernel finishing.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LaunchError {
    #[error("no kernel named `{name}` is available on {device}")]
    UnknownKernel { name: String, device: &'static str },

    #[error("kernel `{kernel}`: {message}")]
    InvalidConfig { kernel: String, message: String },

    #[error("{message}")]
    ArgumentMismatch { kernel: String, message: String },

    /// The kernel broke a rule while running (on `emu`: a divergent barrier or a deadlock).
    #[error("{message}")]
    KernelFault { kernel: String, message: String },

    #[error("kernel name {name:?} contains a NUL byte")]
    BadName { name: String },

    #[error("device memory: cannot allocate {requested} bytes")]
    OutOfMemory { requested: usize },

    #[error("device copy: the buffer holds {buffer} bytes but the host side has {host}")]
    CopySize { buffer: usize, host: usize },

    #[error("{device}: {message}")]
    Device {
        device: &'static str,
        message: String,
    },
}

/// Grid and block shape and the dynamic shared memory of one launch, as `cuLaunchKernel` takes
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchConfig {
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub shared_bytes: u32,
}

impl LaunchConfig {
    /// Enough blocks of `block` threads along x to cover `elements` threads, one per element.
    pub fn for_elements(elements: usize, block: u32) -> Self {
        let block = block.max(1);
        let blocks = elements.div_ceil(block as usize).max(1);
        Self {
            grid: [u32::try_from(blocks).unwrap_or(u32::MAX), 1, 1],
            block: [block, 1, 1],
            shared_bytes: 0,
        }
    }

    /// The same launch with `bytes` of dynamic shared memory per block.
    pub fn with_shared_bytes(self, bytes: u32) -> Self {
        Self {
            shared_bytes: bytes,
            ..self
        }
    }

    pub fn threads_per_block(&self) -> u64 {
        self.block.iter().map(|&d| u64::from(d)).product()
    }

    pub fn blocks(&self) -> u64 {
        self.grid.iter().map(|&d| u64::from(d)).product()
    }

    /// Checks the limits every device enamel supports shares (compute capability 6.1 and up).
    pub fn validate(&self, kernel: &str) -> Result<(), LaunchError> {
        let invalid = |message: String| {
            Err(LaunchError::InvalidConfig {
                kernel: kernel.to_string(),
                message,
            })
        };
        let [bx, by, bz] = self.block;
        let [gx, gy, gz] = self.grid;
        let threads = self.threads_per_block();
        if threads == 0 || threads > u64::from(MAX_THREADS_PER_BLOCK) || bz > 64 {
            return invalid(format!(
                "block ({bx},{by},{bz}) must hold 1 to {MAX_THREADS_PER_BLOCK} threads with z <= 64"
            ));
        }
        if gx == 0 || gy == 0 || gz == 0 || gx > i32::MAX as u32 || gy > 65535 || gz > 65535 {
            return invalid(format!(
                "grid ({gx},{gy},{gz}) must be nonzero with x < 2^31 and y, z <= 65535"
            ));
        }
        if self.shared_bytes > MAX_DYNAMIC_SHARED_BYTES {
            return invalid(format!(
                "{} bytes of dynamic shared memory exceed the {MAX_DYNAMIC_SHARED_BYTES} a \
                 block may have",
                self.shared_bytes
            ));
        }
        Ok(())
    }
}

/// Launches kernels by name. The `cuda` implementation resolves the name in its loaded module
/// and calls `cuLaunchKernel(function, grid, block, shared_bytes, stream, params, NULL)`; the
/// `emu` one runs the emulator.
pub trait KernelLauncher {
    /// A short name for messages: `"emu"`, `"cuda:0"`.
    fn device_name(&self) -> &'static str;

    /// Launches `kernel` over `config` with `args`. Launches are ordered; a launch may still be
    /// running when this returns, see [`KernelLauncher::synchronize`].
    ///
    /// # Safety
    /// Every [`DevicePtr`] in `args` must address memory of this launcher's device that stays
    /// allocated until the kernel finishes and is large enough for everything the kernel reads
    /// or writes through it; the scalar arguments must be the kernel's parameter types.
    unsafe fn launch(
        &self,
        kernel: &str,
        config: &LaunchConfig,
        args: &KernelArgs,
    ) -> Result<(), LaunchError>;

    /// Waits until every launch so far has finished and reports a failure of any of them.
    fn synchronize(&self) -> Result<(), LaunchError>;
}
