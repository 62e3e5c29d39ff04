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

/// One layer's passes, each with its slices: x, weight, bias, y for the forward; gy, weight,
/// dx for the input gradient; x, gy, dweight, dbias for the weight gradient.
struct Passes<F, I, W> {
    forward: F,
    backward_input: I,
    backward_weight: W,
}

/// The passes of the CPU module `$cpu` (conv3d or conv_transpose3d) on the shape `$s`.
macro_rules! passes {
    ($cpu:ident, $s:expr) => {
        Passes {
            forward: |x: &[f32], wt: &[f32], b: &[f32], y: &mut [f32]| {
                $cpu::forward($s, x, wt, Some(b), y)
            },
            backward_input: |gy: &[f32], wt: &[f32], dx: &mut [f32]| {
                $cpu::backward_input($s, gy, wt, dx)
            },
            backward_weight: |x: &[f32], gy: &[f32], dw: &mut [f32], db: &mut [f32]| {
                $cpu::backward_weight($s, x, gy, dw, Some(db))
            },
        }
    };
}

/// Times the three passes of a layer with `lens` = [x, weight, bias, y] values.
fn bench_layer<F, I, W>(
    c: &mut Criterion,
    group: String,
    flops: f64,
    lens: [usize; 4],
    seconds: u64,
    passes: Passes<F, I, W>,
) where
    F: Fn(&[f32], &[f32], &[f32], &mut [f32]),
    I: Fn(&[f32], &[f32], &mut [f32]),
    W: Fn(&[f32], &[f32], &mut [f32], &mut [f32]),
{
    let [x_len, weight_len, cout, y_len] = lens;
    let x = filled(x_len, 1);
    let weight = filled(weight_len, 2);
    let bias = filled(cout, 3);
    let gy = filled(y_len, 4);
    let (mut y, mut dx) = (vec![0.0; gy.len()], vec![0.0; x.len()]);
    let (mut dweight, mut dbias) = (vec![0.0; weight.len()], vec![0.0; cout]);

    let mut group = c.benchmark_group(group);
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(seconds));
    group.throughput(Throughput::Elements(flops as u64));
    group.bench_function("forward", |b| {
        b.iter(|| (passes.forward)(&x, &weight, &bias, &mut y))
    });
    group.bench_function("backward_input", |b| {
        b.iter(|| (passes.backward_input)(&gy, &weight, &mut dx))
    });
    group.bench_function("backward_weight", |b| {
        b.iter(|| (passes.backward_weight)(&x, &gy, &mut dweight, &mut dbias))
    });
    group.finish();
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
    let lens = [s.input_len(), s.weight_len(), Some(cout), s.output_len()].map(Option::unwrap);
    let group = format!("conv3d_k{k}_{cin}to{cout}_{d}x{h}x{w}");
    bench_layer(c, group, s.forward_flops(), lens, 4, passes!(conv, &s));
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
    let lens = [s.input_len(), s.weight_len(), Some(cout), s.output_len()].map(Option::unwrap);
    let group = format!("conv_transpose3d_k2s2_{cin}to{cout}_{d}x{h}x{w}");
    bench_layer(c, group, s.forward_flops(), lens, 3, passes!(conv_t, &s));
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
