//! The dental arch: the curve y = y0 + c2 (x/w)² + c4 (x/w)⁴ in the horizontal plane of the
//! model (millimetres, +x patient left, +y posterior) — a parabola with a flattened front and
//! nearly straight, slowly diverging sides, as real arches have — walked by arc length from
//! the midline: negative arc lengths on the patient's right (−x), positive on the left.

/// Step of the arc-length table along x (mm).
const TABLE_STEP: f64 = 0.02;
/// Step between the polyline points used for nearest-point queries (mm of arc).
const POLYLINE_STEP: f64 = 0.5;

#[derive(Clone, Debug)]
pub(crate) struct Arch {
    shape: ArchShape,
    /// `lengths[n]`: arc length from x = 0 to x = n · TABLE_STEP.
    lengths: Vec<f64>,
    /// Points on the curve from arc −end to +end, and their signed arc lengths.
    polyline: Vec<[f64; 2]>,
    polyline_arc: Vec<f64>,
}

/// Where a point lies relative to the arch curve.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Nearest {
    /// Distance to the curve, positive on the buccal side (in front of or outside the arch),
    /// negative on the lingual side (tongue, palate).
    pub signed: f64,
    /// Signed arc length of the nearest point on the curve.
    pub arc: f64,
    /// True when the nearest point is an end of the curve and the point lies beyond it.
    pub beyond_end: bool,
}

/// The coefficients of an arch curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ArchShape {
    /// y at the midline.
    pub y0: f64,
    /// Coefficient of (x/w)²: half the curvature at the midline.
    pub c2: f64,
    /// Coefficient of (x/w)⁴.
    pub c4: f64,
    /// Width factor w (the lower arch is narrower than the upper).
    pub width: f64,
}

impl ArchShape {
    pub(crate) fn y(&self, x: f64) -> f64 {
        let r2 = (x / self.width) * (x / self.width);
        self.y0 + self.c2 * r2 + self.c4 * r2 * r2
    }

    pub(crate) fn slope(&self, x: f64) -> f64 {
        let w2 = self.width * self.width;
        2.0 * self.c2 * x / w2 + 4.0 * self.c4 * x * x * x / (w2 * w2)
    }
}

impl Arch {
    /// The arch from arc length −end to +end (where the jaw bone ends).
    pub(crate) fn new(shape: ArchShape, end: f64) -> Self {
        let mut lengths = vec![0.0];
        let mut x = 0.0;
        while lengths[lengths.len() - 1] < end + 1.0 {
            let a = shape.slope(x);
            let b = shape.slope(x + TABLE_STEP);
            let segment = 0.5 * TABLE_STEP * ((1.0 + a * a).sqrt() + (1.0 + b * b).sqrt());
            lengths.push(lengths[lengths.len() - 1] + segment);
            x += TABLE_STEP;
        }

        let mut arch = Arch {
            shape,
            lengths,
            polyline: vec![],
            polyline_arc: vec![],
        };
        let steps = (2.0 * end / POLYLINE_STEP).ceil().max(1.0) as usize;
        for n in 0..=steps {
            let arc = -end + 2.0 * end * n as f64 / steps as f64;
            arch.polyline.push(arch.point(arc));
            arch.polyline_arc.push(arc);
        }
        arch
    }

    /// x of the point at arc length `arc` ≥ 0 from the midline.
    fn x_at(&self, arc: f64) -> f64 {
        let n = self
            .lengths
            .partition_point(|&l| l <= arc)
            .clamp(1, self.lengths.len() - 1);
        let (l0, l1) = (self.lengths[n - 1], self.lengths[n]);
        let frac = if l1 > l0 { (arc - l0) / (l1 - l0) } else { 0.0 };
        (n as f64 - 1.0 + frac) * TABLE_STEP
    }

    /// The point at signed arc length `arc` (negative: patient right, −x).
    pub(crate) fn point(&self, arc: f64) -> [f64; 2] {
        let x = if arc < 0.0 {
            -self.x_at(-arc)
        } else {
            self.x_at(arc)
        };
        [x, self.shape.y(x)]
    }

    /// Unit tangent (pointing to +x) and unit buccal normal at the point with this x.
    pub(crate) fn frame(&self, x: f64) -> ([f64; 2], [f64; 2]) {
        let slope = self.shape.slope(x);
        let norm = (1.0 + slope * slope).sqrt();
        ([1.0 / norm, slope / norm], [slope / norm, -1.0 / norm])
    }

    /// Nearest point of the curve (between the two bone ends) to (x, y).
    pub(crate) fn nearest(&self, x: f64, y: f64) -> Nearest {
        let mut best = (f64::INFINITY, 0.0, false);
        let last = self.polyline.len() - 2;
        for n in 0..=last {
            let [ax, ay] = self.polyline[n];
            let [bx, by] = self.polyline[n + 1];
            let (sx, sy) = (bx - ax, by - ay);
            let raw = ((x - ax) * sx + (y - ay) * sy) / (sx * sx + sy * sy);
            let t = raw.clamp(0.0, 1.0);
            let (dx, dy) = (x - ax - t * sx, y - ay - t * sy);
            let d2 = dx * dx + dy * dy;
            if d2 < best.0 {
                let arc =
                    self.polyline_arc[n] + t * (self.polyline_arc[n + 1] - self.polyline_arc[n]);
                let beyond = (n == 0 && raw < 0.0) || (n == last && raw > 1.0);
                best = (d2, arc, beyond);
            }
        }

        let distance = best.0.sqrt();
        let outside = best.2 || y < self.shape.y(x);
        Nearest {
            signed: if outside { distance } else { -distance },
            arc: best.1,
            beyond_end: best.2,
        }
    }
}

/// A quantity sampled at tooth positions along an arch, read back by linear interpolation
/// in arc length (constant beyond the first and last sample).
#[derive(Clone, Debug, Default)]
pub(crate) struct ArcProfile {
    samples: Vec<(f64, [f64; 2])>,
}

impl ArcProfile {
    /// Samples in any order; they are sorted by arc length.
    pub(crate) fn new(mut samples: Vec<(f64, [f64; 2])>) -> Self {
        samples.sort_by(|a, b| a.0.total_cmp(&b.0));
        ArcProfile { samples }
    }

    pub(crate) fn at(&self, arc: f64) -> [f64; 2] {
        let s = &self.samples;
        let n = s.partition_point(|&(a, _)| a <= arc);
        if n == 0 {
            return s[0].1;
        }
        if n == s.len() {
            return s[s.len() - 1].1;
        }
        let ((a0, v0), (a1, v1)) = (s[n - 1], s[n]);
        let f = (arc - a0) / (a1 - a0);
        [v0[0] + f * (v1[0] - v0[0]), v0[1] + f * (v1[1] - v0[1])]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arc_length_matches_the_closed_form() {
        // Arc length of y = c x² from 0 to X: (X s + asinh(2 c X) / (2 c)) / 2,
        // with s = sqrt(1 + (2cX)²).
        let c = 0.05;
        let arch = Arch::new(
            ArchShape {
                y0: 0.0,
                c2: c,
                c4: 0.0,
                width: 1.0,
            },
            70.0,
        );
        for x in [5.0f64, 20.0, 31.0] {
            let q = 2.0 * c * x;
            let exact = (x * (1.0 + q * q).sqrt() + q.asinh() / (2.0 * c)) / 2.0;
            let p = arch.point(exact);
            assert!((p[0] - x).abs() < 1e-3, "x {x}: got {}", p[0]);
            let p = arch.point(-exact);
            assert!((p[0] + x).abs() < 1e-3);
        }
    }

    #[test]
    fn quartic_arch_is_flatter_in_front_and_narrower_when_scaled() {
        let shape = ArchShape {
            y0: 0.0,
            c2: 0.02,
            c4: 4e-5,
            width: 1.0,
        };
        assert!(
            (shape.slope(0.5) - (shape.y(0.5 + 1e-6) - shape.y(0.5 - 1e-6)) / 2e-6).abs() < 1e-6
        );
        assert!(
            (shape.slope(25.0) - (shape.y(25.0 + 1e-6) - shape.y(25.0 - 1e-6)) / 2e-6).abs() < 1e-5
        );
        let upper = Arch::new(shape, 60.0);
        let lower = Arch::new(
            ArchShape {
                width: 0.93,
                ..shape
            },
            60.0,
        );
        // Same arc length from the midline: the narrower arch reaches less far to the side.
        assert!(lower.point(40.0)[0] < upper.point(40.0)[0] - 1.0);
    }

    #[test]
    fn nearest_reports_side_distance_and_arc() {
        let arch = Arch::new(
            ArchShape {
                y0: -10.0,
                c2: 0.05,
                c4: 0.0,
                width: 1.0,
            },
            60.0,
        );
        let front = arch.nearest(0.0, -13.0);
        assert!((front.signed - 3.0).abs() < 1e-9 && front.arc.abs() < 1e-9);
        let inside = arch.nearest(0.0, -8.0);
        // Seen from inside, the polyline's 0.5 mm chords are nearer than the curve (< 1 µm).
        assert!((inside.signed + 2.0).abs() < 1e-3 && !inside.beyond_end);

        // A point 2 mm along the buccal normal of the point at arc 20.
        let p = arch.point(20.0);
        let (_, normal) = arch.frame(p[0]);
        let q = arch.nearest(p[0] + 2.0 * normal[0], p[1] + 2.0 * normal[1]);
        assert!((q.signed - 2.0).abs() < 0.01 && (q.arc - 20.0).abs() < 0.01);

        let end = arch.point(60.0);
        let beyond = arch.nearest(end[0] + 5.0, end[1] + 50.0);
        assert!(beyond.beyond_end && beyond.signed > 0.0);
    }

    #[test]
    fn profile_interpolates_and_clamps() {
        let p = ArcProfile::new(vec![(10.0, [2.0, 0.0]), (-10.0, [0.0, 4.0])]);
        assert_eq!(p.at(0.0), [1.0, 2.0]);
        assert_eq!(p.at(-50.0), [0.0, 4.0]);
        assert_eq!(p.at(50.0), [2.0, 0.0]);
    }
}
