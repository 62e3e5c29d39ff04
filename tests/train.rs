//! The trainer: kill-and-resume gives identical losses, an inf gradient skips the step and
//! halves the loss scale, a PyTorch state_dict initialises the network, and a short run on the
//! real CT lowers the loss and reloads to the same logits.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use enamel::autograd::Tape;
use enamel::backend::{Backend, Cpu};
use enamel::fixtures::{manifest_or_skip, report_skip};
use enamel::nn::{checkpoint, UNet, UNetConfig};
use enamel::preprocess::Array3;
use enamel::train::data::Sample;
use enamel::train::run::{run, Ended, RunOptions};
use enamel::train::{run_dir, OptimizerKind, Pair, Precision, Stage, TrainConfig, Trainer};
use enamel::{DType, Tensor};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enamel-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(precision: Precision) -> TrainConfig {
    TrainConfig {
        stage: Stage::Binary,
        net: UNetConfig {
            in_channels: 1,
            out_channels: 1,
            n_blocks: 2,
            start_filters: 4,
        },
        train: vec![Pair {
            image: "unused".into(),
            labels: "unused".into(),
        }],
        validation: Vec::new(),
        label_map: Vec::new(),
        patch: [8, 12, 12],
        batch: 2,
        epochs: 3,
        steps_per_epoch: 3,
        optimizer: OptimizerKind::Adam,
        lr: 1e-2,
        augment_rotations: Vec::new(),
        foreground_fraction: 0.5,
        precision,
        seed: 7,
        checkpoint_every: 0,
        half: None,
        intensity: Default::default(),
    }
}

/// A bright ball in a dim box, labelled.
fn ball_sample() -> Sample {
    let sizes = [20, 18, 14];
    let mut image = Vec::new();
    let mut classes = Vec::new();
    for k in 0..sizes[2] {
        for j in 0..sizes[1] {
            for i in 0..sizes[0] {
                let r2 =
                    (i as f32 - 9.0).powi(2) + (j as f32 - 8.0).powi(2) + (k as f32 - 7.0).powi(2);
                let inside = r2 < 16.0;
                image
                    .push(if inside { 0.8 } else { 0.2 } + 0.05 * ((i * 7 + j * 3 + k) % 5) as f32);
                classes.push(if inside { 1.0 } else { 0.0 });
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

fn options(out: &Path, abort_after_steps: Option<u64>) -> RunOptions {
    RunOptions {
        out: out.to_path_buf(),
        stop: Arc::new(AtomicBool::new(false)),
        abort_after_steps,
        progress: false,
    }
}

fn backend() -> Arc<dyn Backend> {
    Arc::new(Cpu::new())
}

#[test]
fn killed_mid_epoch_resumes_with_identical_losses() {
    let samples = [ball_sample()];
    let straight_dir = temp_dir("straight");
    let cfg = config(Precision::F32);
    let mut straight =
        Trainer::new(cfg.clone(), UNet::new(cfg.net, 3).unwrap(), backend()).unwrap();
    let (ended, rows) = run(&mut straight, &samples, &options(&straight_dir, None), 0.0).unwrap();
    assert_eq!(ended, Ended::Finished);
    let straight_losses: Vec<f64> = rows.iter().map(|r| r.loss).collect();

    // Killed during epoch 2 (after 4 steps): nothing is saved past the end of epoch 1.
    let killed_dir = temp_dir("killed");
    let mut killed = Trainer::new(cfg.clone(), UNet::new(cfg.net, 3).unwrap(), backend()).unwrap();
    let (ended, _) = run(&mut killed, &samples, &options(&killed_dir, Some(4)), 0.0).unwrap();
    assert_eq!(ended, Ended::Aborted);

    let (mut resumed, best) =
        run_dir::resume(&killed_dir.join("last.safetensors"), backend()).unwrap();
    assert_eq!(resumed.epoch, 1);
    assert_eq!(resumed.step, 3);
    let (ended, rows) = run(&mut resumed, &samples, &options(&killed_dir, None), best).unwrap();
    assert_eq!(ended, Ended::Finished);
    let resumed_losses: Vec<f64> = rows.iter().map(|r| r.loss).collect();
    assert_eq!(resumed_losses, straight_losses[1..].to_vec());
    assert!(
        straight_losses[2] < straight_losses[0],
        "the loss should fall: {straight_losses:?}"
    );

    let metrics = std::fs::read_to_string(killed_dir.join("metrics.csv")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        4,
        "header and three epochs:\n{metrics}"
    );
}

#[test]
fn an_inf_gradient_skips_the_step_and_halves_the_loss_scale() {
    let mut sample = ball_sample();
    sample
        .image
        .data
        .iter_mut()
        .for_each(|v| *v = f32::INFINITY);
    let cfg = config(Precision::Mixed);
    let net = UNet::new(cfg.net, 3).unwrap();
    let mut trainer = Trainer::new(cfg, net.clone(), backend()).unwrap();
    assert_eq!(trainer.scaler.scale, 65536.0);
    let report = trainer.train_step(&[sample]).unwrap();
    assert!(!report.applied);
    assert_eq!(trainer.scaler.scale, 32768.0);

    let mut before = net;
    for ((name, a), (_, b)) in before
        .parameters_mut()
        .into_iter()
        .zip(trainer.net.parameters_mut())
    {
        assert_eq!(a.as_f32(), b.as_f32(), "{name} changed on a skipped step");
    }
    match &trainer.optimizer {
        enamel::train::Optimizer::Adam(adam) => {
            for state in &adam.states {
                assert_eq!(state.step, 0);
                assert!(state
                    .exp_avg
                    .iter()
                    .chain(&state.exp_avg_sq)
                    .all(|&v| v == 0.0));
            }
        }
        _ => unreachable!("the config asks for Adam"),
    }

    // A clean step afterwards is applied and keeps the scale.
    let report = trainer.train_step(&[ball_sample()]).unwrap();
    assert!(report.applied && report.loss.is_finite());
    assert_eq!(trainer.scaler.scale, 32768.0);
}

#[test]
fn a_pytorch_state_dict_initialises_the_network_and_gives_the_fixture_logits() {
    let Some(manifest) = manifest_or_skip("a_pytorch_state_dict_initialises_the_network") else {
        return;
    };
    let meta = manifest
        .cases
        .iter()
        .find(|c| c.op == "unet3d_train_step")
        .expect("a U-Net case");
    let case = manifest.open(meta).unwrap();

    // What `safetensors.torch.save_file(model.state_dict())` writes: plain names, f64 here.
    let dir = temp_dir("state-dict");
    let path = dir.join("state_dict.safetensors");
    let entries: Vec<(String, Vec<usize>, Vec<u8>)> = case
        .tensors
        .iter()
        .filter_map(|(name, (shape, values))| {
            let short = name.strip_prefix("param.")?;
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            Some((short.to_string(), shape.clone(), bytes))
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = entries
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F64, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();

    let p = &meta.params;
    let get = |k: &str| p[k].as_u64().unwrap() as usize;
    let cfg = UNetConfig {
        in_channels: get("in_channels"),
        out_channels: get("out_channels"),
        n_blocks: get("n_blocks"),
        start_filters: get("start_filters"),
    };
    let mut net = UNet::new(cfg, 0).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    checkpoint::load_state(&mut net, &tensors, "", &path, true).unwrap();

    let mut tape = Tape::no_grad(backend());
    let x = Tensor::from_f64(case.shape("x"), case.f64("x").to_vec())
        .unwrap()
        .into_dtype(DType::F32);
    let x = tape.leaf(x, false);
    let out = net.forward(&mut tape, x, true, DType::F32).unwrap();
    case.check_f32("logits", &tape.value(out.logits).to_f32_vec())
        .unwrap();
}

#[test]
fn real_ct_short_training_lowers_the_loss_and_reloads_to_the_same_logits() {
    let Some(data) = std::env::var_os("ENAMEL_DATA").map(PathBuf::from) else {
        report_skip(
            "real_ct_short_training",
            "ENAMEL_DATA is not set (e.g. ../shared/data)",
        );
        return;
    };
    let pair = Pair {
        image: data.join("ct-jaw-promed0051.nrrd"),
        labels: data.join("ct-jaw-promed0051-teeth.nrrd"),
    };
    let cfg = TrainConfig {
        train: vec![pair],
        net: UNetConfig {
            in_channels: 1,
            out_channels: 1,
            n_blocks: 3,
            start_filters: 8,
        },
        patch: [16, 32, 32],
        batch: 1,
        epochs: 4,
        steps_per_epoch: 4,
        foreground_fraction: 1.0,
        ..config(Precision::F32)
    };
    let samples = enamel::train::data::load_training_set(&cfg).unwrap();
    let out = temp_dir("real-ct");
    let mut trainer = Trainer::new(cfg.clone(), UNet::new(cfg.net, 1).unwrap(), backend()).unwrap();
    let (_, rows) = run(&mut trainer, &samples, &options(&out, None), 0.0).unwrap();
    let losses: Vec<f64> = rows.iter().map(|r| r.loss).collect();
    assert!(
        losses[3] < losses[0],
        "the loss should fall over 16 steps: {losses:?}"
    );

    let (mut reloaded, _) = checkpoint::load(&out.join("last.safetensors"), None).unwrap();
    let window = Tensor::from_f32(
        &[1, 1, 16, 32, 32],
        samples[0].image.data[..16 * 32 * 32].to_vec(),
    )
    .unwrap();
    let logits = |net: &mut UNet| {
        let mut tape = Tape::no_grad(backend());
        let x = tape.leaf(window.clone(), false);
        let out = net.forward(&mut tape, x, false, DType::F32).unwrap();
        tape.value(out.logits).to_f32_vec()
    };
    assert_eq!(logits(&mut trainer.net), logits(&mut reloaded));
}

#[test]
fn halves_split_at_the_labels_midline_by_world_side() {
    use enamel::io::{Volume, Voxels};
    use enamel::train::data::half_of;
    use enamel::train::Half;

    // Labels at i = 2..4 and 10..12 of 14: centroid i = 7 (world x = 7·0.5 + origin).
    let sizes = [14, 3, 2];
    let n: usize = sizes.iter().product();
    let classes: Vec<f32> = (0..n)
        .map(|v| {
            if matches!(v % 14, 2..=4 | 10..=12) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let image: Vec<f32> = (0..n).map(|v| (v % 14) as f32).collect();
    let sample = Sample {
        image: Array3 { sizes, data: image },
        classes: Array3 {
            sizes,
            data: classes,
        },
    };
    let mut volume = Volume::new(sizes, Voxels::U8(vec![0; n]), [0.5; 3]);

    // Identity directions: +i is +x, the patient's left.
    let left = half_of(&sample, &volume, Half::Left).unwrap();
    let right = half_of(&sample, &volume, Half::Right).unwrap();
    assert_eq!(left.image.sizes, [7, 3, 2]);
    assert_eq!(right.image.sizes, [7, 3, 2]);
    assert_eq!(left.image.data[0], 7.0);
    assert_eq!(right.image.data[0], 0.0);

    // Flipped i (−x): the left is now the low i.
    volume.direction[0][0] = -1.0;
    assert_eq!(
        half_of(&sample, &volume, Half::Left).unwrap().image.data[0],
        0.0
    );

    // An oblique i axis cannot be split by index.
    volume.direction = [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
    assert!(half_of(&sample, &volume, Half::Left).is_err());
}
