// Loads and stores for enamel's two float storage types, so one kernel template serves f32 and
// f16 tensors while all arithmetic stays in f32. Also the block-wide sum every reduction kernel
// uses, and unrolling hints. Needs "common/half.cuh" included first.
#pragma once

// Loop unrolling hints for NVRTC; the emulator's host compiler decides on its own.
#ifdef ENAMEL_EMU
#define CONV_UNROLL
#define CONV_NO_UNROLL
#else
#define CONV_UNROLL _Pragma("unroll")
#define CONV_NO_UNROLL _Pragma("unroll 1")
#endif

__device__ __forceinline__ float load(const float* p) { return *p; }
__device__ __forceinline__ float load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(__half* p, float v) { *p = __float2half_rn(v); }

__device__ __forceinline__ float load(const float* p, long long i) { return p[i]; }
__device__ __forceinline__ float load(const __half* p, long long i) { return __half2float(p[i]); }
__device__ __forceinline__ void store(float* p, long long i, float v) { p[i] = v; }
__device__ __forceinline__ void store(__half* p, long long i, float v) {
    p[i] = __float2half_rn(v);
}

// First index and step of a grid-stride loop. NVRTC unrolls these loops on f32 data for more
// loads in flight, which takes up to 48 registers: still >= 62% occupancy on sm_61 (and the
// budgets of such kernels say 48), enough for memory-bound streaming.
__device__ __forceinline__ long long grid_start() {
    return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ long long grid_step() { return (long long)gridDim.x * blockDim.x; }

// True for finite values; false for inf and NaN (no INFINITY under NVRTC).
__device__ __forceinline__ bool is_finite(float v) { return fabsf(v) <= 3.402823466e38f; }

// Sum of `v` over the block, returned to every thread. Blocks of at most 1024 threads whose size
// is a multiple of 32. Warps reduce with shuffles; their sums meet in shared memory and warp 0
// adds them. Every thread of the block must call it (it holds barriers).
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float warp_sums[32];
    __shared__ float total;
    const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        const unsigned warps = blockDim.x / 32;
        float s = lane < warps ? warp_sums[lane] : 0.0f;
        for (int offset = 16; offset > 0; offset /= 2) s += __shfl_down_sync(0xffffffffu, s, offset);
        if (lane == 0) total = s;
    }
    __syncthreads();
    const float result = total;
    // A second call must not overwrite warp_sums/total before every thread has read them.
    __syncthreads();
    return result;
}
