//! Test support shared by the op and optimizer tests: seeded input values and central
//! differences to check analytic gradients against. The PyTorch fixtures are read through
//! [`crate::fixtures`].

use crate::fixtures::{compare, Tolerance};
use crate::rng::splitmix64;

/// `n` seeded values in [-1, 1): the same seed gives the same values everywhere.
pub(crate) fn test_values(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|_| (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        .collect()
}

/// Central differences of a scalar function: `(f(x + h·e_i) − f(x − h·e_i)) / 2h` for each `i`.
pub(crate) fn numeric_grad(x: &[f64], h: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut probe = x.to_vec();
    (0..x.len())
        .map(|i| {
            probe[i] = x[i] + h;
            let plus = f(&probe);
            probe[i] = x[i] - h;
            let minus = f(&probe);
            probe[i] = x[i];
            (plus - minus) / (2.0 * h)
        })
        .collect()
}

/// [`numeric_grad`] of a function of three slices (e.g. x, weight, bias), one per slice.
pub(crate) fn numeric_grads3(
    args: [&[f64]; 3],
    h: f64,
    f: impl Fn(&[f64], &[f64], &[f64]) -> f64,
) -> [Vec<f64>; 3] {
    let [a, b, c] = args;
    [
        numeric_grad(a, h, |v| f(v, b, c)),
        numeric_grad(b, h, |v| f(a, v, c)),
        numeric_grad(c, h, |v| f(a, b, v)),
    ]
}

/// Asserts that an analytic gradient matches central differences within `tol` (relative to the
/// gradient's largest magnitude, and never looser than `tol` absolute).
pub(crate) fn assert_grad_close(what: &str, analytic: &[f64], numeric: &[f64], tol: f64) {
    assert_eq!(analytic.len(), numeric.len(), "{what}: lengths");
    let scale = numeric.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
        assert!(
            (a - n).abs() <= tol * scale,
            "{what}[{i}]: analytic {a:e}, numeric {n:e}"
        );
    }
}

/// Panics with the first mismatches unless `compare` accepts `got` against `want`.
pub(crate) fn assert_close(what: &str, got: &[f64], want: &[f64], tol: Tolerance) {
    if let Err(e) = compare(what, got, want, tol) {
        panic!("{e}");
    }
}
