//! What a training run is: written to `config.json` in the run directory and read back by
//! `--resume`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::nn::UNetConfig;
use crate::preprocess::{ct_window, min_max, Array3};

/// Which U-Net of the cascade is trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Net A: teeth against background (sigmoid + binary Dice).
    Binary,
    /// Net B: 8 tooth categories + background (softmax + categorical Dice).
    Categories,
}

impl Stage {
    /// The reference pipeline's network for this stage.
    pub fn default_net(self) -> UNetConfig {
        match self {
            Stage::Binary => UNetConfig::BINARY,
            Stage::Categories => UNetConfig::CATEGORIES,
        }
    }

    /// Classes the loss and the metrics see (background included).
    pub fn classes(self) -> usize {
        match self {
            Stage::Binary => 2,
            Stage::Categories => 9,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Adam,
    Rmsprop,
}

/// Storage of activations: f32, or f16 with f32 master weights and dynamic loss scaling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    Mixed,
}

/// A side of the patient, for splitting a volume at the midline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Half {
    /// The patient's right (−x in LPS).
    Right,
    /// The patient's left (+x in LPS).
    Left,
}

impl Half {
    pub fn other(self) -> Half {
        match self {
            Half::Right => Half::Left,
            Half::Left => Half::Right,
        }
    }
}

/// An image and its label map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub image: PathBuf,
    pub labels: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub stage: Stage,
    pub net: UNetConfig,
    pub train: Vec<Pair>,
    pub validation: Vec<Pair>,
    /// Raw label value → class, `[value, class]` pairs; empty means the stage's default
    /// (binary: every nonzero value is tooth; categories: 0–8 as they are, FDI 11–48 → FDI
    /// mod 10).
    pub label_map: Vec<(i64, u32)>,
    /// Patch size D,H,W (k, j, i of the volume).
    pub patch: [usize; 3],
    pub batch: usize,
    pub epochs: usize,
    pub steps_per_epoch: usize,
    pub optimizer: OptimizerKind,
    pub lr: f64,
    /// Rotation angles (degrees, about the k axis) of the augmented copies; always includes 0.
    pub augment_rotations: Vec<f64>,
    /// Share of patches centred on a foreground voxel.
    pub foreground_fraction: f64,
    pub precision: Precision,
    pub seed: u64,
    /// Save `epoch_<n>.safetensors` every this many epochs (0: never).
    pub checkpoint_every: usize,
    /// Train on this half of each training pair (split at the midline, the world x of the
    /// labelled voxels' centroid) and validate on the other half as well.
    #[serde(default)]
    pub half: Option<Half>,
    /// How image values become network inputs; `segment` applies the same.
    #[serde(default)]
    pub intensity: Intensity,
}

/// Intensity preprocessing of an image before it enters a network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intensity {
    /// The volume's own minimum and maximum map to 0 and 1.
    #[default]
    MinMax,
    /// Values clamped to [lo, hi] (e.g. Hounsfield units), then lo and hi map to 0 and 1.
    Window { lo: f32, hi: f32 },
}

impl Intensity {
    /// Applies the preprocessing to `image` in place.
    pub fn apply(self, image: &mut Array3) {
        match self {
            Intensity::MinMax => {
                min_max(image);
            }
            Intensity::Window { lo, hi } => {
                ct_window(image, lo, hi);
                let (lo, hi) = (lo.min(hi), lo.max(hi));
                let scale = if hi > lo { 1.0 / (hi - lo) } else { 0.0 };
                for x in &mut image.data {
                    *x = (*x - lo) * scale;
                }
            }
        }
    }
}
