//! Segmentation metrics between a predicted and a ground-truth label map on the same grid
//! (sizes, spacing, origin and direction):
//! Dice, IoU and HD95 per class.
//!
//! Conventions for a class absent from one or both maps: both empty → Dice 1, IoU 1, HD95 0;
//! one empty → Dice 0, IoU 0, HD95 = the image diagonal in mm (the largest distance possible).

pub mod distance;
mod surface;

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;
use thiserror::Error;

use crate::io::{read_volume, IoError, Volume};
use crate::mesh::labels::{as_label, voxel_value};

pub use distance::squared_distance_to;
pub use surface::{hd95, surface_distance_percentile, surface_voxels};

/// Relative tolerance for two spacings to count as the same grid.
const SPACING_TOLERANCE: f64 = 1e-5;
/// Tolerance for two origins, as a fraction of the voxel size (files round their geometry).
const ORIGIN_TOLERANCE: f64 = 1e-3;
/// Tolerance for two direction cosines.
const DIRECTION_TOLERANCE: f64 = 1e-4;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MetricsError {
    #[error(transparent)]
    Io(#[from] IoError),

    #[error(transparent)]
    Grid(Box<GridMismatch>),

    #[error("{name}: {channels} channels per voxel, a label map has 1")]
    Channels { name: String, channels: usize },

    #[error(
        "{name}: value {value} at voxel ({i}, {j}, {k}) is not a label (a whole number from 0 \
         to 4294967295)"
    )]
    NotALabel {
        name: String,
        value: f64,
        i: usize,
        j: usize,
        k: usize,
    },
}

/// Two label maps whose sizes or spacings differ.
#[derive(Debug, Error)]
#[error(
    "{pred} and {gt} are not on the same grid: sizes {pred_sizes:?} vs {gt_sizes:?}, \
     spacing {pred_spacing:?} vs {gt_spacing:?} mm, origin {pred_origin:?} vs {gt_origin:?} mm, \
     direction {pred_direction:?} vs {gt_direction:?}"
)]
pub struct GridMismatch {
    pub pred: String,
    pub gt: String,
    pub pred_sizes: [usize; 3],
    pub gt_sizes: [usize; 3],
    pub pred_spacing: [f64; 3],
    pub gt_spacing: [f64; 3],
    pub pred_origin: [f64; 3],
    pub gt_origin: [f64; 3],
    pub pred_direction: [[f64; 3]; 3],
    pub gt_direction: [[f64; 3]; 3],
}

/// The metrics of one class.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassMetrics {
    pub label: u32,
    pub voxels_pred: usize,
    pub voxels_gt: usize,
    pub dice: f64,
    pub iou: f64,
    pub hd95_mm: f64,
}

impl ClassMetrics {
    /// Whether the class occurs in the prediction or the ground truth.
    pub fn present(&self) -> bool {
        self.voxels_pred > 0 || self.voxels_gt > 0
    }
}

/// Means over the classes present in either map.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeanMetrics {
    pub classes: usize,
    pub dice: f64,
    pub iou: f64,
    pub hd95_mm: f64,
}

/// Per-class metrics and their mean.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    pub classes: Vec<ClassMetrics>,
    /// None when no class is present in either map.
    pub mean: Option<MeanMetrics>,
}

/// Reads both label maps and compares them; `classes` None means every nonzero label found in
/// either file.
pub fn evaluate_files(
    pred: &Path,
    gt: &Path,
    classes: Option<&[u32]>,
) -> Result<Evaluation, MetricsError> {
    let pred_volume = read_volume(pred)?;
    let gt_volume = read_volume(gt)?;
    evaluate_named(
        (&pred_volume, &pred.display().to_string()),
        (&gt_volume, &gt.display().to_string()),
        classes,
    )
}

/// Compares two label maps in memory (named "prediction" and "ground truth" in errors).
pub fn evaluate(
    pred: &Volume,
    gt: &Volume,
    classes: Option<&[u32]>,
) -> Result<Evaluation, MetricsError> {
    evaluate_named((pred, "prediction"), (gt, "ground truth"), classes)
}

fn evaluate_named(
    (pred, pred_name): (&Volume, &str),
    (gt, gt_name): (&Volume, &str),
    classes: Option<&[u32]>,
) -> Result<Evaluation, MetricsError> {
    let same_spacing = (0..3).all(|a| {
        (pred.spacing[a] - gt.spacing[a]).abs()
            <= SPACING_TOLERANCE * pred.spacing[a].abs().max(gt.spacing[a].abs())
    });
    let voxel = pred
        .spacing
        .iter()
        .fold(f64::INFINITY, |m, &x| m.min(x.abs()));
    let same_origin =
        (0..3).all(|a| (pred.origin[a] - gt.origin[a]).abs() <= ORIGIN_TOLERANCE * voxel);
    let same_direction = (0..3).all(|r| {
        (0..3).all(|c| (pred.direction[r][c] - gt.direction[r][c]).abs() <= DIRECTION_TOLERANCE)
    });
    if pred.sizes != gt.sizes || !same_spacing || !same_origin || !same_direction {
        return Err(MetricsError::Grid(Box::new(GridMismatch {
            pred: pred_name.to_string(),
            gt: gt_name.to_string(),
            pred_sizes: pred.sizes,
            gt_sizes: gt.sizes,
            pred_spacing: pred.spacing,
            gt_spacing: gt.spacing,
            pred_origin: pred.origin,
            gt_origin: gt.origin,
            pred_direction: pred.direction,
            gt_direction: gt.direction,
        })));
    }
    let pred_labels = label_values(pred, pred_name)?;
    let gt_labels = label_values(gt, gt_name)?;

    let classes: Vec<u32> = match classes {
        Some(list) => list.to_vec(),
        None => {
            let found: BTreeSet<u32> = pred_labels.iter().chain(&gt_labels).copied().collect();
            found.into_iter().filter(|&l| l != 0).collect()
        }
    };
    let classes: Vec<ClassMetrics> = classes
        .iter()
        .map(|&label| {
            let p: Vec<bool> = pred_labels.iter().map(|&v| v == label).collect();
            let g: Vec<bool> = gt_labels.iter().map(|&v| v == label).collect();
            class_metrics(label, &p, &g, pred.sizes, pred.spacing)
        })
        .collect();

    let present: Vec<&ClassMetrics> = classes.iter().filter(|c| c.present()).collect();
    let mean = (!present.is_empty()).then(|| {
        let n = present.len() as f64;
        MeanMetrics {
            classes: present.len(),
            dice: present.iter().map(|c| c.dice).sum::<f64>() / n,
            iou: present.iter().map(|c| c.iou).sum::<f64>() / n,
            hd95_mm: present.iter().map(|c| c.hd95_mm).sum::<f64>() / n,
        }
    });
    Ok(Evaluation { classes, mean })
}

/// Dice, IoU and HD95 of one class given as two masks on the same grid.
pub fn class_metrics(
    label: u32,
    pred: &[bool],
    gt: &[bool],
    sizes: [usize; 3],
    spacing: [f64; 3],
) -> ClassMetrics {
    let voxels_pred = pred.iter().filter(|&&x| x).count();
    let voxels_gt = gt.iter().filter(|&&x| x).count();
    let (dice, iou) = dice_iou(pred, gt);
    ClassMetrics {
        label,
        voxels_pred,
        voxels_gt,
        dice,
        iou,
        hd95_mm: hd95(pred, gt, sizes, spacing),
    }
}

/// Dice `2|P∩G| / (|P| + |G|)` and IoU `|P∩G| / |P∪G|`; both 1 when both masks are empty.
pub fn dice_iou(pred: &[bool], gt: &[bool]) -> (f64, f64) {
    let (mut both, mut either, mut sum) = (0usize, 0usize, 0usize);
    for (&p, &g) in pred.iter().zip(gt) {
        both += usize::from(p && g);
        either += usize::from(p || g);
        sum += usize::from(p) + usize::from(g);
    }
    if either == 0 {
        return (1.0, 1.0);
    }
    (2.0 * both as f64 / sum as f64, both as f64 / either as f64)
}

/// The label of every voxel, or an error naming the first voxel that holds no label.
fn label_values(volume: &Volume, name: &str) -> Result<Vec<u32>, MetricsError> {
    if volume.channels != 1 {
        return Err(MetricsError::Channels {
            name: name.to_string(),
            channels: volume.channels,
        });
    }
    let [si, sj, _] = volume.sizes;
    (0..volume.voxels.len())
        .map(|n| {
            let value = voxel_value(&volume.voxels, n);
            as_label(value).ok_or_else(|| MetricsError::NotALabel {
                name: name.to_string(),
                value,
                i: n % si,
                j: (n / si) % sj,
                k: n / (si * sj),
            })
        })
        .collect()
}

/// Length of the image diagonal in mm: the HD95 given when only one mask is empty.
pub fn image_diagonal(sizes: [usize; 3], spacing: [f64; 3]) -> f64 {
    (0..3)
        .map(|a| (sizes[a] as f64 * spacing[a]).powi(2))
        .sum::<f64>()
        .sqrt()
}
