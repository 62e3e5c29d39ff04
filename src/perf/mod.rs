//! Performance accounting: the FLOPs of the U-Net's convolutions and roofline bounds, used by
//! the benches and `enamel bench`.

mod flops;
pub mod roofline;

pub use flops::{unet_flops, unet_layers, ConvKind, ConvLayer, NetFlops};
pub mod workload;
