//! Dice, IoU, HD95, the exact distance transform, and `enamel eval`.

use std::path::PathBuf;
use std::process::Command;

use enamel::io::{write_volume, Volume, Voxels};
use enamel::metrics::{
    dice_iou, evaluate, evaluate_files, hd95, image_diagonal, squared_distance_to,
    surface_distance_percentile,
};
use enamel::rng::Rng;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enamel-metrics-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A mask of `sizes` that is true on the half-open box `lo..hi`.
fn boxed(sizes: [usize; 3], lo: [usize; 3], hi: [usize; 3]) -> Vec<bool> {
    let mut mask = vec![false; sizes.iter().product()];
    for k in lo[2]..hi[2] {
        for j in lo[1]..hi[1] {
            for i in lo[0]..hi[0] {
                mask[(k * sizes[1] + j) * sizes[0] + i] = true;
            }
        }
    }
    mask
}

#[test]
fn offset_boxes_give_dice_and_iou_from_their_overlap() {
    let sizes = [8, 6, 6];
    let a = boxed(sizes, [0, 0, 0], [4, 4, 4]);
    let b = boxed(sizes, [2, 0, 0], [6, 4, 4]);
    // 64 voxels each, 2 × 4 × 4 = 32 shared, 96 in the union.
    let (dice, iou) = dice_iou(&a, &b);
    assert_eq!(dice, 0.5);
    assert_eq!(iou, 32.0 / 96.0);

    let c = boxed(sizes, [1, 1, 1], [3, 3, 3]);
    let (dice, iou) = dice_iou(&a, &c);
    assert_eq!(dice, 2.0 * 8.0 / 72.0);
    assert_eq!(iou, 8.0 / 64.0);
}

#[test]
fn hd95_of_shifted_shapes_in_millimetres() {
    let sizes = [12, 10, 10];
    let spacing = [0.5, 1.0, 1.0];

    // Two parallel one-voxel slabs two voxels apart along i: every distance is 2 × 0.5 mm.
    let a = boxed(sizes, [3, 2, 2], [4, 8, 8]);
    let b = boxed(sizes, [5, 2, 2], [6, 8, 8]);
    assert_eq!(hd95(&a, &b, sizes, spacing), 1.0);

    // A solid box and the same box shifted by 2 voxels: the farthest surface voxel is the face
    // left behind, 2 voxels from the shifted box's face, so the Hausdorff distance is 1 mm.
    let a = boxed(sizes, [2, 2, 2], [8, 8, 8]);
    let b = boxed(sizes, [4, 2, 2], [10, 8, 8]);
    assert_eq!(
        surface_distance_percentile(&a, &b, sizes, spacing, 100.0),
        1.0
    );
    let h = hd95(&a, &b, sizes, spacing);
    assert!(h > 0.0 && h <= 1.0, "{h}");

    // Single voxels one step apart on every axis, with anisotropic spacing.
    let spacing = [0.5, 1.0, 2.0];
    let a = boxed(sizes, [3, 3, 3], [4, 4, 4]);
    let b = boxed(sizes, [4, 4, 4], [5, 5, 5]);
    assert_eq!(hd95(&a, &b, sizes, spacing), 5.25f64.sqrt());

    // Identical shapes: zero.
    assert_eq!(hd95(&a, &a, sizes, spacing), 0.0);
}

#[test]
fn empty_classes_follow_the_conventions() {
    let sizes = [6, 5, 4];
    let spacing = [0.5, 2.0, 1.0];
    let mut gt = vec![0u8; 120];
    gt[7] = 1;
    gt[50] = 2;
    let mut pred = vec![0u8; 120];
    pred[7] = 1;
    let pred = Volume::new(sizes, Voxels::U8(pred), spacing);
    let gt = Volume::new(sizes, Voxels::U8(gt), spacing);

    let result = evaluate(&pred, &gt, Some(&[1, 2, 3])).unwrap();
    let [one, two, three] = [0, 1, 2].map(|n| result.classes[n].clone());
    assert_eq!((one.dice, one.iou, one.hd95_mm), (1.0, 1.0, 0.0));
    assert_eq!((two.voxels_pred, two.voxels_gt), (0, 1));
    assert_eq!((two.dice, two.iou), (0.0, 0.0));
    let diagonal = (3.0f64 * 3.0 + 10.0 * 10.0 + 4.0 * 4.0).sqrt();
    assert_eq!(image_diagonal(sizes, spacing), diagonal);
    assert_eq!(two.hd95_mm, diagonal);
    assert_eq!((three.dice, three.iou, three.hd95_mm), (1.0, 1.0, 0.0));

    // The mean covers the two classes present, not class 3.
    let mean = result.mean.unwrap();
    assert_eq!(mean.classes, 2);
    assert_eq!(mean.dice, 0.5);
    assert_eq!(mean.hd95_mm, diagonal / 2.0);

    // Without a class list: the labels found in either map.
    let found = evaluate(&pred, &gt, None).unwrap();
    let labels: Vec<u32> = found.classes.iter().map(|c| c.label).collect();
    assert_eq!(labels, [1, 2]);
}

#[test]
fn distance_transform_matches_brute_force_with_anisotropic_spacing() {
    let sizes = [7, 5, 6];
    let spacing = [0.7, 1.3, 2.1];
    let n: usize = sizes.iter().product();
    let position = |n: usize| [n % 7, (n / 7) % 5, n / 35].map(|x| x as f64);
    for seed in 0..8u64 {
        let mut rng = Rng::new(seed);
        let density = [0.01, 0.05, 0.3, 0.9][seed as usize % 4];
        let mask: Vec<bool> = (0..n).map(|_| rng.chance(density)).collect();
        let d = squared_distance_to(&mask, sizes, spacing);
        for (q, &got) in d.iter().enumerate() {
            let pq = position(q);
            let expected = (0..n)
                .filter(|&p| mask[p])
                .map(|p| {
                    let pp = position(p);
                    (0..3)
                        .map(|a| ((pq[a] - pp[a]) * spacing[a]).powi(2))
                        .sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min);
            let close = (got - expected).abs() <= 1e-9 * expected.max(1.0);
            assert!(
                close || (got.is_infinite() && expected.is_infinite()),
                "seed {seed} voxel {q}: {got} vs {expected}"
            );
        }
    }
}

#[test]
fn different_grids_are_an_error_naming_both_files() {
    let dir = temp_dir("grid");
    let a = dir.join("pred.nrrd");
    let b = dir.join("gt.nrrd");
    write_volume(
        &a,
        &Volume::new([4, 4, 4], Voxels::U8(vec![0; 64]), [1.0; 3]),
    )
    .unwrap();
    write_volume(
        &b,
        &Volume::new([4, 4, 5], Voxels::U8(vec![0; 80]), [1.0; 3]),
    )
    .unwrap();
    let err = evaluate_files(&a, &b, None).unwrap_err().to_string();
    assert!(
        err.contains("pred.nrrd") && err.contains("gt.nrrd"),
        "{err}"
    );
    assert!(
        err.contains("[4, 4, 4]") && err.contains("[4, 4, 5]"),
        "{err}"
    );

    write_volume(
        &b,
        &Volume::new([4, 4, 4], Voxels::U8(vec![0; 64]), [1.0, 1.0, 1.5]),
    )
    .unwrap();
    let err = evaluate_files(&a, &b, None).unwrap_err().to_string();
    assert!(err.contains("1.5"), "{err}");

    let mut moved = Volume::new([4, 4, 4], Voxels::U8(vec![0; 64]), [1.0; 3]);
    moved.origin = [0.0, 0.0, 2.0];
    write_volume(&b, &moved).unwrap();
    let err = evaluate_files(&a, &b, None).unwrap_err().to_string();
    assert!(
        err.contains("origin [0.0, 0.0, 0.0] vs [0.0, 0.0, 2.0]"),
        "{err}"
    );
}

#[test]
fn eval_command_of_a_file_against_itself_prints_dice_one() {
    let dir = temp_dir("cli");
    let sizes = [9, 8, 7];
    let mut labels = vec![0u8; 9 * 8 * 7];
    for (n, l) in labels.iter_mut().enumerate() {
        let (i, j) = (n % 9, (n / 9) % 8);
        if (2..5).contains(&i) && (1..6).contains(&j) {
            *l = 3;
        } else if i >= 6 && j >= 4 {
            *l = 5;
        }
    }
    let path = dir.join("labels.nrrd");
    write_volume(
        &path,
        &Volume::new(sizes, Voxels::U8(labels), [0.3, 0.3, 0.5]),
    )
    .unwrap();
    let p = path.to_str().unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_enamel"))
        .args(["eval", p, p])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(['3', '5']))
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    for row in rows {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[1], cells[2], "{text}");
        assert_eq!(cells[3..], ["1.0000", "1.0000", "0.000"], "{text}");
    }
    assert!(text.contains("(over 2 classes present)"), "{text}");

    let out = Command::new(env!("CARGO_BIN_EXE_enamel"))
        .args(["eval", p, p, "--json", "-", "--classes", "9"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let classes = json["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 8);
    assert!(classes
        .iter()
        .all(|c| c["dice"] == 1.0 && c["hd95_mm"] == 0.0));
    assert_eq!(classes[2]["voxels_gt"], 3 * 5 * 7);
    assert_eq!(json["mean"]["classes"], 2);

    let file = dir.join("metrics.json");
    let out = Command::new(env!("CARGO_BIN_EXE_enamel"))
        .args(["eval", p, p, "--json", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(json["mean"]["dice"], 1.0);
}

#[test]
fn hd95_matches_brute_force_surface_distances() {
    let sizes = [9, 7, 6];
    let spacing = [0.6, 1.1, 1.7];
    let n: usize = sizes.iter().product();
    let position = |n: usize| [n % 9, (n / 9) % 7, n / 63];
    // Surface voxels by definition: foreground with a background 6-neighbour or on the border.
    let surface = |mask: &[bool]| -> Vec<usize> {
        (0..n)
            .filter(|&q| {
                let p = position(q);
                mask[q]
                    && (0..3).any(|a| {
                        [-1i64, 1].iter().any(|&step| {
                            let c = p[a] as i64 + step;
                            if c < 0 || c >= sizes[a] as i64 {
                                return true;
                            }
                            let mut nb = p;
                            nb[a] = c as usize;
                            !mask[(nb[2] * sizes[1] + nb[1]) * sizes[0] + nb[0]]
                        })
                    })
            })
            .collect()
    };
    for seed in 0..6u64 {
        let mut rng = Rng::new(100 + seed);
        let blob = |rng: &mut Rng| -> Vec<bool> {
            let c = [
                rng.range(0.0, 9.0),
                rng.range(0.0, 7.0),
                rng.range(0.0, 6.0),
            ];
            let r = rng.range(1.5, 4.0);
            (0..n)
                .map(|q| {
                    let p = position(q);
                    let d2: f64 = (0..3).map(|a| (p[a] as f64 - c[a]).powi(2)).sum();
                    d2 < r * r || rng.chance(0.03)
                })
                .collect()
        };
        let (a, b) = (blob(&mut rng), blob(&mut rng));
        let (sa, sb) = (surface(&a), surface(&b));
        let nearest = |from: &[usize], to: &[usize]| -> Vec<f64> {
            from.iter()
                .map(|&q| {
                    let pq = position(q);
                    to.iter()
                        .map(|&t| {
                            let pt = position(t);
                            (0..3)
                                .map(|ax| ((pq[ax] as f64 - pt[ax] as f64) * spacing[ax]).powi(2))
                                .sum::<f64>()
                                .sqrt()
                        })
                        .fold(f64::INFINITY, f64::min)
                })
                .collect()
        };
        let mut all = nearest(&sa, &sb);
        all.extend(nearest(&sb, &sa));
        all.sort_by(f64::total_cmp);
        let at = 0.95 * (all.len() - 1) as f64;
        let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
        let expected = all[lo] + (at - lo as f64) * (all[hi] - all[lo]);
        let got = hd95(&a, &b, sizes, spacing);
        assert!(
            (got - expected).abs() < 1e-9,
            "seed {seed}: {got} vs {expected}"
        );
    }
}
