//! One tooth as a solid in its own frame, and the tissue (enamel, dentin, pulp, metal) at
//! any point of the model. Frame: u mesial (towards the midline along the arch), v buccal,
//! h along the long axis from the cemento-enamel junction (CEJ) towards the cusps; the crown
//! is 0 ≤ h ≤ crown height, the roots h < 0.

use super::anatomy::{CrownKind, RootSpec, ToothSpec, WidthProfile};
use super::Tissue;

/// Fraction of a root's radius taken by its canal (pulp).
const CANAL: f64 = 0.3;
/// Fraction of the cervical half-widths taken by the pulp chamber.
const CHAMBER: f64 = 0.35;
/// Canals stop short of the apex (fraction of the root length).
const CANAL_END: f64 = 0.9;
/// Least dentin around the pulp, in voxels, so that the pulp stays enclosed in the grid.
const PULP_WALL_VOXELS: f64 = 1.2;

pub(crate) type Vec3 = [f64; 3];

pub(crate) fn add(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

pub(crate) fn scale(a: Vec3, s: f64) -> Vec3 {
    [a[0] * s, a[1] * s, a[2] * s]
}

pub(crate) fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// A root with its sizes in millimetres.
#[derive(Clone, Copy, Debug)]
struct Root {
    base: [f64; 2],
    apex: [f64; 2],
    radius: [f64; 2],
    length: f64,
    taper: f64,
}

impl Root {
    fn new(spec: &RootSpec, cervical: [f64; 2], root_length: f64) -> Self {
        Root {
            base: [spec.base[0] * cervical[0], spec.base[1] * cervical[1]],
            apex: [spec.apex[0] * cervical[0], spec.apex[1] * cervical[1]],
            radius: [spec.radius[0] * cervical[0], spec.radius[1] * cervical[1]],
            length: spec.length * root_length,
            taper: spec.taper,
        }
    }

    /// Centre and radii of the cross-section at fraction τ ∈ [0, 1] of the length. The
    /// radius falls with τ², so roots stay thick near the crown and narrow towards the apex.
    fn section(&self, tau: f64) -> ([f64; 2], [f64; 2]) {
        let f = 1.0 - (1.0 - self.taper) * tau * tau;
        let centre = [
            self.base[0] + tau * (self.apex[0] - self.base[0]),
            self.base[1] + tau * (self.apex[1] - self.base[1]),
        ];
        (centre, [self.radius[0] * f, self.radius[1] * f])
    }

    /// How far below the CEJ the rounded apex reaches.
    fn reach(&self) -> f64 {
        let (_, r) = self.section(1.0);
        self.length + r[0].min(r[1])
    }
}

/// The random, per-tooth part of the anatomy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ToothDraws {
    pub width: f64,
    pub crown: f64,
    pub root: f64,
    pub twist_deg: f64,
    pub inclination_deg: f64,
    pub tip_deg: f64,
    pub buccal_shift: f64,
    pub axial_shift: f64,
    pub missing: bool,
    pub metal: bool,
    pub dentin_hu: f64,
    pub enamel_hu: f64,
}

/// A placed tooth: sizes in model millimetres, frame in model coordinates.
#[derive(Clone, Debug)]
pub(crate) struct ToothModel {
    pub fdi: u8,
    pub category: u8,
    pub upper: bool,
    pub present: bool,
    pub metal: bool,
    pub dentin_hu: f64,
    pub enamel_hu: f64,
    /// Centre of the CEJ.
    pub cej: Vec3,
    /// Unit axes u (mesial), v (buccal), w (long axis, towards the cusps).
    pub axes: [Vec3; 3],
    kind: CrownKind,
    half_md: f64,
    half_bl: f64,
    pub crown_height: f64,
    md_profile: WidthProfile,
    bl_profile: WidthProfile,
    enamel_side: f64,
    enamel_top: f64,
    pulp_roof: f64,
    chamber: [f64; 2],
    pulp_wall: f64,
    roots: Vec<Root>,
}

/// What the tooth puts at a point, and how central the point is in the tooth (smaller is
/// more central) so that overlapping neighbours can be told apart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Hit {
    pub tissue: Tissue,
    pub score: f64,
}

impl ToothModel {
    /// The tooth of `spec` with its frame and CEJ centre already placed. `voxel` is the voxel
    /// size in model millimetres: enamel is kept at least about one voxel thick.
    pub(crate) fn new(
        spec: &ToothSpec,
        fdi: u8,
        cej: Vec3,
        axes: [Vec3; 3],
        draws: &ToothDraws,
        voxel: f64,
    ) -> Self {
        let (md_profile, bl_profile) = spec.kind.profiles();
        let half_md = 0.5 * spec.mesiodistal * draws.width;
        let half_bl = 0.5 * spec.buccolingual * draws.width;
        let crown_height = spec.crown_height * draws.crown;
        let cervical = [half_md * md_profile.cervical, half_bl * bl_profile.cervical];
        let root_length = spec.root_length * draws.root;
        ToothModel {
            fdi,
            category: fdi % 10,
            upper: matches!(fdi / 10, 1 | 2),
            present: !draws.missing,
            metal: draws.metal,
            dentin_hu: draws.dentin_hu,
            enamel_hu: draws.enamel_hu,
            cej,
            axes,
            kind: spec.kind,
            half_md,
            half_bl,
            crown_height,
            md_profile,
            bl_profile,
            enamel_side: (0.75 * voxel).max(1.0),
            enamel_top: voxel.max(spec.kind.occlusal_enamel()),
            pulp_roof: spec.kind.pulp_roof() * crown_height,
            chamber: cervical.map(|c| (CHAMBER * c).min(c - PULP_WALL_VOXELS * voxel)),
            pulp_wall: PULP_WALL_VOXELS * voxel,
            roots: spec
                .roots
                .iter()
                .map(|r| Root::new(r, cervical, root_length))
                .collect(),
        }
    }

    /// Half of the crown's mesio-distal width.
    pub(crate) fn half_mesiodistal(&self) -> f64 {
        self.half_md
    }

    /// Half of the crown's bucco-lingual width.
    pub(crate) fn half_buccolingual(&self) -> f64 {
        self.half_bl
    }

    /// How far the deepest root apex lies below the CEJ, along the long axis.
    pub(crate) fn root_reach(&self) -> f64 {
        self.roots.iter().map(Root::reach).fold(0.0, f64::max)
    }

    /// Box in the tooth frame (u, v, h) that holds the whole tooth.
    pub(crate) fn local_bounds(&self) -> (Vec3, Vec3) {
        let (u, v) = (1.02 * self.half_md, 1.02 * self.half_bl);
        ([-u, -v, -self.root_reach()], [u, v, self.crown_height])
    }

    /// Model coordinates of a point given in the tooth frame.
    pub(crate) fn to_model(&self, local: Vec3) -> Vec3 {
        let [u, v, w] = self.axes;
        add(
            self.cej,
            add(
                scale(u, local[0]),
                add(scale(v, local[1]), scale(w, local[2])),
            ),
        )
    }

    /// The tissue of this tooth at model point `p`, if the tooth covers it.
    pub(crate) fn classify(&self, p: Vec3) -> Option<Hit> {
        let d = [p[0] - self.cej[0], p[1] - self.cej[1], p[2] - self.cej[2]];
        let (u, v, h) = (
            dot(d, self.axes[0]),
            dot(d, self.axes[1]),
            dot(d, self.axes[2]),
        );
        let (lo, hi) = self.local_bounds();
        if u < lo[0] || u > hi[0] || v < lo[1] || v > hi[1] || h < lo[2] || h > hi[2] {
            return None;
        }
        let tissue = if h >= 0.0 {
            self.crown(u, v, h)
        } else {
            self.root(u, v, h)
        }?;
        Some(Hit {
            tissue,
            score: u.abs() / self.half_md,
        })
    }

    fn inside_section(&self, x: f64, y: f64) -> bool {
        let (x2, y2) = (x * x, y * y);
        if self.kind.boxy() {
            x2 * x2 + y2 * y2 <= 1.0
        } else {
            x2 + y2 <= 1.0
        }
    }

    fn crown(&self, u: f64, v: f64, h: f64) -> Option<Tissue> {
        let (un, vn) = (u / self.half_md, v / self.half_bl);
        let top = self.crown_height * self.kind.occlusal_top(un, vn);
        if h > top {
            return None;
        }
        let t = h / self.crown_height;
        let sa = self.half_md * self.md_profile.at(t);
        let sb = self.half_bl * self.bl_profile.at(t);
        if !self.inside_section(u / sa, v / sb) {
            return None;
        }

        // An occlusal inlay: a box in the middle of the crown reaching its surface.
        if self.metal && t >= 0.55 && un.abs() <= 0.45 && vn.abs() <= 0.4 {
            return Some(Tissue::Metal);
        }

        // Enamel: the outer shell, thickest over the cusps and vanishing at the CEJ.
        let e = self.enamel_side * (t / 0.4).min(1.0);
        let core = h <= top - self.enamel_top
            && sa > e
            && sb > e
            && self.inside_section(u / (sa - e), v / (sb - e));
        if !core {
            return Some(Tissue::Enamel);
        }
        let (cu, cv) = (u / self.chamber[0], v / self.chamber[1]);
        if h <= self.pulp_roof
            && self.chamber[0] > 0.0
            && self.chamber[1] > 0.0
            && cu * cu + cv * cv <= 1.0
        {
            return Some(Tissue::Pulp);
        }
        Some(Tissue::Dentin)
    }

    fn root(&self, u: f64, v: f64, h: f64) -> Option<Tissue> {
        let depth = -h;
        let mut inside = false;
        for root in &self.roots {
            let tau = depth / root.length;
            let (c, r) = root.section(tau.min(1.0));
            let (x, y) = ((u - c[0]) / r[0], (v - c[1]) / r[1]);
            let q = x * x + y * y;
            if tau <= 1.0 {
                // The canal: a narrower ellipse on the same centre line, inside a dentin wall.
                let canal = r.map(|r| (CANAL * r).min(r - self.pulp_wall));
                if tau <= CANAL_END && canal[0] > 0.0 && canal[1] > 0.0 {
                    let (x, y) = ((u - c[0]) / canal[0], (v - c[1]) / canal[1]);
                    if x * x + y * y <= 1.0 {
                        return Some(Tissue::Pulp);
                    }
                }
                inside |= q <= 1.0;
            } else {
                // Rounded apex: half an ellipsoid below the last cross-section.
                let z = (depth - root.length) / r[0].min(r[1]);
                inside |= q + z * z <= 1.0;
            }
        }
        inside.then_some(Tissue::Dentin)
    }
}
