//! The benchmarked workloads, shared by the criterion benches and `enamel bench`: a training
//! step of net A or B on a synthetic patch, and the cascade's inference on a volume.

use std::sync::Arc;

use anyhow::Result;

use super::{unet_flops, unet_layers};
use crate::backend::Backend;
use crate::infer::{argmax, sliding_window, window_starts, NetModel};
use crate::nn::UNet;
use crate::preprocess::Array3;
use crate::rng::Rng;
use crate::tensor::DType;
use crate::train::data::Sample;
use crate::train::{OptimizerKind, Precision, Stage, TrainConfig, Trainer};

/// Window overlap of the cascade's sliding window (as the demo's).
pub const OVERLAP: f64 = 0.5;

/// The reference patch of each stage (D,H,W): net A trains on 72×120×120 patches, net B on
/// whole 168×120×120 volumes.
pub fn reference_patch(stage: Stage) -> [usize; 3] {
    match stage {
        Stage::Binary => [72, 120, 120],
        Stage::Categories => [168, 120, 120],
    }
}

/// A training configuration for one step of `stage` on `patch` (RMSprop, batch 1).
pub fn train_config(stage: Stage, patch: [usize; 3], precision: Precision) -> TrainConfig {
    TrainConfig {
        stage,
        net: stage.default_net(),
        train: Vec::new(),
        validation: Vec::new(),
        label_map: Vec::new(),
        patch,
        batch: 1,
        epochs: 1,
        steps_per_epoch: 1,
        optimizer: OptimizerKind::Rmsprop,
        lr: 1e-3,
        augment_rotations: vec![0.0],
        foreground_fraction: 0.0,
        precision,
        seed: 1,
        checkpoint_every: 0,
        half: None,
        intensity: Default::default(),
    }
}

/// A random image of D,H,W `size` (values in [0, 1)), as `Array3` (i fastest).
pub fn random_image(size: [usize; 3], seed: u64) -> Array3 {
    let [d, h, w] = size;
    let mut rng = Rng::new(seed);
    Array3 {
        sizes: [w, h, d],
        data: (0..d * h * w).map(|_| rng.uniform() as f32).collect(),
    }
}

/// A patch-sized training sample with random classes below `classes`.
pub fn random_sample(size: [usize; 3], classes: usize, seed: u64) -> Sample {
    let image = random_image(size, seed);
    let mut rng = Rng::new(seed ^ 0xc1a55);
    let labels = (0..image.data.len())
        .map(|_| rng.below(classes) as f32)
        .collect();
    Sample {
        classes: Array3 {
            sizes: image.sizes,
            data: labels,
        },
        image,
    }
}

/// A trainer for `stage` on `patch` with one matching sample, ready to `train_step`.
pub fn trainer(
    stage: Stage,
    patch: [usize; 3],
    precision: Precision,
    backend: Arc<dyn Backend>,
) -> Result<(Trainer, Vec<Sample>)> {
    let config = train_config(stage, patch, precision);
    let net = UNet::new(config.net, 7)?;
    let sample = random_sample(patch, stage.classes(), 11);
    Ok((Trainer::new(config, net, backend)?, vec![sample]))
}

/// Peak device memory, in bytes, of one training step of `stage` on `patch`, measured on the
/// `plan` device (every allocation of the device backend, no kernel run); `budget` as
/// `--mem-limit`. Mixed precision: f16 activations, as on a GPU.
pub fn planned_step_memory(stage: Stage, patch: [usize; 3], budget: Option<usize>) -> Result<u64> {
    let plan = crate::backend::device::Device::plan(budget);
    let (mut trainer, samples) = trainer(stage, patch, Precision::Mixed, Arc::new(plan.clone()))?;
    trainer.train_step(&samples)?;
    Ok(plan.memory_stats().peak as u64)
}

/// Training-step FLOPs of `stage`'s network on `patch`.
pub fn training_step_flops(stage: Stage, patch: [usize; 3]) -> f64 {
    unet_flops(&stage.default_net(), patch).training_step
}

/// The two networks of the cascade with the patch each predicts.
pub struct Cascade {
    pub net_a: UNet,
    pub patch_a: [usize; 3],
    pub net_b: UNet,
    pub patch_b: [usize; 3],
}

impl Cascade {
    /// Both networks with fresh weights; patches as in training.
    pub fn new(patch_a: [usize; 3], patch_b: [usize; 3]) -> Result<Self> {
        Ok(Cascade {
            net_a: UNet::new(Stage::Binary.default_net(), 3)?,
            patch_a,
            net_b: UNet::new(Stage::Categories.default_net(), 5)?,
            patch_b,
        })
    }

    /// Tooth categories of `image`: net B's classes where net A finds tooth, else 0.
    pub fn segment(
        &mut self,
        image: &Array3,
        backend: &Arc<dyn Backend>,
        dtype: DType,
    ) -> Result<Array3> {
        let mut model_a = NetModel {
            net: &mut self.net_a,
            backend: backend.clone(),
            dtype,
        };
        let teeth = argmax(&sliding_window(
            &mut model_a,
            image,
            self.patch_a,
            OVERLAP,
            |_, _| {},
        )?);
        let mut model_b = NetModel {
            net: &mut self.net_b,
            backend: backend.clone(),
            dtype,
        };
        let mut categories = argmax(&sliding_window(
            &mut model_b,
            image,
            self.patch_b,
            OVERLAP,
            |_, _| {},
        )?);
        for (c, &t) in categories.data.iter_mut().zip(&teeth.data) {
            if t == 0.0 {
                *c = 0.0;
            }
        }
        Ok(categories)
    }

    /// Windows each network runs on a D,H,W `volume`.
    pub fn windows(&self, volume: [usize; 3]) -> [usize; 2] {
        let count = |patch: [usize; 3]| -> usize {
            (0..3)
                .map(|a| window_starts(volume[a], patch[a], OVERLAP).len())
                .product()
        };
        [count(self.patch_a), count(self.patch_b)]
    }

    /// Convolution FLOPs of segmenting a D,H,W `volume`.
    pub fn flops(&self, volume: [usize; 3]) -> f64 {
        let [a, b] = self.windows(volume);
        let forward = |net: &UNet, patch| -> f64 {
            unet_layers(&net.config, patch)
                .iter()
                .map(|l| l.forward_flops())
                .sum()
        };
        a as f64 * forward(&self.net_a, self.patch_a)
            + b as f64 * forward(&self.net_b, self.patch_b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;

    #[test]
    fn reference_cascade_runs_four_windows_of_a_and_one_of_b() {
        let cascade = Cascade::new([72, 120, 120], [168, 120, 120]).unwrap();
        assert_eq!(cascade.windows([168, 120, 120]), [4, 1]);
        // 4 × 123.2 + 72.8 GFLOP.
        let gflop = cascade.flops([168, 120, 120]) / 1e9;
        assert!((gflop - (4.0 * 123.23 + 72.84)).abs() < 0.1, "{gflop}");
    }

    #[test]
    fn tiny_cascade_segments_every_voxel_into_a_category() {
        let backend: Arc<dyn Backend> = Arc::new(Cpu::new());
        let mut cascade = Cascade::new([4, 8, 8], [8, 8, 8]).unwrap();
        let image = random_image([8, 8, 8], 1);
        let out = cascade.segment(&image, &backend, DType::F32).unwrap();
        assert_eq!(out.sizes, [8, 8, 8]);
        assert!(out
            .data
            .iter()
            .all(|&c| (0.0..9.0).contains(&c) && c.fract() == 0.0));
    }

    #[test]
    fn tiny_training_step_gives_a_finite_dice_loss() {
        let backend: Arc<dyn Backend> = Arc::new(Cpu::new());
        for stage in [Stage::Binary, Stage::Categories] {
            let (mut trainer, samples) =
                trainer(stage, [4, 8, 8], Precision::F32, backend.clone()).unwrap();
            let report = trainer.train_step(&samples).unwrap();
            assert!(report.applied);
            assert!(
                (0.0..=1.0).contains(&report.loss),
                "{stage:?}: {}",
                report.loss
            );
        }
    }
}
