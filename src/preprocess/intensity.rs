//! Intensity scaling: min–max to [0, 1] and the CT window.

use super::Array3;

/// The range a min–max scaling used, so it can be undone or applied to another image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinMax {
    pub min: f32,
    pub max: f32,
}

impl MinMax {
    /// `(x − min) / (max − min)`; a constant image (max = min) maps to 0.
    pub fn apply(&self, a: &mut Array3) {
        let range = self.max - self.min;
        for x in &mut a.data {
            *x = if range > 0.0 {
                (*x - self.min) / range
            } else {
                0.0
            };
        }
    }

    pub fn invert(&self, a: &mut Array3) {
        let range = self.max - self.min;
        for x in &mut a.data {
            *x = *x * range + self.min;
        }
    }
}

/// Scales the array to [0, 1] by its own minimum and maximum (NaNs are left out of the range
/// and stay NaN); returns the range used.
pub fn min_max(a: &mut Array3) -> MinMax {
    let mut range = MinMax {
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
    };
    for &x in a.data.iter().filter(|x| !x.is_nan()) {
        range.min = range.min.min(x);
        range.max = range.max.max(x);
    }
    if range.min > range.max {
        range = MinMax { min: 0.0, max: 0.0 };
    }
    range.apply(a);
    range
}

/// Clips to the CT window [lo, hi] (e.g. −1000…3000 HU).
pub fn ct_window(a: &mut Array3, lo: f32, hi: f32) {
    for x in &mut a.data {
        *x = x.clamp(lo.min(hi), hi.max(lo));
    }
}
