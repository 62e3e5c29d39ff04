// conv_transpose3d (cubic kernel k, stride s, padding p, output_padding, one group) for f32 and
// f16 activation storage, f32 arithmetic. Weights arrive as f32 (the host widens f16 weights).
//
// Layouts: x N,Cin,D,H,W; weight Cin,Cout,k,k,k (PyTorch's order); y N,Cout,OD,OH,OW with
// OD = (D - 1)*s - 2p + k + output_padding, and
//     y[n, o, i*s - p + tap] += x[n, ci, i] * weight[ci, o, tap]   (per axis), + bias[o].
// The U-Net uses k = s = 2, p = 0: every output voxel then receives exactly one tap per axis.
// All kernels gather (each output written by one thread), so no atomics are needed except one
// per weight per block in the weight gradient.

#include "common/half.cuh"
#include "common/storage.cuh"

constexpr int CT_TILE_W = 16;
constexpr int CT_TILE_H = 8;
constexpr int CT_TILE_VOXELS = CT_TILE_W * CT_TILE_H;
// Channels each thread accumulates in registers, and channels staged per step.
constexpr int CT_CHANNEL_TILE = 8;
constexpr int CT_CHUNK = 4;
// Weight gradient: threads per (input channel, output channel) pair and taps per thread.
constexpr int CT_WGRAD_LANES = 8;
constexpr int CT_WGRAD_TAPS = 4;
constexpr int CT_WGRAD_TAP_GROUP = CT_WGRAD_LANES * CT_WGRAD_TAPS;
constexpr int CT_WGRAD_THREADS = CT_CHUNK * CT_CHANNEL_TILE * CT_WGRAD_LANES;

// Sized by the host: see src/backend/device/conv.rs.
extern __shared__ float conv_t_smem[];

// Forward. Thread (tx, ty) owns output voxel (oh0 + ty, ow0 + tx) at depth oz for
// CT_CHANNEL_TILE output channels in registers. Per axis the taps that reach an output
// coordinate z are those with tap = (z + p) mod s (+ s, + 2s, ... below k), reading input
// i = (z + p - tap) / s; the thread walks them and, per step of CT_CHUNK input channels, reads
// x through the cache (with k = s = 2 the 2x2 threads of a footprint share each value) and the
// weights [CT_CHANNEL_TILE][CT_CHUNK][k^3] from shared memory, where all threads of a warp read
// one address or a few (a broadcast).
// Grid (tiles of OH x OW, OD * N, ceil(Cout / CT_CHANNEL_TILE)), block (CT_TILE_W, CT_TILE_H).
template <typename T>
__device__ void conv_t3d_forward(const T* __restrict__ x, const float* __restrict__ weight,
                                 const float* __restrict__ bias, T* __restrict__ y, int cin,
                                 int cout, int d, int h, int w, int od, int oh, int ow, int k,
                                 int stride, int pad) {
    const int tx = threadIdx.x;
    const int ty = threadIdx.y;
    const int tid = ty * CT_TILE_W + tx;
    const int tiles_w = (ow + CT_TILE_W - 1) / CT_TILE_W;
    const int ox = (blockIdx.x % tiles_w) * CT_TILE_W + tx;
    const int oy = (blockIdx.x / tiles_w) * CT_TILE_H + ty;
    const int oz = blockIdx.y % od;
    const int n = blockIdx.y / od;
    const int co0 = blockIdx.z * CT_CHANNEL_TILE;
    const int k3 = k * k * k;
    const bool inside = ox < ow && oy < oh;
    float* s_w = conv_t_smem;

    float acc[CT_CHANNEL_TILE];
CONV_UNROLL
    for (int o = 0; o < CT_CHANNEL_TILE; ++o) acc[o] = 0.0f;

    for (int c0 = 0; c0 < cin; c0 += CT_CHUNK) {
        for (int e = tid; e < CT_CHANNEL_TILE * CT_CHUNK * k3; e += CT_TILE_VOXELS) {
            const int co = co0 + e / (CT_CHUNK * k3);
            const int ci = c0 + (e / k3) % CT_CHUNK;
            s_w[e] = co < cout && ci < cin ? weight[((size_t)ci * cout + co) * k3 + e % k3] : 0.0f;
        }
        __syncthreads();

        const int chunk = min(CT_CHUNK, cin - c0);
        for (int kz = inside ? (oz + pad) % stride : k; kz < k; kz += stride) {
            const int iz = (oz + pad - kz) / stride;
            if (iz < 0) break;
            if (iz >= d) continue;
            for (int ky = (oy + pad) % stride; ky < k; ky += stride) {
                const int iy = (oy + pad - ky) / stride;
                if (iy < 0) break;
                if (iy >= h) continue;
                for (int kx = (ox + pad) % stride; kx < k; kx += stride) {
                    const int ix = (ox + pad - kx) / stride;
                    if (ix < 0) break;
                    if (ix >= w) continue;
                    const int tap = (kz * k + ky) * k + kx;
                    const T* xp = x + ((((size_t)n * cin + c0) * d + iz) * h + iy) * w + ix;
CONV_NO_UNROLL
                    for (int c = 0; c < chunk; ++c) {
                        const float v = load(xp + (size_t)c * d * h * w);
                        const float* wt = s_w + c * k3 + tap;
CONV_UNROLL
                        for (int o = 0; o < CT_CHANNEL_TILE; ++o) {
                            acc[o] += v * wt[o * CT_CHUNK * k3];
                        }
                    }
                }
            }
        }
        __syncthreads();
    }

    if (!inside) return;
CONV_UNROLL
    for (int o = 0; o < CT_CHANNEL_TILE; ++o) {
        const int co = co0 + o;
        if (co < cout) {
            const float b = bias != nullptr ? bias[co] : 0.0f;
            store(y + ((((size_t)n * cout + co) * od + oz) * oh + oy) * ow + ox, acc[o] + b);
        }
    }
}

// register-budget: 64
extern "C" __global__ void __launch_bounds__(CT_TILE_VOXELS, 8) conv_t3d_fwd_f32(const float* x, const float* weight, const float* bias, float* y, int cin, int cout, int d, int h, int w, int od, int oh, int ow, int k, int stride, int pad) {
    conv_t3d_forward<float>(x, weight, bias, y, cin, cout, d, h, w, od, oh, ow, k, stride, pad);
}

// register-budget: 64
extern "C" __global__ void __launch_bounds__(CT_TILE_VOXELS, 8) conv_t3d_fwd_f16(const __half* x, const float* weight, const float* bias, __half* y, int cin, int cout, int d, int h, int w, int od, int oh, int ow, int k, int stride, int pad) {
    conv_t3d_forward<__half>(x, weight, bias, y, cin, cout, d, h, w, od, oh, ow, k, stride, pad);
}

// Input gradient dx[n, ci, i] = sum over o and taps of gy[n, o, i*s - p + tap] * w[ci, o, tap]:
// a strided correlation of gy. Thread (tx, ty) owns input voxel (ih0 + ty, iw0 + tx) at depth
// iz for CT_CHANNEL_TILE input channels in registers; per step of CT_CHUNK output channels the
// weights [CT_CHANNEL_TILE][CT_CHUNK][k^3] sit in shared memory (broadcast reads) and gy is
// read through the cache (with k = s = 2 each gy value is read exactly once per channel tile).
// Grid (tiles of H x W, D * N, ceil(Cin / CT_CHANNEL_TILE)), block (CT_TILE_W, CT_TILE_H).
template <typename T>
__device__ void conv_t3d_input_grad(const T* __restrict__ gy, const float* __restrict__ weight,
                                    T* __restrict__ dx, int cin, int cout, int d, int h, int w,
                                    int od, int oh, int ow, int k, int stride, int pad) {
    const int tx = threadIdx.x;
    const int ty = threadIdx.y;
    const int tid = ty * CT_TILE_W + tx;
    const int tiles_w = (w + CT_TILE_W - 1) / CT_TILE_W;
    const int ix = (blockIdx.x % tiles_w) * CT_TILE_W + tx;
    const int iy = (blockIdx.x / tiles_w) * CT_TILE_H + ty;
    const int iz = blockIdx.y % d;
    const int n = blockIdx.y / d;
    const int ci0 = blockIdx.z * CT_CHANNEL_TILE;
    const int k3 = k * k * k;
    const bool inside = ix < w && iy < h;
    float* s_w = conv_t_smem;

    float acc[CT_CHANNEL_TILE];
CONV_UNROLL
    for (int c = 0; c < CT_CHANNEL_TILE; ++c) acc[c] = 0.0f;

    for (int o0 = 0; o0 < cout; o0 += CT_CHUNK) {
        for (int e = tid; e < CT_CHANNEL_TILE * CT_CHUNK * k3; e += CT_TILE_VOXELS) {
            const int ci = ci0 + e / (CT_CHUNK * k3);
            const int co = o0 + (e / k3) % CT_CHUNK;
            s_w[e] = ci < cin && co < cout ? weight[((size_t)ci * cout + co) * k3 + e % k3] : 0.0f;
        }
        __syncthreads();

        const int chunk = min(CT_CHUNK, cout - o0);
        for (int kz = 0; inside && kz < k; ++kz) {
            const int zz = iz * stride - pad + kz;
            if (zz < 0 || zz >= od) continue;
            for (int ky = 0; ky < k; ++ky) {
                const int zy = iy * stride - pad + ky;
                if (zy < 0 || zy >= oh) continue;
                for (int kx = 0; kx < k; ++kx) {
                    const int zx = ix * stride - pad + kx;
                    if (zx < 0 || zx >= ow) continue;
                    const int tap = (kz * k + ky) * k + kx;
                    const T* gp = gy + ((((size_t)n * cout + o0) * od + zz) * oh + zy) * ow + zx;
                    for (int o = 0; o < chunk; ++o) {
                        const float g = load(gp + (size_t)o * od * oh * ow);
                        const float* wt = s_w + o * k3 + tap;
CONV_UNROLL
                        for (int c = 0; c < CT_CHANNEL_TILE; ++c) {
                            acc[c] += g * wt[c * CT_CHUNK * k3];
                        }
                    }
                }
            }
        }
        __syncthreads();
    }

    if (!inside) return;
CONV_UNROLL
    for (int c = 0; c < CT_CHANNEL_TILE; ++c) {
        const int ci = ci0 + c;
        if (ci < cin) store(dx + ((((size_t)n * cin + ci) * d + iz) * h + iy) * w + ix, acc[c]);
    }
}

// register-budget: 64
extern "C" __global__ void __launch_bounds__(CT_TILE_VOXELS, 8) conv_t3d_bwd_input_f32(const float* gy, const float* weight, float* dx, int cin, int cout, int d, int h, int w, int od, int oh, int ow, int k, int stride, int pad) {
    conv_t3d_input_grad<float>(gy, weight, dx, cin, cout, d, h, w, od, oh, ow, k, stride, pad);
}

// register-budget: 64
extern "C" __global__ void __launch_bounds__(CT_TILE_VOXELS, 8) conv_t3d_bwd_input_f16(const __half* gy, const float* weight, __half* dx, int cin, int cout, int d, int h, int w, int od, int oh, int ow, int k, int stride, int pad) {
    conv_t3d_input_grad<__half>(gy, weight, dx, cin, cout, d, h, w, od, oh, ow, k, stride, pad);
}

// Weight gradient dW[ci, o, tap] = sum over n and input voxels i of x[n, ci, i] *
// gy[n, o, i*s - p + tap].
//
// A block owns CT_CHUNK input channels x CT_CHANNEL_TILE output channels x one group of up to
// CT_WGRAD_TAP_GROUP taps, and walks a strided share of all input tiles (CT_TILE_H x CT_TILE_W
// voxels at one depth of one image), staging the tile's x values of its input channels in
// shared memory. Thread ((c * CT_CHANNEL_TILE + o) * CT_WGRAD_LANES + lane) owns taps lane,
// lane + 8, ... of the group for the pair (c, o), reads gy through the cache (with k = s = 2
// the 8 lanes of a pair read the 8 voxels of one footprint) and keeps its sums in registers
// across all tiles; at the end each sum goes to dW with one atomic: one per weight per block.
// Grid (blocks sharing the tiles, ceil(Cin / CT_CHUNK) * tap groups, ceil(Cout /
// CT_CHANNEL_TILE)), block CT_WGRAD_THREADS. dW (f32) must be zeroed before the launch.
template <typename T>
__device__ void conv_t3d_weight_grad(const T* __restrict__ x, const T* __restrict__ gy,
                                     float* __restrict__ dweight, int n_batch, int cin, int cout,
                                     int d, int h, int w, int od, int oh, int ow, int k,
                                     int stride, int pad) {
    const int tid = threadIdx.x;
    const int lane = tid % CT_WGRAD_LANES;
    const int o = (tid / CT_WGRAD_LANES) % CT_CHANNEL_TILE;
    const int c = tid / (CT_WGRAD_LANES * CT_CHANNEL_TILE);
    const int k3 = k * k * k;
    const int tap_groups = (k3 + CT_WGRAD_TAP_GROUP - 1) / CT_WGRAD_TAP_GROUP;
    const int ci0 = (blockIdx.y / tap_groups) * CT_CHUNK;
    const int tap0 = (blockIdx.y % tap_groups) * CT_WGRAD_TAP_GROUP;
    const int co = blockIdx.z * CT_CHANNEL_TILE + o;
    const bool active = co < cout && ci0 + c < cin;
    float* s_x = conv_t_smem;

    // Each owned tap as (kz, ky, kx); a tap past k^3 gets kz = -od, which never lands inside.
    int tz[CT_WGRAD_TAPS], tyx[CT_WGRAD_TAPS];
    float acc[CT_WGRAD_TAPS];
CONV_UNROLL
    for (int j = 0; j < CT_WGRAD_TAPS; ++j) {
        const int tap = tap0 + lane + j * CT_WGRAD_LANES;
        tz[j] = tap < k3 ? tap / (k * k) : -od - stride * d;
        tyx[j] = tap % (k * k);
        acc[j] = 0.0f;
    }

    const int tiles_w = (w + CT_TILE_W - 1) / CT_TILE_W;
    const int tiles_h = (h + CT_TILE_H - 1) / CT_TILE_H;
    const int tiles = n_batch * d * tiles_h * tiles_w;
    for (int t = blockIdx.x; t < tiles; t += gridDim.x) {
        const int iw0 = (t % tiles_w) * CT_TILE_W;
        const int ih0 = ((t / tiles_w) % tiles_h) * CT_TILE_H;
        const int iz = (t / (tiles_w * tiles_h)) % d;
        const int n = t / (tiles_w * tiles_h * d);

        for (int e = tid; e < CT_CHUNK * CT_TILE_VOXELS; e += CT_WGRAD_THREADS) {
            const int ci = ci0 + e / CT_TILE_VOXELS;
            const int iy = ih0 + (e % CT_TILE_VOXELS) / CT_TILE_W;
            const int ix = iw0 + e % CT_TILE_W;
            float v = 0.0f;
            if (ci < cin && iy < h && ix < w) {
                v = load(x + ((((size_t)n * cin + ci) * d + iz) * h + iy) * w + ix);
            }
            s_x[e] = v;
        }
        __syncthreads();

        const T* g = gy + ((size_t)n * cout + (active ? co : 0)) * od * oh * ow;
        for (int vy = 0; active && vy < CT_TILE_H; ++vy) {
            const int iy = ih0 + vy;
            if (iy >= h) break;
            for (int vx = 0; vx < CT_TILE_W; ++vx) {
                const int ix = iw0 + vx;
                if (ix >= w) break;
                const float xv = s_x[c * CT_TILE_VOXELS + vy * CT_TILE_W + vx];
CONV_UNROLL
                for (int j = 0; j < CT_WGRAD_TAPS; ++j) {
                    const int zz = iz * stride - pad + tz[j];
                    const int zy = iy * stride - pad + tyx[j] / k;
                    const int zx = ix * stride - pad + tyx[j] % k;
                    if (zz >= 0 && zz < od && zy >= 0 && zy < oh && zx >= 0 && zx < ow) {
                        acc[j] += xv * load(g + ((size_t)zz * oh + zy) * ow + zx);
                    }
                }
            }
        }
        __syncthreads();
    }

    if (!active) return;
    const int ci = ci0 + c;
CONV_UNROLL
    for (int j = 0; j < CT_WGRAD_TAPS; ++j) {
        const int tap = tap0 + lane + j * CT_WGRAD_LANES;
        if (tap < k3) atomicAdd(dweight + ((size_t)ci * cout + co) * k3 + tap, acc[j]);
    }
}

// register-budget: 64
extern "C" __global__ void __launch_bounds__(CT_WGRAD_THREADS, 4) conv_t3d_bwd_weight_f32(const float* x, const float* gy, float* dweight, int n, int cin, int cout, int d, int h, int w, int od, int oh, int ow, int k, int stride, int pad) {
    conv_t3d_weight_grad<float>(x, gy, dweight, n, cin, cout, d, h, w, od, oh, ow, k, stride, pad);
}

// register-budget: 64
extern "C" __global__ void __launch_bounds__(CT_WGRAD_THREADS, 4) conv_t3d_bwd_weight_f16(const __half* x, const __half* gy, float* dweight, int n, int cin, int cout, int d, int h, int w, int od, int oh, int ow, int k, int stride, int pad) {
    conv_t3d_weight_grad<__half>(x, gy, dweight, n, cin, cout, d, h, w, od, oh, ow, k, stride, pad);
}
