//! The native CPU backend: widens f16 storage to f32, runs the kernels of `ops::<op>::cpu`,
//! and stores results back in the input's storage type.

use super::{Backend, TransposeGeometry};
use crate::ops::batch_norm::{BatchStats, RunningStats};
use crate::ops::conv3d::{cpu as conv, Conv3dShape};
use crate::ops::conv_transpose3d::{cpu as conv_t, ConvTranspose3dShape};
use crate::ops::{activation, batch_norm, concat, dice, max_pool};
use crate::tensor::{DType, Result, Tensor, TensorError};

/// The `cpu` backend. Kernels run on rayon's global pool (`RAYON_NUM_THREADS` sets its size).
#[derive(Clone, Debug, Default)]
pub struct Cpu;

impl Cpu {
    pub fn new() -> Self {
        Cpu
    }
}

fn invalid(op: &'static str, message: String) -> TensorError {
    TensorError::Invalid { op, message }
}

/// A result computed in f32, stored as `dtype`.
fn stored(shape: &[usize], values: Vec<f32>, dtype: DType) -> Result<Tensor> {
    Tensor::from_f32_as(shape, values, dtype)
}

fn float_dtype(op: &'static str, t: &Tensor) -> Result<DType> {
    match t.dtype() {
        d @ (DType::F32 | DType::F16) => Ok(d),
        other => Err(invalid(
            op,
            format!("expected f32 or f16 storage, got {}", other.name()),
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
    if wcin != cin || kd != g.kernel || kh != g.kernel || kw != g.kernel {
        return Err(invalid(
            "conv_transpose3d",
            format!(
                "weight {weight_shape:?} does not fit input {x_shape:?} and kernel {} (in,out,k,k,k)",
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

fn bn_grads(
    shape: &[usize],
    dx: Vec<f32>,
    dtype: DType,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
) -> Result<(Tensor, Tensor, Tensor)> {
    let c = dgamma.len();
    Ok((
        stored(shape, dx, dtype)?,
        Tensor::from_f32(&[c], dgamma)?,
        Tensor::from_f32(&[c], dbeta)?,
    ))
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
        let dtype = float_dtype("conv3d", x)?;
        let s = conv_shape(x.shape(), weight.shape(), pad)?;
        check_bias("conv3d", bias, s.cout)?;
        let [od, oh, ow] = s.out_dims();
        let mut y = vec![0.0f32; s.n * s.cout * od * oh * ow];
        let b = bias.map(|b| b.as_f32());
        conv::forward(&s, &x.as_f32(), &weight.as_f32(), b.as_deref(), &mut y);
        stored(&[s.n, s.cout, od, oh, ow], y, dtype)
    }

    fn conv3d_backward_input(
        &self,
        gy: &Tensor,
        weight: &Tensor,
        pad: usize,
        x_shape: &[usize],
    ) -> Result<Tensor> {
        let dtype = float_dtype("conv3d", gy)?;
        let s = conv_shape(x_shape, weight.shape(), pad)?;
        let [od, oh, ow] = s.out_dims();
        if gy.shape() != [s.n, s.cout, od, oh, ow] {
            return Err(invalid(
                "conv3d",
                format!("gradient {:?} does not fit {s:?}", gy.shape()),
            ));
        }
        let mut dx = vec![0.0f32; s.n * s.cin * s.d * s.h * s.w];
        conv::backward_input(&s, &gy.as_f32(), &weight.as_f32(), &mut dx);
        stored(x_shape, dx, dtype)
    }

    fn conv3d_backward_params(
        &self,
        x: &Tensor,
        gy: &Tensor,
        pad: usize,
        weight_shape: &[usize],
        bias: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let s = conv_shape(x.shape(), weight_shape, pad)?;
        let [od, oh, ow] = s.out_dims();
        if gy.shape() != [s.n, s.cout, od, oh, ow] {
            return Err(invalid(
                "conv3d",
                format!("gradient {:?} does not fit {s:?}", gy.shape()),
            ));
        }
        let mut dw = vec![0.0f32; weight_shape.iter().product()];
        let mut db = vec![0.0f32; s.cout];
        conv::backward_weight(
            &s,
            &x.as_f32(),
            &gy.as_f32(),
            &mut dw,
            bias.then_some(&mut db[..]),
        );
        let db = if bias {
            Some(Tensor::from_f32(&[s.cout], db)?)
        } else {
            None
        };
        Ok((Tensor::from_f32(weight_shape, dw)?, db))
    }

    fn conv_transpose3d(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        geometry: TransposeGeometry,
    ) -> Result<Tensor> {
        let dtype = float_dtype("conv_transpose3d", x)?;
        let s = conv_t_shape(x.shape(), weight.shape(), geometry)?;
        check_bias("conv_transpose3d", bias, s.cout)?;
        let [od, oh, ow] = s.out_dims();
        let mut y = vec![0.0f32; s.n * s.cout * od * oh * ow];
        let b = bias.map(|b| b.as_f32());
        conv_t::forward(&s, &x.as_f32(), &weight.as_f32(), b.as_deref(), &mut y);
        stored(&[s.n, s.cout, od, oh, ow], y, dtype)
    }

    fn conv_transpose3d_backward_input(
        &self,
        gy: &Tensor,
        weight: &Tensor,
        geometry: TransposeGeometry,
        x_shape: &[usize],
    ) -> Result<Tensor> {
        let dtype = float_dtype("conv_transpose3d", gy)?;
        let s = conv_t_shape(x_shape, weight.shape(), geometry)?;
        let [od, oh, ow] = s.out_dims();
        if gy.shape() != [s.n, s.cout, od, oh, ow] {
            return Err(invalid(
                "conv_transpose3d",
                format!("gradient {:?} does not fit {s:?}", gy.shape()),
            ));
        }
        let mut dx = vec![0.0f32; s.n * s.cin * s.d * s.h * s.w];
        conv_t::backward_input(&s, &gy.as_f32(), &weight.as_f32(), &mut dx);
        stored(x_shape, dx, dtype)
    }

    fn conv_transpose3d_backward_params(
        &self,
        x: &Tensor,
        gy: &Tensor,
        geometry: TransposeGeometry,
        weight_shape: &[usize],
        bias: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let s = conv_t_shape(x.shape(), weight_shape, geometry)?;
        let [od, oh, ow] = s.out_dims();
        if gy.shape() != [s.n, s.cout, od, oh, ow] {
            return Err(invalid(
                "conv_transpose3d",
                format!("gradient {:?} does not fit {s:?}", gy.shape()),
            ));
        }
        let mut dw = vec![0.0f32; weight_shape.iter().product()];
        let mut db = vec![0.0f32; s.cout];
        conv_t::backward_weight(
            &s,
            &x.as_f32(),
            &gy.as_f32(),
            &mut dw,
            bias.then_some(&mut db[..]),
        );
        let db = if bias {
            Some(Tensor::from_f32(&[s.cout], db)?)
        } else {
            None
        };
        Ok((Tensor::from_f32(weight_shape, dw)?, db))
    }

    fn batch_norm_train(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
    ) -> Result<(Tensor, BatchStats)> {
        let dtype = float_dtype("batch_norm3d", x)?;
        let dims = x.dims5("batch_norm3d")?;
        let mut y = vec![0.0f32; x.numel()];
        let (g, b) = (gamma.as_f32(), beta.as_f32());
        let stats = batch_norm::forward_train(&x.as_f32(), dims, &g, &b, eps as f64, &mut y)?;
        Ok((stored(x.shape(), y, dtype)?, stats))
    }

    fn batch_norm_eval(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        running: &RunningStats<f32>,
        eps: f32,
    ) -> Result<Tensor> {
        let dtype = float_dtype("batch_norm3d", x)?;
        let dims = x.dims5("batch_norm3d")?;
        let mut y = vec![0.0f32; x.numel()];
        let (g, b) = (gamma.as_f32(), beta.as_f32());
        batch_norm::forward_eval(&x.as_f32(), dims, &g, &b, running, eps as f64, &mut y)?;
        stored(x.shape(), y, dtype)
    }

    fn batch_norm_backward_train(
        &self,
        x: &Tensor,
        gy: &Tensor,
        gamma: &Tensor,
        stats: &BatchStats,
        eps: f32,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let dtype = float_dtype("batch_norm3d", gy)?;
        let dims = x.dims5("batch_norm3d")?;
        let mut dx = vec![0.0f32; x.numel()];
        let (gy_values, g) = (gy.as_f32(), gamma.as_f32());
        let (dgamma, dbeta) = batch_norm::backward_train(
            &x.as_f32(),
            dims,
            &gy_values,
            &g,
            stats,
            eps as f64,
            &mut dx,
        )?;
        bn_grads(x.shape(), dx, dtype, dgamma, dbeta)
    }

    fn batch_norm_backward_eval(
        &self,
        x: &Tensor,
        gy: &Tensor,
        gamma: &Tensor,
        running: &RunningStats<f32>,
        eps: f32,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let dtype = float_dtype("batch_norm3d", gy)?;
        let dims = x.dims5("batch_norm3d")?;
        let mut dx = vec![0.0f32; x.numel()];
        let (gy_values, g) = (gy.as_f32(), gamma.as_f32());
        let (dgamma, dbeta) = batch_norm::backward_eval(
            &x.as_f32(),
            dims,
            &gy_values,
            &g,
            running,
            eps as f64,
            &mut dx,
        )?;
        bn_grads(x.shape(), dx, dtype, dgamma, dbeta)
    }

    fn max_pool3d(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let dtype = float_dtype("max_pool3d", x)?;
        let dims = x.dims5("max_pool3d")?;
        let (y, indices) = max_pool::forward(&x.as_f32(), dims)?;
        let out = max_pool::output_dims(dims);
        // Indices fit i32: max_pool::forward refuses volumes beyond u32, and no volume that
        // fits in memory comes near 2^31 voxels per channel.
        let indices = Tensor::from_i32(&out, indices.into_iter().map(|i| i as i32).collect())?;
        Ok((stored(&out, y, dtype)?, indices))
    }

    fn max_pool3d_backward(
        &self,
        gy: &Tensor,
        indices: &Tensor,
        x_shape: &[usize],
    ) -> Result<Tensor> {
        let dtype = float_dtype("max_pool3d", gy)?;
        let dims = dims5("max_pool3d", x_shape)?;
        let indices: Vec<u32> = indices
            .i32_slice()
            .ok_or_else(|| invalid("max_pool3d", "indices must be stored as i32".into()))?
            .iter()
            .map(|&i| i as u32)
            .collect();
        let dx = max_pool::backward(&gy.as_f32(), &indices, dims)?;
        stored(x_shape, dx, dtype)
    }

    fn relu(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = float_dtype("relu", x)?;
        stored(x.shape(), activation::relu_forward(&x.as_f32()), dtype)
    }

    fn relu_backward(&self, x: &Tensor, gy: &Tensor) -> Result<Tensor> {
        let dtype = float_dtype("relu", gy)?;
        x.expect_same_shape("relu", gy)?;
        stored(
            x.shape(),
            activation::relu_backward(&x.as_f32(), &gy.as_f32())?,
            dtype,
        )
    }

    fn sigmoid(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = float_dtype("sigmoid", x)?;
        stored(x.shape(), activation::sigmoid_forward(&x.as_f32()), dtype)
    }

    fn sigmoid_backward(&self, y: &Tensor, gy: &Tensor) -> Result<Tensor> {
        let dtype = float_dtype("sigmoid", gy)?;
        y.expect_same_shape("sigmoid", gy)?;
        stored(
            y.shape(),
            activation::sigmoid_backward(&y.as_f32(), &gy.as_f32())?,
            dtype,
        )
    }

    fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = float_dtype("softmax", x)?;
        let dims = x.dims5("softmax")?;
        stored(
            x.shape(),
            activation::softmax_forward(&x.as_f32(), dims)?,
            dtype,
        )
    }

    fn softmax_backward(&self, y: &Tensor, gy: &Tensor) -> Result<Tensor> {
        let dtype = float_dtype("softmax", gy)?;
        let dims = y.dims5("softmax")?;
        y.expect_same_shape("softmax", gy)?;
        stored(
            y.shape(),
            activation::softmax_backward(&y.as_f32(), &gy.as_f32(), dims)?,
            dtype,
        )
    }

    fn concat(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let dtype = float_dtype("concat", a)?;
        let (a_dims, b_dims) = (a.dims5("concat")?, b.dims5("concat")?);
        if b.dtype() != dtype {
            return Err(invalid(
                "concat",
                format!(
                    "cannot concatenate {} and {} storage",
                    dtype.name(),
                    b.dtype().name()
                ),
            ));
        }
        let y = concat::forward(&a.as_f32(), a_dims, &b.as_f32(), b_dims)?;
        stored(&concat::output_dims(a_dims, b_dims)?, y, dtype)
    }

    fn split(&self, y: &Tensor, channels_a: usize) -> Result<(Tensor, Tensor)> {
        let dtype = float_dtype("concat", y)?;
        let [n, c, d, h, w] = y.dims5("concat")?;
        if channels_a > c {
            return Err(invalid(
                "concat",
                format!("cannot split {channels_a} of {c} channels"),
            ));
        }
        let (a_dims, b_dims) = ([n, channels_a, d, h, w], [n, c - channels_a, d, h, w]);
        let (da, db) = concat::backward(&y.as_f32(), a_dims, b_dims)?;
        Ok((stored(&a_dims, da, dtype)?, stored(&b_dims, db, dtype)?))
    }

    fn dice_binary(&self, logits: &Tensor, target: &Tensor) -> Result<(f32, Tensor)> {
        let dtype = float_dtype("dice_binary", logits)?;
        logits.expect_same_shape("dice_binary", target)?;
        let (loss, dlogits) =
            dice::binary_dice_loss(&logits.as_f32(), &target.as_f32(), dice::EPS)?;
        Ok((loss as f32, stored(logits.shape(), dlogits, dtype)?))
    }

    fn dice_categorical(&self, logits: &Tensor, labels: &Tensor) -> Result<(f32, Tensor)> {
        let dtype = float_dtype("dice_categorical", logits)?;
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
        let (result, dlogits) =
            dice::categorical_dice_loss(&logits.as_f32(), dims, labels, dice::EPS)?;
        Ok((result.loss as f32, stored(logits.shape(), dlogits, dtype)?))
    }

    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        a.expect_same_shape("add", b)?;
        let dtype = float_dtype("add", a)?;
        let (x, y) = (a.as_f32(), b.as_f32());
        stored(
            a.shape(),
            x.iter().zip(y.iter()).map(|(p, q)| p + q).collect(),
            dtype,
        )
    }

    fn scale(&self, x: &Tensor, s: f32) -> Result<Tensor> {
        let dtype = float_dtype("scale", x)?;
        stored(x.shape(), x.as_f32().iter().map(|v| v * s).collect(), dtype)
    }
}
