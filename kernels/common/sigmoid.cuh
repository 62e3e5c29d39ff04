// The logistic sigmoid in f32, shared by the activation and the binary Dice loss.
#pragma once

// 1/(1 + e^-x), for x < 0 as e^x/(1 + e^x) so that nothing overflows.
__device__ __forceinline__ float sigmoid(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    const float e = expf(x);
    return e / (1.0f + e);
}
