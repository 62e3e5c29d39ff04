//! Native CPU kernels of conv3d, generic over f32 (the engine) and f64 (the checks).
//!
//! All three passes are cross-correlations run by [`Correlation`]: the forward pass directly,
//! the input gradient as a correlation of `gy` with the transposed, spatially flipped weight
//! and padding `k - 1 - pad`, the weight gradient as `dW = gY * colᵀ` summed over tiles.

use super::correlation::{channel_sums, Correlation};
use super::Conv3dShape;
use crate::ops::Real;

fn correlation(s: &Conv3dShape) -> Correlation {
    Correlation {
        n: s.n,
        cin: s.cin,
        cout: s.cout,
        input: [s.d, s.h, s.w],
        output: s.out_dims(),
        k: s.k,
        stride: 1,
        pad: s.pad as isize,
    }
}

/// `y = conv3d(x, weight) + bias` (overwrites `y`).
/// `x`: `N,Cin,D,H,W`; `weight`: `Cout,Cin,k,k,k`; `bias`: `Cout`; `y`: `N,Cout,D',H',W'`.
pub fn forward<T: Real>(s: &Conv3dShape, x: &[T], weight: &[T], bias: Option<&[T]>, y: &mut [T]) {
    correlation(s).forward(x, weight, bias, y);
}

/// `dx = dL/dx` for the upstream gradient `gy` (overwrites `dx`).
pub fn backward_input<T: Real>(s: &Conv3dShape, gy: &[T], weight: &[T], dx: &mut [T]) {
    let k3 = s.k * s.k * s.k;
    assert_eq!(weight.len(), s.cout * s.cin * k3, "conv3d weight length");

    // flipped[ci, co, kk] = weight[co, ci, k^3 - 1 - kk]: reversing the flat kernel index
    // reverses all three spatial axes at once.
    let mut flipped = vec![T::zero(); weight.len()];
    for co in 0..s.cout {
        for ci in 0..s.cin {
            let src = &weight[(co * s.cin + ci) * k3..][..k3];
            let dst = &mut flipped[(ci * s.cout + co) * k3..][..k3];
            dst.iter_mut()
                .zip(src.iter().rev())
                .for_each(|(d, &v)| *d = v);
        }
    }

    let transposed = Correlation {
        n: s.n,
        cin: s.cout,
        cout: s.cin,
        input: s.out_dims(),
        output: [s.d, s.h, s.w],
        k: s.k,
        stride: 1,
        pad: s.k as isize - 1 - s.pad as isize,
    };
    transposed.forward(gy, &flipped, None, dx);
}

/// `dweight = dL/dweight` and, when given, `dbias = dL/dbias` (both overwritten).
pub fn backward_weight<T: Real>(
    s: &Conv3dShape,
    x: &[T],
    gy: &[T],
    dweight: &mut [T],
    dbias: Option<&mut [T]>,
) {
    correlation(s).weight_grad(x, gy, dweight);
    if let Some(db) = dbias {
        let volume = s.out_dims().iter().product();
        channel_sums(gy, s.n, s.cout, volume, db);
    }
}
