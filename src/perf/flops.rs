//! Floating-point operations of the U-Net's convolutions, counted layer by layer.
//!
//! A convolution does one multiply and one add per weight per output voxel (per input voxel
//! for the transposed convolution): 2·Cin·Cout·k³. Its backward does the same work twice, once
//! for the input gradient and once for the weight gradient; the first layer's input gradient is
//! not needed (the image is not trained), so a training step is 3× forward minus that pass.
//! Batch norm, ReLU, pooling and the loss are not counted: they are memory-bound and small.

use crate::nn::UNetConfig;

/// Which way a layer maps voxels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKind {
    /// Conv3d, stride 1, same padding: output size = input size.
    Conv,
    /// ConvTranspose3d with kernel = stride: output size = input size · kernel.
    Transposed,
}

/// One convolution of the network, with the spatial size of its input.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvLayer {
    /// PyTorch's state_dict prefix, e.g. `down_blocks.0.conv1`.
    pub name: String,
    pub kind: ConvKind,
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    /// Input D,H,W (batch 1).
    pub input: [usize; 3],
    /// False for the first layer: nothing upstream wants its input gradient.
    pub needs_input_grad: bool,
}

impl ConvLayer {
    pub fn input_voxels(&self) -> usize {
        self.input.iter().product()
    }

    pub fn output(&self) -> [usize; 3] {
        match self.kind {
            ConvKind::Conv => self.input,
            ConvKind::Transposed => self.input.map(|s| s * self.kernel),
        }
    }

    pub fn output_voxels(&self) -> usize {
        self.output().iter().product()
    }

    /// FLOPs of the forward pass for a batch of one.
    pub fn forward_flops(&self) -> f64 {
        let per_voxel = 2.0 * (self.cin * self.cout * self.kernel.pow(3)) as f64;
        let voxels = match self.kind {
            ConvKind::Conv => self.output_voxels(),
            ConvKind::Transposed => self.input_voxels(),
        };
        per_voxel * voxels as f64
    }

    /// FLOPs of the backward pass: the weight gradient always, the input gradient when needed.
    pub fn backward_flops(&self) -> f64 {
        let passes = if self.needs_input_grad { 2.0 } else { 1.0 };
        passes * self.forward_flops()
    }
}

/// FLOPs of one network on one patch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetFlops {
    pub forward: f64,
    /// Forward + backward (the optimizer's few FLOPs per parameter are left out).
    pub training_step: f64,
}

/// The convolutions of `config` on an input of D,H,W `size`, in forward order.
pub fn unet_layers(config: &UNetConfig, size: [usize; 3]) -> Vec<ConvLayer> {
    let level_size = |level: usize| size.map(|s| s >> level);
    let conv = |name: String, cin, cout, kernel, input, first: bool| ConvLayer {
        name,
        kind: ConvKind::Conv,
        cin,
        cout,
        kernel,
        input,
        needs_input_grad: !first,
    };

    let mut layers = Vec::new();
    let mut channels = config.in_channels;
    for level in 0..config.n_blocks {
        let filters = config.start_filters << level;
        let at = level_size(level);
        let name = |part: &str| format!("down_blocks.{level}.{part}");
        layers.push(conv(name("conv1"), channels, filters, 3, at, level == 0));
        layers.push(conv(name("conv2"), filters, filters, 3, at, false));
        channels = filters;
    }
    for (i, level) in (0..config.n_blocks - 1).rev().enumerate() {
        let filters = config.start_filters << level;
        let name = |part: &str| format!("up_blocks.{i}.{part}");
        layers.push(ConvLayer {
            name: name("up"),
            kind: ConvKind::Transposed,
            cin: channels,
            cout: filters,
            kernel: 2,
            input: level_size(level + 1),
            needs_input_grad: true,
        });
        let at = level_size(level);
        layers.push(conv(name("conv1"), 2 * filters, filters, 3, at, false));
        layers.push(conv(name("conv2"), filters, filters, 3, at, false));
        channels = filters;
    }
    let out = config.out_channels;
    layers.push(conv("conv_final".into(), channels, out, 1, size, false));
    layers
}

/// Forward and training-step FLOPs of `config` on one D,H,W patch.
pub fn unet_flops(config: &UNetConfig, size: [usize; 3]) -> NetFlops {
    let layers = unet_layers(config, size);
    let forward: f64 = layers.iter().map(ConvLayer::forward_flops).sum();
    let backward: f64 = layers.iter().map(ConvLayer::backward_flops).sum();
    NetFlops {
        forward,
        training_step: forward + backward,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GFLOP: f64 = 1e9;

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance
    }

    #[test]
    fn net_a_on_its_patch_matches_the_counted_totals() {
        let flops = unet_flops(&UNetConfig::BINARY, [72, 120, 120]);
        assert!(close(flops.forward / GFLOP, 123.2, 0.05), "{flops:?}");
        assert!(close(flops.training_step / GFLOP, 368.7, 0.05), "{flops:?}");
    }

    #[test]
    fn net_b_on_the_whole_volume_matches_the_counted_totals() {
        let flops = unet_flops(&UNetConfig::CATEGORIES, [168, 120, 120]);
        assert!(close(flops.forward / GFLOP, 72.8, 0.05), "{flops:?}");
        assert!(close(flops.training_step / GFLOP, 217.4, 0.05), "{flops:?}");
    }

    #[test]
    fn first_level_holds_most_of_net_a() {
        let size = [72, 120, 120];
        let layers = unet_layers(&UNetConfig::BINARY, size);
        let total: f64 = layers.iter().map(ConvLayer::forward_flops).sum();
        let level0: f64 = layers
            .iter()
            .filter(|l| l.input == size)
            .map(ConvLayer::forward_flops)
            .sum();
        assert!(close(level0 / total, 0.597, 0.005), "{}", level0 / total);
    }

    #[test]
    fn layers_follow_the_networks_shapes() {
        let layers = unet_layers(&UNetConfig::BINARY, [8, 16, 32]);
        let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names.len(), 13);
        assert_eq!(names[0], "down_blocks.0.conv1");
        assert_eq!(names[6], "up_blocks.0.up");
        assert_eq!(names[12], "conv_final");
        let up = &layers[6];
        assert_eq!((up.cin, up.cout, up.input), (72, 36, [2, 4, 8]));
        assert_eq!(up.output(), [4, 8, 16]);
        // 2·72·36·8 per input voxel, 64 input voxels.
        assert_eq!(up.forward_flops(), 2.0 * 72.0 * 36.0 * 8.0 * 64.0);
        let first = &layers[0];
        assert_eq!(first.backward_flops(), first.forward_flops());
        assert_eq!(layers[1].backward_flops(), 2.0 * layers[1].forward_flops());
    }

    #[test]
    fn single_conv_counts_two_flops_per_weight_per_voxel() {
        let layer = ConvLayer {
            name: "c".into(),
            kind: ConvKind::Conv,
            cin: 3,
            cout: 5,
            kernel: 3,
            input: [2, 3, 4],
            needs_input_grad: true,
        };
        assert_eq!(layer.forward_flops(), (2 * 3 * 5 * 27 * 24) as f64);
    }
}
