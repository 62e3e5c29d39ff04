//! A small autograd tape: operations are recorded as they run and replayed backward in
//! reverse order. Each backward op is a small named type that spells out the tensors it saved
//! (see the `graph.rs` file of each op folder).
//!
//! A tape made with [`Tape::no_grad`] records nothing: inference keeps no saved tensors.

use std::sync::Arc;

use crate::backend::Backend;
use crate::tensor::{Result, Tensor, TensorError};

/// A value on a tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var(usize);

/// The backward half of a recorded operation.
pub trait BackwardOp: Send {
    fn name(&self) -> &'static str;

    /// Gradients of the op's inputs (in the order they were recorded) given the gradient `gy`
    /// of its output; `needed[i]` says whether input i wants one. An input that wants none may
    /// get `None`.
    fn backward(
        &self,
        backend: &dyn Backend,
        gy: &Tensor,
        needed: &[bool],
    ) -> Result<Vec<Option<Tensor>>>;
}

struct Node {
    inputs: Vec<Var>,
    op: Box<dyn BackwardOp>,
}

pub struct Tape {
    backend: Arc<dyn Backend>,
    /// Each value until it is released; the backward ops hold what they saved themselves.
    values: Vec<Option<Arc<Tensor>>>,
    shapes: Vec<Vec<usize>>,
    keep_all: bool,
    nodes: Vec<Option<Node>>,
    requires_grad: Vec<bool>,
    retained: Vec<Var>,
    grad_enabled: bool,
}

/// The gradients of one backward pass, by variable.
pub struct Gradients {
    grads: Vec<Option<Tensor>>,
}

impl Gradients {
    pub fn get(&self, var: Var) -> Option<&Tensor> {
        self.grads.get(var.0).and_then(|g| g.as_ref())
    }

    pub fn take(&mut self, var: Var) -> Option<Tensor> {
        self.grads.get_mut(var.0).and_then(|g| g.take())
    }
}

impl Tape {
    /// A tape that records operations for backward.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Tape {
            backend,
            values: Vec::new(),
            shapes: Vec::new(),
            keep_all: false,
            nodes: Vec::new(),
            requires_grad: Vec::new(),
            retained: Vec::new(),
            grad_enabled: true,
        }
    }

    /// A tape for inference: nothing is recorded and nothing is saved.
    pub fn no_grad(backend: Arc<dyn Backend>) -> Self {
        Tape {
            grad_enabled: false,
            ..Tape::new(backend)
        }
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    pub fn grad_enabled(&self) -> bool {
        self.grad_enabled
    }

    /// A tensor entering the computation; `requires_grad` marks parameters (and inputs whose
    /// gradient is wanted).
    pub fn leaf(&mut self, value: Tensor, requires_grad: bool) -> Var {
        self.push(Arc::new(value), None, requires_grad && self.grad_enabled)
    }

    /// Like [`Tape::leaf`], with the value first put where the backend computes
    /// ([`Backend::place`]): for inputs and weights that several ops read.
    pub fn placed_leaf(&mut self, value: Tensor, requires_grad: bool) -> Result<Var> {
        let value = self.backend.place(value)?;
        Ok(self.leaf(value, requires_grad))
    }

    /// The value of `var`.
    ///
    /// # Panics
    /// When `var` was released: a bug in the code that built the computation.
    pub fn value(&self, var: Var) -> &Tensor {
        self.values[var.0]
            .as_deref()
            .unwrap_or_else(|| panic!("tape variable {} was read after its release", var.0))
    }

    /// The shared handle of a value, for a backward op to save without a copy.
    pub fn shared(&self, var: Var) -> Arc<Tensor> {
        match &self.values[var.0] {
            Some(value) => Arc::clone(value),
            None => panic!("tape variable {} was saved after its release", var.0),
        }
    }

    /// Drops the tape's handle on `var`'s value, which the forward pass will not read again:
    /// its memory is freed unless a backward op saved it. Gradients still flow through it.
    /// A no-op after [`Tape::keep_all`].
    pub fn release(&mut self, var: Var) {
        if !self.keep_all {
            self.values[var.0] = None;
        }
    }

    /// Keeps every value until the tape is dropped, for inspecting intermediate results.
    pub fn keep_all(&mut self) {
        self.keep_all = true;
    }

    pub fn requires_grad(&self, var: Var) -> bool {
        self.requires_grad[var.0]
    }

    /// Whether any of `inputs` wants a gradient, i.e. whether an op on them must be recorded.
    pub fn recording(&self, inputs: &[Var]) -> bool {
        self.grad_enabled && inputs.iter().any(|v| self.requires_grad[v.0])
    }

    /// Adds the output of an op. The backward op is kept only when some input wants a
    /// gradient; `op` is built lazily so that no-grad runs save nothing.
    pub fn record<B: BackwardOp + 'static>(
        &mut self,
        output: Tensor,
        inputs: &[Var],
        op: impl FnOnce() -> B,
    ) -> Var {
        if self.recording(inputs) {
            let node = Node {
                inputs: inputs.to_vec(),
                op: Box::new(op()),
            };
            self.push(Arc::new(output), Some(node), true)
        } else {
            self.push(Arc::new(output), None, false)
        }
    }

    /// Like [`Tape::record`] for an output that is already shared (e.g. saved by its own op).
    pub fn record_shared<B: BackwardOp + 'static>(
        &mut self,
        output: Arc<Tensor>,
        inputs: &[Var],
        op: impl FnOnce() -> B,
    ) -> Var {
        if self.recording(inputs) {
            let node = Node {
                inputs: inputs.to_vec(),
                op: Box::new(op()),
            };
            self.push(output, Some(node), true)
        } else {
            self.push(output, None, false)
        }
    }

    /// Keeps the gradient of an intermediate value (as PyTorch's `retain_grad`); leaves keep
    /// theirs anyway.
    pub fn retain_grad(&mut self, var: Var) {
        self.retained.push(var);
    }

    fn push(&mut self, value: Arc<Tensor>, node: Option<Node>, requires_grad: bool) -> Var {
        self.shapes.push(value.shape().to_vec());
        self.values.push(Some(value));
        self.nodes.push(node);
        self.requires_grad.push(requires_grad);
        Var(self.values.len() - 1)
    }

    /// An error unless `t` has the shape of `var`'s value.
    fn expect_shape(&self, op: &'static str, var: Var, t: &Tensor) -> Result<()> {
        crate::tensor::same_shape(op, &self.shapes[var.0], t.shape())
    }

    /// Backward from `output`, whose gradient is `seed` (e.g. a scalar loss seeded with the
    /// loss scale). Each node's saved tensors are released as soon as it has run, so the tape
    /// can be used for one backward pass only.
    pub fn backward(&mut self, output: Var, seed: Tensor) -> Result<Gradients> {
        if !self.grad_enabled {
            return Err(TensorError::Invalid {
                op: "backward",
                message: "the tape was made with no_grad and recorded nothing".into(),
            });
        }
        self.expect_shape("backward seed", output, &seed)?;

        let mut grads: Vec<Option<Tensor>> = vec![None; self.values.len()];
        grads[output.0] = Some(seed);
        for index in (0..=output.0).rev() {
            let Some(node) = self.nodes[index].take() else {
                continue;
            };
            let Some(gy) = grads[index].take() else {
                continue;
            };
            if self.retained.contains(&Var(index)) {
                grads[index] = Some(gy.clone());
            }
            let needed: Vec<bool> = node
                .inputs
                .iter()
                .map(|v| self.requires_grad[v.0])
                .collect();
            let input_grads = node.op.backward(self.backend.as_ref(), &gy, &needed)?;
            if input_grads.len() != node.inputs.len() {
                return Err(TensorError::Invalid {
                    op: node.op.name(),
                    message: format!(
                        "backward returned {} gradients for {} inputs",
                        input_grads.len(),
                        node.inputs.len()
                    ),
                });
            }

            // Leaves keep their gradient; an op output's gradient is consumed by its node.
            for ((input, grad), wanted) in node.inputs.iter().zip(input_grads).zip(needed) {
                let Some(grad) = grad.filter(|_| wanted) else {
                    continue;
                };
                self.expect_shape(node.op.name(), *input, &grad)?;
                grads[input.0] = Some(match grads[input.0].take() {
                    Some(sum) => self.backend.add(&sum, &grad)?,
                    None => grad,
                });
            }
        }
        Ok(Gradients { grads })
    }
}
