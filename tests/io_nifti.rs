//! NIfTI ↔ NRRD: geometry converted between RAS and LPS, an oblique matrix kept.
#![allow(clippy::needless_range_loop)] // matrices read best with explicit indices

use std::path::PathBuf;

use enamel::io::{read_volume, write_volume, Volume, Voxels};

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("enamel-io-nii-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A rotation of 30° about (1,1,1)/√3 followed by a mirror of the third axis: oblique and
/// left-handed, so the qform needs qfac = −1.
fn oblique_mirrored() -> [[f64; 3]; 3] {
    let (s, c) = (30f64.to_radians().sin(), 30f64.to_radians().cos());
    let u = [1.0 / 3f64.sqrt(); 3];
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            let cross = match (i, j) {
                (0, 1) => -u[2],
                (0, 2) => u[1],
                (1, 0) => u[2],
                (1, 2) => -u[0],
                (2, 0) => -u[1],
                (2, 1) => u[0],
                _ => 0.0,
            };
            let id = if i == j { 1.0 } else { 0.0 };
            r[i][j] = c * id + s * cross + (1.0 - c) * u[i] * u[j];
        }
    }
    for row in r.iter_mut() {
        row[2] = -row[2];
    }
    r
}

fn sample() -> Volume {
    let mut v = Volume::new(
        [4, 3, 2],
        Voxels::I16((0..24).map(|i| i * 7 - 50).collect()),
        [0.4, 0.55, 1.25],
    );
    v.direction = oblique_mirrored();
    v.origin = [-91.5, 120.25, -33.0];
    v
}

fn assert_close(a: &Volume, b: &Volume, tol: f64) {
    assert_eq!(a.sizes, b.sizes);
    for i in 0..3 {
        assert!(
            (a.spacing[i] - b.spacing[i]).abs() < tol,
            "spacing {:?} {:?}",
            a.spacing,
            b.spacing
        );
        assert!(
            (a.origin[i] - b.origin[i]).abs() < tol * 100.0,
            "origin {:?} {:?}",
            a.origin,
            b.origin
        );
        for j in 0..3 {
            let (x, y) = (a.direction[i][j], b.direction[i][j]);
            assert!(
                (x - y).abs() < tol,
                "direction {:?} {:?}",
                a.direction,
                b.direction
            );
        }
    }
}

#[test]
fn oblique_geometry_survives_nrrd_nifti_nrrd() {
    let dir = tempdir("oblique");
    let v = sample();
    for name in ["v.nii", "v.nii.gz"] {
        write_volume(&dir.join("v.nrrd"), &v).unwrap();
        let from_nrrd = read_volume(&dir.join("v.nrrd")).unwrap();
        write_volume(&dir.join(name), &from_nrrd).unwrap();
        let from_nii = read_volume(&dir.join(name)).unwrap();
        assert_eq!(from_nii.voxels, v.voxels);
        // NIfTI stores the affine in f32.
        assert_close(&from_nii, &v, 2e-7);
        write_volume(&dir.join("w.nrrd"), &from_nii).unwrap();
        assert_close(&read_volume(&dir.join("w.nrrd")).unwrap(), &v, 2e-7);
    }
}

#[test]
fn file_holds_ras_affine_and_matching_qform() {
    let dir = tempdir("ras");
    let v = sample();
    let path = dir.join("v.nii");
    write_volume(&path, &v).unwrap();

    // Check the header with the nifti crate's parser, independently of our reader.
    let bytes = std::fs::read(&path).unwrap();
    let h = nifti::NiftiHeader::from_reader(&bytes[..348]).unwrap();
    assert_eq!(h.dim[..4], [3, 4, 3, 2]);
    assert_eq!(h.datatype, 4);
    let rows = [h.srow_x, h.srow_y, h.srow_z];
    let flip = [-1.0, -1.0, 1.0];
    for r in 0..3 {
        for c in 0..3 {
            let expect = flip[r] * v.direction[r][c] * v.spacing[c];
            assert!(
                (rows[r][c] as f64 - expect).abs() < 1e-6,
                "srow {r} col {c}"
            );
        }
        assert!((rows[r][3] as f64 - flip[r] * v.origin[r]).abs() < 1e-4);
    }
    assert_eq!(h.pixdim[0], -1.0, "a mirrored frame needs qfac = -1");

    // The qform alone gives the same geometry: clear the sform code and read again.
    let mut only_q = bytes.clone();
    only_q[254..256].copy_from_slice(&0i16.to_le_bytes());
    std::fs::write(dir.join("q.nii"), only_q).unwrap();
    assert_close(&read_volume(&dir.join("q.nii")).unwrap(), &v, 2e-6);
}

#[test]
fn truncated_nifti_is_an_error() {
    let dir = tempdir("trunc");
    let path = dir.join("v.nii");
    write_volume(&path, &sample()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let err = read_volume(&path).unwrap_err().to_string();
    assert!(
        err.contains("hold 45 bytes") && err.contains("need 48"),
        "{err}"
    );
}
