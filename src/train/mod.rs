//! Training the cascade's networks: configuration, data, the loop, and the run directory.

pub mod config;
pub mod data;
pub mod run;
pub mod run_dir;
pub mod trainer;
mod validate;

pub use config::{Half, Intensity, OptimizerKind, Pair, Precision, Stage, TrainConfig};
pub use trainer::{Optimizer, StepReport, Trainer};
pub use validate::{dice_per_class, validate};
