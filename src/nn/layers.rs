//! The layers of the U-Net: parameters in f32 (the master copy) with PyTorch's names.

use crate::autograd::{Tape, Var};
use crate::backend::TransposeGeometry;
use crate::ops::batch_norm::{batch_norm, BatchNormConfig, RunningStats};
use crate::ops::conv3d::conv3d;
use crate::ops::conv_transpose3d::conv_transpose3d;
use crate::rng::Rng;
use crate::tensor::{DType, Result, Tensor};

/// Where a forward pass puts the parameters it used, so their gradients can be found.
pub struct Bound {
    pub vars: Vec<(String, Var)>,
    pub dtype: DType,
    pub requires_grad: bool,
}

impl Bound {
    /// Puts a convolution's parameter on the tape, stored as the activations' dtype, where the
    /// backend computes (so a device uploads it once per pass, not once per use).
    pub fn bind(&mut self, tape: &mut Tape, name: String, value: &Tensor) -> Result<Var> {
        let var = tape.placed_leaf(value.to_dtype(self.dtype), self.requires_grad)?;
        self.vars.push((name, var));
        Ok(var)
    }

    /// Puts a parameter on the tape stored as `dtype`, on the host (batch norm's per-channel
    /// parameters, which the backends read on the host).
    pub fn bind_as(&mut self, tape: &mut Tape, name: String, value: &Tensor, dtype: DType) -> Var {
        let var = tape.leaf(value.to_dtype(dtype), self.requires_grad);
        self.vars.push((name, var));
        var
    }
}

/// xavier_uniform: U(−a, a) with a = sqrt(6 / (fan_in + fan_out)), as PyTorch computes the
/// fans from dimensions 1 and 0 of the weight times the kernel volume.
fn xavier_uniform(shape: &[usize], rng: &mut Rng) -> Tensor {
    let receptive: usize = shape[2..].iter().product();
    let fan_in = shape[1] * receptive;
    let fan_out = shape[0] * receptive;
    let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
    let n: usize = shape.iter().product();
    let values = (0..n).map(|_| rng.range(-bound, bound) as f32).collect();
    Tensor::from_f32(shape, values).expect("shape and length agree by construction")
}

/// A Conv3d (`transposed = false`, weight `out,in,k,k,k`) or ConvTranspose3d (weight
/// `in,out,k,k,k`) with bias.
#[derive(Clone, Debug)]
pub struct Conv {
    pub weight: Tensor,
    pub bias: Tensor,
    pub transposed: bool,
}

impl Conv {
    pub fn new(cin: usize, cout: usize, kernel: usize, transposed: bool, rng: &mut Rng) -> Self {
        let shape = if transposed {
            [cin, cout, kernel, kernel, kernel]
        } else {
            [cout, cin, kernel, kernel, kernel]
        };
        Conv {
            weight: xavier_uniform(&shape, rng),
            bias: Tensor::zeros(&[cout], DType::F32).expect("small shape"),
            transposed,
        }
    }

    pub fn forward(&self, tape: &mut Tape, bound: &mut Bound, name: &str, x: Var) -> Result<Var> {
        let w = bound.bind(tape, format!("{name}.weight"), &self.weight)?;
        let b = bound.bind(tape, format!("{name}.bias"), &self.bias)?;
        if self.transposed {
            let kernel = self.weight.shape()[2];
            let geometry = TransposeGeometry {
                kernel,
                stride: kernel,
                pad: 0,
                output_padding: 0,
            };
            conv_transpose3d(tape, x, w, Some(b), geometry)
        } else {
            conv3d(tape, x, w, Some(b), self.weight.shape()[2] / 2)
        }
    }

    pub fn parameter_count(&self) -> usize {
        self.weight.numel() + self.bias.numel()
    }
}

/// A BatchNorm3d: affine weight and bias, running statistics.
#[derive(Clone, Debug)]
pub struct Norm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running: RunningStats<f64>,
}

impl Norm {
    pub fn new(channels: usize) -> Self {
        Norm {
            weight: Tensor::full(&[channels], 1.0, DType::F32).expect("small shape"),
            bias: Tensor::zeros(&[channels], DType::F32).expect("small shape"),
            running: RunningStats::new(channels),
        }
    }

    pub fn forward(
        &mut self,
        tape: &mut Tape,
        bound: &mut Bound,
        name: &str,
        x: Var,
        training: bool,
    ) -> Result<Var> {
        let gamma = bound.bind_as(tape, format!("{name}.weight"), &self.weight, DType::F32);
        let beta = bound.bind_as(tape, format!("{name}.bias"), &self.bias, DType::F32);
        // Gamma and beta stay f32 even with f16 activations: they are tiny and BN computes in
        // f32 anyway.
        batch_norm(
            tape,
            x,
            gamma,
            beta,
            &mut self.running,
            training,
            BatchNormConfig::default(),
        )
    }

    pub fn parameter_count(&self) -> usize {
        self.weight.numel() + self.bias.numel()
    }
}
