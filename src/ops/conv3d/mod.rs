//! conv3d: a 3-D convolution with stride 1, dilation 1 and zero padding, as PyTorch computes
//! it (a cross-correlation: the kernel is not flipped).
//!
//! Layouts: input `N,Cin,D,H,W`, weight `Cout,Cin,k,k,k`, bias `Cout`, output
//! `N,Cout,D',H',W'` with `D' = D + 2*pad - k + 1` (likewise H', W'). The U-Net uses `k = 3,
//! pad = 1` ("same" size) and `k = 1, pad = 0`.
//!
//! [`cpu`] holds the native kernels (im2col over tiles of output rows, then gemm; see
//! `correlation.rs`). Callers check a shape with [`Conv3dShape::validate`] before calling them;
//! the kernels assert slice lengths.

pub(crate) mod correlation;
pub mod cpu;
mod graph;

#[cfg(test)]
pub(crate) mod checks;
#[cfg(test)]
mod tests;

pub use graph::{conv3d, Conv3dBackward};

use crate::tensor::{dims5, invalid, TensorError};

const OP: &str = "conv3d";

/// The sizes of one conv3d call. `k` is odd; `pad = k / 2` keeps the spatial size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv3dShape {
    pub n: usize,
    pub cin: usize,
    pub cout: usize,
    pub d: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub pad: usize,
}

impl Conv3dShape {
    /// The sizes of a call with input `x_shape` (N,Cin,D,H,W) and weight `weight_shape`
    /// (Cout,Cin,k,k,k), checked with [`Conv3dShape::validate`].
    pub fn of(x_shape: &[usize], weight_shape: &[usize], pad: usize) -> Result<Self, TensorError> {
        let [n, cin, d, h, w] = dims5(OP, x_shape)?;
        let [cout, wcin, kd, kh, kw] = dims5(OP, weight_shape)?;
        if wcin != cin || kd != kh || kh != kw {
            return Err(invalid(
                OP,
                format!("weight {weight_shape:?} does not fit input {x_shape:?} (out,in,k,k,k)"),
            ));
        }
        let s = Conv3dShape {
            n,
            cin,
            cout,
            d,
            h,
            w,
            k: kd,
            pad,
        };
        s.validate()?;
        Ok(s)
    }

    /// An error naming the field and value when these sizes cannot be convolved.
    pub fn validate(&self) -> Result<(), TensorError> {
        let invalid = |message: String| Err(TensorError::Invalid { op: OP, message });
        let sizes = [
            ("batch size n", self.n),
            ("input channels cin", self.cin),
            ("output channels cout", self.cout),
            ("depth d", self.d),
            ("height h", self.h),
            ("width w", self.w),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return invalid(format!("{name} is 0; every size must be at least 1"));
        }
        if self.k.is_multiple_of(2) {
            return invalid(format!(
                "kernel size k = {} is even; it must be odd (1, 3, ...)",
                self.k
            ));
        }
        for (axis, size) in [("depth", self.d), ("height", self.h), ("width", self.w)] {
            if size + 2 * self.pad < self.k {
                return invalid(format!(
                    "{axis} {size} with padding {} is smaller than the kernel size {}",
                    self.pad, self.k
                ));
            }
        }
        let lengths = [self.input_len(), self.weight_len(), self.output_len()];
        if lengths.iter().any(Option::is_none) {
            return invalid(format!("{self:?} has more elements than can be addressed"));
        }
        Ok(())
    }

    /// Output `[D', H', W']`. Only meaningful for a shape that passed [`Self::validate`].
    pub fn out_dims(&self) -> [usize; 3] {
        [self.d, self.h, self.w].map(|size| size + 2 * self.pad + 1 - self.k)
    }

    /// Elements of the input `N,Cin,D,H,W` (None on overflow).
    pub fn input_len(&self) -> Option<usize> {
        checked_product(&[self.n, self.cin, self.d, self.h, self.w])
    }

    /// Elements of the weight `Cout,Cin,k,k,k` (None on overflow).
    pub fn weight_len(&self) -> Option<usize> {
        checked_product(&[self.cout, self.cin, self.k, self.k, self.k])
    }

    /// Elements of the output `N,Cout,D',H',W'` (None on overflow or an empty output).
    pub fn output_len(&self) -> Option<usize> {
        let [d, h, w] = [self.d, self.h, self.w]
            .map(|size| (size + 2 * self.pad).checked_sub(self.k).map(|v| v + 1));
        checked_product(&[self.n, self.cout, d?, h?, w?])
    }

    /// Floating-point operations of the forward pass (one multiply and one add per term).
    pub fn forward_flops(&self) -> f64 {
        let voxels: usize = self.out_dims().iter().product();
        2.0 * (self.n * voxels * self.cout * self.cin * self.k.pow(3)) as f64
    }
}

pub(crate) fn checked_product(sizes: &[usize]) -> Option<usize> {
    sizes.iter().try_fold(1usize, |acc, &v| acc.checked_mul(v))
}
