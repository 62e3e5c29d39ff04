// f16 storage for enamel's kernels. Kernels keep tensors in f16 or f32 and compute in f32, so
// all they need is the type and the two conversions, under CUDA's names. NVRTC has no
// cuda_fp16.h, so under NVRTC they are defined here with the PTX conversion instructions; the
// emulator's shim (kernels/emu/shim.h) defines the same names over _Float16.
#pragma once

#ifdef __CUDACC_RTC__

struct __align__(2) __half {
    unsigned short bits;
};

__device__ __forceinline__ float __half2float(__half h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h.bits));
    return f;
}

// Round to nearest even, as __float2half_rn does.
__device__ __forceinline__ __half __float2half_rn(float f) {
    __half h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.bits) : "f"(f));
    return h;
}

__device__ __forceinline__ __half __float2half(float f) { return __float2half_rn(f); }

#endif
