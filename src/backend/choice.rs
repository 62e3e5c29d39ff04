//! Which backend runs the ops: the `--device` choice of every command, and memory sizes for
//! `--mem-limit`.

use std::sync::Arc;

use thiserror::Error;

use super::cuda::{CudaDevice, CudaError};
use super::device::{Device, EmuDevice};
use super::{Backend, Cpu};

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

#[derive(Debug, Error)]
pub enum ChoiceError {
    #[error("the {backend} backend cannot be used: {reason}")]
    Unavailable {
        backend: &'static str,
        reason: String,
    },
}

/// The backend a choice resolved to, and a one-line notice when `auto` had to fall back.
pub struct Selection {
    pub backend: Arc<dyn Backend>,
    pub notice: Option<String>,
}

/// The backend for `choice`; `mem_limit` budgets device memory (device backends only).
pub fn select(choice: DeviceChoice, mem_limit: Option<usize>) -> Result<Selection, ChoiceError> {
    let chosen = |backend: Arc<dyn Backend>| Selection {
        backend,
        notice: None,
    };
    match choice {
        DeviceChoice::Cpu => Ok(chosen(Arc::new(Cpu::new()))),
        DeviceChoice::Emu => Ok(chosen(Arc::new(Device::with_budget(
            Arc::new(EmuDevice::default()),
            mem_limit,
        )))),
        DeviceChoice::Cuda => {
            let backend = cuda(mem_limit).map_err(|e| ChoiceError::Unavailable {
                backend: "cuda",
                reason: e.to_string(),
            })?;
            Ok(chosen(backend))
        }
        DeviceChoice::Auto => Ok(match cuda(mem_limit) {
            Ok(backend) => chosen(backend),
            Err(e) => {
                // One short line; `--device cuda` gives the whole story.
                let reason = match e {
                    CudaError::Library { library, .. } => format!("{library} not found"),
                    other => other.to_string(),
                };
                Selection {
                    backend: Arc::new(Cpu::new()),
                    notice: Some(format!(
                        "note: no usable CUDA GPU ({reason}); running on the cpu backend"
                    )),
                }
            }
        }),
    }
}

/// The `cuda` backend on `$ENAMEL_CUDA_DEVICE` (default 0), budgeted to `mem_limit` or the
/// device's whole memory.
fn cuda(mem_limit: Option<usize>) -> Result<Arc<dyn Backend>, CudaError> {
    let device = CudaDevice::from_env()?;
    tracing::info!("using {}", device.describe());
    let budget = mem_limit.unwrap_or(device.total_memory());
    Ok(Arc::new(Device::with_budget(
        Arc::new(device),
        Some(budget),
    )))
}

/// A memory size: bytes, or a number with KiB, MiB, GiB (powers of 1024) or KB, MB, GB.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 6GiB or 512MiB"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use KiB, MiB, GiB)"
            ))
        }
    };
    if !(number > 0.0 && number.is_finite()) {
        return Err(format!("`{text}` is not a positive size"));
    }
    Ok((number * scale) as usize)
}

#[cfg(test)]
mod tests {
    use super::{parse_bytes, select, DeviceChoice};

    /// On a machine with a GPU these two tests have nothing to check.
    fn has_gpu() -> bool {
        std::path::Path::new("/dev/nvidiactl").exists()
    }

    #[test]
    fn cuda_without_a_driver_is_an_error_naming_libcuda() {
        if has_gpu() {
            crate::fixtures::report_skip("select(cuda) error", "this machine has a GPU");
            return;
        }
        let err = select(DeviceChoice::Cuda, None).err().unwrap().to_string();
        assert!(err.contains("cuda backend cannot be used"), "{err}");
        assert!(err.contains("libcuda"), "{err}");
        assert!(err.contains("libcuda.so.1"), "{err}");
    }

    #[test]
    fn auto_without_a_gpu_falls_back_to_cpu_with_a_notice() {
        if has_gpu() {
            crate::fixtures::report_skip("select(auto) fallback", "this machine has a GPU");
            return;
        }
        let selection = select(DeviceChoice::Auto, None).ok().unwrap();
        assert_eq!(selection.backend.name(), "cpu");
        let notice = selection.notice.unwrap();
        assert!(notice.contains("running on the cpu backend"), "{notice}");
        assert!(notice.contains("libcuda"), "{notice}");
        assert!(
            !notice.contains('\n') && notice.len() < 120,
            "one short line: {notice}"
        );
    }

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_bytes("6GiB"), Ok(6 << 30));
        assert_eq!(parse_bytes("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("6 parsecs").unwrap_err().contains("parsecs"));
        assert!(parse_bytes("-1GiB").is_err());
    }
}
