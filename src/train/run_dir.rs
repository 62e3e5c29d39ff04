//! The run directory: `config.json`, checkpoints (`last`, `best`, `epoch_<n>`) and
//! `metrics.csv`. Every file is written to a temporary name and renamed, so a kill at any
//! moment leaves the previous version readable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::trainer::{Optimizer, Trainer};
use crate::nn::checkpoint::{self, write_atomic, TRAINING_PREFIX};
use crate::optim::{AdamState, RmsPropState};
use crate::rng::Rng;

/// Trainer state that is not a tensor, kept in the checkpoint's metadata.
#[derive(Serialize, Deserialize)]
struct TrainerMeta {
    config: TrainConfig,
    epoch: usize,
    step: u64,
    rng: [u64; 4],
    loss_scale: f32,
    growth_tracker: u32,
    optimizer_steps: Vec<u64>,
    best_dice: f64,
}

const META_KEY: &str = "enamel.trainer";

pub fn config_path(dir: &Path) -> PathBuf {
    dir.join("config.json")
}

pub fn write_config(dir: &Path, config: &TrainConfig) -> Result<()> {
    let json = serde_json::to_string_pretty(config)?;
    write_atomic(&config_path(dir), json.as_bytes())
        .with_context(|| format!("writing {}", config_path(dir).display()))
}

/// Saves the network and everything `--resume` needs.
pub fn save(trainer: &Trainer, path: &Path, best_dice: f64) -> Result<()> {
    let mut net = trainer.net.clone();
    let names: Vec<(String, Vec<usize>)> = net
        .parameters_mut()
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec()))
        .collect();
    let mut tensors = Vec::new();
    let optimizer_steps = match &trainer.optimizer {
        Optimizer::Adam(o) => {
            for ((name, shape), state) in names.iter().zip(&o.states) {
                tensors.push((
                    format!("{TRAINING_PREFIX}exp_avg.{name}"),
                    shape.clone(),
                    state.exp_avg.clone(),
                ));
                tensors.push((
                    format!("{TRAINING_PREFIX}exp_avg_sq.{name}"),
                    shape.clone(),
                    state.exp_avg_sq.clone(),
                ));
            }
            o.states.iter().map(|s| s.step).collect()
        }
        Optimizer::RmsProp(o) => {
            for ((name, shape), state) in names.iter().zip(&o.states) {
                tensors.push((
                    format!("{TRAINING_PREFIX}square_avg.{name}"),
                    shape.clone(),
                    state.square_avg.clone(),
                ));
            }
            o.states.iter().map(|s| s.step).collect()
        }
    };
    let meta = TrainerMeta {
        config: trainer.config.clone(),
        epoch: trainer.epoch,
        step: trainer.step,
        rng: trainer.rng.state(),
        loss_scale: trainer.scaler.scale,
        growth_tracker: trainer.scaler.growth_tracker,
        optimizer_steps,
        best_dice,
    };
    let extra = [(META_KEY.to_string(), serde_json::to_string(&meta)?)];
    let bytes = checkpoint::state_bytes_with(&trainer.net, &tensors, &extra);
    write_atomic(path, &bytes).with_context(|| format!("writing checkpoint {}", path.display()))
}

/// Restores a trainer saved by [`save`]; returns it and the best validation Dice so far.
pub fn resume(
    path: &Path,
    backend: std::sync::Arc<dyn crate::backend::Backend>,
) -> Result<(Trainer, f64)> {
    let (net, metadata) = checkpoint::load(path, None)
        .with_context(|| format!("loading checkpoint {}", path.display()))?;
    let Some(json) = metadata.get(META_KEY) else {
        bail!(
            "{}: not a training checkpoint (no `{META_KEY}` metadata); use --init-from",
            path.display()
        );
    };
    let meta: TrainerMeta = serde_json::from_str(json)
        .with_context(|| format!("{}: metadata field `{META_KEY}`", path.display()))?;
    let tensors = checkpoint::load_training_tensors(path)?;

    let mut trainer = Trainer::new(meta.config, net, backend)?;
    let mut net = trainer.net.clone();
    let names: Vec<String> = net.parameters_mut().into_iter().map(|(n, _)| n).collect();
    let take = |tensors: &HashMap<String, Vec<f32>>, key: String| -> Result<Vec<f32>> {
        tensors
            .get(&key)
            .cloned()
            .with_context(|| format!("{}: tensor `{key}` is missing", path.display()))
    };
    match &mut trainer.optimizer {
        Optimizer::Adam(o) => {
            for (i, name) in names.iter().enumerate() {
                o.states[i] = AdamState {
                    step: meta.optimizer_steps[i],
                    exp_avg: take(&tensors, format!("{TRAINING_PREFIX}exp_avg.{name}"))?,
                    exp_avg_sq: take(&tensors, format!("{TRAINING_PREFIX}exp_avg_sq.{name}"))?,
                };
            }
        }
        Optimizer::RmsProp(o) => {
            for (i, name) in names.iter().enumerate() {
                o.states[i] = RmsPropState {
                    step: meta.optimizer_steps[i],
                    square_avg: take(&tensors, format!("{TRAINING_PREFIX}square_avg.{name}"))?,
                };
            }
        }
    }
    trainer.epoch = meta.epoch;
    trainer.step = meta.step;
    trainer.rng = Rng::from_state(meta.rng);
    trainer.scaler.scale = meta.loss_scale;
    trainer.scaler.growth_tracker = meta.growth_tracker;
    Ok((trainer, meta.best_dice))
}

/// One row of `metrics.csv`.
pub struct EpochMetrics {
    pub epoch: usize,
    pub loss: f64,
    /// Validation Dice per class (background first); empty without validation data.
    pub dice: Vec<Option<f64>>,
    pub lr: f64,
    pub loss_scale: f32,
    pub step_seconds: f64,
    pub peak_memory_bytes: u64,
    pub skipped_steps: usize,
}

/// Appends a row to `metrics.csv` (rewriting the file through a temporary copy).
pub fn append_metrics(dir: &Path, classes: usize, row: &EpochMetrics) -> Result<()> {
    let path = dir.join("metrics.csv");
    let mut text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(_) => {
            let dice: Vec<String> = (0..classes).map(|c| format!("dice_{c}")).collect();
            format!(
                "epoch,loss,{},lr,loss_scale,step_seconds,peak_memory_bytes,skipped_steps\n",
                dice.join(",")
            )
        }
    };
    let dice: Vec<String> = (0..classes)
        .map(|c| {
            row.dice
                .get(c)
                .copied()
                .flatten()
                .map(|d| format!("{d:.6}"))
                .unwrap_or_default()
        })
        .collect();
    text.push_str(&format!(
        "{},{:.6},{},{},{},{:.4},{},{}\n",
        row.epoch,
        row.loss,
        dice.join(","),
        row.lr,
        row.loss_scale,
        row.step_seconds,
        row.peak_memory_bytes,
        row.skipped_steps
    ));
    write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// Peak memory of a run on `backend`: its device memory peak where it manages device memory,
/// else the peak resident memory of this process.
pub fn peak_memory_on(backend: &dyn crate::backend::Backend) -> u64 {
    backend
        .peak_memory_bytes()
        .unwrap_or_else(peak_memory_bytes)
}

/// Peak resident memory of this process (Linux `VmHWM`), 0 where unknown.
pub fn peak_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The training configuration a checkpoint's metadata records (`None` for a checkpoint saved
/// without one, e.g. a PyTorch state_dict).
pub fn recorded_config(metadata: &HashMap<String, String>) -> Result<Option<TrainConfig>> {
    let Some(json) = metadata.get(META_KEY) else {
        return Ok(None);
    };
    let mut value: serde_json::Value =
        serde_json::from_str(json).with_context(|| format!("metadata field `{META_KEY}`"))?;
    let config = value
        .get_mut("config")
        .map(serde_json::Value::take)
        .with_context(|| format!("metadata field `{META_KEY}` has no `config`"))?;
    Ok(Some(serde_json::from_value(config).with_context(|| {
        format!("metadata field `{META_KEY}`: `config`")
    })?))
}
