// The CUDA surface that lets g++ (-std=c++20) compile enamel's kernel files unmodified, so the
// emulator runs the very source NVRTC compiles. Each GPU thread runs as a fiber (fiber.cpp);
// barriers, shuffles and ballots are scheduler calls (scheduler.cpp) that honour the lane mask.
//
// Shared memory: `__shared__` becomes `thread_local`, so a block's static shared arrays live in
// the TLS of the worker thread that runs the block (one block per worker at a time). Their
// contents carry over between blocks on the same worker, as undefined contents do on a GPU.
// TODO: poison static shared arrays per block too; a kernel that reads one before writing it is
// caught only when the stale values change its result. The macro sees no name to poison.
// `extern __shared__` arrays are bound by build.rs to one per-worker buffer that the launcher
// fills with 0xFF (a NaN in f16, f32 and f64) before every block.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <math.h>
#include <source_location>
#include <type_traits>

#define ENAMEL_EMU 1

#define __global__
#define __device__
#define __host__
#define __constant__
#define __shared__ thread_local
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)

// ---------------------------------------------------------------- vector types and indices

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
        : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
struct __align__(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(8) int2 { int x, y; };
struct int3 { int x, y, z; };
struct __align__(16) int4 { int x, y, z, w; };
struct __align__(8) uint2 { unsigned int x, y; };
struct __align__(16) uint4 { unsigned int x, y, z, w; };

inline float2 make_float2(float x, float y) { return {x, y}; }
inline float3 make_float3(float x, float y, float z) { return {x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int3 make_int3(int x, int y, int z) { return {x, y, z}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }

// Set by the scheduler whenever it switches to a fiber (thread_idx) or starts a block.
struct EnamelEmuIndices {
    uint3 thread_idx;
    uint3 block_idx;
    uint3 block_dim;
    uint3 grid_dim;
};
extern "C" __thread EnamelEmuIndices enamel_emu_indices;

#define threadIdx (static_cast<const uint3&>(::enamel_emu_indices.thread_idx))
#define blockIdx (static_cast<const uint3&>(::enamel_emu_indices.block_idx))
#define blockDim (static_cast<const uint3&>(::enamel_emu_indices.block_dim))
#define gridDim (static_cast<const uint3&>(::enamel_emu_indices.grid_dim))
constexpr int warpSize = 32;

// ---------------------------------------------------------------- barriers and warp collectives

// Kinds of warp collective, shared with scheduler.cpp.
enum EnamelEmuCollective : int {
    ENAMEL_EMU_SYNCWARP = 0,
    ENAMEL_EMU_SHFL_IDX = 1,
    ENAMEL_EMU_SHFL_UP = 2,
    ENAMEL_EMU_SHFL_DOWN = 3,
    ENAMEL_EMU_SHFL_XOR = 4,
    ENAMEL_EMU_BALLOT = 5,
    ENAMEL_EMU_ANY = 6,
    ENAMEL_EMU_ALL = 7,
};

extern "C" int enamel_emu_syncthreads(int predicate, const char* file, unsigned line);
extern "C" unsigned long long enamel_emu_warp_collective(int kind, unsigned mask,
                                                         unsigned long long value, int param,
                                                         int width, const char* file,
                                                         unsigned line, int* undefined);
extern "C" unsigned enamel_emu_activemask(void);

using EnamelEmuSite = std::source_location;

inline void __syncthreads(EnamelEmuSite site = EnamelEmuSite::current()) {
    enamel_emu_syncthreads(0, site.file_name(), site.line());
}
inline int __syncthreads_count(int predicate, EnamelEmuSite site = EnamelEmuSite::current()) {
    return enamel_emu_syncthreads(predicate != 0, site.file_name(), site.line());
}
inline int __syncthreads_and(int predicate, EnamelEmuSite site = EnamelEmuSite::current()) {
    return enamel_emu_syncthreads(predicate != 0, site.file_name(), site.line()) ==
           static_cast<int>(blockDim.x * blockDim.y * blockDim.z);
}
inline int __syncthreads_or(int predicate, EnamelEmuSite site = EnamelEmuSite::current()) {
    return enamel_emu_syncthreads(predicate != 0, site.file_name(), site.line()) != 0;
}
inline void __syncwarp(unsigned mask = 0xffffffffu, EnamelEmuSite site = EnamelEmuSite::current()) {
    enamel_emu_warp_collective(ENAMEL_EMU_SYNCWARP, mask, 0, 0, warpSize, site.file_name(),
                               site.line(), nullptr);
}
inline unsigned __activemask() { return enamel_emu_activemask(); }

// A lane that reads a lane outside the mask or the block gets an undefined value on a GPU;
// here it gets a NaN (floating types) or an all-ones pattern (integers), so it shows.
template <typename T>
inline T enamel_emu_shuffle(int kind, unsigned mask, T value, int param, int width,
                            EnamelEmuSite site) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>,
                  "shuffles move values of at most 8 bytes");
    unsigned long long bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    int undefined = 0;
    bits = enamel_emu_warp_collective(kind, mask, bits, param, width, site.file_name(),
                                      site.line(), &undefined);
    if (undefined) bits = ~0ull;
    T out;
    std::memcpy(&out, &bits, sizeof(T));
    return out;
}

template <typename T>
inline T __shfl_sync(unsigned mask, T value, int src_lane, int width = warpSize,
                     EnamelEmuSite site = EnamelEmuSite::current()) {
    return enamel_emu_shuffle(ENAMEL_EMU_SHFL_IDX, mask, value, src_lane, width, site);
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T value, unsigned delta, int width = warpSize,
                        EnamelEmuSite site = EnamelEmuSite::current()) {
    return enamel_emu_shuffle(ENAMEL_EMU_SHFL_UP, mask, value, static_cast<int>(delta), width,
                              site);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = warpSize,
                          EnamelEmuSite site = EnamelEmuSite::current()) {
    return enamel_emu_shuffle(ENAMEL_EMU_SHFL_DOWN, mask, value, static_cast<int>(delta), width,
                              site);
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = warpSize,
                         EnamelEmuSite site = EnamelEmuSite::current()) {
    return enamel_emu_shuffle(ENAMEL_EMU_SHFL_XOR, mask, value, lane_mask, width, site);
}
inline unsigned __ballot_sync(unsigned mask, int predicate,
                              EnamelEmuSite site = EnamelEmuSite::current()) {
    return static_cast<unsigned>(enamel_emu_warp_collective(ENAMEL_EMU_BALLOT, mask,
                                                            predicate != 0, 0, warpSize,
                                                            site.file_name(), site.line(),
                                                            nullptr));
}
inline int __any_sync(unsigned mask, int predicate,
                      EnamelEmuSite site = EnamelEmuSite::current()) {
    return static_cast<int>(enamel_emu_warp_collective(ENAMEL_EMU_ANY, mask, predicate != 0, 0,
                                                       warpSize, site.file_name(), site.line(),
                                                       nullptr));
}
// Lanes of the mask that do not exist (a partial last warp) do not vote.
inline int __all_sync(unsigned mask, int predicate,
                      EnamelEmuSite site = EnamelEmuSite::current()) {
    return static_cast<int>(enamel_emu_warp_collective(ENAMEL_EMU_ALL, mask, predicate != 0, 0,
                                                       warpSize, site.file_name(), site.line(),
                                                       nullptr));
}

inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

// ---------------------------------------------------------------- atomics

template <typename T>
inline std::atomic_ref<T> enamel_emu_atomic(T* address) {
    return std::atomic_ref<T>(*address);
}
inline int atomicAdd(int* a, int v) { return enamel_emu_atomic(a).fetch_add(v); }
inline unsigned atomicAdd(unsigned* a, unsigned v) { return enamel_emu_atomic(a).fetch_add(v); }
inline unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) {
    return enamel_emu_atomic(a).fetch_add(v);
}
inline float atomicAdd(float* a, float v) { return enamel_emu_atomic(a).fetch_add(v); }
inline double atomicAdd(double* a, double v) { return enamel_emu_atomic(a).fetch_add(v); }
inline int atomicSub(int* a, int v) { return enamel_emu_atomic(a).fetch_sub(v); }
inline unsigned atomicSub(unsigned* a, unsigned v) { return enamel_emu_atomic(a).fetch_sub(v); }

template <typename T>
inline T enamel_emu_atomic_update(T* address, T (*update)(T, T), T v) {
    auto a = enamel_emu_atomic(address);
    T old = a.load();
    while (!a.compare_exchange_weak(old, update(old, v))) {
    }
    return old;
}
template <typename T>
inline T enamel_emu_max(T a, T b) { return a < b ? b : a; }
template <typename T>
inline T enamel_emu_min(T a, T b) { return b < a ? b : a; }

inline int atomicMax(int* a, int v) { return enamel_emu_atomic_update(a, enamel_emu_max<int>, v); }
inline unsigned atomicMax(unsigned* a, unsigned v) {
    return enamel_emu_atomic_update(a, enamel_emu_max<unsigned>, v);
}
inline int atomicMin(int* a, int v) { return enamel_emu_atomic_update(a, enamel_emu_min<int>, v); }
inline unsigned atomicMin(unsigned* a, unsigned v) {
    return enamel_emu_atomic_update(a, enamel_emu_min<unsigned>, v);
}
inline int atomicExch(int* a, int v) { return enamel_emu_atomic(a).exchange(v); }
inline unsigned atomicExch(unsigned* a, unsigned v) { return enamel_emu_atomic(a).exchange(v); }
inline float atomicExch(float* a, float v) { return enamel_emu_atomic(a).exchange(v); }
template <typename T>
inline T enamel_emu_cas(T* address, T compare, T value) {
    enamel_emu_atomic(address).compare_exchange_strong(compare, value);
    return compare;
}
inline int atomicCAS(int* a, int c, int v) { return enamel_emu_cas(a, c, v); }
inline unsigned atomicCAS(unsigned* a, unsigned c, unsigned v) { return enamel_emu_cas(a, c, v); }
inline unsigned long long atomicCAS(unsigned long long* a, unsigned long long c,
                                    unsigned long long v) {
    return enamel_emu_cas(a, c, v);
}
inline int atomicAnd(int* a, int v) { return enamel_emu_atomic(a).fetch_and(v); }
inline unsigned atomicAnd(unsigned* a, unsigned v) { return enamel_emu_atomic(a).fetch_and(v); }
inline int atomicOr(int* a, int v) { return enamel_emu_atomic(a).fetch_or(v); }
inline unsigned atomicOr(unsigned* a, unsigned v) { return enamel_emu_atomic(a).fetch_or(v); }

// ---------------------------------------------------------------- math and bit intrinsics

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __exp10f(float x) { return powf(10.0f, x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a < b ? b : a; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a < b ? b : a; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a < b ? b : a; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }

inline float __int_as_float(int v) { return __builtin_bit_cast(float, v); }
inline int __float_as_int(float v) { return __builtin_bit_cast(int, v); }
inline float __uint_as_float(unsigned v) { return __builtin_bit_cast(float, v); }
inline unsigned __float_as_uint(float v) { return __builtin_bit_cast(unsigned, v); }
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __clz(int v) { return v == 0 ? 32 : __builtin_clz(static_cast<unsigned>(v)); }
inline int __ffs(int v) { return __builtin_ffs(v); }
inline unsigned __brev(unsigned v) {
    unsigned r = 0;
    for (int i = 0; i < 32; ++i) r |= ((v >> i) & 1u) << (31 - i);
    return r;
}
template <typename T>
inline T __ldg(const T* p) { return *p; }

// ---------------------------------------------------------------- f16 storage

// Storage only, as in enamel's kernels: convert to float to compute. NVRTC gets the same names
// from kernels/common/half.cuh.
struct __align__(2) __half {
    _Float16 value;
};
inline float __half2float(__half h) { return static_cast<float>(h.value); }
inline __half __float2half_rn(float f) { return __half{static_cast<_Float16>(f)}; }
inline __half __float2half(float f) { return __float2half_rn(f); }
