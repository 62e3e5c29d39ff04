//! The checks both convolution test suites (conv3d and conv_transpose3d) run on their CPU
//! passes: against a term-by-term definition, against central differences and against the
//! PyTorch fixtures.

use crate::fixtures::{Case, Tolerance};
use crate::ops::conv3d::{cpu as conv_cpu, Conv3dShape};
use crate::ops::conv_transpose3d::{cpu as transpose_cpu, ConvTranspose3dShape};
use crate::ops::gradcheck::{assert_close, numeric_grads3, test_values};
use crate::ops::Real;

/// The fast paths against the f64 definition, computed in f64.
pub(crate) const F64: Tolerance = Tolerance {
    rtol: 1e-12,
    atol_rel: 1e-12,
    atol_abs: 0.0,
};

/// The fast paths against the f64 definition, computed in f32.
pub(crate) const F32: Tolerance = Tolerance {
    rtol: 1e-4,
    atol_rel: 1e-5,
    atol_abs: 0.0,
};

/// y, dx, dweight, dbias.
pub(crate) type Passes = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

/// A convolution shape with its CPU passes.
pub(crate) trait ConvPasses: std::fmt::Debug {
    fn lens(&self) -> [usize; 4];
    fn forward<T: Real>(&self, x: &[T], w: &[T], b: Option<&[T]>, y: &mut [T]);
    fn backward_input<T: Real>(&self, gy: &[T], w: &[T], dx: &mut [T]);
    fn backward_weight<T: Real>(&self, x: &[T], gy: &[T], dw: &mut [T], db: Option<&mut [T]>);
}

/// Implements [`ConvPasses`] for `$shape` with the functions of the CPU module `$cpu`.
macro_rules! conv_passes {
    ($shape:ty, $cpu:ident) => {
        impl ConvPasses for $shape {
            fn lens(&self) -> [usize; 4] {
                let len = |n: Option<usize>| n.expect("shape fits in memory");
                let [x, w, y] = [self.input_len(), self.weight_len(), self.output_len()].map(len);
                [x, w, self.cout, y]
            }
            fn forward<T: Real>(&self, x: &[T], w: &[T], b: Option<&[T]>, y: &mut [T]) {
                $cpu::forward(self, x, w, b, y);
            }
            fn backward_input<T: Real>(&self, gy: &[T], w: &[T], dx: &mut [T]) {
                $cpu::backward_input(self, gy, w, dx);
            }
            fn backward_weight<T: Real>(
                &self,
                x: &[T],
                gy: &[T],
                dw: &mut [T],
                db: Option<&mut [T]>,
            ) {
                $cpu::backward_weight(self, x, gy, dw, db);
            }
        }
    };
}

conv_passes!(Conv3dShape, conv_cpu);
conv_passes!(ConvTranspose3dShape, transpose_cpu);

/// Seeded x, weight, bias and gy for `s`, one seed each from `seed` on.
pub(crate) fn inputs(s: &impl ConvPasses, seed: u64) -> [Vec<f64>; 4] {
    let lens = s.lens();
    [0, 1, 2, 3].map(|i| test_values(lens[i], seed + i as u64))
}

/// The fast passes in `T` on the inputs rounded to `T`, widened back for comparison.
pub(crate) fn fast<T: Real>(
    s: &impl ConvPasses,
    x: &[f64],
    w: &[f64],
    b: Option<&[f64]>,
    gy: &[f64],
) -> Passes {
    let round = |v: &[f64]| -> Vec<T> { v.iter().map(|&x| T::of(x)).collect() };
    let widen = |v: Vec<T>| -> Vec<f64> { v.into_iter().map(T::f64).collect() };
    let (x, w, gy, b) = (round(x), round(w), round(gy), b.map(round));
    let [_, _, cout, out_len] = s.lens();
    let mut y = vec![T::nan(); out_len];
    let mut dx = vec![T::nan(); x.len()];
    let mut dw = vec![T::nan(); w.len()];
    let mut db = vec![T::nan(); cout];
    s.forward(&x, &w, b.as_deref(), &mut y);
    s.backward_input(&gy, &w, &mut dx);
    s.backward_weight(&x, &gy, &mut dw, Some(&mut db));
    (widen(y), widen(dx), widen(dw), widen(db))
}

/// The fast passes in f64 and in f32 against `want`, the definition on the same inputs.
pub(crate) fn assert_matches_definition(
    s: &impl ConvPasses,
    inputs: &[Vec<f64>; 4],
    want: &Passes,
) {
    let [x, w, b, gy] = inputs;
    for (precision, got, tol) in [
        ("f64", fast::<f64>(s, x, w, Some(b), gy), F64),
        ("f32", fast::<f32>(s, x, w, Some(b), gy), F32),
    ] {
        let what = format!("{s:?} {precision}");
        assert_close(&format!("{what} y"), &got.0, &want.0, tol);
        assert_close(&format!("{what} dx"), &got.1, &want.1, tol);
        assert_close(&format!("{what} dweight"), &got.2, &want.2, tol);
        assert_close(&format!("{what} dbias"), &got.3, &want.3, tol);
    }
}

/// L(x, w, b) = sum(y * gy); central differences of L against the analytic gradients.
pub(crate) fn assert_gradients_match_finite_differences(s: &impl ConvPasses, seed: u64) {
    let [x, w, b, gy] = inputs(s, seed);
    let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
        let mut y = vec![0.0; gy.len()];
        s.forward(x, w, Some(b), &mut y);
        y.iter().zip(&gy).map(|(a, g)| a * g).sum()
    };
    let (_, dx, dw, db) = fast::<f64>(s, &x, &w, Some(&b), &gy);
    let h = 1e-5;
    let tol = Tolerance {
        rtol: 1e-7,
        atol_rel: 1e-8,
        atol_abs: 0.0,
    };
    let [numeric_dx, numeric_dw, numeric_db] = numeric_grads3([&x, &w, &b], h, loss);
    assert_close(&format!("{s:?} dx vs fd"), &dx, &numeric_dx, tol);
    assert_close(&format!("{s:?} dweight vs fd"), &dw, &numeric_dw, tol);
    assert_close(&format!("{s:?} dbias vs fd"), &db, &numeric_db, tol);
}

/// A per-axis parameter (`kernel_size`, `stride`, ...) that must be equal on all axes.
pub(crate) fn cubic(case: &Case, key: &str) -> usize {
    let param = &case.meta.params[key];
    let axes: Vec<u64> = match param {
        serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_u64()).collect(),
        v => v.as_u64().into_iter().collect(),
    };
    assert!(
        !axes.is_empty() && axes.iter().all(|&a| a == axes[0]),
        "{}: {key} = {param} is not one size on all axes; these kernels take cubic kernels",
        case.name()
    );
    axes[0] as usize
}

/// Checks a fixture case's groups, channels and bias flag against `s`, then the fast passes
/// in f64 and f32 against the case's y, dx, dweight and (with a bias) dbias.
pub(crate) fn assert_matches_fixture(case: &Case, s: &impl ConvPasses) {
    let (name, p) = (case.name(), &case.meta.params);
    let [_, _, cout, _] = s.lens();
    assert_eq!(p["groups"].as_u64(), Some(1), "{name}: groups");
    assert_eq!(
        p["in_channels"].as_u64(),
        Some(case.shape("x")[1] as u64),
        "{name}"
    );
    assert_eq!(p["out_channels"].as_u64(), Some(cout as u64), "{name}");

    let has_bias = p["bias"].as_bool().unwrap_or(true);
    let bias = has_bias.then(|| case.f64("bias"));
    let (x, wt, gy) = (case.f64("x"), case.f64("weight"), case.f64("gy"));
    let tolerance = &case.meta.tolerance;
    for (precision, got, tol) in [
        ("f64", fast::<f64>(s, x, wt, bias, gy), tolerance.f64),
        ("f32", fast::<f32>(s, x, wt, bias, gy), tolerance.f32),
    ] {
        let what = format!("{name} {precision}");
        assert_close(&format!("{what} y"), &got.0, case.f64("y"), tol);
        assert_close(&format!("{what} dx"), &got.1, case.f64("dx"), tol);
        assert_close(&format!("{what} dweight"), &got.2, case.f64("dweight"), tol);
        if has_bias {
            assert_close(&format!("{what} dbias"), &got.3, case.f64("dbias"), tol);
        }
    }
    println!("{name}: y, dx, dweight, dbias match in f64 and f32");
}
