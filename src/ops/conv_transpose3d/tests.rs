use super::{cpu, ConvTranspose3dShape};
use crate::ops::conv3d::test_support::{
    assert_close, fixture_cases, to_f32, to_f64, values, Tolerance,
};

/// n, cin, cout, input [d, h, w], [k, stride, pad, output_padding].
fn shape(
    n: usize,
    cin: usize,
    cout: usize,
    dhw: [usize; 3],
    kspo: [usize; 4],
) -> ConvTranspose3dShape {
    let [d, h, w] = dhw;
    let [k, stride, pad, output_padding] = kspo;
    ConvTranspose3dShape {
        n,
        cin,
        cout,
        d,
        h,
        w,
        k,
        stride,
        pad,
        output_padding,
    }
}

/// y, dx, dweight, dbias.
type Passes = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

/// The definition, term by term: every (input voxel, output channel, kernel offset) adds
/// x * w to its output voxel, and takes its share of gy back into dx and dweight.
fn naive(s: &ConvTranspose3dShape, x: &[f64], w: &[f64], b: &[f64], gy: &[f64]) -> Passes {
    let [od, oh, ow] = s.out_dims();
    let k = s.k;
    let mut y = vec![0.0; s.output_len().unwrap()];
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    let mut db = vec![0.0; s.cout];
    for n in 0..s.n {
        for o in 0..s.cout {
            let plane = (n * s.cout + o) * od * oh * ow;
            y[plane..plane + od * oh * ow].fill(b[o]);
            db[o] += gy[plane..plane + od * oh * ow].iter().sum::<f64>();
        }
    }
    let out_index = |i: usize, a: usize, bound: usize| -> Option<usize> {
        let j = (i * s.stride + a) as isize - s.pad as isize;
        (0..bound as isize).contains(&j).then_some(j as usize)
    };
    for n in 0..s.n {
        for ci in 0..s.cin {
            for (i, j, l) in
                (0..s.d).flat_map(|i| (0..s.h).flat_map(move |j| (0..s.w).map(move |l| (i, j, l))))
            {
                let xi = (((n * s.cin + ci) * s.d + i) * s.h + j) * s.w + l;
                for o in 0..s.cout {
                    for (a, bb, c) in (0..k)
                        .flat_map(|a| (0..k).flat_map(move |bb| (0..k).map(move |c| (a, bb, c))))
                    {
                        let (Some(z), Some(r), Some(q)) = (
                            out_index(i, a, od),
                            out_index(j, bb, oh),
                            out_index(l, c, ow),
                        ) else {
                            continue;
                        };
                        let yi = (((n * s.cout + o) * od + z) * oh + r) * ow + q;
                        let wi = (((ci * s.cout + o) * k + a) * k + bb) * k + c;
                        y[yi] += x[xi] * w[wi];
                        dx[xi] += gy[yi] * w[wi];
                        dw[wi] += gy[yi] * x[xi];
                    }
                }
            }
        }
    }
    (y, dx, dw, db)
}

fn fast_f64(
    s: &ConvTranspose3dShape,
    x: &[f64],
    w: &[f64],
    b: Option<&[f64]>,
    gy: &[f64],
) -> Passes {
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
fn fast_f32(
    s: &ConvTranspose3dShape,
    x: &[f64],
    w: &[f64],
    b: Option<&[f64]>,
    gy: &[f64],
) -> Passes {
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
fn matches_the_definition() {
    let shapes = [
        // The U-Net's upsampling, on odd sizes, and with one input channel.
        shape(2, 3, 4, [3, 5, 7], [2, 2, 0, 0]),
        shape(1, 1, 5, [1, 3, 2], [2, 2, 0, 0]),
        // k == stride with output_padding: the last planes hold only the bias.
        shape(1, 3, 2, [2, 3, 4], [2, 2, 0, 1]),
        // Overlapping footprints, cropping, output_padding, kernel smaller than stride.
        shape(2, 3, 2, [3, 4, 5], [3, 2, 1, 1]),
        shape(1, 2, 3, [4, 3, 5], [3, 1, 1, 0]),
        shape(1, 2, 2, [3, 3, 4], [4, 3, 2, 2]),
        shape(1, 3, 2, [2, 4, 3], [1, 2, 0, 1]),
        // Deep enough that the strided gradient correlation unfolds slabs of several planes.
        shape(1, 2, 3, [21, 3, 4], [3, 2, 1, 1]),
        // Enough channels that one image splits into several tiles.
        shape(2, 40, 24, [4, 6, 9], [2, 2, 0, 0]),
    ];
    for (i, s) in shapes.iter().enumerate() {
        s.validate().unwrap();
        let x = values(50 + i as u64, s.input_len().unwrap());
        let w = values(60 + i as u64, s.weight_len().unwrap());
        let b = values(70 + i as u64, s.cout);
        let gy = values(80 + i as u64, s.output_len().unwrap());
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

        let no_bias = naive(s, &x, &w, &vec![0.0; s.cout], &gy);
        let got = fast_f64(s, &x, &w, None, &gy);
        assert_close(
            &format!("{s:?} y without bias"),
            &got.0,
            &no_bias.0,
            Tolerance::F64,
        );
    }
}

/// L(x, w, b) = sum(y * gy); central differences of L against the analytic gradients, for
/// the fast path and for the general path.
#[test]
fn gradients_match_finite_differences() {
    for (i, s) in [
        shape(2, 2, 3, [2, 3, 2], [2, 2, 0, 0]),
        shape(1, 2, 2, [2, 3, 3], [3, 2, 1, 1]),
    ]
    .iter()
    .enumerate()
    {
        let x = values(90 + i as u64, s.input_len().unwrap());
        let w = values(91 + i as u64, s.weight_len().unwrap());
        let b = values(92 + i as u64, s.cout);
        let gy = values(93 + i as u64, s.output_len().unwrap());
        let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
            let mut y = vec![0.0; gy.len()];
            cpu::forward(s, x, w, Some(b), &mut y);
            y.iter().zip(&gy).map(|(a, g)| a * g).sum()
        };
        let (_, dx, dw, db) = fast_f64(s, &x, &w, Some(&b), &gy);
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
        assert_close(&format!("{s:?} dx vs fd"), &dx, &numeric(0, x.len()), tol);
        assert_close(
            &format!("{s:?} dweight vs fd"),
            &dw,
            &numeric(1, w.len()),
            tol,
        );
        assert_close(
            &format!("{s:?} dbias vs fd"),
            &db,
            &numeric(2, b.len()),
            tol,
        );
    }
}

#[test]
fn impossible_shapes_are_errors() {
    let good = shape(1, 4, 2, [3, 5, 7], [2, 2, 0, 0]);
    good.validate().unwrap();
    assert_eq!(good.out_dims(), [6, 10, 14]);
    assert_eq!(
        shape(1, 1, 1, [3, 3, 3], [3, 2, 1, 1]).out_dims(),
        [6, 6, 6]
    );

    let cases = [
        (
            ConvTranspose3dShape { cout: 0, ..good },
            "output channels cout is 0",
        ),
        (ConvTranspose3dShape { stride: 0, ..good }, "stride is 0"),
        (
            ConvTranspose3dShape {
                output_padding: 2,
                ..good
            },
            "output_padding 2 must be smaller",
        ),
        (
            ConvTranspose3dShape {
                d: 1,
                pad: 1,
                ..good
            },
            "depth 1 gives no output",
        ),
        (
            ConvTranspose3dShape {
                n: usize::MAX / 2,
                ..good
            },
            "more elements than can be",
        ),
    ];
    for (s, expected) in cases {
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains(expected), "{s:?}: {err}");
        assert!(err.starts_with("conv_transpose3d: "), "{err}");
    }
}

#[test]
fn pytorch_fixtures() {
    let Some(cases) = fixture_cases("conv_transpose3d") else {
        return;
    };
    assert!(
        !cases.is_empty(),
        "the manifest holds no conv_transpose3d case"
    );
    for case in &cases {
        let p = &case.params;
        assert_eq!(case.cubic("dilation"), 1, "{}: dilation", case.name);
        assert_eq!(p["groups"].as_u64(), Some(1), "{}: groups", case.name);
        let [n, cin, d, h, w] = case.shape("x").try_into().expect("x is 5-D");
        let s = ConvTranspose3dShape {
            n,
            cin,
            cout: case.shape("weight")[1],
            d,
            h,
            w,
            k: case.cubic("kernel_size"),
            stride: case.cubic("stride"),
            pad: case.cubic("padding"),
            output_padding: case.cubic("output_padding"),
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
