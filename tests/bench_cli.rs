//! `enamel bench --json` on the cpu at a tiny size: the JSON parses and its numbers agree
//! with each other and with the counted FLOPs.

use std::process::Command;

use enamel::nn::UNetConfig;
use enamel::perf::unet_flops;
use enamel::perf::workload::planned_step_memory;
use enamel::train::Stage;

#[test]
fn bench_json_reports_every_workload_on_the_cpu() {
    let out = Command::new(env!("CARGO_BIN_EXE_enamel"))
        .args([
            "bench", "--device", "cpu", "--json", "--size", "8,16,16", "--steps", "2",
        ])
        .output()
        .expect("run enamel bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");

    assert_eq!(report["device"], "cpu");
    assert_eq!(report["steps"], 2);
    let workloads = report["workloads"].as_array().unwrap();
    let names: Vec<&str> = workloads
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["train_step_net_A", "train_step_net_B", "cascade_inference"]
    );

    let expected_gflop = [
        unet_flops(&UNetConfig::BINARY, [8, 16, 16]).training_step / 1e9,
        unet_flops(&UNetConfig::CATEGORIES, [8, 16, 16]).training_step / 1e9,
        (unet_flops(&UNetConfig::BINARY, [8, 16, 16]).forward
            + unet_flops(&UNetConfig::CATEGORIES, [8, 16, 16]).forward)
            / 1e9,
    ];
    for (w, gflop) in workloads.iter().zip(expected_gflop) {
        assert_eq!(w["shape"], serde_json::json!([1, 1, 8, 16, 16]));
        let times: Vec<f64> = w["times_s"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_f64().unwrap())
            .collect();
        assert_eq!(times.len(), 2);
        assert!(times.iter().all(|&t| t > 0.0));
        let median = w["median_s"].as_f64().unwrap();
        assert!((median - (times[0] + times[1]) / 2.0).abs() < 1e-12);
        assert!((w["gflop"].as_f64().unwrap() - gflop).abs() < 1e-9 * gflop.max(1.0));
        let rate = w["gflop_per_s"].as_f64().unwrap();
        assert!((rate - gflop / median).abs() < 1e-6 * rate);
        // Peak RSS holds at least the network input.
        assert!(w["peak_memory_bytes"].as_u64().unwrap() > 8 * 16 * 16 * 4);
        assert!(
            w["roofline"].is_null(),
            "no roofline for the cpu unless a GPU is named"
        );
    }

    // The GPU memory of the training steps, planned whatever the backend timed.
    let planned = report["planned_gpu_memory"].as_array().unwrap();
    let names: Vec<&str> = planned
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "train_step_net_A",
            "train_step_net_A_whole_volume",
            "train_step_net_B"
        ]
    );
    for (p, stage) in planned
        .iter()
        .zip([Stage::Binary, Stage::Binary, Stage::Categories])
    {
        assert_eq!(p["shape"], serde_json::json!([1, 1, 8, 16, 16]));
        let want = planned_step_memory(stage, [8, 16, 16], None).unwrap();
        assert_eq!(p["peak_bytes"].as_u64().unwrap(), want);
        // At least the f16 input and its first 9- or 18-channel activation.
        assert!(want > 8 * 16 * 16 * 2 * 10, "{want}");
    }
}

#[test]
fn bench_names_a_gpu_roofline_when_asked() {
    let out = Command::new(env!("CARGO_BIN_EXE_enamel"))
        .args([
            "bench", "--device", "cpu", "--json", "--size", "4,8,8", "--steps", "1",
        ])
        .args(["--gpu", "GTX 1060"])
        .output()
        .expect("run enamel bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let step = &report["workloads"][0];
    let roof = &step["roofline"];
    assert_eq!(roof["gpu"], "GTX 1060");
    let bound = roof["bound_s"].as_f64().unwrap();
    let flops = step["gflop"].as_f64().unwrap() * 1e9;
    assert!(bound >= flops / 4.37e12 * (1.0 - 1e-9));
    let fraction = roof["fraction"].as_f64().unwrap();
    assert!((fraction - bound / step["median_s"].as_f64().unwrap()).abs() < 1e-9);
}

#[test]
fn bench_refuses_zero_steps_and_bad_sizes() {
    for args in [["--steps", "0"], ["--size", "8,16"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_enamel"))
            .args(["bench", "--device", "cpu"])
            .args(args)
            .output()
            .expect("run enamel bench");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(args[1]), "{stderr}");
    }
}
