// Storage casts, the two element-wise arithmetic ops of the engine (gradient accumulation
// and scaling), clearing and copying buffers. All are memory bound: one thread per element in
// a grid-stride loop, so any grid size covers any length and consecutive threads touch
// consecutive elements (coalesced).
#include "common/half.cuh"
#include "common/storage.cuh"

template <typename In, typename Out>
__device__ void cast_impl(const In* x, Out* y, long long n) {
    for (long long i = grid_start(); i < n; i += grid_step()) store(y, i, load(x, i));
}

// One thread per element; f16 -> f32 is exact, f32 -> f16 rounds to nearest even.
// register-budget: 32
extern "C" __global__ void cast_f16_to_f32(const __half* x, float* y, long long n) {
    cast_impl(x, y, n);
}

// register-budget: 32
extern "C" __global__ void cast_f32_to_f16(const float* x, __half* y, long long n) {
    cast_impl(x, y, n);
}

template <typename T>
__device__ void add_impl(const T* a, const T* b, T* y, long long n) {
    for (long long i = grid_start(); i < n; i += grid_step()) store(y, i, load(a, i) + load(b, i));
}

// y = a + b, one thread per element, computed in f32.
// register-budget: 32
extern "C" __global__ void add_f32(const float* a, const float* b, float* y, long long n) {
    add_impl(a, b, y, n);
}

// register-budget: 32
extern "C" __global__ void add_f16(const __half* a, const __half* b, __half* y, long long n) {
    add_impl(a, b, y, n);
}

template <typename T>
__device__ void scale_impl(const T* x, T* y, float s, long long n) {
    for (long long i = grid_start(); i < n; i += grid_step()) store(y, i, load(x, i) * s);
}

// y = x * s, one thread per element, computed in f32.
// register-budget: 32
extern "C" __global__ void scale_f32(const float* x, float* y, float s, long long n) {
    scale_impl(x, y, s, n);
}

// register-budget: 32
extern "C" __global__ void scale_f16(const __half* x, __half* y, float s, long long n) {
    scale_impl(x, y, s, n);
}

// Zero bits in n 32-bit words (0.0f, 0): the accumulators of the weight gradients and the
// overflow flag, cleared on the device instead of copied from the host. One thread per word.
// register-budget: 32
extern "C" __global__ void zero_words(unsigned int* y, long long n) {
    for (long long i = grid_start(); i < n; i += grid_step()) y[i] = 0u;
}

// y = x for n 16-bit units, so any f16, f32, i32 or f64 buffer: a device-side copy of a
// resident tensor for a kernel that changes its input in place. One thread per unit.
// register-budget: 32
extern "C" __global__ void copy_halfwords(const unsigned short* x, unsigned short* y,
                                          long long n) {
    for (long long i = grid_start(); i < n; i += grid_step()) y[i] = x[i];
}
