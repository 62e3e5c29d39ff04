//! `enamel demo`: the main job on the embedded default. Generates jaw phantoms, trains both
//! stages of the cascade briefly, segments a held-out phantom and prints Dice per class.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use enamel::backend::Backend;
use enamel::io::write_volume;
use enamel::nn::UNet;
use enamel::phantom::{generate, PhantomConfig};
use enamel::preprocess::Array3;
use enamel::segment::output::{write_outputs, OutputOptions, RunInfo};
use enamel::segment::{segment, NetPredictor, SegmentOptions};
use enamel::tensor::DType;
use enamel::train::data::load_training_set;
use enamel::train::run::{self as train_loop, RunOptions};
use enamel::train::{
    dice_per_class, run_dir, Intensity, OptimizerKind, Pair, Precision, Stage, TrainConfig, Trainer,
};

use super::device::{backend, DeviceChoice};
use super::train::{parse_dhw, stop_flag};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where phantoms, runs and the segmentation go.
    #[arg(long, default_value = "enamel-demo")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// Phantom size D,H,W (scaled down from the reference pipeline's 168,120,120 so that
    /// training fits a few minutes on 2 CPU cores).
    #[arg(long, default_value = "48,64,64", value_parser = parse_dhw)]
    pub size: [usize; 3],
    /// Voxel size of the phantoms in mm.
    #[arg(long, default_value_t = 1.0)]
    pub spacing: f64,
    /// Training phantoms.
    #[arg(long, default_value_t = 3)]
    pub phantoms: usize,
    /// Optimisation steps per stage.
    #[arg(long, default_value_t = 150)]
    pub steps: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

struct PhantomFiles {
    image: PathBuf,
    teeth: PathBuf,
    categories: PathBuf,
    teeth_fdi: Vec<u8>,
}

fn write_phantom(dir: &Path, config: &PhantomConfig) -> Result<PhantomFiles> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let phantom = generate(config)?;
    let files = PhantomFiles {
        image: dir.join("image.nrrd"),
        teeth: dir.join("teeth.nrrd"),
        categories: dir.join("categories.nrrd"),
        teeth_fdi: phantom.tooth_list.iter().map(|t| t.fdi).collect(),
    };
    write_volume(&files.image, &phantom.image)?;
    write_volume(&files.teeth, &phantom.teeth)?;
    write_volume(&files.categories, &phantom.categories)?;
    write_volume(&dir.join("instances.nrrd"), &phantom.instances)?;
    Ok(files)
}

fn train_stage(
    stage: Stage,
    pairs: Vec<Pair>,
    args: &DemoArgs,
    backend: Arc<dyn Backend>,
) -> Result<UNet> {
    let out = args.out.join(match stage {
        Stage::Binary => "run-binary",
        Stage::Categories => "run-categories",
    });
    std::fs::create_dir_all(&out)?;
    let config = TrainConfig {
        stage,
        net: stage.default_net(),
        train: pairs,
        validation: Vec::new(),
        label_map: Vec::new(),
        patch: args.size,
        batch: 1,
        epochs: 1,
        steps_per_epoch: args.steps,
        optimizer: OptimizerKind::Adam,
        lr: 3e-3,
        augment_rotations: Vec::new(),
        foreground_fraction: 0.5,
        precision: Precision::F32,
        seed: args.seed,
        checkpoint_every: 0,
        half: None,
        intensity: Default::default(),
    };
    run_dir::write_config(&out, &config)?;
    let net = UNet::new(config.net, args.seed)?;
    let samples = load_training_set(&config)?;
    let mut trainer = Trainer::new(config, net, backend)?;
    let options = RunOptions {
        out,
        stop: stop_flag(),
        abort_after_steps: None,
        progress: true,
    };
    train_loop::run(&mut trainer, &samples, &options, 0.0)?;
    Ok(trainer.net)
}

const CATEGORY_NAMES: [&str; 9] = [
    "background",
    "central incisor",
    "lateral incisor",
    "canine",
    "first premolar",
    "second premolar",
    "first molar",
    "second molar",
    "third molar",
];

pub fn run(args: DemoArgs) -> Result<()> {
    let started = Instant::now();
    let backend = backend(args.device, None)?;
    let [d, h, w] = args.size;
    println!(
        "enamel demo: {} training phantoms + 1 held out, {d}x{h}x{w} voxels (D,H,W) at {} mm, \
         {} steps per stage on `{}`.",
        args.phantoms,
        args.spacing,
        args.steps,
        backend.name()
    );
    println!(
        "Scaled down from the reference pipeline (168x120x120 at 0.5 mm, many epochs) to fit a \
         few minutes on 2 CPU cores: expect rough Dice, best for the binary stage."
    );

    let phantom_config = |seed: u64| PhantomConfig {
        seed,
        sizes: PhantomConfig::sizes_from_dhw(args.size),
        spacing: args.spacing,
        ..PhantomConfig::default()
    };
    let mut train = Vec::new();
    for i in 0..args.phantoms {
        let seed = args.seed * 1000 + i as u64 + 1;
        train.push(write_phantom(
            &args.out.join(format!("phantoms/train_{i}")),
            &phantom_config(seed),
        )?);
    }
    let held_out = write_phantom(
        &args.out.join("phantoms/held_out"),
        &phantom_config(args.seed * 1000 + 999),
    )?;

    let binary_pairs = train
        .iter()
        .map(|f| Pair {
            image: f.image.clone(),
            labels: f.teeth.clone(),
        })
        .collect();
    let category_pairs = train
        .iter()
        .map(|f| Pair {
            image: f.image.clone(),
            labels: f.categories.clone(),
        })
        .collect();
    println!("stage 1/2: binary (net A, 430,075 parameters)");
    let net_a = train_stage(Stage::Binary, binary_pairs, &args, backend.clone())?;
    println!("stage 2/2: categories (net B, 108,036 parameters)");
    let net_b = train_stage(Stage::Categories, category_pairs, &args, backend.clone())?;

    // The cascade on the held-out phantom, through the same pipeline as `enamel segment`.
    let image = enamel::io::read_volume(&held_out.image)?;
    let predictor = |net: UNet| NetPredictor {
        net,
        backend: backend.clone(),
        dtype: DType::F32,
        patch: args.size,
        overlap: 0.5,
        intensity: Intensity::MinMax,
    };
    let (mut stage_a, mut stage_b) = (predictor(net_a), predictor(net_b));
    let segmented = segment(
        &image,
        &mut stage_a,
        &mut stage_b,
        &SegmentOptions::default(),
        &mut |_, _, _| {},
    )?;
    let out_dir = args.out.join("segmentation");
    let run = RunInfo {
        input: held_out.image.display().to_string(),
        binary_checkpoint: args
            .out
            .join("run-binary/last.safetensors")
            .display()
            .to_string(),
        categories_checkpoint: args
            .out
            .join("run-categories/last.safetensors")
            .display()
            .to_string(),
        device: backend.name().to_string(),
        peak_memory_bytes: run_dir::peak_memory_on(backend.as_ref()),
    };
    write_outputs(
        &out_dir,
        &image,
        &segmented,
        &run,
        &OutputOptions::default(),
        segmented.timings.clone(),
    )?;

    let categories = Array3 {
        sizes: image.sizes,
        data: segmented.categories.iter().map(|&c| f32::from(c)).collect(),
    };
    let teeth = Array3 {
        sizes: image.sizes,
        data: categories
            .data
            .iter()
            .map(|&c| f32::from(c > 0.0))
            .collect(),
    };
    let truth_teeth = Array3::from_volume(&enamel::io::read_volume(&held_out.teeth)?)?;
    let truth = Array3::from_volume(&enamel::io::read_volume(&held_out.categories)?)?;
    let teeth_dice = dice_per_class(&teeth, &truth_teeth, 2)[1].unwrap_or(0.0);
    println!("\nheld-out phantom, cascade: tooth Dice {teeth_dice:.3}");
    println!("Dice per category:");
    for (c, dice) in dice_per_class(&categories, &truth, 9).iter().enumerate() {
        let shown = dice
            .map(|v| format!("{v:.3}"))
            .unwrap_or_else(|| "absent".into());
        println!("  {c} {:<16} {shown}", CATEGORY_NAMES[c]);
    }
    let truth_fdi: std::collections::BTreeSet<u8> = held_out.teeth_fdi.iter().copied().collect();
    let found: std::collections::BTreeSet<u8> =
        segmented.instances.teeth.iter().map(|t| t.fdi).collect();
    println!(
        "teeth numbered (FDI): {} found, {} of the {} in the phantom",
        found.len(),
        found.intersection(&truth_fdi).count(),
        truth_fdi.len()
    );
    println!(
        "\nwrote {} (label maps, one STL per tooth, preview.png, report.json; open the maps \
         with the phantom's image in 3D Slicer); total {:.0} s",
        out_dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
