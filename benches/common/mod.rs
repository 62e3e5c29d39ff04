//! What the benches share: the engines under test, criterion settings, inputs, and the
//! summary table of enamel/libtorch ratios printed after criterion.
//!
//! Every benchmark is a criterion group whose functions are named `<engine>-<device>`
//! (`enamel-cpu`, `libtorch-cpu`, `enamel-cuda`, `libtorch-cuda`), so criterion's own report
//! puts the engines side by side; the summary reads criterion's medians back from
//! `target/criterion` and divides.

#![allow(dead_code)]

#[cfg(feature = "libtorch")]
pub mod torch;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use criterion::measurement::WallTime;
use criterion::{Bencher, BenchmarkGroup, Criterion, Throughput};
use enamel::backend::choice::{select, DeviceChoice};
use enamel::backend::Backend;
use enamel::rng::Rng;
use enamel::{DType, Tensor};

/// An enamel backend to run on, with the device label used in function names.
pub struct Engine {
    pub device: &'static str,
    pub backend: Arc<dyn Backend>,
    /// Activation storage: f32 on the cpu, f16 on a GPU (as libtorch's autocast).
    pub dtype: DType,
}

impl Engine {
    /// `t` as this engine's ops take an input: in its activation storage, placed where the
    /// backend computes (in GPU memory on `cuda`, so no timed op pays for an upload).
    pub fn input(&self, t: Tensor) -> Tensor {
        self.backend
            .place(t.into_dtype(self.dtype))
            .expect("placing a benchmark input")
    }
}

/// `cpu` always; `cuda` when `select` gives it (a printed line says why not otherwise).
/// Also sets the process's host allocator as the `enamel` CLI does (freed memory kept for
/// reuse), which libtorch, in the same process, then shares.
pub fn engines() -> Vec<Engine> {
    enamel::backend::host_memory::retain_freed_memory();
    let mut engines = Vec::new();
    for (device, choice, dtype) in [
        ("cpu", DeviceChoice::Cpu, DType::F32),
        ("cuda", DeviceChoice::Cuda, DType::F16),
    ] {
        match select(choice, None) {
            Ok(selection) => engines.push(Engine {
                device,
                backend: selection.backend,
                dtype,
            }),
            Err(e) => {
                static SAID: OnceLock<()> = OnceLock::new();
                SAID.get_or_init(|| println!("skipping enamel-{device}: {e}"));
            }
        }
    }
    engines
}

/// Criterion's measurement of `run` on `backend`, on the backend's own clock: CUDA events
/// before the first iteration and after the last on a GPU (ops return before their kernels
/// finish), the host clock on the CPU.
pub fn timed<T>(b: &mut Bencher<'_>, backend: &dyn Backend, mut run: impl FnMut() -> T) {
    b.iter_custom(|iters| {
        let start = backend.mark().expect("timing mark");
        for _ in 0..iters {
            std::hint::black_box(run());
        }
        Duration::from_secs_f64(backend.seconds_since(&start).expect("timing"))
    })
}

/// One benchmark as the summary sees it.
struct Entry {
    group: String,
    flops: Option<f64>,
}

static ENTRIES: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
/// When the first group was made: older result files are from earlier runs.
static STARTED: OnceLock<SystemTime> = OnceLock::new();

/// A group with few samples (each iteration takes up to seconds on 2 cores), FLOPs as its
/// throughput when known, remembered for the summary.
pub fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
    flops: Option<f64>,
    seconds: u64,
) -> BenchmarkGroup<'a, WallTime> {
    STARTED.get_or_init(SystemTime::now);
    ENTRIES.lock().unwrap().push(Entry {
        group: name.to_string(),
        flops,
    });
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(seconds));
    if let Some(flops) = flops {
        group.throughput(Throughput::Elements(flops as u64));
    }
    group
}

/// Uniform values in [−1, 1) of `shape`, as f32.
pub fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let n: usize = shape.iter().product();
    let values = (0..n).map(|_| rng.range(-1.0, 1.0) as f32).collect();
    Tensor::from_f32(shape, values).expect("shape and length agree")
}

/// Where criterion writes its results.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
    PathBuf::from(target).join("criterion")
}

/// Criterion's median for `group`/`function` in seconds, when this run measured it.
fn median_seconds(group: &str, function: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(function)
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < *STARTED.get()? {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(json["median"]["point_estimate"].as_f64()? * 1e-9)
}

fn format_time(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s >= 1.0 => format!("{s:.2} s"),
        Some(s) => format!("{:.1} ms", s * 1e3),
        None => "-".into(),
    }
}

/// Prints (and writes to `target/criterion/ratios-<bench>.md`) one line per benchmark and
/// device: the medians of enamel and libtorch, enamel's GFLOP/s and the ratio.
pub fn print_summary(bench: &str) {
    let entries = ENTRIES.lock().unwrap();
    let mut table = String::from(
        "| benchmark | device | enamel | libtorch | enamel/libtorch | enamel GFLOP/s |\n\
         |---|---|---|---|---|---|\n",
    );
    let mut rows = 0;
    for entry in entries.iter() {
        for device in ["cpu", "cuda"] {
            let ours = median_seconds(&entry.group, &format!("enamel-{device}"));
            let theirs = median_seconds(&entry.group, &format!("libtorch-{device}"));
            if ours.is_none() && theirs.is_none() {
                continue;
            }
            let ratio = match (ours, theirs) {
                (Some(a), Some(b)) => format!("{:.2}", a / b),
                _ => "-".into(),
            };
            let gflops = match (ours, entry.flops) {
                (Some(s), Some(f)) => format!("{:.1}", f / s / 1e9),
                _ => "-".into(),
            };
            table.push_str(&format!(
                "| {} | {device} | {} | {} | {ratio} | {gflops} |\n",
                entry.group,
                format_time(ours),
                format_time(theirs)
            ));
            rows += 1;
        }
    }
    if rows == 0 {
        return;
    }
    println!(
        "\nmedians from {} (ratio < 1: enamel faster)\n",
        criterion_dir().display()
    );
    println!("{table}");
    let path = criterion_dir().join(format!("ratios-{bench}.md"));
    if let Err(e) = std::fs::write(&path, &table) {
        println!("could not write {}: {e}", path.display());
    }
}
