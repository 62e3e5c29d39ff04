//! The op checks: each op of the [`Backend`] trait on the device and on `cpu` with the same
//! inputs (rounded to the storage type first), plus the device-only kernels (casts, optimizer
//! steps, loss-scale unscaling) against their host implementations.

use super::{compare_outputs, dtype_label, tolerance, Row, Size};
use crate::backend::device::Device;
use crate::backend::{Backend, Cpu, TransposeGeometry};
use crate::ops::batch_norm::RunningStats;
use crate::optim::{Adam, AdamConfig, GradScaler, RmsProp, RmsPropConfig};
use crate::tensor::{DType, Result, Tensor};

/// Input shapes of one size.
struct Shapes {
    /// conv / bn / elementwise input (N, C, D, H, W) and conv output channels.
    x: [usize; 5],
    cout: usize,
    /// transposed-conv input and output channels.
    up: [usize; 5],
    up_cout: usize,
    /// softmax and categorical Dice: nine classes.
    classes: [usize; 5],
    /// optimizer parameter lengths.
    params: [usize; 2],
}

fn shapes(size: Size) -> Shapes {
    match size {
        Size::Small => Shapes {
            x: [1, 3, 5, 6, 7],
            cout: 4,
            up: [1, 4, 3, 3, 4],
            up_cout: 3,
            classes: [1, 9, 3, 4, 5],
            params: [300, 37],
        },
        Size::Reference => Shapes {
            x: [2, 18, 24, 48, 48],
            cout: 18,
            up: [2, 36, 12, 24, 24],
            up_cout: 18,
            classes: [2, 9, 24, 48, 48],
            params: [1 << 20, 12_345],
        },
    }
}

/// Deterministic values in `[-range, range)` (a 64-bit LCG; the same on every machine).
pub(crate) fn values(count: usize, range: f32, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let u = (state >> 40) as f32 / (1u64 << 24) as f32;
            (2.0 * u - 1.0) * range
        })
        .collect()
}

fn tensor(shape: &[usize], range: f32, seed: u64, dtype: DType) -> Result<Tensor> {
    Tensor::from_f32_as(shape, values(shape.iter().product(), range, seed), dtype)
}

/// The outputs of one op run, each flattened to f64.
type Outputs = Result<Vec<Vec<f64>>>;

fn flat(tensors: &[&Tensor]) -> Vec<Vec<f64>> {
    tensors.iter().map(|t| t.as_f64().into_owned()).collect()
}

/// Runs `f` on the device and on `cpu`, and records the comparison (see [`compare_runs`]).
fn check(
    device: &Device,
    rows: &mut Vec<Row>,
    op: &str,
    dtype: &'static str,
    tol: f64,
    f: impl Fn(&dyn Backend) -> Outputs,
) {
    compare_runs(device, rows, op, dtype, tol, &|on_device| match on_device {
        true => f(device),
        false => f(&Cpu::new()),
    });
}

/// Records `run(true)`, on the device (timed; on `cuda` once untimed first, so that compiling
/// and loading the kernels is not counted), against `run(false)`, the host reference.
fn compare_runs(
    device: &Device,
    rows: &mut Vec<Row>,
    op: &str,
    dtype: &'static str,
    tol: f64,
    run: &dyn Fn(bool) -> Outputs,
) {
    if device.api().name() == "cuda" {
        let _ = run(true);
    }
    let (got, ms) = super::device_ms(device, || run(true).map_err(|e| e.to_string()));
    let want = run(false).map_err(|e| e.to_string());
    rows.push(compare_outputs(op, dtype, tol, ms, got, want));
}

/// Every op of the [`Backend`] trait in storage type `dtype`.
pub(super) fn check_all(device: &Device, size: Size, dtype: DType, rows: &mut Vec<Row>) {
    if let Err(e) = check_all_inner(device, size, dtype, rows) {
        rows.push(compare_outputs(
            "inputs",
            dtype_label(dtype),
            0.0,
            0.0,
            Err(e.to_string()),
            Ok(Vec::new()),
        ));
    }
}

fn check_all_inner(device: &Device, size: Size, dtype: DType, rows: &mut Vec<Row>) -> Result<()> {
    let s = shapes(size);
    let (label, tol) = (dtype_label(dtype), tolerance(dtype));
    let [n, c, d, h, w] = s.x;
    let x = tensor(&s.x, 2.0, 1, dtype)?;
    let weight = tensor(&[s.cout, c, 3, 3, 3], 0.3, 2, DType::F32)?;
    let bias = tensor(&[s.cout], 0.5, 3, DType::F32)?;
    let y_shape = [n, s.cout, d, h, w];
    let gy = tensor(&y_shape, 1.0, 4, dtype)?;
    let mut run =
        |op: &str, f: &dyn Fn(&dyn Backend) -> Outputs| check(device, rows, op, label, tol, f);

    run("conv3d", &|b| {
        Ok(flat(&[&b.conv3d(&x, &weight, Some(&bias), 1)?]))
    });
    run("conv3d_backward_input", &|b| {
        Ok(flat(&[&b.conv3d_backward_input(&gy, &weight, 1, &s.x)?]))
    });
    run("conv3d_backward_params", &|b| {
        let (dw, db) = b.conv3d_backward_params(&x, &gy, 1, weight.shape(), true)?;
        Ok(flat(&[
            &dw,
            &db.unwrap_or_else(|| Tensor::scalar(f32::NAN)),
        ]))
    });

    let g = TransposeGeometry::K2S2;
    let [un, uc, ud, uh, uw] = s.up;
    let up_x = tensor(&s.up, 2.0, 5, dtype)?;
    let up_w = tensor(&[uc, s.up_cout, 2, 2, 2], 0.3, 6, DType::F32)?;
    let up_b = tensor(&[s.up_cout], 0.5, 7, DType::F32)?;
    let up_gy = tensor(&[un, s.up_cout, 2 * ud, 2 * uh, 2 * uw], 1.0, 8, dtype)?;
    run("conv_transpose3d", &|b| {
        Ok(flat(&[&b.conv_transpose3d(
            &up_x,
            &up_w,
            Some(&up_b),
            g,
        )?]))
    });
    run("conv_transpose3d_backward_input", &|b| {
        Ok(flat(&[&b.conv_transpose3d_backward_input(
            &up_gy, &up_w, g, &s.up,
        )?]))
    });
    run("conv_transpose3d_backward_params", &|b| {
        let (dw, db) = b.conv_transpose3d_backward_params(&up_x, &up_gy, g, up_w.shape(), true)?;
        Ok(flat(&[
            &dw,
            &db.unwrap_or_else(|| Tensor::scalar(f32::NAN)),
        ]))
    });

    // Batch norm on an input with an offset mean, which checks the centring of the variance.
    let bn_x = Tensor::from_f32_as(
        &s.x,
        values(x.numel(), 2.0, 9).iter().map(|v| v + 3.0).collect(),
        dtype,
    )?;
    let bn_gy = tensor(&s.x, 1.0, 10, dtype)?;
    let gamma = Tensor::from_f32(&[c], values(c, 1.0, 11))?;
    let beta = Tensor::from_f32(&[c], values(c, 1.0, 12))?;
    let mut running = RunningStats::<f64>::new(c);
    running.running_mean = values(c, 1.0, 13)
        .iter()
        .map(|&v| f64::from(v) + 3.0)
        .collect();
    running.running_var = values(c, 1.0, 14)
        .iter()
        .map(|&v| f64::from(v) + 1.5)
        .collect();
    let stats = Cpu::new().batch_norm_train(&bn_x, &gamma, &beta, 1e-5)?.1;
    run("batch_norm_train", &|b| {
        let (y, stats) = b.batch_norm_train(&bn_x, &gamma, &beta, 1e-5)?;
        Ok(vec![y.as_f64().into_owned(), stats.mean, stats.var_biased])
    });
    run("batch_norm_eval", &|b| {
        Ok(flat(&[
            &b.batch_norm_eval(&bn_x, &gamma, &beta, &running, 1e-5)?
        ]))
    });
    run("batch_norm_backward_train", &|b| {
        let (dx, dg, db) = b.batch_norm_backward_train(&bn_x, &bn_gy, &gamma, &stats, 1e-5)?;
        Ok(flat(&[&dx, &dg, &db]))
    });
    run("batch_norm_backward_eval", &|b| {
        let (dx, dg, db) = b.batch_norm_backward_eval(&bn_x, &bn_gy, &gamma, &running, 1e-5)?;
        Ok(flat(&[&dx, &dg, &db]))
    });

    let (pooled, _) = Cpu::new().max_pool3d(&x)?;
    let pool_gy = tensor(pooled.shape(), 1.0, 15, dtype)?;
    run("max_pool3d (values, indices)", &|b| {
        let (y, indices) = b.max_pool3d(&x)?;
        Ok(flat(&[&y, &indices]))
    });
    run("max_pool3d_backward", &|b| {
        // Each backend's own indices, so a wrong index shows here as well as above.
        let (_, indices) = b.max_pool3d(&x)?;
        Ok(flat(&[&b.max_pool3d_backward(&pool_gy, &indices, &s.x)?]))
    });

    let act_gy = tensor(&s.x, 1.0, 16, dtype)?;
    run("relu", &|b| Ok(flat(&[&b.relu(&x)?])));
    run("relu_backward", &|b| {
        Ok(flat(&[&b.relu_backward(&x, &act_gy)?]))
    });
    run("sigmoid", &|b| Ok(flat(&[&b.sigmoid(&x)?])));
    let sig_y = Cpu::new().sigmoid(&x)?;
    run("sigmoid_backward", &|b| {
        Ok(flat(&[&b.sigmoid_backward(&sig_y, &act_gy)?]))
    });
    let logits = tensor(&s.classes, 3.0, 17, dtype)?;
    let soft_gy = tensor(&s.classes, 1.0, 18, dtype)?;
    run("softmax", &|b| Ok(flat(&[&b.softmax(&logits)?])));
    let soft_y = Cpu::new().softmax(&logits)?;
    run("softmax_backward", &|b| {
        Ok(flat(&[&b.softmax_backward(&soft_y, &soft_gy)?]))
    });

    let other = tensor(&[n, 2, d, h, w], 2.0, 19, dtype)?;
    run("concat", &|b| Ok(flat(&[&b.concat(&x, &other)?])));
    let joined = Cpu::new().concat(&x, &other)?;
    run("split", &|b| {
        let (a, rest) = b.split(&joined, c)?;
        Ok(flat(&[&a, &rest]))
    });

    let target: Vec<f32> = values(x.numel(), 1.0, 20)
        .iter()
        .map(|&v| f32::from(v > 0.0))
        .collect();
    let target = Tensor::from_f32_as(&s.x, target, dtype)?;
    run("dice_binary (loss, grad)", &|b| {
        let (loss, grad) = b.dice_binary(&x, &target)?;
        Ok(vec![vec![loss], grad.as_f64().into_owned()])
    });
    let [cn, classes, cd, ch, cw] = s.classes;
    // Labels from eight of the nine classes, so that an absent class is exercised.
    let labels: Vec<u8> = values(cn * cd * ch * cw, 1.0, 21)
        .iter()
        .map(|&v| (((v + 1.0) / 2.0 * (classes - 1) as f32) as usize).min(classes - 2) as u8)
        .collect();
    let labels = Tensor::from_u8(&[cn, cd, ch, cw], labels)?;
    run("dice_categorical (loss, grad)", &|b| {
        let (loss, grad) = b.dice_categorical(&logits, &labels)?;
        Ok(vec![vec![loss], grad.as_f64().into_owned()])
    });

    let y2 = tensor(&s.x, 2.0, 22, dtype)?;
    run("add", &|b| Ok(flat(&[&b.add(&x, &y2)?])));
    run("scale", &|b| Ok(flat(&[&b.scale(&x, -0.37)?])));
    Ok(())
}

/// The kernels that are not part of the [`Backend`] trait: casts, Adam and RMSprop on f32
/// master weights (with their f16 copy), and loss-scale unscaling with its inf/NaN flag.
pub(super) fn check_device_only(device: &Device, size: Size, rows: &mut Vec<Row>) {
    let s = shapes(size);
    let timed = |rows: &mut Vec<Row>, op: &str, tol: f64, run: &dyn Fn(bool) -> Outputs| {
        compare_runs(device, rows, op, "mixed", tol, run)
    };

    let n = s.params[0];
    let x = Tensor::from_f32(&[n], values(n, 70_000.0, 30)).ok();
    timed(rows, "cast f32->f16->f32", 0.0, &|on_device| {
        let x = x.clone().ok_or_else(bad_input)?;
        let cast = |t: &Tensor, dtype| match on_device {
            true => device.cast(t, dtype),
            false => Ok(t.to_dtype(dtype)),
        };
        let half = cast(&x, DType::F16)?;
        Ok(flat(&[&half, &cast(&half, DType::F32)?]))
    });

    let lens = s.params;
    let grads: Vec<Vec<f32>> = lens
        .iter()
        .enumerate()
        .map(|(i, &l)| values(l, 0.1, 40 + i as u64))
        .collect();
    let start: Vec<Vec<f32>> = lens
        .iter()
        .enumerate()
        .map(|(i, &l)| values(l, 1.0, 50 + i as u64))
        .collect();
    let adam = AdamConfig {
        lr: 1e-3,
        ..AdamConfig::default()
    };
    timed(rows, "adam_step x2 (params, m, v)", 1e-5, &|on_device| {
        let mut opt = Adam::new(adam, &lens).map_err(optim_error)?;
        let p = two_steps(&start, &grads, |views, g| match on_device {
            true => device.adam_step(&mut opt, views, g).map(drop),
            false => opt.step(views, g).map_err(optim_error),
        })?;
        Ok(adam_outputs(&p, &opt))
    });

    let rms = RmsPropConfig {
        lr: 1e-3,
        ..RmsPropConfig::default()
    };
    timed(rows, "rmsprop_step x2 (params, sq)", 1e-5, &|on_device| {
        let mut opt = RmsProp::new(rms, &lens).map_err(optim_error)?;
        let p = two_steps(&start, &grads, |views, g| match on_device {
            true => device.rmsprop_step(&mut opt, views, g).map(drop),
            false => opt.step(views, g).map_err(optim_error),
        })?;
        Ok(rmsprop_outputs(&p, &opt))
    });

    // Unscaling: finite gradients (flag 0), then one infinity among them (flag 1).
    timed(rows, "unscale (grads, inf flags)", 0.0, &|on_device| {
        let scaler = GradScaler::new(Default::default()).map_err(optim_error)?;
        let mut clean = grads[0]
            .iter()
            .map(|v| v * scaler.scale)
            .collect::<Vec<f32>>();
        let mut bad = clean.clone();
        bad[n / 2] = f32::INFINITY;
        let unscale = |g: &mut Vec<f32>| match on_device {
            true => device.unscale_and_check(&scaler, &mut [g.as_mut_slice()]),
            false => Ok(scaler.unscale_and_check(&mut [g.as_mut_slice()])),
        };
        let flags = [unscale(&mut clean)?, unscale(&mut bad)?];
        Ok(vec![
            widen(&clean),
            flags.iter().map(|&f| f64::from(u8::from(f))).collect(),
        ])
    });
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fn adam_outputs(params: &[Vec<f32>], opt: &Adam<f32>) -> Vec<Vec<f64>> {
    let mut out: Vec<Vec<f64>> = params.iter().map(|p| widen(p)).collect();
    for s in &opt.states {
        out.push(widen(&s.exp_avg));
        out.push(widen(&s.exp_avg_sq));
    }
    out
}

fn rmsprop_outputs(params: &[Vec<f32>], opt: &RmsProp<f32>) -> Vec<Vec<f64>> {
    let mut out: Vec<Vec<f64>> = params.iter().map(|p| widen(p)).collect();
    out.extend(opt.states.iter().map(|s| widen(&s.square_avg)));
    out
}

fn bad_input() -> crate::tensor::TensorError {
    crate::tensor::TensorError::Invalid {
        op: "selftest",
        message: "the test input could not be built".into(),
    }
}

/// The parameters after two optimizer steps from `start` with the same gradients.
fn two_steps(
    start: &[Vec<f32>],
    grads: &[Vec<f32>],
    mut step: impl FnMut(&mut [&mut [f32]], &[&[f32]]) -> Result<()>,
) -> Result<Vec<Vec<f32>>> {
    let mut p = start.to_vec();
    let g: Vec<&[f32]> = grads.iter().map(|v| v.as_slice()).collect();
    for _ in 0..2 {
        let mut views: Vec<&mut [f32]> = p.iter_mut().map(|v| v.as_mut_slice()).collect();
        step(&mut views, &g)?;
    }
    Ok(p)
}

fn optim_error(e: crate::optim::OptimError) -> crate::tensor::TensorError {
    crate::tensor::TensorError::Invalid {
        op: "selftest",
        message: e.to_string(),
    }
}
