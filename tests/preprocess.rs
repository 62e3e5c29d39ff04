//! The preprocessing pipeline on small arrays with closed-form answers.

use enamel::io::{Volume, Voxels};
use enamel::preprocess::*;

fn ramp(sizes: [usize; 3]) -> Array3 {
    let n: usize = sizes.iter().product();
    Array3::new(sizes, (0..n).map(|x| x as f32).collect()).unwrap()
}

#[test]
fn pad_to_multiple_of_the_unet_and_back() {
    let input = ramp([163, 112, 120]);
    let multiple = multiple_for_blocks(4);
    assert_eq!(multiple, 8);
    let (padded, padding) = pad_to_multiple(&input, multiple, Placement::End, -1.0).unwrap();
    assert_eq!(padded.sizes, [168, 112, 120]);
    assert_eq!(padding.undo(&padded, 0.0).unwrap(), input);

    // The reference pipeline's own target size.
    let (padded, padding) = pad_or_crop_to(&input, [168, 120, 120], Placement::End, -1.0).unwrap();
    assert_eq!(padding.before, [0, 0, 0]);
    assert_eq!(padded.get(162, 111, 119), input.get(162, 111, 119));
    assert_eq!(padded.get(163, 0, 0), -1.0);
    assert_eq!(padded.get(0, 112, 0), -1.0);
    assert_eq!(padding.undo(&padded, 0.0).unwrap(), input);

    let (centred, padding) = pad_to_multiple(&input, 16, Placement::Centre, 0.0).unwrap();
    assert_eq!(centred.sizes, [176, 112, 128]);
    assert_eq!(padding.before, [6, 0, 4]);
    assert_eq!(centred.get(6, 0, 4), input.get(0, 0, 0));
    assert_eq!(centred.get(5, 0, 4), 0.0);
    assert_eq!(padding.undo(&centred, 0.0).unwrap(), input);
}

#[test]
fn pad_or_crop_records_both_and_keeps_world_positions() {
    let input = ramp([4, 3, 2]);
    let (out, padding) = pad_or_crop_to(&input, [2, 5, 2], Placement::Centre, 9.0).unwrap();
    assert_eq!(padding.before, [-1, 1, 0]);
    assert_eq!(out.get(0, 1, 0), input.get(1, 0, 0));
    assert_eq!(out.get(1, 3, 1), input.get(2, 2, 1));
    assert_eq!(out.get(0, 0, 0), 9.0);
    assert_eq!(out.get(0, 4, 1), 9.0);

    // Undo: kept voxels come back, cropped ones get the fill.
    let back = padding.undo(&out, -7.0).unwrap();
    for k in 0..2 {
        for j in 0..3 {
            for i in 0..4 {
                let expect = if i == 0 || i == 3 {
                    -7.0
                } else {
                    input.get(i, j, k)
                };
                assert_eq!(back.get(i, j, k), expect, "({i},{j},{k})");
            }
        }
    }

    let mut volume = Volume::new([4, 3, 2], Voxels::F32(input.data.clone()), [0.5, 2.0, 3.0]);
    volume.origin = [10.0, 20.0, 30.0];
    volume.direction = [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]];
    let mut moved = out.into_volume(&volume);
    moved.origin = padding.shift_origin(&volume);
    // Output (0,1,0) holds input (1,0,0): both lie at the same world point.
    assert_eq!(
        moved.index_to_world([0.0, 1.0, 0.0]),
        volume.index_to_world([1.0, 0.0, 0.0])
    );

    assert!(padding.undo(&ramp([2, 2, 2]), 0.0).is_err());
}

#[test]
fn crop_box_and_errors() {
    let input = ramp([4, 4, 4]);
    let (out, padding) = crop(&input, [1, 2, 3], [2, 2, 1]).unwrap();
    assert_eq!(out.data, vec![57.0, 58.0, 61.0, 62.0]);
    assert_eq!(padding.before, [-1, -2, -3]);
    assert!(crop(&input, [3, 0, 0], [2, 1, 1]).is_err());
    assert!(pad_or_crop_to(&input, [0, 1, 1], Placement::End, 0.0).is_err());
}

#[test]
fn min_max_and_ct_window() {
    let mut a = Array3::new([4, 1, 1], vec![-1000.0, 500.0, 3000.0, 5000.0]).unwrap();
    ct_window(&mut a, -1000.0, 3000.0);
    assert_eq!(a.data, vec![-1000.0, 500.0, 3000.0, 3000.0]);
    let range = min_max(&mut a);
    assert_eq!(
        range,
        MinMax {
            min: -1000.0,
            max: 3000.0
        }
    );
    assert_eq!(a.data, vec![0.0, 0.375, 1.0, 1.0]);
    range.invert(&mut a);
    assert_eq!(a.data, vec![-1000.0, 500.0, 3000.0, 3000.0]);

    let mut flat = Array3::filled([2, 2, 1], 42.0);
    min_max(&mut flat);
    assert_eq!(flat.data, vec![0.0; 4]);
}

#[test]
fn quarter_turn_is_an_exact_permutation() {
    // 3×3×1: rotating 90° about k sends i toward j, so output (i,j) = input (j, 2−i).
    let a = ramp([3, 3, 1]);
    for interp in [Interpolation::Nearest, Interpolation::Linear] {
        let r = rotate(&a, Axis::K, 90.0, interp, -1.0);
        for j in 0..3 {
            for i in 0..3 {
                let got = r.get(i, j, 0);
                assert!(
                    (got - a.get(j, 2 - i, 0)).abs() < 1e-4,
                    "{interp:?} ({i},{j}) {got}"
                );
            }
        }
    }
    assert_eq!(rotate(&a, Axis::K, 0.0, Interpolation::Linear, 0.0), a);
}

#[test]
fn trilinear_rotation_of_a_linear_field_is_exact_inside() {
    // f = i is reproduced exactly by trilinear interpolation, so the rotated value at an
    // output voxel is the source i coordinate: c + cos·(i−c) + sin·(j−c).
    let n = 9;
    let a = Array3::new([n, n, 2], (0..n * n * 2).map(|x| (x % n) as f32).collect()).unwrap();
    let deg = 20.0f64;
    let r = rotate(&a, Axis::K, deg, Interpolation::Linear, f32::NAN);
    let (s, c) = deg.to_radians().sin_cos();
    let centre = 4.0;
    for j in 2..7 {
        for i in 2..7 {
            let expect = centre + c * (i as f64 - centre) + s * (j as f64 - centre);
            assert!((r.get(i, j, 1) as f64 - expect).abs() < 1e-4, "({i},{j})");
        }
    }
    // The corners rotate in from outside and get the fill.
    assert!(r.get(0, 0, 0).is_nan());
}

#[test]
fn nearest_rotation_of_labels_makes_no_new_values() {
    let labels: Vec<f32> = (0..6 * 5 * 4).map(|n| [0.0, 3.0, 7.0][n % 3]).collect();
    let a = Array3::new([6, 5, 4], labels).unwrap();
    let angles = [0.0, 20.0, 40.0, 60.0];
    for axis in [Axis::I, Axis::J, Axis::K] {
        for r in rotations(&a, axis, &angles, Interpolation::Nearest, 0.0) {
            assert!(r.data.iter().all(|x| [0.0, 3.0, 7.0].contains(x)));
        }
    }
    // About i, a quarter turn sends j toward k.
    let r = rotate(
        &ramp([1, 3, 3]),
        Axis::I,
        90.0,
        Interpolation::Nearest,
        -1.0,
    );
    let src = ramp([1, 3, 3]);
    assert_eq!(r.get(0, 0, 0), src.get(0, 0, 2));
}

#[test]
fn chunks_along_an_axis() {
    let a = ramp([168, 2, 1]);
    let dropped = chunks_along(&a, 0, 72, LastChunk::Drop).unwrap();
    assert_eq!(
        dropped.iter().map(|p| p.start[0]).collect::<Vec<_>>(),
        vec![0, 72]
    );
    let shifted = chunks_along(&a, 0, 72, LastChunk::Shift).unwrap();
    assert_eq!(
        shifted.iter().map(|p| p.start[0]).collect::<Vec<_>>(),
        vec![0, 72, 96]
    );
    assert_eq!(shifted[2].data.sizes, [72, 2, 1]);
    assert_eq!(shifted[2].data.get(0, 1, 0), a.get(96, 1, 0));
    let padded = chunks_along(&a, 0, 72, LastChunk::Pad(-5.0)).unwrap();
    assert_eq!(padded[2].start, [144, 0, 0]);
    assert_eq!(padded[2].data.get(23, 0, 0), a.get(167, 0, 0));
    assert_eq!(padded[2].data.get(24, 0, 0), -5.0);
    assert!(chunks_along(&a, 3, 72, LastChunk::Drop).is_err());
}

#[test]
fn sliding_patches_cover_and_stitch_back() {
    let starts = sliding_starts([10, 11, 4], [4, 4, 4], [1, 1, 0]).unwrap();
    let is: Vec<usize> = starts.iter().filter(|s| s[1] == 0).map(|s| s[0]).collect();
    let js: Vec<usize> = starts.iter().filter(|s| s[0] == 0).map(|s| s[1]).collect();
    assert_eq!(is, vec![0, 3, 6]);
    assert_eq!(js, vec![0, 3, 6, 7]);
    assert_eq!(starts.len(), 12);

    let a = ramp([10, 11, 4]);
    let patches: Vec<Patch> = starts
        .iter()
        .map(|&s| Patch {
            start: s,
            data: extract(&a, s, [4, 4, 4]).unwrap(),
        })
        .collect();
    assert_eq!(stitch_mean(a.sizes, &patches), a);
    assert!(sliding_starts([3, 3, 3], [4, 3, 3], [0; 3]).is_err());
    assert!(sliding_starts([5, 5, 5], [2, 2, 2], [2, 0, 0]).is_err());
}

#[test]
fn seeded_sampling_is_repeatable_and_finds_foreground() {
    let mut labels = Array3::filled([20, 16, 12], 0.0);
    let fg = labels.index(17, 3, 9);
    labels.data[fg] = 1.0;

    let mut a = PatchSampler::new([4, 4, 4], 1.0, 7).unwrap();
    let mut b = PatchSampler::new([4, 4, 4], 1.0, 7).unwrap();
    let sa = a.sample(&labels, 10).unwrap();
    assert_eq!(sa, b.sample(&labels, 10).unwrap());
    for s in &sa {
        // Centred on (17,3,9) and clamped inside the grid.
        assert_eq!(*s, [15, 1, 7]);
    }

    let mut uniform = PatchSampler::new([4, 4, 4], 0.0, 1).unwrap();
    let su = uniform.sample(&labels, 2000).unwrap();
    assert!(su.iter().all(|s| s[0] <= 16 && s[1] <= 12 && s[2] <= 8));
    let distinct_i: std::collections::BTreeSet<usize> = su.iter().map(|s| s[0]).collect();
    assert_eq!(distinct_i.len(), 17, "every start 0..=16 should appear");

    // A fraction of one half: about half of the patches land on the foreground voxel.
    let mut half = PatchSampler::new([4, 4, 4], 0.5, 3).unwrap();
    let hits = half
        .sample(&labels, 4000)
        .unwrap()
        .iter()
        .filter(|s| **s == [15, 1, 7])
        .count();
    assert!((1800..2300).contains(&hits), "{hits}");
    assert!(PatchSampler::new([4, 4, 4], 1.5, 0).is_err());
    assert!(PatchSampler::new([40, 4, 4], 0.5, 0)
        .unwrap()
        .sample(&labels, 1)
        .is_err());
}

#[test]
fn label_mapping_with_an_error_for_unmapped_values() {
    // Raw FDI-like numbers → classes, e.g. 11 and 21 → 1, 12..=13 and 22..=23 → 2.
    let map = LabelMap::from_ranges(&[
        (0, 0, 0),
        (11, 11, 1),
        (21, 21, 1),
        (12, 13, 2),
        (22, 23, 2),
    ]);
    let raw = Array3::new([3, 2, 1], vec![0.0, 11.0, 21.0, 12.0, 23.0, 13.0]).unwrap();
    assert_eq!(
        map.apply(&raw).unwrap().data,
        vec![0.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    );

    let bad = Array3::new([3, 2, 1], vec![0.0, 11.0, 21.0, 12.0, 16.0, 13.0]).unwrap();
    let err = map.apply(&bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "label value 16 at voxel [1, 1, 0] has no class in the mapping"
    );
    let frac = Array3::new([1, 1, 1], vec![11.5]).unwrap();
    assert!(map.apply(&frac).is_err());
    assert_eq!(LabelMap::from_pairs(&[(5, 2)]).class_of(5), Some(2));
}
