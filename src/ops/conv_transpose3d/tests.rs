use super::ConvTranspose3dShape;
use crate::fixtures::manifest_or_skip;
use crate::ops::conv3d::checks::{
    assert_gradients_match_finite_differences, assert_matches_definition, assert_matches_fixture,
    cubic, fast, inputs, Passes, F64,
};
use crate::ops::gradcheck::assert_close;

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
        let inputs = inputs(s, 50 + 4 * i as u64);
        let [x, w, b, gy] = &inputs;
        assert_matches_definition(s, &inputs, &naive(s, x, w, b, gy));

        let no_bias = naive(s, x, w, &vec![0.0; s.cout], gy);
        let got = fast::<f64>(s, x, w, None, gy);
        assert_close(&format!("{s:?} y without bias"), &got.0, &no_bias.0, F64);
    }
}

/// L(x, w, b) = sum(y * gy); central differences of L against the analytic gradients, for
/// the fast path and for the general path.
#[test]
fn gradients_match_finite_differences() {
    assert_gradients_match_finite_differences(&shape(2, 2, 3, [2, 3, 2], [2, 2, 0, 0]), 90);
    assert_gradients_match_finite_differences(&shape(1, 2, 2, [2, 3, 3], [3, 2, 1, 1]), 94);
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
    let Some(manifest) = manifest_or_skip("conv_transpose3d::pytorch_fixtures") else {
        return;
    };
    let mut seen = 0;
    for meta in manifest.cases(&["conv_transpose3d"]) {
        let case = manifest.open(meta).unwrap();
        assert_eq!(cubic(&case, "dilation"), 1, "{}: dilation", case.name());
        let [n, cin, d, h, w] = case.dims("x");
        let s = ConvTranspose3dShape {
            n,
            cin,
            cout: case.shape("weight")[1],
            d,
            h,
            w,
            k: cubic(&case, "kernel_size"),
            stride: cubic(&case, "stride"),
            pad: cubic(&case, "padding"),
            output_padding: cubic(&case, "output_padding"),
        };
        s.validate().unwrap();
        assert_matches_fixture(&case, &s);
        seen += 1;
    }
    assert!(seen > 0, "the manifest holds no conv_transpose3d case");
}
