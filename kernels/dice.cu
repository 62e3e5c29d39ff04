// Dice losses over the whole batch. For one class with probabilities p, target t,
// I = sum p*t and S = sum p^2 + sum t^2 + eps: dice = (2I + eps)/S, and the loss gradient with
// respect to p is -a*t + b*p with a = 2w/S, b = 2w(2I + eps)/S^2 (w the class weight).
//
// The sums reuse batch_norm.cu's scheme: reduction blocks write per-block partials (f32 sums
// in registers, block_sum with shuffles and shared memory), `sum_partials` adds them in f64,
// and the host computes the loss and the coefficients a, b in f64. The gradient kernels are then
// element-wise (binary: one thread per element) or per voxel (categorical: one thread per voxel
// walks its C channels at stride D*H*W, coalesced across neighbouring voxels; blockIdx.y
// grid-strides over the samples so that no thread divides a 64-bit index).
#include "common/half.cuh"
#include "common/storage.cuh"
#include "common/sigmoid.cuh"

// 1-D grid of `parts` blocks; partial row q (sum p*t, sum p^2, sum t^2) holds one value per block.
template <typename T>
__device__ void binary_sum_impl(const T* logits, const T* target, float* partial, long long n) {
    float pt = 0.0f, pp = 0.0f, tt = 0.0f;
    for (long long i = grid_start(); i < n; i += grid_step()) {
        const float p = sigmoid(load(logits, i)), t = load(target, i);
        pt += p * t;
        pp += p * p;
        tt += t * t;
    }
    pt = block_sum(pt);
    pp = block_sum(pp);
    tt = block_sum(tt);
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = pt;
        partial[gridDim.x + blockIdx.x] = pp;
        partial[2 * gridDim.x + blockIdx.x] = tt;
    }
}

// register-budget: 40
extern "C" __global__ void dice_binary_sum_f32(const float* logits, const float* target,
                                               float* partial, long long n) {
    binary_sum_impl(logits, target, partial, n);
}

// register-budget: 40
extern "C" __global__ void dice_binary_sum_f16(const __half* logits, const __half* target,
                                               float* partial, long long n) {
    binary_sum_impl(logits, target, partial, n);
}

// dlogits = (b*p - a*t) * p * (1 - p) with p = sigmoid(logits); one thread per element.
template <typename T>
__device__ void binary_grad_impl(const T* logits, const T* target, T* dlogits, float a, float b,
                                 long long n) {
    for (long long i = grid_start(); i < n; i += grid_step()) {
        const float p = sigmoid(load(logits, i));
        store(dlogits, i, (b * p - a * load(target, i)) * p * (1.0f - p));
    }
}

// register-budget: 32
extern "C" __global__ void dice_binary_grad_f32(const float* logits, const float* target,
                                                float* dlogits, float a, float b, long long n) {
    binary_grad_impl(logits, target, dlogits, a, b, n);
}

// register-budget: 32
extern "C" __global__ void dice_binary_grad_f16(const __half* logits, const __half* target,
                                                __half* dlogits, float a, float b, long long n) {
    binary_grad_impl(logits, target, dlogits, a, b, n);
}

// Per class of the f32 softmax probabilities (N, C, S) against the label map (N, S): grid
// (parts, C) as in batch_norm.cu; partial row q*C + class holds sum p*t, sum p^2, sum t
// (= sum t^2 for a 0/1 target), one value per block.
// register-budget: 40
extern "C" __global__ void dice_categorical_sum(const float* probs, const unsigned char* labels,
                                                float* partial, int n, int c, long long s) {
    const int cls = blockIdx.y, parts = gridDim.x;
    const long long step = (long long)parts * blockDim.x;
    float pt = 0.0f, pp = 0.0f, tt = 0.0f;
    for (int sample = 0; sample < n; ++sample) {
        const float* plane = probs + ((long long)sample * c + cls) * s;
        const unsigned char* label_plane = labels + (long long)sample * s;
        for (long long v = (long long)blockIdx.x * blockDim.x + threadIdx.x; v < s; v += step) {
            const float p = plane[v];
            if ((int)label_plane[v] == cls) {
                pt += p;
                tt += 1.0f;
            }
            pp += p * p;
        }
    }
    pt = block_sum(pt);
    pp = block_sum(pp);
    tt = block_sum(tt);
    if (threadIdx.x == 0) {
        partial[(long long)cls * parts + blockIdx.x] = pt;
        partial[(long long)(c + cls) * parts + blockIdx.x] = pp;
        partial[(long long)(2 * c + cls) * parts + blockIdx.x] = tt;
    }
}

// Softmax backward of dp_k = -a_k*t_k + b_k*p_k: dlogits_c = p_c * (dp_c - sum_k p_k*dp_k).
// coef holds (a, b) per class, zero for absent classes. One thread per voxel.
template <typename T>
__device__ void categorical_grad_impl(const float* probs, const unsigned char* labels,
                                      const float* coef, T* dlogits, long long n, int c,
                                      long long s) {
    for (long long sample = blockIdx.y; sample < n; sample += gridDim.y)
    for (long long v = grid_start(); v < s; v += grid_step()) {
        const long long base = sample * c * s + v;
        const int label = labels[sample * s + v];
        float dot = 0.0f;
        for (int k = 0; k < c; ++k) {
            const float p = probs[base + k * s], a = coef[2 * k], b = coef[2 * k + 1];
            dot += k == label ? (b * p - a) * p : b * p * p;
        }
        for (int k = 0; k < c; ++k) {
            const float p = probs[base + k * s], a = coef[2 * k], b = coef[2 * k + 1];
            const float t = k == label ? 1.0f : 0.0f;
            store(dlogits, base + k * s, p * (b * p - a * t - dot));
        }
    }
}

// register-budget: 48
extern "C" __global__ void dice_categorical_grad_f32(const float* probs,
                                                     const unsigned char* labels,
                                                     const float* coef, float* dlogits,
                                                     long long n, int c, long long s) {
    categorical_grad_impl(probs, labels, coef, dlogits, n, c, s);
}

// register-budget: 48
extern "C" __global__ void dice_categorical_grad_f16(const float* probs,
                                                     const unsigned char* labels,
                                                     const float* coef, __half* dlogits,
                                                     long long n, int c, long long s) {
    categorical_grad_impl(probs, labels, coef, dlogits, n, c, s);
}
