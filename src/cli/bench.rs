//! `enamel bench`: times the reference workloads on one backend — a training step of net A
//! (72×120×120) and of net B (168×120×120), and the cascade's inference on a 168×120×120
//! volume — and prints the median time, peak memory, GFLOP/s and the fraction of the
//! device's roofline (when the device is a known GPU). Times are the backend's own clock: CUDA
//! events on a GPU. Whatever the backend, it also gives the device memory a GPU needs for the
//! training steps, measured on the `plan` device.

use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use enamel::backend::choice::{select, DeviceChoice};
use enamel::backend::device::{Device, EmuDevice};
use enamel::backend::Backend;
use enamel::perf::roofline::{self, DeviceSpec};
use enamel::perf::unet_flops;
use enamel::perf::workload::{self, random_image, Cascade};
use enamel::train::{Precision, Stage};
use enamel::DType;
use serde::Serialize;

use super::train::parse_dhw;

#[derive(Args)]
pub struct BenchArgs {
    /// Backend to time (auto: cuda when usable, else cpu).
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Timed repetitions of each workload (after one untimed warm-up).
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Device memory budget, e.g. 6GiB (device backends only).
    #[arg(long, value_parser = super::device::parse_bytes)]
    mem_limit: Option<usize>,
    /// D,H,W of every workload instead of the reference sizes (small sizes for tests).
    #[arg(long, value_parser = parse_dhw)]
    size: Option<[usize; 3]>,
    /// Roofline of this GPU (e.g. "GTX 1060", "H200") instead of the one nvidia-smi names.
    #[arg(long)]
    gpu: Option<String>,
}

#[derive(Serialize)]
struct Report {
    device: &'static str,
    backend: &'static str,
    threads: usize,
    precision: &'static str,
    steps: usize,
    workloads: Vec<Workload>,
    /// Device memory of mixed-precision training steps on a GPU, from the `plan` device.
    planned_gpu_memory: Vec<PlannedMemory>,
}

#[derive(Serialize)]
struct PlannedMemory {
    name: &'static str,
    shape: [usize; 5],
    peak_bytes: u64,
}

#[derive(Serialize)]
struct Workload {
    name: &'static str,
    /// N,C,D,H,W of the network input (the whole volume for the cascade).
    shape: [usize; 5],
    median_s: f64,
    min_s: f64,
    times_s: Vec<f64>,
    gflop: f64,
    gflop_per_s: f64,
    /// Peak bytes: the device allocator's peak, or the process's peak resident set (VmHWM).
    peak_memory_bytes: Option<u64>,
    peak_memory_source: String,
    roofline: Option<Roofline>,
}

#[derive(Serialize)]
struct Roofline {
    gpu: &'static str,
    peak_flop_per_s: f64,
    bandwidth_bytes_per_s: f64,
    /// Least bytes the workload must move (fused kernels; `enamel::perf::roofline`).
    min_bytes: f64,
    bound_s: f64,
    /// bound_s / median_s: 1.0 would be running at the roof.
    fraction: f64,
}

/// Reads a workload's peak memory after it ran: bytes (when known) and where they come from.
type PeakMemory = dyn Fn() -> (Option<u64>, String);

/// How the chosen backend is made and asked for its peak memory.
enum Target {
    Cpu,
    /// A fresh emulator device per workload, so each peak is its own.
    Emu(Option<usize>),
    /// A backend from `select` that cannot be asked for memory statistics.
    Other(Arc<dyn Backend>, &'static str),
}

impl Target {
    fn resolve(choice: DeviceChoice, mem_limit: Option<usize>) -> Result<Self> {
        match choice {
            DeviceChoice::Cpu => Ok(Target::Cpu),
            DeviceChoice::Emu => Ok(Target::Emu(mem_limit)),
            DeviceChoice::Cuda => Ok(Target::Other(select(choice, mem_limit)?.backend, "cuda")),
            DeviceChoice::Auto => match select(DeviceChoice::Cuda, mem_limit) {
                Ok(selection) => Ok(Target::Other(selection.backend, "cuda")),
                Err(e) => {
                    eprintln!("note: {e}; benchmarking the cpu backend");
                    Ok(Target::Cpu)
                }
            },
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Target::Cpu => "cpu",
            Target::Emu(_) => "emu",
            Target::Other(_, label) => label,
        }
    }

    /// The backend for one workload, and a way to read its peak memory afterwards.
    fn backend(&self) -> (Arc<dyn Backend>, Box<PeakMemory>) {
        match self {
            Target::Cpu => {
                let reset = reset_peak_rss();
                let source = if reset {
                    "VmHWM (peak resident set of this workload)"
                } else {
                    "VmHWM (peak resident set of the process so far)"
                };
                let read = move || (peak_rss_bytes(), source.to_string());
                (Arc::new(enamel::backend::Cpu::new()), Box::new(read))
            }
            Target::Emu(budget) => {
                let device = Device::with_budget(Arc::new(EmuDevice::default()), *budget);
                let stats = device.clone();
                let read = move || {
                    let peak = stats.memory_stats().peak as u64;
                    (Some(peak), "device allocator peak".to_string())
                };
                (Arc::new(device), Box::new(read))
            }
            Target::Other(backend, _) => {
                let stats = backend.clone();
                let read = move || match stats.peak_memory_bytes() {
                    Some(peak) => (Some(peak), "device allocator peak".to_string()),
                    None => (
                        None,
                        "unavailable: backend reports no memory statistics".into(),
                    ),
                };
                (backend.clone(), Box::new(read))
            }
        }
    }
}

/// Resets the kernel's peak-RSS counter for this process (`5` to clear_refs, Linux ≥ 4.0).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// VmHWM of /proc/self/status, in bytes.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The GPU's name from nvidia-smi, when there is one.
fn gpu_name() -> Option<String> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.lines().next().map(|l| l.trim().to_string())
}

/// Times `run` `steps` times on `backend`'s clock after one warm-up (which also compiles and
/// loads the kernels); returns the times in seconds.
fn time(
    steps: usize,
    backend: &dyn Backend,
    mut run: impl FnMut() -> Result<()>,
) -> Result<Vec<f64>> {
    run().context("warm-up")?;
    (0..steps)
        .map(|_| {
            let start = backend.mark()?;
            run()?;
            Ok(backend.seconds_since(&start)?)
        })
        .collect()
}

fn median(times: &[f64]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

struct Measured {
    name: &'static str,
    shape: [usize; 5],
    times: Vec<f64>,
    flops: f64,
    bytes: f64,
    memory: (Option<u64>, String),
}

impl Measured {
    fn into_workload(self, gpu: Option<DeviceSpec>) -> Workload {
        let median_s = median(&self.times);
        let roofline = gpu.map(|spec| {
            let bound_s = roofline::bound_seconds(&spec, self.flops, self.bytes);
            Roofline {
                gpu: spec.name,
                peak_flop_per_s: spec.fp32_flops,
                bandwidth_bytes_per_s: spec.bandwidth,
                min_bytes: self.bytes,
                bound_s,
                fraction: bound_s / median_s,
            }
        });
        Workload {
            name: self.name,
            shape: self.shape,
            median_s,
            min_s: self.times.iter().cloned().fold(f64::INFINITY, f64::min),
            times_s: self.times,
            gflop: self.flops / 1e9,
            gflop_per_s: self.flops / median_s / 1e9,
            peak_memory_bytes: self.memory.0,
            peak_memory_source: self.memory.1,
            roofline,
        }
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    anyhow::ensure!(args.steps > 0, "--steps must be at least 1, got 0");
    let target = Target::resolve(args.device, args.mem_limit)?;
    let on_gpu = matches!(target, Target::Other(..));
    let (dtype, precision, element_bytes) = if on_gpu {
        (DType::F16, Precision::Mixed, 2)
    } else {
        (DType::F32, Precision::F32, 4)
    };
    let gpu = if on_gpu {
        let name = args.gpu.clone().or_else(gpu_name).unwrap_or_default();
        roofline::lookup(&name)
    } else {
        args.gpu.as_deref().and_then(roofline::lookup)
    };
    let size = |stage| {
        args.size
            .unwrap_or_else(|| workload::reference_patch(stage))
    };
    let mut measured = Vec::new();

    for (stage, name) in [
        (Stage::Binary, "train_step_net_A"),
        (Stage::Categories, "train_step_net_B"),
    ] {
        let patch = size(stage);
        eprintln!("timing {name} on {patch:?} ({} steps)", args.steps);
        let (backend, peak) = target.backend();
        let (mut trainer, samples) = workload::trainer(stage, patch, precision, backend)?;
        let clock = trainer.backend().clone();
        let times = time(args.steps, clock.as_ref(), || {
            trainer.train_step(&samples).map(drop)
        })?;
        let config = stage.default_net();
        measured.push(Measured {
            name,
            shape: [1, 1, patch[0], patch[1], patch[2]],
            times,
            flops: unet_flops(&config, patch).training_step,
            bytes: roofline::training_step_bytes(&config, patch, element_bytes),
            memory: peak(),
        });
    }

    let volume = size(Stage::Categories);
    let patch_a = args
        .size
        .unwrap_or_else(|| workload::reference_patch(Stage::Binary));
    eprintln!("timing the cascade on {volume:?} ({} steps)", args.steps);
    let (backend, peak) = target.backend();
    let mut cascade = Cascade::new(patch_a, volume)?;
    let image = random_image(volume, 13);
    let times = time(args.steps, backend.as_ref(), || {
        cascade.segment(&image, &backend, dtype).map(drop)
    })?;
    let [windows_a, windows_b] = cascade.windows(volume);
    let bytes = windows_a as f64
        * roofline::forward_bytes(&cascade.net_a.config, patch_a, element_bytes)
        + windows_b as f64 * roofline::forward_bytes(&cascade.net_b.config, volume, element_bytes);
    measured.push(Measured {
        name: "cascade_inference",
        shape: [1, 1, volume[0], volume[1], volume[2]],
        times,
        flops: cascade.flops(volume),
        bytes,
        memory: peak(),
    });

    let mut planned_gpu_memory = Vec::new();
    for (name, stage, patch) in [
        ("train_step_net_A", Stage::Binary, size(Stage::Binary)),
        (
            "train_step_net_A_whole_volume",
            Stage::Binary,
            size(Stage::Categories),
        ),
        (
            "train_step_net_B",
            Stage::Categories,
            size(Stage::Categories),
        ),
    ] {
        planned_gpu_memory.push(PlannedMemory {
            name,
            shape: [1, 1, patch[0], patch[1], patch[2]],
            peak_bytes: workload::planned_step_memory(stage, patch, None)
                .with_context(|| format!("planning the device memory of {name}"))?,
        });
    }

    let report = Report {
        device: target.label(),
        backend: backend.name(),
        threads: rayon::current_num_threads(),
        precision: if on_gpu {
            "f16 activations, f32 weights"
        } else {
            "f32"
        },
        steps: args.steps,
        workloads: measured.into_iter().map(|m| m.into_workload(gpu)).collect(),
        planned_gpu_memory,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(report: &Report) {
    println!(
        "enamel bench: {} backend ({}), {} threads, {}, median of {} steps",
        report.device, report.backend, report.threads, report.precision, report.steps
    );
    println!(
        "{:<20} {:>18} {:>10} {:>9} {:>10} {:>12}",
        "workload", "shape", "median", "GFLOP/s", "peak MiB", "roofline"
    );
    for w in &report.workloads {
        let shape = format!("{}x{}x{}", w.shape[2], w.shape[3], w.shape[4]);
        let memory = w
            .peak_memory_bytes
            .map(|b| format!("{:.0}", b as f64 / (1 << 20) as f64))
            .unwrap_or_else(|| "-".into());
        let roof = w
            .roofline
            .as_ref()
            .map(|r| format!("{:.1}% {}", 100.0 * r.fraction, r.gpu))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<20} {:>18} {:>9.3}s {:>9.1} {:>10} {:>12}",
            w.name, shape, w.median_s, w.gflop_per_s, memory, roof
        );
    }
    println!("GPU memory of mixed-precision training steps (plan device, no kernel run):");
    for p in &report.planned_gpu_memory {
        let shape = format!("{}x{}x{}", p.shape[2], p.shape[3], p.shape[4]);
        println!(
            "{:<30} {:>12} {:>8.0} MiB",
            p.name,
            shape,
            p.peak_bytes as f64 / (1 << 20) as f64
        );
    }
}
