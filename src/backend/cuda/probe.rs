//! Finding libcuda and libnvrtc before cudarc touches them: cudarc loads both by plain name
//! and panics when one is missing, so each is first loaded here by an explicit path or name,
//! and a missing one becomes an error that says what was looked for and where. Once loaded,
//! cudarc's own by-name load finds the same library (the loader matches its SONAME).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::CudaError;

/// The names the driver library goes by (the `.so` link exists only with development files).
const CUDA_NAMES: &[&str] = &["libcuda.so.1", "libcuda.so"];

/// NVRTC 12.x: CUDA 13's NVRTC no longer compiles for sm_61 (the GTX 1060).
const NVRTC_NAMES: &[&str] = &["libnvrtc.so.12", "libnvrtc.so"];

const CUDA_HINT: &str = "is the NVIDIA driver installed? (or use --device cpu)";

const NVRTC_HINT: &str = "install it with `pip install --target DIR nvidia-cuda-nvrtc-cu12` and \
                          set ENAMEL_NVRTC_DIR=DIR, or point ENAMEL_NVRTC at libnvrtc.so.12";

/// Where the `nvidia-cuda-nvrtc-cu12` wheel puts the library inside a site-packages folder.
const WHEEL_LIB: &str = "nvidia/cuda_nvrtc/lib";

/// Libraries loaded here stay loaded for the life of the process, so that the handles cudarc
/// opens by name keep pointing at them.
static KEPT: Mutex<Vec<libloading::Library>> = Mutex::new(Vec::new());

/// Where to look for the two libraries. Tests build one by hand; [`LibrarySearch::from_env`]
/// is what the backend uses.
#[derive(Clone, Debug, Default)]
pub struct LibrarySearch {
    /// Also try the plain names through the dynamic loader (`LD_LIBRARY_PATH`, ld.so.cache).
    pub system: bool,
    /// Folders that may hold `libcuda.so.1`.
    pub cuda_dirs: Vec<PathBuf>,
    /// An exact NVRTC library file (`$ENAMEL_NVRTC`).
    pub nvrtc_file: Option<PathBuf>,
    /// Folders that may hold the NVRTC wheel's `nvidia/cuda_nvrtc/lib`: a `pip install
    /// --target` folder (`$ENAMEL_NVRTC_DIR`) or a Python site-packages folder.
    pub nvrtc_wheel_dirs: Vec<PathBuf>,
}

impl LibrarySearch {
    /// The system loader, the usual driver folders, `$ENAMEL_NVRTC`, `$ENAMEL_NVRTC_DIR`, the
    /// `target/nvrtc-cu12` folder CI installs into (next to the executable), and the Python
    /// site-packages folders of this machine.
    pub fn from_env() -> Self {
        let mut wheel_dirs: Vec<PathBuf> = std::env::var_os("ENAMEL_NVRTC_DIR")
            .map(|dir| std::env::split_paths(&dir).collect())
            .unwrap_or_default();
        if let Ok(exe) = std::env::current_exe() {
            for dir in exe.ancestors().skip(1).take(4) {
                wheel_dirs.push(dir.join("nvrtc-cu12"));
            }
        }
        wheel_dirs.extend(python_site_dirs());
        LibrarySearch {
            system: true,
            cuda_dirs: [
                "/usr/lib/x86_64-linux-gnu",
                "/usr/lib64",
                "/usr/lib/x86_64-linux-gnu/nvidia/current",
                "/usr/lib/wsl/lib",
            ]
            .iter()
            .map(PathBuf::from)
            .collect(),
            nvrtc_file: std::env::var_os("ENAMEL_NVRTC").map(PathBuf::from),
            nvrtc_wheel_dirs: wheel_dirs,
        }
    }

    /// Loads libcuda; the path or name it was found as.
    pub fn load_cuda(&self) -> Result<String, CudaError> {
        let mut candidates: Vec<String> = Vec::new();
        for dir in &self.cuda_dirs {
            candidates.extend(CUDA_NAMES.iter().map(|n| path_text(&dir.join(n))));
        }
        if self.system {
            candidates.extend(CUDA_NAMES.iter().map(|n| n.to_string()));
        }
        let found = load_first("libcuda", &candidates, CUDA_HINT)?;
        // SAFETY: only opens libraries by name; the driver library is already loaded.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(CudaError::Library {
                library: "libcuda",
                looked: format!("{found} loaded, but cudarc cannot open it by name"),
                hint: CUDA_HINT,
            });
        }
        Ok(found)
    }

    /// Loads libnvrtc (12.x); the path or name it was found as.
    pub fn load_nvrtc(&self) -> Result<String, CudaError> {
        let mut candidates: Vec<String> = Vec::new();
        if let Some(file) = &self.nvrtc_file {
            candidates.push(path_text(file));
        }
        for dir in &self.nvrtc_wheel_dirs {
            candidates.push(path_text(&dir.join(WHEEL_LIB).join(NVRTC_NAMES[0])));
        }
        if self.system {
            candidates.extend(NVRTC_NAMES.iter().map(|n| n.to_string()));
        }
        let found = load_first("libnvrtc", &candidates, NVRTC_HINT)?;
        // SAFETY: only opens libraries by name; NVRTC is already loaded.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(CudaError::Library {
                library: "libnvrtc",
                looked: format!("{found} loaded, but cudarc cannot open it by name"),
                hint: NVRTC_HINT,
            });
        }
        Ok(found)
    }
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

/// Loads the first candidate that opens; the error lists them all, with the loader's reason
/// for files that exist but would not load.
fn load_first(
    library: &'static str,
    candidates: &[String],
    hint: &'static str,
) -> Result<String, CudaError> {
    let mut problems = Vec::new();
    for candidate in candidates {
        let is_path = candidate.contains('/');
        if is_path && !Path::new(candidate).exists() {
            continue;
        }
        // SAFETY: loading runs the library's initialisers; the driver and NVRTC libraries
        // are meant to be loaded this way and have no initialisers with preconditions.
        match unsafe { libloading::Library::new(candidate) } {
            Ok(lib) => {
                if let Ok(mut kept) = KEPT.lock() {
                    kept.push(lib);
                }
                return Ok(candidate.clone());
            }
            Err(e) if is_path => problems.push(format!("{candidate} exists but failed: {e}")),
            Err(_) => {}
        }
    }
    let mut looked = if candidates.is_empty() {
        "nowhere (no search path was given)".to_string()
    } else {
        candidates.join(", ")
    };
    if !problems.is_empty() {
        looked.push_str(&format!("; {}", problems.join("; ")));
    }
    Err(CudaError::Library {
        library,
        looked,
        hint,
    })
}

/// Python package folders on this machine (`/usr/lib/python3*/{site,dist}-packages`, the
/// user's `~/.local` ones and an active virtual environment's), where `pip install
/// nvidia-cuda-nvrtc-cu12` puts the wheel.
fn python_site_dirs() -> Vec<PathBuf> {
    let mut lib_roots: Vec<PathBuf> = vec!["/usr/lib".into(), "/usr/local/lib".into()];
    if let Some(home) = std::env::var_os("HOME") {
        lib_roots.push(PathBuf::from(home).join(".local/lib"));
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        lib_roots.push(PathBuf::from(venv).join("lib"));
    }
    let mut dirs = Vec::new();
    for root in lib_roots {
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        let mut pythons: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
            .map(|e| e.path())
            .collect();
        pythons.sort();
        for python in pythons {
            dirs.push(python.join("site-packages"));
            dirs.push(python.join("dist-packages"));
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nowhere() -> (PathBuf, LibrarySearch) {
        let dir = std::env::temp_dir().join(format!("enamel-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let search = LibrarySearch {
            system: false,
            cuda_dirs: vec![dir.clone()],
            nvrtc_file: Some(dir.join("libnvrtc-custom.so")),
            nvrtc_wheel_dirs: vec![dir.clone()],
        };
        (dir, search)
    }

    #[test]
    fn a_missing_driver_is_an_error_naming_libcuda_and_where_it_looked() {
        let (dir, search) = nowhere();
        let err = search.load_cuda().unwrap_err().to_string();
        assert!(err.contains("libcuda"), "{err}");
        assert!(err.contains(&path_text(&dir.join("libcuda.so.1"))), "{err}");
        let none = LibrarySearch::default()
            .load_cuda()
            .unwrap_err()
            .to_string();
        assert!(none.contains("no search path"), "{none}");
    }

    #[test]
    fn a_missing_nvrtc_is_an_error_naming_every_place_tried() {
        let (dir, search) = nowhere();
        let err = search.load_nvrtc().unwrap_err().to_string();
        assert!(err.contains("libnvrtc"), "{err}");
        assert!(err.contains("libnvrtc-custom.so"), "{err}");
        let wheel = dir.join("nvidia/cuda_nvrtc/lib/libnvrtc.so.12");
        assert!(err.contains(&path_text(&wheel)), "{err}");
    }

    #[test]
    fn a_file_that_is_no_library_is_reported_with_the_loader_reason() {
        let (dir, mut search) = nowhere();
        let bogus = dir.join("not-a-library.so");
        std::fs::write(&bogus, b"plain text").unwrap();
        search.nvrtc_file = Some(bogus.clone());
        let err = search.load_nvrtc().unwrap_err().to_string();
        assert!(err.contains("exists but failed"), "{err}");
        assert!(err.contains(&path_text(&bogus)), "{err}");
    }
}
