//! For the `libtorch` feature (the benches' baseline): link `libtorch_cuda.so` explicitly.
//! Nothing in the benches names a symbol of it, so the linker's `--as-needed` drops it and
//! libtorch then reports CUDA as unavailable. The arguments go to the bench targets only.

use std::env;
use std::path::PathBuf;
use std::process::Command;

pub fn link_cuda_library() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    println!("cargo:rerun-if-env-changed=PYTHON_SYS_EXECUTABLE");
    if env::var_os("CARGO_FEATURE_LIBTORCH").is_none() {
        return;
    }
    let Some(lib) = torch_lib_dir() else {
        println!(
            "cargo:warning=libtorch: torch's lib folder not found (set LIBTORCH, or \
             LIBTORCH_USE_PYTORCH=1 with torch importable by python3); CUDA may be unavailable"
        );
        return;
    };
    println!("cargo:rustc-link-arg-benches=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").is_file() {
        println!("cargo:rustc-link-arg-benches=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg-benches=-L{}", lib.display());
        println!("cargo:rustc-link-arg-benches=-ltorch_cuda");
        println!("cargo:rustc-link-arg-benches=-Wl,--allow-shlib-undefined");
    }
}

/// `$LIBTORCH/lib`, or the `lib` folder of the torch package that python imports.
fn torch_lib_dir() -> Option<PathBuf> {
    if let Some(root) = env::var_os("LIBTORCH") {
        return Some(PathBuf::from(root).join("lib"));
    }
    env::var_os("LIBTORCH_USE_PYTORCH")?;
    let python = env::var("PYTHON_SYS_EXECUTABLE").unwrap_or_else(|_| "python3".into());
    let output = Command::new(python)
        .args([
            "-c",
            "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
        ])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    dir.is_dir().then_some(dir)
}
