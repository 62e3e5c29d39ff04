use super::*;
use crate::fixtures::{run_cases, Case, Check};
use crate::ops::gradcheck::{assert_grad_close, numeric_grads3, test_values};

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn closed_form_running_var_and_normalized_value() {
    // Per channel the values 1,2,3,4, each 36 times: mean 2.5, biased var 1.25, M = 144.
    let dims = [1, 2, 1, 1, 144];
    let x: Vec<f64> = (0..288).map(|i| (i % 4 + 1) as f64).collect();
    let (gamma, beta) = (vec![1.0; 2], vec![0.0; 2]);
    let mut y = vec![0.0; 288];
    let stats = forward_train(&x, dims, &gamma, &beta, EPS, &mut y).unwrap();
    let mut running = RunningStats::<f64>::new(2);
    running.update(&stats, MOMENTUM);

    for c in 0..2 {
        assert!((stats.var_biased[c] - 1.25).abs() < 1e-15);
        assert_eq!(format!("{:.4}", running.running_var[c]), "1.0259");
        assert!((running.running_var[c] - 1.025_874_125_874_126).abs() < 1e-12);
        assert!((running.running_mean[c] - 0.25).abs() < 1e-15);
    }
    assert_eq!(running.num_batches_tracked, 1);
    assert_eq!(format!("{:.4}", y[0]), "-1.3416");
    assert!((y[0] - -1.341_635_419_968_927).abs() < 1e-12);
}

#[test]
fn f32_channel_of_plus_minus_300_normalizes_to_plus_minus_one() {
    let dims = [1, 1, 4, 5, 6];
    let x: Vec<f32> = (0..120)
        .map(|i| if i % 2 == 0 { 300.0 } else { -300.0 })
        .collect();
    let mut y = vec![0.0f32; 120];
    let stats = forward_train(&x, dims, &[1.0], &[0.0], EPS, &mut y).unwrap();
    assert_eq!(stats.var_biased[0], 90000.0);
    for (xv, yv) in x.iter().zip(&y) {
        assert!((yv - xv.signum()).abs() < 1e-6, "{xv} -> {yv}");
    }
}

#[test]
fn single_value_per_channel_is_refused_and_update_stays_finite() {
    let mut y = vec![0.0; 3];
    let err = forward_train(
        &[1.0, 2.0, 3.0],
        [1, 3, 1, 1, 1],
        &[1.0; 3],
        &[0.0; 3],
        EPS,
        &mut y,
    );
    assert!(err.unwrap_err().to_string().contains("more than 1 value"));

    let stats = BatchStats {
        mean: vec![2.0],
        var_biased: vec![0.0],
        count: 1,
    };
    let mut running = RunningStats::<f64>::new(1);
    running.update(&stats, MOMENTUM);
    assert!((running.running_var[0] - 0.9).abs() < 1e-15);
    assert!((running.running_mean[0] - 0.2).abs() < 1e-15);
}

#[test]
fn length_mismatch_is_an_error() {
    let mut y = vec![0.0f32; 8];
    let err = forward_train(
        &[0.0f32; 8],
        [1, 2, 1, 2, 2],
        &[1.0],
        &[0.0; 2],
        EPS,
        &mut y,
    );
    assert!(err
        .unwrap_err()
        .to_string()
        .contains("gamma holds 1 values, expected 2"));
}

#[test]
fn large_channels_match_a_sequential_reference() {
    // More voxels per channel than one parallel block, so the partial sums are combined.
    let dims = [2, 2, 1, 1, 70_001];
    let n = 2 * 2 * 70_001;
    let x: Vec<f64> = test_values(n, 7).iter().map(|v| 5.0 + 3.0 * v).collect();
    let mut y = vec![0.0; n];
    let stats = forward_train(&x, dims, &[2.0, 0.5], &[0.1, -0.2], EPS, &mut y).unwrap();
    for c in 0..2 {
        let vals: Vec<f64> = (0..2)
            .flat_map(|b| x[(b * 2 + c) * 70_001..][..70_001].to_vec())
            .collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
        assert!((stats.mean[c] - mean).abs() < 1e-12);
        assert!((stats.var_biased[c] - var).abs() < 1e-12);
    }
    let expected = 2.0 * (x[5] - stats.mean[0]) / (stats.var_biased[0] + EPS).sqrt() + 0.1;
    assert!((y[5] - expected).abs() < 1e-12);
}

/// The analytic dx, dgamma and dbeta against central differences of `loss(x, gamma, beta)`.
fn assert_grads_match(
    loss: impl Fn(&[f64], &[f64], &[f64]) -> f64,
    inputs: [&[f64]; 3],
    analytic: [Vec<f64>; 3],
) {
    let numeric = numeric_grads3(inputs, 1e-6, loss);
    for ((name, analytic), numeric) in ["dx", "dgamma", "dbeta"]
        .iter()
        .zip(&analytic)
        .zip(&numeric)
    {
        assert_grad_close(name, analytic, numeric, 1e-7);
    }
}

#[test]
fn train_backward_matches_finite_differences() {
    let dims = [2, 3, 2, 3, 2];
    let n = 72;
    let x: Vec<f64> = test_values(n, 1).iter().map(|v| 2.0 * v + 0.5).collect();
    let gy = test_values(n, 2);
    let gamma = vec![1.5, -0.7, 0.3];
    let beta = vec![0.2, 0.0, -1.0];
    let loss = |x: &[f64], gamma: &[f64], beta: &[f64]| {
        let mut y = vec![0.0; n];
        forward_train(x, dims, gamma, beta, EPS, &mut y).unwrap();
        dot(&y, &gy)
    };

    let mut y = vec![0.0; n];
    let stats = forward_train(&x, dims, &gamma, &beta, EPS, &mut y).unwrap();
    let mut dx = vec![0.0; n];
    let (dgamma, dbeta) = backward_train(&x, dims, &gy, &gamma, &stats, EPS, &mut dx).unwrap();

    assert_grads_match(loss, [&x, &gamma, &beta], [dx, dgamma, dbeta]);
}

#[test]
fn eval_backward_matches_finite_differences() {
    let dims = [1, 2, 3, 2, 2];
    let n = 24;
    let x = test_values(n, 3);
    let gy = test_values(n, 4);
    let gamma = vec![0.8, -1.2];
    let beta = vec![0.1, 0.3];
    let running = RunningStats {
        running_mean: vec![0.2, -0.1],
        running_var: vec![0.5, 2.0],
        num_batches_tracked: 3,
    };
    let loss = |x: &[f64], gamma: &[f64], beta: &[f64]| {
        let mut y = vec![0.0; n];
        forward_eval(x, dims, gamma, beta, &running, EPS, &mut y).unwrap();
        dot(&y, &gy)
    };

    let mut dx = vec![0.0; n];
    let (dgamma, dbeta) = backward_eval(&x, dims, &gy, &gamma, &running, EPS, &mut dx).unwrap();
    assert_grads_match(loss, [&x, &gamma, &beta], [dx, dgamma, dbeta]);
}

fn run_case<T: Real>(case: &Case) -> Vec<Check> {
    let dims = case.dims::<5>("x");
    let x = case.values::<T>("x");
    let gy = case.values::<T>("gy");
    let gamma = case.values::<T>("gamma");
    let beta = case.values::<T>("beta");
    let eps = case.param_f64("eps").expect("eps");
    let mut y = vec![T::zero(); x.len()];
    let mut dx = vec![T::zero(); x.len()];
    let mut out = Vec::new();

    let training = case
        .meta
        .params
        .get("training")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    let (dgamma, dbeta) = if training {
        let mut running = RunningStats {
            running_mean: case.values::<T>("running_mean_before"),
            running_var: case.values::<T>("running_var_before"),
            num_batches_tracked: 0,
        };
        let stats = forward_train(&x, dims, &gamma, &beta, eps, &mut y).unwrap();
        running.update(&stats, case.param_f64("momentum").expect("momentum"));
        let grads = backward_train(&x, dims, &gy, &gamma, &stats, eps, &mut dx).unwrap();

        let mut y_eval = vec![T::zero(); x.len()];
        forward_eval(&x, dims, &gamma, &beta, &running, eps, &mut y_eval).unwrap();
        out.push(case.check("running_mean_after", &running.running_mean));
        out.push(case.check("running_var_after", &running.running_var));
        out.push(case.check("y_eval_after", &y_eval));
        if case.has("num_batches_tracked_after") {
            out.push(case.check(
                "num_batches_tracked_after",
                &[running.num_batches_tracked as f64],
            ));
        }
        grads
    } else {
        let running = RunningStats {
            running_mean: case.values::<T>("running_mean"),
            running_var: case.values::<T>("running_var"),
            num_batches_tracked: 0,
        };
        forward_eval(&x, dims, &gamma, &beta, &running, eps, &mut y).unwrap();
        backward_eval(&x, dims, &gy, &gamma, &running, eps, &mut dx).unwrap()
    };
    out.push(case.check("y", &y));
    out.push(case.check("dx", &dx));
    out.push(case.check("dgamma", &dgamma));
    out.push(case.check("dbeta", &dbeta));
    out
}

#[test]
fn matches_pytorch_fixtures() {
    run_cases(
        "batch_norm::matches_pytorch_fixtures",
        &["batch_norm3d"],
        run_case::<f64>,
        run_case::<f32>,
    );
}
