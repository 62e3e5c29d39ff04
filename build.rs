//! Compiles the CUDA kernel files for the `emu` backend: every `kernels/*.cu` (and the shim's
//! own test kernels in `kernels/emu/tests/*.cu`) goes through g++ with the shim header
//! `kernels/emu/shim.h`, unmodified. For each file this script generates a C++ file that
//! includes it inside its own namespace (NVRTC compiles each file as its own module, so helpers
//! in different files must not collide), binds its `extern __shared__` arrays to the emulator's
//! dynamic shared memory, and lists its `extern "C" __global__` kernels in a table the
//! launcher searches by name.

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

#[path = "build/libtorch.rs"]
mod libtorch;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=kernels");
    println!("cargo:rerun-if-env-changed=ENAMEL_EMU_UCONTEXT");
    println!("cargo:rerun-if-env-changed=ENAMEL_EMU_CHECK_BOUNDS");
    println!("cargo:rerun-if-changed=build/libtorch.rs");
    libtorch::link_cuda_library();

    if let Err(message) = build_emulator() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

/// One kernel file and what the generated wrapper needs from it.
struct KernelFile {
    path: PathBuf,
    /// A C identifier unique to the file, from its path below `kernels/`.
    ident: String,
    kernels: Vec<String>,
    /// `extern __shared__` arrays: name → element type.
    dynamic_shared: BTreeMap<String, String>,
}

fn build_emulator() -> Result<(), String> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let kernels_dir = root.join("kernels");
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?).join("emu");
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;

    let mut sources = cu_files(&kernels_dir)?;
    sources.extend(cu_files(&kernels_dir.join("emu").join("tests"))?);
    let mut files = Vec::new();
    for path in sources {
        files.push(scan_kernel_file(&kernels_dir, &path)?);
    }
    check_unique_kernel_names(&files)?;

    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++20")
        .opt_level(2)
        .include(&kernels_dir)
        .flag("-fno-strict-aliasing")
        .flag("-Wno-unused-parameter")
        .flag("-Wno-unused-function");
    if env::var_os("ENAMEL_EMU_UCONTEXT").is_some() {
        build.define("ENAMEL_EMU_UCONTEXT", None);
    }
    if env::var_os("ENAMEL_EMU_CHECK_BOUNDS").is_some() {
        build
            .flag("-fsanitize=bounds")
            .flag("-fsanitize-undefined-trap-on-error");
    }
    for runtime in ["fiber.cpp", "scheduler.cpp", "launch.cpp"] {
        build.file(kernels_dir.join("emu").join(runtime));
    }
    for file in &files {
        let generated = out_dir.join(format!("{}.cpp", file.ident));
        write_if_changed(&generated, &wrapper_source(file))?;
        build.file(generated);
    }
    let index = out_dir.join("kernel_index.cpp");
    write_if_changed(&index, &index_source(&files))?;
    build.file(index);

    build.try_compile("enamel_emu").map_err(|e| e.to_string())
}

fn cu_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.is_file() && path.extension().is_some_and(|ext| ext == "cu") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn scan_kernel_file(kernels_dir: &Path, path: &Path) -> Result<KernelFile, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let code = strip_comments(&text);
    let relative = path.strip_prefix(kernels_dir).unwrap_or(path);
    let ident = relative
        .with_extension("")
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Ok(KernelFile {
        path: path.to_path_buf(),
        ident,
        kernels: kernel_names(&code, path)?,
        dynamic_shared: dynamic_shared_arrays(&code, path)?,
    })
}

/// Replaces comments by spaces (newlines kept, so line numbers stay right); string and
/// character literals are left alone.
fn strip_comments(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').map_or(text.len(), |n| i + n);
            out.extend(std::iter::repeat_n(' ', end - i));
            i = end;
        } else if let Some(body) = rest.strip_prefix("/*") {
            let end = body.find("*/").map_or(text.len(), |n| i + n + 4);
            out.extend(
                text[i..end]
                    .chars()
                    .map(|c| if c == '\n' { '\n' } else { ' ' }),
            );
            i = end;
        } else if rest.starts_with('"') || rest.starts_with('\'') {
            let quote = bytes[i];
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != quote && bytes[j] != b'\n' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(bytes.len());
            out.push_str(&text[i..end]);
            i = end;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn line_of(code: &str, offset: usize) -> usize {
    code[..offset].matches('\n').count() + 1
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Offsets of `word` in `code` where it stands as a whole identifier.
fn word_offsets<'a>(code: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    code.match_indices(word)
        .map(|(at, _)| at)
        .filter(move |&at| {
            let before = at.checked_sub(1).map(|b| code.as_bytes()[b]);
            let after = code.as_bytes().get(at + word.len()).copied();
            !before.is_some_and(is_ident_byte) && !after.is_some_and(is_ident_byte)
        })
}

/// Reads an identifier after optional whitespace; returns it and the offset after it.
fn next_ident(code: &str, from: usize) -> Option<(&str, usize)> {
    let start = from + code[from..].len() - code[from..].trim_start().len();
    let len = code[start..]
        .bytes()
        .take_while(|&b| is_ident_byte(b))
        .count();
    (len > 0).then(|| (&code[start..start + len], start + len))
}

/// Skips whitespace and one balanced `( ... )`, if there is one.
fn skip_parenthesised(code: &str, from: usize) -> usize {
    let start = from + code[from..].len() - code[from..].trim_start().len();
    if !code[start..].starts_with('(') {
        return from;
    }
    let mut depth = 0usize;
    for (k, c) in code[start..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return start + k + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// Names of the `extern "C" __global__ void NAME(` kernels, in file order.
fn kernel_names(code: &str, path: &Path) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for at in word_offsets(code, "__global__") {
        let line = line_of(code, at);
        if !code[..at].trim_end().ends_with("extern \"C\"") {
            return Err(format!(
                "{}:{line}: a __global__ function must be declared `extern \"C\" __global__ \
                 void NAME(` so NVRTC and the emulator find it by its plain name",
                path.display()
            ));
        }
        let parsed = next_ident(code, at + "__global__".len())
            .filter(|(word, _)| *word == "void")
            .and_then(|(_, after)| {
                let (word, end) = next_ident(code, after)?;
                if word == "__launch_bounds__" {
                    next_ident(code, skip_parenthesised(code, end))
                } else {
                    Some((word, end))
                }
            })
            .filter(|(_, end)| code[*end..].trim_start().starts_with('('));
        match parsed {
            Some((name, _)) => names.push(name.to_string()),
            None => {
                return Err(format!(
                    "{}:{line}: expected `__global__ void NAME(` (optionally with \
                     __launch_bounds__ before NAME)",
                    path.display()
                ))
            }
        }
    }
    Ok(names)
}

/// `extern __shared__ TYPE NAME[];` declarations: name → element type.
fn dynamic_shared_arrays(code: &str, path: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut arrays = BTreeMap::new();
    for at in word_offsets(code, "extern") {
        let Some((word, after_shared)) = next_ident(code, at + "extern".len()) else {
            continue;
        };
        if word != "__shared__" {
            continue;
        }
        let line = line_of(code, at);
        let bad = || {
            format!(
                "{}:{line}: expected `extern __shared__ TYPE NAME[];`",
                path.display()
            )
        };
        let open = code[after_shared..].find('[').ok_or_else(bad)? + after_shared;
        if !code[open + 1..].trim_start().starts_with(']') {
            return Err(bad());
        }

        // Drop alignment attributes; the emulator's buffer is 64-byte aligned.
        let mut declarator = code[after_shared..open].to_string();
        for attribute in ["__align__", "alignas"] {
            while let Some(start) = declarator.find(attribute) {
                let end = skip_parenthesised(&declarator, start + attribute.len());
                declarator.replace_range(start..end, " ");
            }
        }
        let words: Vec<&str> = declarator.split_whitespace().collect();
        let (name, type_words) = words.split_last().ok_or_else(bad)?;
        if type_words.is_empty() || !name.bytes().all(is_ident_byte) {
            return Err(bad());
        }
        let element = type_words.join(" ");
        if let Some(previous) = arrays.insert(name.to_string(), element.clone()) {
            if previous != element {
                return Err(format!(
                    "{}:{line}: `extern __shared__ {element} {name}[]` conflicts with an \
                     earlier `{previous} {name}[]`",
                    path.display()
                ));
            }
        }
    }
    Ok(arrays)
}

fn check_unique_kernel_names(files: &[KernelFile]) -> Result<(), String> {
    let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
    for file in files {
        for name in &file.kernels {
            if let Some(other) = seen.insert(name, &file.path) {
                return Err(format!(
                    "kernel `{name}` is defined in both {} and {}; kernels are launched by name, \
                     so names must be unique",
                    other.display(),
                    file.path.display()
                ));
            }
        }
    }
    Ok(())
}

fn wrapper_source(file: &KernelFile) -> String {
    let ns = format!("enamel_kernels_{}", file.ident);
    let mut s = String::new();
    let _ = writeln!(s, "// Generated by build.rs from {}.", file.path.display());
    s.push_str("#include \"emu/shim.h\"\n#include \"emu/registry.h\"\n\n");
    let _ = writeln!(s, "namespace {ns} {{");
    for (name, element) in &file.dynamic_shared {
        let _ = writeln!(
            s,
            "extern thread_local {element} {name}[] __asm__(\"enamel_emu_dynamic_shared\");"
        );
    }
    let _ = writeln!(s, "#include \"{}\"", file.path.display());
    let _ = writeln!(s, "}}  // namespace {ns}\n");

    let table = format!("enamel_emu_table_{}", file.ident);
    if file.kernels.is_empty() {
        let _ = writeln!(
            s,
            "extern \"C\" const enamel_emu::KernelEntry* {table}(std::size_t* count) {{\n    \
             *count = 0;\n    return nullptr;\n}}"
        );
        return s;
    }
    s.push_str("static constexpr enamel_emu::KernelEntry entries[] = {\n");
    for name in &file.kernels {
        let _ = writeln!(s, "    enamel_emu::entry<&{ns}::{name}>(\"{name}\"),");
    }
    s.push_str("};\n\n");
    let _ = writeln!(
        s,
        "extern \"C\" const enamel_emu::KernelEntry* {table}(std::size_t* count) {{\n    \
         *count = {};\n    return entries;\n}}",
        file.kernels.len()
    );
    s
}

fn index_source(files: &[KernelFile]) -> String {
    let mut s = String::from("// Generated by build.rs: every kernel file's table.\n");
    s.push_str("#include \"emu/registry.h\"\n\n");
    for file in files {
        let _ = writeln!(
            s,
            "extern \"C\" const enamel_emu::KernelEntry* enamel_emu_table_{}(std::size_t*);",
            file.ident
        );
    }
    let _ = writeln!(
        s,
        "\nextern \"C\" const enamel_emu::KernelTable* enamel_emu_kernel_tables(std::size_t* \
         count) {{\n    *count = {};",
        files.len()
    );
    if files.is_empty() {
        s.push_str("    return nullptr;\n}\n");
        return s;
    }
    s.push_str("    static const enamel_emu::KernelTable tables[] = {\n");
    for file in files {
        let _ = writeln!(
            s,
            "        [] {{ std::size_t n = 0; auto* e = enamel_emu_table_{}(&n); return \
             enamel_emu::KernelTable{{e, n}}; }}(),",
            file.ident
        );
    }
    s.push_str("    };\n    return tables;\n}\n");
    s
}

/// Rewrites `path` only when its text changes, so unchanged files keep their timestamps.
fn write_if_changed(path: &Path, text: &str) -> Result<(), String> {
    if fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
