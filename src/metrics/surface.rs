//! Surface distances between two masks: HD95 and other percentiles.

use super::distance::squared_distance_to;
use super::image_diagonal;

/// The 95th percentile of the symmetric surface distances in mm (see
/// [`surface_distance_percentile`]); 0 when both masks are empty, the image diagonal when one is.
pub fn hd95(pred: &[bool], gt: &[bool], sizes: [usize; 3], spacing: [f64; 3]) -> f64 {
    surface_distance_percentile(pred, gt, sizes, spacing, 95.0)
}

/// A percentile (0..=100, linear interpolation between the sorted values, as numpy's default)
/// of the distances from every surface voxel of `a` to the nearest surface voxel of `b`, pooled
/// with those from `b` to `a`, in mm. 100 gives the Hausdorff distance.
///
/// # Panics
/// When the masks are not both `sizes[0] · sizes[1] · sizes[2]` long.
pub fn surface_distance_percentile(
    a: &[bool],
    b: &[bool],
    sizes: [usize; 3],
    spacing: [f64; 3],
    percentile: f64,
) -> f64 {
    let count = sizes.iter().product::<usize>();
    assert!(
        a.len() == count && b.len() == count,
        "surface distances: masks of {} and {} voxels for sizes {sizes:?}",
        a.len(),
        b.len()
    );
    let (a_any, b_any) = (a.iter().any(|&x| x), b.iter().any(|&x| x));
    match (a_any, b_any) {
        (false, false) => return 0.0,
        (true, false) | (false, true) => return image_diagonal(sizes, spacing),
        (true, true) => {}
    }

    // Work on the union's bounding box grown by one voxel (within the image): every surface
    // voxel lies inside it, and the ring around it is background, as the image border is.
    let (lo, hi) = union_bounds(a, b, sizes);
    let crop_sizes = [0, 1, 2].map(|ax| hi[ax] - lo[ax] + 1);
    let a_crop = crop(a, sizes, lo, crop_sizes);
    let b_crop = crop(b, sizes, lo, crop_sizes);
    let a_surface = surface_voxels(&a_crop, crop_sizes);
    let b_surface = surface_voxels(&b_crop, crop_sizes);

    let mut distances = one_way(&a_surface, &b_surface, crop_sizes, spacing);
    distances.extend(one_way(&b_surface, &a_surface, crop_sizes, spacing));
    distances.sort_by(f64::total_cmp);
    percentile_of_sorted(&distances, percentile)
}

/// Foreground voxels with a 6-neighbour in the background or on the image border.
pub fn surface_voxels(mask: &[bool], sizes: [usize; 3]) -> Vec<bool> {
    let [si, sj, sk] = sizes;
    let at = |i: usize, j: usize, k: usize| mask[(k * sj + j) * si + i];
    let mut surface = vec![false; mask.len()];
    for k in 0..sk {
        for j in 0..sj {
            for i in 0..si {
                if !at(i, j, k) {
                    continue;
                }
                let border =
                    i == 0 || j == 0 || k == 0 || i + 1 == si || j + 1 == sj || k + 1 == sk;
                surface[(k * sj + j) * si + i] = border
                    || !at(i - 1, j, k)
                    || !at(i + 1, j, k)
                    || !at(i, j - 1, k)
                    || !at(i, j + 1, k)
                    || !at(i, j, k - 1)
                    || !at(i, j, k + 1);
            }
        }
    }
    surface
}

/// Distance in mm from every `from` voxel to the nearest `to` voxel.
fn one_way(from: &[bool], to: &[bool], sizes: [usize; 3], spacing: [f64; 3]) -> Vec<f64> {
    let squared = squared_distance_to(to, sizes, spacing);
    from.iter()
        .zip(&squared)
        .filter(|(&f, _)| f)
        .map(|(_, d)| d.sqrt())
        .collect()
}

fn percentile_of_sorted(sorted: &[f64], percentile: f64) -> f64 {
    let position = (percentile.clamp(0.0, 100.0) / 100.0) * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let t = position - below as f64;
    sorted[below] + t * (sorted[above] - sorted[below])
}

/// Bounding box of the voxels in `a` or `b`, grown by one voxel and clipped to the image.
fn union_bounds(a: &[bool], b: &[bool], sizes: [usize; 3]) -> ([usize; 3], [usize; 3]) {
    let [si, sj, _] = sizes;
    let mut lo = [usize::MAX; 3];
    let mut hi = [0; 3];
    for (n, _) in a.iter().zip(b).enumerate().filter(|(_, (&x, &y))| x || y) {
        let p = [n % si, (n / si) % sj, n / (si * sj)];
        for ax in 0..3 {
            lo[ax] = lo[ax].min(p[ax]);
            hi[ax] = hi[ax].max(p[ax]);
        }
    }
    (
        lo.map(|x| x.saturating_sub(1)),
        [0, 1, 2].map(|ax| (hi[ax] + 1).min(sizes[ax] - 1)),
    )
}

fn crop(mask: &[bool], sizes: [usize; 3], lo: [usize; 3], crop_sizes: [usize; 3]) -> Vec<bool> {
    let [si, sj, _] = sizes;
    let mut out = Vec::with_capacity(crop_sizes.iter().product());
    for k in lo[2]..lo[2] + crop_sizes[2] {
        for j in lo[1]..lo[1] + crop_sizes[1] {
            let row = (k * sj + j) * si;
            out.extend_from_slice(&mask[row + lo[0]..row + lo[0] + crop_sizes[0]]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        let sorted = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_of_sorted(&sorted, 95.0), 3.8);
        assert_eq!(percentile_of_sorted(&sorted, 100.0), 4.0);
        assert_eq!(percentile_of_sorted(&sorted, 50.0), 2.0);
        assert_eq!(percentile_of_sorted(&[7.0], 95.0), 7.0);
    }

    #[test]
    fn surface_of_a_solid_box_is_its_shell() {
        let sizes = [5, 5, 5];
        let mut mask = vec![false; 125];
        for k in 1..4 {
            for j in 1..4 {
                for i in 1..4 {
                    mask[(k * 5 + j) * 5 + i] = true;
                }
            }
        }
        let surface = surface_voxels(&mask, sizes);
        assert_eq!(surface.iter().filter(|&&s| s).count(), 26);
        assert!(!surface[(2 * 5 + 2) * 5 + 2]);

        // The whole image as foreground: only its border is surface.
        let full = surface_voxels(&[true; 27], [3, 3, 3]);
        assert_eq!(full.iter().filter(|&&s| s).count(), 26);
    }
}
