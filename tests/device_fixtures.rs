//! The device backend against the PyTorch fixtures (`ENAMEL_FIXTURES`) with the f32 tolerance:
//! batch norm, max-pool, ReLU, concat, both Dice losses, the optimizers and dynamic loss scaling
//! on `emu`, and one training step of U-Nets A and B on `emu`.

use std::sync::Arc;

use enamel::autograd::Tape;
use enamel::backend::device::Device;
use enamel::backend::Backend;
use enamel::fixtures::{manifest_or_skip, Case};
use enamel::nn::{checkpoint, UNet, UNetConfig};
use enamel::ops::batch_norm::RunningStats;
use enamel::ops::dice::{dice_binary, dice_categorical};
use enamel::optim::{Adam, AdamConfig, GradScaler, GradScalerConfig, RmsProp, RmsPropConfig};
use enamel::{DType, Tensor};

fn input(case: &Case, name: &str) -> Tensor {
    Tensor::from_f32(case.shape(name), case.f32(name)).unwrap()
}

fn param(case: &Case, key: &str) -> f64 {
    case.param_f64(key)
        .unwrap_or_else(|| panic!("case {} has no parameter {key}", case.name()))
}

/// Runs `run` on every fixture case of `ops` and fails with all mismatches at once.
fn run_cases(test: &str, ops: &[&str], run: impl Fn(&Case, &mut Vec<String>)) {
    let Some(manifest) = manifest_or_skip(test) else {
        return;
    };
    let mut failures = Vec::new();
    let mut ran = 0;
    for meta in manifest.cases(ops) {
        let case = manifest.open(meta).unwrap();
        run(&case, &mut failures);
        ran += 1;
    }
    assert!(ran > 0, "the manifest lists no case of {ops:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn check(case: &Case, failures: &mut Vec<String>, name: &str, got: &[f32]) {
    if let Err(e) = case.check_f32(name, got) {
        failures.push(format!("{}: {e}", case.name()));
    }
}

#[test]
fn batch_norm_matches_pytorch_on_emu() {
    let dev = Device::emu();
    run_cases(
        "batch_norm_matches_pytorch_on_emu",
        &["batch_norm3d"],
        |case, out| {
            let (x, gy) = (input(case, "x"), input(case, "gy"));
            let (gamma, beta) = (input(case, "gamma"), input(case, "beta"));
            let eps = param(case, "eps") as f32;
            let training = case
                .meta
                .params
                .get("training")
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            let (y, (dx, dgamma, dbeta)) = if training {
                let mut running = RunningStats {
                    running_mean: case.f64("running_mean_before").to_vec(),
                    running_var: case.f64("running_var_before").to_vec(),
                    num_batches_tracked: 0,
                };
                let (y, stats) = dev.batch_norm_train(&x, &gamma, &beta, eps).unwrap();
                running.update(&stats, param(case, "momentum"));
                let grads = dev
                    .batch_norm_backward_train(&x, &gy, &gamma, &stats, eps)
                    .unwrap();
                let y_eval = dev
                    .batch_norm_eval(&x, &gamma, &beta, &running, eps)
                    .unwrap();
                check(
                    case,
                    out,
                    "running_mean_after",
                    &to_f32(&running.running_mean),
                );
                check(
                    case,
                    out,
                    "running_var_after",
                    &to_f32(&running.running_var),
                );
                check(case, out, "y_eval_after", &y_eval.to_f32_vec());
                (y, grads)
            } else {
                let running = RunningStats {
                    running_mean: case.f64("running_mean").to_vec(),
                    running_var: case.f64("running_var").to_vec(),
                    num_batches_tracked: 0,
                };
                let y = dev
                    .batch_norm_eval(&x, &gamma, &beta, &running, eps)
                    .unwrap();
                (
                    y,
                    dev.batch_norm_backward_eval(&x, &gy, &gamma, &running, eps)
                        .unwrap(),
                )
            };
            check(case, out, "y", &y.to_f32_vec());
            check(case, out, "dx", &dx.to_f32_vec());
            check(case, out, "dgamma", &dgamma.to_f32_vec());
            check(case, out, "dbeta", &dbeta.to_f32_vec());
        },
    );
}

#[test]
fn max_pool_relu_and_concat_match_pytorch_on_emu() {
    let dev = Device::emu();
    run_cases(
        "max_pool_matches_pytorch_on_emu",
        &["max_pool3d"],
        |case, out| {
            let x = input(case, "x");
            let (y, indices) = dev.max_pool3d(&x).unwrap();
            let dx = dev
                .max_pool3d_backward(&input(case, "gy"), &indices, x.shape())
                .unwrap();
            check(case, out, "y", &y.to_f32_vec());
            check(case, out, "indices", &indices.to_f32_vec());
            check(case, out, "dx", &dx.to_f32_vec());
        },
    );
    run_cases("relu_matches_pytorch_on_emu", &["relu"], |case, out| {
        let x = input(case, "x");
        check(case, out, "y", &dev.relu(&x).unwrap().to_f32_vec());
        let dx = dev.relu_backward(&x, &input(case, "gy")).unwrap();
        check(case, out, "dx", &dx.to_f32_vec());
    });
    run_cases("concat_matches_pytorch_on_emu", &["concat"], |case, out| {
        let a = input(case, "a");
        let y = dev.concat(&a, &input(case, "b")).unwrap();
        let (da, db) = dev.split(&input(case, "gy"), a.shape()[1]).unwrap();
        check(case, out, "y", &y.to_f32_vec());
        check(case, out, "da", &da.to_f32_vec());
        check(case, out, "db", &db.to_f32_vec());
    });
}

#[test]
fn dice_losses_match_pytorch_on_emu() {
    let dev = Device::emu();
    let ops = ["sigmoid_binary_dice_loss", "softmax_categorical_dice_loss"];
    run_cases("dice_losses_match_pytorch_on_emu", &ops, |case, out| {
        let logits = input(case, "logits");
        let (loss, dlogits) = if case.tensors.contains_key("labels") {
            let (shape, values) = case.get("labels").unwrap();
            let labels = Tensor::from_u8(shape, values.iter().map(|&v| v as u8).collect()).unwrap();
            check(
                case,
                out,
                "probs",
                &dev.softmax(&logits).unwrap().to_f32_vec(),
            );
            dev.dice_categorical(&logits, &labels).unwrap()
        } else {
            check(
                case,
                out,
                "probs",
                &dev.sigmoid(&logits).unwrap().to_f32_vec(),
            );
            dev.dice_binary(&logits, &input(case, "target")).unwrap()
        };
        check(case, out, "loss", &[loss as f32]);
        check(case, out, "dlogits", &dlogits.to_f32_vec());
    });
}

#[test]
fn optimizers_match_pytorch_on_emu() {
    let dev = Device::emu();
    run_cases(
        "optimizers_match_pytorch_on_emu",
        &["adam", "rmsprop"],
        |case, out| {
            let n_params = param(case, "n_params") as usize;
            let n_steps = param(case, "n_steps") as usize;
            let mut params: Vec<Vec<f32>> =
                (0..n_params).map(|i| case.f32(&format!("p{i}"))).collect();
            let lens: Vec<usize> = params.iter().map(Vec::len).collect();
            let is_adam = case.meta.params["optimizer"] == "adam";
            let (lr, eps, wd) = (
                param(case, "lr"),
                param(case, "eps"),
                param(case, "weight_decay"),
            );
            let mut adam = is_adam.then(|| {
                let betas = case.meta.params["betas"].as_array().unwrap();
                let betas = (betas[0].as_f64().unwrap(), betas[1].as_f64().unwrap());
                let config = AdamConfig {
                    lr,
                    betas,
                    eps,
                    weight_decay: wd,
                };
                Adam::<f32>::new(config, &lens).unwrap()
            });
            let mut rms = (!is_adam).then(|| {
                let config = RmsPropConfig {
                    lr,
                    alpha: param(case, "alpha"),
                    eps,
                    weight_decay: wd,
                };
                RmsProp::<f32>::new(config, &lens).unwrap()
            });
            for s in 1..=n_steps {
                let grads: Vec<Vec<f32>> = (0..n_params)
                    .map(|i| case.f32(&format!("g{i}_step{s}")))
                    .collect();
                let grad_refs: Vec<&[f32]> = grads.iter().map(Vec::as_slice).collect();
                let mut refs: Vec<&mut [f32]> = params.iter_mut().map(Vec::as_mut_slice).collect();
                let copies = match (adam.as_mut(), rms.as_mut()) {
                    (Some(adam), _) => dev.adam_step(adam, &mut refs, &grad_refs).unwrap(),
                    (_, Some(rms)) => dev.rmsprop_step(rms, &mut refs, &grad_refs).unwrap(),
                    _ => unreachable!("one optimizer is set"),
                };
                for (i, p) in params.iter().enumerate() {
                    check(case, out, &format!("p{i}_after_step{s}"), p);
                    let rounded: Vec<f32> =
                        p.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
                    let copy: Vec<f32> = copies[i].iter().map(|v| v.to_f32()).collect();
                    assert_eq!(copy, rounded, "the f16 copy of parameter {i}");
                }
                if let Some(adam) = &adam {
                    for (i, st) in adam.states.iter().enumerate() {
                        check(case, out, &format!("exp_avg{i}_after_step{s}"), &st.exp_avg);
                        check(
                            case,
                            out,
                            &format!("exp_avg_sq{i}_after_step{s}"),
                            &st.exp_avg_sq,
                        );
                    }
                }
                if let Some(rms) = &rms {
                    for (i, st) in rms.states.iter().enumerate() {
                        check(
                            case,
                            out,
                            &format!("square_avg{i}_after_step{s}"),
                            &st.square_avg,
                        );
                    }
                }
            }
        },
    );
}

#[test]
fn loss_scaling_matches_pytorch_on_emu() {
    let dev = Device::emu();
    run_cases(
        "loss_scaling_matches_pytorch_on_emu",
        &["dynamic_loss_scaling"],
        |case, out| {
            let config = GradScalerConfig {
                init_scale: param(case, "init_scale") as f32,
                growth_factor: param(case, "growth_factor") as f32,
                backoff_factor: param(case, "backoff_factor") as f32,
                growth_interval: param(case, "growth_interval") as u32,
            };
            let lr = param(case, "lr") as f32;
            let mut scaler = GradScaler::new(config).unwrap();
            let mut p = case.f32("p0");
            let n = p.len();
            let scaled = case.f32("scaled_grad");
            let mut record: [Vec<f32>; 5] = Default::default();
            for s in 0..param(case, "n_steps") as usize {
                record[0].push(scaler.scale);
                let mut g = scaled[s * n..(s + 1) * n].to_vec();
                let found_inf = dev.unscale_and_check(&scaler, &mut [&mut g]).unwrap();
                if !found_inf {
                    for (pv, gv) in p.iter_mut().zip(&g) {
                        *pv -= lr * *gv;
                    }
                }
                scaler.update(found_inf);
                record[1].push(scaler.scale);
                record[2].push(scaler.growth_tracker as f32);
                record[3].push(f32::from(u8::from(found_inf)));
                record[4].extend_from_slice(&p);
            }
            let names = [
                "scale_before",
                "scale_after",
                "growth_tracker_after",
                "skipped",
                "params_after",
            ];
            for (name, got) in names.iter().zip(&record) {
                check(case, out, name, got);
            }
        },
    );
}

/// One training-mode forward + loss + backward and an eval forward of a fixture U-Net on
/// `backend`, compared with the float64 reference under the f32 tolerance.
fn check_unet_case(case: &Case, backend: Arc<dyn Backend>, out: &mut Vec<String>) {
    let p = &case.meta.params;
    let get = |k: &str| p[k].as_u64().unwrap() as usize;
    let cfg = UNetConfig {
        in_channels: get("in_channels"),
        out_channels: get("out_channels"),
        n_blocks: get("n_blocks"),
        start_filters: get("start_filters"),
    };
    let mut net = UNet::new(cfg, 0).unwrap();
    let dir = enamel::fixtures::fixture_dir().unwrap();
    let bytes = std::fs::read(dir.join(&case.meta.file)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let file = std::path::Path::new(&case.meta.file);
    checkpoint::load_state(&mut net, &st, "param.", file, false).unwrap();

    let mut tape = Tape::new(backend.clone());
    tape.keep_all();
    let x = tape.leaf(input(case, "x"), false);
    let fwd = net.forward(&mut tape, x, true, DType::F32).unwrap();
    let loss = if p["loss"] == "binary" {
        dice_binary(&mut tape, fwd.logits, &input(case, "target")).unwrap()
    } else {
        let (shape, labels) = case.get("labels").unwrap();
        let labels = Tensor::from_u8(shape, labels.iter().map(|&v| v as u8).collect()).unwrap();
        dice_categorical(&mut tape, fwd.logits, &labels).unwrap()
    };
    check(case, out, "logits", &tape.value(fwd.logits).to_f32_vec());
    check(case, out, "loss", &tape.value(loss).to_f32_vec());
    for (name, var) in &fwd.activations {
        if case.tensors.contains_key(name) {
            check(case, out, name, &tape.value(*var).to_f32_vec());
        }
    }

    tape.retain_grad(fwd.logits);
    let mut grads = tape.backward(loss, Tensor::scalar(1.0)).unwrap();
    check(
        case,
        out,
        "dlogits",
        &grads.take(fwd.logits).unwrap().to_f32_vec(),
    );
    for (name, var) in &fwd.params {
        let g = grads
            .take(*var)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let got: Vec<f64> = g.as_f64().into_owned();
        let key = format!("grad.{name}");
        if let Err(e) = case.check_with(&key, &got, enamel::fixtures::F32_UNET_GRADIENT) {
            out.push(format!("{}: {e}", case.name()));
        }
    }
    for (name, slot) in net.state_mut() {
        let key = format!("after.{name}");
        if case.tensors.contains_key(&key) && !slot.is_parameter() {
            let got: Vec<f32> = slot.values().iter().map(|&v| v as f32).collect();
            check(case, out, &key, &got);
        }
    }

    let mut eval_tape = Tape::no_grad(backend);
    let x = eval_tape.leaf(input(case, "x"), false);
    let eval = net.forward(&mut eval_tape, x, false, DType::F32).unwrap();
    check(
        case,
        out,
        "logits_eval",
        &eval_tape.value(eval.logits).to_f32_vec(),
    );
}

#[test]
fn unet_training_steps_match_pytorch_on_emu() {
    let backend: Arc<dyn Backend> = Arc::new(Device::emu());
    run_cases(
        "unet_training_steps_match_pytorch_on_emu",
        &["unet3d_train_step"],
        |case, out| {
            check_unet_case(case, backend.clone(), out);
        },
    );
}

fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}
