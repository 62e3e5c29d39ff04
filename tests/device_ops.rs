//! Every op of the device backend against the `cpu` backend: one test body per op, run on every
//! backend present (`cpu` and `emu`; `cuda` joins when it exists), for f32 and f16 storage, on
//! odd shapes (odd sizes, depth 1, one channel, nine channels). f16 runs give both backends the
//! same f16-rounded inputs and allow for f16 rounding of the outputs. Also the device allocator.

use enamel::backend::device::Device;
use enamel::backend::{Backend, Cpu};
use enamel::ops::batch_norm::RunningStats;
use enamel::{DType, Tensor};

/// The backends under test. The reference is always `Cpu`.
fn backends() -> Vec<Box<dyn Backend>> {
    vec![Box::new(Cpu::new()), Box::new(Device::emu())]
}

/// Shapes every op runs on: odd sizes, depth 1 with one channel, nine channels, a batch of 2.
const SHAPES: [[usize; 5]; 4] = [
    [1, 3, 5, 6, 7],
    [1, 1, 1, 4, 6],
    [1, 9, 3, 4, 5],
    [2, 2, 2, 3, 3],
];

/// Deterministic values in `[-range, range)`, quantised to 1/64 when `coarse` (for ties).
fn values(count: usize, range: f32, seed: u64, coarse: bool) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (state >> 40) as f32 / (1u64 << 24) as f32;
            let v = (2.0 * u - 1.0) * range;
            if coarse {
                (v * 4.0).round() / 4.0
            } else {
                v
            }
        })
        .collect()
}

fn tensor(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f32_as(shape, values(n, 2.0, seed, false), dtype).unwrap()
}

/// Relative tolerance for a storage type: f16 results may differ by a rounding step.
fn tolerance(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F16 => (4e-3, 2e-3),
        _ => (2e-5, 2e-6),
    }
}

/// Asserts `got` matches `want` in shape, storage and values: `|g − w| ≤ atol + rtol·max|w|`.
fn assert_close(what: &str, backend: &str, got: &Tensor, want: &Tensor, dtype: DType) {
    assert_eq!(got.shape(), want.shape(), "{what} on {backend}: shape");
    assert_eq!(got.dtype(), want.dtype(), "{what} on {backend}: storage");
    let (g, w) = (got.as_f64(), want.as_f64());
    let scale = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let (rtol, atol) = tolerance(dtype);
    for (i, (a, b)) in g.iter().zip(w.iter()).enumerate() {
        let ok = (a - b).abs() <= atol + rtol * scale || (a.is_nan() && b.is_nan());
        assert!(
            ok,
            "{what} on {backend} ({dtype:?}): element {i} is {a}, cpu says {b}"
        );
    }
}

fn assert_scalar(what: &str, backend: &str, got: f64, want: f64, dtype: DType) {
    let (rtol, atol) = tolerance(dtype);
    let ok = (got - want).abs() <= atol + rtol * want.abs();
    assert!(
        ok,
        "{what} on {backend} ({dtype:?}): {got}, cpu says {want}"
    );
}

/// Runs `body(backend, dtype, shape)` for every backend, storage type and shape.
fn on_every_backend(body: impl Fn(&dyn Backend, DType, [usize; 5])) {
    for backend in backends() {
        for dtype in [DType::F32, DType::F16] {
            for shape in SHAPES {
                body(backend.as_ref(), dtype, shape);
            }
        }
    }
}

#[test]
fn relu_and_its_gradient_match_cpu() {
    on_every_backend(|b, dtype, shape| {
        let n = shape.iter().product();
        // Coarse values put exact zeros in, where the gradient must be 0.
        let x = Tensor::from_f32_as(&shape, values(n, 2.0, 1, true), dtype).unwrap();
        let gy = tensor(&shape, 2, dtype);
        assert_close(
            "relu",
            b.name(),
            &b.relu(&x).unwrap(),
            &Cpu.relu(&x).unwrap(),
            dtype,
        );
        let (got, want) = (
            b.relu_backward(&x, &gy).unwrap(),
            Cpu.relu_backward(&x, &gy).unwrap(),
        );
        assert_close("relu_backward", b.name(), &got, &want, dtype);
    });
}

#[test]
fn sigmoid_and_softmax_match_cpu() {
    on_every_backend(|b, dtype, shape| {
        let x = tensor(&shape, 3, dtype);
        let gy = tensor(&shape, 4, dtype);
        let y = b.sigmoid(&x).unwrap();
        assert_close("sigmoid", b.name(), &y, &Cpu.sigmoid(&x).unwrap(), dtype);
        let (got, want) = (
            b.sigmoid_backward(&y, &gy).unwrap(),
            Cpu.sigmoid_backward(&y, &gy).unwrap(),
        );
        assert_close("sigmoid_backward", b.name(), &got, &want, dtype);
        let y = b.softmax(&x).unwrap();
        assert_close("softmax", b.name(), &y, &Cpu.softmax(&x).unwrap(), dtype);
        let (got, want) = (
            b.softmax_backward(&y, &gy).unwrap(),
            Cpu.softmax_backward(&y, &gy).unwrap(),
        );
        assert_close("softmax_backward", b.name(), &got, &want, dtype);
    });
}

#[test]
fn max_pool_with_ties_matches_cpu() {
    on_every_backend(|b, dtype, shape| {
        let n = shape.iter().product();
        let x = Tensor::from_f32_as(&shape, values(n, 1.0, 5, true), dtype).unwrap();
        let (y, indices) = b.max_pool3d(&x).unwrap();
        let (y_cpu, indices_cpu) = Cpu.max_pool3d(&x).unwrap();
        assert_close("max_pool3d", b.name(), &y, &y_cpu, dtype);
        assert_eq!(
            indices.i32_slice(),
            indices_cpu.i32_slice(),
            "indices on {}",
            b.name()
        );
        let gy = tensor(y.shape(), 6, dtype);
        let got = b.max_pool3d_backward(&gy, &indices, &shape).unwrap();
        let want = Cpu.max_pool3d_backward(&gy, &indices, &shape).unwrap();
        assert_close("max_pool3d_backward", b.name(), &got, &want, dtype);
    });
}

#[test]
fn concat_and_split_match_cpu() {
    on_every_backend(|b, dtype, shape| {
        let a = tensor(&shape, 7, dtype);
        let other = [shape[0], 2, shape[2], shape[3], shape[4]];
        let c = tensor(&other, 8, dtype);
        let y = b.concat(&a, &c).unwrap();
        assert_close("concat", b.name(), &y, &Cpu.concat(&a, &c).unwrap(), dtype);
        let (da, db) = b.split(&y, shape[1]).unwrap();
        assert_close("split a", b.name(), &da, &a, dtype);
        assert_close("split b", b.name(), &db, &c, dtype);
    });
}

#[test]
fn batch_norm_train_and_eval_match_cpu() {
    on_every_backend(|b, dtype, shape| {
        let c = shape[1];
        // An offset mean checks the centring of the variance.
        let n: usize = shape.iter().product();
        let x_values: Vec<f32> = values(n, 2.0, 9, false).iter().map(|v| v + 3.0).collect();
        let x = Tensor::from_f32_as(&shape, x_values, dtype).unwrap();
        let gy = tensor(&shape, 10, dtype);
        let gamma = Tensor::from_f32(&[c], values(c, 1.0, 11, false)).unwrap();
        let beta = Tensor::from_f32(&[c], values(c, 1.0, 12, false)).unwrap();
        let eps = 1e-5;
        let name = b.name();

        let (y, stats) = b.batch_norm_train(&x, &gamma, &beta, eps).unwrap();
        let (y_cpu, stats_cpu) = Cpu.batch_norm_train(&x, &gamma, &beta, eps).unwrap();
        assert_close("batch_norm_train", name, &y, &y_cpu, dtype);
        assert_eq!(stats.count, stats_cpu.count);
        for k in 0..c {
            assert!(
                (stats.mean[k] - stats_cpu.mean[k]).abs() < 1e-6,
                "mean[{k}] on {name}"
            );
            let dv = (stats.var_biased[k] - stats_cpu.var_biased[k]).abs();
            assert!(
                dv < 1e-5 * stats_cpu.var_biased[k].max(1e-3),
                "var[{k}] on {name}"
            );
        }
        let got = b
            .batch_norm_backward_train(&x, &gy, &gamma, &stats_cpu, eps)
            .unwrap();
        let want = Cpu
            .batch_norm_backward_train(&x, &gy, &gamma, &stats_cpu, eps)
            .unwrap();
        assert_close("bn dx (train)", name, &got.0, &want.0, dtype);
        assert_close("bn dgamma (train)", name, &got.1, &want.1, dtype);
        assert_close("bn dbeta (train)", name, &got.2, &want.2, dtype);

        let mut running = RunningStats::<f64>::new(c);
        running.running_mean = values(c, 1.0, 13, false)
            .iter()
            .map(|&v| v as f64)
            .collect();
        running.running_var = values(c, 1.0, 14, false)
            .iter()
            .map(|&v| v as f64 + 1.5)
            .collect();
        let got = b.batch_norm_eval(&x, &gamma, &beta, &running, eps).unwrap();
        let want = Cpu
            .batch_norm_eval(&x, &gamma, &beta, &running, eps)
            .unwrap();
        assert_close("batch_norm_eval", name, &got, &want, dtype);
        let got = b
            .batch_norm_backward_eval(&x, &gy, &gamma, &running, eps)
            .unwrap();
        let want = Cpu
            .batch_norm_backward_eval(&x, &gy, &gamma, &running, eps)
            .unwrap();
        assert_close("bn dx (eval)", name, &got.0, &want.0, dtype);
        assert_close("bn dgamma (eval)", name, &got.1, &want.1, dtype);
        assert_close("bn dbeta (eval)", name, &got.2, &want.2, dtype);
    });
}

#[test]
fn dice_losses_match_cpu() {
    on_every_backend(|b, dtype, shape| {
        let [n, c, d, h, w] = shape;
        let logits = tensor(&shape, 15, dtype);
        let voxels = n * c * d * h * w;
        let target: Vec<f32> = values(voxels, 1.0, 16, false)
            .iter()
            .map(|&v| f32::from(v > 0.0))
            .collect();
        let target = Tensor::from_f32_as(&shape, target, dtype).unwrap();
        let (loss, grad) = b.dice_binary(&logits, &target).unwrap();
        let (loss_cpu, grad_cpu) = Cpu.dice_binary(&logits, &target).unwrap();
        assert_scalar("dice_binary loss", b.name(), loss, loss_cpu, dtype);
        assert_close("dice_binary grad", b.name(), &grad, &grad_cpu, dtype);

        // Labels from a subset of the classes, so that absent classes are exercised.
        let classes = if c > 2 { c - 1 } else { c };
        let labels: Vec<u8> = values(n * d * h * w, 1.0, 17, false)
            .iter()
            .map(|&v| (((v + 1.0) / 2.0 * classes as f32) as usize).min(classes - 1) as u8)
            .collect();
        let labels = Tensor::from_u8(&[n, d, h, w], labels).unwrap();
        let (loss, grad) = b.dice_categorical(&logits, &labels).unwrap();
        let (loss_cpu, grad_cpu) = Cpu.dice_categorical(&logits, &labels).unwrap();
        assert_scalar("dice_categorical loss", b.name(), loss, loss_cpu, dtype);
        assert_close("dice_categorical grad", b.name(), &grad, &grad_cpu, dtype);
    });
}

#[test]
fn add_scale_and_casts_match_cpu() {
    on_every_backend(|b, dtype, shape| {
        let (x, y) = (tensor(&shape, 18, dtype), tensor(&shape, 19, dtype));
        assert_close(
            "add",
            b.name(),
            &b.add(&x, &y).unwrap(),
            &Cpu.add(&x, &y).unwrap(),
            dtype,
        );
        let got = b.scale(&x, -0.37).unwrap();
        assert_close(
            "scale",
            b.name(),
            &got,
            &Cpu.scale(&x, -0.37).unwrap(),
            dtype,
        );
        // Mixed storage: the result takes the first operand's type.
        let mixed = y.to_dtype(DType::F32);
        assert_close(
            "add (mixed)",
            b.name(),
            &b.add(&x, &mixed).unwrap(),
            &Cpu.add(&x, &mixed).unwrap(),
            dtype,
        );
    });
}

#[test]
fn bad_shapes_are_errors_on_the_device_too() {
    let dev = Device::emu();
    let x = tensor(&[1, 3, 4, 4, 4], 20, DType::F32);
    let gamma = Tensor::from_f32(&[2], vec![1.0; 2]).unwrap();
    let err = dev
        .batch_norm_train(&x, &gamma, &gamma, 1e-5)
        .unwrap_err()
        .to_string();
    assert!(err.contains("gamma holds 2 values, expected 3"), "{err}");
    let one = tensor(&[1, 2, 1, 1, 1], 21, DType::F32);
    let err = dev
        .batch_norm_train(&one, &gamma, &gamma, 1e-5)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than 1 value per channel"), "{err}");
    let labels = Tensor::from_u8(&[1, 4, 4, 4], vec![3; 64]).unwrap();
    let err = dev.dice_categorical(&x, &labels).unwrap_err().to_string();
    assert!(err.contains("label 3 at voxel 0"), "{err}");
    let (_, indices) = dev.max_pool3d(&x).unwrap();
    let wrong = Tensor::from_i32(indices.shape(), vec![63; indices.numel()]).unwrap();
    let gy = tensor(indices.shape(), 22, DType::F32);
    let err = dev
        .max_pool3d_backward(&gy, &wrong, x.shape())
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside its 2×2×2 window"), "{err}");
    // Placed on the device by hand, they are still checked: only indices written by the
    // device's own max_pool3d skip the check.
    let placed = dev.place(wrong).unwrap();
    assert!(dev.holds(&placed));
    let err = dev
        .max_pool3d_backward(&gy, &placed, x.shape())
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside its 2×2×2 window"), "{err}");
}

#[test]
fn allocator_reports_peak_and_reuses_freed_buffers() {
    let dev = Device::emu();
    let x = tensor(&[1, 2, 4, 4, 4], 23, DType::F32);
    let before = dev.memory_stats();
    assert_eq!((before.in_use, before.peak, before.budget), (0, 0, None));
    let y = dev.relu(&x).unwrap();
    assert!(dev.holds(&y), "the result stays on the device");
    assert_eq!(y.as_f32().len(), 128);
    let held = dev.memory_stats();
    // relu holds its uploaded input and its output (128 f32 each) at once, then frees the
    // input into the cache; the output is in use for as long as `y` lives.
    assert_eq!(
        (held.in_use, held.peak, held.cached),
        (128 * 4, 2 * 128 * 4, 128 * 4)
    );
    drop(y);
    let after = dev.memory_stats();
    assert_eq!(after.in_use, 0);
    assert_eq!(after.cached, 2 * 128 * 4);
    dev.relu(&x).unwrap();
    assert_eq!(
        dev.memory_stats().cached,
        2 * 128 * 4,
        "the cache is reused, not grown"
    );
    dev.release_cached_memory();
    assert_eq!(dev.memory_stats().cached, 0);
}

#[test]
fn allocator_budget_error_names_budget_and_request() {
    let api = std::sync::Arc::new(enamel::backend::device::EmuDevice::default());
    let dev = Device::with_budget(api, Some(1000));
    let x = tensor(&[1, 1, 4, 4, 4], 24, DType::F32);
    // 256 bytes in and 256 out fit the budget.
    dev.relu(&x).unwrap();
    let big = tensor(&[1, 2, 4, 4, 4], 25, DType::F32);
    // 512 bytes in fit after the cache is emptied; 512 more for the output do not.
    let err = dev.relu(&big).unwrap_err().to_string();
    assert!(err.contains("budget of 1000 bytes"), "{err}");
    assert!(err.contains("512 bytes"), "{err}");
    assert!(err.contains("requested"), "{err}");
    assert_eq!(
        dev.memory_stats().peak,
        512,
        "the peak counts the 512-byte input"
    );
}

#[test]
fn casts_round_like_the_host() {
    let dev = Device::emu();
    // Values near f16 rounding boundaries, beyond its range, and subnormal in f16.
    let mut v = values(300, 3.0, 26, false);
    v.extend([65520.0, -70000.0, 1e-6, -3e-8, 0.0, 2049.0, 2051.0]);
    let x = Tensor::from_f32(&[v.len()], v).unwrap();
    let half = dev.cast(&x, DType::F16).unwrap();
    let want = x.to_dtype(DType::F16);
    assert_eq!(half.dtype(), DType::F16);
    assert_eq!(half.as_f32(), want.as_f32(), "f32 -> f16");
    let back = dev.cast(&half, DType::F32).unwrap();
    assert_eq!(back.as_f32(), want.as_f32(), "f16 -> f32 is exact");
}

#[test]
fn unscaling_f16_gradients_flags_overflow() {
    let dev = Device::emu();
    let scaler = enamel::optim::GradScaler::new(Default::default()).unwrap();
    // 65504 is f16's largest finite value; 1/65536 an f16 subnormal.
    let clean = Tensor::from_f32_as(&[5], vec![32768.0, -16384.0, 0.0, 65504.0, 1.0], DType::F16);
    let mut grads = vec![clean.unwrap()];
    assert!(!dev.unscale_tensors(&scaler, &mut grads).unwrap());
    let got = grads[0].as_f32();
    assert_eq!(got[..4], [0.5, -0.25, 0.0, 0.999_511_7]);
    assert_eq!(got[4], half::f16::from_f32(1.0 / 65536.0).to_f32());
    let inf = Tensor::from_f32_as(&[3], vec![1.0, f32::INFINITY, 2.0], DType::F16).unwrap();
    // The first gradient is now resident; unscaling it again must leave a clone untouched.
    let resident = grads.remove(0);
    assert!(dev.holds(&resident));
    let clone = resident.clone();
    let mut grads = vec![resident, inf];
    assert!(dev.unscale_tensors(&scaler, &mut grads).unwrap());
    assert_eq!(clone.as_f32()[..4], [0.5, -0.25, 0.0, 0.999_511_7]);
    assert_eq!(grads[0].as_f32()[..2], [0.5 / 65536.0, -0.25 / 65536.0]);
    let mut f32_grads = vec![1.0f32, f32::NAN];
    assert!(dev
        .unscale_and_check(&scaler, &mut [&mut f32_grads])
        .unwrap());
}
