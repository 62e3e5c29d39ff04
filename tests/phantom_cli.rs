//! `enamel phantom` end to end: the four volumes land in the output folder with the grid
//! asked for (`--size D,H,W` → NRRD sizes W H D), and a bad size is refused by name.

use std::path::PathBuf;
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enamel_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn header(path: &PathBuf) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let end = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("NRRD header end");
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[test]
fn phantom_command_writes_four_volumes_of_the_requested_size() {
    let out = scratch("phantom_cli");
    let status = Command::new(env!("CARGO_BIN_EXE_enamel"))
        .args(["phantom", "--out"])
        .arg(&out)
        .args(["--seed", "9", "--size", "48,64,56", "--spacing", "1"])
        .status()
        .unwrap();
    assert!(status.success());
    for name in [
        "image.nrrd",
        "teeth.nrrd",
        "categories.nrrd",
        "instances.nrrd",
    ] {
        let text = header(&out.join(name));
        assert!(text.starts_with("NRRD"), "{name}: {text}");
        assert!(text.contains("sizes: 56 64 48"), "{name}: {text}");
        assert!(text.contains("left-posterior-superior"), "{name}: {text}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn phantom_command_refuses_a_bad_size() {
    let out = scratch("phantom_cli_bad");
    let result = Command::new(env!("CARGO_BIN_EXE_enamel"))
        .args(["phantom", "--out"])
        .arg(&out)
        .args(["--size", "48,64"])
        .output()
        .unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("48,64"), "{stderr}");
    assert!(!out.exists());

    let coarse = Command::new(env!("CARGO_BIN_EXE_enamel"))
        .args(["phantom", "--out"])
        .arg(&out)
        .args(["--size", "16,16,16", "--spacing", "1"])
        .output()
        .unwrap();
    assert!(!coarse.status.success());
    assert!(String::from_utf8_lossy(&coarse.stderr).contains("voxels wide"));
}
