//! What surrounds the teeth: alveolar bone (a ridge along each arch, the palate above the
//! upper one, the mandible's body below the lower one), soft tissue (lips, cheeks, tongue)
//! and air (outside the face, the oral cavity under the palate, the nasal cavity above it).
//! All lengths in model millimetres.

use rayon::prelude::*;

use super::arch::Nearest;
use super::layout::Layout;
use super::Tissue;

/// Bone beyond the teeth's bucco-lingual half-width at the crest, on the buccal side.
const BUCCAL_BONE: f64 = 1.5;
/// The same on the lingual side.
const LINGUAL_BONE: f64 = 2.5;
/// The ridge widens by this much per millimetre away from the crest, for `FLARE_DEPTH` mm.
const FLARE: f64 = 0.15;
const FLARE_DEPTH: f64 = 12.0;
/// Thickness of the lips and cheeks outside the bone.
const CHEEK: f64 = 9.0;
/// The palate rises this high above the crest towards the middle of the arch, over a
/// horizontal run of `VAULT_RUN`.
const VAULT: f64 = 10.0;
const VAULT_RUN: f64 = 10.0;
const PALATE: f64 = 4.0;
/// The tongue fills the mouth up to this height above the upper cusp tips.
const TONGUE_ABOVE_CUSPS: f64 = 3.0;

/// One vertical column of the grid seen from an arch.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Column {
    pub nearest: Nearest,
    /// Height of the alveolar crest here.
    pub crest: f64,
    /// Bucco-lingual half-width of the teeth here.
    pub half_width: f64,
}

/// Columns for the upper (index 0) and lower (index 1) arch; `xs` and `ys` are the model
/// coordinates of the grid's i and j indices, columns in j-major order.
pub(crate) fn columns(layout: &Layout, xs: &[f64], ys: &[f64]) -> [Vec<Column>; 2] {
    let one = |jaw: usize| -> Vec<Column> {
        let mut out = vec![Column::default(); xs.len() * ys.len()];
        out.par_chunks_mut(xs.len())
            .zip(ys.par_iter())
            .for_each(|(row, &y)| {
                for (column, &x) in row.iter_mut().zip(xs) {
                    let nearest = layout.arches[jaw].nearest(x, y);
                    let [crest, half_width] = layout.ridges[jaw].at(nearest.arc);
                    *column = Column {
                        nearest,
                        crest,
                        half_width,
                    };
                }
            });
        out
    };
    [one(0), one(1)]
}

/// Is this point inside the ridge of bone that holds the roots? `depth` is the distance
/// from the crest towards the roots (negative on the crown side).
fn in_ridge(column: &Column, depth: f64) -> bool {
    if depth < 0.0 {
        return false;
    }
    let flare = FLARE * depth.min(FLARE_DEPTH);
    let buccal = column.half_width + BUCCAL_BONE + flare;
    let n = column.nearest;
    if n.beyond_end {
        n.signed <= buccal
    } else {
        -(column.half_width + LINGUAL_BONE + flare) <= n.signed && n.signed <= buccal
    }
}

/// Inside the lips and cheeks (or the tongue, which is lingual of the arch)?
fn in_face(column: &Column) -> bool {
    column.nearest.signed <= column.half_width + BUCCAL_BONE + CHEEK
}

/// Tissue around the teeth at height z over the columns of both arches.
pub(crate) fn tissue_at(layout: &Layout, upper: &Column, lower: &Column, z: f64) -> Tissue {
    if z >= 0.0 {
        if in_ridge(upper, z - upper.crest) {
            return Tissue::Trabecular;
        }
        let n = upper.nearest;
        if !n.beyond_end && n.signed < 0.0 {
            let run = (-n.signed - upper.half_width - LINGUAL_BONE).clamp(0.0, VAULT_RUN);
            let floor = upper.crest + VAULT * run / VAULT_RUN;
            if z >= floor + PALATE {
                return Tissue::Air;
            }
            if z >= floor {
                return Tissue::Trabecular;
            }
            if z > 0.5 * layout.bite_gap + TONGUE_ABOVE_CUSPS {
                return Tissue::Air;
            }
        }
        return if in_face(upper) {
            Tissue::SoftTissue
        } else {
            Tissue::Air
        };
    }

    if z >= layout.mandible_base && in_ridge(lower, lower.crest - z) {
        return Tissue::Trabecular;
    }
    if in_face(lower) {
        Tissue::SoftTissue
    } else {
        Tissue::Air
    }
}

/// The tissue around the teeth for every voxel (bone reported as trabecular; the cortical
/// shell is found later from the final bone mask).
pub(crate) fn background(layout: &Layout, model: &[Vec<f64>; 3]) -> Vec<Tissue> {
    let [xs, ys, zs] = model;
    let cols = columns(layout, xs, ys);
    let plane = xs.len() * ys.len();
    let mut out = vec![Tissue::Air; plane * zs.len()];
    out.par_chunks_mut(plane)
        .zip(zs.par_iter())
        .for_each(|(slice, &z)| {
            for ((voxel, upper), lower) in slice.iter_mut().zip(&cols[0]).zip(&cols[1]) {
                *voxel = tissue_at(layout, upper, lower, z);
            }
        });
    out
}
