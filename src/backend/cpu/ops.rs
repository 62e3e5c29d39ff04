//! The other ops of the `cpu` backend: batch norm, max-pool, activations, concat, Dice and
//! elementwise helpers, each reading its inputs in the call's arithmetic type.

use super::{dims5, invalid, Compute};
use crate::ops::batch_norm::{BatchStats, RunningStats};
use crate::ops::{activation, batch_norm, concat, dice, max_pool};
use crate::tensor::{Result, Tensor};

pub(super) fn batch_norm_train<T: Compute>(
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

pub(super) fn batch_norm_eval<T: Compute>(
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
pub(super) enum BnMode<'a> {
    Train(&'a BatchStats),
    Eval(&'a RunningStats<f64>),
}

pub(super) fn batch_norm_backward<T: Compute>(
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

pub(super) fn max_pool3d<T: Compute>(x: &Tensor) -> Result<(Tensor, Tensor)> {
    let dims = x.dims5("max_pool3d")?;
    let (y, indices) = max_pool::forward(&T::read(x), dims)?;
    let out = max_pool::output_dims(dims);
    // i32 holds every index: a channel volume of 2^31 voxels would not fit in memory here.
    let indices = Tensor::from_i32(&out, indices.into_iter().map(|i| i as i32).collect())?;
    Ok((T::store(&out, y, x.dtype())?, indices))
}

pub(super) fn max_pool3d_backward<T: Compute>(
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

pub(super) fn relu<T: Compute>(x: &Tensor) -> Result<Tensor> {
    T::store(x.shape(), activation::relu_forward(&T::read(x)), x.dtype())
}

pub(super) fn relu_backward<T: Compute>(x: &Tensor, gy: &Tensor) -> Result<Tensor> {
    x.expect_same_shape("relu", gy)?;
    T::store(
        x.shape(),
        activation::relu_backward(&T::read(x), &T::read(gy))?,
        gy.dtype(),
    )
}

pub(super) fn sigmoid<T: Compute>(x: &Tensor) -> Result<Tensor> {
    T::store(
        x.shape(),
        activation::sigmoid_forward(&T::read(x)),
        x.dtype(),
    )
}

pub(super) fn sigmoid_backward<T: Compute>(y: &Tensor, gy: &Tensor) -> Result<Tensor> {
    y.expect_same_shape("sigmoid", gy)?;
    T::store(
        y.shape(),
        activation::sigmoid_backward(&T::read(y), &T::read(gy))?,
        gy.dtype(),
    )
}

pub(super) fn softmax<T: Compute>(x: &Tensor) -> Result<Tensor> {
    let dims = x.dims5("softmax")?;
    T::store(
        x.shape(),
        activation::softmax_forward(&T::read(x), dims)?,
        x.dtype(),
    )
}

pub(super) fn softmax_backward<T: Compute>(y: &Tensor, gy: &Tensor) -> Result<Tensor> {
    let dims = y.dims5("softmax")?;
    y.expect_same_shape("softmax", gy)?;
    let dx = activation::softmax_backward(&T::read(y), &T::read(gy), dims)?;
    T::store(y.shape(), dx, gy.dtype())
}

pub(super) fn concat_channels<T: Compute>(a: &Tensor, b: &Tensor) -> Result<Tensor> {
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

pub(super) fn split_channels<T: Compute>(
    y: &Tensor,
    channels_a: usize,
) -> Result<(Tensor, Tensor)> {
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

pub(super) fn dice_binary<T: Compute>(logits: &Tensor, target: &Tensor) -> Result<(f64, Tensor)> {
    logits.expect_same_shape("dice_binary", target)?;
    let (loss, dlogits) = dice::binary_dice_loss(&T::read(logits), &T::read(target), dice::EPS)?;
    Ok((loss, T::store(logits.shape(), dlogits, logits.dtype())?))
}

pub(super) fn dice_categorical<T: Compute>(
    logits: &Tensor,
    labels: &Tensor,
) -> Result<(f64, Tensor)> {
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

pub(super) fn add<T: Compute>(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.expect_same_shape("add", b)?;
    let sum = T::read(a)
        .iter()
        .zip(T::read(b).iter())
        .map(|(&p, &q)| p + q)
        .collect();
    T::store(a.shape(), sum, a.dtype())
}

pub(super) fn scale<T: Compute>(x: &Tensor, s: f32) -> Result<Tensor> {
    let s = T::of(s as f64);
    T::store(
        x.shape(),
        T::read(x).iter().map(|&v| v * s).collect(),
        x.dtype(),
    )
}
