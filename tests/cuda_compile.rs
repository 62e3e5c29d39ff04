//! The `cuda` backend's NVRTC path, which needs no GPU: every embedded kernel file compiles to
//! a cubin for sm_61 and sm_90, the disk cache hits, misses and heals as it should, and a
//! compile error carries NVRTC's log.
//!
//! NVRTC is found as the backend finds it (`ENAMEL_NVRTC_DIR`, `ENAMEL_NVRTC`, the system).
//! Without it the tests report a skip, unless `ENAMEL_REQUIRE_NVRTC=1` (CI).

use std::path::PathBuf;

use enamel::backend::cuda::compile::{compile_cubin, KernelCompiler};
use enamel::backend::cuda::sources::{KernelFile, KERNEL_FILES};
use enamel::backend::cuda::{CudaError, LibrarySearch};
use enamel::fixtures::report_skip;

const ELF_MAGIC: &[u8] = b"\x7fELF";

/// True when NVRTC is loaded; false (after reporting the skip) when it is absent and allowed
/// to be.
fn nvrtc_or_skip(test: &str) -> bool {
    match LibrarySearch::from_env().load_nvrtc() {
        Ok(_) => true,
        Err(e) if std::env::var("ENAMEL_REQUIRE_NVRTC").is_ok_and(|v| v == "1") => {
            panic!("ENAMEL_REQUIRE_NVRTC=1 but NVRTC is missing: {e}")
        }
        Err(e) => {
            report_skip(test, &e.to_string());
            false
        }
    }
}

fn temp_cache(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enamel-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn every_kernel_file_compiles_to_a_cubin_for_sm61_and_sm90() {
    if !nvrtc_or_skip("cubin compile") {
        return;
    }
    let compiler = KernelCompiler::new(None).unwrap();
    for file in KERNEL_FILES {
        for arch in ["sm_61", "sm_90"] {
            let cubin = compiler
                .cubin(file, arch)
                .unwrap_or_else(|e| panic!("{} for {arch}: {e}", file.name));
            assert!(cubin.starts_with(ELF_MAGIC), "{} for {arch}", file.name);
            assert!(cubin.len() > 1000, "{} for {arch}", file.name);
        }
    }
    assert_eq!(compiler.nvrtc_calls(), 2 * KERNEL_FILES.len());
}

#[test]
fn the_cache_hits_keys_by_arch_and_options_and_heals_a_damaged_entry() {
    if !nvrtc_or_skip("cubin cache") {
        return;
    }
    let dir = temp_cache("cubin-cache");
    let file = KERNEL_FILES.iter().find(|f| f.name == "cast.cu").unwrap();
    let compiler = KernelCompiler::new(Some(dir.clone())).unwrap();

    let first = compiler.cubin(file, "sm_61").unwrap();
    assert_eq!(compiler.nvrtc_calls(), 1);
    let path = compiler.cache_path(file, "sm_61").unwrap();
    assert!(path.exists(), "{} was not written", path.display());
    assert_eq!(compiler.cubin(file, "sm_61").unwrap(), first);
    assert_eq!(
        compiler.nvrtc_calls(),
        1,
        "the second compile is a cache hit"
    );

    // A fresh compiler (a later run) finds the entry too.
    let later = KernelCompiler::new(Some(dir.clone())).unwrap();
    assert_eq!(later.cubin(file, "sm_61").unwrap(), first);
    assert_eq!(later.nvrtc_calls(), 0);

    let other_arch = compiler.cache_path(file, "sm_90").unwrap();
    assert_ne!(other_arch, path);
    let fast = KernelCompiler::new(Some(dir.clone()))
        .unwrap()
        .with_options(&["--use_fast_math"]);
    assert_ne!(fast.cache_path(file, "sm_61").unwrap(), path);
    let other_file = KERNEL_FILES.iter().find(|f| f.name == "concat.cu").unwrap();
    assert_ne!(compiler.cache_path(other_file, "sm_61").unwrap(), path);

    // Truncated, then overwritten with junk of the right length: both recompiled.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(compiler.cubin(file, "sm_61").unwrap(), first);
    assert_eq!(compiler.nvrtc_calls(), 2);
    let mut flipped = std::fs::read(&path).unwrap();
    assert_eq!(flipped, bytes, "the healed entry was written back");
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    std::fs::write(&path, &flipped).unwrap();
    assert_eq!(compiler.cubin(file, "sm_61").unwrap(), first);
    assert_eq!(compiler.nvrtc_calls(), 3);

    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_compile_error_carries_the_file_name_and_nvrtc_log() {
    if !nvrtc_or_skip("NVRTC error log") {
        return;
    }
    let broken = KernelFile {
        name: "broken.cu",
        source: "#include \"common/half.cuh\"\n\
                 extern \"C\" __global__ void broken(float* y) { y[0] = not_declared_anywhere; }\n",
    };
    let compiler = KernelCompiler::new(None).unwrap();
    let err = compiler.cubin(&broken, "sm_61").unwrap_err();
    assert!(matches!(err, CudaError::Compile { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("broken.cu"), "{text}");
    assert!(text.contains("not_declared_anywhere"), "{text}");
    assert!(text.contains("--gpu-architecture=sm_61"), "{text}");

    // A header that is not handed over in memory is a compile error too, not a crash.
    let err = compile_cubin(
        "orphan.cu",
        "#include \"common/nowhere.cuh\"\n",
        &[],
        &["--gpu-architecture=sm_90".to_string()],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("common/nowhere.cuh"), "{err}");
}
