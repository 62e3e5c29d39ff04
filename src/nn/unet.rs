//! The reference 3D U-Net (the reference pipeline's architecture, PyTorch state_dict names).
//!
//! Encoder level i has `start_filters·2^i` channels: Conv3d(k3,p1) → ReLU → BatchNorm3d →
//! Conv3d(k3,p1) → ReLU → BatchNorm3d, then MaxPool3d(2) except at the last level (the
//! pre-pool tensor is the skip). Decoder level (C → C/2): ConvTranspose3d(k2,s2) → ReLU →
//! BatchNorm3d → cat([up, skip]) → Conv3d(C → C/2) → ReLU → BN → Conv3d → ReLU → BN. A final
//! 1×1×1 Conv3d gives the logits.

use serde::{Deserialize, Serialize};

use super::layers::{Bound, Conv, Norm};
use crate::autograd::{Tape, Var};
use crate::ops::activation::relu;
use crate::ops::concat::concat;
use crate::ops::max_pool::max_pool3d;
use crate::rng::Rng;
use crate::tensor::{DType, Result, TensorError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UNetConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub n_blocks: usize,
    pub start_filters: usize,
}

impl UNetConfig {
    /// Net A of the reference pipeline: teeth against background.
    pub const BINARY: UNetConfig = UNetConfig {
        in_channels: 1,
        out_channels: 1,
        n_blocks: 3,
        start_filters: 18,
    };
    /// Net B of the reference pipeline: 8 tooth categories + background.
    pub const CATEGORIES: UNetConfig = UNetConfig {
        in_channels: 1,
        out_channels: 9,
        n_blocks: 3,
        start_filters: 9,
    };

    /// Spatial sizes must be divisible by this (one halving per pooling).
    pub fn size_divisor(&self) -> usize {
        1 << (self.n_blocks - 1)
    }

    fn validate(&self) -> Result<()> {
        let ok = self.in_channels > 0
            && self.out_channels > 0
            && (1..=8).contains(&self.n_blocks)
            && self.start_filters > 0;
        if !ok {
            return Err(TensorError::Invalid {
                op: "unet",
                message: format!(
                    "invalid configuration {self:?}: channels and filters must be positive and \
                     n_blocks between 1 and 8"
                ),
            });
        }
        Ok(())
    }

    /// An error naming the axis, its size and the nearest valid sizes when a spatial size is
    /// not divisible by 2^(n_blocks−1) (e.g. 9 through 3 poolings: 9→4→8 cannot concat).
    pub fn check_input(&self, shape: &[usize]) -> Result<()> {
        let &[_, c, d, h, w] = shape else {
            return Err(TensorError::Rank {
                op: "unet",
                expected: 5,
                shape: shape.to_vec(),
            });
        };
        if c != self.in_channels {
            return Err(TensorError::Invalid {
                op: "unet",
                message: format!(
                    "input has {c} channels, the network expects {}",
                    self.in_channels
                ),
            });
        }
        let m = self.size_divisor();
        for (axis, size) in ["D", "H", "W"].iter().zip([d, h, w]) {
            if size == 0 || size % m != 0 {
                let below = (size / m) * m;
                let above = below + m;
                let nearest = if below == 0 {
                    format!("{above}")
                } else {
                    format!("{below} or {above}")
                };
                return Err(TensorError::Invalid {
                    op: "unet",
                    message: format!(
                        "input size {size} along {axis} (shape {shape:?}) is not divisible by \
                         {m} = 2^(n_blocks−1) with n_blocks = {}; nearest valid sizes: {nearest}",
                        self.n_blocks
                    ),
                });
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct DownBlock {
    pub conv1: Conv,
    pub norm1: Norm,
    pub conv2: Conv,
    pub norm2: Norm,
    pub pooling: bool,
}

#[derive(Clone, Debug)]
pub struct UpBlock {
    pub up: Conv,
    pub norm0: Norm,
    pub conv1: Conv,
    pub norm1: Norm,
    pub conv2: Conv,
    pub norm2: Norm,
}

#[derive(Clone, Debug)]
pub struct UNet {
    pub config: UNetConfig,
    pub down_blocks: Vec<DownBlock>,
    pub up_blocks: Vec<UpBlock>,
    pub conv_final: Conv,
}

/// What a forward pass gives: the logits, the parameters as bound on the tape (to read their
/// gradients) and the named intermediate activations (PyTorch fixture names, for debugging).
pub struct Forward {
    pub logits: Var,
    pub params: Vec<(String, Var)>,
    /// Block outputs by name; the skip connections (`before_pool`) are released once the up
    /// path has used them, so read them from a tape made to [`Tape::keep_all`].
    pub activations: Vec<(String, Var)>,
}

impl UNet {
    /// A network with xavier-uniform weights and zero biases drawn from `seed`.
    pub fn new(config: UNetConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = Rng::new(seed);
        let mut down_blocks = Vec::new();
        let mut outs = config.in_channels;
        for i in 0..config.n_blocks {
            let ins = outs;
            outs = config.start_filters << i;
            down_blocks.push(DownBlock {
                conv1: Conv::new(ins, outs, 3, false, &mut rng),
                norm1: Norm::new(outs),
                conv2: Conv::new(outs, outs, 3, false, &mut rng),
                norm2: Norm::new(outs),
                pooling: i + 1 < config.n_blocks,
            });
        }
        let mut up_blocks = Vec::new();
        for _ in 1..config.n_blocks {
            let ins = outs;
            outs = ins / 2;
            up_blocks.push(UpBlock {
                up: Conv::new(ins, outs, 2, true, &mut rng),
                norm0: Norm::new(outs),
                conv1: Conv::new(2 * outs, outs, 3, false, &mut rng),
                norm1: Norm::new(outs),
                conv2: Conv::new(outs, outs, 3, false, &mut rng),
                norm2: Norm::new(outs),
            });
        }
        let conv_final = Conv::new(outs, config.out_channels, 1, false, &mut rng);
        Ok(UNet {
            config,
            down_blocks,
            up_blocks,
            conv_final,
        })
    }

    /// Trainable parameters (BN buffers excluded), as PyTorch's `sum(p.numel())`.
    pub fn parameter_count(&self) -> usize {
        let down: usize = self
            .down_blocks
            .iter()
            .map(|b| {
                b.conv1.parameter_count()
                    + b.norm1.parameter_count()
                    + b.conv2.parameter_count()
                    + b.norm2.parameter_count()
            })
            .sum();
        let up: usize = self
            .up_blocks
            .iter()
            .map(|b| {
                b.up.parameter_count()
                    + b.norm0.parameter_count()
                    + b.conv1.parameter_count()
                    + b.norm1.parameter_count()
                    + b.conv2.parameter_count()
                    + b.norm2.parameter_count()
            })
            .sum();
        down + up + self.conv_final.parameter_count()
    }

    /// Runs the network on `x` (N,C,D,H,W). In training mode the batch norms use and update
    /// batch statistics and the parameters are recorded for backward (when the tape records);
    /// `dtype` is the storage of activations and of the weights' working copy (f32 or f16).
    pub fn forward(
        &mut self,
        tape: &mut Tape,
        x: Var,
        training: bool,
        dtype: DType,
    ) -> Result<Forward> {
        self.config.check_input(tape.value(x).shape())?;
        let bound = Bound {
            vars: Vec::new(),
            dtype,
            requires_grad: training,
        };
        let mut pass = Pass {
            tape,
            bound,
            training,
        };
        let mut activations = Vec::new();

        let mut h = x;
        let mut skips = Vec::new();
        for (i, block) in self.down_blocks.iter_mut().enumerate() {
            let name = format!("down_blocks.{i}");
            h = pass.conv_relu_norm(
                &name,
                ("conv1", &block.conv1),
                ("norm1", &mut block.norm1),
                h,
            )?;
            h = pass.conv_relu_norm(
                &name,
                ("conv2", &block.conv2),
                ("norm2", &mut block.norm2),
                h,
            )?;
            activations.push((format!("act.{name}.before_pool"), h));
            skips.push(h);
            if block.pooling {
                h = max_pool3d(pass.tape, h)?;
                activations.push((format!("act.{name}.pooled"), h));
            }
        }

        for (i, block) in self.up_blocks.iter_mut().enumerate() {
            let name = format!("up_blocks.{i}");
            let skip = skips[skips.len() - 2 - i];
            let up =
                pass.conv_relu_norm(&name, ("up", &block.up), ("norm0", &mut block.norm0), h)?;
            h = concat(pass.tape, up, skip)?;
            // Concatenation saves nothing: its inputs are no longer needed.
            pass.tape.release(up);
            pass.tape.release(skip);
            h = pass.conv_relu_norm(
                &name,
                ("conv1", &block.conv1),
                ("norm1", &mut block.norm1),
                h,
            )?;
            h = pass.conv_relu_norm(
                &name,
                ("conv2", &block.conv2),
                ("norm2", &mut block.norm2),
                h,
            )?;
            activations.push((format!("act.{name}.out"), h));
        }

        let logits = self
            .conv_final
            .forward(pass.tape, &mut pass.bound, "conv_final", h)?;
        Ok(Forward {
            logits,
            params: pass.bound.vars,
            activations,
        })
    }
}

/// One forward pass: the tape, the parameters bound to it so far, and the mode.
struct Pass<'a> {
    tape: &'a mut Tape,
    bound: Bound,
    training: bool,
}

impl Pass<'_> {
    /// `norm(relu(conv(h)))`, with parameters named `{block}.{conv name}.*` and
    /// `{block}.{norm name}.*` as in PyTorch's state_dict.
    fn conv_relu_norm(
        &mut self,
        block: &str,
        (conv_name, conv): (&str, &Conv),
        (norm_name, norm): (&str, &mut Norm),
        h: Var,
    ) -> Result<Var> {
        let h = conv.forward(
            self.tape,
            &mut self.bound,
            &format!("{block}.{conv_name}"),
            h,
        )?;
        let conv_out = h;
        let h = relu(self.tape, h)?;
        // relu saved its output as the mask, so the convolution's output can go.
        self.tape.release(conv_out);
        let name = format!("{block}.{norm_name}");
        let relu_out = h;
        let h = norm.forward(self.tape, &mut self.bound, &name, h, self.training)?;
        self.tape.release(relu_out);
        Ok(h)
    }
}
