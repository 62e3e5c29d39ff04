//! `enamel segment`: the trained cascade on a new scan → label maps, STL meshes, a preview and
//! a report.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use enamel::backend::Backend;
use enamel::io::read_volume;
use enamel::nn::UNetConfig;
use enamel::segment::output::{write_outputs, OutputOptions, RunInfo};
use enamel::segment::{segment, InstanceOptions, NetPredictor, SegmentOptions};
use enamel::tensor::DType;
use enamel::train::{run_dir, Precision};
use indicatif::{ProgressBar, ProgressStyle};

use super::device::{backend, DeviceChoice};
use super::train::parse_dhw;

#[derive(clap::Args)]
pub struct SegmentArgs {
    /// The scan (NRRD or NIfTI).
    pub image: PathBuf,
    /// Checkpoint of the binary stage (net A): teeth vs background.
    #[arg(long)]
    pub binary: PathBuf,
    /// Checkpoint of the categories stage (net B): 8 tooth categories + background.
    #[arg(long)]
    pub categories: PathBuf,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// Device memory budget, e.g. 6GiB; default: the device's memory.
    #[arg(long, value_parser = super::device::parse_bytes)]
    pub mem_limit: Option<usize>,
    /// Window overlap of the sliding-window inference (0 ≤ overlap < 1).
    #[arg(long, default_value_t = 0.5)]
    pub overlap: f64,
    /// Window size D,H,W for both stages; default: each checkpoint's training patch.
    #[arg(long, value_parser = parse_dhw)]
    pub patch: Option<[usize; 3]>,
    /// Tooth where the binary stage's probability exceeds this.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Remove connected pieces smaller than this many mm³.
    #[arg(long, default_value_t = 10.0)]
    pub min_island_mm3: f64,
    /// Do not split touching teeth of one category.
    #[arg(long)]
    pub no_split: bool,
    /// World x (mm, LPS) of the patient's midline; default: found from the teeth.
    #[arg(long, allow_hyphen_values = true)]
    pub midline_x: Option<f64>,
    /// Activations stored as f16 (`mixed`) or f32.
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: Precision,
    /// Also write probabilities.nrrd (P(tooth), then the 9 category probabilities).
    #[arg(long)]
    pub probabilities: bool,
    /// Skip the STL meshes.
    #[arg(long)]
    pub no_meshes: bool,
    /// Skip preview.png.
    #[arg(long)]
    pub no_preview: bool,
}

fn predictor(
    path: &std::path::Path,
    backend: Arc<dyn Backend>,
    args: &SegmentArgs,
    fallback: UNetConfig,
) -> Result<NetPredictor> {
    let mut p = NetPredictor::from_checkpoint(path, backend, args.patch, Some(fallback))?;
    p.overlap = args.overlap;
    p.dtype = match args.precision {
        Precision::F32 => DType::F32,
        Precision::Mixed => DType::F16,
    };
    Ok(p)
}

pub fn run(args: SegmentArgs) -> Result<()> {
    if !(0.0..1.0).contains(&args.overlap) {
        anyhow::bail!("--overlap {} must be at least 0 and below 1", args.overlap);
    }
    let started = Instant::now();
    let backend = backend(args.device, args.mem_limit)?;
    let image =
        read_volume(&args.image).with_context(|| format!("reading {}", args.image.display()))?;
    let mut binary = predictor(&args.binary, backend.clone(), &args, UNetConfig::BINARY)?;
    let mut categories = predictor(
        &args.categories,
        backend.clone(),
        &args,
        UNetConfig::CATEGORIES,
    )?;
    let options = SegmentOptions {
        threshold: args.threshold,
        instances: InstanceOptions {
            min_island_mm3: args.min_island_mm3,
            split_touching: !args.no_split,
            midline_x: args.midline_x,
        },
        keep_probabilities: args.probabilities,
    };

    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} windows, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let result = segment(
        &image,
        &mut binary,
        &mut categories,
        &options,
        &mut |stage, done, total| {
            bar.set_prefix(stage.to_string());
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();

    let run = RunInfo {
        input: args.image.display().to_string(),
        binary_checkpoint: args.binary.display().to_string(),
        categories_checkpoint: args.categories.display().to_string(),
        device: backend.name().to_string(),
        peak_memory_bytes: run_dir::peak_memory_on(backend.as_ref()),
    };
    let outputs = OutputOptions {
        probabilities: args.probabilities,
        meshes: !args.no_meshes,
        preview: !args.no_preview,
    };
    let files = write_outputs(
        &args.out,
        &image,
        &result,
        &run,
        &outputs,
        result.timings.clone(),
    )?;

    println!(
        "{} teeth found in {} ({} voxels, {:.2}x{:.2}x{:.2} mm):",
        result.instances.teeth.len(),
        args.image.display(),
        image.voxel_count(),
        image.spacing[0],
        image.spacing[1],
        image.spacing[2]
    );
    println!("  FDI  category  voxels    volume mm³  centroid mm (LPS)");
    for t in &result.instances.teeth {
        println!(
            "  {:>3}  {:>8}  {:>7}  {:>12.1}  ({:.1}, {:.1}, {:.1})",
            t.fdi,
            t.category,
            t.voxels,
            t.volume_mm3,
            t.centroid_mm[0],
            t.centroid_mm[1],
            t.centroid_mm[2]
        );
    }
    println!(
        "wrote {} files to {} in {:.1} s on `{}`",
        files.len(),
        args.out.display(),
        started.elapsed().as_secs_f64(),
        backend.name()
    );
    Ok(())
}
