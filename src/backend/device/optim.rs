//! Optimizer steps and loss-scale unscaling on the device (`kernels/optim.cu`), with the rules
//! of `crate::optim` exactly: the per-step scalars are computed here in f64 as there, the
//! element-wise update runs on f32 master weights and also writes their f16 copy.

use half::f16;

use super::kernels::{grid_1d, i64_of, invalid};
use super::{Device, DeviceTensor};
use crate::launch::KernelArgs;
use crate::optim::{Adam, GradScaler, RmsProp};
use crate::tensor::{DType, Result, Tensor};

/// An error unless there is one gradient per parameter, each as long as its parameter and its
/// optimizer state.
fn check_params(
    optimizer: &'static str,
    params: &[&mut [f32]],
    grads: &[&[f32]],
    state_lens: &[usize],
) -> Result<()> {
    if params.len() != state_lens.len() || grads.len() != state_lens.len() {
        return Err(invalid(
            optimizer,
            format!(
                "{} parameters and {} gradients for {} optimizer states",
                params.len(),
                grads.len(),
                state_lens.len()
            ),
        ));
    }
    for (index, (p, g)) in params.iter().zip(grads).enumerate() {
        if g.len() != p.len() || state_lens[index] != p.len() {
            return Err(invalid(
                optimizer,
                format!(
                    "parameter {index} holds {} values but its gradient holds {} and its state {}",
                    p.len(),
                    g.len(),
                    state_lens[index]
                ),
            ));
        }
    }
    Ok(())
}

impl Device {
    fn upload_values(&self, op: &'static str, values: &[f32]) -> Result<DeviceTensor> {
        self.upload_f32(op, &[values.len()], values)
    }

    /// Downloads f32 values into `out`.
    fn download_into(&self, op: &'static str, d: &DeviceTensor, out: &mut [f32]) -> Result<()> {
        let t = self.download(op, d)?;
        out.copy_from_slice(&t.as_f32());
        Ok(())
    }

    fn download_f16(&self, op: &'static str, d: &DeviceTensor) -> Result<Vec<f16>> {
        match self.download(op, d)?.data() {
            crate::tensor::HostData::F16(v) => Ok(v.clone()),
            _ => Err(invalid(op, "expected f16 storage".into())),
        }
    }

    /// One Adam step of every parameter, as [`Adam::step`]; returns the updated parameters
    /// rounded to f16, one vector per parameter.
    pub fn adam_step(
        &self,
        adam: &mut Adam<f32>,
        params: &mut [&mut [f32]],
        grads: &[&[f32]],
    ) -> Result<Vec<Vec<f16>>> {
        const OP: &str = "Adam";
        let lens: Vec<usize> = adam
            .states
            .iter()
            .map(|s| s.exp_avg.len().min(s.exp_avg_sq.len()))
            .collect();
        check_params(OP, params, grads, &lens)?;
        let config = adam.config;
        let (b1, b2) = config.betas;
        let mut copies = Vec::with_capacity(params.len());
        for ((param, grad), state) in params.iter_mut().zip(grads).zip(&mut adam.states) {
            state.step += 1;
            let t = state.step as f64;
            let n = param.len();
            let dp = self.upload_values(OP, param)?;
            let dg = self.upload_values(OP, grad)?;
            let dm = self.upload_values(OP, &state.exp_avg)?;
            let dv = self.upload_values(OP, &state.exp_avg_sq)?;
            let half = self.alloc(OP, &[n], DType::F16)?;
            let args = KernelArgs::new()
                .ptr(dp.ptr())
                .ptr(dg.ptr())
                .ptr(dm.ptr())
                .ptr(dv.ptr())
                .ptr(half.ptr())
                .i64(i64_of(n))
                .f32((config.lr / (1.0 - b1.powf(t))) as f32)
                .f32((1.0 - b2.powf(t)).sqrt() as f32)
                .f32((1.0 - b1) as f32)
                .f32(b2 as f32)
                .f32((1.0 - b2) as f32)
                .f32(config.eps as f32)
                .f32(config.weight_decay as f32)
                .i32(i32::from(config.weight_decay != 0.0));
            // SAFETY: every buffer holds n values of its type.
            unsafe { self.launch(OP, "adam_step", grid_1d(n), &args) }?;
            self.download_into(OP, &dp, param)?;
            self.download_into(OP, &dm, &mut state.exp_avg)?;
            self.download_into(OP, &dv, &mut state.exp_avg_sq)?;
            copies.push(self.download_f16(OP, &half)?);
        }
        Ok(copies)
    }

    /// One RMSprop step of every parameter, as [`RmsProp::step`]; returns the updated
    /// parameters rounded to f16.
    pub fn rmsprop_step(
        &self,
        rmsprop: &mut RmsProp<f32>,
        params: &mut [&mut [f32]],
        grads: &[&[f32]],
    ) -> Result<Vec<Vec<f16>>> {
        const OP: &str = "RMSprop";
        let lens: Vec<usize> = rmsprop.states.iter().map(|s| s.square_avg.len()).collect();
        check_params(OP, params, grads, &lens)?;
        let config = rmsprop.config;
        let mut copies = Vec::with_capacity(params.len());
        for ((param, grad), state) in params.iter_mut().zip(grads).zip(&mut rmsprop.states) {
            state.step += 1;
            let n = param.len();
            let dp = self.upload_values(OP, param)?;
            let dg = self.upload_values(OP, grad)?;
            let dv = self.upload_values(OP, &state.square_avg)?;
            let half = self.alloc(OP, &[n], DType::F16)?;
            let args = KernelArgs::new()
                .ptr(dp.ptr())
                .ptr(dg.ptr())
                .ptr(dv.ptr())
                .ptr(half.ptr())
                .i64(i64_of(n))
                .f32(config.lr as f32)
                .f32(config.alpha as f32)
                .f32((1.0 - config.alpha) as f32)
                .f32(config.eps as f32)
                .f32(config.weight_decay as f32)
                .i32(i32::from(config.weight_decay != 0.0));
            // SAFETY: every buffer holds n values of its type.
            unsafe { self.launch(OP, "rmsprop_step", grid_1d(n), &args) }?;
            self.download_into(OP, &dp, param)?;
            self.download_into(OP, &dv, &mut state.square_avg)?;
            copies.push(self.download_f16(OP, &half)?);
        }
        Ok(copies)
    }

    /// Multiplies every gradient by `1/scale` in place, as [`GradScaler::unscale_and_check`],
    /// and returns whether any unscaled value is inf or NaN.
    pub fn unscale_and_check(&self, scaler: &GradScaler, grads: &mut [&mut [f32]]) -> Result<bool> {
        let mut tensors = Vec::with_capacity(grads.len());
        for g in grads.iter() {
            tensors.push(Tensor::from_f32(&[g.len()], g.to_vec())?);
        }
        let found = self.unscale_tensors(scaler, &mut tensors)?;
        for (g, t) in grads.iter_mut().zip(&tensors) {
            g.copy_from_slice(&t.as_f32());
        }
        Ok(found)
    }

    /// As [`Device::unscale_and_check`] for gradient tensors of either float storage type, each
    /// unscaled in its own type (computed in f32).
    pub fn unscale_tensors(&self, scaler: &GradScaler, grads: &mut [Tensor]) -> Result<bool> {
        const OP: &str = "GradScaler";
        let inv_scale = (1.0 / scaler.scale as f64) as f32;
        let found = self.zeros(OP, &[1], DType::I32)?;
        for grad in grads.iter_mut() {
            let dtype = super::kernels::float_dtype(OP, grad)?;
            let dg = self.upload_copy(OP, grad)?;
            let n = grad.numel();
            let args = KernelArgs::new()
                .ptr(dg.ptr())
                .i64(i64_of(n))
                .f32(inv_scale)
                .ptr(found.ptr());
            let name = super::kernels::kernel("unscale_check", dtype);
            // SAFETY: dg holds n values of `dtype`, found one i32.
            unsafe { self.launch(OP, &name, grid_1d(n), &args) }?;
            *grad = self.keep(OP, dg)?;
        }
        let flag = self.download(OP, &found)?;
        Ok(flag.i32_slice().is_some_and(|v| v[0] != 0))
    }

    /// `x` converted to f32 or f16 storage by the cast kernels (round to nearest even).
    pub fn cast(&self, x: &Tensor, dtype: DType) -> Result<Tensor> {
        const OP: &str = "cast";
        let from = super::kernels::float_dtype(OP, x)?;
        let name = match (from, dtype) {
            (DType::F16, DType::F32) => "cast_f16_to_f32",
            (DType::F32, DType::F16) => "cast_f32_to_f16",
            (a, b) if a == b => return Ok(x.clone()),
            (_, other) => {
                return Err(invalid(
                    OP,
                    format!(
                        "cannot cast to {} storage; expected f32 or f16",
                        other.name()
                    ),
                ))
            }
        };
        let dx = self.upload(OP, x)?;
        self.map_elements(OP, name, &[&dx], |args| args, x.shape(), dtype)
    }
}
