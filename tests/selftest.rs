//! The self-test itself: at the small size on `emu` every check passes and the table has a
//! row per op and storage type; on `cuda` it runs when a GPU is present.

use enamel::fixtures::report_skip;
use enamel::selftest::{open_device, run, Size, TestDevice};

/// Every op of the Backend trait, as the table names it.
const BACKEND_OPS: &[&str] = &[
    "conv3d",
    "conv3d_backward_input",
    "conv3d_backward_params",
    "conv_transpose3d",
    "conv_transpose3d_backward_input",
    "conv_transpose3d_backward_params",
    "batch_norm_train",
    "batch_norm_eval",
    "batch_norm_backward_train",
    "batch_norm_backward_eval",
    "max_pool3d (values, indices)",
    "max_pool3d_backward",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "softmax",
    "softmax_backward",
    "concat",
    "split",
    "dice_binary (loss, grad)",
    "dice_categorical (loss, grad)",
    "add",
    "scale",
    "net A train step (loss, applied)",
    "net A forward+backward (loss, grads)",
    "net B train step (loss, applied)",
    "net B forward+backward (loss, grads)",
];

const DEVICE_ONLY: &[&str] = &[
    "cast f32->f16->f32",
    "adam_step x2 (params, m, v)",
    "rmsprop_step x2 (params, sq)",
    "unscale (grads, inf flags)",
];

#[test]
fn the_small_self_test_on_emu_passes_with_a_row_per_op_and_dtype() {
    let (device, description) = open_device(TestDevice::Emu, None).unwrap();
    let report = run(&device, &description, Size::Small);
    let table = report.table();
    assert!(report.passed(), "{table}");

    for op in BACKEND_OPS {
        for dtype in ["f32", "f16"] {
            let rows: Vec<_> = report
                .rows
                .iter()
                .filter(|r| r.op == *op && r.dtype == dtype)
                .collect();
            assert_eq!(rows.len(), 1, "{op} {dtype}:\n{table}");
            assert!(rows[0].max_rel.is_finite(), "{op} {dtype}:\n{table}");
        }
    }
    for op in DEVICE_ONLY {
        assert!(report.rows.iter().any(|r| r.op == *op), "{op}:\n{table}");
    }
    assert_eq!(report.rows.len(), 2 * BACKEND_OPS.len() + DEVICE_ONLY.len());
    assert!(report.peak_device_bytes > 0);
    assert!(table.contains("peak device memory"), "{table}");
    assert!(table.lines().count() > report.rows.len(), "{table}");

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), report.rows.len());
}

#[test]
fn the_self_test_on_cuda_passes_when_a_gpu_is_present() {
    let (device, description) = match open_device(TestDevice::Cuda, None) {
        Ok(opened) => opened,
        Err(e) => {
            report_skip("self-test on cuda", &format!("no usable GPU: {e}"));
            return;
        }
    };
    let report = run(&device, &description, Size::Small);
    assert!(report.passed(), "{}", report.table());
}
