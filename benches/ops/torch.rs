//! libtorch's side of the op benches: each op prepared on a device, then timed forward or
//! backward (autograd from `Σ y·gy`, see `common::torch::dot`).

use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
use tch::{Kind, Tensor};

use crate::common::torch::{backward, devices, dice_categorical, dot, random, TorchDevice};

/// An op that can set itself up on a device and return one timed pass.
pub trait TorchOp {
    /// The pass: forward alone, or (when `backward`) the gradients of all inputs.
    fn prepare(&self, device: TorchDevice, backward: bool) -> Box<dyn Fn()>;
}

/// Storage on a device: f32 on the cpu, f16 on a GPU (what autocast gives a convolution).
fn kind(device: TorchDevice) -> Kind {
    if device.device.is_cuda() {
        Kind::Half
    } else {
        Kind::Float
    }
}

fn input(shape: &[usize], seed: i64, device: TorchDevice, grad: bool) -> Tensor {
    random(shape, seed, device.device)
        .to_kind(kind(device))
        .set_requires_grad(grad)
}

/// Forward alone, or backward through the op from a fixed output gradient.
fn pass(
    device: TorchDevice,
    want_backward: bool,
    inputs: Vec<Tensor>,
    forward: impl Fn(&[Tensor]) -> Tensor + 'static,
) -> Box<dyn Fn()> {
    if !want_backward {
        return Box::new(move || drop(forward(&inputs)));
    }
    let y = forward(&inputs);
    let gy = random(
        &y.size().iter().map(|&s| s as usize).collect::<Vec<_>>(),
        9,
        device.device,
    )
    .to_kind(y.kind());
    let d = dot(&y, &gy);
    Box::new(move || {
        let refs: Vec<&Tensor> = inputs.iter().collect();
        drop(backward(&d, &refs));
    })
}

/// Conv3d (k3, pad 1) or ConvTranspose3d (k2, stride 2) with bias.
pub struct Conv {
    x: Vec<usize>,
    weight: Vec<usize>,
    transposed: bool,
}

impl Conv {
    pub fn new(x: &[usize], weight: &[usize], transposed: bool) -> Self {
        Conv {
            x: x.to_vec(),
            weight: weight.to_vec(),
            transposed,
        }
    }
}

impl TorchOp for Conv {
    fn prepare(&self, device: TorchDevice, want_backward: bool) -> Box<dyn Fn()> {
        let cout = if self.transposed {
            self.weight[1]
        } else {
            self.weight[0]
        };
        let inputs = vec![
            input(&self.x, 1, device, want_backward),
            input(&self.weight, 2, device, want_backward),
            input(&[cout], 3, device, want_backward),
        ];
        let transposed = self.transposed;
        pass(device, want_backward, inputs, move |t| {
            if transposed {
                t[0].conv_transpose3d(&t[1], Some(&t[2]), [2; 3], [0; 3], [0; 3], 1, [1; 3])
            } else {
                t[0].conv3d(&t[1], Some(&t[2]), [1; 3], [1; 3], [1; 3], 1)
            }
        })
    }
}

/// Training-mode batch norm over the channels of `x` (gamma, beta f32 as in autocast).
pub struct BatchNorm {
    x: Vec<usize>,
}

impl BatchNorm {
    pub fn new(x: &[usize]) -> Self {
        BatchNorm { x: x.to_vec() }
    }
}

impl TorchOp for BatchNorm {
    fn prepare(&self, device: TorchDevice, want_backward: bool) -> Box<dyn Fn()> {
        let channels = [self.x[1]];
        let param = |seed| random(&channels, seed, device.device).set_requires_grad(want_backward);
        let inputs = vec![input(&self.x, 1, device, want_backward), param(2), param(3)];
        pass(device, want_backward, inputs, |t| {
            t[0].batch_norm(
                Some(&t[1]),
                Some(&t[2]),
                None::<&Tensor>,
                None::<&Tensor>,
                true,
                0.1,
                1e-5,
                true,
            )
        })
    }
}

/// Max-pool, kernel 2, stride 2, with indices kept for the backward (as enamel does).
pub struct MaxPool {
    x: Vec<usize>,
}

impl MaxPool {
    pub fn new(x: &[usize]) -> Self {
        MaxPool { x: x.to_vec() }
    }
}

impl TorchOp for MaxPool {
    fn prepare(&self, device: TorchDevice, want_backward: bool) -> Box<dyn Fn()> {
        let inputs = vec![input(&self.x, 1, device, want_backward)];
        pass(device, want_backward, inputs, |t| {
            t[0].max_pool3d_with_indices([2; 3], [2; 3], [0; 3], [1; 3], false)
                .0
        })
    }
}

/// Adds `libtorch-<device>` to the group for each device libtorch has.
pub fn bench(group: &mut BenchmarkGroup<WallTime>, op: &dyn TorchOp, want_backward: bool) {
    for device in devices() {
        let run = op.prepare(device, want_backward);
        run();
        device.sync();
        group.bench_function(format!("libtorch-{}", device.label), |b| {
            b.iter(|| {
                run();
                device.sync();
            })
        });
    }
}

/// Softmax + 9-class Dice forward and backward on random logits and labels.
pub fn bench_dice(group: &mut BenchmarkGroup<WallTime>, logits_shape: &[usize]) {
    for device in devices() {
        let logits = input(logits_shape, 1, device, true);
        let label_shape = [
            logits_shape[0],
            logits_shape[2],
            logits_shape[3],
            logits_shape[4],
        ];
        let labels = ((random(&label_shape, 5, device.device) + 1.0) * 4.5)
            .floor()
            .clamp(0.0, 8.0)
            .to_kind(Kind::Int64);
        group.bench_function(format!("libtorch-{}", device.label), |b| {
            b.iter(|| {
                let loss = dice_categorical(&logits, &labels);
                drop(Tensor::run_backward(&[&loss], &[&logits], false, false));
                device.sync();
            })
        });
    }
}
