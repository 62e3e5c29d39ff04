//! The convolutions of the `cpu` backend: shape checks and the calls into
//! `ops::conv3d::cpu` and `ops::conv_transpose3d::cpu`.

use super::{invalid, Compute};
use crate::backend::TransposeGeometry;
use crate::ops::conv3d::{cpu as conv, Conv3dShape};
use crate::ops::conv_transpose3d::{cpu as conv_t, ConvTranspose3dShape};
use crate::tensor::{Result, Tensor};

fn check_bias(op: &'static str, bias: Option<&Tensor>, channels: usize) -> Result<()> {
    match bias {
        Some(b) if b.numel() != channels => Err(invalid(
            op,
            format!("bias has {} values for {channels} channels", b.numel()),
        )),
        _ => Ok(()),
    }
}

fn check_gradient(op: &'static str, gy: &Tensor, expected: [usize; 5]) -> Result<()> {
    if gy.shape() != expected {
        return Err(invalid(
            op,
            format!("gradient {:?} where {expected:?} was expected", gy.shape()),
        ));
    }
    Ok(())
}

/// Runs `kernel` on zeroed weight (and, when `bias`, bias) gradients and returns them as
/// parameter tensors.
fn param_grads<T: Compute>(
    weight_shape: &[usize],
    channels: usize,
    bias: bool,
    kernel: impl FnOnce(&mut [T], Option<&mut [T]>),
) -> Result<(Tensor, Option<Tensor>)> {
    let mut dw = vec![T::zero(); weight_shape.iter().product()];
    let mut db = vec![T::zero(); channels];
    kernel(&mut dw, bias.then_some(&mut db[..]));
    let db = if bias {
        Some(T::param(&[channels], db)?)
    } else {
        None
    };
    Ok((T::param(weight_shape, dw)?, db))
}

pub(super) fn conv3d<T: Compute>(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    pad: usize,
) -> Result<Tensor> {
    let s = Conv3dShape::of(x.shape(), weight.shape(), pad)?;
    check_bias("conv3d", bias, s.cout)?;
    let [od, oh, ow] = s.out_dims();
    let mut y = vec![T::zero(); s.n * s.cout * od * oh * ow];
    let b = bias.map(T::read);
    conv::forward(&s, &T::read(x), &T::read(weight), b.as_deref(), &mut y);
    T::store(&[s.n, s.cout, od, oh, ow], y, x.dtype())
}

pub(super) fn conv3d_backward_input<T: Compute>(
    gy: &Tensor,
    weight: &Tensor,
    pad: usize,
    x_shape: &[usize],
) -> Result<Tensor> {
    let s = Conv3dShape::of(x_shape, weight.shape(), pad)?;
    let [od, oh, ow] = s.out_dims();
    check_gradient("conv3d", gy, [s.n, s.cout, od, oh, ow])?;
    let mut dx = vec![T::zero(); s.n * s.cin * s.d * s.h * s.w];
    conv::backward_input(&s, &T::read(gy), &T::read(weight), &mut dx);
    T::store(x_shape, dx, gy.dtype())
}

pub(super) fn conv3d_backward_params<T: Compute>(
    x: &Tensor,
    gy: &Tensor,
    pad: usize,
    weight_shape: &[usize],
    bias: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let s = Conv3dShape::of(x.shape(), weight_shape, pad)?;
    let [od, oh, ow] = s.out_dims();
    check_gradient("conv3d", gy, [s.n, s.cout, od, oh, ow])?;
    let (x, gy) = (T::read(x), T::read(gy));
    param_grads::<T>(weight_shape, s.cout, bias, |dw, db| {
        conv::backward_weight(&s, &x, &gy, dw, db)
    })
}

pub(super) fn conv_transpose3d<T: Compute>(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    geometry: TransposeGeometry,
) -> Result<Tensor> {
    let s = ConvTranspose3dShape::of(x.shape(), weight.shape(), geometry)?;
    check_bias("conv_transpose3d", bias, s.cout)?;
    let [od, oh, ow] = s.out_dims();
    let mut y = vec![T::zero(); s.n * s.cout * od * oh * ow];
    let b = bias.map(T::read);
    conv_t::forward(&s, &T::read(x), &T::read(weight), b.as_deref(), &mut y);
    T::store(&[s.n, s.cout, od, oh, ow], y, x.dtype())
}

pub(super) fn conv_transpose3d_backward_input<T: Compute>(
    gy: &Tensor,
    weight: &Tensor,
    geometry: TransposeGeometry,
    x_shape: &[usize],
) -> Result<Tensor> {
    let s = ConvTranspose3dShape::of(x_shape, weight.shape(), geometry)?;
    let [od, oh, ow] = s.out_dims();
    check_gradient("conv_transpose3d", gy, [s.n, s.cout, od, oh, ow])?;
    let mut dx = vec![T::zero(); s.n * s.cin * s.d * s.h * s.w];
    conv_t::backward_input(&s, &T::read(gy), &T::read(weight), &mut dx);
    T::store(x_shape, dx, gy.dtype())
}

pub(super) fn conv_transpose3d_backward_params<T: Compute>(
    x: &Tensor,
    gy: &Tensor,
    geometry: TransposeGeometry,
    weight_shape: &[usize],
    bias: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let s = ConvTranspose3dShape::of(x.shape(), weight_shape, geometry)?;
    let [od, oh, ow] = s.out_dims();
    check_gradient("conv_transpose3d", gy, [s.n, s.cout, od, oh, ow])?;
    let (x, gy) = (T::read(x), T::read(gy));
    param_grads::<T>(weight_shape, s.cout, bias, |dw, db| {
        conv_t::backward_weight(&s, &x, &gy, dw, db)
    })
}
