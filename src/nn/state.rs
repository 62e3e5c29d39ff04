//! The U-Net's state in PyTorch's `state_dict` order and names.

use super::layers::{Conv, Norm};
use super::unet::UNet;
use crate::tensor::{DType, Tensor};

/// One entry of the state: a parameter tensor, a BN statistics vector, or a batch counter.
pub enum Slot<'a> {
    Tensor(&'a mut Tensor),
    Floats(&'a mut Vec<f64>),
    Count(&'a mut i64),
}

impl Slot<'_> {
    /// The shape PyTorch gives this entry (`[]` for the counter).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Slot::Tensor(t) => t.shape().to_vec(),
            Slot::Floats(v) => vec![v.len()],
            Slot::Count(_) => Vec::new(),
        }
    }

    /// The values as f64 (the counter as one value).
    pub fn values(&self) -> Vec<f64> {
        match self {
            Slot::Tensor(t) => t.as_f64().into_owned(),
            Slot::Floats(v) => v.to_vec(),
            Slot::Count(c) => vec![**c as f64],
        }
    }

    pub fn is_parameter(&self) -> bool {
        matches!(self, Slot::Tensor(_))
    }
}

fn conv<'a>(out: &mut Vec<(String, Slot<'a>)>, name: &str, conv: &'a mut Conv) {
    out.push((format!("{name}.weight"), Slot::Tensor(&mut conv.weight)));
    out.push((format!("{name}.bias"), Slot::Tensor(&mut conv.bias)));
}

fn norm<'a>(out: &mut Vec<(String, Slot<'a>)>, name: &str, norm: &'a mut Norm) {
    out.push((format!("{name}.weight"), Slot::Tensor(&mut norm.weight)));
    out.push((format!("{name}.bias"), Slot::Tensor(&mut norm.bias)));
    out.push((
        format!("{name}.running_mean"),
        Slot::Floats(&mut norm.running.running_mean),
    ));
    out.push((
        format!("{name}.running_var"),
        Slot::Floats(&mut norm.running.running_var),
    ));
    out.push((
        format!("{name}.num_batches_tracked"),
        Slot::Count(&mut norm.running.num_batches_tracked),
    ));
}

impl UNet {
    /// Every parameter and buffer, named and ordered as PyTorch's `state_dict()`.
    pub fn state_mut(&mut self) -> Vec<(String, Slot<'_>)> {
        let mut out = Vec::new();
        for (i, b) in self.down_blocks.iter_mut().enumerate() {
            let p = format!("down_blocks.{i}");
            conv(&mut out, &format!("{p}.conv1"), &mut b.conv1);
            norm(&mut out, &format!("{p}.norm1"), &mut b.norm1);
            conv(&mut out, &format!("{p}.conv2"), &mut b.conv2);
            norm(&mut out, &format!("{p}.norm2"), &mut b.norm2);
        }
        for (i, b) in self.up_blocks.iter_mut().enumerate() {
            let p = format!("up_blocks.{i}");
            conv(&mut out, &format!("{p}.up"), &mut b.up);
            norm(&mut out, &format!("{p}.norm0"), &mut b.norm0);
            conv(&mut out, &format!("{p}.conv1"), &mut b.conv1);
            norm(&mut out, &format!("{p}.norm1"), &mut b.norm1);
            conv(&mut out, &format!("{p}.conv2"), &mut b.conv2);
            norm(&mut out, &format!("{p}.norm2"), &mut b.norm2);
        }
        conv(&mut out, "conv_final", &mut self.conv_final);
        out
    }

    /// The trainable parameters in state_dict order (what an optimizer updates).
    pub fn parameters_mut(&mut self) -> Vec<(String, &mut Tensor)> {
        self.state_mut()
            .into_iter()
            .filter_map(|(name, slot)| match slot {
                Slot::Tensor(t) => Some((name, t)),
                _ => None,
            })
            .collect()
    }

    /// Stores every parameter as `dtype`: f32 (the master weights of training) or f64 (the
    /// CPU reference mode, to compare with float64 references).
    pub fn cast_parameters(&mut self, dtype: DType) {
        for (_, t) in self.parameters_mut() {
            *t = t.to_dtype(dtype);
        }
    }

    /// Names of every state entry, in order.
    pub fn state_names(&self) -> Vec<String> {
        self.clone()
            .state_mut()
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }
}
