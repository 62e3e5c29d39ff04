//! `enamel info` on files made here: type, sizes, geometry, range and label counts.

use std::process::Command;

use enamel::io::{write_volume, Volume, Voxels};

fn run_info(path: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_enamel"))
        .arg("info")
        .arg(path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.success(),
        stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn info_prints_geometry_range_and_label_counts() {
    let dir = std::env::temp_dir().join(format!("enamel-io-info-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let labels: Vec<u8> = (0..24).map(|n| [0, 0, 3, 7][n % 4]).collect();
    let mut v = Volume::new([2, 3, 4], Voxels::U8(labels), [0.5, 0.25, 2.0]);
    v.origin = [1.0, -2.0, 3.5];
    v.direction = [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]];
    let path = dir.join("labels.nii.gz");
    write_volume(&path, &v).unwrap();

    let (ok, text, err) = run_info(&path);
    assert!(ok, "{err}");
    for line in [
        "type:       uint8",
        "sizes:      2 × 3 × 4 (24 voxels)",
        "spacing:    (0.500000, 0.250000, 2.000000) mm",
        "origin:     (1.000000, -2.000000, 3.500000) mm (LPS)",
        "direction i: (0.000000, 1.000000, 0.000000)",
        "direction k: (0.000000, 0.000000, -1.000000)",
        "range:      0 … 7",
        "labels:     3 distinct values",
        "       0: 12",
        "       3: 6",
        "       7: 6",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }

    // A float image has a range but no label table.
    let image = Volume::new([2, 1, 1], Voxels::F32(vec![-1.5, 2.25]), [1.0; 3]);
    let path = dir.join("image.nrrd");
    write_volume(&path, &image).unwrap();
    let (ok, text, _) = run_info(&path);
    assert!(
        ok && text.contains("range:      -1.5 … 2.25") && !text.contains("labels:"),
        "{text}"
    );

    // A file that is not a volume is an error naming it.
    let bad = dir.join("bad.nrrd");
    std::fs::write(&bad, "hello\n").unwrap();
    let (ok, _, err) = run_info(&bad);
    assert!(
        !ok && err.contains("bad.nrrd") && err.contains("not a NRRD file"),
        "{err}"
    );
}
