// Channel concatenation of two N,C,D,H,W tensors and its inverse. Per sample, y holds the
// a_block = Ca*D*H*W values of a, then the b_block values of b. One thread per element of y in a
// grid-stride loop: reads and writes are both contiguous runs, so every access is coalesced
// except at the few run boundaries.
#include "common/half.cuh"
#include "common/storage.cuh"

template <typename T>
__device__ void concat_impl(const T* a, const T* b, T* y, long long n, long long a_block,
                            long long b_block) {
    const long long block = a_block + b_block;
    for (long long sample = blockIdx.y; sample < n; sample += gridDim.y) {
        const T* as = a + sample * a_block;
        const T* bs = b + sample * b_block;
        T* ys = y + sample * block;
        for (long long r = grid_start(); r < block; r += grid_step())
            ys[r] = r < a_block ? as[r] : bs[r - a_block];
    }
}

// register-budget: 48
extern "C" __global__ void concat_f32(const float* a, const float* b, float* y, long long n,
                                      long long a_block, long long b_block) {
    concat_impl(a, b, y, n, a_block, b_block);
}

// register-budget: 48
extern "C" __global__ void concat_f16(const __half* a, const __half* b, __half* y, long long n,
                                      long long a_block, long long b_block) {
    concat_impl(a, b, y, n, a_block, b_block);
}

template <typename T>
__device__ void split_impl(const T* y, T* a, T* b, long long n, long long a_block,
                           long long b_block) {
    const long long block = a_block + b_block;
    for (long long sample = blockIdx.y; sample < n; sample += gridDim.y) {
        const T* ys = y + sample * block;
        T* as = a + sample * a_block;
        T* bs = b + sample * b_block;
        for (long long r = grid_start(); r < block; r += grid_step()) {
            if (r < a_block)
                as[r] = ys[r];
            else
                bs[r - a_block] = ys[r];
        }
    }
}

// The inverse of concat, mapped as concat.
// register-budget: 48
extern "C" __global__ void split_f32(const float* y, float* a, float* b, long long n,
                                     long long a_block, long long b_block) {
    split_impl(y, a, b, n, a_block, b_block);
}

// register-budget: 48
extern "C" __global__ void split_f16(const __half* y, __half* a, __half* b, long long n,
                                     long long a_block, long long b_block) {
    split_impl(y, a, b, n, a_block, b_block);
}
