//! Rotation augmentation about one index axis, through the volume centre, in index space (as
//! `scipy.ndimage.rotate` with `reshape=False`): sizes stay, corners that rotate in from
//! outside get a fill value.

use super::Array3;

/// The index axis a rotation turns about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    I,
    J,
    K,
}

/// Trilinear for images, nearest for label maps (no new label values appear).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    Linear,
    Nearest,
}

/// The two axes of the rotated plane, turning from the first toward the second.
fn plane(axis: Axis) -> (usize, usize) {
    match axis {
        Axis::I => (1, 2),
        Axis::J => (2, 0),
        Axis::K => (0, 1),
    }
}

/// Rotates by `degrees` about `axis`: the content turns from the plane's first axis toward its
/// second (for `Axis::K`, from i toward j).
pub fn rotate(a: &Array3, axis: Axis, degrees: f64, interp: Interpolation, fill: f32) -> Array3 {
    let (p, q) = plane(axis);
    let (sin, cos) = degrees.to_radians().sin_cos();
    let centre = a.sizes.map(|n| (n as f64 - 1.0) / 2.0);
    let mut out = Array3::filled(a.sizes, fill);
    for k in 0..a.sizes[2] {
        for j in 0..a.sizes[1] {
            for i in 0..a.sizes[0] {
                // Inverse mapping: where in the input does this output voxel come from?
                let mut src = [i as f64, j as f64, k as f64];
                let (dp, dq) = (src[p] - centre[p], src[q] - centre[q]);
                src[p] = centre[p] + cos * dp + sin * dq;
                src[q] = centre[q] - sin * dp + cos * dq;
                let value = match interp {
                    Interpolation::Nearest => nearest(a, src, fill),
                    Interpolation::Linear => trilinear(a, src, fill),
                };
                let o = out.index(i, j, k);
                out.data[o] = value;
            }
        }
    }
    out
}

/// One rotated copy per angle (the reference pipeline used 0°, 20°, 40°, …).
pub fn rotations(
    a: &Array3,
    axis: Axis,
    degrees: &[f64],
    interp: Interpolation,
    fill: f32,
) -> Vec<Array3> {
    degrees
        .iter()
        .map(|&d| rotate(a, axis, d, interp, fill))
        .collect()
}

fn nearest(a: &Array3, src: [f64; 3], fill: f32) -> f32 {
    // A tolerance keeps exact quarter turns exact despite sin/cos rounding.
    let r = src.map(|x| (x + 1e-9).round());
    if (0..3).all(|d| r[d] >= 0.0 && r[d] < a.sizes[d] as f64) {
        a.get(r[0] as usize, r[1] as usize, r[2] as usize)
    } else {
        fill
    }
}

fn trilinear(a: &Array3, src: [f64; 3], fill: f32) -> f32 {
    let base = src.map(|x| x.floor());
    if (0..3).any(|d| base[d] < -1.0 || base[d] > a.sizes[d] as f64) {
        return fill;
    }
    let frac = [0, 1, 2].map(|d| src[d] - base[d]);
    let mut sum = 0.0f64;
    for corner in 0..8 {
        let mut w = 1.0;
        let mut at = [0isize; 3];
        for d in 0..3 {
            let upper = corner >> d & 1 == 1;
            w *= if upper { frac[d] } else { 1.0 - frac[d] };
            at[d] = base[d] as isize + upper as isize;
        }
        if w == 0.0 {
            continue;
        }
        let inside = (0..3).all(|d| at[d] >= 0 && (at[d] as usize) < a.sizes[d]);
        let v = if inside {
            a.get(at[0] as usize, at[1] as usize, at[2] as usize)
        } else {
            fill
        };
        sum += w * v as f64;
    }
    sum as f32
}
