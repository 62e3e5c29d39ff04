//! Dice losses on the device (`kernels/dice.cu`): the sums over the whole batch on the device,
//! added in f64; loss and gradient coefficients here in f64, as the CPU reference computes them.

use super::kernels::{
    float_dtype, grid_1d, grid_planes, i32_of, i64_of, invalid, kernel, parts_for,
};
use super::Device;
use crate::launch::KernelArgs;
use crate::ops::dice::EPS;
use crate::tensor::{DType, Result, Tensor};

/// `(a, b)` with `∂loss/∂p = −a·t + b·p` for a class with sums `I`, `S` and loss weight `w`.
fn dice_coefficients(intersection: f64, s: f64, w: f64) -> (f64, f64) {
    (w * 2.0 / s, w * 2.0 * (2.0 * intersection + EPS) / (s * s))
}

impl Device {
    pub(super) fn dice_binary_loss(
        &self,
        logits: &Tensor,
        target: &Tensor,
    ) -> Result<(f64, Tensor)> {
        const OP: &str = "dice_binary";
        let dtype = float_dtype(OP, logits)?;
        logits.expect_same_shape(OP, target)?;
        let n = logits.numel();
        let (l, t, kernel_dtype) = self.common_storage(OP, logits, target)?;
        let (dl, dt) = (self.upload(OP, &l)?, self.upload(OP, &t)?);

        let sums = self.reduce_rows(
            OP,
            &kernel("dice_binary_sum", kernel_dtype),
            &[dl.ptr(), dt.ptr()],
            |args| args.i64(i64_of(n)),
            (parts_for(n), 1, 3),
        )?;
        let (pt, pp, tt) = (sums[0], sums[1], sums[2]);
        let s = pp + tt + EPS;
        let loss = 1.0 - (2.0 * pt + EPS) / s;
        let (a, b) = dice_coefficients(pt, s, 1.0);

        let dlogits = self.alloc(OP, logits.shape(), kernel_dtype)?;
        let args = KernelArgs::new()
            .ptr(dl.ptr())
            .ptr(dt.ptr())
            .ptr(dlogits.ptr())
            .f32(a as f32)
            .f32(b as f32)
            .i64(i64_of(n));
        let name = kernel("dice_binary_grad", kernel_dtype);
        // SAFETY: logits, target and dlogits hold n values of `kernel_dtype`.
        unsafe { self.launch(OP, &name, grid_1d(n), &args) }?;
        Ok((loss, self.restore(OP, self.keep(OP, dlogits)?, dtype)?))
    }

    pub(super) fn dice_categorical_loss(
        &self,
        logits: &Tensor,
        labels: &Tensor,
    ) -> Result<(f64, Tensor)> {
        const OP: &str = "dice_categorical";
        let dtype = float_dtype(OP, logits)?;
        let dims = logits.dims5(OP)?;
        let [n, c, d, h, w] = dims;
        if labels.shape() != [n, d, h, w] {
            return Err(invalid(
                OP,
                format!(
                    "labels {:?} do not fit logits {:?} (labels are N,D,H,W)",
                    labels.shape(),
                    logits.shape()
                ),
            ));
        }
        let label_values = labels
            .u8_slice()
            .ok_or_else(|| invalid(OP, "labels must be stored as u8".into()))?;
        if let Some((at, &bad)) = label_values
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= c)
        {
            return Err(invalid(
                OP,
                format!("label {bad} at voxel {at} is not a class of the {c} logit channels"),
            ));
        }
        // Which classes occur, from the labels themselves (the sums below count the same).
        let mut occurs = vec![false; c];
        for &l in label_values {
            occurs[l as usize] = true;
        }
        let s = d * h * w;
        let c32 = i32_of(OP, "channels", c)?;
        let dlab = self.upload(OP, labels)?;

        // f32 probabilities of either storage.
        let dx = self.upload(OP, logits)?;
        let probs = self.alloc(OP, logits.shape(), DType::F32)?;
        let args = KernelArgs::new()
            .ptr(dx.ptr())
            .ptr(probs.ptr())
            .i64(i64_of(n))
            .i32(c32)
            .i64(i64_of(s));
        let softmax = if dtype == DType::F16 {
            "softmax_f16_to_f32"
        } else {
            "softmax_f32"
        };
        // SAFETY: logits and probs hold N·C·S values of their types.
        unsafe { self.launch(OP, softmax, grid_planes(n, s), &args) }?;

        let n32 = i32_of(OP, "batch", n)?;
        let sums = self.reduce_rows(
            OP,
            "dice_categorical_sum",
            &[probs.ptr(), dlab.ptr()],
            |args| args.i32(n32).i32(c32).i64(i64_of(s)),
            (parts_for(n * s), c, 3 * c),
        )?;
        let present = occurs.iter().filter(|&&o| o).count();
        if present == 0 {
            return Ok((0.0, Tensor::zeros(logits.shape(), dtype)?));
        }
        let weight = 1.0 / present as f64;
        let mut loss = 0.0;
        let mut coef = vec![0.0f32; 2 * c];
        for k in 0..c {
            let (pt, pp, tt) = (sums[k], sums[c + k], sums[2 * c + k]);
            if occurs[k] {
                let denom = pp + tt + EPS;
                loss += weight * (1.0 - (2.0 * pt + EPS) / denom);
                let (a, b) = dice_coefficients(pt, denom, weight);
                coef[2 * k] = a as f32;
                coef[2 * k + 1] = b as f32;
            }
        }

        let coef = self.upload_f32(OP, &[2 * c], &coef)?;
        let dlogits = self.alloc(OP, logits.shape(), dtype)?;
        let args = KernelArgs::new()
            .ptr(probs.ptr())
            .ptr(dlab.ptr())
            .ptr(coef.ptr())
            .ptr(dlogits.ptr())
            .i64(i64_of(n))
            .i32(c32)
            .i64(i64_of(s));
        let name = kernel("dice_categorical_grad", dtype);
        // SAFETY: probs and dlogits hold N·C·S values, labels N·S bytes, coef 2C floats.
        unsafe { self.launch(OP, &name, grid_planes(n, s), &args) }?;
        Ok((loss, self.keep(OP, dlogits)?))
    }
}
