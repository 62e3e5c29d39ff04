//! Every kernel file compiles with NVRTC for sm_61 (GTX 1060) and sm_90 with no register
//! spill, static shared memory within 48 KB and registers within the budget written next to
//! each kernel (scripts/nvrtc-check.py does the compiling and the reading of ptxas's report).
//!
//! NVRTC is found through `ENAMEL_NVRTC` (the library) or `ENAMEL_NVRTC_DIR` (a
//! `pip install --target` folder of `nvidia-cuda-nvrtc-cu12`). Without it the test reports a
//! skip — unless `ENAMEL_REQUIRE_NVRTC=1`, as `.ci/run` sets, which makes it mandatory.

use std::path::Path;
use std::process::Command;

use enamel::fixtures::report_skip;

#[test]
fn every_kernel_compiles_for_sm61_and_sm90_within_its_budgets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(root.join("kernels"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cu"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no kernels/*.cu found");

    let required = std::env::var("ENAMEL_REQUIRE_NVRTC").is_ok_and(|v| v == "1");
    let mut command = Command::new("python3");
    command
        .arg(root.join("scripts/nvrtc-check.py"))
        .args(["--arch", "sm_61,sm_90"]);
    if let Some(dir) = std::env::var_os("ENAMEL_NVRTC_DIR") {
        command.arg("--nvrtc-dir").arg(dir);
    }
    if required {
        command.arg("--require");
    }
    let output = match command.args(&files).output() {
        Ok(output) => output,
        Err(e) if !required => {
            report_skip("nvrtc check", &format!("python3 could not be started: {e}"));
            return;
        }
        Err(e) => panic!("python3 could not be started: {e}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !required && stdout.contains("skipped") {
        report_skip(
            "nvrtc check",
            "NVRTC 12.x not found (set ENAMEL_NVRTC_DIR; see README)",
        );
        return;
    }
    assert!(
        output.status.success(),
        "NVRTC check failed:\n{stdout}\n{stderr}"
    );
}
