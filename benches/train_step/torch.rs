//! libtorch's side of the workload benches: the training steps and the cascade, with the
//! networks built by `common::torch`.

use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
use tch::{Kind, Tensor};

use enamel::infer::{gaussian_weights, window_starts};
use enamel::nn::{UNet, UNetConfig};
use enamel::perf::workload::{Cascade, OVERLAP};
use enamel::preprocess::Array3;

use crate::common::torch::{devices, predict, TorchDevice, TorchTrainer, TorchUNet};

/// Panics when the tch network's trainable parameters differ from enamel's: the baseline must
/// be the same network.
fn check_same_network(config: &UNetConfig, torch: &TorchUNet) {
    let ours = UNet::new(*config, 1).expect("network").parameter_count();
    let theirs = torch.parameter_count();
    assert_eq!(
        ours, theirs,
        "libtorch network differs from enamel's for {config:?}"
    );
}

/// One training step on each libtorch device.
pub fn training_step(group: &mut BenchmarkGroup<WallTime>, config: &UNetConfig, patch: [usize; 3]) {
    for device in devices() {
        let mut trainer = TorchTrainer::new(config, device, patch);
        check_same_network(config, &trainer.net);
        for _ in 0..5 {
            trainer.step();
        }
        group.bench_function(format!("libtorch-{}", device.label), |b| {
            b.iter(|| trainer.step())
        });
    }
}

/// Per-class probabilities of `net` over `image` (1,1,D,H,W), window by window, blended with
/// the same Gaussian weights as enamel's sliding window.
fn sliding_window(
    net: &TorchUNet,
    device: TorchDevice,
    image: &Tensor,
    patch: [usize; 3],
) -> Tensor {
    let size: Vec<i64> = image.size();
    let [d, h, w] = [size[2], size[3], size[4]].map(|s| s as usize);
    let weights = Tensor::from_slice(&gaussian_weights(patch))
        .reshape([1, 1, patch[0] as i64, patch[1] as i64, patch[2] as i64])
        .to_device(device.device);
    let mut sums: Option<Tensor> = None;
    let weight_sum = Tensor::zeros(
        [1, 1, d as i64, h as i64, w as i64],
        (Kind::Float, device.device),
    );
    for k0 in window_starts(d, patch[0], OVERLAP) {
        for j0 in window_starts(h, patch[1], OVERLAP) {
            for i0 in window_starts(w, patch[2], OVERLAP) {
                let at = |t: &Tensor| {
                    t.narrow(2, k0 as i64, patch[0] as i64)
                        .narrow(3, j0 as i64, patch[1] as i64)
                        .narrow(4, i0 as i64, patch[2] as i64)
                };
                let probs = predict(net, device, &at(image).contiguous());
                let total = sums.get_or_insert_with(|| {
                    Tensor::zeros(
                        [1, probs.size()[1], d as i64, h as i64, w as i64],
                        (Kind::Float, device.device),
                    )
                });
                let mut region = at(total);
                region += probs * &weights;
                let mut region = at(&weight_sum);
                region += &weights;
            }
        }
    }
    sums.expect("at least one window") / weight_sum
}

/// The cascade on each libtorch device: net A's teeth mask times net B's categories.
pub fn cascade(
    group: &mut BenchmarkGroup<WallTime>,
    cascade: &Cascade,
    image: &Array3,
    volume: [usize; 3],
) {
    let [d, h, w] = volume.map(|s| s as i64);
    for device in devices() {
        let net_a = TorchUNet::new(&cascade.net_a.config, device.device);
        let net_b = TorchUNet::new(&cascade.net_b.config, device.device);
        check_same_network(&cascade.net_a.config, &net_a);
        check_same_network(&cascade.net_b.config, &net_b);
        let x = Tensor::from_slice(&image.data)
            .reshape([1, 1, d, h, w])
            .to_device(device.device);
        let run = || {
            let teeth = sliding_window(&net_a, device, &x, cascade.patch_a).gt(0.5);
            let categories = sliding_window(&net_b, device, &x, cascade.patch_b).argmax(1, true);
            let out = categories * teeth;
            device.sync();
            out
        };
        drop(run());
        group.bench_function(format!("libtorch-{}", device.label), |b| b.iter(run));
    }
}
