//! The real volumes of the shared data folder (env ENAMEL_DATA) must all load.

use std::path::PathBuf;

use enamel::fixtures::report_skip;
use enamel::io::{nrrd, read_volume, write_volume, Voxels};

/// The folder named by `ENAMEL_DATA`, or `None` after reporting that `test` was skipped.
fn data_dir(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("ENAMEL_DATA").filter(|d| !d.is_empty());
    if dir.is_none() {
        report_skip(
            test,
            "ENAMEL_DATA is not set (e.g. ENAMEL_DATA=../shared/data)",
        );
    }
    dir.map(PathBuf::from)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + b.abs())
}

#[test]
fn head_ct_loads_with_its_geometry() {
    let Some(dir) = data_dir("head_ct_loads_with_its_geometry") else {
        return;
    };
    let v = read_volume(&dir.join("ct-head-promed0051.nrrd")).unwrap();
    assert_eq!(v.sizes, [256, 256, 108]);
    assert_eq!(v.channels, 1);
    let Voxels::I16(values) = &v.voxels else {
        panic!("expected int16, got {}", v.voxels.type_name())
    };
    assert_eq!(values.len(), 256 * 256 * 108);
    assert_eq!(*values.iter().min().unwrap(), -1024);
    // The README says 3033; the file itself holds 2986 (checked with Python's gzip).
    assert_eq!(*values.iter().max().unwrap(), 2986);
    assert!(close(v.spacing[0], 0.9570312) && close(v.spacing[1], 0.9570312));
    assert!(close(v.spacing[2], 1.5));
    // j points to −P (anterior): the second column is (0,−1,0).
    assert_eq!(
        v.direction,
        [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]]
    );
    assert_eq!(v.origin, [0.0; 3]);
}

#[test]
fn every_label_map_and_crop_loads() {
    let Some(dir) = data_dir("every_label_map_and_crop_loads") else {
        return;
    };
    for name in ["teeth", "categories", "fdi"] {
        let head = read_volume(&dir.join(format!("ct-head-promed0051-{name}.nrrd"))).unwrap();
        assert_eq!(head.sizes, [256, 256, 108]);
        let jaw = read_volume(&dir.join(format!("ct-jaw-promed0051-{name}.nrrd"))).unwrap();
        assert_eq!(jaw.sizes, [78, 60, 22]);
        assert!(close(jaw.origin[0], 89.9609328) && close(jaw.origin[1], -157.910148));
        // The crop keeps world positions: jaw index (0,0,0) is head index (94,165,0).
        let w = head.index_to_world([94.0, 165.0, 0.0]);
        for a in 0..3 {
            assert!(
                (w[a] - jaw.origin[a]).abs() < 1e-9,
                "{w:?} vs {:?}",
                jaw.origin
            );
        }
    }
    let teeth = read_volume(&dir.join("ct-head-promed0051-teeth.nrrd")).unwrap();
    let Voxels::U8(t) = &teeth.voxels else {
        panic!("expected uint8")
    };
    assert_eq!(t.iter().filter(|&&x| x == 1).count(), 5053);
    let jaw = read_volume(&dir.join("ct-jaw-promed0051.nrrd")).unwrap();
    assert_eq!(jaw.voxels.type_name(), "int16");
}

#[test]
fn spacings_only_file_loads_with_identity_directions() {
    let Some(dir) = data_dir("spacings_only_file_loads_with_identity_directions") else {
        return;
    };
    let loaded = nrrd::read_nrrd(&dir.join("ct-headsq-quarter.nrrd")).unwrap();
    let v = &loaded.volume;
    assert_eq!(v.sizes, [64, 64, 93]);
    assert!(close(v.spacing[0], 3.2) && close(v.spacing[1], 3.2) && close(v.spacing[2], 1.5));
    assert_eq!(
        v.direction,
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    );
    assert_eq!(loaded.space, None);
    let values = v.voxels.to_f64();
    let max = values.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(max, 3926.0);
}

#[test]
fn cbct_nifti_labels_load_in_lps() {
    let Some(dir) = data_dir("cbct_nifti_labels_load_in_lps") else {
        return;
    };
    let path = dir.join("cbct-postdental-labels.nii.gz");
    let v = read_volume(&path).unwrap();
    assert_eq!(v.sizes, [360, 360, 330]);
    assert_eq!(v.voxels.type_name(), "int16");
    for s in v.spacing {
        assert!((s - 0.5).abs() < 1e-5, "spacing {:?}", v.spacing);
    }
    // The file's sform is diag(−0.5, −0.5, 0.5) in RAS: identity directions in LPS.
    assert_eq!(
        v.direction,
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    );
    let mut seen = [false; 6];
    for x in v.voxels.to_f32() {
        assert!((0.0..=5.0).contains(&x), "label {x}");
        seen[x as usize] = true;
    }
    assert_eq!(seen, [true; 6]);

    // NIfTI → NRRD → same geometry and values.
    let out = tempdir().join("cbct.nrrd");
    write_volume(&out, &v).unwrap();
    let back = read_volume(&out).unwrap();
    assert_eq!(back, v);
    let _ = std::fs::remove_file(out);
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("enamel-io-data-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
