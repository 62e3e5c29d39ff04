//! One full training step (forward, Dice loss, backward) of the reference networks on the
//! `cpu` backend, at the reference pipeline's shapes. Throughput is reported from the counted
//! FLOPs of the convolutions (see BENCHMARKS.md).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use enamel::autograd::Tape;
use enamel::backend::Cpu;
use enamel::nn::{UNet, UNetConfig};
use enamel::ops::dice::dice_binary;
use enamel::{DType, Tensor};

fn patch(shape: [usize; 5], seed: u64) -> Tensor {
    let mut rng = enamel::rng::Rng::new(seed);
    let n: usize = shape.iter().product();
    Tensor::from_f32(&shape, (0..n).map(|_| rng.uniform() as f32).collect()).unwrap()
}

fn train_step(c: &mut Criterion) {
    let shape = match std::env::var("ENAMEL_BENCH_PATCH").ok().as_deref() {
        Some("small") => [1, 1, 24, 48, 48],
        _ => [1, 1, 72, 120, 120],
    };
    let backend = Arc::new(Cpu::new());
    let mut net = UNet::new(UNetConfig::BINARY, 1).unwrap();
    let x = patch(shape, 2);
    let target = patch(shape, 3).to_dtype(DType::F32);
    let target = Tensor::from_f32(
        &shape,
        target
            .as_f32()
            .iter()
            .map(|&v| if v > 0.7 { 1.0 } else { 0.0 })
            .collect(),
    )
    .unwrap();

    let mut group = c.benchmark_group("train_step_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Elements(shape.iter().product::<usize>() as u64));
    group.bench_function(
        format!("net_A_{}x{}x{}", shape[2], shape[3], shape[4]),
        |b| {
            b.iter(|| {
                let mut tape = Tape::new(backend.clone());
                let xv = tape.leaf(x.clone(), false);
                let fwd = net.forward(&mut tape, xv, true, DType::F32).unwrap();
                let loss = dice_binary(&mut tape, fwd.logits, &target).unwrap();
                tape.backward(loss, Tensor::scalar(1.0)).unwrap()
            })
        },
    );
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
