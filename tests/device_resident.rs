//! Device-resident tensors: a network's activations and gradients stay in device memory from
//! op to op (only inputs, parameters and small reductions cross to and from the host), tensors
//! resident on one device are read correctly everywhere else, and the `plan` device measures
//! the device memory of a training step exactly, for the GPU targets of the benchmarks.

use std::sync::Arc;

use enamel::autograd::Tape;
use enamel::backend::device::Device;
use enamel::backend::{Backend, Cpu};
use enamel::nn::{UNet, UNetConfig};
use enamel::ops::dice::dice_binary;
use enamel::perf::workload::{planned_step_memory, trainer};
use enamel::train::{Precision, Stage};
use enamel::{DType, Tensor};

const SMALL: UNetConfig = UNetConfig {
    in_channels: 1,
    out_channels: 1,
    n_blocks: 2,
    start_filters: 4,
};

fn ramp(shape: &[usize], seed: u64) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

/// One forward and backward pass of the small U-Net with a binary Dice loss: the loss and
/// every parameter gradient (read back as f32).
fn training_pass(backend: Arc<dyn Backend>, shape: &[usize], dtype: DType) -> (f64, Vec<f32>, u64) {
    let mut net = UNet::new(SMALL, 5).unwrap();
    let x = Tensor::from_f32_as(shape, ramp(shape, 3), dtype).unwrap();
    let target: Vec<f32> = ramp(shape, 4)
        .iter()
        .map(|&v| (v > 0.6) as u8 as f32)
        .collect();
    let target = Tensor::from_f32_as(shape, target, dtype).unwrap();
    let mut tape = Tape::new(backend);
    let x = tape.placed_leaf(x, false).unwrap();
    let forward = net.forward(&mut tape, x, true, dtype).unwrap();
    let loss = dice_binary(&mut tape, forward.logits, &target).unwrap();
    let loss_value = tape.value(loss).as_f64()[0];
    let mut grads = tape.backward(loss, Tensor::scalar(1.0)).unwrap();
    let (mut flat, mut conv_values) = (Vec::new(), 0);
    for (name, var) in &forward.params {
        let g = grads
            .take(*var)
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        if !name.contains("norm") {
            conv_values += g.numel() as u64;
        }
        flat.extend(g.to_f32_vec());
    }
    (loss_value, flat, conv_values)
}

#[test]
fn a_training_pass_moves_only_inputs_parameters_and_reductions() {
    let shape = [1, 1, 32, 32, 32];
    let dev = Device::emu();
    let (loss, grads, conv_values) = training_pass(Arc::new(dev.clone()), &shape, DType::F32);
    let moved = dev.transfers();

    // The same pass on the CPU reference.
    let (cpu_loss, cpu_grads, _) = training_pass(Arc::new(Cpu::new()), &shape, DType::F32);
    assert!(
        (loss - cpu_loss).abs() < 1e-5,
        "loss {loss} vs cpu {cpu_loss}"
    );
    let scale = cpu_grads.iter().fold(0f32, |m, g| m.max(g.abs()));
    for (i, (g, c)) in grads.iter().zip(&cpu_grads).enumerate() {
        assert!(
            (g - c).abs() <= 1e-3 * scale,
            "gradient {i}: {g} vs cpu {c}"
        );
    }

    // What may cross: the image and the target in, every convolution parameter once (placed
    // on the device; gradients are zeroed there), per-channel coefficients; parameter
    // gradients and per-channel sums out. The smallest activation (level 1: 4 channels of 16³ f32 =
    // 64 KiB, as its gradient and the max-pool indices) is more than the room either bound
    // leaves, so no activation crossed.
    let voxels = shape.iter().product::<usize>() as u64;
    let params = grads.len() as u64;
    let small = 16 * 1024;
    let smallest_activation = 4 * 4 * voxels / 8;
    let to_device_bound = 2 * 4 * voxels + 4 * params + small / 2;
    let to_host_bound = 4 * params + small;
    assert!(to_device_bound - 2 * 4 * voxels < smallest_activation);
    assert!(to_host_bound < smallest_activation);
    assert!(
        moved.to_device <= to_device_bound,
        "{} bytes uploaded, at most {to_device_bound} expected",
        moved.to_device
    );
    assert!(
        moved.to_host <= to_host_bound,
        "{} bytes read back, at most {to_host_bound} expected",
        moved.to_host
    );
    // The convolutions' gradients were read back (batch norm's are computed on the host).
    assert!(
        moved.to_host >= 4 * conv_values,
        "{} bytes read back",
        moved.to_host
    );

    // Every device buffer was released with the tensors that held it.
    assert_eq!(dev.memory_stats().in_use, 0);
}

#[test]
fn resident_tensors_are_read_back_wherever_they_are_used() {
    let (a, b) = (Device::emu(), Device::emu());
    let shape = [1, 2, 3, 4, 5];
    let x = Tensor::from_f32_as(
        &shape,
        ramp(&shape, 9).iter().map(|v| v - 0.5).collect(),
        DType::F16,
    )
    .unwrap();
    let on_a = a.relu(&x).unwrap();
    assert!(a.holds(&on_a) && !b.holds(&on_a));
    assert_eq!(on_a.dtype(), DType::F16);
    assert_eq!(on_a.shape(), shape);

    let want = Cpu::new().relu(&x).unwrap();
    let host = on_a.to_host().unwrap();
    assert!(!a.holds(&host));
    assert_eq!(host, want);
    // Another device uploads it, the CPU reads it, equality reads it back.
    let twice = b.relu(&on_a).unwrap();
    assert!(b.holds(&twice));
    assert_eq!(twice, want);
    assert_eq!(Cpu::new().relu(&on_a).unwrap(), want);
    // Changing a resident tensor's values makes it a host tensor; its clones keep theirs.
    let y = a.relu(&x.to_dtype(DType::F32)).unwrap();
    let before = y.to_host().unwrap();
    let mut changed = y.clone();
    changed.f32_slice_mut().unwrap().fill(7.0);
    assert!(!a.holds(&changed) && a.holds(&y));
    assert_eq!(y, before);
    assert!(changed.as_f32().iter().all(|&v| v == 7.0));

    // A reshaped resident tensor is read under its new shape.
    let flat = on_a.clone().reshape(&[1, 1, 1, 6, 20]).unwrap();
    let want_flat = want.clone().reshape(&[1, 1, 1, 6, 20]).unwrap();
    assert_eq!(a.relu(&flat).unwrap(), Cpu::new().relu(&want_flat).unwrap());
    let w = Tensor::from_f32(&[1, 1, 1, 1, 1], vec![2.0]).unwrap();
    let conv = a.conv3d(&flat.to_dtype(DType::F32), &w, None, 0).unwrap();
    assert_eq!(conv.shape(), [1, 1, 1, 6, 20]);
    let doubled: Vec<f32> = want.as_f32().iter().map(|v| 2.0 * v).collect();
    assert_eq!(conv.as_f32(), doubled);
}

#[test]
fn the_plan_device_allocates_as_the_emulator_does() {
    let shape = [1, 1, 16, 16, 16];
    let emu = Device::emu();
    training_pass(Arc::new(emu.clone()), &shape, DType::F16);
    let plan = Device::plan(None);
    training_pass(Arc::new(plan.clone()), &shape, DType::F16);
    let (e, p) = (emu.memory_stats(), plan.memory_stats());
    assert!(e.peak > 0);
    assert_eq!((p.peak, p.in_use, p.cached), (e.peak, e.in_use, e.cached));
    assert_eq!(plan.transfers(), emu.transfers());

    // And a training step of net B (softmax, 9-class Dice) through the trainer.
    let stats = |device: &Device| {
        let backend = Arc::new(device.clone());
        let (mut trainer, samples) =
            trainer(Stage::Categories, [8, 16, 16], Precision::Mixed, backend).unwrap();
        trainer.train_step(&samples).unwrap();
        (device.memory_stats(), device.transfers())
    };
    let (emu, plan) = (Device::emu(), Device::plan(None));
    assert_eq!(stats(&plan), stats(&emu));
}

/// The GPU memory targets of the benchmarks, measured on the plan device: a mixed-precision
/// training step of net A on a 72×120×120 patch within 0.8 GB of device memory, and on a whole
/// 168×120×120 volume within a GTX 1060's 6 GiB.
#[test]
fn net_a_training_fits_the_device_memory_targets() {
    let gib = 1usize << 30;
    for (patch, limit) in [
        ([72, 120, 120], 800_000_000),
        ([168, 120, 120], 6 * gib as u64),
    ] {
        let peak = planned_step_memory(Stage::Binary, patch, Some(6 * gib)).unwrap();
        eprintln!("net A step on {patch:?}: peak device memory {peak} bytes");
        assert!(peak <= limit, "{patch:?}: peak {peak} bytes over {limit}");
        // More than the f16 values at full resolution that backward needs: the input and ten
        // 18-channel tensors (relu outputs for batch norm, batch-norm outputs for the next
        // convolution, the 36-channel concatenation).
        let voxels = (patch[0] * patch[1] * patch[2]) as u64;
        let floor = 2 * voxels * (1 + 10 * 18);
        assert!(
            peak > floor,
            "{patch:?}: a peak of {peak} bytes is below {floor}"
        );
    }
}

#[test]
fn a_budget_too_small_for_the_step_is_a_clear_error() {
    let err = planned_step_memory(Stage::Binary, [72, 120, 120], Some(64 << 20)).unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("budget of 67108864 bytes"), "{err}");
    assert!(err.contains("--mem-limit"), "{err}");
}

#[test]
fn timing_marks_measure_the_work_between_them() {
    use enamel::backend::Mark;
    let dev = Device::emu();
    let shape = [1, 4, 8, 16, 16];
    let x = dev
        .place(Tensor::from_f32(&shape, ramp(&shape, 2)).unwrap())
        .unwrap();
    let start = dev.mark().unwrap();
    let clock = std::time::Instant::now();
    for _ in 0..20 {
        drop(dev.relu(&x).unwrap());
    }
    let host = clock.elapsed().as_secs_f64();
    let seconds = dev.seconds_since(&start).unwrap();
    // The emulator finishes each launch before returning, so its clock spans the same work.
    assert!(
        seconds > 0.0 && seconds >= 0.5 * host,
        "{seconds} s vs {host} s on the host"
    );
    assert!(
        Cpu::new().seconds_since(&start).is_ok(),
        "host marks are read by any backend"
    );
    let foreign = Mark::Device(Box::new(0u8));
    let err = dev.seconds_since(&foreign).unwrap_err().to_string();
    assert!(err.contains("marks of another device"), "{err}");
    assert!(Cpu::new().seconds_since(&foreign).is_err());
}
