use super::*;
use crate::fixtures::{run_cases, Case, Check};
use crate::ops::Real;

#[test]
fn first_adam_step_moves_by_lr_times_the_sign() {
    // After one step m̂ = g and v̂ = g², so p moves by lr·g/(|g| + eps).
    let mut adam = Adam::<f64>::new(AdamConfig::default(), &[3]).unwrap();
    let mut p = vec![1.0, 1.0, 1.0];
    adam.step(&mut [&mut p], &[&[0.5, -2.0, 0.0]]).unwrap();
    assert!((p[0] - (1.0 - 1e-3 * 0.5 / (0.5 + 1e-8))).abs() < 1e-15);
    assert!((p[1] - (1.0 + 1e-3 * 2.0 / (2.0 + 1e-8))).abs() < 1e-15);
    assert_eq!(p[2], 1.0);
    assert_eq!(adam.states[0].step, 1);
    assert!((adam.states[0].exp_avg[1] - -0.2).abs() < 1e-15);
    assert!((adam.states[0].exp_avg_sq[1] - 0.004).abs() < 1e-15);
}

#[test]
fn first_rmsprop_step_divides_by_the_root_mean_square() {
    let config = RmsPropConfig {
        lr: 0.01,
        ..RmsPropConfig::default()
    };
    let mut rms = RmsProp::<f64>::new(config, &[2]).unwrap();
    let mut p = vec![0.0, 0.0];
    rms.step(&mut [&mut p], &[&[3.0, 1e-10]]).unwrap();
    // v = 0.01·g², so sqrt(v) = 0.1·|g|.
    assert!((p[0] - -0.01 * 3.0 / (0.3 + 1e-8)).abs() < 1e-15);
    assert!((p[1] - -0.01 * 1e-10 / (1e-11 + 1e-8)).abs() < 1e-20);
    assert!((rms.states[0].square_avg[0] - 0.09).abs() < 1e-15);
}

#[test]
fn large_parameters_update_like_small_ones() {
    // The parallel chunks must not mix up elements: every element gets the same rule.
    let n = 100_003;
    let grads: Vec<f32> = (0..n).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect();
    let mut big = vec![0.5f32; n];
    let mut adam = Adam::new(AdamConfig::default(), &[n]).unwrap();
    adam.step(&mut [&mut big], &[&grads]).unwrap();
    for i in [0, 1, 5, 50_000, n - 1] {
        let mut single = vec![0.5f32];
        let mut one = Adam::new(AdamConfig::default(), &[1]).unwrap();
        one.step(&mut [&mut single], &[&[grads[i]]]).unwrap();
        assert_eq!(big[i], single[0], "element {i}");
    }
}

#[test]
fn wrong_counts_lengths_and_configs_are_errors() {
    let mut adam = Adam::<f32>::new(AdamConfig::default(), &[2, 3]).unwrap();
    let mut p0 = vec![0.0f32; 2];
    let mut p1 = vec![0.0f32; 3];
    let err = adam.step(&mut [&mut p0], &[&[0.0; 2]]).unwrap_err();
    assert!(err.to_string().contains("1 parameters for 2"), "{err}");
    let err = adam
        .step(&mut [&mut p0, &mut p1], &[&[0.0; 2], &[0.0; 4]])
        .unwrap_err();
    assert!(err
        .to_string()
        .contains("parameter 1 holds 3 values but its gradient holds 4"));

    let bad = AdamConfig {
        betas: (0.9, 1.0),
        ..AdamConfig::default()
    };
    assert!(Adam::<f32>::new(bad, &[1])
        .unwrap_err()
        .to_string()
        .contains("betas.1 = 1"));
    let bad = RmsPropConfig {
        lr: f64::NAN,
        ..RmsPropConfig::default()
    };
    assert!(RmsProp::<f32>::new(bad, &[1]).is_err());
    let bad = GradScalerConfig {
        growth_interval: 0,
        ..GradScalerConfig::default()
    };
    assert!(GradScaler::new(bad).is_err());
}

#[test]
fn an_inf_gradient_skips_the_step_and_halves_the_scale() {
    let mut scaler = GradScaler::new(GradScalerConfig::default()).unwrap();
    let mut adam = Adam::<f32>::new(AdamConfig::default(), &[3]).unwrap();
    let mut p = vec![1.0f32, 2.0, 3.0];

    // A clean step first, so the moments are not zero.
    let mut g = vec![65536.0f32, -65536.0, 32768.0];
    assert!(!scaler.unscale_and_check(&mut [&mut g]));
    assert_eq!(g, vec![1.0, -1.0, 0.5]);
    adam.step(&mut [&mut p], &[&g]).unwrap();
    scaler.update(false);
    assert_eq!((scaler.scale, scaler.growth_tracker), (65536.0, 1));

    let (p_before, adam_before) = (p.clone(), adam.clone());
    let mut g = vec![1.0f32, f32::INFINITY, 2.0];
    let found_inf = scaler.unscale_and_check(&mut [&mut g]);
    assert!(found_inf);
    if !found_inf {
        adam.step(&mut [&mut p], &[&g]).unwrap();
    }
    scaler.update(found_inf);
    assert_eq!(p, p_before);
    assert_eq!(adam, adam_before);
    assert_eq!((scaler.scale, scaler.growth_tracker), (32768.0, 0));

    let mut nan = vec![f64::NAN];
    assert!(scaler.unscale_and_check(&mut [&mut nan]));
}

#[test]
fn the_scale_grows_after_the_interval_and_never_becomes_infinite() {
    let config = GradScalerConfig {
        growth_interval: 2,
        ..GradScalerConfig::default()
    };
    let mut scaler = GradScaler::new(config).unwrap();
    scaler.update(false);
    assert_eq!(scaler.scale, 65536.0);
    scaler.update(false);
    assert_eq!((scaler.scale, scaler.growth_tracker), (131072.0, 0));

    for _ in 0..1000 {
        scaler.update(false);
    }
    assert!(scaler.scale.is_finite());
    assert_eq!(scaler.scale, 2f32.powi(127));

    for _ in 0..1000 {
        scaler.update(true);
    }
    assert!(scaler.scale > 0.0);
}

fn optimizer_case<T: Real>(case: &Case) -> Vec<Check> {
    let n_params = case.param_usize("n_params").expect("n_params");
    let n_steps = case.param_usize("n_steps").expect("n_steps");
    let mut params: Vec<Vec<T>> = (0..n_params)
        .map(|i| case.values::<T>(&format!("p{i}")))
        .collect();
    let lens: Vec<usize> = params.iter().map(Vec::len).collect();
    let adam_config = || {
        let betas = case.meta.params["betas"]
            .as_array()
            .expect("adam case without betas");
        AdamConfig {
            lr: case.param_f64("lr").expect("lr"),
            betas: (betas[0].as_f64().unwrap(), betas[1].as_f64().unwrap()),
            eps: case.param_f64("eps").expect("eps"),
            weight_decay: case.param_f64("weight_decay").expect("weight_decay"),
        }
    };
    let rms_config = || RmsPropConfig {
        lr: case.param_f64("lr").expect("lr"),
        alpha: case.param_f64("alpha").expect("alpha"),
        eps: case.param_f64("eps").expect("eps"),
        weight_decay: case.param_f64("weight_decay").expect("weight_decay"),
    };
    let is_adam = case.meta.params["optimizer"] == "adam";
    let mut adam = is_adam.then(|| Adam::<T>::new(adam_config(), &lens).unwrap());
    let mut rms = (!is_adam).then(|| RmsProp::<T>::new(rms_config(), &lens).unwrap());

    let mut out = Vec::new();
    for s in 1..=n_steps {
        let grads: Vec<Vec<T>> = (0..n_params)
            .map(|i| case.values::<T>(&format!("g{i}_step{s}")))
            .collect();
        let grad_refs: Vec<&[T]> = grads.iter().map(Vec::as_slice).collect();
        let mut param_refs: Vec<&mut [T]> = params.iter_mut().map(Vec::as_mut_slice).collect();
        if let Some(adam) = adam.as_mut() {
            adam.step(&mut param_refs, &grad_refs).unwrap();
            for (i, st) in adam.states.iter().enumerate() {
                out.push(case.check(&format!("exp_avg{i}_after_step{s}"), &st.exp_avg));
                out.push(case.check(&format!("exp_avg_sq{i}_after_step{s}"), &st.exp_avg_sq));
            }
        }
        if let Some(rms) = rms.as_mut() {
            rms.step(&mut param_refs, &grad_refs).unwrap();
            for (i, st) in rms.states.iter().enumerate() {
                out.push(case.check(&format!("square_avg{i}_after_step{s}"), &st.square_avg));
            }
        }
        for (i, p) in params.iter().enumerate() {
            out.push(case.check(&format!("p{i}_after_step{s}"), p));
        }
    }
    out
}

#[test]
fn optimizers_match_pytorch_fixtures() {
    run_cases(
        "optim::optimizers_match_pytorch_fixtures",
        &["adam", "rmsprop"],
        optimizer_case::<f64>,
        optimizer_case::<f32>,
    );
}

fn scaler_case<T: Real>(case: &Case) -> Vec<Check> {
    let config = GradScalerConfig {
        init_scale: case.param_f64("init_scale").expect("init_scale") as f32,
        growth_factor: case.param_f64("growth_factor").expect("growth_factor") as f32,
        backoff_factor: case.param_f64("backoff_factor").expect("backoff_factor") as f32,
        growth_interval: case
            .param_usize("growth_interval")
            .expect("growth_interval") as u32,
    };
    let lr = T::of(case.param_f64("lr").expect("lr"));
    let mut scaler = GradScaler::new(config).unwrap();
    let mut p = case.values::<T>("p0");
    let n = p.len();
    let scaled = case.values::<T>("scaled_grad");

    let mut record: [Vec<T>; 5] = Default::default();
    for s in 0..case.param_usize("n_steps").expect("n_steps") {
        record[0].push(T::of(scaler.scale as f64));
        let mut g = scaled[s * n..(s + 1) * n].to_vec();
        let found_inf = scaler.unscale_and_check(&mut [&mut g]);
        if !found_inf {
            // SGD without momentum: p = p − lr·g.
            for (pv, gv) in p.iter_mut().zip(&g) {
                *pv -= lr * *gv;
            }
        }
        scaler.update(found_inf);
        record[1].push(T::of(scaler.scale as f64));
        record[2].push(T::of(scaler.growth_tracker as f64));
        record[3].push(if found_inf { T::one() } else { T::zero() });
        record[4].extend_from_slice(&p);
    }
    let names = [
        "scale_before",
        "scale_after",
        "growth_tracker_after",
        "skipped",
        "params_after",
    ];
    names
        .iter()
        .zip(&record)
        .map(|(name, got)| case.check(name, got))
        .collect()
}

#[test]
fn loss_scaling_matches_pytorch_fixtures() {
    run_cases(
        "optim::loss_scaling_matches_pytorch_fixtures",
        &["dynamic_loss_scaling"],
        scaler_case::<f64>,
        scaler_case::<f32>,
    );
}
