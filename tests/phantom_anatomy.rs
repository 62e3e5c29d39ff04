//! Tissues and intensities of the jaw phantom: every tissue within its stated HU range before
//! noise and blur, tooth tissues exactly where the tooth labels are, roots held in bone,
//! enamel capping the crowns, pulp enclosed in the tooth, crowns wider than roots, metal
//! inlays, and noise and blur of the requested strength.

use enamel::io::{Volume, Voxels};
use enamel::phantom::{generate, Phantom, PhantomConfig, Tissue};

fn u8_voxels(volume: &Volume) -> &[u8] {
    match &volume.voxels {
        Voxels::U8(v) => v,
        other => panic!("expected uint8, got {}", other.type_name()),
    }
}

fn i16_voxels(volume: &Volume) -> &[i16] {
    match &volume.voxels {
        Voxels::I16(v) => v,
        other => panic!("expected int16, got {}", other.type_name()),
    }
}

fn clean(seed: u64) -> PhantomConfig {
    PhantomConfig {
        seed,
        noise_hu: 0.0,
        blur_mm: 0.0,
        ..PhantomConfig::default()
    }
}

fn tissue_of(phantom: &Phantom) -> Vec<Tissue> {
    u8_voxels(&phantom.tissues)
        .iter()
        .map(|&c| Tissue::from_code(c).unwrap_or_else(|| panic!("unknown tissue code {c}")))
        .collect()
}

/// The six face neighbours of voxel `l` that lie inside the grid.
fn neighbours(l: usize, sizes: [usize; 3]) -> Vec<usize> {
    let [nx, ny, nz] = sizes;
    let (i, j, k) = (l % nx, (l / nx) % ny, l / (nx * ny));
    let mut out = Vec::with_capacity(6);
    if i > 0 {
        out.push(l - 1);
    }
    if i + 1 < nx {
        out.push(l + 1);
    }
    if j > 0 {
        out.push(l - nx);
    }
    if j + 1 < ny {
        out.push(l + nx);
    }
    if k > 0 {
        out.push(l - nx * ny);
    }
    if k + 1 < nz {
        out.push(l + nx * ny);
    }
    out
}

/// Height of voxel `l` along the long axis of `fdi`, from its cemento-enamel junction (mm).
fn height(phantom: &Phantom, fdi: u8, l: usize) -> f64 {
    let tooth = phantom.tooth_list.iter().find(|t| t.fdi == fdi).unwrap();
    let [nx, ny, _] = phantom.image.sizes;
    let index = [
        (l % nx) as f64,
        ((l / nx) % ny) as f64,
        (l / (nx * ny)) as f64,
    ];
    let p = phantom.image.index_to_world(index);
    (0..3).map(|a| (p[a] - tooth.cej[a]) * tooth.axis[a]).sum()
}

#[test]
fn every_tissue_lies_in_its_range_before_noise_and_blur() {
    let phantom = generate(&PhantomConfig {
        metal_prob: 0.3,
        ..clean(4)
    })
    .unwrap();
    let tissues = tissue_of(&phantom);
    let image = i16_voxels(&phantom.image);
    let mut seen = [0usize; 8];
    for (l, (&tissue, &value)) in tissues.iter().zip(image).enumerate() {
        let (lo, hi) = tissue.hu_range();
        let value = f64::from(value);
        assert!(
            lo <= value && value <= hi,
            "voxel {l}: {tissue:?} at {value} HU"
        );
        seen[tissue as usize] += 1;
    }
    for tissue in Tissue::ALL {
        assert!(seen[tissue as usize] > 0, "no {tissue:?} voxel");
    }

    // The ranges themselves follow the stated HU scale.
    assert_eq!(Tissue::Air.hu_range(), (-1000.0, -1000.0));
    assert!(Tissue::Trabecular.hu_range().0 >= 300.0 && Tissue::Trabecular.hu_range().1 <= 700.0);
    assert!(Tissue::Cortical.hu_range().0 >= 1200.0 && Tissue::Cortical.hu_range().1 <= 1600.0);
    assert!(Tissue::Dentin.hu_range().0 >= 1600.0 && Tissue::Dentin.hu_range().1 <= 2000.0);
    assert!(Tissue::Enamel.hu_range().0 >= 2500.0 && Tissue::Enamel.hu_range().1 <= 3000.0);
    assert!(Tissue::Metal.hu_range().0 >= 3000.0);
}

#[test]
fn tooth_tissues_match_labels_and_sit_where_anatomy_puts_them() {
    let phantom = generate(&clean(5)).unwrap();
    let sizes = phantom.image.sizes;
    let tissues = tissue_of(&phantom);
    let instances = u8_voxels(&phantom.instances);
    let bone = |t: Tissue| matches!(t, Tissue::Trabecular | Tissue::Cortical);

    let mut root_faces = 0;
    for (l, (&tissue, &fdi)) in tissues.iter().zip(instances).enumerate() {
        assert_eq!(
            tissue.is_tooth(),
            fdi != 0,
            "voxel {l}: {tissue:?} with label {fdi}"
        );
        if fdi == 0 {
            continue;
        }
        let h = height(&phantom, fdi, l);
        let around: Vec<usize> = neighbours(l, sizes);
        match tissue {
            // Enamel only on the crown (a voxel of tolerance around the tilted CEJ).
            Tissue::Enamel => assert!(h > -0.75, "enamel of {fdi} at {h:.2} mm below the CEJ"),
            // Pulp is enclosed by the tooth.
            Tissue::Pulp => {
                for n in &around {
                    assert_eq!(
                        instances[*n], fdi,
                        "pulp of {fdi} touches {:?}",
                        tissues[*n]
                    );
                }
            }
            _ => {}
        }

        // Deep in the root, whatever is not tooth is bone.
        if h < -3.0 {
            for n in around {
                if instances[n] == 0 {
                    assert!(
                        bone(tissues[n]),
                        "root of {fdi} ({h:.1} mm) touches {:?}",
                        tissues[n]
                    );
                    root_faces += 1;
                }
            }
        }
    }
    assert!(root_faces > 1000, "only {root_faces} root faces checked");

    // Bone right at a root is the socket's cortical lining.
    let mut lining = [0usize; 2];
    for (l, &fdi) in instances.iter().enumerate() {
        if fdi != 0 && height(&phantom, fdi, l) < -3.0 {
            for n in neighbours(l, sizes) {
                match tissues[n] {
                    Tissue::Cortical => lining[0] += 1,
                    Tissue::Trabecular => lining[1] += 1,
                    _ => {}
                }
            }
        }
    }
    assert_eq!(
        lining[1], 0,
        "sockets lined with {} trabecular faces",
        lining[1]
    );
}

#[test]
fn crowns_are_wider_than_roots_and_molars_have_several_roots() {
    let phantom = generate(&clean(6)).unwrap();
    let sizes = phantom.image.sizes;
    let instances = u8_voxels(&phantom.instances);
    let voxel = phantom.image.spacing[0];
    for tooth in &phantom.tooth_list {
        let slab = |lo: f64, hi: f64| -> Vec<usize> {
            (0..instances.len())
                .filter(|&l| instances[l] == tooth.fdi)
                .filter(|&l| (lo..hi).contains(&height(&phantom, tooth.fdi, l)))
                .collect()
        };
        let s = phantom.scale;
        let crown = slab(1.5 * s, 3.0 * s).len();
        let root = slab(-3.0 * s, -1.5 * s).len();
        assert!(
            crown > root,
            "tooth {}: crown slab {crown} voxels, root slab {root}",
            tooth.fdi
        );

        // Halfway down the roots, molars show separate roots (several components in the
        // slab), incisors and canines a single one.
        let deep = slab(-8.0 * s, -8.0 * s + 2.0 * voxel);
        let pieces = count_pieces(&deep, sizes);
        match tooth.category {
            1..=3 => assert_eq!(pieces, 1, "tooth {} has {pieces} roots", tooth.fdi),
            6 | 7 => assert!(pieces >= 2, "molar {} has {pieces} roots", tooth.fdi),
            _ => {}
        }
    }
}

/// 26-connected pieces among the given voxels (a thin oblique slab through one root can
/// fall apart under 6-connectivity).
fn count_pieces(voxels: &[usize], sizes: [usize; 3]) -> usize {
    let [nx, ny, nz] = sizes;
    let set: std::collections::BTreeSet<usize> = voxels.iter().copied().collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut pieces = 0;
    for &start in voxels {
        if !seen.insert(start) {
            continue;
        }
        pieces += 1;
        let mut stack = vec![start];
        while let Some(l) = stack.pop() {
            let (i, j, k) = (
                (l % nx) as i64,
                ((l / nx) % ny) as i64,
                (l / (nx * ny)) as i64,
            );
            for d in 0..27i64 {
                let (a, b, c) = (i + d % 3 - 1, j + (d / 3) % 3 - 1, k + d / 9 - 1);
                if a < 0 || b < 0 || c < 0 || a >= nx as i64 || b >= ny as i64 || c >= nz as i64 {
                    continue;
                }
                let n = ((c as usize * ny) + b as usize) * nx + a as usize;
                if set.contains(&n) && seen.insert(n) {
                    stack.push(n);
                }
            }
        }
    }
    pieces
}

#[test]
fn metal_inlays_are_labelled_as_their_tooth() {
    let none = generate(&PhantomConfig {
        metal_prob: 0.0,
        ..clean(7)
    })
    .unwrap();
    assert!(tissue_of(&none).iter().all(|&t| t != Tissue::Metal));
    assert!(none.tooth_list.iter().all(|t| !t.metal));

    let all = generate(&PhantomConfig {
        metal_prob: 1.0,
        ..clean(7)
    })
    .unwrap();
    let tissues = tissue_of(&all);
    let instances = u8_voxels(&all.instances);
    for tooth in &all.tooth_list {
        assert!(tooth.metal);
        let metal = (0..tissues.len())
            .filter(|&l| instances[l] == tooth.fdi && tissues[l] == Tissue::Metal)
            .count();
        assert!(metal > 0, "tooth {} has no metal voxel", tooth.fdi);
    }
    let image = i16_voxels(&all.image);
    assert!(image
        .iter()
        .zip(&tissues)
        .all(|(&v, &t)| t != Tissue::Metal || v >= 3000));
}

#[test]
fn noise_and_blur_have_the_requested_strength() {
    let config = PhantomConfig {
        sizes: [64, 64, 48],
        spacing: 1.0,
        ..clean(8)
    };
    let plain = generate(&config).unwrap();
    let noisy = generate(&PhantomConfig {
        noise_hu: 50.0,
        ..config.clone()
    })
    .unwrap();
    let blurred = generate(&PhantomConfig {
        blur_mm: 1.0,
        ..config.clone()
    })
    .unwrap();
    let tissues = tissue_of(&plain);
    let (p, n, b) = (
        i16_voxels(&plain.image),
        i16_voxels(&noisy.image),
        i16_voxels(&blurred.image),
    );

    // Noise: the difference has mean 0 and standard deviation 50 HU.
    let diff: Vec<f64> = p
        .iter()
        .zip(n)
        .map(|(&a, &b)| f64::from(b) - f64::from(a))
        .collect();
    let mean = diff.iter().sum::<f64>() / diff.len() as f64;
    let std =
        (diff.iter().map(|d| (d - mean) * (d - mean)).sum::<f64>() / diff.len() as f64).sqrt();
    assert!(mean.abs() < 1.0, "noise mean {mean}");
    assert!((std - 50.0).abs() < 1.0, "noise standard deviation {std}");

    // Blur: air next to soft tissue, with nothing denser within 3 σ, takes a value between
    // the two; air far from anything stays air.
    let sizes = plain.image.sizes;
    let [nx, ny, nz] = sizes;
    let light = |l: usize| {
        let (i, j, k) = (
            (l % nx) as i64,
            ((l / nx) % ny) as i64,
            (l / (nx * ny)) as i64,
        );
        let mut only_air_and_soft = true;
        for dk in -3..=3i64 {
            for dj in -3..=3i64 {
                for di in -3..=3i64 {
                    let (a, b, c) = (i + di, j + dj, k + dk);
                    if a < 0 || b < 0 || c < 0 || a >= nx as i64 || b >= ny as i64 || c >= nz as i64
                    {
                        continue;
                    }
                    let m = ((c as usize * ny) + b as usize) * nx + a as usize;
                    only_air_and_soft &= matches!(tissues[m], Tissue::Air | Tissue::SoftTissue);
                }
            }
        }
        only_air_and_soft
    };
    let mut edges = 0;
    for (l, &t) in tissues.iter().enumerate() {
        let at_soft = neighbours(l, sizes)
            .iter()
            .any(|&m| tissues[m] == Tissue::SoftTissue);
        if t == Tissue::Air && at_soft && light(l) {
            assert!(
                b[l] > -1000 && b[l] < 60,
                "edge voxel {l} blurred to {}",
                b[l]
            );
            edges += 1;
        }
    }
    assert!(edges > 100);
    assert_eq!(b[0], -1000, "the grid corner is air far from the face");
    assert_ne!(p, b);
}

#[test]
fn bad_configurations_are_errors_naming_the_field() {
    let cases = [
        (
            PhantomConfig {
                spacing: 0.0,
                ..PhantomConfig::default()
            },
            "spacing",
        ),
        (
            PhantomConfig {
                spacing: f64::NAN,
                ..PhantomConfig::default()
            },
            "spacing",
        ),
        (
            PhantomConfig {
                noise_hu: -1.0,
                ..PhantomConfig::default()
            },
            "noise_hu",
        ),
        (
            PhantomConfig {
                blur_mm: 50.0,
                ..PhantomConfig::default()
            },
            "blur_mm",
        ),
        (
            PhantomConfig {
                metal_prob: 1.5,
                ..PhantomConfig::default()
            },
            "metal_prob",
        ),
        (
            PhantomConfig {
                missing_tooth_prob: -0.1,
                ..PhantomConfig::default()
            },
            "missing",
        ),
        (
            PhantomConfig {
                sizes: [120, 4, 168],
                ..PhantomConfig::default()
            },
            "[120, 4, 168]",
        ),
        (
            PhantomConfig {
                sizes: [100_000, 100_000, 100],
                ..PhantomConfig::default()
            },
            "limit",
        ),
        (
            PhantomConfig {
                sizes: [24, 24, 24],
                spacing: 1.0,
                ..PhantomConfig::default()
            },
            "voxels wide",
        ),
    ];
    for (config, expected) in cases {
        let message = generate(&config).unwrap_err().to_string();
        assert!(
            message.contains(expected),
            "`{message}` should mention `{expected}`"
        );
    }
}
