//! `preview.png`: axial, coronal and sagittal slices through the teeth with coloured labels
//! (each where it cuts the most labelled voxels),
//! and a maximum-intensity projection from above, side by side.
//!
//! Panels are shown in the radiological convention, whatever the volume's index order: axial
//! with the patient's right on the image's left and anterior up, coronal and sagittal with
//! superior up (sagittal: anterior on the left). Pixels are square at the finest voxel size.

use crate::io::Volume;

/// How one display axis reads the volume: the index axis along it and whether it runs
/// against the world axis.
#[derive(Clone, Copy)]
struct DisplayAxis {
    index_axis: usize,
    flipped: bool,
}

/// Index axis and sign for each world axis (x, y, z), when the directions are close to a
/// signed permutation; otherwise the index axes as they are.
fn world_axes(volume: &Volume) -> [DisplayAxis; 3] {
    let as_indexed = [0, 1, 2].map(|a| DisplayAxis {
        index_axis: a,
        flipped: false,
    });
    let mut axes = as_indexed;
    let mut used = [false; 3];
    for (w, axis) in axes.iter_mut().enumerate() {
        let best = (0..3)
            .max_by(|&a, &b| {
                volume.direction[w][a]
                    .abs()
                    .total_cmp(&volume.direction[w][b].abs())
            })
            .unwrap_or(w);
        if volume.direction[w][best].abs() < 0.9 || used[best] {
            return as_indexed;
        }
        used[best] = true;
        *axis = DisplayAxis {
            index_axis: best,
            flipped: volume.direction[w][best] < 0.0,
        };
    }
    axes
}

/// Category colours (1..=8); the quadrant of an FDI number shades them.
const COLOURS: [[u8; 3]; 8] = [
    [230, 25, 75],
    [60, 180, 75],
    [255, 225, 25],
    [0, 130, 200],
    [245, 130, 48],
    [145, 30, 180],
    [70, 240, 240],
    [240, 50, 230],
];

/// The colour of a label: categories 1..=8 as they are, FDI numbers by category, lighter in
/// quadrants 2 and 4 than in 1 and 3.
fn colour(label: u8) -> [u8; 3] {
    let (category, quadrant) = if label >= 10 {
        (label % 10, label / 10)
    } else {
        (label, 1)
    };
    let base = COLOURS[usize::from(category.clamp(1, 8)) - 1];
    if quadrant % 2 == 0 {
        base.map(|c| c / 2 + 128)
    } else {
        base
    }
}

/// The preview as an RGB image: (width, height, pixels). `labels` holds one label per voxel
/// (0: none) on the image's grid.
pub fn render(image: &Volume, labels: &[u8]) -> (u32, u32, Vec<u8>) {
    let sizes = image.sizes;
    let values = image.voxels.to_f32();
    let (lo, hi) = display_range(&values);
    let grey = |v: f32| (((v - lo) / (hi - lo).max(f32::EPSILON)).clamp(0.0, 1.0) * 255.0) as u8;
    let axes = world_axes(image);
    // Square pixels at the finest voxel size, smaller for a small volume so that its widest
    // panel spans at least 320 pixels.
    let extent_mm = (0..3)
        .map(|a| sizes[a] as f64 * image.spacing[a])
        .fold(0.0, f64::max);
    let pixel_mm = image
        .spacing
        .iter()
        .cloned()
        .fold(extent_mm / 320.0, f64::min);

    // Each slice where it cuts the most labelled voxels (the volume's centre if none is).
    let mut per_slice = sizes.map(|n| vec![0usize; n]);
    for (v, &l) in labels.iter().enumerate() {
        if l != 0 {
            let p = super::components::position(v, sizes);
            for a in 0..3 {
                per_slice[a][p[a]] += 1;
            }
        }
    }
    let centre: [usize; 3] = [0, 1, 2].map(|a| {
        let counts = &per_slice[a];
        match counts
            .iter()
            .enumerate()
            .max_by_key(|&(i, &n)| (n, usize::MAX - i))
        {
            Some((i, &n)) if n > 0 => i,
            _ => sizes[a] / 2,
        }
    });

    // Display axes of each panel as (horizontal, vertical, vertical increases downward with
    // the world axis?): world x, y, z = 0, 1, 2.
    let panel = |h: usize, v: usize, v_down: bool, through: usize| -> Panel {
        let fixed = axes[through].index_axis;
        sample_panel(image, &axes, pixel_mm, h, v, v_down, |index| {
            let mut at = index;
            at[fixed] = centre[fixed];
            let voxel = at[0] + sizes[0] * (at[1] + sizes[1] * at[2]);
            (grey(values[voxel]), labels[voxel])
        })
    };
    let axial = panel(0, 1, true, 2);
    let coronal = panel(0, 2, false, 1);
    let sagittal = panel(1, 2, false, 0);
    // Maximum intensity along z, labelled where the maximum lies.
    let z = axes[2].index_axis;
    let mip = sample_panel(image, &axes, pixel_mm, 0, 1, true, |index| {
        let mut best = (f32::NEG_INFINITY, 0u8);
        let mut at = index;
        for step in 0..sizes[z] {
            at[z] = step;
            let voxel = at[0] + sizes[0] * (at[1] + sizes[1] * at[2]);
            if values[voxel] > best.0 {
                best = (values[voxel], labels[voxel]);
            }
        }
        (grey(best.0), best.1)
    });
    compose(&[axial, coronal, sagittal, mip])
}

struct Panel {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

/// A panel whose horizontal axis is world axis `h` (increasing to the right) and vertical
/// world axis `v` (increasing downward when `v_down`, else upward); `read` gives the grey value
/// and label at an index where the third axis is left for it to fill.
fn sample_panel(
    image: &Volume,
    axes: &[DisplayAxis; 3],
    pixel_mm: f64,
    h: usize,
    v: usize,
    v_down: bool,
    read: impl Fn([usize; 3]) -> (u8, u8),
) -> Panel {
    let (ah, av) = (axes[h], axes[v]);
    let extent = |a: DisplayAxis| image.sizes[a.index_axis] as f64 * image.spacing[a.index_axis];
    let width = ((extent(ah) / pixel_mm).round() as usize).max(1);
    let height = ((extent(av) / pixel_mm).round() as usize).max(1);
    let index_at = |a: DisplayAxis, pixel: usize, count: usize, increasing: bool| {
        let n = image.sizes[a.index_axis];
        let along = if increasing { pixel } else { count - 1 - pixel };
        let i = (((along as f64 + 0.5) * n as f64 / count as f64) as usize).min(n - 1);
        if a.flipped {
            n - 1 - i
        } else {
            i
        }
    };
    let mut rgb = Vec::with_capacity(width * height * 3);
    for row in 0..height {
        for col in 0..width {
            let mut index = [0usize; 3];
            index[ah.index_axis] = index_at(ah, col, width, true);
            index[av.index_axis] = index_at(av, row, height, v_down);
            let (g, label) = read(index);
            if label == 0 {
                rgb.extend_from_slice(&[g, g, g]);
            } else {
                let c = colour(label);
                rgb.extend(c.iter().map(|&c| ((u16::from(c) + u16::from(g)) / 2) as u8));
            }
        }
    }
    Panel { width, height, rgb }
}

/// The panels side by side, top-aligned, 4 black pixels apart.
fn compose(panels: &[Panel]) -> (u32, u32, Vec<u8>) {
    const GAP: usize = 4;
    let width = panels.iter().map(|p| p.width).sum::<usize>() + GAP * (panels.len() - 1);
    let height = panels.iter().map(|p| p.height).max().unwrap_or(1);
    let mut rgb = vec![0u8; width * height * 3];
    let mut x0 = 0;
    for p in panels {
        for row in 0..p.height {
            let from = row * p.width * 3;
            let to = (row * width + x0) * 3;
            rgb[to..to + p.width * 3].copy_from_slice(&p.rgb[from..from + p.width * 3]);
        }
        x0 += p.width + GAP;
    }
    (width as u32, height as u32, rgb)
}

/// Grey levels from the 1st to the 99.5th percentile of the values.
fn display_range(values: &[f32]) -> (f32, f32) {
    let mut sorted: Vec<f32> = values.iter().cloned().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return (0.0, 1.0);
    }
    let mut at = |q: f64| {
        let i = ((sorted.len() - 1) as f64 * q) as usize;
        *sorted.select_nth_unstable_by(i, f32::total_cmp).1
    };
    let lo = at(0.01);
    let hi = at(0.995);
    (lo, hi)
}

/// The preview as PNG bytes.
pub fn preview_png(image: &Volume, labels: &[u8]) -> Vec<u8> {
    let (w, h, rgb) = render(image, labels);
    super::png::encode_rgb(w, h, &rgb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Voxels;

    #[test]
    fn panels_follow_the_radiological_convention() {
        // 4×3×2 voxels at 1 mm, identity directions (i = x, j = y, k = z). One labelled voxel
        // at the patient's right (smallest x), anterior (smallest y), superior (largest z).
        let sizes = [4, 3, 2];
        let n = 24;
        let image = Volume::new(
            sizes,
            Voxels::F32((0..n).map(|v| v as f32).collect()),
            [1.0; 3],
        );
        let mut labels = vec![0u8; n];
        let marked = 4 * 3; // (i, j, k) = (0, 0, 1)
        labels[marked] = 11;
        let (w, h, rgb) = render(&image, &labels);
        // The widest panel spans 4 mm, shown at 320 pixels: 80 pixels per voxel.
        let s = 80;
        // Axial 4×3 voxels, coronal 4×2, sagittal 3×2, MIP 4×3, gaps of 4 pixels.
        assert_eq!((w as usize, h as usize), (15 * s + 12, 3 * s));
        // The centre of the voxel at column `col`, row `row` of the panel starting at `x0`.
        let labelled = |x0: usize, col: usize, row: usize| {
            let (x, y) = (x0 + col * s + s / 2, row * s + s / 2);
            let p = &rgb[(y * w as usize + x) * 3..(y * w as usize + x) * 3 + 3];
            !(p[0] == p[1] && p[1] == p[2])
        };
        // Axial (through k = 1): the marked voxel at the top left.
        assert!(labelled(0, 0, 0));
        assert!(!labelled(0, 3, 0) && !labelled(0, 0, 2));
        // Coronal: superior up, so the top left.
        let coronal = 4 * s + 4;
        assert!(labelled(coronal, 0, 0) && !labelled(coronal, 0, 1));
        // Sagittal: anterior left, superior up.
        let sagittal = coronal + 4 * s + 4;
        assert!(labelled(sagittal, 0, 0) && !labelled(sagittal, 1, 0));
    }

    #[test]
    fn flipped_axes_are_shown_in_world_order() {
        // The i axis runs toward the patient's right (−x): voxel i = 3 is the rightmost.
        let sizes = [4, 1, 1];
        let mut image = Volume::new(sizes, Voxels::F32(vec![0.0, 1.0, 2.0, 3.0]), [1.0; 3]);
        image.direction[0][0] = -1.0;
        let labels = vec![0, 0, 0, 5];
        let (w, _, rgb) = render(&image, &labels);
        assert!(w >= 4);
        let first = &rgb[0..3];
        assert!(
            !(first[0] == first[1] && first[1] == first[2]),
            "i = 3 shown first"
        );
    }
}
