//! The kernel sources, embedded in the binary so that a carried executable compiles its
//! kernels without the repository, and the kernel names each file defines.

/// One `.cu` file: its name (as NVRTC reports it in logs) and its text.
#[derive(Clone, Copy, Debug)]
pub struct KernelFile {
    pub name: &'static str,
    pub source: &'static str,
}

macro_rules! kernel_file {
    ($name:literal) => {
        KernelFile {
            name: $name,
            source: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/kernels/", $name)),
        }
    };
}

macro_rules! header {
    ($name:literal) => {
        (
            concat!("common/", $name),
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/kernels/common/",
                $name
            )),
        )
    };
}

/// Every `kernels/*.cu` file.
pub const KERNEL_FILES: &[KernelFile] = &[
    kernel_file!("activation.cu"),
    kernel_file!("batch_norm.cu"),
    kernel_file!("cast.cu"),
    kernel_file!("concat.cu"),
    kernel_file!("conv3d.cu"),
    kernel_file!("conv_transpose3d.cu"),
    kernel_file!("dice.cu"),
    kernel_file!("max_pool.cu"),
    kernel_file!("optim.cu"),
];

/// Every `kernels/common/*.cuh` header, named as the kernels include it.
pub const HEADERS: &[(&str, &str)] = &[
    header!("half.cuh"),
    header!("sigmoid.cuh"),
    header!("storage.cuh"),
];

impl KernelFile {
    /// Names of the `extern "C" __global__` kernels the file defines, in order.
    pub fn kernel_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        let mut rest = self.source;
        while let Some(at) = rest.find("__global__") {
            rest = &rest[at + "__global__".len()..];
            let Some(paren) = rest.find('(') else { break };
            let mut head = &rest[..paren];
            // `void __launch_bounds__(a, b) name(`: skip past the bounds' parentheses.
            if head.contains("__launch_bounds__") {
                let Some(close) = rest.find(')') else { break };
                rest = &rest[close + 1..];
                let Some(paren) = rest.find('(') else { break };
                head = &rest[..paren];
            }
            if let Some(name) = head.split_whitespace().last() {
                let ident = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if ident && name != "void" {
                    names.push(name);
                }
            }
        }
        names
    }
}

/// The file that defines `kernel`.
pub fn file_of(kernel: &str) -> Option<&'static KernelFile> {
    KERNEL_FILES
        .iter()
        .find(|file| file.kernel_names().contains(&kernel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_file_and_header_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/kernels");
        let on_disk = |sub: &str, ext: &str| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(format!("{dir}/{sub}"))
                .unwrap()
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(ext))
                .collect();
            names.sort();
            names
        };
        let embedded: Vec<String> = KERNEL_FILES.iter().map(|f| f.name.to_string()).collect();
        assert_eq!(embedded, on_disk("", ".cu"));
        let headers: Vec<String> = HEADERS
            .iter()
            .map(|(n, _)| n.trim_start_matches("common/").to_string())
            .collect();
        assert_eq!(headers, on_disk("common", ".cuh"));
    }

    #[test]
    fn kernel_names_are_found_with_and_without_launch_bounds() {
        let conv = file_of("conv3d_fwd_f32").unwrap();
        assert_eq!(conv.name, "conv3d.cu");
        assert!(conv.kernel_names().contains(&"conv_channel_sum_f16"));
        assert_eq!(file_of("adam_step").unwrap().name, "optim.cu");
        assert_eq!(file_of("relu_f16").unwrap().name, "activation.cu");
        assert!(file_of("no_such_kernel").is_none());

        let text = "extern \"C\" __global__ void __launch_bounds__(256, 8) a_b(int x) {}\n\
                    extern \"C\" __global__ void plain(float* y) {}";
        let file = KernelFile {
            name: "t.cu",
            source: text,
        };
        assert_eq!(file.kernel_names(), vec!["a_b", "plain"]);
    }

    #[test]
    fn every_emulator_kernel_has_a_source_file() {
        let names = crate::launch::emu::EmuLauncher::new().kernel_names();
        assert!(names.len() > 50, "{names:?}");
        // The shim's own test kernels (kernels/emu/tests) are not part of the backend.
        for name in names.iter().filter(|n| !n.starts_with("emu_test_")) {
            assert!(file_of(name).is_some(), "no .cu file defines {name}");
        }
    }
}
