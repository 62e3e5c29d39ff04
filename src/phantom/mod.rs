//! A synthetic jaw phantom with exact tooth labels: a CT-like int16 volume of an upper and a
//! lower dental arch, and label maps of the teeth (binary), their categories (1 central
//! incisor … 8 third molar) and their FDI numbers (11–18, 21–28, 31–38, 41–48).
//!
//! # Geometry
//! Index axes: i = x (patient right → left), j = y (anterior → posterior), k = z (inferior →
//! superior), identity directions, isotropic spacing, and the volume's centre at world
//! (0, 0, 0) in LPS millimetres. The midline of the mouth is the plane x = 0: the patient's
//! right (quadrants 1 and 4) lies on −x, the left (quadrants 2 and 3) on +x. The upper teeth
//! lie above the occlusal plane (+z), the lower teeth below it. Viewed as a `[D, H, W]`
//! array (PyTorch order), D is k, H is j and W is i.
//!
//! # Anatomy
//! Two arches (parabolas flattened in front by a quartic term; the lower one narrower and
//! set back) with average adult tooth sizes, scaled uniformly (never above real size) so
//! that all 32 tooth positions fit the grid with a 3 mm margin: at the default 120 × 120 ×
//! 168 voxels of 0.5 mm the scale is about 0.8, at 64 × 64 × 48 voxels of 1 mm about 0.75.
//! Incisors and canines have one root, the upper first premolar two, upper molars three,
//! lower molars two; crowns are wider than their roots, capped with enamel and hollowed by
//! the pulp, which runs down the root canals. Neighbouring crowns overlap along the arch by
//! 0.4 mm (at least 0.8 voxel) so that they touch. The roots sit in alveolar bone
//! (trabecular inside, a cortical shell at every bone surface, sockets included), under the
//! palate above and in the mandible below; lips, cheeks and tongue are soft tissue, the
//! rest air. Teeth go missing, get a metal inlay, and are twisted, tilted and shifted by
//! small random amounts, all drawn from the seed.
//!
//! # Labels
//! Each present tooth is one 6-connected component of its instance label (so also one
//! 26-connected component); touching teeth share faces and are told apart only by their
//! labels. Fillings are part of the tooth.
//!
//! # Determinism
//! The same configuration gives the same bytes on every platform: the random numbers come
//! from this module's own generator, sines, cosines and exponentials from series using only
//! +, − and × (no libm), the noise from a per-voxel hash, and every parallel loop writes
//! each voxel from one fixed sequence of operations, whatever the scheduling.

mod anatomy;
mod arch;
mod config;
mod filters;
mod jaw;
mod layout;
mod portable_math;
mod raster;
mod texture;
mod tooth;

use std::time::Instant;

use rayon::prelude::*;
use tracing::debug;

use crate::io::{Volume, Voxels};
use layout::Layout;
use raster::NO_TOOTH;
use texture::ToothShades;

pub use config::{PhantomConfig, PhantomError, Tissue};

/// Cortical bone is this thick at real size (mm), and at least one voxel.
const CORTEX: f64 = 1.3;
/// Stream tag of the image noise in the per-voxel hash.
const NOISE_STREAM: u64 = 0x004E_4F49_5345;

/// One tooth present in the phantom.
#[derive(Clone, Debug, PartialEq)]
pub struct Tooth {
    /// FDI number: quadrant (1 upper right, 2 upper left, 3 lower left, 4 lower right) × 10
    /// + category.
    pub fdi: u8,
    /// 1 central incisor, 2 lateral incisor, 3 canine, 4/5 first/second premolar,
    /// 6/7/8 first/second/third molar.
    pub category: u8,
    /// Voxels carrying this tooth's label.
    pub voxels: usize,
    /// Mean world position (mm, LPS) of those voxels.
    pub centroid: [f64; 3],
    /// World position of the centre of the cemento-enamel junction (crown above, root below).
    pub cej: [f64; 3],
    /// Unit world direction of the long axis, from the roots towards the cusps.
    pub axis: [f64; 3],
    /// Whether the crown holds a metal inlay.
    pub metal: bool,
}

/// A generated phantom. All volumes share one geometry.
#[derive(Clone, Debug)]
pub struct Phantom {
    /// Hounsfield-like values, int16.
    pub image: Volume,
    /// 1 on tooth voxels, 0 elsewhere; uint8.
    pub teeth: Volume,
    /// Tooth category 1..=8, 0 background; uint8.
    pub categories: Volume,
    /// FDI number, 0 background; uint8.
    pub instances: Volume,
    /// The [`Tissue`] code of each voxel; uint8.
    pub tissues: Volume,
    /// Present teeth in FDI order.
    pub tooth_list: Vec<Tooth>,
    /// FDI numbers of the missing teeth, ascending.
    pub missing: Vec<u8>,
    /// Size of the anatomy relative to an average adult.
    pub scale: f64,
    /// World z (mm) of the occlusal plane, between the upper and the lower cusp tips: every
    /// voxel of an upper tooth lies above it, every voxel of a lower tooth below. (The
    /// midline is the plane x = 0.)
    pub occlusal_z: f64,
}

/// Generates the phantom described by `config`.
pub fn generate(config: &PhantomConfig) -> Result<Phantom, PhantomError> {
    config.validate()?;
    let started = Instant::now();
    let layout = Layout::plan(config)?;
    let sizes = config.sizes;
    let spacing = config.spacing;

    // World and model coordinates of the voxel centres along each axis.
    let origin: [f64; 3] = std::array::from_fn(|a| -0.5 * (sizes[a] as f64 - 1.0) * spacing);
    let model: [Vec<f64>; 3] = std::array::from_fn(|a| {
        (0..sizes[a])
            .map(|n| (origin[a] + n as f64 * spacing - layout.translation[a]) / layout.scale)
            .collect()
    });
    let mut geometry = Volume::new(sizes, Voxels::U8(Vec::new()), [spacing; 3]);
    geometry.origin = origin;

    let background = jaw::background(&layout, &model);
    debug!(
        "phantom: bone and soft tissue after {:?}",
        started.elapsed()
    );
    let boxes: Vec<_> = layout
        .teeth
        .iter()
        .map(|t| raster::index_box(t, &model))
        .collect();
    let mut maps = raster::rasterize(&layout.teeth, &boxes, &model);
    let counts = raster::keep_largest_components(&mut maps, &boxes, sizes);
    debug!("phantom: teeth after {:?}", started.elapsed());

    let mut tissue: Vec<Tissue> = maps
        .slot
        .par_iter()
        .zip(maps.tissue.par_iter().zip(background.par_iter()))
        .map(|(&slot, (&tooth, &around))| if slot == NO_TOOTH { around } else { tooth })
        .collect();
    add_cortex(
        &mut tissue,
        sizes,
        (CORTEX * layout.scale / spacing).max(1.0),
    );
    debug!("phantom: cortical bone after {:?}", started.elapsed());

    let values = render(config, &layout, &model, &tissue, &maps.slot);
    let mut image = geometry.with_voxels(Voxels::I16(values));
    image.key_values = vec![
        ("phantom_seed".into(), config.seed.to_string()),
        ("phantom_scale".into(), format!("{:.4}", layout.scale)),
    ];
    debug!("phantom: image after {:?}", started.elapsed());

    // Each label map looks its value up by slot (the tooth's index in the layout).
    let label = |value: fn(&tooth::ToothModel) -> u8| -> Volume {
        let mut table = [0u8; 256];
        for (slot, tooth) in layout.teeth.iter().enumerate() {
            table[slot] = value(tooth);
        }
        table[usize::from(NO_TOOTH)] = 0;
        let voxels = maps
            .slot
            .par_iter()
            .map(|&s| table[usize::from(s)])
            .collect();
        geometry.with_voxels(Voxels::U8(voxels))
    };
    let (tooth_list, missing) = tooth_records(&layout, &maps.slot, &counts, &geometry);
    Ok(Phantom {
        image,
        teeth: label(|_| 1),
        categories: label(|t| t.category),
        instances: label(|t| t.fdi),
        tissues: geometry.with_voxels(Voxels::U8(tissue.iter().map(|&t| t as u8).collect())),
        tooth_list,
        missing,
        scale: layout.scale,
        occlusal_z: layout.to_world([0.0; 3])[2],
    })
}

/// Turns the outer `thickness` voxels of the bone (at every surface, tooth sockets
/// included; the grid's border is not a surface) into cortical bone.
fn add_cortex(tissue: &mut [Tissue], sizes: [usize; 3], thickness: f64) {
    let feature: Vec<bool> = tissue
        .par_iter()
        .map(|&t| t != Tissue::Trabecular)
        .collect();
    let distance = filters::squared_distance(&feature, sizes);
    let limit = (thickness * thickness) as f32;
    tissue
        .par_iter_mut()
        .zip(distance.par_iter())
        .for_each(|(t, &d2)| {
            if *t == Tissue::Trabecular && d2 <= limit {
                *t = Tissue::Cortical;
            }
        });
}

/// The image: tissue values, then blur, then noise, rounded to int16.
fn render(
    config: &PhantomConfig,
    layout: &Layout,
    model: &[Vec<f64>; 3],
    tissue: &[Tissue],
    slot: &[u8],
) -> Vec<i16> {
    let [xs, ys, zs] = model;
    let (nx, plane) = (xs.len(), xs.len() * ys.len());
    let plain = ToothShades {
        dentin: 0.0,
        enamel: 0.0,
    };
    let mut values = vec![0.0f32; tissue.len()];
    values
        .par_chunks_mut(plane)
        .enumerate()
        .for_each(|(k, slice)| {
            for (at, value) in slice.iter_mut().enumerate() {
                let voxel = k * plane + at;
                let shades = match slot[voxel] {
                    NO_TOOTH => plain,
                    s => {
                        let t = &layout.teeth[usize::from(s)];
                        ToothShades {
                            dentin: t.dentin_hu,
                            enamel: t.enamel_hu,
                        }
                    }
                };
                let p = [xs[at % nx], ys[at / nx], zs[k]];
                *value = texture::hounsfield(config.seed, tissue[voxel], p, shades) as f32;
            }
        });

    if config.blur_mm > 0.0 {
        filters::gaussian_blur(
            &mut values,
            config.sizes,
            f64::from(config.blur_mm) / config.spacing,
        );
    }
    let noise = f64::from(config.noise_hu);
    values
        .par_iter()
        .enumerate()
        .map(|(voxel, &v)| {
            let mut v = f64::from(v);
            if noise > 0.0 {
                v += noise * crate::rng::portable_normal(config.seed ^ NOISE_STREAM, voxel as u64);
            }
            v.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
        })
        .collect()
}

/// Voxel counts, centroids and poses of the present teeth, and the FDI numbers of the rest.
fn tooth_records(
    layout: &Layout,
    slot: &[u8],
    counts: &[usize],
    geometry: &Volume,
) -> (Vec<Tooth>, Vec<u8>) {
    let [nx, ny, _] = geometry.sizes;
    let mut sums = vec![[0u64; 3]; layout.teeth.len()];
    for (voxel, &s) in slot.iter().enumerate() {
        if s != NO_TOOTH {
            let sum = &mut sums[usize::from(s)];
            sum[0] += (voxel % nx) as u64;
            sum[1] += ((voxel / nx) % ny) as u64;
            sum[2] += (voxel / (nx * ny)) as u64;
        }
    }

    let mut present = Vec::new();
    let mut missing = Vec::new();
    for ((tooth, &count), sum) in layout.teeth.iter().zip(counts).zip(&sums) {
        if count == 0 {
            missing.push(tooth.fdi);
            continue;
        }
        let mean = sum.map(|s| s as f64 / count as f64);
        present.push(Tooth {
            fdi: tooth.fdi,
            category: tooth.category,
            voxels: count,
            centroid: geometry.index_to_world(mean),
            cej: layout.to_world(tooth.cej),
            axis: tooth.axes[2],
            metal: tooth.metal,
        });
    }
    present.sort_by_key(|t| t.fdi);
    missing.sort_unstable();
    (present, missing)
}
