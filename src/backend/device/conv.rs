//! conv3d and conv_transpose3d on the device backend: shape checks as the `cpu` backend makes
//! them, then the kernels of `kernels/conv3d.cu` and `kernels/conv_transpose3d.cu`.
//!
//! Activations keep their storage (f32 or f16) on the device; weights and bias are widened to
//! f32 on the host (they are small, and f16 → f32 is exact), so the kernels have one weight
//! type. Parameter gradients are f32. The launch geometry here must match the constants at the
//! top of the two kernel files.

use std::borrow::Cow;

use super::kernels::{float_dtype, i32_of as int, kernel as kernel_name};
use super::{Device, DeviceTensor};
use crate::launch::{DevicePtr, KernelArgs, LaunchConfig, MAX_DYNAMIC_SHARED_BYTES};
use crate::ops::conv3d::Conv3dShape;
use crate::tensor::{dims5, invalid, DType, Result, Tensor};

const OP: &str = "conv3d";

/// Output tile of a block (voxels along W and H) in the tiled kernels.
const TILE_W: usize = 16;
const TILE_H: usize = 8;
/// Channels a thread accumulates in registers.
const CHANNEL_TILE: usize = 8;
/// Channels staged in shared memory per step.
const CHUNK: usize = 4;
/// Threads of a weight-gradient block, and the kernel taps one such block covers.
const WGRAD_THREADS: u32 = 256;
const WGRAD_TAP_GROUP: usize = 32;
/// Blocks of a whole weight-gradient launch: the channel and tap groups multiplied by the
/// blocks that share the tiles of each group. Each block adds its sums with one atomic per
/// weight, so this is enough to fill a GPU many times over and few enough that the atomics
/// stay a small fraction of the work.
const WGRAD_BLOCKS: usize = 1024;
const CHANNEL_SUM_THREADS: u32 = 256;
/// Values of a channel one bias-gradient block sums (16 per thread), and the most blocks one
/// channel is split into (each adds its total with one atomic).
const CHANNEL_SUM_VALUES_PER_BLOCK: usize = 4096;
const CHANNEL_SUM_MAX_PARTS: usize = 256;
/// The largest conv3d kernel whose halo slab and weights fit in shared memory.
const MAX_CONV_K: usize = 5;

fn grid_dim(op: &'static str, what: &str, value: usize, max: usize) -> Result<u32> {
    if value > max {
        return Err(invalid(
            op,
            format!("{what} = {value} needs more than {max} blocks along a grid axis"),
        ));
    }
    Ok(value as u32)
}

fn shared_bytes(op: &'static str, floats: usize, what: &str) -> Result<u32> {
    let bytes = floats * 4;
    if bytes > MAX_DYNAMIC_SHARED_BYTES as usize {
        return Err(invalid(
            op,
            format!(
                "{what} needs {bytes} bytes of shared memory per block; the device kernels \
                 have {MAX_DYNAMIC_SHARED_BYTES}"
            ),
        ));
    }
    Ok(bytes as u32)
}

/// `t` as f32 (weights and bias), kept for the caller's launch.
fn as_f32<'a>(dev: &Device, op: &'static str, t: &'a Tensor) -> Result<Cow<'a, Tensor>> {
    dev.as_storage(op, t, DType::F32)
}

fn check_bias(op: &'static str, bias: Option<&Tensor>, channels: usize) -> Result<()> {
    match bias {
        Some(b) if b.numel() != channels => Err(invalid(
            op,
            format!("bias has {} values for {channels} channels", b.numel()),
        )),
        _ => Ok(()),
    }
}

fn check_grad(op: &'static str, gy: &Tensor, expected: [usize; 5]) -> Result<()> {
    if gy.shape() != expected {
        return Err(invalid(
            op,
            format!(
                "gradient {:?} does not fit the output {expected:?}",
                gy.shape()
            ),
        ));
    }
    Ok(())
}

/// # Safety
/// The arguments must match `kernel`'s parameters and every pointer must address a live
/// buffer large enough for what the kernel touches.
unsafe fn launch(
    dev: &Device,
    op: &'static str,
    kernel: &str,
    config: LaunchConfig,
    args: KernelArgs,
) -> Result<()> {
    // SAFETY: forwarded; the caller upholds the contract.
    unsafe { dev.launch(op, kernel, config, &args) }
}

/// The sizes every convolution kernel takes after its pointers:
/// `cin, cout, d, h, w, od, oh, ow, k`.
fn size_args(
    op: &'static str,
    mut args: KernelArgs,
    channels: [usize; 2],
    input: [usize; 3],
    output: [usize; 3],
    k: usize,
) -> Result<KernelArgs> {
    for v in channels.into_iter().chain(input).chain(output) {
        args = args.i32(int(op, "a size", v)?);
    }
    Ok(args.i32(int(op, "kernel size", k)?))
}

fn tiled_config(op: &'static str, plane: [usize; 2], grid_yz: [usize; 2]) -> Result<LaunchConfig> {
    let tiles = plane[0].div_ceil(TILE_H) * plane[1].div_ceil(TILE_W);
    Ok(LaunchConfig {
        grid: [
            grid_dim(op, "tiles per plane", tiles, i32::MAX as usize)?,
            grid_dim(op, "depth x batch", grid_yz[0], 65535)?,
            grid_dim(op, "channel tiles", grid_yz[1], 65535)?,
        ],
        block: [TILE_W as u32, TILE_H as u32, 1],
        shared_bytes: 0,
    })
}

fn wgrad_config(
    op: &'static str,
    tiles: usize,
    cin_steps: usize,
    k: usize,
    cout_tiles: usize,
) -> Result<LaunchConfig> {
    let tap_groups = k.pow(3).div_ceil(WGRAD_TAP_GROUP);
    let groups = cin_steps * tap_groups * cout_tiles;
    let sharing = (WGRAD_BLOCKS / groups).clamp(1, tiles.max(1));
    Ok(LaunchConfig {
        grid: [
            sharing as u32,
            grid_dim(
                op,
                "channel steps x tap groups",
                cin_steps * tap_groups,
                65535,
            )?,
            grid_dim(op, "channel tiles", cout_tiles, 65535)?,
        ],
        block: [WGRAD_THREADS, 1, 1],
        shared_bytes: 0,
    })
}

/// `db[c] = Σ gy[:, c]` into a new f32 tensor.
fn channel_sums(dev: &Device, op: &'static str, gy: &DeviceTensor) -> Result<Tensor> {
    let [n, c, d, h, w] = dims5(op, &gy.shape)?;
    let db = dev.zeros(op, &[c], DType::F32)?;
    let parts = (n * d * h * w).div_ceil(CHANNEL_SUM_VALUES_PER_BLOCK);
    let config = LaunchConfig {
        grid: [
            grid_dim(op, "channels", c, i32::MAX as usize)?,
            parts.clamp(1, CHANNEL_SUM_MAX_PARTS) as u32,
            1,
        ],
        block: [CHANNEL_SUM_THREADS, 1, 1],
        shared_bytes: 0,
    };
    let args = KernelArgs::new()
        .ptr(gy.ptr())
        .ptr(db.ptr())
        .i32(int(op, "batch size", n)?)
        .i32(int(op, "channels", c)?)
        .i32(int(op, "volume", d * h * w)?);
    // SAFETY: gy holds n*c*volume values of its storage type and db c floats (zeroed, as the
    // kernel adds into it).
    unsafe {
        launch(
            dev,
            op,
            &kernel_name("conv_channel_sum", gy.dtype),
            config,
            args,
        )?
    };
    dev.keep(op, db)
}

/// A weight-gradient kernel of either convolution: its name (without the storage suffix),
/// how many output tiles blocks share, and the dynamic shared memory it carves.
struct WeightGradKernel<'a> {
    name: &'a str,
    tiles: usize,
    shared_floats: usize,
    shared_what: &'a str,
}

/// The parameter gradients of either convolution: `kernel` adds x·gy into a zeroed f32 weight
/// gradient over the blocks `wgrad_config` lays out, with arguments `x, gy, dw, n` and then
/// what `shape_args` appends; the bias gradient is gy summed per channel.
#[allow(clippy::too_many_arguments)]
fn parameter_grads(
    dev: &Device,
    op: &'static str,
    (x, gy): (&Tensor, &Tensor),
    weight_shape: &[usize],
    [n, cin, k, cout]: [usize; 4],
    bias: bool,
    kernel: WeightGradKernel,
    shape_args: impl FnOnce(KernelArgs) -> Result<KernelArgs>,
) -> Result<(Tensor, Option<Tensor>)> {
    let (x, gy, dtype) = dev.common_storage(op, x, gy)?;
    let x_dev = dev.upload(op, &x)?;
    let gy_dev = dev.upload(op, &gy)?;
    let dw = dev.zeros(op, weight_shape, DType::F32)?;
    let config = wgrad_config(
        op,
        kernel.tiles,
        cin.div_ceil(CHUNK),
        k,
        cout.div_ceil(CHANNEL_TILE),
    )?
    .with_shared_bytes(shared_bytes(op, kernel.shared_floats, kernel.shared_what)?);
    let args = KernelArgs::new()
        .ptr(x_dev.ptr())
        .ptr(gy_dev.ptr())
        .ptr(dw.ptr())
        .i32(int(op, "batch size", n)?);
    let args = shape_args(args)?;
    // SAFETY: x and gy hold the counts of their checked shapes in `dtype`, dw the weight's
    // floats (zeroed, as the kernel adds into it); shared memory as the kernel carves it.
    unsafe { launch(dev, op, &kernel_name(kernel.name, dtype), config, args)? };
    let db = bias.then(|| channel_sums(dev, op, &gy_dev)).transpose()?;
    Ok((dev.keep(op, dw)?, db))
}

// ---------------------------------------------------------------------------------------------
// conv3d

/// The shape of a conv3d call, checked as the `cpu` backend checks it, plus the device limit
/// on the kernel size.
fn conv_shape(x_shape: &[usize], weight_shape: &[usize], pad: usize) -> Result<Conv3dShape> {
    let s = Conv3dShape::of(x_shape, weight_shape, pad)?;
    if s.k > MAX_CONV_K {
        return Err(invalid(
            OP,
            format!(
                "kernel size k = {} is not supported by the device kernels (k <= {MAX_CONV_K}): \
                 its halo slab does not fit in shared memory",
                s.k
            ),
        ));
    }
    Ok(s)
}

/// Floats of shared memory of a stride-1 correlation step: the halo slab of CHUNK channels.
fn slab_floats(k: usize) -> usize {
    CHUNK * k * (TILE_H + k - 1) * (TILE_W + k - 1)
}

/// A stride-1 correlation tile launch: the forward pass or, with `pad = k - 1 - pad` and the
/// weight read transposed and flipped, the input gradient. `bias` is `Some` for the forward
/// kernel, which has a bias parameter (null when the inner option is `None`), and `None` for
/// the input gradient, which has none.
#[allow(clippy::too_many_arguments)]
fn correlate(
    dev: &Device,
    kernel: &str,
    input: &DeviceTensor,
    weight: &DeviceTensor,
    bias: Option<Option<&DeviceTensor>>,
    out: &DeviceTensor,
    k: usize,
    pad: isize,
) -> Result<()> {
    let [n, cin, d, h, w] = dims5(OP, &input.shape)?;
    let [_, cout, od, oh, ow] = dims5(OP, &out.shape)?;
    let shared = slab_floats(k) + CHANNEL_TILE * CHUNK * k.pow(3);
    let config = tiled_config(OP, [oh, ow], [od * n, cout.div_ceil(CHANNEL_TILE)])?
        .with_shared_bytes(shared_bytes(OP, shared, "the conv3d tile")?);
    let mut args = KernelArgs::new().ptr(input.ptr()).ptr(weight.ptr());
    if let Some(bias) = bias {
        args = args.ptr(bias.map_or(DevicePtr(0), DeviceTensor::ptr));
    }
    args = size_args(
        OP,
        args.ptr(out.ptr()),
        [cin, cout],
        [d, h, w],
        [od, oh, ow],
        k,
    )?;
    let pad = i32::try_from(pad).map_err(|_| invalid(OP, format!("padding {pad} too large")))?;
    // SAFETY: input, out and weight hold the element counts their shapes give (the weight
    // cout*cin*k^3 floats in either reading), the bias cout floats; the shared memory is sized
    // as the kernel carves it.
    unsafe {
        launch(
            dev,
            OP,
            &kernel_name(kernel, input.dtype),
            config,
            args.i32(pad),
        )
    }
}

/// `y = conv3d(x, weight) + bias` (stride 1, zero padding `pad`), in x's storage type.
pub fn conv3d(
    dev: &Device,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    pad: usize,
) -> Result<Tensor> {
    let dtype = float_dtype(OP, x)?;
    let s = conv_shape(x.shape(), weight.shape(), pad)?;
    check_bias(OP, bias, s.cout)?;
    let [od, oh, ow] = s.out_dims();

    let x_dev = dev.upload(OP, x)?;
    let (w, b) = (
        as_f32(dev, OP, weight)?,
        bias.map(|b| as_f32(dev, OP, b)).transpose()?,
    );
    let w_dev = dev.upload(OP, &w)?;
    let b_dev = b.as_deref().map(|b| dev.upload(OP, b)).transpose()?;
    let y = dev.alloc(OP, &[s.n, s.cout, od, oh, ow], dtype)?;
    let pad = s.pad as isize;
    correlate(
        dev,
        "conv3d_fwd",
        &x_dev,
        &w_dev,
        Some(b_dev.as_deref()),
        &y,
        s.k,
        pad,
    )?;
    dev.keep(OP, y)
}

/// `dL/dx` of conv3d for the upstream gradient `gy`, in gy's storage type.
pub fn conv3d_backward_input(
    dev: &Device,
    gy: &Tensor,
    weight: &Tensor,
    pad: usize,
    x_shape: &[usize],
) -> Result<Tensor> {
    let dtype = float_dtype(OP, gy)?;
    let s = conv_shape(x_shape, weight.shape(), pad)?;
    let [od, oh, ow] = s.out_dims();
    check_grad(OP, gy, [s.n, s.cout, od, oh, ow])?;

    let gy_dev = dev.upload(OP, gy)?;
    let w = as_f32(dev, OP, weight)?;
    let w_dev = dev.upload(OP, &w)?;
    let dx = dev.alloc(OP, x_shape, dtype)?;
    let pad = s.k as isize - 1 - s.pad as isize;
    correlate(
        dev,
        "conv3d_bwd_input",
        &gy_dev,
        &w_dev,
        None,
        &dx,
        s.k,
        pad,
    )?;
    dev.keep(OP, dx)
}

/// `dL/dweight` and, when `bias`, `dL/dbias` of conv3d, both f32.
pub fn conv3d_backward_params(
    dev: &Device,
    x: &Tensor,
    gy: &Tensor,
    pad: usize,
    weight_shape: &[usize],
    bias: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let s = conv_shape(x.shape(), weight_shape, pad)?;
    let [od, oh, ow] = s.out_dims();
    check_grad(OP, gy, [s.n, s.cout, od, oh, ow])?;
    parameter_grads(
        dev,
        OP,
        (x, gy),
        weight_shape,
        [s.n, s.cin, s.k, s.cout],
        bias,
        WeightGradKernel {
            name: "conv3d_bwd_weight",
            tiles: s.n * od * oh.div_ceil(TILE_H) * ow.div_ceil(TILE_W),
            shared_floats: slab_floats(s.k) + CHANNEL_TILE * TILE_H * TILE_W,
            shared_what: "the conv3d weight-gradient tile",
        },
        |args| {
            Ok(size_args(
                OP,
                args,
                [s.cin, s.cout],
                [s.d, s.h, s.w],
                [od, oh, ow],
                s.k,
            )?
            .i32(int(OP, "padding", s.pad)?))
        },
    )
}

mod transpose;

pub use transpose::{
    conv_transpose3d, conv_transpose3d_backward_input, conv_transpose3d_backward_params,
};
