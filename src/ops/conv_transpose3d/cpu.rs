//! Native CPU kernels of conv_transpose3d, generic over f32 (the engine) and f64 (the checks).
//!
//! Forward: per tile of input rows one gemm `col[(o, kk), positions] = Wᵀ · x`, then col2im
//! scatters the columns into y. The two gradients are strided cross-correlations of `gy`
//! (see `conv3d/correlation.rs`): `dx` correlates `gy` with the weight as it is stored, and
//! `dweight` is the weight gradient of that same correlation with the roles of x and gy swapped.

use super::ConvTranspose3dShape;
use crate::ops::conv3d::correlation::{channel_sums, valid_range, Correlation, SharedMut};
use crate::ops::Real;
use gemm::Parallelism;
use rayon::prelude::*;

/// Elements of one tile's column matrix (384 KiB in f32, well inside L2).
const TILE_COL_ELEMS: usize = 96 * 1024;

/// `gy ⋆ weight`: the correlation whose input gradient is this op's forward pass.
fn adjoint(s: &ConvTranspose3dShape) -> Correlation {
    Correlation {
        n: s.n,
        cin: s.cout,
        cout: s.cin,
        input: s.out_dims(),
        output: [s.d, s.h, s.w],
        k: s.k,
        stride: s.stride,
        pad: s.pad as isize,
    }
}

/// `y = conv_transpose3d(x, weight) + bias` (overwrites `y`).
/// `x`: `N,Cin,D,H,W`; `weight`: `Cin,Cout,k,k,k`; `bias`: `Cout`; `y`: `N,Cout,D',H',W'`.
pub fn forward<T: Real>(
    s: &ConvTranspose3dShape,
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    y: &mut [T],
) {
    let ivol = s.d * s.h * s.w;
    let ovol: usize = s.out_dims().iter().product();
    let col_rows = s.cout * s.k * s.k * s.k;
    assert_eq!(x.len(), s.n * s.cin * ivol, "conv_transpose3d input length");
    assert_eq!(
        weight.len(),
        s.cin * col_rows,
        "conv_transpose3d weight length"
    );
    assert_eq!(
        y.len(),
        s.n * s.cout * ovol,
        "conv_transpose3d output length"
    );
    if let Some(b) = bias {
        assert_eq!(b.len(), s.cout, "conv_transpose3d bias length");
    }

    // With k == stride and no padding the kernel footprints of the input voxels tile the
    // output without overlap: tiles may scatter in parallel and assign instead of add. Only
    // output_padding leaves voxels that no term reaches; they start at the bias.
    let disjoint = s.k == s.stride && s.pad == 0;
    let assign = disjoint && s.output_padding == 0;
    if !assign {
        y.par_chunks_mut(ovol).enumerate().for_each(|(i, plane)| {
            plane.fill(bias.map_or(T::zero(), |b| b[i % s.cout]));
        });
    }

    let rows_total = s.d * s.h;
    let mut tile_rows = (TILE_COL_ELEMS / (col_rows * s.w)).clamp(1, rows_total);
    let wanted_per_image = (4 * rayon::current_num_threads()).div_ceil(s.n);
    if disjoint && rows_total.div_ceil(tile_rows) < wanted_per_image {
        tile_rows = (rows_total / wanted_per_image).max(1);
    }
    let tiles_per_image = rows_total.div_ceil(tile_rows);
    let y_ptr = SharedMut(y.as_mut_ptr());

    let run_tile = |col: &mut Vec<T>, img: usize, tile: usize| {
        let row0 = tile * tile_rows;
        let rows = tile_rows.min(rows_total - row0);
        let positions = rows * s.w;
        col.resize(col_rows * positions, T::zero());
        let image = &x[img * s.cin * ivol + row0 * s.w..];

        // SAFETY: col is col_rows x positions; weight read as its transpose (col_rows x cin);
        // the image tile is cin rows of `positions` at stride ivol, all inside `x`.
        unsafe {
            gemm::gemm(
                col_rows,
                positions,
                s.cin,
                col.as_mut_ptr(),
                1,
                positions as isize,
                false,
                weight.as_ptr(),
                col_rows as isize,
                1,
                image.as_ptr(),
                1,
                ivol as isize,
                T::zero(),
                T::one(),
                false,
                false,
                false,
                Parallelism::None,
            );
        }
        let out = SharedMut(unsafe { y_ptr.get().add(img * s.cout * ovol) });
        scatter(s, col, row0, rows, assign.then_some(bias), out);
    };

    if disjoint {
        (0..s.n * tiles_per_image)
            .into_par_iter()
            .for_each_init(Vec::new, |col, t| {
                run_tile(col, t / tiles_per_image, t % tiles_per_image)
            });
    } else {
        // Footprints overlap: one task per image, its tiles in order.
        (0..s.n)
            .into_par_iter()
            .for_each_init(Vec::new, |col, img| {
                (0..tiles_per_image).for_each(|tile| run_tile(col, img, tile))
            });
    }
}

/// col2im of one tile of input rows into one image of y: adds each column entry to its output
/// voxel, or, when `assign` is given, stores entry + its bias (disjoint footprints only).
fn scatter<T: Real>(
    s: &ConvTranspose3dShape,
    col: &[T],
    row0: usize,
    rows: usize,
    assign: Option<Option<&[T]>>,
    y: SharedMut<T>,
) {
    let [od, oh, ow] = s.out_dims();
    let (k, st, pad) = (s.k, s.stride, s.pad as isize);
    let positions = rows * s.w;
    let mut col_rows = col.chunks_exact(positions);
    for o in 0..s.cout {
        let b = assign.map(|bias| bias.map_or(T::zero(), |b| b[o]));
        for kd in 0..k {
            for kh in 0..k {
                for kw in 0..k {
                    let src_rows = col_rows.next().expect("column matrix too short");
                    let offset_w = kw as isize - pad;
                    let (lo, hi) = valid_range(s.w, ow, st, offset_w);
                    for (r, src) in src_rows.chunks_exact(s.w).enumerate() {
                        let (id, ih) = ((row0 + r) / s.h, (row0 + r) % s.h);
                        let zd = (id * st + kd) as isize - pad;
                        let zh = (ih * st + kh) as isize - pad;
                        if zd < 0 || zd >= od as isize || zh < 0 || zh >= oh as isize {
                            continue;
                        }
                        let row_start = ((o * od + zd as usize) * oh + zh as usize) * ow;
                        // SAFETY: the row lies in this image of y; concurrent tiles write
                        // other rows (disjoint footprints) or other images (one task each).
                        let dst =
                            unsafe { std::slice::from_raw_parts_mut(y.get().add(row_start), ow) };
                        for (i, &v) in src.iter().enumerate().take(hi).skip(lo) {
                            let j = ((i * st) as isize + offset_w) as usize;
                            match b {
                                Some(b) => dst[j] = v + b,
                                None => dst[j] += v,
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `dx = dL/dx` for the upstream gradient `gy` (overwrites `dx`).
pub fn backward_input<T: Real>(s: &ConvTranspose3dShape, gy: &[T], weight: &[T], dx: &mut [T]) {
    adjoint(s).forward(gy, weight, None, dx);
}

/// `dweight = dL/dweight` and, when given, `dbias = dL/dbias` (both overwritten).
pub fn backward_weight<T: Real>(
    s: &ConvTranspose3dShape,
    x: &[T],
    gy: &[T],
    dweight: &mut [T],
    dbias: Option<&mut [T]>,
) {
    adjoint(s).weight_grad(gy, x, dweight);
    if let Some(db) = dbias {
        let volume = s.out_dims().iter().product();
        channel_sums(gy, s.n, s.cout, volume, db);
    }
}
