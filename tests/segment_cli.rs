//! `enamel segment` as a user runs it: checkpoints in, the output folder out, clear errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use enamel::io::{read_volume, write_volume};
use enamel::nn::{checkpoint, UNet, UNetConfig};
use enamel::phantom::{generate, PhantomConfig};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enamel-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn small_net(out_channels: usize) -> UNetConfig {
    UNetConfig {
        in_channels: 1,
        out_channels,
        n_blocks: 2,
        start_filters: 4,
    }
}

fn segment(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_enamel"))
        .arg("segment")
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn setup(dir: &Path) -> (String, String, String) {
    let phantom = generate(&PhantomConfig {
        seed: 9,
        sizes: PhantomConfig::sizes_from_dhw([40, 56, 56]),
        spacing: 1.2,
        ..PhantomConfig::default()
    })
    .unwrap();
    let image = dir.join("image.nrrd");
    write_volume(&image, &phantom.image).unwrap();
    let a = dir.join("a.safetensors");
    let b = dir.join("b.safetensors");
    checkpoint::save(&UNet::new(small_net(1), 1).unwrap(), &a, &[]).unwrap();
    checkpoint::save(&UNet::new(small_net(9), 2).unwrap(), &b, &[]).unwrap();
    let s = |p: PathBuf| p.display().to_string();
    (s(image), s(a), s(b))
}

#[test]
fn segment_writes_every_output_with_the_inputs_geometry() {
    let dir = temp_dir("segment-cli");
    let (image, a, b) = setup(&dir);
    let out = dir.join("out");
    let result = segment(&[
        &image,
        "--binary",
        &a,
        "--categories",
        &b,
        "--out",
        out.to_str().unwrap(),
        "--patch",
        "16,32,32",
        "--device",
        "cpu",
        "--probabilities",
    ]);
    assert!(result.status.success(), "{}", text(&result));
    let input = read_volume(Path::new(&image)).unwrap();
    for name in ["categories.nrrd", "instances.nrrd", "probabilities.nrrd"] {
        let v = read_volume(&out.join(name)).unwrap();
        assert_eq!(
            (v.sizes, v.spacing, v.origin, v.direction),
            (input.sizes, input.spacing, input.origin, input.direction),
            "{name}"
        );
    }
    let probabilities = read_volume(&out.join("probabilities.nrrd")).unwrap();
    let values = probabilities.voxels.to_f32();
    assert!(
        values.iter().all(|p| (0.0..=1.0).contains(p)),
        "probabilities in [0, 1]"
    );
    // The 9 class probabilities of every voxel sum to 1 (channel 0 is P(tooth)).
    for voxel in values.chunks(10).step_by(97) {
        let sum: f32 = voxel[1..].iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "{voxel:?}");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["device"], "cpu");
    assert_eq!(report["sizes"], serde_json::json!(input.sizes));
    for file in report["files"].as_array().unwrap() {
        assert!(out.join(file.as_str().unwrap()).exists(), "{file}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_checkpoints_and_options_are_clear_errors() {
    let dir = temp_dir("segment-cli-errors");
    let (image, a, b) = setup(&dir);
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    let base = |binary: &str, categories: &str| {
        segment(&[
            &image,
            "--binary",
            binary,
            "--categories",
            categories,
            "--out",
            out,
            "--patch",
            "16,32,32",
            "--device",
            "cpu",
        ])
    };

    let missing = dir.join("missing.safetensors");
    let r = base(missing.to_str().unwrap(), &b);
    assert!(!r.status.success());
    assert!(text(&r).contains("missing.safetensors"), "{}", text(&r));

    // The stages swapped: the binary stage must have one output channel.
    let r = base(&b, &a);
    assert!(!r.status.success());
    assert!(text(&r).contains("one output channel"), "{}", text(&r));

    // A plain state_dict (no recorded configuration) needs --patch.
    let r = segment(&[&image, "--binary", &a, "--categories", &b, "--out", out]);
    assert!(!r.status.success());
    assert!(text(&r).contains("--patch"), "{}", text(&r));

    let r = segment(&[
        &image,
        "--binary",
        &a,
        "--categories",
        &b,
        "--out",
        out,
        "--patch",
        "15,32,32",
    ]);
    assert!(!r.status.success(), "a patch the U-Net cannot take");

    let r = segment(&[
        &image,
        "--binary",
        &a,
        "--categories",
        &b,
        "--out",
        out,
        "--patch",
        "16,32,32",
        "--overlap",
        "1",
    ]);
    assert!(!r.status.success());
    assert!(text(&r).contains("--overlap"), "{}", text(&r));
    assert!(
        !Path::new(out).join("report.json").exists(),
        "no output after an error"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
