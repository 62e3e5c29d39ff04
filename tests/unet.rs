//! The reference U-Net: parameter counts, shape errors, checkpoints, and one full training
//! step of nets A and B against the PyTorch float64 fixtures.

use std::sync::Arc;

use enamel::autograd::Tape;
use enamel::backend::Cpu;
use enamel::fixtures::{manifest_or_skip, Case, Tolerance, F32_UNET_GRADIENT};
use enamel::nn::checkpoint;
use enamel::nn::{UNet, UNetConfig};
use enamel::ops::dice::{dice_binary, dice_categorical};
use enamel::{DType, Tensor};

fn config(
    in_channels: usize,
    out_channels: usize,
    n_blocks: usize,
    start_filters: usize,
) -> UNetConfig {
    UNetConfig {
        in_channels,
        out_channels,
        n_blocks,
        start_filters,
    }
}

#[test]
fn parameter_counts_match_pytorch() {
    assert_eq!(
        UNet::new(config(1, 1, 3, 18), 0).unwrap().parameter_count(),
        430_075
    );
    assert_eq!(
        UNet::new(config(1, 9, 3, 9), 0).unwrap().parameter_count(),
        108_036
    );
    assert_eq!(
        UNet::new(config(1, 1, 4, 64), 0).unwrap().parameter_count(),
        22_400_321
    );
}

#[test]
fn parameter_counts_match_the_manifest() {
    let Some(manifest) = manifest_or_skip("parameter_counts_match_the_manifest") else {
        return;
    };
    for (key, &count) in &manifest.parameter_counts {
        // Keys look like "in1_out9_blocks3_start9".
        let numbers: Vec<usize> = key
            .split('_')
            .map(|part| {
                part.trim_start_matches(|c: char| c.is_ascii_alphabetic())
                    .parse()
                    .unwrap()
            })
            .collect();
        let net = UNet::new(config(numbers[0], numbers[1], numbers[2], numbers[3]), 0).unwrap();
        assert_eq!(net.parameter_count(), count, "{key}");
    }
}

#[test]
fn indivisible_size_names_the_size_and_the_nearest_valid_ones() {
    let mut net = UNet::new(config(1, 1, 4, 2), 0).unwrap();
    let mut tape = Tape::no_grad(Arc::new(Cpu::new()));
    let x = tape.leaf(
        Tensor::zeros(&[1, 1, 9, 16, 16], DType::F32).unwrap(),
        false,
    );
    let err = net
        .forward(&mut tape, x, false, DType::F32)
        .err()
        .expect("9 is not divisible by 8");
    let text = err.to_string();
    assert!(text.contains("input size 9 along D"), "{text}");
    assert!(text.contains("8 or 16"), "{text}");
}

#[test]
fn checkpoint_round_trip_keeps_every_value() {
    let dir = std::env::temp_dir().join(format!("enamel-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("net.safetensors");
    let mut net = UNet::new(UNetConfig::CATEGORIES, 42).unwrap();
    net.down_blocks[0].norm1.running.running_mean[3] = 0.25;
    net.down_blocks[0].norm1.running.num_batches_tracked = 7;
    checkpoint::save(&net, &path, &[]).unwrap();
    let (mut back, _) = checkpoint::load(&path, None).unwrap();
    let original: Vec<(String, Vec<f64>)> = net
        .state_mut()
        .into_iter()
        .map(|(n, s)| (n, s.values()))
        .collect();
    let reloaded: Vec<(String, Vec<f64>)> = back
        .state_mut()
        .into_iter()
        .map(|(n, s)| (n, s.values()))
        .collect();
    assert_eq!(original, reloaded);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tensor(case: &Case, name: &str, dtype: DType) -> Tensor {
    Tensor::from_f64(case.shape(name), case.f64(name).to_vec())
        .unwrap()
        .into_dtype(dtype)
}

/// One training-mode forward + loss + backward, then eval-mode logits, compared tensor by
/// tensor with the float64 reference. With `DType::F64` (the CPU reference mode) every tensor
/// must meet the case's f64 tolerance. With `DType::F32` the forward tensors must meet the f32
/// tolerance; the parameter gradients get `F32_UNET_GRADIENT` (see there why).
fn check_unet_case(case: &Case, dtype: DType) -> Vec<String> {
    let p = &case.meta.params;
    let get = |k: &str| p[k].as_u64().unwrap() as usize;
    let cfg = config(
        get("in_channels"),
        get("out_channels"),
        get("n_blocks"),
        get("start_filters"),
    );
    let mut net = UNet::new(cfg, 0).unwrap();
    net.cast_parameters(dtype);
    let bytes = std::fs::read(
        enamel::fixtures::fixture_dir()
            .unwrap()
            .join(&case.meta.file),
    )
    .unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    checkpoint::load_state(
        &mut net,
        &st,
        "param.",
        std::path::Path::new(&case.meta.file),
        false,
    )
    .unwrap();
    if let Some(order) = p.get("state_dict_order").and_then(|v| v.as_array()) {
        let ours = net.state_names();
        let theirs: Vec<String> = order
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(ours, theirs, "state_dict order");
    }

    let backend = Arc::new(Cpu::new());
    let mut tape = Tape::new(backend.clone());
    tape.keep_all();
    let x = tape.leaf(tensor(case, "x", dtype), false);
    let fwd = net.forward(&mut tape, x, true, dtype).unwrap();
    let loss = if p["loss"] == "binary" {
        dice_binary(&mut tape, fwd.logits, &tensor(case, "target", dtype)).unwrap()
    } else {
        let (shape, labels) = case.get("labels").unwrap();
        let labels = Tensor::from_u8(shape, labels.iter().map(|&v| v as u8).collect()).unwrap();
        dice_categorical(&mut tape, fwd.logits, &labels).unwrap()
    };

    let strict = if dtype == DType::F64 {
        case.meta.tolerance.f64
    } else {
        case.meta.tolerance.f32
    };
    let gradient_tol = if dtype == DType::F64 {
        strict
    } else {
        F32_UNET_GRADIENT
    };
    let mut failures = Vec::new();
    let mut check = |name: &str, got: &Tensor, tol: Tolerance| {
        if let Err(e) = case.check_with(name, &got.as_f64(), tol) {
            failures.push(format!("[{}] {e}", dtype.name()));
        }
    };
    check("logits", tape.value(fwd.logits), strict);
    check("loss", tape.value(loss), strict);
    for (name, var) in &fwd.activations {
        if case.tensors.contains_key(name) {
            check(name, tape.value(*var), strict);
        }
    }

    tape.retain_grad(fwd.logits);
    let seed = Tensor::from_f64(&[1], vec![1.0])
        .unwrap()
        .into_dtype(tape.value(loss).dtype());
    let mut grads = tape.backward(loss, seed).unwrap();
    check(
        "dlogits",
        &grads.take(fwd.logits).expect("retained"),
        strict,
    );
    for (name, var) in &fwd.params {
        let g = grads
            .take(*var)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        check(&format!("grad.{name}"), &g, gradient_tol);
    }
    for (name, slot) in net.state_mut() {
        let key = format!("after.{name}");
        if case.tensors.contains_key(&key) && !slot.is_parameter() {
            let got = Tensor::from_f64(&[slot.values().len()], slot.values()).unwrap();
            check(&key, &got, strict);
        }
    }

    let mut eval_tape = Tape::no_grad(backend);
    let x = eval_tape.leaf(tensor(case, "x", dtype), false);
    let eval = net.forward(&mut eval_tape, x, false, dtype).unwrap();
    check("logits_eval", eval_tape.value(eval.logits), strict);
    failures
}

#[test]
fn unet_training_step_matches_pytorch() {
    let Some(manifest) = manifest_or_skip("unet_training_step_matches_pytorch") else {
        return;
    };
    let mut failures = Vec::new();
    let mut ran = 0;
    for meta in manifest.cases(&["unet3d_train_step"]) {
        let case = manifest.open(meta).unwrap();
        failures.extend(check_unet_case(&case, DType::F64));
        failures.extend(check_unet_case(&case, DType::F32));
        ran += 1;
    }
    assert!(ran > 0, "the manifest lists no unet3d_train_step case");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
