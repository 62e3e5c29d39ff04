//! Whole workloads at the reference pipeline's shapes: one training step (forward, Dice,
//! backward, RMSprop) of net A on 1×1×72×120×120 and of net B on 1×1×168×120×120, and the
//! cascade's inference on a 168×120×120 volume (net A in 72×120×120 windows with half
//! overlap, then net B on the whole volume). Throughput is the counted convolution FLOPs
//! (`enamel::perf`).
//!
//! Each group times `enamel-<device>` and, with `--features libtorch`, `libtorch-<device>`
//! (same network, same loss, RMSprop; f32 on the cpu, f16 autocast on a GPU).
//! `ENAMEL_BENCH_PATCH=small` shrinks every shape (A 24×48×48, B and the volume 48×48×48) for
//! a quick check.

mod common;

use criterion::{criterion_group, Criterion};
use enamel::perf::workload::{self, random_image, Cascade};
use enamel::train::{Precision, Stage};

use common::{engines, group, timed};

#[cfg(feature = "libtorch")]
#[path = "train_step/torch.rs"]
mod torch_workloads;

/// D,H,W of net A's patch, net B's patch and the cascade's volume.
fn sizes() -> [[usize; 3]; 3] {
    match std::env::var("ENAMEL_BENCH_PATCH").ok().as_deref() {
        Some("small") => [[24, 48, 48], [48, 48, 48], [48, 48, 48]],
        _ => [[72, 120, 120], [168, 120, 120], [168, 120, 120]],
    }
}

fn name(prefix: &str, [d, h, w]: [usize; 3]) -> String {
    format!("{prefix}_{d}x{h}x{w}")
}

fn training_steps(c: &mut Criterion) {
    let [patch_a, patch_b, _] = sizes();
    for (stage, patch, label) in [
        (Stage::Binary, patch_a, "train_step_net_A"),
        (Stage::Categories, patch_b, "train_step_net_B"),
    ] {
        let flops = workload::training_step_flops(stage, patch);
        let mut g = group(c, &name(label, patch), Some(flops), 30);
        for engine in engines() {
            let precision = if engine.dtype == enamel::DType::F16 {
                Precision::Mixed
            } else {
                Precision::F32
            };
            let (mut trainer, samples) =
                workload::trainer(stage, patch, precision, engine.backend.clone())
                    .expect("benchmark trainer");
            trainer.train_step(&samples).expect("warm-up step");
            g.bench_function(format!("enamel-{}", engine.device), |b| {
                let backend = engine.backend.clone();
                timed(b, backend.as_ref(), || {
                    trainer.train_step(&samples).expect("training step")
                })
            });
        }
        #[cfg(feature = "libtorch")]
        torch_workloads::training_step(&mut g, &stage.default_net(), patch);
        g.finish();
    }
}

fn cascade_inference(c: &mut Criterion) {
    let [patch_a, patch_b, volume] = sizes();
    let mut cascade = Cascade::new(patch_a, patch_b).expect("cascade networks");
    let image = random_image(volume, 13);
    let mut g = group(
        c,
        &name("cascade_inference", volume),
        Some(cascade.flops(volume)),
        30,
    );
    for engine in engines() {
        cascade
            .segment(&image, &engine.backend, engine.dtype)
            .expect("warm-up cascade");
        g.bench_function(format!("enamel-{}", engine.device), |b| {
            timed(b, engine.backend.as_ref(), || {
                cascade
                    .segment(&image, &engine.backend, engine.dtype)
                    .expect("cascade")
            })
        });
    }
    #[cfg(feature = "libtorch")]
    torch_workloads::cascade(&mut g, &cascade, &image, volume);
    g.finish();
}

criterion_group!(benches, training_steps, cascade_inference);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    common::print_summary("train_step");
}
