//! Separable whole-volume filters: the Euclidean distance transform (for the cortical shell)
//! and the Gaussian blur. Each output line is computed by one fixed sequence of operations,
//! so the results do not depend on how rayon schedules the lines.

use rayon::prelude::*;

use super::portable_math::exp_neg;

/// Applies `op(input line, output line)` to every line of `data` along `axis` (0: i, 1: j,
/// 2: k), in place. Volume layout: i fastest, then j, then k.
fn along_axis<F>(data: &mut [f32], sizes: [usize; 3], axis: usize, op: F)
where
    F: Fn(&[f32], &mut [f32]) + Sync,
{
    let [nx, ny, nz] = sizes;
    let plane = nx * ny;
    match axis {
        0 => data.par_chunks_mut(nx).for_each(|row| {
            let input = row.to_vec();
            op(&input, row);
        }),
        1 => data.par_chunks_mut(plane).for_each(|slice| {
            let (mut input, mut output) = (vec![0.0; ny], vec![0.0; ny]);
            for i in 0..nx {
                for j in 0..ny {
                    input[j] = slice[j * nx + i];
                }
                op(&input, &mut output);
                for j in 0..ny {
                    slice[j * nx + i] = output[j];
                }
            }
        }),
        _ => {
            // Lines along k are gathered into a [j][i][k] buffer, then scattered back.
            let mut lines = vec![0.0f32; data.len()];
            let source = &*data;
            lines
                .par_chunks_mut(nx * nz)
                .enumerate()
                .for_each(|(j, block)| {
                    let mut input = vec![0.0; nz];
                    for i in 0..nx {
                        for (k, value) in input.iter_mut().enumerate() {
                            *value = source[k * plane + j * nx + i];
                        }
                        op(&input, &mut block[i * nz..(i + 1) * nz]);
                    }
                });
            data.par_chunks_mut(plane)
                .enumerate()
                .for_each(|(k, slice)| {
                    for j in 0..ny {
                        for i in 0..nx {
                            slice[j * nx + i] = lines[(j * nx + i) * nz + k];
                        }
                    }
                });
        }
    }
}

/// Squared distance (in voxels) from each voxel to the nearest voxel where `feature` is
/// true; `f32::INFINITY` everywhere when there is none. Exact, by the lower envelope of
/// parabolas along each axis in turn (Felzenszwalb and Huttenlocher).
pub(crate) fn squared_distance(feature: &[bool], sizes: [usize; 3]) -> Vec<f32> {
    const FAR: f32 = 1e20;
    let mut d: Vec<f32> = feature.iter().map(|&f| if f { 0.0 } else { FAR }).collect();
    for axis in 0..3 {
        along_axis(&mut d, sizes, axis, envelope_1d);
    }
    d.iter()
        .map(|&v| if v >= 1e19 { f32::INFINITY } else { v })
        .collect()
}

/// One-dimensional squared distance transform of the sampled function `f`.
fn envelope_1d(f: &[f32], out: &mut [f32]) {
    let n = f.len();
    let mut vertex = vec![0usize; n];
    let mut bound = vec![0.0f32; n + 1];
    let mut k = 0;
    bound[0] = f32::NEG_INFINITY;
    bound[1] = f32::INFINITY;
    for q in 1..n {
        let intersect =
            |p: usize| ((f[q] + (q * q) as f32) - (f[p] + (p * p) as f32)) / (2.0 * (q - p) as f32);
        let mut s = intersect(vertex[k]);
        while s <= bound[k] {
            k -= 1;
            s = intersect(vertex[k]);
        }
        k += 1;
        vertex[k] = q;
        bound[k] = s;
        bound[k + 1] = f32::INFINITY;
    }
    k = 0;
    for (q, value) in out.iter_mut().enumerate() {
        while bound[k + 1] < q as f32 {
            k += 1;
        }
        let p = vertex[k];
        let dq = q as f32 - p as f32;
        *value = dq * dq + f[p];
    }
}

/// Normalised Gaussian weights for offsets −r..=r, σ in voxels, r = ⌈3σ⌉.
fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil() as i64;
    let raw: Vec<f64> = (-radius..=radius)
        .map(|x| exp_neg((x * x) as f64 / (2.0 * sigma * sigma)))
        .collect();
    let total: f64 = raw.iter().sum();
    raw.iter().map(|w| (w / total) as f32).collect()
}

/// Gaussian blur with standard deviation `sigma` voxels; edges repeat the border voxel.
pub(crate) fn gaussian_blur(data: &mut [f32], sizes: [usize; 3], sigma: f64) {
    let kernel = gaussian_kernel(sigma);
    let radius = (kernel.len() / 2) as i64;
    let convolve = |input: &[f32], output: &mut [f32]| {
        let last = input.len() as i64 - 1;
        for (q, value) in output.iter_mut().enumerate() {
            let mut sum = 0.0f32;
            for (t, &w) in kernel.iter().enumerate() {
                let at = (q as i64 + t as i64 - radius).clamp(0, last);
                sum += w * input[at as usize];
            }
            *value = sum;
        }
    };
    for axis in 0..3 {
        if sizes[axis] > 1 {
            along_axis(data, sizes, axis, convolve);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_transform_matches_brute_force() {
        let sizes = [7, 5, 6];
        let n = sizes[0] * sizes[1] * sizes[2];
        let feature: Vec<bool> = (0..n).map(|l| (l * 7919) % 23 == 0).collect();
        let d = squared_distance(&feature, sizes);
        let coords = |l: usize| [(l % 7) as i64, ((l / 7) % 5) as i64, (l / 35) as i64];
        for (l, &distance) in d.iter().enumerate() {
            let p = coords(l);
            let best = (0..n)
                .filter(|&m| feature[m])
                .map(|m| {
                    let q = coords(m);
                    (0..3).map(|a| (p[a] - q[a]).pow(2)).sum::<i64>()
                })
                .min()
                .unwrap();
            assert_eq!(distance, best as f32, "voxel {p:?}");
        }
    }

    #[test]
    fn distance_transform_without_features_is_infinite() {
        let d = squared_distance(&[false; 8], [2, 2, 2]);
        assert!(d.iter().all(|v| v.is_infinite()));
    }

    #[test]
    fn blur_keeps_constants_and_mass_and_matches_the_kernel() {
        let sizes = [9, 9, 9];
        let mut constant = vec![3.5f32; 729];
        gaussian_blur(&mut constant, sizes, 1.0);
        assert!(constant.iter().all(|v| (v - 3.5).abs() < 1e-5));

        // An impulse in the middle spreads into the product of three 1-D kernels.
        let mut impulse = vec![0.0f32; 729];
        impulse[4 * 81 + 4 * 9 + 4] = 1.0;
        gaussian_blur(&mut impulse, sizes, 0.8);
        let total: f32 = impulse.iter().sum();
        assert!((total - 1.0).abs() < 1e-5);
        let kernel = gaussian_kernel(0.8);
        let r = kernel.len() / 2;
        let expected = kernel[r] * kernel[r + 1] * kernel[r + 2];
        assert!((impulse[5 * 81 + 6 * 9 + 4] - expected).abs() < 1e-7);
        let ratio = kernel[r + 1] as f64 / kernel[r] as f64;
        assert!((ratio - (-0.5f64 / 0.64).exp()).abs() < 1e-6);
    }
}
