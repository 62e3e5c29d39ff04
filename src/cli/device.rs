//! `--device`: which backend runs the ops (the choice itself lives in the library).

use std::sync::Arc;

use anyhow::Result;
use enamel::backend::choice::select;
use enamel::backend::Backend;

pub use enamel::backend::choice::{parse_bytes, DeviceChoice};

/// The backend for `choice`, printing `auto`'s fallback notice; `mem_limit` is the device
/// memory budget (device backends only).
pub fn backend(choice: DeviceChoice, mem_limit: Option<usize>) -> Result<Arc<dyn Backend>> {
    if mem_limit.is_some() && choice == DeviceChoice::Cpu {
        eprintln!("note: --mem-limit budgets device memory; the cpu backend does not use it");
    }
    let selection = select(choice, mem_limit)?;
    if let Some(notice) = selection.notice {
        eprintln!("{notice}");
    }
    Ok(selection.backend)
}
