use super::*;
use crate::fixtures::{run_cases, Case, Check};
use crate::ops::gradcheck::{assert_grad_close, numeric_grad, test_values};

#[test]
fn ties_go_to_the_first_maximum_and_odd_sizes_floor() {
    // One window of 2×2×2 holding the maximum 5 at scan positions 3 and 6, in a 3×3×3 volume.
    let dims = [1, 1, 3, 3, 3];
    let mut x = vec![0.0f32; 27];
    let at = |d: usize, h: usize, w: usize| (d * 3 + h) * 3 + w;
    x[at(0, 1, 1)] = 5.0;
    x[at(1, 1, 0)] = 5.0;
    x[at(2, 2, 2)] = 9.0; // outside every window
    let (y, indices) = forward(&x, dims).unwrap();
    assert_eq!(y, vec![5.0]);
    assert_eq!(indices, vec![at(0, 1, 1) as u32]);

    let dx = backward(&[2.5f32], &indices, dims).unwrap();
    assert_eq!(dx.iter().sum::<f32>(), 2.5);
    assert_eq!(dx[at(0, 1, 1)], 2.5);
    assert_eq!(dx[at(2, 2, 2)], 0.0);
}

#[test]
fn nan_propagates() {
    let mut x = vec![1.0f64; 8];
    x[2] = f64::NAN;
    let (y, indices) = forward(&x, [1, 1, 2, 2, 2]).unwrap();
    assert!(y[0].is_nan());
    assert_eq!(indices, vec![2]);
}

#[test]
fn bad_input_is_an_error() {
    assert!(forward(&[0.0f32; 7], [1, 1, 2, 2, 2]).is_err());
    let err = backward(&[1.0f32], &[8], [1, 1, 2, 2, 2]).unwrap_err();
    assert!(err.to_string().contains("index 8"), "{err}");
}

#[test]
fn backward_matches_finite_differences() {
    // Distinct values, so the maximum of every window is unique and the loss is smooth near x.
    let dims = [2, 2, 3, 4, 5];
    let n = 240;
    let x: Vec<f64> = (0..n)
        .map(|i| ((i * 37) % n) as f64 * 0.01 + 0.001 * (i as f64))
        .collect();
    let (y, indices) = forward(&x, dims).unwrap();
    let gy = test_values(y.len(), 5);
    let dx = backward(&gy, &indices, dims).unwrap();
    let numeric = numeric_grad(&x, 1e-5, |v| {
        let (y, _) = forward(v, dims).unwrap();
        y.iter().zip(&gy).map(|(a, b)| a * b).sum()
    });
    assert_grad_close("dx", &dx, &numeric, 1e-8);
}

fn run_case<T: Real>(case: &Case) -> Vec<Check> {
    let dims = case.dims::<5>("x");
    let (y, indices) = forward(&case.values::<T>("x"), dims).unwrap();
    let dx = backward(&case.values::<T>("gy"), &indices, dims).unwrap();
    let indices: Vec<f64> = indices.iter().map(|&i| i as f64).collect();
    vec![
        case.check("y", &y),
        case.check("indices", &indices),
        case.check("dx", &dx),
    ]
}

#[test]
fn matches_pytorch_fixtures() {
    run_cases(
        "max_pool::matches_pytorch_fixtures",
        &["max_pool3d"],
        run_case::<f64>,
        run_case::<f32>,
    );
}
