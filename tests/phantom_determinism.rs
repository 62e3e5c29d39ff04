//! The jaw phantom is a pure function of its configuration: the same seed gives the same
//! bytes, another seed another mouth; and the small grid of `enamel demo` still holds a
//! complete, sensible jaw.

use enamel::io::{Volume, Voxels};
use enamel::phantom::{generate, Phantom, PhantomConfig, Tissue};

fn u8_voxels(volume: &Volume) -> &[u8] {
    match &volume.voxels {
        Voxels::U8(v) => v,
        other => panic!("expected uint8, got {}", other.type_name()),
    }
}

fn volumes(phantom: &Phantom) -> [&Volume; 5] {
    [
        &phantom.image,
        &phantom.teeth,
        &phantom.categories,
        &phantom.instances,
        &phantom.tissues,
    ]
}

/// FNV-1a over the voxel bytes: a fingerprint that pins the output across runs and builds.
fn fingerprint(phantom: &Phantom) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |byte: u8| {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    for volume in volumes(phantom) {
        match &volume.voxels {
            Voxels::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).for_each(&mut eat),
            Voxels::U8(v) => v.iter().copied().for_each(&mut eat),
            other => panic!("unexpected type {}", other.type_name()),
        }
    }
    hash
}

#[test]
fn same_seed_gives_identical_bytes() {
    let config = PhantomConfig {
        seed: 42,
        ..PhantomConfig::default()
    };
    let first = generate(&config).unwrap();
    let second = generate(&config).unwrap();
    for (a, b) in volumes(&first).into_iter().zip(volumes(&second)) {
        assert_eq!(a, b);
    }
    assert_eq!(first.tooth_list, second.tooth_list);
    assert_eq!(first.missing, second.missing);
    assert_eq!(fingerprint(&first), fingerprint(&second));

    // The same again with rayon limited to one thread: scheduling changes nothing.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let single = pool.install(|| generate(&config).unwrap());
    assert_eq!(fingerprint(&single), fingerprint(&first));
}

#[test]
fn different_seeds_give_different_arches() {
    let a = generate(&PhantomConfig {
        seed: 1,
        ..PhantomConfig::default()
    })
    .unwrap();
    let b = generate(&PhantomConfig {
        seed: 2,
        ..PhantomConfig::default()
    })
    .unwrap();
    assert_ne!(a.image, b.image);
    assert_ne!(a.instances, b.instances);

    // The same tooth sits elsewhere: the arches differ in shape, not just in noise.
    let mut moved = 0;
    let mut compared = 0;
    for tooth in &a.tooth_list {
        if let Some(other) = b.tooth_list.iter().find(|t| t.fdi == tooth.fdi) {
            let d: f64 = (0..3)
                .map(|i| (tooth.cej[i] - other.cej[i]).powi(2))
                .sum::<f64>()
                .sqrt();
            compared += 1;
            if d > 0.2 {
                moved += 1;
            }
        }
    }
    assert!(
        compared >= 16 && moved * 10 >= compared * 9,
        "{moved} of {compared} teeth moved"
    );
}

#[test]
fn demo_grid_holds_a_complete_jaw() {
    // `enamel demo` trains on 48×64×64 (D, H, W) phantoms at 1 mm.
    let config = PhantomConfig {
        seed: 3,
        sizes: PhantomConfig::sizes_from_dhw([48, 64, 64]),
        spacing: 1.0,
        ..PhantomConfig::default()
    };
    let phantom = generate(&config).unwrap();
    assert_eq!(phantom.image.sizes, [64, 64, 48]);
    assert!(
        phantom.scale > 0.6 && phantom.scale <= 1.0,
        "scale {}",
        phantom.scale
    );

    // Every present tooth is clearly resolved and on its side; every label map agrees.
    let teeth = u8_voxels(&phantom.teeth);
    let categories = u8_voxels(&phantom.categories);
    let instances = u8_voxels(&phantom.instances);
    assert!(
        phantom.tooth_list.len() >= 24,
        "{} teeth",
        phantom.tooth_list.len()
    );
    for tooth in &phantom.tooth_list {
        assert!(
            tooth.voxels >= 40,
            "tooth {} has {} voxels",
            tooth.fdi,
            tooth.voxels
        );
        let right = matches!(tooth.fdi / 10, 1 | 4);
        assert_eq!(tooth.centroid[0] < 0.0, right, "tooth {}", tooth.fdi);
    }
    let mut present_categories: Vec<u8> = phantom.tooth_list.iter().map(|t| t.category).collect();
    present_categories.sort_unstable();
    present_categories.dedup();
    let mut label_categories: Vec<u8> = categories.iter().copied().filter(|&c| c > 0).collect();
    label_categories.sort_unstable();
    label_categories.dedup();
    assert_eq!(label_categories, present_categories);
    assert!(present_categories.len() >= 7);
    for l in 0..teeth.len() {
        assert_eq!(teeth[l], u8::from(instances[l] != 0));
        assert_eq!(categories[l], instances[l] % 10);
    }

    // Teeth are bright against bone, bone against soft tissue; enamel and dentin both show.
    let tissues = u8_voxels(&phantom.tissues);
    let count = |t: Tissue| tissues.iter().filter(|&&c| c == t as u8).count();
    for tissue in [
        Tissue::Enamel,
        Tissue::Dentin,
        Tissue::Cortical,
        Tissue::Trabecular,
    ] {
        assert!(count(tissue) > 200, "{tissue:?}: {} voxels", count(tissue));
    }
    let Voxels::I16(image) = &phantom.image.voxels else {
        panic!("image is not int16")
    };
    let mean = |label: &dyn Fn(usize) -> bool| {
        let picked: Vec<f64> = (0..image.len())
            .filter(|&l| label(l))
            .map(|l| f64::from(image[l]))
            .collect();
        picked.iter().sum::<f64>() / picked.len() as f64
    };
    let tooth = mean(&|l| teeth[l] == 1);
    let bone = mean(&|l| tissues[l] == Tissue::Trabecular as u8);
    let soft = mean(&|l| tissues[l] == Tissue::SoftTissue as u8);
    assert!(
        tooth > 1500.0 && bone > 300.0 && bone < 800.0 && soft < 150.0,
        "{tooth} {bone} {soft}"
    );
}

#[test]
fn fingerprint_of_a_small_phantom_is_pinned() {
    // Pins the exact bytes, so that a build on another platform (or a dependency update)
    // that changes a single voxel fails here. Update the value only when the anatomy is
    // changed on purpose.
    let config = PhantomConfig {
        seed: 2024,
        sizes: [64, 64, 48],
        spacing: 1.0,
        ..PhantomConfig::default()
    };
    let phantom = generate(&config).unwrap();
    assert_eq!(
        fingerprint(&phantom),
        0xd27e_ce6d_3f8e_b307,
        "fingerprint {:#018x}",
        fingerprint(&phantom)
    );
}
