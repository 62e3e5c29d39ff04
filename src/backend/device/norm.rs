//! Batch norm on the device (`kernels/batch_norm.cu`): per-channel sums on the device, added in
//! f64; the per-channel coefficients computed here in f64 exactly as the CPU reference does, and
//! applied element-wise by the kernels.

use super::kernels::{float_dtype, grid_planes, i32_of, i64_of, invalid, kernel, parts_for};
use super::{Device, DeviceTensor};
use crate::launch::KernelArgs;
use crate::ops::batch_norm::{BatchStats, RunningStats};
use crate::tensor::{DType, Result, Tensor};

const OP: &str = "batch_norm3d";

fn check_len(what: &str, len: usize, expected: usize) -> Result<()> {
    if len != expected {
        return Err(invalid(
            OP,
            format!("{what} holds {len} values, expected {expected}"),
        ));
    }
    Ok(())
}

/// The running mean and `1/sqrt(running_var + eps)` in f64.
pub(super) fn running_coefficients(running: &RunningStats<f64>, eps: f32) -> (Vec<f64>, Vec<f64>) {
    let mean = running.running_mean.clone();
    let inv_std = running
        .running_var
        .iter()
        .map(|&v| 1.0 / (v + eps as f64).sqrt())
        .collect();
    (mean, inv_std)
}

impl Device {
    /// Per-channel sums of quantity `base` (`batch_norm_sum`, `_sum_sq`, `_sum_grad`) over `x`
    /// (and `gy`), `rows_per_channel` rows per channel, in f64.
    fn bn_sums(
        &self,
        base: &str,
        dtype: DType,
        inputs: &[&DeviceTensor],
        center: Option<&DeviceTensor>,
        dims: [usize; 5],
        rows_per_channel: usize,
    ) -> Result<Vec<f64>> {
        let [n, c, d, h, w] = dims;
        let s = d * h * w;
        let mut ptrs: Vec<_> = inputs.iter().map(|t| t.ptr()).collect();
        ptrs.extend(center.map(|t| t.ptr()));
        let (n32, c32) = (i32_of(OP, "batch", n)?, i32_of(OP, "channels", c)?);
        let tail = |args: KernelArgs| args.i32(n32).i32(c32).i64(i64_of(s));
        let parts = parts_for(n * s);
        // SAFETY (inside reduce_rows): the inputs hold N·C·S values of `dtype`, center 2C floats.
        self.reduce_rows(
            OP,
            &kernel(base, dtype),
            &ptrs,
            tail,
            (parts, c, rows_per_channel * c),
        )
    }

    /// Launches `batch_norm_apply` or `batch_norm_backward` with per-channel `coef`.
    fn bn_elementwise(
        &self,
        base: &str,
        dtype: DType,
        inputs: &[&DeviceTensor],
        coef: &[f32],
        dims: [usize; 5],
    ) -> Result<Tensor> {
        let [n, c, d, h, w] = dims;
        let s = d * h * w;
        let coef = self.upload_f32(OP, &[coef.len()], coef)?;
        let y = self.alloc(OP, &inputs[0].shape, dtype)?;
        let mut args = KernelArgs::new();
        for t in inputs.iter().chain([&&coef]) {
            args = args.ptr(t.ptr());
        }
        let args = args
            .ptr(y.ptr())
            .i64(i64_of(n * c))
            .i32(i32_of(OP, "channels", c)?)
            .i64(i64_of(s));
        // SAFETY: the inputs and y hold N·C·S values of `dtype`, coef its per-channel floats.
        unsafe { self.launch(OP, &kernel(base, dtype), grid_planes(n * c, s), &args) }?;
        self.keep(OP, y)
    }

    pub(super) fn bn_train(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
    ) -> Result<(Tensor, BatchStats)> {
        let dtype = float_dtype(OP, x)?;
        let dims = x.dims5(OP)?;
        let [n, c, d, h, w] = dims;
        check_len("gamma", gamma.numel(), c)?;
        check_len("beta", beta.numel(), c)?;
        let count = n * d * h * w;
        if count < 2 {
            return Err(invalid(
                OP,
                format!(
                    "training needs more than 1 value per channel, got input shape {dims:?} \
                     ({count} per channel)"
                ),
            ));
        }
        let m = count as f64;
        let dx = self.upload(OP, x)?;

        let mean: Vec<f64> = self
            .bn_sums("batch_norm_sum", dtype, &[&dx], None, dims, 1)?
            .into_iter()
            .map(|s| s / m)
            .collect();
        // The squares are summed around the f32-rounded mean mu; subtracting (mean - mu)^2
        // gives the variance around the exact mean.
        let mu: Vec<f32> = mean.iter().map(|&v| v as f32).collect();
        let center: Vec<f32> = mu.iter().flat_map(|&v| [v, 0.0]).collect();
        let center = self.upload_f32(OP, &[2 * c], &center)?;
        let var_biased = self
            .bn_sums("batch_norm_sum_sq", dtype, &[&dx], Some(&center), dims, 1)?
            .into_iter()
            .zip(&mean)
            .zip(&mu)
            .map(|((s, &exact), &rounded)| (s / m - (exact - rounded as f64).powi(2)).max(0.0))
            .collect();
        let stats = BatchStats {
            mean,
            var_biased,
            count,
        };

        let y = self.bn_apply(
            &dx,
            dtype,
            gamma,
            beta,
            &stats.mean,
            &stats.inv_std(eps as f64),
            dims,
        )?;
        Ok((y, stats))
    }

    pub(super) fn bn_eval(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        running: &RunningStats<f64>,
        eps: f32,
    ) -> Result<Tensor> {
        let dtype = float_dtype(OP, x)?;
        let dims = x.dims5(OP)?;
        let c = dims[1];
        check_len("gamma", gamma.numel(), c)?;
        check_len("beta", beta.numel(), c)?;
        check_len("running_mean", running.running_mean.len(), c)?;
        check_len("running_var", running.running_var.len(), c)?;
        let (mean, inv_std) = running_coefficients(running, eps);
        let dx = self.upload(OP, x)?;
        self.bn_apply(&dx, dtype, gamma, beta, &mean, &inv_std, dims)
    }

    /// `y = f32(gamma·inv_std)·(x − f32(mean)) + beta` per channel, as the CPU's `normalize`.
    #[allow(clippy::too_many_arguments)]
    fn bn_apply(
        &self,
        x: &DeviceTensor,
        dtype: DType,
        gamma: &Tensor,
        beta: &Tensor,
        mean: &[f64],
        inv_std: &[f64],
        dims: [usize; 5],
    ) -> Result<Tensor> {
        let (g, b) = (gamma.as_f32(), beta.as_f32());
        let coef: Vec<f32> = (0..dims[1])
            .flat_map(|c| [mean[c] as f32, (g[c] as f64 * inv_std[c]) as f32, b[c]])
            .collect();
        self.bn_elementwise("batch_norm_apply", dtype, &[x], &coef, dims)
    }

    /// Gradients of x, gamma and beta. With `count` (training mode) the gradient flows through
    /// the batch statistics: `dx = a·gy + b·(x − mean) + k`; without it `dx = a·gy`.
    pub(super) fn bn_backward(
        &self,
        x: &Tensor,
        gy: &Tensor,
        gamma: &Tensor,
        mean: &[f64],
        inv_std: &[f64],
        count: Option<usize>,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let dtype = float_dtype(OP, gy)?;
        let dims = x.dims5(OP)?;
        let c = dims[1];
        check_len("gy", gy.numel(), x.numel())?;
        check_len("gamma", gamma.numel(), c)?;
        check_len("mean", mean.len(), c)?;
        check_len("inv_std", inv_std.len(), c)?;
        let (xs, gs, kernel_dtype) = self.common_storage(OP, x, gy)?;
        let (dx_in, dg_in) = (self.upload(OP, &xs)?, self.upload(OP, &gs)?);

        let center: Vec<f32> = (0..c)
            .flat_map(|k| [mean[k] as f32, inv_std[k] as f32])
            .collect();
        let center = self.upload_f32(OP, &[2 * c], &center)?;
        let sums = self.bn_sums(
            "batch_norm_sum_grad",
            kernel_dtype,
            &[&dx_in, &dg_in],
            Some(&center),
            dims,
            2,
        )?;
        let (dbeta, dgamma) = sums.split_at(c);

        let g = gamma.as_f32();
        let coef: Vec<f32> = (0..c)
            .flat_map(|k| {
                let a = g[k] as f64 * inv_std[k];
                match count {
                    Some(count) => {
                        let m = count.max(1) as f64;
                        let b = -a * dgamma[k] * inv_std[k] / m;
                        [
                            a as f32,
                            b as f32,
                            (-a * dbeta[k] / m) as f32,
                            mean[k] as f32,
                        ]
                    }
                    None => [a as f32, 0.0, 0.0, mean[k] as f32],
                }
            })
            .collect();
        let dx = self.bn_elementwise(
            "batch_norm_backward",
            kernel_dtype,
            &[&dx_in, &dg_in],
            &coef,
            dims,
        )?;
        let to_f32 = |v: &[f64]| Tensor::from_f32(&[c], v.iter().map(|&s| s as f32).collect());
        Ok((
            self.restore(OP, dx, dtype)?,
            to_f32(dgamma)?,
            to_f32(dbeta)?,
        ))
    }
}
