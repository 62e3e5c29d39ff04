// Kernels with known answers that exercise every feature of the emulator's shim; tests/emu_shim.rs
// launches them. They compile under NVRTC too (scripts/nvrtc-check.py).
#include "common/half.cuh"

// One block sums blockDim.x values (a power of two, at most 256) by halving a tree in static
// shared memory; thread 0 writes the block's sum.
extern "C" __global__ void emu_test_block_sum(const float* x, float* block_sums, int n) {
    __shared__ float partial[256];
    const int t = threadIdx.x;
    const int i = blockIdx.x * blockDim.x + t;
    partial[t] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (t < stride) partial[t] += partial[t + stride];
        __syncthreads();
    }
    if (t == 0) block_sums[blockIdx.x] = partial[0];
}

// Every thread reads one value and writes seven warp-level results: a butterfly sum, a
// shift-down sum (valid in lane 0), an inclusive prefix sum, lane 7's value, a sum over its
// 8-lane segment, a float shifted down by one lane, and a sum over its half-warp using a
// half-warp mask. The grid covers x exactly.
extern "C" __global__ void emu_test_warp_ops(const int* x, int* out) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const int lane = threadIdx.x % 32;
    const int v = x[i];

    int butterfly = v;
    for (int m = 16; m > 0; m /= 2) butterfly += __shfl_xor_sync(0xffffffffu, butterfly, m);
    int down = v;
    for (int d = 16; d > 0; d /= 2) down += __shfl_down_sync(0xffffffffu, down, d);
    int scan = v;
    for (int d = 1; d < 32; d *= 2) {
        const int up = __shfl_up_sync(0xffffffffu, scan, d);
        if (lane >= d) scan += up;
    }
    const int from_lane7 = __shfl_sync(0xffffffffu, v, 7);
    int segment = v;
    for (int m = 4; m > 0; m /= 2) segment += __shfl_xor_sync(0xffffffffu, segment, m, 8);
    const float halved = __shfl_down_sync(0xffffffffu, 0.5f * v, 1);
    const unsigned half_warp = lane < 16 ? 0x0000ffffu : 0xffff0000u;
    int half_sum = v;
    for (int m = 8; m > 0; m /= 2) half_sum += __shfl_xor_sync(half_warp, half_sum, m, 16);
    __syncwarp();

    out[7 * i + 0] = butterfly;
    out[7 * i + 1] = down;
    out[7 * i + 2] = scan;
    out[7 * i + 3] = from_lane7;
    out[7 * i + 4] = segment;
    out[7 * i + 5] = __float_as_int(halved);
    out[7 * i + 6] = half_sum;
}

// Votes of one block (its last warp may be partial): the ballot of x > 0, any x > 5, all x >= 0.
extern "C" __global__ void emu_test_ballot(const int* x, unsigned* out) {
    const int t = threadIdx.x;
    const unsigned ballot = __ballot_sync(0xffffffffu, x[t] > 0);
    const int any = __any_sync(0xffffffffu, x[t] > 5);
    const int all = __all_sync(0xffffffffu, x[t] >= 0);
    out[3 * t + 0] = ballot;
    out[3 * t + 1] = any;
    out[3 * t + 2] = all;
}

// Many blocks update one set of totals: float, double, int and unsigned adds, max, min, and
// an increment done with a compare-and-swap loop.
extern "C" __global__ void emu_test_atomics(const int* x, int n, float* float_sum,
                                            double* double_sum, int* int_sum, unsigned* count,
                                            int* largest, int* smallest, unsigned* cas_count) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    atomicAdd(float_sum, (float)x[i]);
    atomicAdd(double_sum, (double)x[i]);
    atomicAdd(int_sum, x[i]);
    atomicAdd(count, 1u);
    atomicMax(largest, x[i]);
    atomicMin(smallest, x[i]);
    unsigned seen = atomicAdd(cas_count, 0u);
    unsigned assumed;
    do {
        assumed = seen;
        seen = atomicCAS(cas_count, assumed, assumed + 1u);
    } while (seen != assumed);
}

// Reverses each block's slice of x through dynamic shared memory of blockDim.x floats;
// positions past n read as zero.
extern "C" __global__ void emu_test_reverse_dynamic(const float* x, float* out, int n) {
    extern __shared__ float slice[];
    const int t = threadIdx.x;
    const int i = blockIdx.x * blockDim.x + t;
    slice[t] = i < n ? x[i] : 0.0f;
    __syncthreads();
    if (i < n) out[i] = slice[blockDim.x - 1 - t];
}

// Copies dynamic shared memory out before anything wrote it: shows what a block starts with.
extern "C" __global__ void emu_test_dynamic_start(unsigned* out) {
    extern __shared__ unsigned raw_bits[];
    out[blockIdx.x * blockDim.x + threadIdx.x] = raw_bits[threadIdx.x];
}

// A 3-D grid of 3-D blocks over an nx*ny*nz volume: each voxel records its coordinates and
// counts how often it was visited (exactly once when the index arithmetic is right).
extern "C" __global__ void emu_test_grid3d(unsigned* coords, unsigned* visits, int nx, int ny,
                                           int nz) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    const int z = blockIdx.z * blockDim.z + threadIdx.z;
    if (x >= nx || y >= ny || z >= nz) return;
    const int voxel = (z * ny + y) * nx + x;
    coords[voxel] = x + 1000u * y + 1000000u * z;
    atomicAdd(&visits[voxel], 1u);
    if (voxel == 0) coords[nx * ny * nz] = gridDim.x + 100u * gridDim.y + 10000u * gridDim.z;
}

// c (m x n) = a (m x k) * b (k x n), row-major. A 16x16 block computes a 16x16 tile of c,
// staging 16x16 tiles of a and b in shared memory (b's padded against bank conflicts).
#define MATMUL_TILE 16
extern "C" __global__ void emu_test_matmul(const float* a, const float* b, float* c, int m, int n,
                                           int k) {
    __shared__ float a_tile[MATMUL_TILE][MATMUL_TILE];
    __shared__ float b_tile[MATMUL_TILE][MATMUL_TILE + 1];
    const int tx = threadIdx.x;
    const int ty = threadIdx.y;
    const int row = blockIdx.y * MATMUL_TILE + ty;
    const int col = blockIdx.x * MATMUL_TILE + tx;
    float acc = 0.0f;
    for (int k0 = 0; k0 < k; k0 += MATMUL_TILE) {
        a_tile[ty][tx] = (row < m && k0 + tx < k) ? a[row * k + k0 + tx] : 0.0f;
        b_tile[ty][tx] = (k0 + ty < k && col < n) ? b[(k0 + ty) * n + col] : 0.0f;
        __syncthreads();
        for (int kk = 0; kk < MATMUL_TILE; ++kk) acc += a_tile[ty][kk] * b_tile[kk][tx];
        __syncthreads();
    }
    if (row < m && col < n) c[row * n + col] = acc;
}

// f16 <-> f32 through the helpers of common/half.cuh.
extern "C" __global__ void emu_test_half(const __half* halves, float* widened, const float* floats,
                                         __half* narrowed, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    widened[i] = __half2float(halves[i]);
    narrowed[i] = __float2half_rn(floats[i]);
}

// The math functions kernels use, eight results per input.
extern "C" __global__ void emu_test_math(const float* x, float* out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float v = x[i];
    out[8 * i + 0] = expf(v);
    out[8 * i + 1] = __expf(v);
    out[8 * i + 2] = rsqrtf(fabsf(v) + 1.0f);
    out[8 * i + 3] = __fdividef(v, 3.0f);
    out[8 * i + 4] = fmaxf(v, 0.0f) + fminf(v, 0.0f) * 0.5f;
    out[8 * i + 5] = tanhf(v);
    out[8 * i + 6] = __saturatef(v);
    out[8 * i + 7] = (float)max(min((int)v, 2), -2);
}
