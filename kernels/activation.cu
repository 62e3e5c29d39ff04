// ReLU, sigmoid and the softmax over channels, forward and backward. Element-wise kernels map
// one thread to one element in a grid-stride loop (coalesced, memory bound). The softmax maps one
// thread to one voxel (n, d, h, w) and walks its C channels at stride D*H*W: neighbouring
// threads read neighbouring voxels of the same channel, so every channel step is coalesced, and
// C (1-9 in the U-Nets) is too small to be worth spreading over threads. Its grid is 2-D:
// blockIdx.y (grid-stride) the sample, x grid-stride over the S voxels, so no thread divides a
// 64-bit index.
#include "common/half.cuh"
#include "common/storage.cuh"
#include "common/sigmoid.cuh"

template <typename T>
__device__ void relu_impl(const T* x, T* y, long long n) {
    for (long long i = grid_start(); i < n; i += grid_step()) {
        const float v = load(x, i);
        store(y, i, v < 0.0f ? 0.0f : v);  // NaN stays NaN
    }
}

// register-budget: 32
extern "C" __global__ void relu_f32(const float* x, float* y, long long n) { relu_impl(x, y, n); }

// register-budget: 32
extern "C" __global__ void relu_f16(const __half* x, __half* y, long long n) {
    relu_impl(x, y, n);
}

// dx = gy where x > 0, else 0 (also at exactly 0).
template <typename T>
__device__ void relu_backward_impl(const T* x, const T* gy, T* dx, long long n) {
    for (long long i = grid_start(); i < n; i += grid_step())
        store(dx, i, load(x, i) > 0.0f ? load(gy, i) : 0.0f);
}

// register-budget: 32
extern "C" __global__ void relu_backward_f32(const float* x, const float* gy, float* dx,
                                             long long n) {
    relu_backward_impl(x, gy, dx, n);
}

// register-budget: 32
extern "C" __global__ void relu_backward_f16(const __half* x, const __half* gy, __half* dx,
                                             long long n) {
    relu_backward_impl(x, gy, dx, n);
}

template <typename T>
__device__ void sigmoid_impl(const T* x, T* y, long long n) {
    for (long long i = grid_start(); i < n; i += grid_step()) store(y, i, sigmoid(load(x, i)));
}

// register-budget: 32
extern "C" __global__ void sigmoid_f32(const float* x, float* y, long long n) {
    sigmoid_impl(x, y, n);
}

// register-budget: 32
extern "C" __global__ void sigmoid_f16(const __half* x, __half* y, long long n) {
    sigmoid_impl(x, y, n);
}

// From the output y: dx = gy * y * (1 - y).
template <typename T>
__device__ void sigmoid_backward_impl(const T* y, const T* gy, T* dx, long long n) {
    for (long long i = grid_start(); i < n; i += grid_step()) {
        const float yv = load(y, i);
        store(dx, i, load(gy, i) * yv * (1.0f - yv));
    }
}

// register-budget: 32
extern "C" __global__ void sigmoid_backward_f32(const float* y, const float* gy, float* dx,
                                                long long n) {
    sigmoid_backward_impl(y, gy, dx, n);
}

// register-budget: 32
extern "C" __global__ void sigmoid_backward_f16(const __half* y, const __half* gy, __half* dx,
                                                long long n) {
    sigmoid_backward_impl(y, gy, dx, n);
}

// Softmax over the channels of `x` (N, C, S = D*H*W): one thread per voxel, as above.
// The output type may differ from the input's (the Dice loss wants f32 probabilities of f16
// logits).
template <typename In, typename Out>
__device__ void softmax_impl(const In* x, Out* y, long long n, int c, long long s) {
    for (long long sample = blockIdx.y; sample < n; sample += gridDim.y)
    for (long long v = grid_start(); v < s; v += grid_step()) {
        const long long base = sample * c * s + v;
        float max = -3.402823466e38f;
        for (int k = 0; k < c; ++k) max = fmaxf(max, load(x, base + k * s));
        float sum = 0.0f;
        for (int k = 0; k < c; ++k) sum += expf(load(x, base + k * s) - max);
        for (int k = 0; k < c; ++k) store(y, base + k * s, expf(load(x, base + k * s) - max) / sum);
    }
}

// register-budget: 40
extern "C" __global__ void softmax_f32(const float* x, float* y, long long n, int c,
                                       long long s) {
    softmax_impl(x, y, n, c, s);
}

// register-budget: 40
extern "C" __global__ void softmax_f16(const __half* x, __half* y, long long n, int c,
                                       long long s) {
    softmax_impl(x, y, n, c, s);
}

// register-budget: 40
extern "C" __global__ void softmax_f16_to_f32(const __half* x, float* y, long long n, int c,
                                              long long s) {
    softmax_impl(x, y, n, c, s);
}

// From the output: dx_c = y_c * (gy_c - sum_k y_k * gy_k); one thread per voxel as the forward.
template <typename T>
__device__ void softmax_backward_impl(const T* y, const T* gy, T* dx, long long n, int c,
                                      long long s) {
    for (long long sample = blockIdx.y; sample < n; sample += gridDim.y)
    for (long long v = grid_start(); v < s; v += grid_step()) {
        const long long base = sample * c * s + v;
        float dot = 0.0f;
        for (int k = 0; k < c; ++k) dot += load(y, base + k * s) * load(gy, base + k * s);
        for (int k = 0; k < c; ++k) {
            const long long i = base + k * s;
            store(dx, i, load(y, i) * (load(gy, i) - dot));
        }
    }
}

// register-budget: 48
extern "C" __global__ void softmax_backward_f32(const float* y, const float* gy, float* dx,
                                                long long n, int c, long long s) {
    softmax_backward_impl(y, gy, dx, n, c, s);
}

// register-budget: 48
extern "C" __global__ void softmax_backward_f16(const __half* y, const __half* gy, __half* dx,
                                                long long n, int c, long long s) {
    softmax_backward_impl(y, gy, dx, n, c, s);
}
