//! conv_transpose3d on the device backend (any kernel size, stride, padding and
//! output_padding whose weights fit in shared memory).

use super::{
    as_f32, check_bias, check_grad, float_dtype, int, kernel_name, launch, parameter_grads,
    shared_bytes, size_args, tiled_config, WeightGradKernel, CHANNEL_TILE, CHUNK, TILE_H, TILE_W,
};
use crate::backend::device::{Device, DeviceTensor};
use crate::backend::TransposeGeometry;
use crate::launch::{DevicePtr, KernelArgs};
use crate::ops::conv_transpose3d::ConvTranspose3dShape;
use crate::tensor::{Result, Tensor};

const OP: &str = "conv_transpose3d";

fn out_shape(s: &ConvTranspose3dShape) -> [usize; 5] {
    let [od, oh, ow] = s.out_dims();
    [s.n, s.cout, od, oh, ow]
}

/// The weight chunk the forward and input-gradient kernels stage: [8][4][k^3] floats.
fn weight_chunk_bytes(s: &ConvTranspose3dShape) -> Result<u32> {
    let floats = CHANNEL_TILE * CHUNK * s.k.pow(3);
    shared_bytes(OP, floats, &format!("kernel size k = {}", s.k))
}

/// `size_args` plus the stride and padding.
fn geometry_args(s: &ConvTranspose3dShape, args: KernelArgs) -> Result<KernelArgs> {
    let [_, _, od, oh, ow] = out_shape(s);
    let args = size_args(
        OP,
        args,
        [s.cin, s.cout],
        [s.d, s.h, s.w],
        [od, oh, ow],
        s.k,
    )?;
    Ok(args
        .i32(int(OP, "stride", s.stride)?)
        .i32(int(OP, "padding", s.pad)?))
}

/// `y = conv_transpose3d(x, weight) + bias` (weight `in,out,k,k,k`), in x's storage type.
pub fn conv_transpose3d(
    dev: &Device,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    geometry: TransposeGeometry,
) -> Result<Tensor> {
    let dtype = float_dtype(OP, x)?;
    let s = ConvTranspose3dShape::of(x.shape(), weight.shape(), geometry)?;
    check_bias(OP, bias, s.cout)?;
    let y_shape = out_shape(&s);
    let [_, _, od, oh, ow] = y_shape;

    let x_dev = dev.upload(OP, x)?;
    let (w, b) = (
        as_f32(dev, OP, weight)?,
        bias.map(|b| as_f32(dev, OP, b)).transpose()?,
    );
    let w_dev = dev.upload(OP, &w)?;
    let b_dev = b.as_deref().map(|b| dev.upload(OP, b)).transpose()?;
    let y = dev.alloc(OP, &y_shape, dtype)?;
    let config = tiled_config(OP, [oh, ow], [od * s.n, s.cout.div_ceil(CHANNEL_TILE)])?
        .with_shared_bytes(weight_chunk_bytes(&s)?);
    let args = KernelArgs::new()
        .ptr(x_dev.ptr())
        .ptr(w_dev.ptr())
        .ptr(b_dev.as_deref().map_or(DevicePtr(0), DeviceTensor::ptr))
        .ptr(y.ptr());
    let args = geometry_args(&s, args)?;
    // SAFETY: x, weight (f32), bias (f32, or null) and y hold the counts of their checked
    // shapes; the shared memory is the weight chunk the kernel stages.
    unsafe { launch(dev, OP, &kernel_name("conv_t3d_fwd", dtype), config, args)? };
    dev.keep(OP, y)
}

/// `dL/dx` of conv_transpose3d for the upstream gradient `gy`, in gy's storage type.
pub fn conv_transpose3d_backward_input(
    dev: &Device,
    gy: &Tensor,
    weight: &Tensor,
    geometry: TransposeGeometry,
    x_shape: &[usize],
) -> Result<Tensor> {
    let dtype = float_dtype(OP, gy)?;
    let s = ConvTranspose3dShape::of(x_shape, weight.shape(), geometry)?;
    check_grad(OP, gy, out_shape(&s))?;

    let gy_dev = dev.upload(OP, gy)?;
    let w = as_f32(dev, OP, weight)?;
    let w_dev = dev.upload(OP, &w)?;
    let dx = dev.alloc(OP, x_shape, dtype)?;
    let config = tiled_config(OP, [s.h, s.w], [s.d * s.n, s.cin.div_ceil(CHANNEL_TILE)])?
        .with_shared_bytes(weight_chunk_bytes(&s)?);
    let args = KernelArgs::new()
        .ptr(gy_dev.ptr())
        .ptr(w_dev.ptr())
        .ptr(dx.ptr());
    let args = geometry_args(&s, args)?;
    // SAFETY: gy, weight (f32) and dx hold the counts of their checked shapes; the shared
    // memory is the weight chunk the kernel stages.
    unsafe {
        launch(
            dev,
            OP,
            &kernel_name("conv_t3d_bwd_input", dtype),
            config,
            args,
        )?
    };
    dev.keep(OP, dx)
}

/// `dL/dweight` and, when `bias`, `dL/dbias` of conv_transpose3d, both f32.
pub fn conv_transpose3d_backward_params(
    dev: &Device,
    x: &Tensor,
    gy: &Tensor,
    geometry: TransposeGeometry,
    weight_shape: &[usize],
    bias: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let s = ConvTranspose3dShape::of(x.shape(), weight_shape, geometry)?;
    check_grad(OP, gy, out_shape(&s))?;
    parameter_grads(
        dev,
        OP,
        (x, gy),
        weight_shape,
        [s.n, s.cin, s.k, s.cout],
        bias,
        WeightGradKernel {
            name: "conv_t3d_bwd_weight",
            tiles: s.n * s.d * s.h.div_ceil(TILE_H) * s.w.div_ceil(TILE_W),
            shared_floats: CHUNK * TILE_H * TILE_W,
            shared_what: "the x tile",
        },
        |args| geometry_args(&s, args),
    )
}
