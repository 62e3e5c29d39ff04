//! Surfaces of labels in world millimetres.

use std::collections::{BTreeMap, BTreeSet};

use super::tetra::isosurface_f64;
use super::{Mesh, MeshError};
use crate::io::{Volume, Voxels};

/// The surface of the voxels equal to `label`, in world millimetres (LPS), normals outward.
///
/// The voxels of the label are 1 and all others 0, cut at 0.5, so the surface passes halfway
/// between voxel centres; vertices are mapped by the volume's geometry
/// (`origin + direction · (spacing ⊙ index)`). An absent label gives an empty mesh. Only the
/// first channel of a multi-channel volume is looked at.
pub fn label_surface(labels: &Volume, label: u32) -> Mesh {
    label_surfaces(labels, &[label])
        .pop()
        .expect("one mesh per requested label")
}

/// [`label_surface`] for several labels, reading the volume once: one mesh per entry of
/// `wanted`, in the same order.
pub fn label_surfaces(labels: &Volume, wanted: &[u32]) -> Vec<Mesh> {
    let values = &labels.voxels;
    let channels = labels.channels.max(1);
    let [si, sj, sk] = labels.sizes;

    // Bounding box of each wanted label, so that each surface is extracted from a small crop.
    let mut boxes: BTreeMap<u32, Option<Bounds>> = wanted.iter().map(|&l| (l, None)).collect();
    for k in 0..sk {
        for j in 0..sj {
            for i in 0..si {
                let label = as_label(voxel_value(values, ((k * sj + j) * si + i) * channels));
                if let Some(slot) = label.and_then(|l| boxes.get_mut(&l)) {
                    grow(slot, [i, j, k]);
                }
            }
        }
    }

    wanted
        .iter()
        .map(|label| match boxes[label] {
            None => Mesh::default(),
            Some((lo, hi)) => surface_in_box(labels, *label, lo, hi),
        })
        .collect()
}

/// Smallest and largest voxel index on each axis.
type Bounds = ([usize; 3], [usize; 3]);

fn grow(slot: &mut Option<Bounds>, p: [usize; 3]) {
    match slot {
        None => *slot = Some((p, p)),
        Some((lo, hi)) => {
            for axis in 0..3 {
                lo[axis] = lo[axis].min(p[axis]);
                hi[axis] = hi[axis].max(p[axis]);
            }
        }
    }
}

/// The label's surface from the crop `lo..=hi`, which holds all its voxels; the isosurface's
/// own padding stands for the voxels around the crop, none of which carries the label.
fn surface_in_box(labels: &Volume, label: u32, lo: [usize; 3], hi: [usize; 3]) -> Mesh {
    let channels = labels.channels.max(1);
    let [si, sj, _] = labels.sizes;
    let crop = [0, 1, 2].map(|a| hi[a] - lo[a] + 1);
    let mut mask = Vec::with_capacity(crop.iter().product());
    for k in lo[2]..=hi[2] {
        for j in lo[1]..=hi[1] {
            for i in lo[0]..=hi[0] {
                let value = voxel_value(&labels.voxels, ((k * sj + j) * si + i) * channels);
                mask.push(if value == f64::from(label) { 1.0 } else { 0.0 });
            }
        }
    }
    let (positions, mut triangles) = isosurface_f64(&mask, crop, 0.5);

    let vertices = positions
        .iter()
        .map(|p| {
            let index = [0, 1, 2].map(|a| p[a] + lo[a] as f64);
            labels.index_to_world(index).map(|x| x as f32)
        })
        .collect();

    // A mirroring geometry (negative determinant) turns the winding inside out.
    if geometry_determinant(labels) < 0.0 {
        for t in &mut triangles {
            t.swap(1, 2);
        }
    }
    Mesh {
        vertices,
        triangles,
    }
}

/// Determinant of `direction · diag(spacing)`, the index-to-world map's linear part.
fn geometry_determinant(volume: &Volume) -> f64 {
    let m: [[f64; 3]; 3] = std::array::from_fn(|r| {
        std::array::from_fn(|c| volume.direction[r][c] * volume.spacing[c])
    });
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

/// The nonzero labels in a label map, ascending. Values that are not whole numbers in the
/// u32 range are an error naming the first such voxel.
pub fn labels_present(labels: &Volume) -> Result<Vec<u32>, MeshError> {
    if labels.channels != 1 {
        return Err(MeshError::Channels {
            channels: labels.channels,
        });
    }
    let [si, sj, _] = labels.sizes;
    let mut present = BTreeSet::new();
    for n in 0..labels.voxels.len() {
        let value = voxel_value(&labels.voxels, n);
        match as_label(value) {
            Some(0) => {}
            Some(label) => {
                present.insert(label);
            }
            None => {
                return Err(MeshError::NotALabel {
                    value,
                    i: n % si,
                    j: (n / si) % sj,
                    k: n / (si * sj),
                })
            }
        }
    }
    Ok(present.into_iter().collect())
}

/// Value number `n` of `voxels` as f64 (exact for every integer label), without converting
/// the whole volume.
pub(crate) fn voxel_value(voxels: &Voxels, n: usize) -> f64 {
    match voxels {
        Voxels::I8(v) => f64::from(v[n]),
        Voxels::U8(v) => f64::from(v[n]),
        Voxels::I16(v) => f64::from(v[n]),
        Voxels::U16(v) => f64::from(v[n]),
        Voxels::I32(v) => f64::from(v[n]),
        Voxels::U32(v) => f64::from(v[n]),
        Voxels::I64(v) => v[n] as f64,
        Voxels::U64(v) => v[n] as f64,
        Voxels::F32(v) => f64::from(v[n]),
        Voxels::F64(v) => v[n],
    }
}

/// The label a value stands for: a whole number from 0 to `u32::MAX`.
pub(crate) fn as_label(value: f64) -> Option<u32> {
    (value.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&value)).then_some(value as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrored_geometry_keeps_normals_outward() {
        let mut labels = vec![0u8; 27];
        labels[13] = 5;
        let mut volume = Volume::new([3, 3, 3], Voxels::U8(labels), [1.0, 2.0, 0.5]);
        volume.direction = [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        assert!(geometry_determinant(&volume) < 0.0);

        let mesh = label_surface(&volume, 5);
        assert!(mesh.is_closed());
        assert!(mesh.signed_volume() > 0.0);
        let (lo, hi) = mesh.bounds().unwrap();
        // Voxel 1 sits at world -1 on the flipped axis; its surface spans half a voxel each way.
        assert_eq!((lo[0], hi[0]), (-1.5, -0.5));
        assert_eq!((lo[1], hi[1]), (1.0, 3.0));
        assert_eq!((lo[2], hi[2]), (0.25, 0.75));
    }

    #[test]
    fn labels_present_rejects_fractions() {
        let volume = Volume::new([2, 1, 1], Voxels::F32(vec![3.0, 0.5]), [1.0; 3]);
        let err = labels_present(&volume).unwrap_err().to_string();
        assert!(err.contains("0.5") && err.contains("(1, 0, 0)"), "{err}");

        let volume = Volume::new([3, 1, 1], Voxels::I16(vec![21, 0, 11]), [1.0; 3]);
        assert_eq!(labels_present(&volume).unwrap(), vec![11, 21]);
    }
}
