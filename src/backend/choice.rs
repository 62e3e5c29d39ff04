//! Which backend runs the ops: the `--device` choice of every command, and memory sizes for
//! `--mem-limit`.

use std::sync::Arc;

use thiserror::Error;

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
        DeviceChoice::Cuda => Err(ChoiceError::Unavailable {
            backend: "cuda",
            reason: "this build has no cuda backend yet: the kernels run on `emu` (the \
                     emulator) and the native `cpu` backend; use --device cpu"
                .into(),
        }),
        DeviceChoice::Auto => Ok(Selection {
            backend: Arc::new(Cpu::new()),
            notice: Some(
                "note: no usable CUDA backend in this build; running on the cpu backend".into(),
            ),
        }),
    }
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
    use super::parse_bytes;

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
