//! Sine, cosine and exponential from +, − and × only. Rust's `f64::sin`/`exp` call the
//! platform's libm, whose last bit may differ between C libraries; these series give the same
//! bits on every IEEE-754 machine, so the phantom's labels and weights never depend on libm.

/// `(sin x, cos x)` for |x| ≤ 1 rad (tooth rotations are a few degrees) by Taylor series to
/// the x¹⁷ term: error below 1e-15.
pub(crate) fn sin_cos(x: f64) -> (f64, f64) {
    debug_assert!(x.abs() <= 1.0, "sin_cos is meant for small angles, got {x}");
    let x2 = x * x;

    // Horner form of Σ (−1)^n x^(2n+1) / (2n+1)! and Σ (−1)^n x^(2n) / (2n)!.
    let mut sin = 1.0;
    let mut cos = 1.0;
    for n in (1..=8).rev() {
        let n = n as f64;
        sin = 1.0 - x2 / ((2.0 * n) * (2.0 * n + 1.0)) * sin;
        cos = 1.0 - x2 / ((2.0 * n - 1.0) * (2.0 * n)) * cos;
    }
    (x * sin, cos)
}

/// `exp(−t)` for t ≥ 0: the series on t / 2^m (below 1/16), squared back m times.
pub(crate) fn exp_neg(t: f64) -> f64 {
    debug_assert!(t >= 0.0);
    if t > 700.0 {
        return 0.0;
    }
    let mut m = 0;
    let mut r = t;
    while r > 0.0625 {
        r *= 0.5;
        m += 1;
    }

    let mut e = 1.0;
    for n in (1..=10).rev() {
        e = 1.0 - r / n as f64 * e;
    }
    for _ in 0..m {
        e *= e;
    }
    e
}

/// Degrees to radians.
pub(crate) fn radians(degrees: f64) -> f64 {
    degrees * (std::f64::consts::PI / 180.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sin_cos_match_std_on_small_angles() {
        for step in -100..=100 {
            let x = step as f64 / 100.0;
            let (s, c) = sin_cos(x);
            assert!((s - x.sin()).abs() < 1e-14, "sin({x}) = {s}");
            assert!((c - x.cos()).abs() < 1e-14, "cos({x}) = {c}");
        }
    }

    #[test]
    fn exp_neg_matches_std() {
        for step in 0..=400 {
            let t = step as f64 * 0.05;
            let e = exp_neg(t);
            let reference = (-t).exp();
            assert!(
                (e - reference).abs() <= 1e-13 * reference.max(1e-300),
                "exp(-{t}) = {e}"
            );
        }
        assert_eq!(exp_neg(0.0), 1.0);
        assert_eq!(exp_neg(1000.0), 0.0);
    }
}
