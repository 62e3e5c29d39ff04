//! The self-test: every op of the [`Backend`] trait, the optimizer and cast kernels, and one
//! training step of nets A and B, run on a device backend (`cuda` or `emu`) and on `cpu`, in
//! f32 and f16 storage, with the differences, the time per op and the peak device memory in
//! one table. `enamel selftest` prints it; `scripts/gpu-check.sh` runs it on a GPU machine.

mod ops;
mod steps;

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::backend::cuda::CudaDevice;
use crate::backend::device::Device;
use crate::tensor::DType;

/// How large the inputs are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// Odd shapes of a few hundred voxels: seconds on the emulator.
    Small,
    /// Shapes of the real networks' first level (2×18×24×48×48 and the like): for a GPU.
    Reference,
}

/// The device backend under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TestDevice {
    Cuda,
    Emu,
}

/// One line of the table: an op in one storage type against `cpu`.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub op: String,
    pub dtype: &'static str,
    /// Largest `|device − cpu|` over all outputs.
    pub max_abs: f64,
    /// Largest `|device − cpu| / max|cpu|`, per output (the scale of each output).
    pub max_rel: f64,
    /// The largest `max_rel` that passes.
    pub tolerance: f64,
    pub pass: bool,
    /// Time of the device call with its results read back, on the device's clock (CUDA
    /// events on a GPU), in milliseconds; NaN if the clock could not be read.
    pub device_ms: f64,
    /// Why the row failed without numbers (an error from either backend, a shape mismatch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The whole self-test.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub device: String,
    pub size: Size,
    pub rows: Vec<Row>,
    pub peak_device_bytes: usize,
    pub budget_bytes: Option<usize>,
    pub seconds: f64,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.rows.iter().all(|r| r.pass)
    }

    pub fn failures(&self) -> usize {
        self.rows.iter().filter(|r| !r.pass).count()
    }

    /// The table as text, one row per op and storage type, then the totals.
    pub fn table(&self) -> String {
        let mut out = format!(
            "self-test on {} ({:?} size), reference: cpu\n",
            self.device, self.size
        );
        out.push_str(&format!(
            "{:<34} {:<5} {:>11} {:>11} {:>9} {:<4} {:>10}\n",
            "op", "dtype", "max abs", "max rel", "tolerance", "pass", "device ms"
        ));
        for r in &self.rows {
            out.push_str(&format!(
                "{:<34} {:<5} {:>11.3e} {:>11.3e} {:>9.1e} {:<4} {:>10.3}\n",
                r.op,
                r.dtype,
                r.max_abs,
                r.max_rel,
                r.tolerance,
                if r.pass { "ok" } else { "FAIL" },
                r.device_ms
            ));
            if let Some(error) = &r.error {
                out.push_str(&format!("    error: {error}\n"));
            }
        }
        let budget = match self.budget_bytes {
            Some(b) => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
            None => "none".into(),
        };
        out.push_str(&format!(
            "peak device memory {:.1} MiB (budget {budget}); {} checks, {} failed; {:.1} s\n",
            self.peak_device_bytes as f64 / (1 << 20) as f64,
            self.rows.len(),
            self.failures(),
            self.seconds
        ));
        out
    }
}

/// The device backend for `which`, budgeted to `mem_limit` (default: all of the device's
/// memory), and a description of it for the table.
pub fn open_device(
    which: TestDevice,
    mem_limit: Option<usize>,
) -> Result<(Device, String), crate::backend::cuda::CudaError> {
    Ok(match which {
        TestDevice::Emu => (
            Device::with_budget(
                Arc::new(crate::backend::device::EmuDevice::default()),
                mem_limit,
            ),
            "emu (the kernels compiled for this CPU)".to_string(),
        ),
        TestDevice::Cuda => {
            let cuda = CudaDevice::from_env()?;
            let description = cuda.describe();
            let budget = mem_limit.unwrap_or(cuda.total_memory());
            (
                Device::with_budget(Arc::new(cuda), Some(budget)),
                description,
            )
        }
    })
}

/// `run`'s result and the milliseconds it took on `device`'s clock (CUDA events on a GPU;
/// NaN if the clock failed, which the row's own error will then show).
fn device_ms<T>(device: &Device, run: impl FnOnce() -> T) -> (T, f64) {
    use crate::backend::Backend;
    let start = device.mark().ok();
    let out = run();
    let seconds = start.and_then(|s| device.seconds_since(&s).ok());
    (out, seconds.map_or(f64::NAN, |s| s * 1e3))
}

/// Runs every check on `device` against `cpu`.
pub fn run(device: &Device, description: &str, size: Size) -> Report {
    let started = Instant::now();
    let mut rows = Vec::new();
    for dtype in [DType::F32, DType::F16] {
        ops::check_all(device, size, dtype, &mut rows);
        steps::check_training(device, size, dtype, &mut rows);
    }
    ops::check_device_only(device, size, &mut rows);
    let stats = device.memory_stats();
    Report {
        device: description.to_string(),
        size,
        rows,
        peak_device_bytes: stats.peak,
        budget_bytes: stats.budget,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Relative tolerance (against the largest reference value of an output) per storage type:
/// f16 outputs may differ by a rounding step of the largest values; f32 ones by reordered
/// sums and the multiply-adds NVRTC contracts.
pub(crate) fn tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => 5e-3,
        _ => 1e-4,
    }
}

pub(crate) fn dtype_label(dtype: DType) -> &'static str {
    match dtype {
        DType::F16 => "f16",
        DType::F32 => "f32",
        _ => "other",
    }
}

/// Compares outputs pairwise (each with its own scale) into a row; an error from either side
/// or a length mismatch fails the row.
pub(crate) fn compare_outputs(
    op: &str,
    dtype: &'static str,
    tolerance: f64,
    device_ms: f64,
    got: Result<Vec<Vec<f64>>, String>,
    want: Result<Vec<Vec<f64>>, String>,
) -> Row {
    let mut row = Row {
        op: op.to_string(),
        dtype,
        max_abs: f64::NAN,
        max_rel: f64::NAN,
        tolerance,
        pass: false,
        device_ms,
        error: None,
    };
    let (got, want) = match (got, want) {
        (Ok(g), Ok(w)) => (g, w),
        (Err(e), _) => {
            row.error = Some(format!("device: {e}"));
            return row;
        }
        (_, Err(e)) => {
            row.error = Some(format!("cpu: {e}"));
            return row;
        }
    };
    let lengths = |v: &[Vec<f64>]| v.iter().map(Vec::len).collect::<Vec<_>>();
    if lengths(&got) != lengths(&want) {
        row.error = Some(format!(
            "output sizes differ: device {:?}, cpu {:?}",
            lengths(&got),
            lengths(&want)
        ));
        return row;
    }
    let (mut max_abs, mut max_rel) = (0.0f64, 0.0f64);
    for (g, w) in got.iter().zip(&want) {
        // The scale ignores infinities (f16 overflow), which must match exactly.
        let scale = w
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0f64, |m, v| m.max(v.abs()))
            .max(1e-30);
        let worst = g.iter().zip(w).fold(0.0f64, |m, (a, b)| {
            let same = a == b || (a.is_nan() && b.is_nan());
            let d = if same { 0.0 } else { (a - b).abs() };
            // A NaN or infinity on one side only: f64::max would drop the NaN.
            if d.is_finite() {
                m.max(d)
            } else {
                f64::INFINITY
            }
        });
        max_abs = max_abs.max(worst);
        max_rel = max_rel.max(worst / scale);
    }
    row.max_abs = max_abs;
    row.max_rel = max_rel;
    row.pass = max_rel <= tolerance;
    row
}

#[cfg(test)]
mod tests {
    use super::compare_outputs;

    #[test]
    fn rows_measure_against_the_scale_and_fail_on_nan_and_errors() {
        let row = compare_outputs(
            "t",
            "f32",
            1e-3,
            0.0,
            Ok(vec![vec![1.0, 2.001], vec![0.5]]),
            Ok(vec![vec![1.0, 2.0], vec![0.5]]),
        );
        assert!((row.max_abs - 1e-3).abs() < 1e-12);
        assert!((row.max_rel - 5e-4).abs() < 1e-12);
        assert!(row.pass);
        let nan = compare_outputs(
            "t",
            "f32",
            1.0,
            0.0,
            Ok(vec![vec![f64::NAN]]),
            Ok(vec![vec![1.0]]),
        );
        assert!(!nan.pass);
        let inf = compare_outputs(
            "t",
            "f16",
            1e-3,
            0.0,
            Ok(vec![vec![f64::INFINITY, 1.0]]),
            Ok(vec![vec![f64::INFINITY, 1.0]]),
        );
        assert!(inf.pass && inf.max_abs == 0.0, "{inf:?}");
        let one_inf = compare_outputs(
            "t",
            "f16",
            1e-3,
            0.0,
            Ok(vec![vec![f64::INFINITY, 1.0]]),
            Ok(vec![vec![6e4, 1.0]]),
        );
        assert!(!one_inf.pass, "{one_inf:?}");
        let err = compare_outputs("t", "f32", 1.0, 0.0, Err("boom".into()), Ok(vec![]));
        assert!(!err.pass);
        assert_eq!(err.error.as_deref(), Some("device: boom"));
        let sizes = compare_outputs("t", "f32", 1.0, 0.0, Ok(vec![vec![1.0]]), Ok(vec![vec![]]));
        assert!(sizes.error.unwrap().contains("output sizes differ"));
    }
}
