use super::*;
use crate::fixtures::{run_cases, Case, Check};
use crate::ops::gradcheck::{assert_grad_close, numeric_grad, test_values};

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn relu_gradient_is_zero_at_zero() {
    let x = [-1.0f32, 0.0, -0.0, 2.0];
    assert_eq!(relu_forward(&x), vec![0.0, 0.0, 0.0, 2.0]);
    assert_eq!(
        relu_backward(&x, &[1.0; 4]).unwrap(),
        vec![0.0, 0.0, 0.0, 1.0]
    );
    assert!(relu_backward(&x, &[1.0; 3]).is_err());
}

#[test]
fn relu_backward_matches_finite_differences() {
    // Values kept away from the kink at 0.
    let x: Vec<f64> = test_values(100_000, 11)
        .iter()
        .map(|v| v + v.signum() * 0.1)
        .collect();
    let gy = test_values(x.len(), 12);
    let dx = relu_backward(&x, &gy).unwrap();
    let small = &x[..50];
    let numeric = numeric_grad(small, 1e-6, |v| dot(&relu_forward(v), &gy[..50]));
    assert_grad_close("dx", &dx[..50], &numeric, 1e-8);
    // The chunked parallel path: the far end of a large tensor.
    for i in 99_990..100_000 {
        assert_eq!(dx[i], if x[i] > 0.0 { gy[i] } else { 0.0 });
    }
}

#[test]
fn sigmoid_is_stable_for_large_magnitudes() {
    let y = sigmoid_forward(&[-1000.0f32, -100.0, 0.0, 100.0, 1000.0]);
    assert_eq!(y[0], 0.0);
    assert!(y[1] > 0.0 && y[1] < 1e-40);
    assert_eq!(y[2], 0.5);
    assert_eq!(y[3], 1.0);
    assert_eq!(y[4], 1.0);
    assert!(y.iter().all(|v| v.is_finite()));
    assert!((cpu::sigmoid(-30.0f64) - 9.357_622_968_840_175e-14).abs() < 1e-26);
}

#[test]
fn sigmoid_backward_matches_finite_differences() {
    let x: Vec<f64> = test_values(40, 13).iter().map(|v| 6.0 * v).collect();
    let gy = test_values(40, 14);
    let dx = sigmoid_backward(&sigmoid_forward(&x), &gy).unwrap();
    let numeric = numeric_grad(&x, 1e-6, |v| dot(&sigmoid_forward(v), &gy));
    assert_grad_close("dx", &dx, &numeric, 1e-8);
}

#[test]
fn softmax_sums_to_one_and_survives_large_logits() {
    let dims = [2, 3, 1, 1, 2];
    let x = [
        1000.0f32, 0.0, 1001.0, 0.0, 999.0, 0.0, -5.0, 1.0, -5.0, 2.0, -5.0, 3.0,
    ];
    let y = softmax_forward(&x, dims).unwrap();
    assert!(y.iter().all(|v| v.is_finite()));
    for (b, v) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let sum: f32 = (0..3).map(|c| y[(b * 3 + c) * 2 + v]).sum();
        assert!((sum - 1.0).abs() < 1e-6);
    }
    assert!((y[2] - 0.665_240_9).abs() < 1e-6);
    assert!((y[1] - 1.0 / 3.0).abs() < 1e-6);
    assert!((y[6] - 1.0 / 3.0).abs() < 1e-6);
}

#[test]
fn softmax_backward_matches_finite_differences() {
    let dims = [2, 4, 2, 1, 3];
    let x: Vec<f64> = test_values(48, 15).iter().map(|v| 3.0 * v).collect();
    let gy = test_values(48, 16);
    let y = softmax_forward(&x, dims).unwrap();
    let dx = softmax_backward(&y, &gy, dims).unwrap();
    let numeric = numeric_grad(&x, 1e-6, |v| dot(&softmax_forward(v, dims).unwrap(), &gy));
    assert_grad_close("dx", &dx, &numeric, 1e-8);
}

fn run_relu<T: Real>(case: &Case) -> Vec<Check> {
    let x = case.values::<T>("x");
    let dx = relu_backward(&x, &case.values::<T>("gy")).unwrap();
    vec![case.check("y", &relu_forward(&x)), case.check("dx", &dx)]
}

#[test]
fn relu_matches_pytorch_fixtures() {
    run_cases(
        "activation::relu_matches_pytorch_fixtures",
        &["relu"],
        run_relu::<f64>,
        run_relu::<f32>,
    );
}
