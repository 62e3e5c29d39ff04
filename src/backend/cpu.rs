//! The native CPU backend: runs the kernels of `ops::<op>` on the host. f16 storage is widened
//! to f32 and results are stored back in the input's storage type; f64 storage (the reference
//! mode) runs the same generic kernels in f64.

use std::borrow::Cow;

use super::{Backend, TransposeGeometry};
use crate::ops::batch_norm::{BatchStats, RunningStats};
use crate::ops::conv3d::{cpu as conv, Conv3dShape};
use crate::ops::conv_transpose3d::{cpu as conv_t, ConvTranspose3dShape};
use crate::ops::{activation, batch_norm, concat, dice, max_pool, Real};
use crate::tensor::{DType, Result, Tensor, TensorError};

/// The `cpu` backend. Kernels run on rayon's global pool (`RAYON_NUM_THREADS` sets its size).
#[derive(Clone, Debug, Default)]
pub struct Cpu;

impl Cpu {
    pub fn new() -> Self {
        Cpu
    }
}

/// The arithmetic type of a call: f64 for f64 storage, f32 for f32 and f16.
trait Compute: Real {
    fn read(t: &Tensor) -> Cow<'_, [Self]>;
    /// Values computed in this type, stored as `dtype` (f16 rounds to nearest).
    fn store(shape: &[usize], values: Vec<Self>, dtype: DType) -> Result<Tensor>;
    /// Small per-channel values (parameter gradients): f32, or f64 in the reference mode.
    fn param(shape: &[usize], values: Vec<Self>) -> Result<Tensor>;
    fn running(r: &RunningStats<f64>) -> RunningStats<Self>;
}

impl Compute for f32 {
    fn read(t: &Tensor) -> Cow<'_, [f32]> {
        t.as_f32()
    }

    fn store(shape: &[usize], values: Vec<f32>, dtype: DType) -> Result<Tensor> {
        Tensor::from_f32_as(shape, values, dtype)
    }

    fn param(shape: &[usize], values: Vec<f32>) -> Result<Tensor> {
        Tensor::from_f32(shape, values)
    }

    fn running(r: &RunningStats<f64>) -> RunningStats<f32> {
        RunningStats {
            running_mean: r.running_mean.iter().map(|&v| v as f32).collect(),
            running_var: r.running_var.iter().map(|&v| v as f32).collect(),
            num_batches_tracked: r.num_batches_tracked,
        }
    }
}

impl Compute for f64 {
    fn read(t: &Tensor) -> Cow<'_, [f64]> {
        t.as_f64()
    }

    fn store(shape: &[usize], values: Vec<f64>, _dtype: DType) -> Result<Tensor> {
        Tensor::from_f64(shape, values)
    }

    fn param(shape: &[usize], values: Vec<f64>) -> Result<Tensor> {
        Tensor::from_f64(shape, values)
    }

    fn running(r: &RunningStats<f64>) -> RunningStats<f64> {
        r.clone()
    }
}

/// Calls `$f::<f64>` for f64 storage of `$t` and `$f::<f32>` otherwise, after checking that
/// `$t` holds floating-point values.
macro_rules! by_precision {
    ($op:expr, $t:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match float_dtype($op, $t)? {
            DType::F64 => $f::<f64>($($arg),*),
            _ => $f::<f32>($($arg),*),
        }
    };
}

fn invalid(op: &'static str, message: String) -> TensorError {
    TensorError::Invalid { op, message }
}

fn float_dtype(op: &'static str, t: &Tensor) -> Result<DType> {
    match t.dtype() {
        d @ (DType::F32 | DType::F16 | DType::F64) => Ok(d),
        other => Err(invalid(
            op,
            format!("expected floating-point storage, got {}", other.name()),
        )),
    }
}

fn dims5(op: &'static str, shape: &[usize]) -> Result<[usize; 5]> {
    shape.try_into().map_err(|_| TensorError::Rank {
        op,
        expected: 5,
        shape: shape.to_vec(),
    })
}

fn conv_shape(x_shape: &[usize], weight_shape: &[usize], pad: usize) -> Result<Conv3dShape> {
    let [n, cin, d, h, w] = dims5("conv3d", x_shape)?;
    let &[cout, wcin, kd, kh, kw] = weight_shape else {
        return Err(TensorError::Rank {
            op: "conv3d",
            expected: 5,
            shape: weight_shape.to_vec(),
        });
    };
    if wcin != cin || kd != kh || kh != kw {
        return Err(invalid(
            "conv3d",
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

fn conv_t_shape(
    x_shape: &[usize],
    weight_shape: &[usize],
    g: TransposeGeometry,
) -> Result<ConvTranspose3dShape> {
    let [n, cin, d, h, w] = dims5("conv_transpose3d", x_shape)?;
    let &[wcin, cout, kd, kh, kw] = weight_shape else {
        return Err(TensorError::Rank {
            op: "conv_transpose3d",
            expected: 5,
            shape: weight_shape.to_vec(),
        });
    };
    if wcin != cin || [kd, kh, kw] != [g.kernel; 3] {
        return Err(invalid(
            "conv_transpose3d",
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

fn conv3d<T: Compute>(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    pad: usize,
) -> Result<Tensor> {
    let s = conv_shape(x.shape(), weight.shape(), pad)?;
    check_bias("conv3d", bias, s.cout)?;
    let [od, oh, ow] = s.out_dims();
    let mut y = vec![T::zero(); s.n * s.cout * od * oh * ow];
    let b = bias.map(T::read);
    conv::forward(&s, &T::read(x), &T::read(weight), b.as_deref(), &mut y);
    T::store(&[s.n, s.cout, od, oh, ow], y, x.dtype())
}

fn conv3d_backward_input<T: Compute>(
    gy: &Tensor,
    weight: &Tensor,
    pad: usize,
    x_shape: &[usize],
) -> Result<Tensor> {
    let s = conv_shape(x_shape, weight.shape(), pad)?;
    let [od, oh, ow] = s.out_dims();
    check_gradient("conv3d", gy, [s.n, s.cout, od, oh, ow])?;
    let mut dx = vec![T::zero(); s.n * s.cin * s.d * s.h * s.w];
    conv::backward_input(&s, &T::read(gy), &T::read(weight), &mut dx);
    T::store(x_shape, dx, gy.dtype())
}

fn conv3d_backward_params<T: Compute>(
    x: &Tensor,
    gy: &Tensor,
    pad: usize,
    weight_shape: &[usize],
    bias: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let s = conv_shape(x.shape(), weight_shape, pad)?;
    let [od, oh, ow] = s.out_dims();
    check_gradient("conv3d", gy, [s.n, s.cout, od, oh, ow])?;
    let mut dw = vec![T::zero(); weight_shape.iter().product()];
    let mut db = vec![T::zero(); s.cout];
    conv::backward_weight(
        &s,
        &T::read(x),
        &T::read(gy),
        &mut dw,
        bias.then_some(&mut db[..]),
    );
    let db = if bias {
        Some(T::param(&[s.cout], db)?)
    } else {
        None
    };
    Ok((T::param(weight_shape, dw)?, db))
}

fn conv_transpose3d<T: Compute>(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    geometry: TransposeGeometry,
) -> Result<Tensor> {
    let s = conv_t_shape(x.shape(), weight.shape(), geometry)?;
    check_bias("conv_transpose3d", bias, s.cout)?;
    let [od, oh, ow] = s.out_dims();
    let mut y = vec![T::zero(); s.n * s.cout * od * oh * ow];
    let b = bias.map(T::read);
    conv_t::forward(&s, &T::read(x), &T::read(weight), b.as_deref(), &mut y);
    T::store(&[s.n, s.cout, od, oh, ow], y, x.dtype())
}

fn conv_transpose3d_backward_input<T: Compute>(
    gy: &Tensor,
    weight: &Tensor,
    geometry: TransposeGeometry,
    x_shape: &[usize],
) -> Result<Tensor> {
    let s = conv_t_shape(x_shape, weight.shape(), geometry)?;
    let [od, oh, ow] = s.out_dims();
    check_gradient("conv_transpose3d", gy, [s.n, s.cout, od, oh, ow])?;
    let mut dx = vec![T::zero(); s.n * s.cin * s.d * s.h * s.w];
    conv_t::backward_input(&s, &T::read(gy), &T::read(weight), &mut dx);
    T::store(x_shape, dx, gy.dtype())
}

fn conv_transpose3d_backward_params<T: Compute>(
    x: &Tensor,
    gy: &Tensor,
    geometry: TransposeGeometry,
    weight_shape: &[usize],
    bias: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let s = conv_t_shape(x.shape(), weight_shape, geometry)?;
    let [od, oh, ow] = s.out_dims();
    check_gradient("conv_transpose3d", gy, [s.n, s.cout, od, oh, ow])?;
    let mut dw = vec![T::zero(); weight_shape.iter().product()];
    let mut db = vec![T::zero(); s.cout];
    conv_t::backward_weight(
        &s,
        &T::read(x),
        &T::read(gy),
        &mut dw,
        bias.then_some(&mut db[..]),
    );
    let db = if bias {
        Some(T::param(&[s.cout], db)?)
    } else {
        None
    };
    Ok((T::param(weight_shape, dw)?, db))
}

fn batch_norm_train<T: Compute>(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
) -> Result<(Tensor, BatchStats)> {
    let dims = x.dims5("batch_norm3d")?;
    let mut y = vec![T::zero(); x.numel()];
    let (g, b) = (T::read(gamma), T::read(beta));
    let stats = batch_norm::forward_train(&T::read(x), dims, &g, &b, eps as f64, &mut y)?;
    Ok((T::store(x.shape(), y, x.dtype())?, stats))
}

fn batch_norm_eval<T: Compute>(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    running: &RunningStats<f64>,
    eps: f32,
) -> Result<Tensor> {
    let dims = x.dims5("batch_norm3d")?;
    let mut y = vec![T::zero(); x.numel()];
    let (g, b) = (T::read(gamma), T::read(beta));
    let running = T::running(running);
    batch_norm::forward_eval(&T::read(x), dims, &g, &b, &running, eps as f64, &mut y)?;
    T::store(x.shape(), y, x.dtype())
}

/// The statistics a batch-norm backward differentiates through.
enum BnMode<'a> {
    Train(&'a BatchStats),
    Eval(&'a RunningStats<f64>),
}

fn batch_norm_backward<T: Compute>(
    x: &Tensor,
    gy: &Tensor,
    gamma: &Tensor,
    mode: BnMode<'_>,
    eps: f32,
) -> Result<(Tensor, Tensor, Tensor)> {
    let dims = x.dims5("batch_norm3d")?;
    let mut dx = vec![T::zero(); x.numel()];
    let (xv, gyv, g) = (T::read(x), T::read(gy), T::read(gamma));
    let (dgamma, dbeta) = match mode {
        BnMode::Train(stats) => {
            batch_norm::backward_train(&xv, dims, &gyv, &g, stats, eps as f64, &mut dx)?
        }
        BnMode::Eval(running) => {
            let running = T::running(running);
            batch_norm::backward_eval(&xv, dims, &gyv, &g, &running, eps as f64, &mut dx)?
        }
    };
    let c = dims[1];
    Ok((
        T::store(x.shape(), dx, gy.dtype())?,
        T::param(&[c], dgamma)?,
        T::param(&[c], dbeta)?,
    ))
}

fn max_pool3d<T: Compute>(x: &Tensor) -> Result<(Tensor, Tensor)> {
    let dims = x.dims5("max_pool3d")?;
    let (y, indices) = max_pool::forward(&T::read(x), dims)?;
    let out = max_pool::output_dims(dims);
    // i32 holds every index: a channel volume of 2^31 voxels would not fit in memory here.
    let indices = Tensor::from_i32(&out, indices.into_iter().map(|i| i as i32).collect())?;
    Ok((T::store(&out, y, x.dtype())?, indices))
}

fn max_pool3d_backward<T: Compute>(
    gy: &Tensor,
    indices: &Tensor,
    x_shape: &[usize],
) -> Result<Tensor> {
    let dims = dims5("max_pool3d", x_shape)?;
    let indices: Vec<u32> = indices
        .i32_slice()
        .ok_or_else(|| invalid("max_pool3d", "indices must be stored as i32".into()))?
        .iter()
        .map(|&i| i as u32)
        .collect();
    let dx = max_pool::backward(&T::read(gy), &indices, dims)?;
    T::store(x_shape, dx, gy.dtype())
}

fn relu<T: Compute>(x: &Tensor) -> Result<Tensor> {
    T::store(x.shape(), activation::relu_forward(&T::read(x)), x.dtype())
}

fn relu_backward<T: Compute>(x: &Tensor, gy: &Tensor) -> Result<Tensor> {
    x.expect_same_shape("relu", gy)?;
    T::store(
        x.shape(),
        activation::relu_backward(&T::read(x), &T::read(gy))?,
        gy.dtype(),
    )
}

fn sigmoid<T: Compute>(x: &Tensor) -> Result<Tensor> {
    T::store(
        x.shape(),
        activation::sigmoid_forward(&T::read(x)),
        x.dtype(),
    )
}

fn sigmoid_backward<T: Compute>(y: &Tensor, gy: &Tensor) -> Result<Tensor> {
    y.expect_same_shape("sigmoid", gy)?;
    T::store(
        y.shape(),
        activation::sigmoid_backward(&T::read(y), &T::read(gy))?,
        gy.dtype(),
    )
}

fn softmax<T: Compute>(x: &Tensor) -> Result<Tensor> {
    let dims = x.dims5("softmax")?;
    T::store(
        x.shape(),
        activation::softmax_forward(&T::read(x), dims)?,
        x.dtype(),
    )
}

fn softmax_backward<T: Compute>(y: &Tensor, gy: &Tensor) -> Result<Tensor> {
    let dims = y.dims5("softmax")?;
    y.expect_same_shape("softmax", gy)?;
    let dx = activation::softmax_backward(&T::read(y), &T::read(gy), dims)?;
    T::store(y.shape(), dx, gy.dtype())
}

fn concat_channels<T: Compute>(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (a_dims, b_dims) = (a.dims5("concat")?, b.dims5("concat")?);
    if b.dtype() != a.dtype() {
        return Err(invalid(
            "concat",
            format!(
                "cannot concatenate {} and {} storage",
                a.dtype().name(),
                b.dtype().name()
            ),
        ));
    }
    let y = concat::forward(&T::read(a), a_dims, &T::read(b), b_dims)?;
    T::store(&concat::output_dims(a_dims, b_dims)?, y, a.dtype())
}

fn split_channels<T: Compute>(y: &Tensor, channels_a: usize) -> Result<(Tensor, Tensor)> {
    let [n, c, d, h, w] = y.dims5("concat")?;
    if channels_a > c {
        return Err(invalid(
            "concat",
            format!("cannot split {channels_a} of {c} channels"),
        ));
    }
    let (a_dims, b_dims) = ([n, channels_a, d, h, w], [n, c - channels_a, d, h, w]);
    let (da, db) = concat::backward(&T::read(y), a_dims, b_dims)?;
    Ok((
        T::store(&a_dims, da, y.dtype())?,
        T::store(&b_dims, db, y.dtype())?,
    ))
}

fn dice_binary<T: Compute>(logits: &Tensor, target: &Tensor) -> Result<(f64, Tensor)> {
    logits.expect_same_shape("dice_binary", target)?;
    let (loss, dlogits) = dice::binary_dice_loss(&T::read(logits), &T::read(target), dice::EPS)?;
    Ok((loss, T::store(logits.shape(), dlogits, logits.dtype())?))
}

fn dice_categorical<T: Compute>(logits: &Tensor, labels: &Tensor) -> Result<(f64, Tensor)> {
    let dims = logits.dims5("dice_categorical")?;
    let [n, _, d, h, w] = dims;
    if labels.shape() != [n, d, h, w] {
        return Err(invalid(
            "dice_categorical",
            format!(
                "labels {:?} do not fit logits {:?} (labels are N,D,H,W)",
                labels.shape(),
                logits.shape()
            ),
        ));
    }
    let labels = labels
        .u8_slice()
        .ok_or_else(|| invalid("dice_categorical", "labels must be stored as u8".into()))?;
    let (result, dlogits) = dice::categorical_dice_loss(&T::read(logits), dims, labels, dice::EPS)?;
    Ok((
        result.loss,
        T::store(logits.shape(), dlogits, logits.dtype())?,
    ))
}

fn add<T: Compute>(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.expect_same_shape("add", b)?;
    let sum = T::read(a)
        .iter()
        .zip(T::read(b).iter())
        .map(|(&p, &q)| p + q)
        .collect();
    T::store(a.shape(), sum, a.dtype())
}

fn scale<T: Compute>(x: &Tensor, s: f32) -> Result<Tensor> {
    let s = T::of(s as f64);
    T::store(
        x.shape(),
        T::read(x).iter().map(|&v| v * s).collect(),
        x.dtype(),
    )
}

impl Backend for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn conv3d(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        pad: usize,
    ) -> Result<Tensor> {
        by_precision!("conv3d", x, conv3d(x, weight, bias, pad))
    }

    fn conv3d_backward_input(
        &self,
        gy: &Tensor,
        weight: &Tensor,
        pad: usize,
        x_shape: &[usize],
    ) -> Result<Tensor> {
        by_precision!(
            "conv3d",
            gy,
            conv3d_backward_input(gy, weight, pad, x_shape)
        )
    }

    fn conv3d_backward_params(
        &self,
        x: &Tensor,
        gy: &Tensor,
        pad: usize,
        weight_shape: &[usize],
        bias: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        by_precision!(
            "conv3d",
            x,
            conv3d_backward_params(x, gy, pad, weight_shape, bias)
        )
    }

    fn conv_transpose3d(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        geometry: TransposeGeometry,
    ) -> Result<Tensor> {
        by_precision!(
            "conv_transpose3d",
            x,
            conv_transpose3d(x, weight, bias, geometry)
        )
    }

    fn conv_transpose3d_backward_input(
        &self,
        gy: &Tensor,
        weight: &Tensor,
        geometry: TransposeGeometry,
        x_shape: &[usize],
    ) -> Result<Tensor> {
        by_precision!(
            "conv_transpose3d",
            gy,
            conv_transpose3d_backward_input(gy, weight, geometry, x_shape)
        )
    }

    fn conv_transpose3d_backward_params(
        &self,
        x: &Tensor,
        gy: &Tensor,
        geometry: TransposeGeometry,
        weight_shape: &[usize],
        bias: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        by_precision!(
            "conv_transpose3d",
            x,
            conv_transpose3d_backward_params(x, gy, geometry, weight_shape, bias)
        )
    }

    fn batch_norm_train(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
    ) -> Result<(Tensor, BatchStats)> {
        by_precision!("batch_norm3d", x, batch_norm_train(x, gamma, beta, eps))
    }

    fn batch_norm_eval(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        running: &RunningStats<f64>,
        eps: f32,
    ) -> Result<Tensor> {
        by_precision!(
            "batch_norm3d",
            x,
            batch_norm_eval(x, gamma, beta, running, eps)
        )
    }

    fn batch_norm_backward_train(
        &self,
        x: &Tensor,
        gy: &Tensor,
        gamma: &Tensor,
        stats: &BatchStats,
        eps: f32,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        by_precision!(
            "batch_norm3d",
            gy,
            batch_norm_backward(x, gy, gamma, BnMode::Train(stats), eps)
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
        by_precision!(
            "batch_norm3d",
            gy,
            batch_norm_backward(x, gy, gamma, BnMode::Eval(running), eps)
        )
    }

    fn max_pool3d(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        by_precision!("max_pool3d", x, max_pool3d(x))
    }

    fn max_pool3d_backward(
        &self,
        gy: &Tensor,
        indices: &Tensor,
        x_shape: &[usize],
    ) -> Result<Tensor> {
        by_precision!("max_pool3d", gy, max_pool3d_backward(gy, indices, x_shape))
    }

    fn relu(&self, x: &Tensor) -> Result<Tensor> {
        by_precision!("relu", x, relu(x))
    }

    fn relu_backward(&self, x: &Tensor, gy: &Tensor) -> Result<Tensor> {
        by_precision!("relu", gy, relu_backward(x, gy))
    }

    fn sigmoid(&self, x: &Tensor) -> Result<Tensor> {
        by_precision!("sigmoid", x, sigmoid(x))
    }

    fn sigmoid_backward(&self, y: &Tensor, gy: &Tensor) -> Result<Tensor> {
        by_precision!("sigmoid", gy, sigmoid_backward(y, gy))
    }

    fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        by_precision!("softmax", x, softmax(x))
    }

    fn softmax_backward(&self, y: &Tensor, gy: &Tensor) -> Result<Tensor> {
        by_precision!("softmax", gy, softmax_backward(y, gy))
    }

    fn concat(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        by_precision!("concat", a, concat_channels(a, b))
    }

    fn split(&self, y: &Tensor, channels_a: usize) -> Result<(Tensor, Tensor)> {
        by_precision!("concat", y, split_channels(y, channels_a))
    }

    fn dice_binary(&self, logits: &Tensor, target: &Tensor) -> Result<(f64, Tensor)> {
        by_precision!("dice_binary", logits, dice_binary(logits, target))
    }

    fn dice_categorical(&self, logits: &Tensor, labels: &Tensor) -> Result<(f64, Tensor)> {
        by_precision!("dice_categorical", logits, dice_categorical(logits, labels))
    }

    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        by_precision!("add", a, add(a, b))
    }

    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor> {
        by_precision!("scale", x, scale(x, s))
    }
}
