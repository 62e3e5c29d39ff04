// MaxPool3d, kernel 2, stride 2, floor mode, with PyTorch's flat in-volume indices (i32).
// The windows do not overlap, so both directions map one thread to one element without atomics
// (2-D grid: blockIdx.y grid-strides over the N*C planes, x over the plane, 32-bit in-plane math):
// the forward one thread per output voxel (its 8 inputs are two 2x2 patches of neighbouring
// rows; neighbouring threads read neighbouring pairs), the backward one thread per INPUT voxel,
// which gathers from the one window that contains it (zero when the floor mode dropped it).
#include "common/half.cuh"
#include "common/storage.cuh"

// Scan order depth, height, width; a later value wins only when strictly greater (ties go to
// the first maximum), and a NaN always wins, so a window with a NaN yields NaN.
template <typename T>
__device__ void max_pool_impl(const T* x, T* y, int* indices, long long planes, int d, int h,
                              int w) {
    const int od = d / 2, oh = h / 2, ow = w / 2;
    const long long out_volume = (long long)od * oh * ow, in_volume = (long long)d * h * w;
    for (long long plane = blockIdx.y; plane < planes; plane += gridDim.y)
    for (int r = (int)grid_start(); r < out_volume; r += (int)grid_step()) {
        const long long o = plane * out_volume + r;
        const int zw = r % ow, zh = (r / ow) % oh, zd = r / (ow * oh);
        const int first = (2 * zd * h + 2 * zh) * w + 2 * zw;
        const T* xv = x + plane * in_volume;
        float best = load(xv, first);
        int best_at = first;
        for (int kd = 0; kd < 2; ++kd)
            for (int kh = 0; kh < 2; ++kh)
                for (int kw = 0; kw < 2; ++kw) {
                    const int at = first + (kd * h + kh) * w + kw;
                    const float v = load(xv, at);
                    if (v > best || v != v) {
                        best = v;
                        best_at = at;
                    }
                }
        store(y, o, best);
        indices[o] = best_at;
    }
}

// register-budget: 40
extern "C" __global__ void max_pool3d_f32(const float* x, float* y, int* indices,
                                          long long planes, int d, int h, int w) {
    max_pool_impl(x, y, indices, planes, d, h, w);
}

// register-budget: 40
extern "C" __global__ void max_pool3d_f16(const __half* x, __half* y, int* indices,
                                          long long planes, int d, int h, int w) {
    max_pool_impl(x, y, indices, planes, d, h, w);
}

// dx at an input voxel is gy of its window when the window chose it, else 0. The host checks
// that every index lies inside its own window.
template <typename T>
__device__ void max_pool_backward_impl(const T* gy, const int* indices, T* dx, long long planes,
                                       int d, int h, int w) {
    const int od = d / 2, oh = h / 2, ow = w / 2;
    const long long out_volume = (long long)od * oh * ow, in_volume = (long long)d * h * w;
    for (long long plane = blockIdx.y; plane < planes; plane += gridDim.y)
    for (int at = (int)grid_start(); at < in_volume; at += (int)grid_step()) {
        const long long i = plane * in_volume + at;
        const int xw = at % w, xh = (at / w) % h, xd = at / (w * h);
        const int zd = xd / 2, zh = xh / 2, zw = xw / 2;
        float g = 0.0f;
        if (zd < od && zh < oh && zw < ow) {
            const long long o = plane * out_volume + ((long long)zd * oh + zh) * ow + zw;
            if (indices[o] == at) g = load(gy, o);
        }
        store(dx, i, g);
    }
}

// register-budget: 40
extern "C" __global__ void max_pool3d_backward_f32(const float* gy, const int* indices,
                                                   float* dx, long long planes, int d, int h,
                                                   int w) {
    max_pool_backward_impl(gy, indices, dx, planes, d, h, w);
}

// register-budget: 40
extern "C" __global__ void max_pool3d_backward_f16(const __half* gy, const int* indices,
                                                   __half* dx, long long planes, int d, int h,
                                                   int w) {
    max_pool_backward_impl(gy, indices, dx, planes, d, h, w);
}
