//! Label consistency of the jaw phantom: teeth, categories and FDI instances agree with each
//! other and with the tooth list, every present tooth is one 6-connected component, the
//! patient's right is on −x, and neighbouring teeth touch.

use enamel::io::{Volume, Voxels};
use enamel::phantom::{generate, Phantom, PhantomConfig};

fn u8_voxels(volume: &Volume) -> &[u8] {
    match &volume.voxels {
        Voxels::U8(v) => v,
        other => panic!("expected uint8 labels, got {}", other.type_name()),
    }
}

fn all_fdi() -> Vec<u8> {
    (1..=4u8)
        .flat_map(|q| (1..=8u8).map(move |c| q * 10 + c))
        .collect()
}

/// Sizes of the 6-connected components of the voxels labelled `label`.
fn components(labels: &[u8], sizes: [usize; 3], label: u8) -> Vec<usize> {
    let [nx, ny, nz] = sizes;
    let mut seen = vec![false; labels.len()];
    let mut found = Vec::new();
    for start in 0..labels.len() {
        if seen[start] || labels[start] != label {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![start];
        let mut count = 0;
        while let Some(l) = stack.pop() {
            count += 1;
            let (i, j, k) = (l % nx, (l / nx) % ny, l / (nx * ny));
            let mut neighbours = Vec::with_capacity(6);
            if i > 0 {
                neighbours.push(l - 1);
            }
            if i + 1 < nx {
                neighbours.push(l + 1);
            }
            if j > 0 {
                neighbours.push(l - nx);
            }
            if j + 1 < ny {
                neighbours.push(l + nx);
            }
            if k > 0 {
                neighbours.push(l - nx * ny);
            }
            if k + 1 < nz {
                neighbours.push(l + nx * ny);
            }
            for n in neighbours {
                if !seen[n] && labels[n] == label {
                    seen[n] = true;
                    stack.push(n);
                }
            }
        }
        found.push(count);
    }
    found
}

/// Number of voxel faces shared by labels a and b.
fn shared_faces(labels: &[u8], sizes: [usize; 3], a: u8, b: u8) -> usize {
    let [nx, ny, _] = sizes;
    let strides = [1, nx, nx * ny];
    let mut faces = 0;
    for (l, &value) in labels.iter().enumerate() {
        if value != a {
            continue;
        }
        for stride in strides {
            for n in [l.checked_sub(stride), Some(l + stride)]
                .into_iter()
                .flatten()
            {
                if labels.get(n) == Some(&b) {
                    faces += 1;
                }
            }
        }
    }
    faces
}

/// Checks every consistency rule on one phantom; returns (touching pairs, neighbour pairs).
fn check_labels(phantom: &Phantom) -> (usize, usize) {
    let sizes = phantom.image.sizes;
    let teeth = u8_voxels(&phantom.teeth);
    let categories = u8_voxels(&phantom.categories);
    let instances = u8_voxels(&phantom.instances);
    for volume in [&phantom.teeth, &phantom.categories, &phantom.instances] {
        assert_eq!(volume.sizes, sizes);
        assert_eq!(volume.origin, phantom.image.origin);
        assert_eq!(volume.spacing, phantom.image.spacing);
        assert_eq!(volume.direction, phantom.image.direction);
    }

    // Voxel by voxel: instance ⇔ tooth, category = FDI mod 10, FDI valid.
    let valid = all_fdi();
    let mut counts = [0usize; 49];
    let mut sums = [[0.0f64; 3]; 49];
    let [nx, ny, _] = sizes;
    for l in 0..teeth.len() {
        let fdi = instances[l];
        assert_eq!(
            teeth[l],
            u8::from(fdi != 0),
            "voxel {l}: teeth {} instance {fdi}",
            teeth[l]
        );
        assert_eq!(categories[l], fdi % 10, "voxel {l}: category vs FDI {fdi}");
        if fdi != 0 {
            assert!(valid.contains(&fdi), "invalid FDI {fdi}");
            counts[usize::from(fdi)] += 1;
            let index = [
                (l % nx) as f64,
                ((l / nx) % ny) as f64,
                (l / (nx * ny)) as f64,
            ];
            let world = phantom.image.index_to_world(index);
            // Upper teeth (quadrants 1, 2) above the occlusal plane, lower (3, 4) below.
            let upper = matches!(fdi / 10, 1 | 2);
            assert_eq!(
                world[2] > phantom.occlusal_z,
                upper,
                "tooth {fdi} at z {}",
                world[2]
            );
            for a in 0..3 {
                sums[usize::from(fdi)][a] += world[a];
            }
        }
    }

    // The tooth list and the missing list partition the 32 positions and match the volumes.
    let mut listed: Vec<u8> = phantom.tooth_list.iter().map(|t| t.fdi).collect();
    listed.extend(&phantom.missing);
    listed.sort_unstable();
    assert_eq!(listed, valid);
    for &fdi in &phantom.missing {
        assert_eq!(
            counts[usize::from(fdi)],
            0,
            "missing tooth {fdi} has voxels"
        );
    }
    for tooth in &phantom.tooth_list {
        let f = usize::from(tooth.fdi);
        assert_eq!(tooth.category, tooth.fdi % 10);
        assert_eq!(tooth.voxels, counts[f], "tooth {}", tooth.fdi);
        for (a, &sum) in sums[f].iter().enumerate() {
            let mean = sum / counts[f] as f64;
            assert!(
                (tooth.centroid[a] - mean).abs() < 1e-6,
                "tooth {} centroid",
                tooth.fdi
            );
        }
        let parts = components(instances, sizes, tooth.fdi);
        assert_eq!(
            parts.len(),
            1,
            "tooth {} has components of sizes {parts:?}",
            tooth.fdi
        );

        // Patient right (quadrants 1, 4) on −x, left (2, 3) on +x.
        let right = matches!(tooth.fdi / 10, 1 | 4);
        assert_eq!(
            tooth.centroid[0] < 0.0,
            right,
            "tooth {} at x {}",
            tooth.fdi,
            tooth.centroid[0]
        );
    }

    // Mirror pairs lie on opposite sides of the midline x = 0.
    let centroid = |fdi: u8| {
        phantom
            .tooth_list
            .iter()
            .find(|t| t.fdi == fdi)
            .map(|t| t.centroid)
    };
    for c in 1..=8 {
        for (right, left) in [(10 + c, 20 + c), (40 + c, 30 + c)] {
            if let (Some(r), Some(l)) = (centroid(right), centroid(left)) {
                assert!(
                    r[0] < 0.0 && l[0] > 0.0,
                    "{right} at x {} vs {left} at x {}",
                    r[0],
                    l[0]
                );
            }
        }
    }

    // Neighbours along each arch (including across the midline) share faces.
    let mut pairs = Vec::new();
    for q in 1..=4u8 {
        for c in 1..8u8 {
            pairs.push((q * 10 + c, q * 10 + c + 1));
        }
    }
    pairs.extend([(11, 21), (31, 41)]);
    let present = |fdi: u8| counts[usize::from(fdi)] > 0;
    let neighbours: Vec<_> = pairs
        .into_iter()
        .filter(|&(a, b)| present(a) && present(b))
        .collect();
    let touching = neighbours
        .iter()
        .filter(|&&(a, b)| shared_faces(instances, sizes, a, b) > 0)
        .count();
    (touching, neighbours.len())
}

#[test]
fn default_phantom_labels_are_consistent_and_neighbours_touch() {
    let mut touching = 0;
    let mut neighbours = 0;
    for seed in [0, 1, 2] {
        let phantom = generate(&PhantomConfig {
            seed,
            ..PhantomConfig::default()
        })
        .unwrap();
        assert_eq!(phantom.image.sizes, [120, 120, 168]);
        assert!(
            phantom.tooth_list.len() >= 20,
            "only {} teeth",
            phantom.tooth_list.len()
        );
        let (t, n) = check_labels(&phantom);
        touching += t;
        neighbours += n;
    }
    assert!(
        touching * 20 >= neighbours * 19,
        "{touching} of {neighbours} neighbour pairs touch"
    );
}

#[test]
fn complete_dentition_has_all_32_teeth() {
    let config = PhantomConfig {
        seed: 11,
        missing_tooth_prob: 0.0,
        third_molar_missing_prob: 0.0,
        ..PhantomConfig::default()
    };
    let phantom = generate(&config).unwrap();
    assert!(phantom.missing.is_empty(), "missing {:?}", phantom.missing);
    assert_eq!(phantom.tooth_list.len(), 32);
    let (touching, neighbours) = check_labels(&phantom);
    assert_eq!(neighbours, 30);
    assert!(touching >= 28, "{touching} of 30 neighbour pairs touch");

    // Molars are the largest teeth, lower central incisors among the smallest.
    let voxels = |fdi: u8| {
        phantom
            .tooth_list
            .iter()
            .find(|t| t.fdi == fdi)
            .unwrap()
            .voxels
    };
    for quadrant in 1..=4u8 {
        let q = quadrant * 10;
        assert!(voxels(q + 6) > voxels(q + 1), "quadrant {quadrant}");
        assert!(voxels(q + 6) > voxels(q + 4), "quadrant {quadrant}");
    }
    assert!(voxels(31) < voxels(11) && voxels(41) < voxels(21));
}

#[test]
fn missing_teeth_follow_the_probability() {
    let all_missing = PhantomConfig {
        missing_tooth_prob: 1.0,
        third_molar_missing_prob: 1.0,
        sizes: [64, 64, 48],
        spacing: 1.0,
        ..PhantomConfig::default()
    };
    let phantom = generate(&all_missing).unwrap();
    assert!(phantom.tooth_list.is_empty());
    assert!(u8_voxels(&phantom.teeth).iter().all(|&v| v == 0));

    // Over many seeds roughly 8 % of the 28 non-third-molars go missing.
    let mut missing = 0;
    let seeds = 12u64;
    for seed in 0..seeds {
        let config = PhantomConfig {
            seed,
            sizes: [64, 64, 48],
            spacing: 1.0,
            ..all_missing.clone()
        };
        let config = PhantomConfig {
            missing_tooth_prob: 0.08,
            third_molar_missing_prob: 0.0,
            ..config
        };
        let phantom = generate(&config).unwrap();
        missing += phantom.missing.len();
        check_labels(&phantom);
    }
    let rate = missing as f64 / (seeds * 28) as f64;
    assert!((0.02..0.16).contains(&rate), "missing rate {rate}");
}

#[test]
fn odd_grids_and_spacings_keep_labels_consistent() {
    let grids = [
        ([97, 61, 55], 1.1),
        ([40, 70, 90], 0.9),
        ([128, 96, 64], 0.6),
        ([65, 65, 65], 2.0),
    ];
    for (seed, (sizes, spacing)) in grids.into_iter().enumerate() {
        let config = PhantomConfig {
            seed: seed as u64 + 20,
            sizes,
            spacing,
            ..PhantomConfig::default()
        };
        let phantom = generate(&config).unwrap_or_else(|e| panic!("{sizes:?} at {spacing}: {e}"));
        assert_eq!(phantom.image.sizes, sizes);
        assert!(!phantom.tooth_list.is_empty());
        check_labels(&phantom);
    }
}
