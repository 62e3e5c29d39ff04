//! conv_transpose3d: the transposed 3-D convolution (the gradient of a strided conv3d with
//! respect to its input), as PyTorch computes it, dilation 1, one group.
//!
//! Layouts: input `N,Cin,D,H,W`, weight `Cin,Cout,k,k,k` (PyTorch's order: input channels
//! first), bias `Cout`, output `N,Cout,D',H',W'` with
//! `D' = (D - 1)*stride - 2*pad + k + output_padding` (likewise H', W'):
//!
//! ```text
//! y[n, o, i*stride - pad + kk] += x[n, ci, i] * weight[ci, o, kk]      (then + bias[o])
//! ```
//!
//! The U-Net upsamples with `k = 2, stride = 2, pad = 0, output_padding = 0`, where every
//! output voxel receives exactly one term; [`cpu::forward`] has a fast path for `k == stride,
//! pad == 0`. Callers check a shape with [`ConvTranspose3dShape::validate`] first.

pub mod cpu;
mod graph;

#[cfg(test)]
mod tests;

pub use graph::{conv_transpose3d, ConvTranspose3dBackward};

use crate::backend::TransposeGeometry;
use crate::ops::conv3d::checked_product;
use crate::tensor::{dims5, invalid, TensorError};

const OP: &str = "conv_transpose3d";

/// The sizes of one conv_transpose3d call; `d, h, w` are the INPUT sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose3dShape {
    pub n: usize,
    pub cin: usize,
    pub cout: usize,
    pub d: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub output_padding: usize,
}

impl ConvTranspose3dShape {
    /// The sizes of a call with input `x_shape` (N,Cin,D,H,W), weight `weight_shape`
    /// (Cin,Cout,k,k,k) and geometry `g`, checked with [`ConvTranspose3dShape::validate`].
    pub fn of(
        x_shape: &[usize],
        weight_shape: &[usize],
        g: TransposeGeometry,
    ) -> Result<Self, TensorError> {
        let [n, cin, d, h, w] = dims5(OP, x_shape)?;
        let [wcin, cout, kd, kh, kw] = dims5(OP, weight_shape)?;
        if wcin != cin || [kd, kh, kw] != [g.kernel; 3] {
            return Err(invalid(
                OP,
                format!(
                    "weight {weight_shape:?} does not fit input {x_shape:?} and kernel {} \
                     (in,out,k,k,k)",
                    g.kernel
                ),
            ));
        }
        let s = ConvTranspose3dShape {
            n,
            cin,
            cout,
            d,
            h,
            w,
            k: g.kernel,
            stride: g.stride,
            pad: g.pad,
            output_padding: g.output_padding,
        };
        s.validate()?;
        Ok(s)
    }

    /// An error naming the field and value when these sizes cannot be used.
    pub fn validate(&self) -> Result<(), TensorError> {
        let invalid = |message: String| Err(TensorError::Invalid { op: OP, message });
        let sizes = [
            ("batch size n", self.n),
            ("input channels cin", self.cin),
            ("output channels cout", self.cout),
            ("depth d", self.d),
            ("height h", self.h),
            ("width w", self.w),
            ("kernel size k", self.k),
            ("stride", self.stride),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return invalid(format!("{name} is 0; it must be at least 1"));
        }
        if self.output_padding >= self.stride {
            return invalid(format!(
                "output_padding {} must be smaller than the stride {}",
                self.output_padding, self.stride
            ));
        }
        for (axis, size) in [("depth", self.d), ("height", self.h), ("width", self.w)] {
            if self.out_size(size).is_none() {
                return invalid(format!(
                    "{axis} {size} gives no output: ({size} - 1)*{} - 2*{} + {} + {} <= 0",
                    self.stride, self.pad, self.k, self.output_padding
                ));
            }
        }
        let lengths = [self.input_len(), self.weight_len(), self.output_len()];
        if lengths.iter().any(Option::is_none) {
            return invalid(format!("{self:?} has more elements than can be addressed"));
        }
        Ok(())
    }

    /// `(size - 1)*stride - 2*pad + k + output_padding` when positive and addressable.
    fn out_size(&self, size: usize) -> Option<usize> {
        let full = (size - 1)
            .checked_mul(self.stride)?
            .checked_add(self.k + self.output_padding)?;
        full.checked_sub(2usize.checked_mul(self.pad)?)
            .filter(|&v| v > 0)
    }

    /// Output `[D', H', W']`. Only meaningful for a shape that passed [`Self::validate`].
    pub fn out_dims(&self) -> [usize; 3] {
        [self.d, self.h, self.w].map(|size| self.out_size(size).unwrap_or(0))
    }

    /// Elements of the input `N,Cin,D,H,W` (None on overflow).
    pub fn input_len(&self) -> Option<usize> {
        checked_product(&[self.n, self.cin, self.d, self.h, self.w])
    }

    /// Elements of the weight `Cin,Cout,k,k,k` (None on overflow).
    pub fn weight_len(&self) -> Option<usize> {
        checked_product(&[self.cin, self.cout, self.k, self.k, self.k])
    }

    /// Elements of the output `N,Cout,D',H',W'` (None on overflow or an empty output).
    pub fn output_len(&self) -> Option<usize> {
        let [d, h, w] = [self.d, self.h, self.w].map(|size| self.out_size(size));
        checked_product(&[self.n, self.cout, d?, h?, w?])
    }

    /// Floating-point operations of the forward pass (one multiply and one add per term).
    pub fn forward_flops(&self) -> f64 {
        let voxels = self.d * self.h * self.w;
        2.0 * (self.n * voxels * self.cin * self.cout * self.k.pow(3)) as f64
    }
}
