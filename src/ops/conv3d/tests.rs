use super::test_support::{assert_close, fixture_cases, to_f32, to_f64, values, Tolerance};
use super::{cpu, Conv3dShape};

fn shape(n: usize, cin: usize, cout: usize, dhw: [usize; 3], k: usize, pad: usize) -> Conv3dShape {
    let [d, h, w] = dhw;
    Conv3dShape {
        n,
        cin,
        cout,
        d,
        h,
        w,
        k,
        pad,
    }
}

/// y, dx, dweight, dbias.
type Passes = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

/// The definition, term by term: every (output voxel, input channel, kernel offset) triple
/// adds its product to y and scatters its share of gy into dx and dweight.
fn naive(s: &Conv3dShape, x: &[f64], w: &[f64], b: &[f64], gy: &[f64]) -> Passes {
    let [od, oh, ow] = s.out_dims();
    let (k, pad) = (s.k as isize, s.pad as isize);
    let mut y = vec![0.0; s.output_len().unwrap()];
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    let mut db = vec![0.0; s.cout];
    let x_at = |n: usize, c: usize, z: isize, r: isize, q: isize| -> Option<usize> {
        let inside = (0..s.d as isize).contains(&z)
            && (0..s.h as isize).contains(&r)
            && (0..s.w as isize).contains(&q);
        inside.then(|| (((n * s.cin + c) * s.d + z as usize) * s.h + r as usize) * s.w + q as usize)
    };
    for n in 0..s.n {
        for co in 0..s.cout {
            for (i, j, l) in
                (0..od).flat_map(|i| (0..oh).flat_map(move |j| (0..ow).map(move |l| (i, j, l))))
            {
                let yi = (((n * s.cout + co) * od + i) * oh + j) * ow + l;
                let mut acc = b[co];
                db[co] += gy[yi];
                for ci in 0..s.cin {
                    for (a, bb, c) in (0..k)
                        .flat_map(|a| (0..k).flat_map(move |bb| (0..k).map(move |c| (a, bb, c))))
                    {
                        let wi = (((co * s.cin + ci) * s.k + a as usize) * s.k + bb as usize) * s.k
                            + c as usize;
                        let src = x_at(
                            n,
                            ci,
                            i as isize + a - pad,
                            j as isize + bb - pad,
                            l as isize + c - pad,
                        );
                        if let Some(xi) = src {
                            acc += x[xi] * w[wi];
                            dx[xi] += gy[yi] * w[wi];
                            dw[wi] += gy[yi] * x[xi];
                        }
                    }
                }
                y[yi] = acc;
            }
        }
    }
    (y, dx, dw, db)
}

fn fast_f64(s: &Conv3dShape, x: &[f64], w: &[f64], b: Option<&[f64]>, gy: &[f64]) -> Passes {
    let mut y = vec![f64::NAN; s.output_len().unwrap()];
    let mut dx = vec![f64::NAN; x.len()];
    let mut dw = vec![f64::NAN; w.len()];
    let mut db = vec![f64::NAN; s.cout];
    cpu::forward(s, x, w, b, &mut y);
    cpu::backward_input(s, gy, w, &mut dx);
    cpu::backward_weight(s, x, gy, &mut dw, Some(&mut db));
    (y, dx, dw, db)
}

/// The same passes in f32 on the inputs rounded to f32, widened back for comparison.
fn fast_f32(s: &Conv3dShape, x: &[f64], w: &[f64], b: Option<&[f64]>, gy: &[f64]) -> Passes {
    let (x, w, gy) = (to_f32(x), to_f32(w), to_f32(gy));
    let b = b.map(to_f32);
    let mut y = vec![f32::NAN; s.output_len().unwrap()];
    let mut dx = vec![f32::NAN; x.len()];
    let mut dw = vec![f32::NAN; w.len()];
    let mut db = vec![f32::NAN; s.cout];
    cpu::forward(s, &x, &w, b.as_deref(), &mut y);
    cpu::backward_input(s, &gy, &w, &mut dx);
    cpu::backward_weight(s, &x, &gy, &mut dw, Some(&mut db));
    (to_f64(&y), to_f64(&dx), to_f64(&dw), to_f64(&db))
}

fn compare(what: &str, got: &Passes, want: &Passes, tol: Tolerance) {
    assert_close(&format!("{what} y"), &got.0, &want.0, tol);
    assert_close(&format!("{what} dx"), &got.1, &want.1, tol);
    assert_close(&format!("{what} dweight"), &got.2, &want.2, tol);
    assert_close(&format!("{what} dbias"), &got.3, &want.3, tol);
}

#[test]
fn matches_the_definition_on_odd_shapes() {
    let shapes = [
        shape(2, 3, 4, [5, 6, 7], 3, 1),
        shape(1, 1, 9, [1, 6, 7], 3, 1),
        shape(2, 5, 3, [4, 3, 6], 1, 0),
        shape(1, 2, 3, [4, 5, 3], 3, 0),
        shape(1, 2, 2, [2, 3, 4], 3, 3),
        shape(1, 4, 2, [3, 5, 5], 5, 2),
        // Enough input channels that one image splits into several tiles of whole rows.
        shape(2, 20, 6, [3, 17, 19], 3, 1),
        // Deep enough that slabs of several output planes share their unfolded input planes.
        shape(1, 2, 3, [41, 9, 10], 3, 1),
        shape(1, 3, 2, [23, 4, 5], 3, 2),
    ];
    for (i, s) in shapes.iter().enumerate() {
        s.validate().unwrap();
        let x = values(10 + i as u64, s.input_len().unwrap());
        let w = values(20 + i as u64, s.weight_len().unwrap());
        let b = values(30 + i as u64, s.cout);
        let gy = values(40 + i as u64, s.output_len().unwrap());
        let want = naive(s, &x, &w, &b, &gy);
        compare(
            &format!("{s:?} f64"),
            &fast_f64(s, &x, &w, Some(&b), &gy),
            &want,
            Tolerance::F64,
        );
        compare(
            &format!("{s:?} f32"),
            &fast_f32(s, &x, &w, Some(&b), &gy),
            &want,
            Tolerance::F32,
        );
    }
}

#[test]
fn forward_without_bias_is_the_bias_free_sum() {
    let s = shape(1, 2, 3, [3, 4, 5], 3, 1);
    let x = values(1, s.input_len().unwrap());
    let w = values(2, s.weight_len().unwrap());
    let gy = values(3, s.output_len().unwrap());
    let want = naive(&s, &x, &w, &[0.0; 3], &gy);
    let got = fast_f64(&s, &x, &w, None, &gy);
    assert_close("y without bias", &got.0, &want.0, Tolerance::F64);
}

/// L(x, w, b) = sum(y * gy); central differences of L against the analytic gradients.
#[test]
fn gradients_match_finite_differences() {
    let s = shape(2, 2, 3, [3, 4, 5], 3, 1);
    let x = values(5, s.input_len().unwrap());
    let w = values(6, s.weight_len().unwrap());
    let b = values(7, s.cout);
    let gy = values(8, s.output_len().unwrap());
    let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
        let mut y = vec![0.0; gy.len()];
        cpu::forward(&s, x, w, Some(b), &mut y);
        y.iter().zip(&gy).map(|(a, g)| a * g).sum()
    };
    let (_, dx, dw, db) = fast_f64(&s, &x, &w, Some(&b), &gy);
    let h = 1e-5;
    let numeric = |which: usize, len: usize| -> Vec<f64> {
        (0..len)
            .map(|i| {
                let mut p = [x.clone(), w.clone(), b.clone()];
                let mut m = p.clone();
                p[which][i] += h;
                m[which][i] -= h;
                (loss(&p[0], &p[1], &p[2]) - loss(&m[0], &m[1], &m[2])) / (2.0 * h)
            })
            .collect()
    };
    let tol = Tolerance {
        rtol: 1e-7,
        atol_rel: 1e-8,
        atol_abs: 0.0,
    };
    assert_close("dx vs finite differences", &dx, &numeric(0, x.len()), tol);
    assert_close(
        "dweight vs finite differences",
        &dw,
        &numeric(1, w.len()),
        tol,
    );
    assert_close(
        "dbias vs finite differences",
        &db,
        &numeric(2, b.len()),
        tol,
    );
}

#[test]
fn impossible_shapes_are_errors() {
    let good = shape(1, 2, 3, [4, 5, 6], 3, 1);
    good.validate().unwrap();
    assert_eq!(good.out_dims(), [4, 5, 6]);
    assert_eq!(shape(1, 2, 3, [4, 5, 6], 3, 0).out_dims(), [2, 3, 4]);

    let cases = [
        (Conv3dShape { cin: 0, ..good }, "input channels cin is 0"),
        (Conv3dShape { w: 0, ..good }, "width w is 0"),
        (Conv3dShape { k: 2, ..good }, "k = 2 is even"),
        (
            Conv3dShape {
                d: 1,
                pad: 0,
                ..good
            },
            "depth 1 with padding 0",
        ),
        (
            Conv3dShape {
                n: usize::MAX / 2,
                ..good
            },
            "more elements than can be addressed",
        ),
    ];
    for (s, expected) in cases {
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains(expected), "{s:?}: {err}");
        assert!(err.starts_with("conv3d: "), "{err}");
    }
}

#[test]
fn pytorch_fixtures() {
    let Some(cases) = fixture_cases("conv3d") else {
        return;
    };
    assert!(!cases.is_empty(), "the manifest holds no conv3d case");
    for case in &cases {
        let p = &case.params;
        for key in ["stride", "dilation"] {
            assert_eq!(case.cubic(key), 1, "{}: {key} must be 1", case.name);
        }
        assert_eq!(p["groups"].as_u64(), Some(1), "{}: groups", case.name);
        let [n, cin, d, h, w] = case.shape("x").try_into().expect("x is 5-D");
        let s = Conv3dShape {
            n,
            cin,
            cout: case.shape("weight")[0],
            d,
            h,
            w,
            k: case.cubic("kernel_size"),
            pad: case.cubic("padding"),
        };
        s.validate().unwrap();
        assert_eq!(
            p["in_channels"].as_u64(),
            Some(s.cin as u64),
            "{}",
            case.name
        );
        assert_eq!(
            p["out_channels"].as_u64(),
            Some(s.cout as u64),
            "{}",
            case.name
        );

        let has_bias = p["bias"].as_bool().unwrap_or(true);
        let bias = has_bias.then(|| case.tensor("bias"));
        let (x, wt, gy) = (case.tensor("x"), case.tensor("weight"), case.tensor("gy"));
        for (precision, got, tol) in [
            ("f64", fast_f64(&s, x, wt, bias, gy), case.f64_tol),
            ("f32", fast_f32(&s, x, wt, bias, gy), case.f32_tol),
        ] {
            let what = format!("{} {precision}", case.name);
            assert_close(&format!("{what} y"), &got.0, case.tensor("y"), tol);
            assert_close(&format!("{what} dx"), &got.1, case.tensor("dx"), tol);
            assert_close(
                &format!("{what} dweight"),
                &got.2,
                case.tensor("dweight"),
                tol,
            );
            if has_bias {
                assert_close(&format!("{what} dbias"), &got.3, case.tensor("dbias"), tol);
            }
        }
        println!("{}: y, dx, dweight, dbias match in f64 and f32", case.name);
    }
}
