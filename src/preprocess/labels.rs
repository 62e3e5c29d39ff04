//! Raw label values → training classes, with an explicit mapping.

use super::{Array3, PreprocessError, Result};

/// Inclusive ranges of raw values and the class each maps to (the reference pipeline's
/// category splitter turned label ranges into classes 0..8). Checked in order; a value in no
/// range is an error.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LabelMap {
    pub ranges: Vec<(i64, i64, u32)>,
}

impl LabelMap {
    /// One raw value per class: `pairs` are (raw value, class).
    pub fn from_pairs(pairs: &[(i64, u32)]) -> Self {
        LabelMap {
            ranges: pairs.iter().map(|&(v, c)| (v, v, c)).collect(),
        }
    }

    /// Inclusive ranges `(lo, hi, class)`.
    pub fn from_ranges(ranges: &[(i64, i64, u32)]) -> Self {
        LabelMap {
            ranges: ranges.to_vec(),
        }
    }

    /// The class of one raw value, if mapped.
    pub fn class_of(&self, value: i64) -> Option<u32> {
        self.ranges
            .iter()
            .find(|&&(lo, hi, _)| lo <= value && value <= hi)
            .map(|r| r.2)
    }

    /// Classes for every voxel; a non-integer or unmapped value is an error naming the voxel.
    pub fn apply(&self, labels: &Array3) -> Result<Array3> {
        let mut out = Vec::with_capacity(labels.len());
        for (n, &x) in labels.data.iter().enumerate() {
            let class = (x.fract() == 0.0)
                .then(|| self.class_of(x as i64))
                .flatten();
            let Some(class) = class else {
                let (ni, nj) = (labels.sizes[0], labels.sizes[1]);
                let index = [n % ni, n / ni % nj, n / (ni * nj)];
                return Err(PreprocessError::UnmappedLabel { value: x, index });
            };
            out.push(class as f32);
        }
        Array3::new(labels.sizes, out)
    }
}
