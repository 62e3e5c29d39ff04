//! NVRTC: kernel sources to a cubin for one exact architecture, with the headers handed over
//! in memory, and a disk cache of the results. A cubin (machine code) rather than PTX, because
//! PTX from NVRTC 12.9 needs a recent driver while a cubin for the device's own architecture
//! loads on any driver that supports the device. Nothing here needs a GPU.

use std::ffi::{c_char, c_int, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use cudarc::nvrtc::sys as nvrtc;

use super::sources::{KernelFile, HEADERS};
use super::CudaError;

/// The options every kernel is compiled with, besides the architecture (the same as
/// scripts/nvrtc-check.py uses).
pub const BASE_OPTIONS: &[&str] = &["--std=c++17"];

/// A compiled kernel file: the cubin and NVRTC's log (warnings; empty when clean).
#[derive(Debug)]
pub struct Compiled {
    pub cubin: Vec<u8>,
    pub log: String,
}

/// `sm_XY` for compute capability X.Y.
pub fn arch_for(major: i32, minor: i32) -> String {
    format!("sm_{major}{minor}")
}

/// NVRTC's version. NVRTC must be loaded (see [`super::probe::LibrarySearch::load_nvrtc`]).
pub fn nvrtc_version() -> Result<(i32, i32), CudaError> {
    let (mut major, mut minor) = (0, 0);
    // SAFETY: two out-parameters that live across the call.
    check("nvrtcVersion", unsafe {
        nvrtc::nvrtcVersion(&mut major, &mut minor)
    })?;
    Ok((major, minor))
}

fn check(call: &'static str, status: nvrtc::nvrtcResult) -> Result<(), CudaError> {
    if status == nvrtc::nvrtcResult::NVRTC_SUCCESS {
        return Ok(());
    }
    // SAFETY: nvrtcGetErrorString returns a static NUL-terminated string for any status.
    let text = unsafe { CStr::from_ptr(nvrtc::nvrtcGetErrorString(status)) };
    Err(CudaError::Nvrtc {
        call,
        message: text.to_string_lossy().into_owned(),
    })
}

fn c_string(what: &str, text: &str) -> Result<CString, CudaError> {
    CString::new(text).map_err(|_| CudaError::Nvrtc {
        call: "nvrtcCreateProgram",
        message: format!("{what} contains a NUL byte"),
    })
}

/// Compiles `source` (named `name` in messages) with `headers` as `(include name, text)` and
/// `options`; a compile error carries NVRTC's log. NVRTC must be loaded.
pub fn compile_cubin(
    name: &str,
    source: &str,
    headers: &[(&str, &str)],
    options: &[String],
) -> Result<Compiled, CudaError> {
    let c_source = c_string(name, source)?;
    let c_name = c_string("the file name", name)?;
    let header_texts = headers
        .iter()
        .map(|(n, text)| c_string(n, text))
        .collect::<Result<Vec<_>, _>>()?;
    let header_names = headers
        .iter()
        .map(|(n, _)| c_string("a header name", n))
        .collect::<Result<Vec<_>, _>>()?;
    let c_options = options
        .iter()
        .map(|o| c_string("an option", o))
        .collect::<Result<Vec<_>, _>>()?;
    let text_ptrs: Vec<*const c_char> = header_texts.iter().map(|s| s.as_ptr()).collect();
    let name_ptrs: Vec<*const c_char> = header_names.iter().map(|s| s.as_ptr()).collect();
    let option_ptrs: Vec<*const c_char> = c_options.iter().map(|s| s.as_ptr()).collect();

    let mut program: nvrtc::nvrtcProgram = std::ptr::null_mut();
    // SAFETY: every pointer addresses a NUL-terminated string owned by this function, and the
    // arrays hold exactly the counts passed.
    check("nvrtcCreateProgram", unsafe {
        nvrtc::nvrtcCreateProgram(
            &mut program,
            c_source.as_ptr(),
            c_name.as_ptr(),
            headers.len() as c_int,
            text_ptrs.as_ptr(),
            name_ptrs.as_ptr(),
        )
    })?;
    let result = compile_program(program, name, options, &option_ptrs);
    // SAFETY: `program` was created above and is destroyed exactly once.
    unsafe { nvrtc::nvrtcDestroyProgram(&mut program) };
    result
}

fn compile_program(
    program: nvrtc::nvrtcProgram,
    name: &str,
    options: &[String],
    option_ptrs: &[*const c_char],
) -> Result<Compiled, CudaError> {
    // SAFETY: `program` is a live program; the option array holds `len` C strings.
    let status = unsafe {
        nvrtc::nvrtcCompileProgram(program, option_ptrs.len() as c_int, option_ptrs.as_ptr())
    };
    let log = program_log(program)?;
    if status == nvrtc::nvrtcResult::NVRTC_ERROR_COMPILATION {
        return Err(CudaError::Compile {
            file: name.to_string(),
            options: options.join(" "),
            log,
        });
    }
    check("nvrtcCompileProgram", status)?;

    let mut size = 0usize;
    // SAFETY: `program` compiled; `size` is an out-parameter.
    check("nvrtcGetCUBINSize", unsafe {
        nvrtc::nvrtcGetCUBINSize(program, &mut size)
    })?;
    let mut cubin = vec![0u8; size];
    // SAFETY: `cubin` holds the `size` bytes NVRTC reported.
    check("nvrtcGetCUBIN", unsafe {
        nvrtc::nvrtcGetCUBIN(program, cubin.as_mut_ptr().cast())
    })?;
    if cubin.is_empty() {
        return Err(CudaError::Nvrtc {
            call: "nvrtcGetCUBIN",
            message: format!("{name}: no cubin (was --gpu-architecture an sm_XY?)"),
        });
    }
    Ok(Compiled { cubin, log })
}

fn program_log(program: nvrtc::nvrtcProgram) -> Result<String, CudaError> {
    let mut size = 0usize;
    // SAFETY: `program` is live; `size` is an out-parameter.
    check("nvrtcGetProgramLogSize", unsafe {
        nvrtc::nvrtcGetProgramLogSize(program, &mut size)
    })?;
    let mut log = vec![0u8; size.max(1)];
    // SAFETY: `log` holds the `size` bytes NVRTC asked for (NUL included).
    check("nvrtcGetProgramLog", unsafe {
        nvrtc::nvrtcGetProgramLog(program, log.as_mut_ptr().cast())
    })?;
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    Ok(String::from_utf8_lossy(&log[..end]).trim_end().to_string())
}

/// The cache folder: `$ENAMEL_CACHE_DIR`, else `$XDG_CACHE_HOME/enamel/kernels`, else
/// `~/.cache/enamel/kernels`; none when none of those variables is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("ENAMEL_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("enamel/kernels"));
    }
    var("HOME").map(|home| PathBuf::from(home).join(".cache/enamel/kernels"))
}

/// Compiles the embedded kernel files for an architecture, through a disk cache keyed by the
/// sources, the architecture, the options and the NVRTC version.
pub struct KernelCompiler {
    cache_dir: Option<PathBuf>,
    extra_options: Vec<String>,
    nvrtc_version: (i32, i32),
    nvrtc_calls: AtomicUsize,
}

impl KernelCompiler {
    /// A compiler caching in `cache_dir` (none: no cache). NVRTC must be loaded.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, CudaError> {
        Ok(KernelCompiler {
            cache_dir,
            extra_options: Vec::new(),
            nvrtc_version: nvrtc_version()?,
            nvrtc_calls: AtomicUsize::new(0),
        })
    }

    /// The same compiler with `options` added after [`BASE_OPTIONS`].
    pub fn with_options(mut self, options: &[&str]) -> Self {
        self.extra_options = options.iter().map(|o| o.to_string()).collect();
        self
    }

    /// How many times NVRTC has compiled something (cache hits do not count).
    pub fn nvrtc_calls(&self) -> usize {
        self.nvrtc_calls.load(Ordering::Relaxed)
    }

    pub fn nvrtc(&self) -> (i32, i32) {
        self.nvrtc_version
    }

    /// The full option list for `arch` (`sm_XY`).
    pub fn options(&self, arch: &str) -> Vec<String> {
        let mut options: Vec<String> = BASE_OPTIONS.iter().map(|o| o.to_string()).collect();
        options.extend(self.extra_options.iter().cloned());
        options.push(format!("--gpu-architecture={arch}"));
        options
    }

    /// The cache file `file` compiles to for `arch`, when there is a cache.
    pub fn cache_path(&self, file: &KernelFile, arch: &str) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let (major, minor) = self.nvrtc_version;
        let mut key = Fnv128::new();
        for part in [file.name, file.source] {
            key.write(part.as_bytes());
        }
        for (name, text) in HEADERS {
            key.write(name.as_bytes());
            key.write(text.as_bytes());
        }
        for option in self.options(arch) {
            key.write(option.as_bytes());
        }
        key.write(format!("nvrtc {major}.{minor}").as_bytes());
        let stem = file.name.trim_end_matches(".cu");
        Some(dir.join(format!("{stem}-{arch}-{:032x}.cubin", key.finish())))
    }

    /// The cubin of `file` for `arch`: from the cache when a valid entry is there, else
    /// compiled (and stored; a cache that cannot be written only costs a recompile later).
    pub fn cubin(&self, file: &KernelFile, arch: &str) -> Result<Vec<u8>, CudaError> {
        let path = self.cache_path(file, arch);
        if let Some(cubin) = path.as_deref().and_then(read_entry) {
            return Ok(cubin);
        }
        let compiled = self.compile(file, arch)?;
        if let Some(path) = path {
            if let Err(e) = write_entry(&path, &compiled.cubin) {
                tracing::warn!("kernel cache: cannot write {}: {e}", path.display());
            }
        }
        Ok(compiled.cubin)
    }

    /// Compiles `file` for `arch`, bypassing the cache.
    pub fn compile(&self, file: &KernelFile, arch: &str) -> Result<Compiled, CudaError> {
        self.nvrtc_calls.fetch_add(1, Ordering::Relaxed);
        let options = self.options(arch);
        let compiled = compile_cubin(file.name, file.source, HEADERS, &options)?;
        if !compiled.log.is_empty() {
            tracing::debug!("NVRTC {} ({arch}): {}", file.name, compiled.log);
        }
        Ok(compiled)
    }
}

// A cache entry: magic, cubin length, FNV-1a 64 checksum of the cubin, then the cubin. An entry
// whose header or checksum does not match (truncated, overwritten) is treated as absent.
const ENTRY_MAGIC: &[u8; 8] = b"ENMLCUB1";
const ENTRY_HEADER: usize = 24;

fn read_entry(path: &Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    let valid = bytes.len() >= ENTRY_HEADER && &bytes[..8] == ENTRY_MAGIC && {
        let len = u64::from_le_bytes(bytes[8..16].try_into().ok()?) as usize;
        let sum = u64::from_le_bytes(bytes[16..24].try_into().ok()?);
        bytes.len() == ENTRY_HEADER + len && fnv64(&bytes[ENTRY_HEADER..]) == sum
    };
    if !valid {
        tracing::warn!("kernel cache: {} is damaged; recompiling", path.display());
        return None;
    }
    Some(bytes[ENTRY_HEADER..].to_vec())
}

/// Writes an entry to a temporary file next to `path` and renames it into place, so that a
/// reader (another process) sees either no entry or a whole one.
fn write_entry(path: &Path, cubin: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut bytes = Vec::with_capacity(ENTRY_HEADER + cubin.len());
    bytes.extend_from_slice(ENTRY_MAGIC);
    bytes.extend_from_slice(&(cubin.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&fnv64(cubin).to_le_bytes());
    bytes.extend_from_slice(cubin);
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = path.with_extension(format!("tmp.{}.{unique}", std::process::id()));
    std::fs::write(&temp, &bytes)?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// FNV-1a with 128 bits, fed length-prefixed parts so that moving text between parts changes
/// the key. Stable across Rust versions, unlike `DefaultHasher`.
struct Fnv128(u128);

impl Fnv128 {
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

    fn new() -> Self {
        Fnv128(0x6c62_272e_07bb_0142_62b8_2175_6295_c58d)
    }

    fn write(&mut self, part: &[u8]) {
        for &b in (part.len() as u64).to_le_bytes().iter().chain(part) {
            self.0 = (self.0 ^ u128::from(b)).wrapping_mul(Self::PRIME);
        }
    }

    fn finish(&self) -> u128 {
        self.0
    }
}
