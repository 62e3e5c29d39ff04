//! Speed of the CPU convolutions on the layer sizes of net A (the U-Net with 18 start filters
//! on one 1×1×72×120×120 patch). Throughput is counted in floating-point operations,
//! 2·Cin·Cout·k³ per output voxel (per input voxel for the transposed convolution), so
//! criterion's "elem/s" reads as FLOP/s. All three passes of a layer do the same work.
//!
//! `cargo bench --bench conv_cpu -- 18to18` runs the main case only.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use enamel::ops::conv3d::{cpu as conv, Conv3dShape};
use enamel::ops::conv_transpose3d::{cpu as conv_t, ConvTranspose3dShape};
use std::time::Duration;

fn filled(len: usize, seed: u32) -> Vec<f32> {
    (0..len as u32)
        .map(|i| ((i.wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

fn conv3d(c: &mut Criterion, cin: usize, cout: usize, [d, h, w]: [usize; 3], k: usize) {
    let s = Conv3dShape {
        n: 1,
        cin,
        cout,
        d,
        h,
        w,
        k,
        pad: k / 2,
    };
    s.validate().expect("bench shape");
    let x = filled(s.input_len().unwrap(), 1);
    let weight = filled(s.weight_len().unwrap(), 2);
    let bias = filled(cout, 3);
    let gy = filled(s.output_len().unwrap(), 4);
    let (mut y, mut dx) = (vec![0.0; gy.len()], vec![0.0; x.len()]);
    let (mut dweight, mut dbias) = (vec![0.0; weight.len()], vec![0.0; cout]);

    let mut group = c.benchmark_group(format!("conv3d_k{k}_{cin}to{cout}_{d}x{h}x{w}"));
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(s.forward_flops() as u64));
    group.bench_function("forward", |b| {
        b.iter(|| conv::forward(&s, &x, &weight, Some(&bias), &mut y))
    });
    group.bench_function("backward_input", |b| {
        b.iter(|| conv::backward_input(&s, &gy, &weight, &mut dx))
    });
    group.bench_function("backward_weight", |b| {
        b.iter(|| conv::backward_weight(&s, &x, &gy, &mut dweight, Some(&mut dbias)))
    });
    group.finish();
}

fn conv_transpose3d(c: &mut Criterion, cin: usize, cout: usize, [d, h, w]: [usize; 3]) {
    let s = ConvTranspose3dShape {
        n: 1,
        cin,
        cout,
        d,
        h,
        w,
        k: 2,
        stride: 2,
        pad: 0,
        output_padding: 0,
    };
    s.validate().expect("bench shape");
    let x = filled(s.input_len().unwrap(), 1);
    let weight = filled(s.weight_len().unwrap(), 2);
    let bias = filled(cout, 3);
    let gy = filled(s.output_len().unwrap(), 4);
    let (mut y, mut dx) = (vec![0.0; gy.len()], vec![0.0; x.len()]);
    let (mut dweight, mut dbias) = (vec![0.0; weight.len()], vec![0.0; cout]);

    let mut group = c.benchmark_group(format!("conv_transpose3d_k2s2_{cin}to{cout}_{d}x{h}x{w}"));
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(s.forward_flops() as u64));
    group.bench_function("forward", |b| {
        b.iter(|| conv_t::forward(&s, &x, &weight, Some(&bias), &mut y))
    });
    group.bench_function("backward_input", |b| {
        b.iter(|| conv_t::backward_input(&s, &gy, &weight, &mut dx))
    });
    group.bench_function("backward_weight", |b| {
        b.iter(|| conv_t::backward_weight(&s, &x, &gy, &mut dweight, Some(&mut dbias)))
    });
    group.finish();
}

fn net_a_layers(c: &mut Criterion) {
    conv3d(c, 18, 18, [72, 120, 120], 3);
    conv3d(c, 1, 18, [72, 120, 120], 3);
    conv3d(c, 36, 18, [72, 120, 120], 3);
    conv3d(c, 36, 36, [36, 60, 60], 3);
    conv3d(c, 72, 72, [18, 30, 30], 3);
    conv3d(c, 18, 1, [72, 120, 120], 1);
    conv_transpose3d(c, 72, 36, [18, 30, 30]);
    conv_transpose3d(c, 36, 18, [36, 60, 60]);
}

criterion_group!(benches, net_a_layers);
criterion_main!(benches);
