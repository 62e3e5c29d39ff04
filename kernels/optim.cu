// Optimizer updates on f32 master weights, with PyTorch's rules exactly as src/optim/ has them,
// and the loss-scale unscale with its inf/NaN flag. One thread per parameter element in a
// grid-stride loop (memory bound; every array is read and written contiguously). The per-step
// scalars (bias corrections, 1 - beta, ...) are computed once on the host in f64 and passed as
// f32, as the CPU code does. When `param_f16` is not null the updated weight is also stored
// there, rounded to f16, for the next f16 forward.
#include "common/half.cuh"
#include "common/storage.cuh"

// g = grad + weight_decay*p (only when use_weight_decay); m += (1 - b1)*(g - m);
// v = b2*v + (1 - b2)*g^2; p -= step_size * m / (sqrt(v)/bias_correction2_sqrt + eps).
// register-budget: 40
extern "C" __global__ void adam_step(float* param, const float* grad, float* exp_avg,
                                     float* exp_avg_sq, __half* param_f16, long long n,
                                     float step_size, float bias_correction2_sqrt, float w1,
                                     float b2, float w2, float eps, float weight_decay,
                                     int use_weight_decay) {
    for (long long i = grid_start(); i < n; i += grid_step()) {
        float p = param[i];
        const float g = use_weight_decay ? grad[i] + weight_decay * p : grad[i];
        float m = exp_avg[i], v = exp_avg_sq[i];
        m += w1 * (g - m);
        v = v * b2 + w2 * g * g;
        const float denom = sqrtf(v) / bias_correction2_sqrt + eps;
        p -= step_size * (m / denom);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        param[i] = p;
        if (param_f16) store(param_f16, i, p);
    }
}

// g = grad + weight_decay*p (only when use_weight_decay); v = alpha*v + (1 - alpha)*g^2;
// p -= lr * g / (sqrt(v) + eps).
// register-budget: 40
extern "C" __global__ void rmsprop_step(float* param, const float* grad, float* square_avg,
                                        __half* param_f16, long long n, float lr, float alpha,
                                        float w, float eps, float weight_decay,
                                        int use_weight_decay) {
    for (long long i = grid_start(); i < n; i += grid_step()) {
        float p = param[i];
        const float g = use_weight_decay ? grad[i] + weight_decay * p : grad[i];
        float v = square_avg[i];
        v = v * alpha + w * g * g;
        p -= lr * (g / (sqrtf(v) + eps));
        square_avg[i] = v;
        param[i] = p;
        if (param_f16) store(param_f16, i, p);
    }
}

// grad *= inv_scale in place; *found_inf becomes 1 when any result is inf or NaN (the host
// zeroes it first). Each warp votes once after its loop and one lane writes, so a bad gradient
// costs one store per warp, never one per element. Block size a multiple of 32.
template <typename T>
__device__ void unscale_impl(T* grad, long long n, float inv_scale, int* found_inf) {
    bool bad = false;
    for (long long i = grid_start(); i < n; i += grid_step()) {
        const float g = load(grad, i) * inv_scale;
        store(grad, i, g);
        bad |= !is_finite(g);
    }
    const unsigned votes = __ballot_sync(0xffffffffu, bad);
    if (votes != 0 && threadIdx.x % 32 == 0) *found_inf = 1;
}

// register-budget: 32
extern "C" __global__ void unscale_check_f32(float* grad, long long n, float inv_scale,
                                             int* found_inf) {
    unscale_impl(grad, n, inv_scale, found_inf);
}

// register-budget: 32
extern "C" __global__ void unscale_check_f16(__half* grad, long long n, float inv_scale,
                                             int* found_inf) {
    unscale_impl(grad, n, inv_scale, found_inf);
}
