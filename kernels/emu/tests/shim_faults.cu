// Kernels that break the rules the emulator exists to enforce; tests/emu_shim.rs checks that
// each is caught. They compile under NVRTC too: the faults only show when they run.

// emu_test_block_sum with the __syncthreads inside the tree loop removed. Thread 0 runs the
// whole loop before thread 1 starts, so it adds partial sums nobody has formed yet.
extern "C" __global__ void emu_test_block_sum_racy(const float* x, float* block_sums, int n) {
    __shared__ float partial[256];
    const int t = threadIdx.x;
    const int i = blockIdx.x * blockDim.x + t;
    partial[t] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (t < stride) partial[t] += partial[t + stride];
    }
    if (t == 0) block_sums[blockIdx.x] = partial[0];
}

// Rotates each block's slice of x by one through shared memory (blockDim.x <= 128), but the
// threads past n return before the barrier: fine when n fills every block, a divergent
// barrier otherwise.
extern "C" __global__ void emu_test_early_return(const float* x, float* out, int n) {
    __shared__ float slice[128];
    const int t = threadIdx.x;
    const int i = blockIdx.x * blockDim.x + t;
    if (i >= n) return;
    slice[t] = x[i];
    __syncthreads();
    out[i] = slice[(t + 1) % blockDim.x];
}

// One block of 64 threads; `mode` picks the fault, 0 runs clean and writes out[t] = t.
//   1: even and odd threads wait in different __syncthreads
//   2: lane 5 returns, then its warp shuffles with a full mask
//   3: lanes 16..31 call __syncwarp with a mask that leaves them out
//   4: half a warp shuffles while the other half votes, both with a full mask
//   5: thread 32 waits in __syncthreads while the rest of its warp waits for it in a shuffle
extern "C" __global__ void emu_test_fault(int mode, int* out) {
    const int t = threadIdx.x;
    int value = t;
    if (mode == 1) {
        if (t % 2 == 0) {
            __syncthreads();
        } else {
            __syncthreads();
        }
    } else if (mode == 2) {
        if (t == 5) return;
        value = __shfl_xor_sync(0xffffffffu, t, 1) ^ 1;
    } else if (mode == 3) {
        __syncwarp(0x0000ffffu);
    } else if (mode == 4) {
        if (t % 32 < 16) {
            value = __shfl_xor_sync(0xffffffffu, t, 1) ^ 1;
        } else {
            value = __ballot_sync(0xffffffffu, 1) != 0 ? t : -1;
        }
    } else if (mode == 5) {
        if (t < 33) {
            __syncthreads();
        } else {
            value = __shfl_sync(0xffffffffu, t, 0);
        }
    }
    out[t] = value;
}
