//! `enamel train`: one stage of the cascade on image/label pairs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use enamel::nn::{checkpoint, UNet, UNetConfig};
use enamel::train::data::load_training_set;
use enamel::train::run::{run, Ended, RunOptions};
use enamel::train::{
    run_dir, Half, Intensity, OptimizerKind, Pair, Precision, Stage, TrainConfig, Trainer,
};
use tracing::info;

use super::device::{backend, DeviceChoice};

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Which network: binary (teeth vs background) or categories (8 tooth categories).
    #[arg(long, value_enum, default_value = "binary")]
    pub stage: Stage,
    /// Training image (repeat with --labels for several pairs).
    #[arg(long = "image")]
    pub images: Vec<PathBuf>,
    /// Label map of the preceding --image.
    #[arg(long = "labels")]
    pub labels: Vec<PathBuf>,
    /// Validation image (repeat with --val-labels).
    #[arg(long = "val-image")]
    pub val_images: Vec<PathBuf>,
    #[arg(long = "val-labels")]
    pub val_labels: Vec<PathBuf>,
    /// Raw label value → class, e.g. `1:1,2:1,3:0`; default per stage.
    #[arg(long, value_parser = parse_label_map)]
    pub label_map: Option<LabelPairs>,
    /// Patch size D,H,W; each a multiple of 2^(n_blocks−1).
    #[arg(long, default_value = "72,120,120", value_parser = parse_dhw)]
    pub patch: [usize; 3],
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 50)]
    pub steps_per_epoch: usize,
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: OptimizerKind,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Extra rotated copies of each training pair, degrees about the k axis (e.g. 20,40).
    #[arg(long, value_delimiter = ',')]
    pub augment_rotations: Vec<f64>,
    /// Share of patches centred on a foreground voxel.
    #[arg(long, default_value_t = 0.5)]
    pub foreground_fraction: f64,
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: Precision,
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// Device memory budget, e.g. 6GiB (a GTX 1060); default: the device's memory.
    #[arg(long, value_parser = super::device::parse_bytes)]
    pub mem_limit: Option<usize>,
    /// More training pairs: a text file with one `IMAGE LABELS` line per pair (paths relative
    /// to the file), or a folder where each `NAME_labels.EXT` pairs with `NAME.EXT`.
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    #[arg(long)]
    pub n_blocks: Option<usize>,
    #[arg(long)]
    pub start_filters: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Save epoch_<n>.safetensors every N epochs (0: only last and best).
    #[arg(long, default_value_t = 0)]
    pub checkpoint_every: usize,
    /// Train on this half of each training pair (split at the midline of its labels, in
    /// world x) and validate on the other half too.
    #[arg(long, value_enum)]
    pub half: Option<Half>,
    /// Intensity window LO,HI (e.g. -1000,3000 in HU): values clamped and mapped to 0..1.
    /// Default: each volume's own min–max. Recorded in the run, so `segment` applies it too.
    #[arg(long, value_parser = parse_window, allow_hyphen_values = true)]
    pub window: Option<Intensity>,
    /// Start from these weights (an enamel checkpoint or a PyTorch state_dict as safetensors).
    #[arg(long)]
    pub init_from: Option<PathBuf>,
    /// Continue the run in this directory exactly where its last checkpoint left it.
    #[arg(long, conflicts_with = "init_from")]
    pub resume: Option<PathBuf>,
    /// Run directory for config, checkpoints and metrics.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct LabelPairs(pub Vec<(i64, u32)>);

fn parse_label_map(text: &str) -> Result<LabelPairs, String> {
    text.split(',')
        .map(|pair| {
            let (raw, class) = pair
                .split_once(':')
                .ok_or_else(|| format!("`{pair}` is not RAW:CLASS (e.g. 11:1)"))?;
            let raw = raw
                .trim()
                .parse()
                .map_err(|_| format!("`{raw}` is not an integer"))?;
            let class = class
                .trim()
                .parse()
                .map_err(|_| format!("`{class}` is not a class"))?;
            Ok((raw, class))
        })
        .collect::<Result<_, String>>()
        .map(LabelPairs)
}

pub fn parse_dhw(text: &str) -> Result<[usize; 3], String> {
    let parts: Vec<usize> = text
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{p}` is not a size"))
        })
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        &[d, h, w] if d > 0 && h > 0 && w > 0 => Ok([d, h, w]),
        _ => Err(format!("`{text}` is not three positive sizes D,H,W")),
    }
}

fn pairs(images: &[PathBuf], labels: &[PathBuf], what: &str) -> Result<Vec<Pair>> {
    if images.len() != labels.len() {
        bail!(
            "{} {what} images but {} label maps: give them in pairs",
            images.len(),
            labels.len()
        );
    }
    Ok(images
        .iter()
        .zip(labels)
        .map(|(image, labels)| Pair {
            image: image.clone(),
            labels: labels.clone(),
        })
        .collect())
}

/// Pairs listed in a text file (`IMAGE LABELS` per line, `#` comments, paths relative to the
/// file) or found in a folder (`NAME_labels.EXT` beside `NAME.EXT`).
pub fn pairs_from(source: &Path) -> Result<Vec<Pair>> {
    if source.is_dir() {
        let mut found = Vec::new();
        for entry in
            std::fs::read_dir(source).with_context(|| format!("reading {}", source.display()))?
        {
            let path = entry?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Some((stem, ext)) = name.split_once("_labels.") else {
                continue;
            };
            let image = source.join(format!("{stem}.{ext}"));
            if !image.exists() {
                bail!(
                    "{} has no image {} beside it",
                    path.display(),
                    image.display()
                );
            }
            found.push(Pair {
                image,
                labels: path,
            });
        }
        found.sort_by(|a, b| a.image.cmp(&b.image));
        if found.is_empty() {
            bail!(
                "{}: no NAME_labels.EXT files with a NAME.EXT image",
                source.display()
            );
        }
        return Ok(found);
    }
    let text =
        std::fs::read_to_string(source).with_context(|| format!("reading {}", source.display()))?;
    let base = source.parent().unwrap_or(Path::new("."));
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|f| !f.is_empty())
            .collect();
        let [image, labels] = fields.as_slice() else {
            bail!(
                "{} line {}: expected `IMAGE LABELS`, got `{line}`",
                source.display(),
                number + 1
            );
        };
        found.push(Pair {
            image: base.join(image),
            labels: base.join(labels),
        });
    }
    Ok(found)
}

/// The flag that Ctrl-C sets; the handler is installed on first use.
pub fn stop_flag() -> Arc<AtomicBool> {
    static STOP: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    STOP.get_or_init(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let handler_flag = stop.clone();
        if ctrlc::set_handler(move || handler_flag.store(true, Ordering::SeqCst)).is_err() {
            tracing::warn!("could not install the Ctrl-C handler; Ctrl-C will not save `last`");
        }
        stop
    })
    .clone()
}

pub fn run_command(args: TrainArgs) -> Result<()> {
    let backend = backend(args.device, args.mem_limit)?;
    let (mut trainer, best, out) = if let Some(dir) = &args.resume {
        let (trainer, best) = run_dir::resume(&dir.join("last.safetensors"), backend)?;
        info!(
            "resuming {} at epoch {} (step {})",
            dir.display(),
            trainer.epoch,
            trainer.step
        );
        (trainer, best, dir.clone())
    } else {
        let out = args
            .out
            .clone()
            .context("give --out RUN_DIR (or --resume RUN_DIR)")?;
        let mut train = pairs(&args.images, &args.labels, "training")?;
        if let Some(source) = &args.pairs {
            train.extend(pairs_from(source)?);
        }
        if train.is_empty() {
            bail!("no training data: give --image A.nrrd --labels A_labels.nrrd");
        }
        let default = args.stage.default_net();
        let net_config = UNetConfig {
            n_blocks: args.n_blocks.unwrap_or(default.n_blocks),
            start_filters: args.start_filters.unwrap_or(default.start_filters),
            ..default
        };
        let config = TrainConfig {
            stage: args.stage,
            net: net_config,
            train,
            validation: pairs(&args.val_images, &args.val_labels, "validation")?,
            label_map: args.label_map.map(|m| m.0).unwrap_or_default(),
            patch: args.patch,
            batch: args.batch,
            epochs: args.epochs,
            steps_per_epoch: args.steps_per_epoch,
            optimizer: args.optimizer,
            lr: args.lr,
            augment_rotations: args.augment_rotations.clone(),
            foreground_fraction: args.foreground_fraction,
            precision: args.precision,
            seed: args.seed,
            checkpoint_every: args.checkpoint_every,
            half: args.half,
            intensity: args.window.unwrap_or_default(),
        };
        net_config.check_input(&[1, 1, args.patch[0], args.patch[1], args.patch[2]])?;
        let mut net = UNet::new(net_config, args.seed)?;
        if let Some(path) = &args.init_from {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let tensors = safetensors::SafeTensors::deserialize(&bytes)
                .with_context(|| format!("{}: not a safetensors file", path.display()))?;
            checkpoint::load_state(&mut net, &tensors, "", path, true)?;
            info!("initialised from {}", path.display());
        }
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        run_dir::write_config(&out, &config)?;
        (Trainer::new(config, net, backend)?, 0.0, out)
    };

    let samples = load_training_set(&trainer.config)?;
    let options = RunOptions {
        out: out.clone(),
        stop: stop_flag(),
        abort_after_steps: None,
        progress: true,
    };
    let (ended, _) = run(&mut trainer, &samples, &options, best)?;
    match ended {
        Ended::Interrupted => info!(
            "interrupted: {} holds the last state",
            out.join("last.safetensors").display()
        ),
        _ => info!("done: checkpoints and metrics.csv in {}", out.display()),
    }
    Ok(())
}

fn parse_window(text: &str) -> Result<Intensity, String> {
    let values: Vec<f32> = text
        .split(',')
        .map(|v| v.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`{text}` is not LO,HI (two numbers)"))?;
    match values[..] {
        [lo, hi] if lo < hi && lo.is_finite() && hi.is_finite() => Ok(Intensity::Window { lo, hi }),
        _ => Err(format!("`{text}` is not LO,HI with LO < HI")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_parses_and_maps_its_ends_to_0_and_1() {
        let window = parse_window("-1000,3000").unwrap();
        assert_eq!(
            window,
            Intensity::Window {
                lo: -1000.0,
                hi: 3000.0
            }
        );
        assert!(parse_window("3000,-1000").is_err());
        assert!(parse_window("5").is_err());
        let mut a =
            enamel::preprocess::Array3::new([4, 1, 1], vec![-2000.0, -1000.0, 1000.0, 4000.0])
                .unwrap();
        window.apply(&mut a);
        assert_eq!(a.data, vec![0.0, 0.0, 0.5, 1.0]);
    }

    #[test]
    fn pairs_come_from_a_list_file_or_a_folder() {
        let dir = std::env::temp_dir().join(format!("enamel-pairs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "a.nrrd",
            "a_labels.nrrd",
            "b.nii.gz",
            "b_labels.nii.gz",
            "notes.txt",
        ] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let found = pairs_from(&dir).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].image, dir.join("a.nrrd"));
        assert_eq!(found[0].labels, dir.join("a_labels.nrrd"));
        assert_eq!(found[1].image, dir.join("b.nii.gz"));

        let list = dir.join("pairs.txt");
        std::fs::write(
            &list,
            "# training pairs\nx.nrrd  x_seg.nrrd\n\ny.nrrd,y_seg.nrrd # two\n",
        )
        .unwrap();
        let found = pairs_from(&list).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].labels, dir.join("y_seg.nrrd"));

        std::fs::write(&list, "only_one.nrrd\n").unwrap();
        let err = pairs_from(&list).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");

        std::fs::remove_file(dir.join("a.nrrd")).unwrap();
        assert!(pairs_from(&dir)
            .unwrap_err()
            .to_string()
            .contains("no image"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
