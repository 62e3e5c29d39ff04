//! Average adult tooth dimensions (millimetres, at real size) and the shape class of each
//! position: crown outline, occlusal relief, root layout and pulp.

/// The crown's shape class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CrownKind {
    /// Blade-like crown ending in a straight incisal edge.
    Incisor,
    /// One pointed cusp.
    Canine,
    /// A buccal and a lingual cusp with a mesio-distal groove between them.
    Premolar,
    /// Four cusps, a boxy outline and crossing grooves.
    Molar,
}

/// How a crown's half-width changes from the cemento-enamel junction (t = 0) to the cusp
/// tips (t = 1), as a fraction of its largest half-width.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WidthProfile {
    /// Fraction at the cemento-enamel junction (so the root is narrower than the crown).
    pub cervical: f64,
    /// Height fraction of the widest point (the height of contour).
    pub peak: f64,
    /// Fraction at the occlusal end.
    pub occlusal: f64,
}

impl WidthProfile {
    /// Fraction of the largest half-width at height fraction t in [0, 1]: a parabola rising
    /// to 1 at `peak`, then a parabola falling to `occlusal`.
    pub(crate) fn at(&self, t: f64) -> f64 {
        if t <= self.peak {
            let r = (self.peak - t) / self.peak;
            self.cervical + (1.0 - self.cervical) * (1.0 - r * r)
        } else {
            let r = (t - self.peak) / (1.0 - self.peak);
            1.0 - (1.0 - self.occlusal) * r * r
        }
    }
}

/// One root (or the shared root trunk of a multi-rooted tooth), in the tooth's frame: u
/// mesial, v buccal, positions and radii as fractions of the cervical half-widths.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RootSpec {
    pub base: [f64; 2],
    pub apex: [f64; 2],
    pub radius: [f64; 2],
    /// Length as a fraction of the tooth's root length.
    pub length: f64,
    /// Radius at the apex as a fraction of the radius at the base.
    pub taper: f64,
}

const fn root(base: [f64; 2], apex: [f64; 2], radius: [f64; 2], length: f64) -> RootSpec {
    RootSpec {
        base,
        apex,
        radius,
        length,
        taper: 0.2,
    }
}

/// The part shared by the roots of a multi-rooted tooth before they split.
const fn trunk(length: f64) -> RootSpec {
    RootSpec {
        base: [0.0, 0.0],
        apex: [0.0, 0.0],
        radius: [0.95, 0.95],
        length,
        taper: 0.75,
    }
}

const SINGLE: &[RootSpec] = &[root([0.0, 0.0], [-0.15, 0.0], [0.95, 0.95], 1.0)];
const UPPER_FIRST_PREMOLAR: &[RootSpec] = &[
    trunk(0.35),
    root([0.0, 0.4], [-0.1, 0.55], [0.8, 0.5], 1.0),
    root([0.0, -0.4], [-0.1, -0.6], [0.8, 0.5], 0.95),
];
const UPPER_MOLAR: &[RootSpec] = &[
    trunk(0.3),
    root([0.45, 0.4], [0.45, 0.6], [0.42, 0.45], 0.95),
    root([-0.45, 0.4], [-0.6, 0.55], [0.4, 0.42], 0.85),
    root([0.0, -0.45], [0.0, -0.85], [0.5, 0.45], 1.0),
];
const LOWER_MOLAR: &[RootSpec] = &[
    trunk(0.25),
    root([0.5, 0.0], [0.55, 0.0], [0.42, 0.85], 1.0),
    root([-0.5, 0.0], [-0.75, 0.0], [0.4, 0.8], 0.9),
];

/// Everything fixed about one tooth position (one category in one jaw).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ToothSpec {
    pub kind: CrownKind,
    /// Mesio-distal crown width.
    pub mesiodistal: f64,
    /// Bucco-lingual crown width.
    pub buccolingual: f64,
    pub crown_height: f64,
    pub root_length: f64,
    /// Mean crown tilt towards buccal (degrees): incisors lean forward.
    pub inclination: f64,
    pub roots: &'static [RootSpec],
}

const fn tooth(
    kind: CrownKind,
    size: [f64; 4],
    inclination: f64,
    roots: &'static [RootSpec],
) -> ToothSpec {
    ToothSpec {
        kind,
        mesiodistal: size[0],
        buccolingual: size[1],
        crown_height: size[2],
        root_length: size[3],
        inclination,
        roots,
    }
}

use CrownKind::{Canine, Incisor, Molar, Premolar};

/// Maxillary teeth, category 1 (central incisor) to 8 (third molar).
const UPPER: [ToothSpec; 8] = [
    tooth(Incisor, [8.5, 7.0, 10.5, 13.0], 14.0, SINGLE),
    tooth(Incisor, [6.5, 6.0, 9.0, 13.0], 12.0, SINGLE),
    tooth(Canine, [7.5, 8.0, 10.0, 17.0], 8.0, SINGLE),
    tooth(Premolar, [7.0, 9.0, 8.5, 14.0], 3.0, UPPER_FIRST_PREMOLAR),
    tooth(Premolar, [6.5, 9.0, 8.5, 14.0], 3.0, SINGLE),
    tooth(Molar, [10.0, 11.0, 7.5, 12.5], 0.0, UPPER_MOLAR),
    tooth(Molar, [9.0, 11.0, 7.0, 12.0], 0.0, UPPER_MOLAR),
    tooth(Molar, [8.5, 10.0, 6.5, 11.0], 0.0, UPPER_MOLAR),
];

/// Mandibular teeth, category 1 to 8.
const LOWER: [ToothSpec; 8] = [
    tooth(Incisor, [5.0, 6.0, 9.0, 12.5], 8.0, SINGLE),
    tooth(Incisor, [5.5, 6.5, 9.5, 14.0], 8.0, SINGLE),
    tooth(Canine, [7.0, 7.5, 11.0, 16.0], 5.0, SINGLE),
    tooth(Premolar, [7.0, 7.5, 8.5, 14.0], 2.0, SINGLE),
    tooth(Premolar, [7.0, 8.0, 8.0, 14.5], 2.0, SINGLE),
    tooth(Molar, [11.0, 10.5, 7.5, 14.0], 0.0, LOWER_MOLAR),
    tooth(Molar, [10.5, 10.0, 7.0, 13.0], 0.0, LOWER_MOLAR),
    tooth(Molar, [10.0, 9.5, 7.0, 11.0], 0.0, LOWER_MOLAR),
];

/// The smallest mesio-distal crown width of any position (the lower central incisor).
pub(crate) const NARROWEST_CROWN: f64 = 5.0;

/// The specification of category 1..=8 in the upper or lower jaw.
pub(crate) fn spec(upper: bool, category: u8) -> &'static ToothSpec {
    let table = if upper { &UPPER } else { &LOWER };
    &table[usize::from(category.clamp(1, 8) - 1)]
}

impl CrownKind {
    /// Width profiles along the mesio-distal and the bucco-lingual axis.
    pub(crate) fn profiles(self) -> (WidthProfile, WidthProfile) {
        let p = |cervical, peak, occlusal| WidthProfile {
            cervical,
            peak,
            occlusal,
        };
        match self {
            Incisor => (p(0.7, 0.6, 0.95), p(0.85, 0.25, 0.25)),
            Canine => (p(0.7, 0.45, 0.35), p(0.85, 0.3, 0.35)),
            Premolar => (p(0.7, 0.5, 0.75), p(0.85, 0.35, 0.7)),
            Molar => (p(0.75, 0.45, 0.8), p(0.85, 0.3, 0.75)),
        }
    }

    /// Height of the occlusal surface as a fraction of the crown height at the normalised
    /// position (u / half-width, v / half-width): 1 at the cusp tips, lower in the grooves.
    pub(crate) fn occlusal_top(self, u: f64, v: f64) -> f64 {
        match self {
            Incisor => 1.0 - 0.06 * u * u,
            Canine => 1.0 - 0.3 * u * u - 0.1 * v * v,
            Premolar => 1.0 - 0.1 * u * u - groove(v, 0.18),
            Molar => 1.0 - 0.05 * (u * u + v * v) - groove(u, 0.1) - groove(v, 0.12),
        }
    }

    /// True where the cross-section is boxy (|u|⁴ + |v|⁴ ≤ 1) rather than elliptic.
    pub(crate) fn boxy(self) -> bool {
        self == Molar
    }

    /// Height of the pulp chamber's roof as a fraction of the crown height.
    pub(crate) fn pulp_roof(self) -> f64 {
        match self {
            Incisor | Canine => 0.5,
            Premolar => 0.4,
            Molar => 0.35,
        }
    }

    /// Enamel thickness over the cusps (mm at real size).
    pub(crate) fn occlusal_enamel(self) -> f64 {
        match self {
            Incisor => 1.0,
            Canine => 1.3,
            Premolar | Molar => 1.6,
        }
    }
}

/// A smooth groove of the given depth along x = 0, 1.1 wide, zero at and beyond |x| = 0.55.
fn groove(x: f64, depth: f64) -> f64 {
    let r = x / 0.55;
    if r.abs() >= 1.0 {
        0.0
    } else {
        let q = 1.0 - r * r;
        depth * q * q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_start_at_cervical_peak_at_one_and_end_at_occlusal() {
        for kind in [Incisor, Canine, Premolar, Molar] {
            let (md, bl) = kind.profiles();
            for p in [md, bl] {
                assert!((p.at(0.0) - p.cervical).abs() < 1e-12);
                assert!((p.at(p.peak) - 1.0).abs() < 1e-12);
                assert!((p.at(1.0) - p.occlusal).abs() < 1e-12);
                assert!(p.cervical < 1.0, "crowns must be wider than their roots");
            }
        }
    }

    #[test]
    fn molars_have_several_roots_and_incisors_one() {
        assert_eq!(spec(true, 1).roots.len(), 1);
        assert_eq!(spec(false, 3).roots.len(), 1);
        assert!(spec(true, 6).roots.len() >= 3);
        assert!(spec(false, 6).roots.len() >= 3);
        let narrowest = (1..=8)
            .flat_map(|c| [spec(true, c).mesiodistal, spec(false, c).mesiodistal])
            .fold(f64::INFINITY, f64::min);
        assert_eq!(narrowest, NARROWEST_CROWN);
    }
}
