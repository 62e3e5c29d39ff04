//! `impl Backend for Device`: every op of the engine on the kernels in `kernels/`. Shape and
//! storage checks mirror the `cpu` backend's, so both backends refuse the same inputs. The
//! convolutions live in `conv.rs`, batch norm in `norm.rs`, the Dice losses in `loss.rs`.

use super::kernels::{dims5, float_dtype, grid_planes, i32_of, i64_of, invalid, kernel};
use super::launch_error;
use super::{conv, Device};
use crate::backend::{Backend, Mark, TransposeGeometry};
use crate::launch::KernelArgs;
use crate::ops::batch_norm::{BatchStats, RunningStats};
use crate::ops::{concat, max_pool};
use crate::tensor::{DType, Result, Tensor};

impl Device {
    /// `y = kernel(x)` element-wise, in `x`'s storage type.
    fn unary(
        &self,
        op: &'static str,
        base: &str,
        x: &Tensor,
        scalar: Option<f32>,
    ) -> Result<Tensor> {
        let dtype = float_dtype(op, x)?;
        let dx = self.upload(op, x)?;
        let scalars = |args: KernelArgs| match scalar {
            Some(s) => args.f32(s),
            None => args,
        };
        self.map_elements(op, &kernel(base, dtype), &[&dx], scalars, x.shape(), dtype)
    }

    /// `y = kernel(a, b)` element-wise for same-shaped tensors, stored as `out_of`'s type.
    fn binary(
        &self,
        op: &'static str,
        base: &str,
        a: &Tensor,
        b: &Tensor,
        out_of: &Tensor,
    ) -> Result<Tensor> {
        let dtype = float_dtype(op, out_of)?;
        a.expect_same_shape(op, b)?;
        let (a, b, kernel_dtype) = self.common_storage(op, a, b)?;
        let (da, db) = (self.upload(op, &a)?, self.upload(op, &b)?);
        let shape = a.shape();
        let y = self.map_elements(
            op,
            &kernel(base, kernel_dtype),
            &[&da, &db],
            |s| s,
            shape,
            kernel_dtype,
        )?;
        self.restore(op, y, dtype)
    }

    /// Softmax over channels (or its backward when `gy` is given), one thread per voxel.
    fn softmax_op(&self, op: &'static str, y_or_x: &Tensor, gy: Option<&Tensor>) -> Result<Tensor> {
        let [n, c, d, h, w] = y_or_x.dims5(op)?;
        let s = d * h * w;
        let dtype = float_dtype(op, gy.unwrap_or(y_or_x))?;
        let out = self.alloc(op, y_or_x.shape(), dtype)?;
        let tail = |args: KernelArgs| -> Result<KernelArgs> {
            Ok(args
                .ptr(out.ptr())
                .i64(i64_of(n))
                .i32(i32_of(op, "channels", c)?)
                .i64(i64_of(s)))
        };
        match gy {
            None => {
                let x = self.upload(op, y_or_x)?;
                let args = tail(KernelArgs::new().ptr(x.ptr()))?;
                // SAFETY: x and out hold N·C·S values of `dtype`.
                unsafe { self.launch(op, &kernel("softmax", dtype), grid_planes(n, s), &args) }?;
                self.keep(op, out)
            }
            Some(gy) => {
                y_or_x.expect_same_shape(op, gy)?;
                let (y, g, kernel_dtype) = self.common_storage(op, y_or_x, gy)?;
                let out = if kernel_dtype == dtype {
                    out
                } else {
                    self.alloc(op, y.shape(), kernel_dtype)?
                };
                let (dy, dg) = (self.upload(op, &y)?, self.upload(op, &g)?);
                let args = KernelArgs::new()
                    .ptr(dy.ptr())
                    .ptr(dg.ptr())
                    .ptr(out.ptr())
                    .i64(i64_of(n))
                    .i32(i32_of(op, "channels", c)?)
                    .i64(i64_of(s));
                let name = kernel("softmax_backward", kernel_dtype);
                // SAFETY: y, gy and out hold N·C·S values of `kernel_dtype`.
                unsafe { self.launch(op, &name, grid_planes(n, s), &args) }?;
                self.restore(op, self.keep(op, out)?, dtype)
            }
        }
    }
}

/// The per-channel volume `D·H·W` of a max-pool input as the kernels' `int`, or an error.
fn pool_volume(dims: [usize; 5]) -> Result<usize> {
    let volume = dims[2] * dims[3] * dims[4];
    if volume > i32::MAX as usize {
        return Err(invalid(
            "max_pool3d",
            format!("a D·H·W volume of {volume} voxels does not fit the i32 indices"),
        ));
    }
    Ok(volume)
}

/// An error unless every saved index lies inside its own 2×2×2 window (the kernel gathers from
/// the one window that covers an input voxel).
fn check_pool_indices(indices: &[i32], dims: [usize; 5]) -> Result<()> {
    let [_, _, d, h, w] = dims;
    let [_, _, od, oh, ow] = max_pool::output_dims(dims);
    let out_volume = od * oh * ow;
    for (o, &at) in indices.iter().enumerate() {
        let r = o % out_volume.max(1);
        let (zw, zh, zd) = (r % ow, (r / ow) % oh, r / (ow * oh));
        let inside = at >= 0 && (at as usize) < d * h * w && {
            let at = at as usize;
            (at % w) / 2 == zw && ((at / w) % h) / 2 == zh && (at / (w * h)) / 2 == zd
        };
        if !inside {
            return Err(invalid(
                "max_pool3d",
                format!("index {at} of output {o} lies outside its 2×2×2 window"),
            ));
        }
    }
    Ok(())
}

impl Backend for Device {
    fn name(&self) -> &'static str {
        self.api().name()
    }

    fn peak_memory_bytes(&self) -> Option<u64> {
        Some(self.memory_stats().peak as u64)
    }

    fn mark(&self) -> Result<Mark> {
        self.api().mark().map_err(|e| launch_error("timing", e))
    }

    fn seconds_since(&self, start: &Mark) -> Result<f64> {
        let end = self.mark()?;
        self.api()
            .seconds_between(start, &end)
            .map_err(|e| launch_error("timing", e))
    }

    fn place(&self, t: Tensor) -> Result<Tensor> {
        if self.holds(&t) {
            return Ok(t);
        }
        let values = self.upload_copy("place", &t)?;
        self.keep("place", values)
    }

    fn conv3d(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        pad: usize,
    ) -> Result<Tensor> {
        conv::conv3d(self, x, weight, bias, pad)
    }

    fn conv3d_backward_input(
        &self,
        gy: &Tensor,
        weight: &Tensor,
        pad: usize,
        x_shape: &[usize],
    ) -> Result<Tensor> {
        conv::conv3d_backward_input(self, gy, weight, pad, x_shape)
    }

    fn conv3d_backward_params(
        &self,
        x: &Tensor,
        gy: &Tensor,
        pad: usize,
        weight_shape: &[usize],
        bias: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        conv::conv3d_backward_params(self, x, gy, pad, weight_shape, bias)
    }

    fn conv_transpose3d(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        geometry: TransposeGeometry,
    ) -> Result<Tensor> {
        conv::conv_transpose3d(self, x, weight, bias, geometry)
    }

    fn conv_transpose3d_backward_input(
        &self,
        gy: &Tensor,
        weight: &Tensor,
        geometry: TransposeGeometry,
        x_shape: &[usize],
    ) -> Result<Tensor> {
        conv::conv_transpose3d_backward_input(self, gy, weight, geometry, x_shape)
    }

    fn conv_transpose3d_backward_params(
        &self,
        x: &Tensor,
        gy: &Tensor,
        geometry: TransposeGeometry,
        weight_shape: &[usize],
        bias: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        conv::conv_transpose3d_backward_params(self, x, gy, geometry, weight_shape, bias)
    }

    fn batch_norm_train(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
    ) -> Result<(Tensor, BatchStats)> {
        self.bn_train(x, gamma, beta, eps)
    }

    fn batch_norm_eval(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        running: &RunningStats<f64>,
        eps: f32,
    ) -> Result<Tensor> {
        self.bn_eval(x, gamma, beta, running, eps)
    }

    fn batch_norm_backward_train(
        &self,
        x: &Tensor,
        gy: &Tensor,
        gamma: &Tensor,
        stats: &BatchStats,
        eps: f32,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        self.bn_backward(
            x,
            gy,
            gamma,
            &stats.mean,
            &stats.inv_std(eps as f64),
            Some(stats.count),
        )
    }

    fn batch_norm_backward_eval(
        &self,
        x: &Tensor,
        gy: &Tensor,
        gamma: &Tensor,
        running: &RunningStats<f64>,
        eps: f32,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (mean, inv_std) = super::norm::running_coefficients(running, eps);
        self.bn_backward(x, gy, gamma, &mean, &inv_std, None)
    }

    fn max_pool3d(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        const OP: &str = "max_pool3d";
        let dtype = float_dtype(OP, x)?;
        let dims = x.dims5(OP)?;
        pool_volume(dims)?;
        let out_dims = max_pool::output_dims(dims);
        let [n, c, d, h, w] = dims;
        let dx = self.upload(OP, x)?;
        let y = self.alloc(OP, &out_dims, dtype)?;
        let indices = self.alloc(OP, &out_dims, DType::I32)?;
        let args = KernelArgs::new()
            .ptr(dx.ptr())
            .ptr(y.ptr())
            .ptr(indices.ptr())
            .i64(i64_of(n * c))
            .i32(d as i32)
            .i32(h as i32)
            .i32(w as i32);
        // SAFETY: x holds N·C·D·H·W values, y and indices the pooled count.
        unsafe {
            self.launch(
                OP,
                &kernel("max_pool3d", dtype),
                grid_planes(n * c, y.numel() / (n * c).max(1)),
                &args,
            )
        }?;
        Ok((self.keep(OP, y)?, self.keep_pool_indices(indices)?))
    }

    fn max_pool3d_backward(
        &self,
        gy: &Tensor,
        indices: &Tensor,
        x_shape: &[usize],
    ) -> Result<Tensor> {
        const OP: &str = "max_pool3d";
        let dtype = float_dtype(OP, gy)?;
        let dims = dims5(OP, x_shape)?;
        pool_volume(dims)?;
        let out_dims = max_pool::output_dims(dims);
        let expected = crate::tensor::numel(&out_dims)?;
        if indices.dtype() != DType::I32 {
            return Err(invalid(OP, "indices must be stored as i32".into()));
        }
        for (what, len) in [("gy", gy.numel()), ("indices", indices.numel())] {
            if len != expected {
                return Err(invalid(
                    OP,
                    format!("{what} holds {len} values, expected {expected}"),
                ));
            }
        }
        // Indices that this device's max_pool3d made stay where they are; any others are
        // checked on the host before the kernel trusts them.
        if !self.made_pool_indices(indices) {
            if let Some(saved) = indices.i32_slice() {
                check_pool_indices(saved, dims)?;
            }
        }
        let [n, c, d, h, w] = dims;
        let (dg, di) = (self.upload(OP, gy)?, self.upload(OP, indices)?);
        let dx = self.alloc(OP, x_shape, dtype)?;
        let args = KernelArgs::new()
            .ptr(dg.ptr())
            .ptr(di.ptr())
            .ptr(dx.ptr())
            .i64(i64_of(n * c))
            .i32(d as i32)
            .i32(h as i32)
            .i32(w as i32);
        let name = kernel("max_pool3d_backward", dtype);
        // SAFETY: gy and indices hold the pooled count, dx the input count.
        unsafe { self.launch(OP, &name, grid_planes(n * c, d * h * w), &args) }?;
        self.keep(OP, dx)
    }

    fn relu(&self, x: &Tensor) -> Result<Tensor> {
        self.unary("relu", "relu", x, None)
    }

    fn relu_backward(&self, x: &Tensor, gy: &Tensor) -> Result<Tensor> {
        self.binary("relu", "relu_backward", x, gy, gy)
    }

    fn sigmoid(&self, x: &Tensor) -> Result<Tensor> {
        self.unary("sigmoid", "sigmoid", x, None)
    }

    fn sigmoid_backward(&self, y: &Tensor, gy: &Tensor) -> Result<Tensor> {
        self.binary("sigmoid", "sigmoid_backward", y, gy, gy)
    }

    fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        self.softmax_op("softmax", x, None)
    }

    fn softmax_backward(&self, y: &Tensor, gy: &Tensor) -> Result<Tensor> {
        self.softmax_op("softmax", y, Some(gy))
    }

    fn concat(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        const OP: &str = "concat";
        let dtype = float_dtype(OP, a)?;
        let (a_dims, b_dims) = (a.dims5(OP)?, b.dims5(OP)?);
        if b.dtype() != dtype {
            return Err(invalid(
                OP,
                format!(
                    "cannot concatenate {} and {} storage",
                    dtype.name(),
                    b.dtype().name()
                ),
            ));
        }
        let out_dims = concat::output_dims(a_dims, b_dims)?;
        let (da, db) = (self.upload(OP, a)?, self.upload(OP, b)?);
        let y = self.alloc(OP, &out_dims, dtype)?;
        let args = KernelArgs::new()
            .ptr(da.ptr())
            .ptr(db.ptr())
            .ptr(y.ptr())
            .i64(i64_of(a_dims[0]))
            .i64(i64_of(a.numel() / a_dims[0].max(1)))
            .i64(i64_of(b.numel() / b_dims[0].max(1)));
        let config = grid_planes(a_dims[0], y.numel() / a_dims[0].max(1));
        // SAFETY: a, b and y hold their shapes' counts of `dtype`.
        unsafe { self.launch(OP, &kernel("concat", dtype), config, &args) }?;
        self.keep(OP, y)
    }

    fn split(&self, y: &Tensor, channels_a: usize) -> Result<(Tensor, Tensor)> {
        const OP: &str = "concat";
        let dtype = float_dtype(OP, y)?;
        let [n, c, d, h, w] = y.dims5(OP)?;
        if channels_a > c {
            return Err(invalid(
                OP,
                format!("cannot split {channels_a} of {c} channels"),
            ));
        }
        let (a_dims, b_dims) = ([n, channels_a, d, h, w], [n, c - channels_a, d, h, w]);
        let dy = self.upload(OP, y)?;
        let (da, db) = (
            self.alloc(OP, &a_dims, dtype)?,
            self.alloc(OP, &b_dims, dtype)?,
        );
        let s = d * h * w;
        let args = KernelArgs::new()
            .ptr(dy.ptr())
            .ptr(da.ptr())
            .ptr(db.ptr())
            .i64(i64_of(n))
            .i64(i64_of(channels_a * s))
            .i64(i64_of((c - channels_a) * s));
        let config = grid_planes(n, c * s);
        // SAFETY: y holds N·C·S values, da and db their parts.
        unsafe { self.launch(OP, &kernel("split", dtype), config, &args) }?;
        Ok((self.keep(OP, da)?, self.keep(OP, db)?))
    }

    fn dice_binary(&self, logits: &Tensor, target: &Tensor) -> Result<(f64, Tensor)> {
        self.dice_binary_loss(logits, target)
    }

    fn dice_categorical(&self, logits: &Tensor, labels: &Tensor) -> Result<(f64, Tensor)> {
        self.dice_categorical_loss(logits, labels)
    }

    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        a.expect_same_shape("add", b)?;
        self.binary("add", "add", a, b, a)
    }

    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor> {
        self.unary("scale", "scale", x, Some(s))
    }
}
