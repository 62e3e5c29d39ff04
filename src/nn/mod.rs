//! The reference 3D U-Net, its layers, its state (PyTorch names) and checkpoints.

pub mod checkpoint;
mod layers;
mod state;
mod unet;

pub use layers::{Bound, Conv, Norm};
pub use state::Slot;
pub use unet::{DownBlock, Forward, UNet, UNetConfig, UpBlock};
