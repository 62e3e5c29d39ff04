use super::checks::{
    assert_gradients_match_finite_differences, assert_matches_definition, assert_matches_fixture,
    cubic, fast, inputs, Passes, F64,
};
use super::Conv3dShape;
use crate::fixtures::manifest_or_skip;
use crate::ops::gradcheck::assert_close;

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
        let inputs = inputs(s, 10 + 4 * i as u64);
        let [x, w, b, gy] = &inputs;
        assert_matches_definition(s, &inputs, &naive(s, x, w, b, gy));
    }
}

#[test]
fn forward_without_bias_is_the_bias_free_sum() {
    let s = shape(1, 2, 3, [3, 4, 5], 3, 1);
    let [x, w, _, gy] = inputs(&s, 1);
    let want = naive(&s, &x, &w, &[0.0; 3], &gy);
    let got = fast::<f64>(&s, &x, &w, None, &gy);
    assert_close("y without bias", &got.0, &want.0, F64);
}

/// L(x, w, b) = sum(y * gy); central differences of L against the analytic gradients.
#[test]
fn gradients_match_finite_differences() {
    assert_gradients_match_finite_differences(&shape(2, 2, 3, [3, 4, 5], 3, 1), 5);
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
    let Some(manifest) = manifest_or_skip("conv3d::pytorch_fixtures") else {
        return;
    };
    let mut seen = 0;
    for meta in manifest.cases(&["conv3d"]) {
        let case = manifest.open(meta).unwrap();
        for key in ["stride", "dilation"] {
            assert_eq!(cubic(&case, key), 1, "{}: {key} must be 1", case.name());
        }
        let [n, cin, d, h, w] = case.dims("x");
        let s = Conv3dShape {
            n,
            cin,
            cout: case.shape("weight")[0],
            d,
            h,
            w,
            k: cubic(&case, "kernel_size"),
            pad: cubic(&case, "padding"),
        };
        s.validate().unwrap();
        assert_matches_fixture(&case, &s);
        seen += 1;
    }
    assert!(seen > 0, "the manifest holds no conv3d case");
}

#[test]
fn weight_gradient_is_identical_on_any_number_of_threads() {
    // Many tiles (a deep volume, 9 channels) so the tasks really spread over the groups.
    let s = shape(2, 9, 9, [13, 17, 19], 3, 1);
    let x: Vec<f32> = crate::ops::gradcheck::test_values(s.input_len().unwrap(), 11)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let gy: Vec<f32> = crate::ops::gradcheck::test_values(s.output_len().unwrap(), 12)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut dw = vec![0.0f32; s.weight_len().unwrap()];
        let mut db = vec![0.0f32; s.cout];
        pool.install(|| super::cpu::backward_weight(&s, &x, &gy, &mut dw, Some(&mut db)));
        (dw, db)
    };
    let one = run(1);
    assert_eq!(one, run(3));
    assert_eq!(one, run(8));
}
