//! Writing then reading gives the same voxels and geometry, for every type, encoding, byte
//! order and header placement; writing what was read gives the same bytes.

use std::path::{Path, PathBuf};

use enamel::io::nrrd::{self, Encoding, Endian, Nrrd, WriteOptions};
use enamel::io::{read_volume, write_volume, Volume, Voxels};

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("enamel-io-rt-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Values that use the range of each type: extremes, zero, and a ramp.
fn all_types(n: usize) -> Vec<Voxels> {
    let ramp = |lo: i64, step: i64| (0..n as i64).map(move |i| lo + i * step);
    vec![
        Voxels::I8(ramp(-128, 11).map(|v| v.clamp(-128, 127) as i8).collect()),
        Voxels::U8(ramp(0, 13).map(|v| (v % 256) as u8).collect()),
        Voxels::I16(
            ramp(-32768, 2731)
                .map(|v| v.clamp(-32768, 32767) as i16)
                .collect(),
        ),
        Voxels::U16(ramp(0, 5000).map(|v| v.min(65535) as u16).collect()),
        Voxels::I32(ramp(i32::MIN as i64, 1 << 28).map(|v| v as i32).collect()),
        Voxels::U32(
            ramp(0, 1 << 29)
                .map(|v| v.min(u32::MAX as i64) as u32)
                .collect(),
        ),
        Voxels::I64((0..n).map(|i| i64::MIN + (i as i64) * (1 << 59)).collect()),
        Voxels::U64((0..n).map(|i| u64::MAX - (i as u64) * (1 << 58)).collect()),
        Voxels::F32(
            (0..n)
                .map(|i| (i as f32 - 3.3) * 1.0e-3_f32.powi(i as i32 % 3))
                .collect(),
        ),
        Voxels::F64((0..n).map(|i| (i as f64).sqrt() * -1.0e200 + 0.1).collect()),
    ]
}

fn oblique_volume(voxels: Voxels) -> Volume {
    let (c, s) = (0.6, 0.8);
    let mut v = Volume::new([3, 2, 2], voxels, [0.7, 1.1, 2.5]);
    v.direction = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, -1.0]];
    v.origin = [-12.5, 3.25, 100.125];
    v
}

fn assert_geometry_close(a: &Volume, b: &Volume, tol: f64) {
    assert_eq!(a.sizes, b.sizes);
    assert_eq!(a.channels, b.channels);
    for i in 0..3 {
        assert!(
            (a.spacing[i] - b.spacing[i]).abs() <= tol * b.spacing[i],
            "{a:?}\n{b:?}"
        );
        assert!((a.origin[i] - b.origin[i]).abs() <= tol * (1.0 + b.origin[i].abs()));
        for j in 0..3 {
            assert!(
                (a.direction[i][j] - b.direction[i][j]).abs() <= tol,
                "{a:?}\n{b:?}"
            );
        }
    }
}

fn round_trip(path: &Path, volume: &Volume, options: &WriteOptions) {
    let nrrd = Nrrd::from_volume(volume.clone());
    nrrd::write_nrrd(path, &nrrd, options).unwrap();
    let back = nrrd::read_nrrd(path).unwrap();
    assert_eq!(
        back.volume.voxels,
        volume.voxels,
        "{} {options:?}",
        path.display()
    );
    assert_geometry_close(&back.volume, volume, 1e-14);

    // Written again, the file is the same, byte for byte.
    let first = std::fs::read(path).unwrap();
    nrrd::write_nrrd(path, &back, options).unwrap();
    assert_eq!(
        std::fs::read(path).unwrap(),
        first,
        "{} {options:?}",
        path.display()
    );
}

#[test]
fn every_type_encoding_endian_and_placement() {
    let dir = tempdir("all");
    let encodings = [
        Encoding::Raw,
        Encoding::Gzip,
        Encoding::Bzip2,
        Encoding::Ascii,
        Encoding::Hex,
    ];
    for voxels in all_types(12) {
        let volume = oblique_volume(voxels);
        for encoding in encodings {
            for endian in [Endian::Little, Endian::Big] {
                let options = WriteOptions {
                    encoding,
                    endian,
                    compression_level: 6,
                };
                round_trip(&dir.join("a.nrrd"), &volume, &options);
                round_trip(&dir.join("d.nhdr"), &volume, &options);
            }
        }
    }
}

#[test]
fn channels_and_measurement_frame_survive() {
    let dir = tempdir("channels");
    let mut volume = oblique_volume(Voxels::F32((0..36).map(|i| i as f32 * 0.5).collect()));
    volume.sizes = [2, 2, 3];
    volume.channels = 3;
    volume.key_values = vec![("modality".into(), "CT".into())];
    let mut nrrd = Nrrd::from_volume(volume.clone());
    nrrd.measurement_frame = Some([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]);
    nrrd.channel_kind = Some("RGB-color".into());
    let path = dir.join("c.nrrd");
    nrrd::write_nrrd(&path, &nrrd, &WriteOptions::default()).unwrap();
    let back = nrrd::read_nrrd(&path).unwrap();
    assert_eq!(back.volume.voxels, volume.voxels);
    assert_eq!(back.volume.key_values, volume.key_values);
    assert_eq!(back.measurement_frame, nrrd.measurement_frame);
    assert_eq!(back.channel_kind.as_deref(), Some("RGB-color"));
    assert_geometry_close(&back.volume, &volume, 1e-14);

    // And through NIfTI (vector intent, channels slowest in the file).
    let nii = dir.join("c.nii");
    write_volume(&nii, &volume).unwrap();
    let from_nii = read_volume(&nii).unwrap();
    assert_eq!(from_nii.voxels, volume.voxels);
    assert_eq!(from_nii.channels, 3);
}

#[test]
fn default_writer_uses_gzip_lps_and_leaves_no_temporary_file() {
    let dir = tempdir("default");
    let volume = oblique_volume(Voxels::I16((0..12).collect()));
    let path = dir.join("v.nrrd");
    write_volume(&path, &volume).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("NRRD0004\n"));
    assert!(text.contains("encoding: gzip\n"));
    assert!(text.contains("space: left-posterior-superior\n"));
    // Each direction is column × spacing in f64, printed in its shortest exact form.
    let first = format!("space directions: ({},{},0) ", 0.6 * 0.7, 0.8 * 0.7);
    assert!(text.contains(&first), "{text}");
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("v.nrrd")]);
}
