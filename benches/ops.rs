//! The U-Net's ops one by one, forward and backward, at the shapes they have in net A on a
//! 1×1×72×120×120 patch (level 0: 72×120×120, level 1: 36×60×60, level 2: 18×30×30), and the
//! 9-class Dice at 168×120×120 (net B's whole volume).
//!
//! Each group times `enamel-<device>` and, with `--features libtorch`, `libtorch-<device>`.
//! "backward" is both gradients of an op (input, and weight and bias where it has them).
//! libtorch's backward runs through autograd from `Σ y·gy`, which adds one element-wise pass
//! over the output (small next to a convolution, not next to batch norm or pooling).
//!
//! `cargo bench --bench ops -- conv3d_18to18` runs one group.

mod common;

use std::sync::Arc;

use criterion::{criterion_group, Criterion};
use enamel::backend::{Backend, TransposeGeometry};
use enamel::rng::Rng;
use enamel::Tensor;

use common::{engines, group, random, timed, Engine};

#[cfg(feature = "libtorch")]
#[path = "ops/torch.rs"]
mod torch_ops;

/// libtorch's version of an op, or nothing without the `libtorch` feature.
#[cfg(feature = "libtorch")]
type TorchOp<'a> = &'a dyn torch_ops::TorchOp;
#[cfg(not(feature = "libtorch"))]
type TorchOp = ();

#[cfg(feature = "libtorch")]
macro_rules! torch_op {
    ($op:expr) => {
        &$op
    };
}
#[cfg(not(feature = "libtorch"))]
macro_rules! torch_op {
    ($op:expr) => {
        ()
    };
}

const LEVELS: [[usize; 3]; 3] = [[72, 120, 120], [36, 60, 60], [18, 30, 30]];

fn size_name([d, h, w]: [usize; 3]) -> String {
    format!("{d}x{h}x{w}")
}

/// The inputs of one layer as an engine stores them.
struct Layer {
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    gy: Tensor,
}

impl Layer {
    fn new(x: &[usize], weight: &[usize], y: &[usize], engine: &Engine) -> Self {
        Layer {
            x: engine.input(random(x, 1)),
            weight: engine.input(random(weight, 2)),
            bias: engine.input(random(&weight[..1], 3)),
            gy: engine.input(random(y, 4)),
        }
    }
}

/// One timed pass of an op on a backend, with the op's prepared state.
type Pass<'a, S> = dyn Fn(&dyn Backend, &S) + 'a;

/// Times an op's forward and backward on every engine (and libtorch's).
struct OpBench<'a> {
    name: String,
    flops: Option<[f64; 2]>,
    seconds: u64,
    engines: &'a [Engine],
}

impl OpBench<'_> {
    fn run<S>(
        &self,
        c: &mut Criterion,
        setup: impl Fn(&Engine) -> S,
        forward: impl Fn(&dyn Backend, &S),
        backward: impl Fn(&dyn Backend, &S),
        torch: TorchOp,
    ) {
        let passes: [(&str, &Pass<'_, S>); 2] = [("forward", &forward), ("backward", &backward)];
        for (pass, (label, run)) in passes.into_iter().enumerate() {
            let flops = self.flops.map(|f| f[pass]);
            let mut g = group(c, &format!("{}_{label}", self.name), flops, self.seconds);
            for engine in self.engines {
                let state = setup(engine);
                let backend: &dyn Backend = engine.backend.as_ref();
                run(backend, &state);
                g.bench_function(format!("enamel-{}", engine.device), |b| {
                    timed(b, backend, || run(backend, &state))
                });
            }
            #[cfg(feature = "libtorch")]
            torch_ops::bench(&mut g, torch, pass == 1);
            #[cfg(not(feature = "libtorch"))]
            let () = torch;
            g.finish();
        }
    }
}

fn conv3d(c: &mut Criterion, engines: &[Engine], cin: usize, cout: usize, level: usize) {
    let [d, h, w] = LEVELS[level];
    let flops = 2.0 * (cin * cout * 27 * d * h * w) as f64;
    let x = [1, cin, d, h, w];
    let weight = [cout, cin, 3, 3, 3];
    let y = [1, cout, d, h, w];
    OpBench {
        name: format!("conv3d_{cin}to{cout}_{}", size_name(LEVELS[level])),
        flops: Some([flops, 2.0 * flops]),
        seconds: 3,
        engines,
    }
    .run(
        c,
        |e| Layer::new(&x, &weight, &y, e),
        |be, l| drop(be.conv3d(&l.x, &l.weight, Some(&l.bias), 1).unwrap()),
        |be, l| {
            be.conv3d_backward_input(&l.gy, &l.weight, 1, &x).unwrap();
            be.conv3d_backward_params(&l.x, &l.gy, 1, &weight, true)
                .unwrap();
        },
        torch_op!(torch_ops::Conv::new(&x, &weight, false)),
    );
}

fn conv_transpose3d(c: &mut Criterion, engines: &[Engine], cin: usize, cout: usize, level: usize) {
    let [d, h, w] = LEVELS[level];
    let flops = 2.0 * (cin * cout * 8 * d * h * w) as f64;
    let x = [1, cin, d, h, w];
    let weight = [cin, cout, 2, 2, 2];
    let y = [1, cout, 2 * d, 2 * h, 2 * w];
    let geometry = TransposeGeometry::K2S2;
    OpBench {
        name: format!(
            "conv_transpose3d_{cin}to{cout}_{}",
            size_name(LEVELS[level])
        ),
        flops: Some([flops, 2.0 * flops]),
        seconds: 2,
        engines,
    }
    .run(
        c,
        |e| {
            let mut layer = Layer::new(&x, &weight, &y, e);
            layer.bias = e.input(random(&[cout], 3));
            layer
        },
        |be, l| {
            drop(
                be.conv_transpose3d(&l.x, &l.weight, Some(&l.bias), geometry)
                    .unwrap(),
            )
        },
        |be, l| {
            be.conv_transpose3d_backward_input(&l.gy, &l.weight, geometry, &x)
                .unwrap();
            be.conv_transpose3d_backward_params(&l.x, &l.gy, geometry, &weight, true)
                .unwrap();
        },
        torch_op!(torch_ops::Conv::new(&x, &weight, true)),
    );
}

/// Batch norm (training mode) and max-pool on level 0's 18 channels.
fn level0_elementwise(c: &mut Criterion, engines: &[Engine]) {
    let [d, h, w] = LEVELS[0];
    let x = [1, 18, d, h, w];
    let name = |op: &str| format!("{op}_18ch_{}", size_name(LEVELS[0]));
    let eps = 1e-5;

    let norm = OpBench {
        name: name("batch_norm"),
        flops: None,
        seconds: 2,
        engines,
    };
    norm.run(
        c,
        |e| {
            let x = e.input(random(&x, 1));
            let gamma = random(&[18], 2);
            let beta = random(&[18], 3);
            let (_, stats) = e.backend.batch_norm_train(&x, &gamma, &beta, eps).unwrap();
            let gy = e.input(random(x.shape(), 4));
            (x, gamma, beta, stats, gy)
        },
        |be, (x, gamma, beta, _, _)| drop(be.batch_norm_train(x, gamma, beta, eps).unwrap()),
        |be, (x, gamma, _, stats, gy)| {
            drop(
                be.batch_norm_backward_train(x, gy, gamma, stats, eps)
                    .unwrap(),
            )
        },
        torch_op!(torch_ops::BatchNorm::new(&x)),
    );

    let pool = OpBench {
        name: name("max_pool3d"),
        flops: None,
        seconds: 2,
        engines,
    };
    pool.run(
        c,
        |e| {
            let x = e.input(random(&x, 1));
            let (y, indices) = e.backend.max_pool3d(&x).unwrap();
            let gy = e.input(random(y.shape(), 4));
            (x, indices, gy)
        },
        |be, (x, _, _)| drop(be.max_pool3d(x).unwrap()),
        |be, (x, indices, gy)| drop(be.max_pool3d_backward(gy, indices, x.shape()).unwrap()),
        torch_op!(torch_ops::MaxPool::new(&x)),
    );
}

/// Softmax + 9-class Dice and its gradient at 168×120×120: enamel computes both in one call,
/// so this group has one pass (libtorch: forward and autograd backward).
fn dice(c: &mut Criterion, engines: &[Engine]) {
    let size = [168, 120, 120];
    let logits_shape = [1, 9, size[0], size[1], size[2]];
    let voxels: usize = size.iter().product();
    let mut g = group(c, "dice_9class_168x120x120_forward_backward", None, 3);
    for engine in engines {
        let logits = engine.input(random(&logits_shape, 1));
        let mut rng = Rng::new(5);
        let labels = (0..voxels).map(|_| rng.below(9) as u8).collect();
        let labels = Tensor::from_u8(&[1, size[0], size[1], size[2]], labels).unwrap();
        let labels = engine.backend.place(labels).expect("placing the labels");
        let backend: Arc<dyn Backend> = engine.backend.clone();
        g.bench_function(format!("enamel-{}", engine.device), |b| {
            timed(b, backend.as_ref(), || {
                backend.dice_categorical(&logits, &labels).unwrap()
            })
        });
    }
    #[cfg(feature = "libtorch")]
    torch_ops::bench_dice(&mut g, &logits_shape);
    g.finish();
}

fn all_ops(c: &mut Criterion) {
    let engines = engines();
    conv3d(c, &engines, 1, 18, 0);
    conv3d(c, &engines, 18, 18, 0);
    conv3d(c, &engines, 36, 36, 1);
    conv3d(c, &engines, 72, 72, 2);
    conv_transpose3d(c, &engines, 72, 36, 2);
    conv_transpose3d(c, &engines, 36, 18, 1);
    level0_elementwise(c, &engines);
    dice(c, &engines);
}

criterion_group!(benches, all_ops);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    common::print_summary("ops");
}
