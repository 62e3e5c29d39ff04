use super::*;
use crate::fixtures::{run_cases, Case, Check};
use crate::ops::gradcheck::{assert_grad_close, numeric_grad, test_values};
use crate::ops::Real;

#[test]
fn channels_of_a_come_first_in_every_sample() {
    // a: N=2, Ca=1, volume 2; b: N=2, Cb=2, volume 2.
    let a = [1, 2, 3, 4];
    let b = [10, 11, 12, 13, 20, 21, 22, 23];
    let y = forward(&a, [2, 1, 1, 1, 2], &b, [2, 2, 1, 1, 2]).unwrap();
    assert_eq!(y, vec![1, 2, 10, 11, 12, 13, 3, 4, 20, 21, 22, 23]);
    let (da, db) = backward(&y, [2, 1, 1, 1, 2], [2, 2, 1, 1, 2]).unwrap();
    assert_eq!(da, a);
    assert_eq!(db, b);
}

#[test]
fn mismatched_spatial_sizes_are_an_error() {
    let err = forward(&[0.0f32; 8], [1, 1, 2, 2, 2], &[0.0; 4], [1, 1, 1, 2, 2]).unwrap_err();
    assert!(err.to_string().contains("[1, 1, 2, 2, 2]"), "{err}");
    assert!(forward(&[0.0f32; 7], [1, 1, 2, 2, 2], &[0.0; 8], [1, 1, 2, 2, 2]).is_err());
}

#[test]
fn backward_matches_finite_differences() {
    let (a_dims, b_dims) = ([2, 2, 1, 2, 3], [2, 3, 1, 2, 3]);
    let a = test_values(24, 21);
    let b = test_values(36, 22);
    let gy = test_values(60, 23);
    let (da, db) = backward(&gy, a_dims, b_dims).unwrap();
    let loss = |a: &[f64], b: &[f64]| -> f64 {
        let y = forward(a, a_dims, b, b_dims).unwrap();
        y.iter().zip(&gy).map(|(u, v)| u * v).sum()
    };
    assert_grad_close("da", &da, &numeric_grad(&a, 1e-6, |v| loss(v, &b)), 1e-9);
    assert_grad_close("db", &db, &numeric_grad(&b, 1e-6, |v| loss(&a, v)), 1e-9);
}

fn run_case<T: Real>(case: &Case) -> Vec<Check> {
    let (a_dims, b_dims) = (case.dims::<5>("a"), case.dims::<5>("b"));
    let y = forward(
        &case.values::<T>("a"),
        a_dims,
        &case.values::<T>("b"),
        b_dims,
    )
    .unwrap();
    let (da, db) = backward(&case.values::<T>("gy"), a_dims, b_dims).unwrap();
    vec![
        case.check("y", &y),
        case.check("da", &da),
        case.check("db", &db),
    ]
}

#[test]
fn matches_pytorch_fixtures() {
    run_cases(
        "concat::matches_pytorch_fixtures",
        &["concat"],
        run_case::<f64>,
        run_case::<f32>,
    );
}
