//! Roofline bounds: the least time a step can take on a device, from the FLOPs it must do and
//! the bytes it must move, and how close a measured time comes to it.

use crate::nn::UNetConfig;

/// Peak rates of a device, from its data sheet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviceSpec {
    pub name: &'static str,
    /// FP32 FLOP/s on the CUDA cores (no tensor cores: enamel's kernels do not use them).
    pub fp32_flops: f64,
    /// Memory bandwidth, bytes/s.
    pub bandwidth: f64,
}

/// GPUs whose peaks are known; matched against the device name by [`lookup`].
pub const KNOWN_GPUS: &[DeviceSpec] = &[
    DeviceSpec {
        name: "GTX 1060",
        fp32_flops: 4.37e12,
        bandwidth: 192e9,
    },
    DeviceSpec {
        name: "H200",
        fp32_flops: 67e12,
        bandwidth: 4.8e12,
    },
];

/// The known device whose name occurs in `device_name` (e.g. "NVIDIA GeForce GTX 1060 6GB").
pub fn lookup(device_name: &str) -> Option<DeviceSpec> {
    let wanted = device_name.to_ascii_lowercase();
    KNOWN_GPUS
        .iter()
        .find(|spec| wanted.contains(&spec.name.to_ascii_lowercase()))
        .copied()
}

/// The least time for `flops` and `bytes` on `spec`: whichever roof is lower.
pub fn bound_seconds(spec: &DeviceSpec, flops: f64, bytes: f64) -> f64 {
    (flops / spec.fp32_flops).max(bytes / spec.bandwidth)
}

/// Minimum memory traffic of one training step, in bytes, with `element_bytes` per stored
/// activation, assuming every conv is fused with its ReLU, batch norm and pooling neighbours:
/// the forward reads each conv's input and writes its output once; the backward reads the
/// output gradient and the input (for the weight gradient) and writes the input gradient
/// (not for the first layer). Weights are too small to count. This is a lower bound: real
/// kernels re-read tiles and keep more tensors.
pub fn training_step_bytes(config: &UNetConfig, size: [usize; 3], element_bytes: usize) -> f64 {
    let elements: usize = super::unet_layers(config, size)
        .iter()
        .map(|layer| {
            let input = layer.cin * layer.input_voxels();
            let output = layer.cout * layer.output_voxels();
            let input_grad = if layer.needs_input_grad { input } else { 0 };
            (input + output) + (output + input + input_grad)
        })
        .sum();
    (elements * element_bytes) as f64
}

/// Minimum memory traffic of one forward pass (inference), in bytes.
pub fn forward_bytes(config: &UNetConfig, size: [usize; 3], element_bytes: usize) -> f64 {
    let elements: usize = super::unet_layers(config, size)
        .iter()
        .map(|layer| layer.cin * layer.input_voxels() + layer.cout * layer.output_voxels())
        .sum();
    (elements * element_bytes) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_known_gpus() {
        let gtx = lookup("NVIDIA GeForce GTX 1060 6GB").unwrap();
        assert_eq!(gtx.fp32_flops, 4.37e12);
        assert_eq!(lookup("NVIDIA H200").unwrap().bandwidth, 4.8e12);
        assert!(lookup("Tesla K80").is_none());
    }

    #[test]
    fn net_a_step_is_compute_bound_on_a_gtx_1060() {
        let size = [72, 120, 120];
        let flops = super::super::unet_flops(&UNetConfig::BINARY, size).training_step;
        let bytes = training_step_bytes(&UNetConfig::BINARY, size, 2);
        let gtx = lookup("GTX 1060").unwrap();
        let seconds = bound_seconds(&gtx, flops, bytes);
        // 368.7 GFLOP at 4.37 TFLOP/s: 84 ms, above the byte roof.
        assert!((seconds - 0.0844).abs() < 0.0005, "{seconds}");
        assert!(bytes / gtx.bandwidth < seconds);
    }

    #[test]
    fn bytes_of_a_one_level_net_in_closed_form() {
        // One level: conv1 1→2 (first), conv2 2→2, final 1×1 2→1, all on 2·2·2 = 8 voxels.
        let config = UNetConfig {
            in_channels: 1,
            out_channels: 1,
            n_blocks: 1,
            start_filters: 2,
        };
        let forward = (1 + 2) + (2 + 2) + (2 + 1);
        let backward = (2 + 1) + (2 + 2 + 2) + (1 + 2 + 2);
        assert_eq!(
            forward_bytes(&config, [2, 2, 2], 4),
            (forward * 8 * 4) as f64
        );
        assert_eq!(
            training_step_bytes(&config, [2, 2, 2], 4),
            ((forward + backward) * 8 * 4) as f64
        );
    }
}
