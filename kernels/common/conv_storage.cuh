// Loads and stores of activation storage for the convolution kernels: tensors are kept in f32
// or f16, arithmetic is always f32. Overloads let one kernel template serve both storages.
#pragma once

#include "common/half.cuh"

// Loop unrolling hints for NVRTC; the emulator's host compiler decides on its own.
#ifdef ENAMEL_EMU
#define CONV_UNROLL
#define CONV_NO_UNROLL
#else
#define CONV_UNROLL _Pragma("unroll")
#define CONV_NO_UNROLL _Pragma("unroll 1")
#endif

__device__ __forceinline__ float conv_load(const float* p) { return *p; }

__device__ __forceinline__ float conv_load(const __half* p) { return __half2float(*p); }

__device__ __forceinline__ void conv_store(float* p, float v) { *p = v; }

__device__ __forceinline__ void conv_store(__half* p, float v) { *p = __float2half_rn(v); }
