// conv3d (stride 1, odd cubic kernel k <= 5, zero padding) for f32 and f16 activation storage,
// f32 arithmetic. Weights and bias arrive as f32 (the host widens f16 weights, which is exact).
//
// Layouts: x N,Cin,D,H,W; weight Cout,Cin,k,k,k; y N,Cout,OD,OH,OW with OD = D + 2*pad - k + 1.
// The U-Net's layers have 9 to 72 channels on volumes up to 168x120x120, so a block works on
// one spatial tile and a few channels at a time: the channel counts are too small for a GEMM
// formulation to pay for its im2col traffic, and too large to read the input once per output
// channel from global memory.

#include "common/half.cuh"
#include "common/storage.cuh"

// Output tile of one block: TILE_W x TILE_H voxels at one output depth.
constexpr int TILE_W = 16;
constexpr int TILE_H = 8;
constexpr int TILE_VOXELS = TILE_W * TILE_H;
// Output channels each thread accumulates in registers.
constexpr int COUT_TILE = 8;
// Input channels staged in shared memory per step.
constexpr int CIN_CHUNK = 4;
// Weight gradient: threads per (output channel, input channel) pair and taps per thread.
constexpr int WGRAD_LANES = 8;
constexpr int WGRAD_TAPS = 4;
constexpr int WGRAD_TAP_GROUP = WGRAD_LANES * WGRAD_TAPS;
constexpr int WGRAD_THREADS = COUT_TILE * CIN_CHUNK * WGRAD_LANES;

// Sized by the host: see src/backend/device/conv.rs.
extern __shared__ float conv_smem[];

// One output tile of a stride-1 correlation. Thread (tx, ty) owns output voxel
// (oh0 + ty, ow0 + tx) at depth oz for COUT_TILE output channels, kept in registers, so every
// input value staged in shared memory serves COUT_TILE * k^3 multiply-adds. Per step the block
// stages CIN_CHUNK input channels of the tile's halo slab (k depths x (TILE_H+k-1) x
// (TILE_W+k-1)) and the matching weights [COUT_TILE][CIN_CHUNK][k^3]; all threads read the
// same weight at once (a shared-memory broadcast) and neighbouring input values (no conflict
// along a row).
//
// ADJOINT turns the kernel into the input gradient of a conv3d: the "input" is gy, the weight
// is read transposed (w[co][ci] as w'[ci][co]) and flipped in all three axes, and the caller
// passes pad' = k - 1 - pad (which may be negative: then the slab starts inside the input).
template <typename T, bool ADJOINT>
__device__ void conv3d_tile(const T* __restrict__ x, const float* __restrict__ weight,
                            const float* __restrict__ bias, T* __restrict__ y, int cin, int cout,
                            int d, int h, int w, int od, int oh, int ow, int k, int pad) {
    const int tx = threadIdx.x;
    const int ty = threadIdx.y;
    const int tid = ty * TILE_W + tx;
    const int tiles_w = (ow + TILE_W - 1) / TILE_W;
    const int ow0 = (blockIdx.x % tiles_w) * TILE_W;
    const int oh0 = (blockIdx.x / tiles_w) * TILE_H;
    const int oz = blockIdx.y % od;
    const int n = blockIdx.y / od;
    const int co0 = blockIdx.z * COUT_TILE;

    const int sw = TILE_W + k - 1;
    const int sh = TILE_H + k - 1;
    const int slab = k * sh * sw;
    const int k3 = k * k * k;
    float* s_in = conv_smem;
    float* s_w = conv_smem + CIN_CHUNK * slab;

    float acc[COUT_TILE];
CONV_UNROLL
    for (int o = 0; o < COUT_TILE; ++o) acc[o] = 0.0f;

    for (int c0 = 0; c0 < cin; c0 += CIN_CHUNK) {
        for (int e = tid; e < CIN_CHUNK * slab; e += TILE_VOXELS) {
            const int c = e / slab;
            const int r = e - c * slab;
            const int kz = r / (sh * sw);
            const int yy = (r / sw) % sh;
            const int xx = r % sw;
            const int ci = c0 + c;
            const int iz = oz + kz - pad;
            const int iy = oh0 + yy - pad;
            const int ix = ow0 + xx - pad;
            float v = 0.0f;
            if (ci < cin && iz >= 0 && iz < d && iy >= 0 && iy < h && ix >= 0 && ix < w) {
                v = load(x + ((((size_t)n * cin + ci) * d + iz) * h + iy) * w + ix);
            }
            s_in[e] = v;
        }
        for (int e = tid; e < COUT_TILE * CIN_CHUNK * k3; e += TILE_VOXELS) {
            const int o = e / (CIN_CHUNK * k3);
            const int c = (e / k3) % CIN_CHUNK;
            const int tap = e % k3;
            const int co = co0 + o;
            const int ci = c0 + c;
            float v = 0.0f;
            if (co < cout && ci < cin) {
                v = ADJOINT ? weight[((size_t)ci * cout + co) * k3 + (k3 - 1 - tap)]
                            : weight[((size_t)co * cin + ci) * k3 + tap];
            }
            s_w[e] = v;
        }
        __syncthreads();

        const int chunk = min(CIN_CHUNK, cin - c0);
        for (int c = 0; c < chunk; ++c) {
            for (int kz = 0; kz < k; ++kz) {
                for (int ky = 0; ky < k; ++ky) {
                    const float* row = s_in + ((c * k + kz) * sh + ty + ky) * sw + tx;
                    const float* wt = s_w + (c * k + kz) * k * k + ky * k;
                    for (int kx = 0; kx < k; ++kx) {
                        const float v = row[kx];
CONV_UNROLL
                        for (int o = 0; o < COUT_TILE; ++o) {
                            acc[o] += v * wt[o * CIN_CHUNK * k3 + kx];
                        }
                    }
                }
            }
        }
        __syncthreads();
    }

    const int ox = ow0 + tx;
    const int oy = oh0 + ty;
    if (ox >= ow || oy >= oh) return;
CONV_UNROLL
    for (int o = 0; o < COUT_TILE; ++o) {
        const int co = co0 + o;
        if (co < cout) {
            const float b = bias != nullptr ? bias[co] : 0.0f;
            store(y + ((((size_t)n * cout + co) * od + oz) * oh + oy) * ow + ox, acc[o] + b);
        }
    }
}

// Forward: grid (tiles of OH x OW, OD * N, ceil(Cout / COUT_TILE)), block (TILE_W, TILE_H).
// register-budget: 64
extern "C" __global__ void __launch_bounds__(TILE_VOXELS, 8) conv3d_fwd_f32(const float* x, const float* weight, const float* bias, float* y, int cin, int cout, int d, int h, int w, int od, int oh, int ow, int k, int pad) {
    conv3d_tile<float, false>(x, weight, bias, y, cin, cout, d, h, w, od, oh, ow, k, pad);
}

// register-budget: 64
extern "C" __global__ void __launch_bounds__(TILE_VOXELS, 8) conv3d_fwd_f16(const __half* x, const float* weight, const float* bias, __half* y, int cin, int cout, int d, int h, int w, int od, int oh, int ow, int k, int pad) {
    conv3d_tile<__half, false>(x, weight, bias, y, cin, cout, d, h, w, od, oh, ow, k, pad);
}

// Input gradient: the forward tile in ADJOINT mode with gy as its input (cin = the conv's
// Cout, cout = its Cin), the conv's weight as stored, and pad' = k - 1 - pad.
// register-budget: 64
extern "C" __global__ void __launch_bounds__(TILE_VOXELS, 8) conv3d_bwd_input_f32(const float* gy, const float* weight, float* dx, int cin, int cout, int d, int h, int w, int od, int oh, int ow, int k, int pad) {
    conv3d_tile<float, true>(gy, weight, nullptr, dx, cin, cout, d, h, w, od, oh, ow, k, pad);
}

// register-budget: 64
extern "C" __global__ void __launch_bounds__(TILE_VOXELS, 8) conv3d_bwd_input_f16(const __half* gy, const float* weight, __half* dx, int cin, int cout, int d, int h, int w, int od, int oh, int ow, int k, int pad) {
    conv3d_tile<__half, true>(gy, weight, nullptr, dx, cin, cout, d, h, w, od, oh, ow, k, pad);
}

// Weight gradient dW[co][ci][tap] = sum over n and output voxels of gy * shifted x.
//
// A block owns COUT_TILE output channels x CIN_CHUNK input channels x one group of up to
// WGRAD_TAP_GROUP kernel taps, and walks a strided share of all output tiles (one TILE_H x
// TILE_W tile at one depth of one image each), staging per tile the x halo slab of its input
// channels and the gy tile of its output channels in shared memory. Thread
// ((o * CIN_CHUNK + c) * WGRAD_LANES + lane) owns taps lane, lane + 8, ... of the group for the
// pair (o, c) and sums their products over the tile's voxels in registers, across all tiles of
// the block. Only at the end does each thread add its WGRAD_TAPS sums to dW with one atomic
// each: one atomic per weight per block, not per product.
//
// Grid (blocks sharing the tiles, ceil(Cin / CIN_CHUNK) * tap groups, ceil(Cout / COUT_TILE)),
// block WGRAD_THREADS. dW (f32) must be zeroed before the launch.
template <typename T>
__device__ void conv3d_weight_grad(const T* __restrict__ x, const T* __restrict__ gy,
                                   float* __restrict__ dweight, int n_batch, int cin, int cout,
                                   int d, int h, int w, int od, int oh, int ow, int k, int pad) {
    const int tid = threadIdx.x;
    const int lane = tid % WGRAD_LANES;
    const int c = (tid / WGRAD_LANES) % CIN_CHUNK;
    const int o = tid / (WGRAD_LANES * CIN_CHUNK);
    const int k3 = k * k * k;
    const int tap_groups = (k3 + WGRAD_TAP_GROUP - 1) / WGRAD_TAP_GROUP;
    const int c0 = (blockIdx.y / tap_groups) * CIN_CHUNK;
    const int tap0 = (blockIdx.y % tap_groups) * WGRAD_TAP_GROUP;
    const int co0 = blockIdx.z * COUT_TILE;

    const int sw = TILE_W + k - 1;
    const int sh = TILE_H + k - 1;
    const int slab = k * sh * sw;
    float* s_in = conv_smem;
    float* s_gy = conv_smem + CIN_CHUNK * slab;

    // Offset of each owned tap inside the slab, relative to the voxel's own slab position.
    int tap_offset[WGRAD_TAPS];
    float acc[WGRAD_TAPS];
CONV_UNROLL
    for (int j = 0; j < WGRAD_TAPS; ++j) {
        const int tap = tap0 + lane + j * WGRAD_LANES;
        const int kz = tap / (k * k);
        const int ky = (tap / k) % k;
        const int kx = tap % k;
        // A tap past k^3 reads the slab's first value and is never stored.
        tap_offset[j] = tap < k3 ? (c * k + kz) * sh * sw + ky * sw + kx : 0;
        acc[j] = 0.0f;
    }

    const int tiles_w = (ow + TILE_W - 1) / TILE_W;
    const int tiles_h = (oh + TILE_H - 1) / TILE_H;
    const int tiles = n_batch * od * tiles_h * tiles_w;
    for (int t = blockIdx.x; t < tiles; t += gridDim.x) {
        const int ow0 = (t % tiles_w) * TILE_W;
        const int oh0 = ((t / tiles_w) % tiles_h) * TILE_H;
        const int oz = (t / (tiles_w * tiles_h)) % od;
        const int n = t / (tiles_w * tiles_h * od);

        for (int e = tid; e < CIN_CHUNK * slab; e += WGRAD_THREADS) {
            const int cc = e / slab;
            const int r = e - cc * slab;
            const int iz = oz + r / (sh * sw) - pad;
            const int iy = oh0 + (r / sw) % sh - pad;
            const int ix = ow0 + r % sw - pad;
            const int ci = c0 + cc;
            float v = 0.0f;
            if (ci < cin && iz >= 0 && iz < d && iy >= 0 && iy < h && ix >= 0 && ix < w) {
                v = load(x + ((((size_t)n * cin + ci) * d + iz) * h + iy) * w + ix);
            }
            s_in[e] = v;
        }
        for (int e = tid; e < COUT_TILE * TILE_VOXELS; e += WGRAD_THREADS) {
            const int co = co0 + e / TILE_VOXELS;
            const int oy = oh0 + (e % TILE_VOXELS) / TILE_W;
            const int ox = ow0 + e % TILE_W;
            float v = 0.0f;
            if (co < cout && oy < oh && ox < ow) {
                v = load(gy + ((((size_t)n * cout + co) * od + oz) * oh + oy) * ow + ox);
            }
            s_gy[e] = v;
        }
        __syncthreads();

        const float* g = s_gy + o * TILE_VOXELS;
        for (int vy = 0; vy < TILE_H; ++vy) {
            for (int vx = 0; vx < TILE_W; ++vx) {
                const float gv = g[vy * TILE_W + vx];
                const float* in = s_in + vy * sw + vx;
CONV_UNROLL
                for (int j = 0; j < WGRAD_TAPS; ++j) {
                    acc[j] += gv * in[tap_offset[j]];
                }
            }
        }
        __syncthreads();
    }

    const int co = co0 + o;
    const int ci = c0 + c;
    if (co >= cout || ci >= cin) return;
CONV_UNROLL
    for (int j = 0; j < WGRAD_TAPS; ++j) {
        const int tap = tap0 + lane + j * WGRAD_LANES;
        if (tap < k3) atomicAdd(dweight + ((size_t)co * cin + ci) * k3 + tap, acc[j]);
    }
}

// register-budget: 64
extern "C" __global__ void __launch_bounds__(WGRAD_THREADS, 4) conv3d_bwd_weight_f32(const float* x, const float* gy, float* dweight, int n, int cin, int cout, int d, int h, int w, int od, int oh, int ow, int k, int pad) {
    conv3d_weight_grad<float>(x, gy, dweight, n, cin, cout, d, h, w, od, oh, ow, k, pad);
}

// register-budget: 64
extern "C" __global__ void __launch_bounds__(WGRAD_THREADS, 4) conv3d_bwd_weight_f16(const __half* x, const __half* gy, float* dweight, int n, int cin, int cout, int d, int h, int w, int od, int oh, int ow, int k, int pad) {
    conv3d_weight_grad<__half>(x, gy, dweight, n, cin, cout, d, h, w, od, oh, ow, k, pad);
}

// Bias gradient (of conv3d and conv_transpose3d): db[c] = sum of gy over n and the volume.
// Block (c, part) sums a grid-strided share of channel c's n * volume values, 256 threads
// each holding a running sum; a tree in shared memory reduces the 256 sums and thread 0 adds
// the block's total to db[c] with one atomic. The parts (gridDim.y) spread one channel over
// many SMs: the layers have only 9 to 72 channels but millions of voxels each.
// Grid (C, parts), block (CHANNEL_SUM_THREADS). db must be zeroed before the launch.
constexpr int CHANNEL_SUM_THREADS = 256;

template <typename T>
__device__ void channel_sum(const T* __restrict__ gy, float* __restrict__ db, int n_batch,
                            int channels, int volume) {
    __shared__ float partial[CHANNEL_SUM_THREADS];
    const int c = blockIdx.x;
    const int tid = threadIdx.x;
    const long long count = (long long)n_batch * volume;
    const long long step = (long long)gridDim.y * CHANNEL_SUM_THREADS;
    float sum = 0.0f;
    for (long long e = (long long)blockIdx.y * CHANNEL_SUM_THREADS + tid; e < count; e += step) {
        const long long n = e / volume;
        sum += load(gy + (n * channels + c) * volume + (e - n * volume));
    }
    partial[tid] = sum;
    __syncthreads();
    for (int stride = CHANNEL_SUM_THREADS / 2; stride > 0; stride /= 2) {
        if (tid < stride) partial[tid] += partial[tid + stride];
        __syncthreads();
    }
    if (tid == 0) atomicAdd(db + c, partial[0]);
}

// register-budget: 40
extern "C" __global__ void conv_channel_sum_f32(const float* gy, float* db, int n, int channels, int volume) {
    channel_sum<float>(gy, db, n, channels, volume);
}

// register-budget: 40
extern "C" __global__ void conv_channel_sum_f16(const __half* gy, float* db, int n, int channels, int volume) {
    channel_sum<__half>(gy, db, n, channels, volume);
}
