//! Drawing the anatomy from the seed and placing it: both arches, every tooth's size, pose
//! and fate (missing, filled), and the scale that fits the teeth into the grid.

use super::anatomy::{self, NARROWEST_CROWN};
use super::arch::{ArcProfile, Arch, ArchShape};
use super::portable_math::{radians, sin_cos};
use super::tooth::{add, scale, ToothDraws, ToothModel, Vec3};
use super::{PhantomConfig, PhantomError};
use crate::rng::Rng;

/// Neighbouring crowns overlap by this much along the arch (mm), and by at least
/// `CONTACT_VOXELS` voxels, so that their labels touch.
const CONTACT_OVERLAP: f64 = 0.4;
const CONTACT_VOXELS: f64 = 0.8;
/// Bone continues this far behind the last molar (mm of arc).
const BONE_BEHIND_LAST_TOOTH: f64 = 6.0;
/// Room kept around the teeth when fitting them into the grid (mm, real size).
const FIT_MARGIN: f64 = 3.0;
/// The alveolar crest lies this far apical of the CEJ (mm).
const CREST_BELOW_CEJ: f64 = 1.5;
/// The mandible's lower border lies this far below the deepest root apex (mm).
const MANDIBLE_BELOW_APEX: f64 = 7.0;
/// Fewest voxels across the narrowest crown for the anatomy to be resolved.
pub(crate) const MIN_VOXELS_PER_CROWN: f64 = 2.5;

/// Everything drawn from the seed, in model millimetres: x patient left, y posterior,
/// z superior, the occlusal plane at z = 0 and the midline at x = 0.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    /// Upper (index 0) and lower (index 1) arch.
    pub arches: [Arch; 2],
    /// All 32 positions, missing teeth included (they shape the bone), quadrants 1..4.
    pub teeth: Vec<ToothModel>,
    /// Per arch: the alveolar crest height and the bucco-lingual half-width of the teeth,
    /// along the arch.
    pub ridges: [ArcProfile; 2],
    /// Height of the mandible's lower border.
    pub mandible_base: f64,
    /// Vertical gap between the upper and the lower cusp tips.
    pub bite_gap: f64,
    /// World = scale · model + translation (the volume's centre is world (0, 0, 0)).
    pub scale: f64,
    pub translation: Vec3,
}

/// Draws for the whole mouth, from stream 0.
struct MouthDraws {
    upper: ArchShape,
    lower: ArchShape,
    bite_gap: f64,
    /// Factor on every tooth's crown widths (the patient's tooth size).
    tooth_size: f64,
}

fn draw_tooth(config: &PhantomConfig, fdi: u8, tooth_size: f64) -> ToothDraws {
    let mut rng = Rng::for_stream(config.seed, u64::from(fdi));
    let missing_prob = if fdi % 10 == 8 {
        config.third_molar_missing_prob
    } else {
        config.missing_tooth_prob
    };
    ToothDraws {
        width: tooth_size * (1.0 + rng.symmetric(0.03)),
        crown: 1.0 + rng.symmetric(0.05),
        root: 1.0 + rng.symmetric(0.08),
        twist_deg: rng.symmetric(8.0),
        inclination_deg: rng.symmetric(4.0),
        tip_deg: rng.symmetric(3.0),
        buccal_shift: rng.symmetric(0.4),
        axial_shift: rng.symmetric(0.2),
        missing: rng.chance(f64::from(missing_prob)),
        metal: rng.chance(f64::from(config.metal_prob)),
        dentin_hu: rng.range(1720.0, 1880.0),
        enamel_hu: rng.range(2650.0, 2850.0),
    }
}

/// Rotates the orthonormal pair (a, b) by `degrees` in their plane: a turns towards b.
fn turn(a: Vec3, b: Vec3, degrees: f64) -> (Vec3, Vec3) {
    let (s, c) = sin_cos(radians(degrees));
    (
        add(scale(a, c), scale(b, s)),
        add(scale(a, -s), scale(b, c)),
    )
}

/// Places the eight teeth of `quadrant` (1..=4) along its jaw's `arch`.
fn place_quadrant(
    config: &PhantomConfig,
    quadrant: u8,
    arch: &Arch,
    tooth_size: f64,
    bite_gap: f64,
    voxel: f64,
) -> Vec<ToothModel> {
    let upper = quadrant <= 2;
    let right = quadrant == 1 || quadrant == 4;
    let draws: Vec<ToothDraws> = (1..=8)
        .map(|c| draw_tooth(config, quadrant * 10 + c, tooth_size))
        .collect();

    let mut teeth = Vec::with_capacity(8);
    let mut arc = 0.0;
    let mut previous_half = 0.0;
    for (index, draw) in draws.iter().enumerate() {
        let category = index as u8 + 1;
        let spec = anatomy::spec(upper, category);
        let half = 0.5 * spec.mesiodistal * draw.width;
        let overlap = CONTACT_OVERLAP.max(CONTACT_VOXELS * voxel);
        arc += previous_half + half - if index == 0 { 0.5 } else { 1.0 } * overlap;
        previous_half = half;

        let signed_arc = if right { -arc } else { arc };
        let point = arch.point(signed_arc);
        let (tangent, normal) = arch.frame(point[0]);
        let mesial_sign = if right { 1.0 } else { -1.0 };
        let u = [mesial_sign * tangent[0], mesial_sign * tangent[1], 0.0];
        let v = [normal[0], normal[1], 0.0];
        let w = [0.0, 0.0, if upper { -1.0 } else { 1.0 }];

        // Twist about the long axis, lean the crown buccally, tip it mesio-distally.
        let (u, v) = turn(u, v, draw.twist_deg);
        let (w, v) = turn(w, v, spec.inclination + draw.inclination_deg);
        let (w, u) = turn(w, u, draw.tip_deg);

        // The CEJ sits one crown height (along the tilted axis) behind the occlusal plane.
        let crown = spec.crown_height * draw.crown;
        let cusp_z = if upper {
            0.5 * bite_gap
        } else {
            -0.5 * bite_gap
        };
        let shift = [
            v[0] * draw.buccal_shift,
            v[1] * draw.buccal_shift,
            draw.axial_shift,
        ];
        let cej = add([point[0], point[1], cusp_z - crown * w[2]], shift);
        teeth.push(ToothModel::new(
            spec,
            quadrant * 10 + category,
            cej,
            [u, v, w],
            draw,
            voxel,
        ));
    }
    teeth
}

/// Model-space bounding box of a tooth.
fn tooth_box(tooth: &ToothModel) -> (Vec3, Vec3) {
    let (lo, hi) = tooth.local_bounds();
    let mut min = [f64::INFINITY; 3];
    let mut max = [f64::NEG_INFINITY; 3];
    for corner in 0..8 {
        let local = [
            if corner & 1 == 0 { lo[0] } else { hi[0] },
            if corner & 2 == 0 { lo[1] } else { hi[1] },
            if corner & 4 == 0 { lo[2] } else { hi[2] },
        ];
        let p = tooth.to_model(local);
        for a in 0..3 {
            min[a] = min[a].min(p[a]);
            max[a] = max[a].max(p[a]);
        }
    }
    (min, max)
}

impl Layout {
    pub(crate) fn plan(config: &PhantomConfig) -> Result<Layout, PhantomError> {
        let mut rng = Rng::for_stream(config.seed, 0);
        let upper = ArchShape {
            y0: 0.0,
            c2: rng.range(0.019, 0.025),
            c4: rng.range(3.0e-5, 4.5e-5),
            width: rng.range(0.96, 1.04),
        };
        // The lower arch sits behind (overjet) and inside the upper one.
        let lower = ArchShape {
            y0: rng.range(2.0, 3.0),
            width: upper.width * rng.range(0.91, 0.95),
            ..upper
        };
        let mouth = MouthDraws {
            upper,
            lower,
            bite_gap: rng.range(1.6, 2.4),
            tooth_size: rng.range(0.95, 1.05),
        };

        // The voxel size in model mm (spacing / scale) sets the contact overlap and the least
        // enamel thickness, but the scale depends on the extent of the teeth. A draft at
        // scale 1 (the smallest model voxel, so the least overlap and the longest arches)
        // gives the scale; the final teeth, placed with more overlap, only take less room.
        let draft = Self::place(config, &mouth, config.spacing);
        let (scale, translation) = Self::fit(config, &draft.teeth)?;
        let mut layout = Self::place(config, &mouth, config.spacing / scale);
        layout.scale = scale;
        layout.translation = translation;
        Ok(layout)
    }

    fn place(config: &PhantomConfig, mouth: &MouthDraws, voxel: f64) -> Layout {
        let provisional = [Arch::new(mouth.upper, 200.0), Arch::new(mouth.lower, 200.0)];
        let mut teeth = Vec::with_capacity(32);
        for quadrant in 1..=4u8 {
            let arch = &provisional[usize::from(quadrant > 2)];
            teeth.extend(place_quadrant(
                config,
                quadrant,
                arch,
                mouth.tooth_size,
                mouth.bite_gap,
                voxel,
            ));
        }

        // The bone ends a little behind the last molar of either side.
        let mut ends = [0.0f64; 2];
        let mut ridge_samples = [Vec::new(), Vec::new()];
        let mut mandible_base = f64::INFINITY;
        for tooth in &teeth {
            let jaw = usize::from(!tooth.upper);
            let arch = &provisional[jaw];
            let arc = arc_of(arch, tooth.cej);
            ends[jaw] = ends[jaw].max(arc.abs() + tooth.half_mesiodistal());
            let crest = if tooth.upper {
                tooth.cej[2] + CREST_BELOW_CEJ
            } else {
                tooth.cej[2] - CREST_BELOW_CEJ
            };
            ridge_samples[jaw].push((arc, [crest, tooth.half_buccolingual()]));
            if !tooth.upper {
                let apex = tooth.to_model([0.0, 0.0, -tooth.root_reach()]);
                mandible_base = mandible_base.min(apex[2] - MANDIBLE_BELOW_APEX);
            }
        }
        let [upper_samples, lower_samples] = ridge_samples;
        Layout {
            arches: [
                Arch::new(mouth.upper, ends[0] + BONE_BEHIND_LAST_TOOTH),
                Arch::new(mouth.lower, ends[1] + BONE_BEHIND_LAST_TOOTH),
            ],
            teeth,
            ridges: [
                ArcProfile::new(upper_samples),
                ArcProfile::new(lower_samples),
            ],
            mandible_base,
            bite_gap: mouth.bite_gap,
            scale: 1.0,
            translation: [0.0; 3],
        }
    }

    /// The largest scale (at most real size) at which the teeth and a margin fit the grid,
    /// and the translation that centres them (the midline stays at world x = 0).
    fn fit(config: &PhantomConfig, teeth: &[ToothModel]) -> Result<(f64, Vec3), PhantomError> {
        let mut min = [f64::INFINITY; 3];
        let mut max = [f64::NEG_INFINITY; 3];
        for tooth in teeth {
            let (lo, hi) = tooth_box(tooth);
            for a in 0..3 {
                min[a] = min[a].min(lo[a]);
                max[a] = max[a].max(hi[a]);
            }
        }
        let extent = [
            2.0 * min[0].abs().max(max[0].abs()),
            max[1] - min[1],
            max[2] - min[2],
        ];

        let mut scale: f64 = 1.0;
        for (&size, &length) in config.sizes.iter().zip(&extent) {
            let field_of_view = size as f64 * config.spacing;
            scale = scale.min(field_of_view / (length + 2.0 * FIT_MARGIN));
        }
        let voxels = NARROWEST_CROWN * scale / config.spacing;
        if voxels < MIN_VOXELS_PER_CROWN {
            return Err(PhantomError::TooCoarse {
                sizes: config.sizes,
                spacing: config.spacing,
                scale,
                voxels,
                min: MIN_VOXELS_PER_CROWN,
            });
        }
        let translation = [
            0.0,
            -scale * 0.5 * (min[1] + max[1]),
            -scale * 0.5 * (min[2] + max[2]),
        ];
        Ok((scale, translation))
    }

    /// World position (mm, LPS) of a model point.
    pub(crate) fn to_world(&self, p: Vec3) -> Vec3 {
        add(scale(p, self.scale), self.translation)
    }
}

/// Signed arc length of the arch point nearest to a tooth's CEJ centre.
fn arc_of(arch: &Arch, p: Vec3) -> f64 {
    arch.nearest(p[0], p[1]).arc
}
