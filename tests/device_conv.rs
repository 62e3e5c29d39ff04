//! conv3d and conv_transpose3d kernels on the emulator against the `cpu` backend (odd shapes,
//! f32 and f16 storage, forward and every gradient) and against the PyTorch fixtures.

use enamel::backend::device::conv;
use enamel::backend::device::Device;
use enamel::backend::{Backend, Cpu, TransposeGeometry};
use enamel::fixtures::{manifest_or_skip, Case};
use enamel::{DType, Tensor};

/// Deterministic values in [-1, 1).
fn values(count: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn tensor(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f32_as(shape, values(n, seed), dtype).unwrap()
}

/// Tolerance `rel·|ref| + abs·max|ref|` per element.
struct Tol {
    rel: f32,
    abs: f32,
}

/// f32 results: only the summation order differs.
const F32_TOL: Tol = Tol {
    rel: 1e-4,
    abs: 1e-5,
};
/// f16 outputs: the same f16 inputs, sums within f32 rounding, then one f16 rounding each, so
/// the two results may straddle a rounding boundary (1 ulp = 2^-10 relative).
const F16_TOL: Tol = Tol {
    rel: 2e-3,
    abs: 1e-3,
};

fn assert_close(what: &str, got: &Tensor, want: &Tensor, tol: &Tol) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    assert_eq!(got.dtype(), want.dtype(), "{what}: storage");
    let (g, w) = (got.as_f32(), want.as_f32());
    let max_ref = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(max_ref > 0.0, "{what}: the reference is all zeros");
    let mut failures = Vec::new();
    for (i, (&a, &b)) in g.iter().zip(w.iter()).enumerate() {
        let allowed = tol.rel * b.abs() + tol.abs * max_ref;
        let within = (a - b).abs() <= allowed;
        if !within && failures.len() < 5 {
            failures.push(format!(
                "[{i}] got {a:e} want {b:e} (allowed {allowed:.2e})"
            ));
        }
    }
    assert!(failures.is_empty(), "{what}: {}", failures.join(", "));
}

fn tolerance(dtype: DType) -> &'static Tol {
    if dtype == DType::F16 {
        &F16_TOL
    } else {
        &F32_TOL
    }
}

/// conv3d forward and all gradients on emu against cpu, for f32 and f16 storage.
fn check_conv3d(x_shape: [usize; 5], cout: usize, k: usize, pad: usize, bias: bool) {
    let (dev, cpu) = (Device::emu(), Cpu::new());
    let [n, cin, d, h, w] = x_shape;
    let [od, oh, ow] = [d, h, w].map(|s| s + 2 * pad + 1 - k);
    let w_shape = [cout, cin, k, k, k];
    for dtype in [DType::F32, DType::F16] {
        let case = format!("conv3d {x_shape:?} cout {cout} k {k} pad {pad} {dtype:?}");
        let x = tensor(&x_shape, 1, dtype);
        let weight = tensor(&w_shape, 2, dtype);
        let b = bias.then(|| tensor(&[cout], 3, DType::F32));
        let gy = tensor(&[n, cout, od, oh, ow], 4, dtype);
        let tol = tolerance(dtype);

        let y = conv::conv3d(&dev, &x, &weight, b.as_ref(), pad).unwrap();
        let want = cpu.conv3d(&x, &weight, b.as_ref(), pad).unwrap();
        assert_close(&format!("{case}: y"), &y, &want, tol);

        let dx = conv::conv3d_backward_input(&dev, &gy, &weight, pad, &x_shape).unwrap();
        let want = cpu
            .conv3d_backward_input(&gy, &weight, pad, &x_shape)
            .unwrap();
        assert_close(&format!("{case}: dx"), &dx, &want, tol);

        let (dw, db) = conv::conv3d_backward_params(&dev, &x, &gy, pad, &w_shape, bias).unwrap();
        let (want_dw, want_db) = cpu
            .conv3d_backward_params(&x, &gy, pad, &w_shape, bias)
            .unwrap();
        assert_close(&format!("{case}: dweight"), &dw, &want_dw, &F32_TOL);
        assert_eq!(db.is_some(), bias, "{case}: dbias presence");
        if let (Some(db), Some(want_db)) = (db, want_db) {
            assert_close(&format!("{case}: dbias"), &db, &want_db, &F32_TOL);
        }
    }
}

#[test]
fn conv3d_k3_matches_cpu_on_odd_shapes() {
    check_conv3d([1, 3, 5, 6, 7], 4, 3, 1, true);
    check_conv3d([2, 2, 3, 4, 5], 9, 3, 1, false);
}

#[test]
fn conv3d_matches_cpu_with_depth_1_and_single_channels() {
    check_conv3d([1, 9, 1, 5, 6], 1, 3, 1, true);
    check_conv3d([1, 1, 3, 10, 17], 2, 3, 1, true);
}

#[test]
fn conv3d_k1_matches_cpu() {
    check_conv3d([2, 9, 3, 4, 5], 2, 1, 0, true);
}

#[test]
fn conv3d_matches_cpu_with_unusual_padding_and_k5() {
    check_conv3d([1, 2, 4, 5, 6], 3, 3, 0, true);
    check_conv3d([1, 2, 2, 3, 4], 3, 1, 1, false);
    check_conv3d([1, 2, 5, 4, 3], 2, 5, 2, true);
}

/// conv_transpose3d forward and all gradients on emu against cpu, for f32 and f16 storage.
fn check_conv_t(x_shape: [usize; 5], cout: usize, g: TransposeGeometry, bias: bool) {
    let (dev, cpu) = (Device::emu(), Cpu::new());
    let [n, cin, d, h, w] = x_shape;
    let [od, oh, ow] =
        [d, h, w].map(|s| (s - 1) * g.stride + g.kernel + g.output_padding - 2 * g.pad);
    let w_shape = [cin, cout, g.kernel, g.kernel, g.kernel];
    for dtype in [DType::F32, DType::F16] {
        let case = format!("conv_transpose3d {x_shape:?} cout {cout} {g:?} {dtype:?}");
        let x = tensor(&x_shape, 5, dtype);
        let weight = tensor(&w_shape, 6, dtype);
        let b = bias.then(|| tensor(&[cout], 7, DType::F32));
        let gy = tensor(&[n, cout, od, oh, ow], 8, dtype);
        let tol = tolerance(dtype);

        let y = conv::conv_transpose3d(&dev, &x, &weight, b.as_ref(), g).unwrap();
        let want = cpu.conv_transpose3d(&x, &weight, b.as_ref(), g).unwrap();
        assert_close(&format!("{case}: y"), &y, &want, tol);

        let dx = conv::conv_transpose3d_backward_input(&dev, &gy, &weight, g, &x_shape).unwrap();
        let want = cpu
            .conv_transpose3d_backward_input(&gy, &weight, g, &x_shape)
            .unwrap();
        assert_close(&format!("{case}: dx"), &dx, &want, tol);

        let (dw, db) =
            conv::conv_transpose3d_backward_params(&dev, &x, &gy, g, &w_shape, bias).unwrap();
        let (want_dw, want_db) = cpu
            .conv_transpose3d_backward_params(&x, &gy, g, &w_shape, bias)
            .unwrap();
        assert_close(&format!("{case}: dweight"), &dw, &want_dw, &F32_TOL);
        assert_eq!(db.is_some(), bias, "{case}: dbias presence");
        if let (Some(db), Some(want_db)) = (db, want_db) {
            assert_close(&format!("{case}: dbias"), &db, &want_db, &F32_TOL);
        }
    }
}

fn geometry(kernel: usize, stride: usize, pad: usize, output_padding: usize) -> TransposeGeometry {
    TransposeGeometry {
        kernel,
        stride,
        pad,
        output_padding,
    }
}

#[test]
fn conv_transpose3d_k2s2_matches_cpu() {
    check_conv_t([1, 4, 3, 4, 5], 3, TransposeGeometry::K2S2, true);
    check_conv_t([2, 3, 1, 3, 9], 9, TransposeGeometry::K2S2, false);
    check_conv_t([1, 1, 2, 2, 2], 1, geometry(2, 2, 0, 1), true);
}

#[test]
fn conv_transpose3d_general_geometry_matches_cpu() {
    check_conv_t([1, 2, 3, 4, 5], 2, geometry(3, 2, 1, 1), true);
    check_conv_t([1, 3, 2, 3, 4], 2, geometry(3, 1, 1, 0), false);
    check_conv_t([1, 2, 2, 3, 3], 1, geometry(4, 3, 2, 2), true);
}

#[test]
fn wide_channel_counts_with_blocks_walking_several_tiles() {
    // 72 channels (as the U-Net's deepest level): the weight gradients split their work into
    // so many channel groups that each block walks more than one spatial tile.
    check_conv3d([1, 72, 7, 8, 16], 72, 3, 1, true);
    check_conv_t([1, 72, 12, 8, 16], 36, TransposeGeometry::K2S2, true);
}

#[test]
fn mixed_weight_storage_gives_the_f32_weight_result() {
    // The model casts weights to the activation storage in mixed precision; an f32 weight with
    // f16 activations must work too, and give the result of its exact f16 values when it holds
    // them.
    let dev = Device::emu();
    let x = tensor(&[1, 2, 3, 4, 5], 11, DType::F16);
    let w16 = tensor(&[3, 2, 3, 3, 3], 12, DType::F16);
    let w32 = w16.to_dtype(DType::F32);
    let a = conv::conv3d(&dev, &x, &w16, None, 1).unwrap();
    let b = conv::conv3d(&dev, &x, &w32, None, 1).unwrap();
    assert_eq!(a.dtype(), DType::F16);
    assert_eq!(a.as_f32(), b.as_f32());
}

#[test]
fn unsupported_or_mismatched_shapes_are_errors() {
    let dev = Device::emu();
    let x = tensor(&[1, 2, 7, 7, 7], 1, DType::F32);

    let err = conv::conv3d(&dev, &x, &tensor(&[1, 2, 7, 7, 7], 2, DType::F32), None, 3)
        .unwrap_err()
        .to_string();
    assert!(err.contains("k = 7") && err.contains("k <= 5"), "{err}");

    let err = conv::conv3d(&dev, &x, &tensor(&[1, 3, 3, 3, 3], 2, DType::F32), None, 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not fit input"), "{err}");

    let gy = tensor(&[1, 1, 7, 7, 6], 3, DType::F32);
    let w = tensor(&[1, 2, 3, 3, 3], 2, DType::F32);
    let err = conv::conv3d_backward_input(&dev, &gy, &w, 1, x.shape())
        .unwrap_err()
        .to_string();
    assert!(err.contains("gradient [1, 1, 7, 7, 6]"), "{err}");

    let big = geometry(8, 8, 0, 0);
    let w = tensor(&[2, 1, 8, 8, 8], 4, DType::F32);
    let err = conv::conv_transpose3d(&dev, &x, &w, None, big)
        .unwrap_err()
        .to_string();
    assert!(err.contains("shared memory"), "{err}");

    let labels = Tensor::from_u8(&[1, 2, 1, 1, 1], vec![0, 1]).unwrap();
    let err = conv::conv3d(
        &dev,
        &labels,
        &tensor(&[1, 2, 1, 1, 1], 5, DType::F32),
        None,
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("expected f32 or f16"), "{err}");
}

fn fixture_tensor(case: &Case, name: &str) -> Tensor {
    Tensor::from_f32(case.shape(name), case.f32(name)).unwrap()
}

fn param_usize(case: &Case, key: &str) -> usize {
    case.meta.params[key][0].as_u64().unwrap() as usize
}

fn check_fixture(case: &Case, name: &str, got: &Tensor) {
    if let Err(message) = case.check_f32(name, &got.as_f32()) {
        panic!("emu: {message}");
    }
}

#[test]
fn conv3d_matches_pytorch_fixtures_on_emu() {
    let Some(manifest) = manifest_or_skip("conv3d_matches_pytorch_fixtures_on_emu") else {
        return;
    };
    let dev = Device::emu();
    let mut seen = 0;
    for meta in manifest.cases(&["conv3d"]) {
        let case = manifest.open(meta).unwrap();
        let (x, weight) = (fixture_tensor(&case, "x"), fixture_tensor(&case, "weight"));
        let (bias, gy) = (fixture_tensor(&case, "bias"), fixture_tensor(&case, "gy"));
        let pad = param_usize(&case, "padding");

        check_fixture(
            &case,
            "y",
            &conv::conv3d(&dev, &x, &weight, Some(&bias), pad).unwrap(),
        );
        let dx = conv::conv3d_backward_input(&dev, &gy, &weight, pad, x.shape()).unwrap();
        check_fixture(&case, "dx", &dx);
        let (dw, db) =
            conv::conv3d_backward_params(&dev, &x, &gy, pad, weight.shape(), true).unwrap();
        check_fixture(&case, "dweight", &dw);
        check_fixture(&case, "dbias", &db.unwrap());
        seen += 1;
    }
    assert!(seen > 0, "the manifest has no conv3d case");
}

#[test]
fn conv_transpose3d_matches_pytorch_fixtures_on_emu() {
    let Some(manifest) = manifest_or_skip("conv_transpose3d_matches_pytorch_fixtures_on_emu")
    else {
        return;
    };
    let dev = Device::emu();
    let mut seen = 0;
    for meta in manifest.cases(&["conv_transpose3d"]) {
        let case = manifest.open(meta).unwrap();
        let (x, weight) = (fixture_tensor(&case, "x"), fixture_tensor(&case, "weight"));
        let (bias, gy) = (fixture_tensor(&case, "bias"), fixture_tensor(&case, "gy"));
        let g = geometry(
            param_usize(&case, "kernel_size"),
            param_usize(&case, "stride"),
            param_usize(&case, "padding"),
            param_usize(&case, "output_padding"),
        );

        let y = conv::conv_transpose3d(&dev, &x, &weight, Some(&bias), g).unwrap();
        check_fixture(&case, "y", &y);
        let dx = conv::conv_transpose3d_backward_input(&dev, &gy, &weight, g, x.shape()).unwrap();
        check_fixture(&case, "dx", &dx);
        let (dw, db) =
            conv::conv_transpose3d_backward_params(&dev, &x, &gy, g, weight.shape(), true).unwrap();
        check_fixture(&case, "dweight", &dw);
        check_fixture(&case, "dbias", &db.unwrap());
        seen += 1;
    }
    assert!(seen > 0, "the manifest has no conv_transpose3d case");
}
