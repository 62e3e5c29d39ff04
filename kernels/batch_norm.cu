// BatchNorm3d over N,C,D,H,W (S = D*H*W voxels per (n, c) block, M = N*S values per channel).
//
// Statistics and parameter gradients are per-channel sums, done in two launches with no global
// atomics: `batch_norm_reduce_*` runs a 2-D grid, blockIdx.y the channel and blockIdx.x one of
// `parts` blocks sharing that channel's M values (grid-stride over them, so a block's threads
// read consecutive voxels: coalesced). Each thread sums in f32 registers, the block combines
// with warp shuffles and shared memory (block_sum), and thread 0 writes one partial per
// (quantity, channel, part). `sum_partials` then adds each row of partials in f64, in a fixed
// order, so results do not depend on scheduling. The mean is found first and the variance summed
// around it (two passes), as the CPU reference does.
//
// The host turns the f64 sums into per-channel f32 coefficients, and the element-wise kernels
// apply them with one thread per element: a 2-D grid, blockIdx.y (grid-stride) the (n, c) plane,
// so the channel is known per block and no thread divides a 64-bit index, and x grid-stride
// over the plane's S voxels (coalesced).
#include "common/half.cuh"
#include "common/storage.cuh"

// MODE 0: sum x.   MODE 1: sum (x - mu)^2.   MODE 2: sum gy and sum gy * (x - mu) * inv_std.
// `center` holds (mu, inv_std) per channel for modes 1 and 2.
template <int MODE, typename T>
__device__ void channel_reduce(const T* x, const T* gy, const float* center, float* partial,
                               int n, int c, long long s) {
    const int channel = blockIdx.y, parts = gridDim.x;
    const long long step = (long long)parts * blockDim.x;
    const float mu = MODE == 0 ? 0.0f : center[2 * channel];
    const float inv_std = MODE == 2 ? center[2 * channel + 1] : 0.0f;
    float q0 = 0.0f, q1 = 0.0f;
    for (int sample = 0; sample < n; ++sample) {
        const long long plane = ((long long)sample * c + channel) * s;
        for (long long v = (long long)blockIdx.x * blockDim.x + threadIdx.x; v < s; v += step) {
            const float xv = load(x, plane + v);
            if (MODE == 0) {
                q0 += xv;
            } else if (MODE == 1) {
                q0 += (xv - mu) * (xv - mu);
            } else {
                const float g = load(gy, plane + v);
                q0 += g;
                q1 += g * (xv - mu) * inv_std;
            }
        }
    }
    q0 = block_sum(q0);
    if (MODE == 2) q1 = block_sum(q1);
    if (threadIdx.x == 0) {
        partial[(long long)channel * parts + blockIdx.x] = q0;
        if (MODE == 2) partial[(long long)(c + channel) * parts + blockIdx.x] = q1;
    }
}

// Grid (parts, C), blocks of a multiple of 32 threads; partial holds C * parts floats.
// register-budget: 48
extern "C" __global__ void batch_norm_sum_f32(const float* x, float* partial, int n, int c,
                                              long long s) {
    channel_reduce<0>(x, x, nullptr, partial, n, c, s);
}

// register-budget: 32
extern "C" __global__ void batch_norm_sum_f16(const __half* x, float* partial, int n, int c,
                                              long long s) {
    channel_reduce<0>(x, x, nullptr, partial, n, c, s);
}

// As batch_norm_sum_*, summing squared deviations from center[2c].
// register-budget: 48
extern "C" __global__ void batch_norm_sum_sq_f32(const float* x, const float* center,
                                                 float* partial, int n, int c, long long s) {
    channel_reduce<1>(x, x, center, partial, n, c, s);
}

// register-budget: 32
extern "C" __global__ void batch_norm_sum_sq_f16(const __half* x, const float* center,
                                                 float* partial, int n, int c, long long s) {
    channel_reduce<1>(x, x, center, partial, n, c, s);
}

// The backward's sums: rows 0..C-1 of partial get sum gy, rows C..2C-1 sum gy * x_hat.
// register-budget: 48
extern "C" __global__ void batch_norm_sum_grad_f32(const float* x, const float* gy,
                                                   const float* center, float* partial, int n,
                                                   int c, long long s) {
    channel_reduce<2>(x, gy, center, partial, n, c, s);
}

// register-budget: 40
extern "C" __global__ void batch_norm_sum_grad_f16(const __half* x, const __half* gy,
                                                   const float* center, float* partial, int n,
                                                   int c, long long s) {
    channel_reduce<2>(x, gy, center, partial, n, c, s);
}

// out[row] = the sum of the `parts` partials of row `row`, added in f64 in block order: one
// thread per row (rows are few, channels times quantities; parts at most a few hundred).
// register-budget: 32
extern "C" __global__ void sum_partials(const float* partial, int parts, int rows, double* out) {
    const int row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= rows) return;
    double sum = 0.0;
    for (int b = 0; b < parts; ++b) sum += (double)partial[(long long)row * parts + b];
    out[row] = sum;
}

// y = scale * (x - mu) + shift with coef = (mu, scale, shift) per channel. Serves the training
// and the eval forward (only the statistics differ).
template <typename T>
__device__ void apply_impl(const T* x, const float* coef, T* y, long long planes, int c,
                           long long s) {
    for (long long plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const int channel = (int)(plane % c);
        const float mu = coef[3 * channel], scale = coef[3 * channel + 1];
        const float shift = coef[3 * channel + 2];
        for (long long v = grid_start(); v < s; v += grid_step())
            store(y, plane * s + v, scale * (load(x, plane * s + v) - mu) + shift);
    }
}

// register-budget: 48
extern "C" __global__ void batch_norm_apply_f32(const float* x, const float* coef, float* y,
                                                long long planes, int c, long long s) {
    apply_impl(x, coef, y, planes, c, s);
}

// register-budget: 32
extern "C" __global__ void batch_norm_apply_f16(const __half* x, const float* coef, __half* y,
                                                long long planes, int c, long long s) {
    apply_impl(x, coef, y, planes, c, s);
}

// dx = a * gy + b * (x - mu) + k with coef = (a, b, k, mu) per channel, mapped as the apply.
// Training mode folds the batch statistics' gradient into b and k; eval mode has b = k = 0.
template <typename T>
__device__ void backward_impl(const T* x, const T* gy, const float* coef, T* dx,
                              long long planes, int c, long long s) {
    for (long long plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const int channel = (int)(plane % c);
        const float a = coef[4 * channel], b = coef[4 * channel + 1];
        const float k = coef[4 * channel + 2], mu = coef[4 * channel + 3];
        for (long long v = grid_start(); v < s; v += grid_step()) {
            const long long i = plane * s + v;
            store(dx, i, a * load(gy, i) + b * (load(x, i) - mu) + k);
        }
    }
}

// register-budget: 48
extern "C" __global__ void batch_norm_backward_f32(const float* x, const float* gy,
                                                   const float* coef, float* dx, long long planes,
                                                   int c, long long s) {
    backward_impl(x, gy, coef, dx, planes, c, s);
}

// register-budget: 32
extern "C" __global__ void batch_norm_backward_f16(const __half* x, const __half* gy,
                                                   const float* coef, __half* dx,
                                                   long long planes, int c, long long s) {
    backward_impl(x, gy, coef, dx, planes, c, s);
}
