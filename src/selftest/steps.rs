//! One training step of net A (binary) and net B (nine classes) with the real trainer on the
//! device and on `cpu` (same initial weights, same batch), and the gradients of every
//! parameter from one forward and backward pass.

use std::sync::Arc;

use super::{compare_outputs, dtype_label, Row, Size};
use crate::autograd::Tape;
use crate::backend::device::Device;
use crate::backend::{Backend, Cpu};
use crate::nn::UNet;
use crate::ops::dice::{dice_binary, dice_categorical};
use crate::preprocess::Array3;
use crate::rng::Rng;
use crate::tensor::{DType, Tensor};
use crate::train::data::{sample_batch, Sample};
use crate::train::{OptimizerKind, Pair, Precision, Stage, TrainConfig, Trainer};

/// A check's outputs, each flattened to f64.
type Outputs = anyhow::Result<Vec<Vec<f64>>>;

fn config(stage: Stage, size: Size, precision: Precision) -> TrainConfig {
    TrainConfig {
        stage,
        net: stage.default_net(),
        train: vec![Pair {
            image: "selftest".into(),
            labels: "selftest".into(),
        }],
        validation: Vec::new(),
        label_map: Vec::new(),
        patch: match size {
            Size::Small => [4, 8, 8],
            Size::Reference => [24, 48, 48],
        },
        batch: 2,
        epochs: 1,
        steps_per_epoch: 2,
        optimizer: OptimizerKind::Rmsprop,
        lr: 1e-3,
        augment_rotations: Vec::new(),
        foreground_fraction: 0.5,
        precision,
        seed: 11,
        checkpoint_every: 0,
        half: None,
        intensity: Default::default(),
    }
}

/// A ball split into up to eight sectors (one class each) in a textured box, larger than the
/// patch by a margin so that patches are cut at different places.
fn sample(stage: Stage, patch: [usize; 3]) -> Sample {
    let sizes = [patch[2] + 6, patch[1] + 6, patch[0] + 4];
    let centre = sizes.map(|s| s as f32 / 2.0);
    let radius = sizes.iter().fold(f32::MAX, |m, &s| m.min(s as f32)) / 2.5;
    let mut image = Vec::new();
    let mut classes = Vec::new();
    for k in 0..sizes[2] {
        for j in 0..sizes[1] {
            for i in 0..sizes[0] {
                let p = [
                    i as f32 - centre[0],
                    j as f32 - centre[1],
                    k as f32 - centre[2],
                ];
                let inside = p.iter().map(|v| v * v).sum::<f32>() < radius * radius;
                let texture = 0.05 * ((i * 7 + j * 3 + k) % 5) as f32;
                image.push(if inside { 0.8 } else { 0.2 } + texture);
                let class = match (inside, stage) {
                    (false, _) => 0.0,
                    (true, Stage::Binary) => 1.0,
                    (true, Stage::Categories) => {
                        1.0 + f32::from(p[0] > 0.0)
                            + 2.0 * f32::from(p[1] > 0.0)
                            + 4.0 * f32::from(p[2] > 0.0)
                    }
                };
                classes.push(class);
            }
        }
    }
    Sample {
        image: Array3 { sizes, data: image },
        classes: Array3 {
            sizes,
            data: classes,
        },
    }
}

/// One trainer step: its loss, and 1 when it applied the update (0 when the loss scaler
/// skipped it).
fn trainer_step(
    stage: Stage,
    size: Size,
    precision: Precision,
    backend: Arc<dyn Backend>,
) -> Outputs {
    let config = config(stage, size, precision);
    let samples = [sample(stage, config.patch)];
    let net = UNet::new(config.net, config.seed)?;
    let mut trainer = Trainer::new(config, net, backend)?;
    let step = trainer.train_step(&samples)?;
    Ok(vec![
        vec![step.loss],
        vec![f64::from(u8::from(step.applied))],
    ])
}

/// Forward and backward of the whole network on one batch: the loss and the gradient of
/// every parameter. In f16 the loss is scaled by 2^10 (as the trainer's loss scaling does) so
/// that small gradients do not underflow, and the gradients are divided by it again.
fn gradients(stage: Stage, size: Size, dtype: DType, backend: Arc<dyn Backend>) -> Outputs {
    let config = config(stage, size, Precision::F32);
    let samples = [sample(stage, config.patch)];
    let batch = sample_batch(&samples, &config, dtype, &mut Rng::new(config.seed))?;
    let mut net = UNet::new(config.net, config.seed)?;
    let mut tape = Tape::new(backend);
    let x = tape.leaf(batch.x, false);
    let forward = net.forward(&mut tape, x, true, dtype)?;
    let loss = match stage {
        Stage::Binary => dice_binary(&mut tape, forward.logits, &batch.target)?,
        Stage::Categories => dice_categorical(&mut tape, forward.logits, &batch.target)?,
    };
    let loss_value = tape.value(loss).as_f64().into_owned();
    let scale = if dtype == DType::F16 { 1024.0 } else { 1.0 };
    let mut grads = tape.backward(loss, Tensor::scalar(scale))?;
    // All gradients in one output, measured against the largest of them: the gradient of a
    // conv bias followed by batch norm is zero but for rounding, so its own scale is noise.
    let mut all = Vec::new();
    for (name, var) in &forward.params {
        let grad = grads
            .take(*var)
            .ok_or_else(|| anyhow::anyhow!("no gradient reached {name}"))?;
        all.extend(grad.as_f64().iter().map(|g| g / f64::from(scale)));
    }
    Ok(vec![loss_value, all])
}

/// How far the parameter gradients of a whole network may part. In f16 every op is exact to
/// a rounding step given the same inputs, but a one-step difference in a stored activation
/// grows through each batch norm backward, most where a channel has few values: at the small
/// size (8 values per channel at the deepest level) the first layers' gradients of net A
/// differ by up to 14% between emu and cpu while f32 agrees to 1e-5. So f16 is a coarse
/// check here; the per-op f16 rows are the exact ones.
fn gradient_tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => 0.25,
        _ => 1e-4,
    }
}

/// Net A and net B, f32 storage or mixed precision (f16 storage) as `dtype` says: a trainer
/// step (its loss) and the gradients of every parameter.
///
/// The losses of later steps are not compared: RMSprop's first update moves every parameter
/// by about `10·lr` whatever the size of its gradient, so a gradient near zero that rounds to
/// a different f16 value can move a parameter the other way and the losses part by percents
/// although every kernel is right.
pub(super) fn check_training(device: &Device, size: Size, dtype: DType, rows: &mut Vec<Row>) {
    let precision = match dtype {
        DType::F16 => Precision::Mixed,
        _ => Precision::F32,
    };
    // The loss is a mean over every voxel, so it agrees more closely than single values do.
    let tolerance = match dtype {
        DType::F16 => 2e-3,
        _ => 1e-4,
    };
    let device_backend: Arc<dyn Backend> = Arc::new(device.clone());
    // One row: `run` on the device (timed) and on the cpu, compared within `tol`.
    let mut row = |what: String, tol: f64, run: &dyn Fn(Arc<dyn Backend>) -> Outputs| {
        let (got, ms) = super::device_ms(device, || run(device_backend.clone()));
        let want = run(Arc::new(Cpu::new()));
        rows.push(compare_outputs(
            &what,
            dtype_label(dtype),
            tol,
            ms,
            got.map_err(|e| format!("{e:#}")),
            want.map_err(|e| format!("{e:#}")),
        ));
    };
    for (stage, name) in [(Stage::Binary, "net A"), (Stage::Categories, "net B")] {
        row(
            format!("{name} train step (loss, applied)"),
            tolerance,
            &|backend| trainer_step(stage, size, precision, backend),
        );
        row(
            format!("{name} forward+backward (loss, grads)"),
            gradient_tolerance(dtype),
            &|backend| gradients(stage, size, dtype, backend),
        );
    }
}
