//! The CPU emulator's shim, through the launch layer: every shim feature against known answers
//! (kernels in kernels/emu/tests/), and the faults the emulator exists to catch.

use enamel::launch::emu::{EmuBuffer, EmuLauncher};
use enamel::launch::{KernelArgs, KernelLauncher, LaunchConfig, LaunchError};
use half::f16;

fn launch(kernel: &str, config: LaunchConfig, args: KernelArgs) -> Result<(), LaunchError> {
    // SAFETY: every test passes pointers of live EmuBuffers sized for what the kernel touches.
    unsafe { EmuLauncher::new().launch(kernel, &config, &args) }
}

fn config(grid: [u32; 3], block: [u32; 3]) -> LaunchConfig {
    LaunchConfig {
        grid,
        block,
        shared_bytes: 0,
    }
}

/// Deterministic small integers in `-range..=range`.
fn small_ints(count: usize, range: i32, seed: u64) -> Vec<i32> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % (2 * range as u64 + 1)) as i32 - range
        })
        .collect()
}

fn buffer<T: bytemuck::Pod>(values: &[T]) -> EmuBuffer {
    EmuBuffer::from_host(values).unwrap()
}

fn fault_message(result: Result<(), LaunchError>) -> String {
    match result {
        Err(LaunchError::KernelFault { message, .. }) => message,
        other => panic!("expected a kernel fault, got {other:?}"),
    }
}

#[test]
fn block_sum_is_right_and_its_twin_without_the_barrier_is_wrong() {
    // Distinct positive integers: every sum below is exact in f32.
    let x: Vec<f32> = (1..=3 * 256).map(|v| v as f32).collect();
    let sums = |kernel: &str| {
        let input = buffer(&x);
        let out = EmuBuffer::alloc(3 * 4).unwrap();
        let args = KernelArgs::new()
            .ptr(input.device_ptr())
            .ptr(out.device_ptr())
            .i32(x.len() as i32);
        launch(kernel, config([3, 1, 1], [256, 1, 1]), args).unwrap();
        out.to_vec::<f32>().unwrap()
    };

    let expected: Vec<f32> = x.chunks(256).map(|c| c.iter().sum()).collect();
    assert_eq!(sums("emu_test_block_sum"), expected);

    // Without the barrier thread 0 walks the whole tree first and adds only the untouched
    // inputs at offsets 128, 64, ..., 1 of its block.
    let racy = sums("emu_test_block_sum_racy");
    for (block, chunk) in x.chunks(256).enumerate() {
        let thread0_path: f32 = [0, 128, 64, 32, 16, 8, 4, 2, 1]
            .iter()
            .map(|&o| chunk[o])
            .sum();
        assert_eq!(racy[block], thread0_path);
        assert_ne!(racy[block], expected[block]);
    }
}

#[test]
fn warp_shuffles_give_sums_scans_and_broadcasts() {
    let x = small_ints(4 * 64, 50, 1);
    let input = buffer(&x);
    let out = EmuBuffer::alloc(x.len() * 7 * 4).unwrap();
    let args = KernelArgs::new()
        .ptr(input.device_ptr())
        .ptr(out.device_ptr());
    launch("emu_test_warp_ops", config([4, 1, 1], [64, 1, 1]), args).unwrap();
    let out = out.to_vec::<i32>().unwrap();

    for (w, warp) in x.chunks(32).enumerate() {
        let total: i32 = warp.iter().sum();
        for lane in 0..32 {
            let got = &out[7 * (32 * w + lane)..][..7];
            assert_eq!(got[0], total, "butterfly sum, warp {w} lane {lane}");
            if lane == 0 {
                assert_eq!(got[1], total, "shift-down sum, warp {w}");
            }
            assert_eq!(
                got[2],
                warp[..=lane].iter().sum::<i32>(),
                "scan, lane {lane}"
            );
            assert_eq!(got[3], warp[7], "broadcast, lane {lane}");
            let segment = lane / 8 * 8;
            assert_eq!(
                got[4],
                warp[segment..segment + 8].iter().sum::<i32>(),
                "segment"
            );
            let source = if lane == 31 { 31 } else { lane + 1 };
            assert_eq!(f32::from_bits(got[5] as u32), 0.5 * warp[source] as f32);
            let half = lane / 16 * 16;
            assert_eq!(
                got[6],
                warp[half..half + 16].iter().sum::<i32>(),
                "half-warp sum"
            );
        }
    }
}

#[test]
fn ballots_cover_a_partial_last_warp() {
    let mut x = small_ints(48, 3, 2);
    x[40] = 9;
    let input = buffer(&x);
    let out = EmuBuffer::alloc(48 * 3 * 4).unwrap();
    let args = KernelArgs::new()
        .ptr(input.device_ptr())
        .ptr(out.device_ptr());
    launch("emu_test_ballot", config([1, 1, 1], [48, 1, 1]), args).unwrap();
    let out = out.to_vec::<u32>().unwrap();

    for (w, warp) in x.chunks(32).enumerate() {
        let ballot = warp
            .iter()
            .enumerate()
            .fold(0u32, |bits, (lane, &v)| bits | (u32::from(v > 0) << lane));
        let any = u32::from(warp.iter().any(|&v| v > 5));
        let all = u32::from(warp.iter().all(|&v| v >= 0));
        for lane in 0..warp.len() {
            let t = 32 * w + lane;
            assert_eq!(
                out[3 * t..3 * t + 3],
                [ballot, any, all],
                "warp {w} lane {lane}"
            );
        }
    }
    assert_eq!(
        out[3 * 40 + 1],
        1,
        "x[40] = 9 makes any(x > 5) true in the partial warp"
    );
}

#[test]
fn atomics_from_many_blocks_add_up() {
    let n = 5000;
    let x = small_ints(n, 100, 3);
    let input = buffer(&x);
    let float_sum = buffer(&[0.0f32]);
    let double_sum = buffer(&[0.0f64]);
    let int_sum = buffer(&[0i32]);
    let count = buffer(&[0u32]);
    let largest = buffer(&[i32::MIN]);
    let smallest = buffer(&[i32::MAX]);
    let cas_count = buffer(&[0u32]);
    let args = KernelArgs::new()
        .ptr(input.device_ptr())
        .i32(n as i32)
        .ptr(float_sum.device_ptr())
        .ptr(double_sum.device_ptr())
        .ptr(int_sum.device_ptr())
        .ptr(count.device_ptr())
        .ptr(largest.device_ptr())
        .ptr(smallest.device_ptr())
        .ptr(cas_count.device_ptr());
    launch("emu_test_atomics", LaunchConfig::for_elements(n, 128), args).unwrap();

    let total: i32 = x.iter().sum();
    assert_eq!(float_sum.to_vec::<f32>().unwrap(), [total as f32]);
    assert_eq!(double_sum.to_vec::<f64>().unwrap(), [f64::from(total)]);
    assert_eq!(int_sum.to_vec::<i32>().unwrap(), [total]);
    assert_eq!(count.to_vec::<u32>().unwrap(), [n as u32]);
    assert_eq!(largest.to_vec::<i32>().unwrap(), [*x.iter().max().unwrap()]);
    assert_eq!(
        smallest.to_vec::<i32>().unwrap(),
        [*x.iter().min().unwrap()]
    );
    assert_eq!(cas_count.to_vec::<u32>().unwrap(), [n as u32]);
}

#[test]
fn dynamic_shared_memory_reverses_slices_and_starts_as_nan() {
    let (n, block) = (1000usize, 64usize);
    let x: Vec<f32> = (0..n).map(|v| v as f32 * 0.25).collect();
    let input = buffer(&x);
    let out = EmuBuffer::alloc(n * 4).unwrap();
    let args = KernelArgs::new()
        .ptr(input.device_ptr())
        .ptr(out.device_ptr())
        .i32(n as i32);
    let reverse = LaunchConfig::for_elements(n, block as u32).with_shared_bytes(block as u32 * 4);
    launch("emu_test_reverse_dynamic", reverse, args).unwrap();
    let out = out.to_vec::<f32>().unwrap();
    for (i, &got) in out.iter().enumerate() {
        let mirror = i / block * block + (block - 1 - i % block);
        let expected = if mirror < n { x[mirror] } else { 0.0 };
        assert_eq!(got, expected, "element {i}");
    }

    // Every block, not only the first on each worker, starts from the 0xFF fill.
    let seen = EmuBuffer::alloc(8 * 32 * 4).unwrap();
    let start = config([8, 1, 1], [32, 1, 1]).with_shared_bytes(32 * 4);
    launch(
        "emu_test_dynamic_start",
        start,
        KernelArgs::new().ptr(seen.device_ptr()),
    )
    .unwrap();
    let bits = seen.to_vec::<u32>().unwrap();
    assert!(bits.iter().all(|&b| b == u32::MAX), "{bits:x?}");
    assert!(f32::from_bits(bits[0]).is_nan() && f16::from_bits(bits[0] as u16).is_nan());
}

fn check_grid(extent: [u32; 3], block: [u32; 3]) {
    let [nx, ny, nz] = extent;
    let voxels = (nx * ny * nz) as usize;
    let coords = EmuBuffer::alloc((voxels + 1) * 4).unwrap();
    let visits = buffer(&vec![0u32; voxels]);
    let grid = [0, 1, 2].map(|d| extent[d].div_ceil(block[d]));
    let args = KernelArgs::new()
        .ptr(coords.device_ptr())
        .ptr(visits.device_ptr())
        .i32(nx as i32)
        .i32(ny as i32)
        .i32(nz as i32);
    launch("emu_test_grid3d", config(grid, block), args).unwrap();

    let coords = coords.to_vec::<u32>().unwrap();
    assert!(visits.to_vec::<u32>().unwrap().iter().all(|&v| v == 1));
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let voxel = ((z * ny + y) * nx + x) as usize;
                assert_eq!(coords[voxel], x + 1000 * y + 1_000_000 * z);
            }
        }
    }
    assert_eq!(coords[voxels], grid[0] + 100 * grid[1] + 10000 * grid[2]);
}

#[test]
fn two_and_three_dimensional_grids_visit_every_cell_once() {
    check_grid([37, 23, 1], [8, 4, 1]);
    check_grid([13, 7, 9], [4, 2, 4]);
}

#[test]
fn tiled_matmul_matches_a_reference() {
    let (m, k, n) = (67usize, 45usize, 33usize);
    let a: Vec<f32> = small_ints(m * k, 9, 4)
        .iter()
        .map(|&v| v as f32 * 0.125)
        .collect();
    let b: Vec<f32> = small_ints(k * n, 9, 5)
        .iter()
        .map(|&v| v as f32 * 0.5)
        .collect();
    let (a_dev, b_dev) = (buffer(&a), buffer(&b));
    let c_dev = EmuBuffer::alloc(m * n * 4).unwrap();
    let args = KernelArgs::new()
        .ptr(a_dev.device_ptr())
        .ptr(b_dev.device_ptr())
        .ptr(c_dev.device_ptr())
        .i32(m as i32)
        .i32(n as i32)
        .i32(k as i32);
    let grid = [n.div_ceil(16) as u32, m.div_ceil(16) as u32, 1];
    launch("emu_test_matmul", config(grid, [16, 16, 1]), args).unwrap();

    let c = c_dev.to_vec::<f32>().unwrap();
    for row in 0..m {
        for col in 0..n {
            let reference: f64 = (0..k)
                .map(|i| f64::from(a[row * k + i]) * f64::from(b[i * n + col]))
                .sum();
            let got = f64::from(c[row * n + col]);
            assert!(
                (got - reference).abs() <= 1e-5 * (1.0 + reference.abs()),
                "c[{row}][{col}]"
            );
        }
    }
}

#[test]
fn half_conversions_match_the_half_crate() {
    let halves: Vec<u16> = (0..=u16::MAX).collect();
    let mut floats: Vec<f32> = small_ints(halves.len() - 8, 1 << 20, 6)
        .iter()
        .map(|&v| v as f32 * 1.7e-4)
        .collect();
    // Ties between two f16 values (round to even), overflow, subnormals, NaN.
    floats.extend([
        1.0 + 1.0 / 2048.0,
        1.0 + 3.0 / 2048.0,
        65520.0,
        65519.0,
        1e-7,
        -3e-8,
    ]);
    floats.extend([f32::NAN, f32::INFINITY]);
    let n = halves.len();
    let (h_dev, f_dev) = (buffer(&halves), buffer(&floats));
    let widened = EmuBuffer::alloc(n * 4).unwrap();
    let narrowed = EmuBuffer::alloc(n * 2).unwrap();
    let args = KernelArgs::new()
        .ptr(h_dev.device_ptr())
        .ptr(widened.device_ptr())
        .ptr(f_dev.device_ptr())
        .ptr(narrowed.device_ptr())
        .i32(n as i32);
    launch("emu_test_half", LaunchConfig::for_elements(n, 256), args).unwrap();

    for (&bits, got) in halves.iter().zip(widened.to_vec::<f32>().unwrap()) {
        let expected = f16::from_bits(bits).to_f32();
        assert!(got.to_bits() == expected.to_bits() || (got.is_nan() && expected.is_nan()));
    }
    for (&value, got) in floats.iter().zip(narrowed.to_vec::<u16>().unwrap()) {
        let expected = f16::from_f32(value);
        let got = f16::from_bits(got);
        assert!(
            got == expected || (got.is_nan() && expected.is_nan()),
            "{value}: {got}"
        );
    }
}

#[test]
fn math_functions_agree_with_rust() {
    let x: Vec<f32> = (0..200).map(|i| (i as f32 - 100.0) * 0.07).collect();
    let input = buffer(&x);
    let out = EmuBuffer::alloc(x.len() * 8 * 4).unwrap();
    let args = KernelArgs::new()
        .ptr(input.device_ptr())
        .ptr(out.device_ptr())
        .i32(x.len() as i32);
    launch(
        "emu_test_math",
        LaunchConfig::for_elements(x.len(), 64),
        args,
    )
    .unwrap();
    let out = out.to_vec::<f32>().unwrap();

    for (i, &v) in x.iter().enumerate() {
        let expected = [
            v.exp(),
            v.exp(),
            1.0 / (v.abs() + 1.0).sqrt(),
            v / 3.0,
            v.max(0.0) + v.min(0.0) * 0.5,
            v.tanh(),
            v.clamp(0.0, 1.0),
            (v as i32).clamp(-2, 2) as f32,
        ];
        for (j, e) in expected.iter().enumerate() {
            let got = out[8 * i + j];
            assert!(
                (got - e).abs() <= 1e-6 * (1.0 + e.abs()),
                "x={v} result {j}: {got} vs {e}"
            );
        }
    }
}

#[test]
fn an_early_return_before_a_barrier_fails_the_launch() {
    let run = |n: usize| {
        let x: Vec<f32> = (0..n).map(|v| v as f32).collect();
        let input = buffer(&x);
        let out = EmuBuffer::alloc(n * 4).unwrap();
        let args = KernelArgs::new()
            .ptr(input.device_ptr())
            .ptr(out.device_ptr())
            .i32(n as i32);
        launch(
            "emu_test_early_return",
            LaunchConfig::for_elements(n, 128),
            args,
        )
        .map(|()| out.to_vec::<f32>().unwrap())
    };

    // With every block full no thread returns early, and the rotation is right.
    let out = run(256).unwrap();
    assert_eq!(out[0], 1.0);
    assert_eq!(out[127], 0.0);
    assert_eq!(out[255], 128.0);

    let message = fault_message(run(200).map(|_| ()));
    assert!(
        message.contains("kernel `emu_test_early_return`"),
        "{message}"
    );
    assert!(message.contains("barrier divergence"), "{message}");
    assert!(message.contains("block (1,0,0)"), "{message}");
    assert!(
        message.contains("kernels/emu/tests/shim_faults.cu:"),
        "{message}"
    );
}

#[test]
fn broken_barrier_and_warp_rules_fail_with_the_kernel_named() {
    let run = |mode: i32| {
        let out = EmuBuffer::alloc(64 * 4).unwrap();
        let args = KernelArgs::new().i32(mode).ptr(out.device_ptr());
        launch("emu_test_fault", config([1, 1, 1], [64, 1, 1]), args)
            .map(|()| out.to_vec::<i32>().unwrap())
    };
    assert_eq!(run(0).unwrap(), (0..64).collect::<Vec<i32>>());

    let expected = [
        (
            1,
            "reached __syncthreads at kernels/emu/tests/shim_faults.cu",
        ),
        (
            2,
            "thread (5,0,0) returned while thread (0,0,0) waits for it in __shfl_xor_sync",
        ),
        (3, "does not include its own lane"),
        (4, "called __ballot_sync(mask 0xffffffff)"),
        (5, "deadlock"),
    ];
    for (mode, phrase) in expected {
        let message = fault_message(run(mode).map(|_| ()));
        assert!(
            message.starts_with("kernel `emu_test_fault`"),
            "mode {mode}: {message}"
        );
        assert!(message.contains(phrase), "mode {mode}: {message}");
    }
}

#[test]
fn bad_launches_are_errors() {
    let out = EmuBuffer::alloc(64 * 4).unwrap();
    let one_block = config([1, 1, 1], [64, 1, 1]);
    let good = || KernelArgs::new().i32(0).ptr(out.device_ptr());

    let unknown = launch("no_such_kernel", one_block, good());
    assert!(
        matches!(&unknown, Err(LaunchError::UnknownKernel { name, .. }) if name == "no_such_kernel")
    );
    assert!(unknown.unwrap_err().to_string().contains("no_such_kernel"));

    let too_few = launch("emu_test_fault", one_block, KernelArgs::new().i32(0));
    assert!(
        matches!(too_few, Err(LaunchError::ArgumentMismatch { .. })),
        "{too_few:?}"
    );
    let wrong_size = launch("emu_test_fault", one_block, KernelArgs::new().i32(0).u32(5));
    let message = wrong_size.unwrap_err().to_string();
    assert!(
        message.contains("parameter 1 has 8 bytes but argument 1 has 4"),
        "{message}"
    );

    for bad in [
        config([1, 1, 1], [2048, 1, 1]),
        config([0, 1, 1], [64, 1, 1]),
        one_block.with_shared_bytes(64 * 1024),
    ] {
        let result = launch("emu_test_fault", bad, good());
        assert!(
            matches!(result, Err(LaunchError::InvalidConfig { .. })),
            "{bad:?}: {result:?}"
        );
    }
}

#[test]
fn the_test_kernels_are_registered() {
    let names = EmuLauncher::new().kernel_names();
    for kernel in ["emu_test_block_sum", "emu_test_matmul", "emu_test_fault"] {
        assert!(
            names.iter().any(|n| n == kernel),
            "{kernel} missing from {names:?}"
        );
    }
}

/// Run with `cargo test --test emu_shim -- --ignored --nocapture` to see the cost of one
/// emulated GPU thread, without barriers and with nine.
#[test]
#[ignore = "a timing, not a check"]
fn emulated_thread_cost() {
    let n = 1 << 20;
    let x = buffer(&vec![1.0f32; n]);
    let halves = buffer(&vec![0u16; n]);
    let (widened, narrowed) = (
        EmuBuffer::alloc(n * 4).unwrap(),
        EmuBuffer::alloc(n * 2).unwrap(),
    );
    let sums = EmuBuffer::alloc(n / 256 * 4).unwrap();
    let runs = [
        (
            "emu_test_half",
            KernelArgs::new()
                .ptr(halves.device_ptr())
                .ptr(widened.device_ptr())
                .ptr(x.device_ptr())
                .ptr(narrowed.device_ptr())
                .i32(n as i32),
        ),
        (
            "emu_test_block_sum",
            KernelArgs::new()
                .ptr(x.device_ptr())
                .ptr(sums.device_ptr())
                .i32(n as i32),
        ),
    ];
    for (kernel, args) in runs {
        let start = std::time::Instant::now();
        launch(kernel, LaunchConfig::for_elements(n, 256), args).unwrap();
        let elapsed = start.elapsed().as_secs_f64();
        println!(
            "{kernel}: {n} threads in {:.1} ms, {:.0} ns per thread",
            elapsed * 1e3,
            elapsed * 1e9 / n as f64
        );
    }

    let out = EmuBuffer::alloc(64 * 4).unwrap();
    let launches = 1000;
    let start = std::time::Instant::now();
    for _ in 0..launches {
        let args = KernelArgs::new().i32(0).ptr(out.device_ptr());
        launch("emu_test_fault", config([2, 1, 1], [32, 1, 1]), args).unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "launch of 2 blocks of 32 threads: {:.1} us",
        elapsed * 1e6 / launches as f64
    );
}
