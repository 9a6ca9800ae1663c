// fp8_quant.cu - the fast fp8 kernels: same results as fp8_reference.cu bit for bit, same
// parameter order. Memory-bound: 8-16 byte vector accesses where pointers and shapes allow
// (checked in the kernel, uniformly for the whole launch), a scalar path otherwise; grid-stride
// loops and 64-bit indices everywhere. Block sizes are the host's (cuda_backend.c):
// DSK4J_THREADS for cast / act_quant / weight_dequant, DSK4J_WQ_THREADS for weight_quant.
#include "fp8_convert.cuh"

#define DSK4J_THREADS 256
#define DSK4J_WQ_THREADS 512

__device__ __forceinline__ bool dsk4j_aligned(const void* p, unsigned a) {
    return ((unsigned long long)p & (unsigned long long)(a - 1u)) == 0ull;
}
__device__ __forceinline__ int dsk4j_dtype_size(int dt) {
    return dt == DSK4J_DT_F32 ? 4 : (dt == DSK4J_DT_BF16 || dt == DSK4J_DT_F16) ? 2 : 1;
}

// ---- 8 consecutive elements, vector index v (elements 8v .. 8v+7), pointer aligned ----
__device__ __forceinline__ void dsk4j_load8(const void* __restrict__ p, int dt, long long v, float f[8]) {
    if (dt == DSK4J_DT_F32) {
        const float4 a = ((const float4*)p)[2 * v], b = ((const float4*)p)[2 * v + 1];
        f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w; f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
    } else if (dt == DSK4J_DT_BF16 || dt == DSK4J_DT_F16) {
        const uint4 q = ((const uint4*)p)[v];
        const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            f[2 * i] = dt == DSK4J_DT_BF16 ? dsk4j_bf16_to_f32(w[i] & 0xffffu) : dsk4j_f16_to_f32(w[i] & 0xffffu);
            f[2 * i + 1] = dt == DSK4J_DT_BF16 ? dsk4j_bf16_to_f32(w[i] >> 16) : dsk4j_f16_to_f32(w[i] >> 16);
        }
    } else {
        const uint2 q = ((const uint2*)p)[v];
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const uint32_t b = ((i < 4 ? q.x : q.y) >> (8 * (i & 3))) & 0xffu;
            f[i] = dt == DSK4J_DT_E4M3 ? dsk4j_e4m3_to_f32(b) : dsk4j_e5m2_to_f32(b);
        }
    }
}
__device__ __forceinline__ void dsk4j_store8(void* __restrict__ p, int dt, long long v, const float f[8]) {
    if (dt == DSK4J_DT_F32) {
        ((float4*)p)[2 * v] = make_float4(f[0], f[1], f[2], f[3]);
        ((float4*)p)[2 * v + 1] = make_float4(f[4], f[5], f[6], f[7]);
    } else if (dt == DSK4J_DT_BF16 || dt == DSK4J_DT_F16) {
        uint32_t w[4];
#pragma unroll
        for (int i = 0; i < 4; i++)
            w[i] = dt == DSK4J_DT_BF16
                       ? (uint32_t)dsk4j_f32_to_bf16(f[2 * i]) | ((uint32_t)dsk4j_f32_to_bf16(f[2 * i + 1]) << 16)
                       : (uint32_t)dsk4j_f32_to_f16(f[2 * i]) | ((uint32_t)dsk4j_f32_to_f16(f[2 * i + 1]) << 16);
        ((uint4*)p)[v] = make_uint4(w[0], w[1], w[2], w[3]);
    } else {
        uint32_t h[4];
#pragma unroll
        for (int i = 0; i < 4; i++)
            h[i] = dt == DSK4J_DT_E4M3 ? dsk4j_f32x2_to_e4m3x2(f[2 * i], f[2 * i + 1])
                                       : dsk4j_f32x2_to_e5m2x2(f[2 * i], f[2 * i + 1]);
        ((uint2*)p)[v] = make_uint2(h[0] | (h[1] << 16), h[2] | (h[3] << 16));
    }
}

// fp8.cast: x[n] (x_dtype) -> y[n] (y_dtype). 8 elements per thread step when both pointers
// are aligned to min(16, 8 * element size); the tail (and misaligned launches) element-wise.
extern "C" __global__ void __launch_bounds__(DSK4J_THREADS)
dsk4j_fp8_cast(void* __restrict__ y, int y_dtype, const void* __restrict__ x, int x_dtype, long long n) {
    const unsigned xa = min(16, 8 * dsk4j_dtype_size(x_dtype)), ya = min(16, 8 * dsk4j_dtype_size(y_dtype));
    const long long nv = (dsk4j_aligned(x, xa) && dsk4j_aligned(y, ya)) ? n / 8 : 0;
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    for (long long v = tid; v < nv; v += stride) {
        float f[8];
        dsk4j_load8(x, x_dtype, v, f);
        dsk4j_store8(y, y_dtype, v, f);
    }
    for (long long i = nv * 8 + tid; i < n; i += stride)
        dsk4j_store_from_f32(y, y_dtype, i, dsk4j_load_as_f32(x, x_dtype, i));
}

__device__ __forceinline__ float dsk4j_warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// fp8.act_quant: x[rows,k] f32|bf16 -> y[rows,k] e4m3, scale[row*scale_rs + g*scale_cs] f32,
// g < k/group. One warp per (row, group), 8 groups per block, grid-stride. group == 128 with
// aligned pointers: each lane holds 4 elements (16 / 8 byte loads, one 4 byte store);
// otherwise the warp loops over the group twice (amax, then quantize).
extern "C" __global__ void __launch_bounds__(DSK4J_THREADS)
dsk4j_fp8_act_quant(uint8_t* __restrict__ y, float* __restrict__ scale, long long scale_rs,
                    long long scale_cs, const void* __restrict__ x, int x_dtype, long long rows,
                    long long k, int group, int flags) {
    const int lane = threadIdx.x & 31, wpb = DSK4J_THREADS / 32;
    const long long gpr = k / group, total = rows * gpr;
    const bool bf16 = x_dtype == DSK4J_DT_BF16;
    const bool vec = group == 128 && dsk4j_aligned(x, bf16 ? 8u : 16u) && dsk4j_aligned(y, 4u);
    const int ue8m0 = flags & DSK4J_FLAG_UE8M0;
    for (long long t = (long long)blockIdx.x * wpb + (threadIdx.x >> 5); t < total;
         t += (long long)gridDim.x * wpb) {
        const long long row = dsk4j_div64(t, gpr), g = t - row * gpr;
        const long long base = row * k + g * group;
        float s;
        if (vec) {
            float f[4];
            const long long e = base + 4 * lane;
            if (bf16) {
                const uint2 q = *(const uint2*)((const uint16_t*)x + e);
                f[0] = dsk4j_bf16_to_f32(q.x & 0xffffu); f[1] = dsk4j_bf16_to_f32(q.x >> 16);
                f[2] = dsk4j_bf16_to_f32(q.y & 0xffffu); f[3] = dsk4j_bf16_to_f32(q.y >> 16);
            } else {
                const float4 q = *(const float4*)((const float*)x + e);
                f[0] = q.x; f[1] = q.y; f[2] = q.z; f[3] = q.w;
            }
            const float m = fmaxf(fmaxf(fabsf(f[0]), fabsf(f[1])), fmaxf(fabsf(f[2]), fabsf(f[3])));
            s = dsk4j_amax_to_scale(dsk4j_warp_max(fmaxf(0.0f, m)), ue8m0);
            const uint32_t lo = dsk4j_f32x2_to_e4m3x2(__fdiv_rn(f[0], s), __fdiv_rn(f[1], s));
            const uint32_t hi = dsk4j_f32x2_to_e4m3x2(__fdiv_rn(f[2], s), __fdiv_rn(f[3], s));
            *(uint32_t*)(y + e) = lo | (hi << 16);
        } else {
            float amax = 0.0f;
            for (int j = lane; j < group; j += 32)
                amax = fmaxf(amax, fabsf(dsk4j_load_as_f32(x, x_dtype, base + j)));
            s = dsk4j_amax_to_scale(dsk4j_warp_max(amax), ue8m0);
            for (int j = lane; j < group; j += 32)
                y[base + j] = dsk4j_f32_to_e4m3(__fdiv_rn(dsk4j_load_as_f32(x, x_dtype, base + j), s));
        }
        if (lane == 0) scale[row * scale_rs + g * scale_cs] = s;
    }
}

// Block-wide max of DSK4J_WQ_THREADS threads (all threads must call it).
__device__ __forceinline__ float dsk4j_block_max(float v, float* red) {
    v = dsk4j_warp_max(v);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < DSK4J_WQ_THREADS / 32 ? red[lane] : 0.0f;
        v = dsk4j_warp_max(v);
        if (lane == 0) red[32] = v;
    }
    __syncthreads();
    v = red[32];
    __syncthreads(); // red may be reused by the next call
    return v;
}

// fp8.weight_quant: w[n,k] f32|bf16 -> y[n,k] e4m3, scale_inv[ceil(n/block), ceil(k/block)]
// f32. One CTA per (partial) block, grid-stride. block == 128: thread t holds 4 columns
// (4*(t%32)) of rows t/32 + 16*i, i < 8, in registers (one read of w); other block sizes:
// two strided passes over the block.
extern "C" __global__ void __launch_bounds__(DSK4J_WQ_THREADS)
dsk4j_fp8_weight_quant(uint8_t* __restrict__ y, float* __restrict__ scale_inv,
                       const void* __restrict__ w, int w_dtype, long long n, long long k,
                       int block, int flags) {
    __shared__ float red[33];
    const long long nbn = (n + block - 1) / block, nbk = (k + block - 1) / block;
    const bool bf16 = w_dtype == DSK4J_DT_BF16;
    const bool vec = (k & 3) == 0 && dsk4j_aligned(w, bf16 ? 8u : 16u) && dsk4j_aligned(y, 4u);
    const int ue8m0 = flags & DSK4J_FLAG_UE8M0;
    for (long long t = blockIdx.x; t < nbn * nbk; t += gridDim.x) {
        const long long bi = dsk4j_div64(t, nbk), bj = t - bi * nbk;
        const long long r0 = bi * block, c0 = bj * block;
        float s;
        if (block == 128) {
            const long long col = c0 + 4 * (threadIdx.x & 31);
            const long long rb = r0 + (threadIdx.x >> 5);
            const bool cvec = vec && col + 3 < k;
            float f[32];
            float amax = 0.0f;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const long long r = rb + 16 * i, e = r * k + col;
#pragma unroll
                for (int j = 0; j < 4; j++) f[4 * i + j] = 0.0f;
                if (r < n) {
                    if (cvec && bf16) {
                        const uint2 q = *(const uint2*)((const uint16_t*)w + e);
                        f[4 * i] = dsk4j_bf16_to_f32(q.x & 0xffffu); f[4 * i + 1] = dsk4j_bf16_to_f32(q.x >> 16);
                        f[4 * i + 2] = dsk4j_bf16_to_f32(q.y & 0xffffu); f[4 * i + 3] = dsk4j_bf16_to_f32(q.y >> 16);
                    } else if (cvec) {
                        const float4 q = *(const float4*)((const float*)w + e);
                        f[4 * i] = q.x; f[4 * i + 1] = q.y; f[4 * i + 2] = q.z; f[4 * i + 3] = q.w;
                    } else {
#pragma unroll
                        for (int j = 0; j < 4; j++)
                            if (col + j < k && col + j < c0 + 128) f[4 * i + j] = dsk4j_load_as_f32(w, w_dtype, e + j);
                    }
                }
#pragma unroll
                for (int j = 0; j < 4; j++) amax = fmaxf(amax, fabsf(f[4 * i + j]));
            }
            s = dsk4j_amax_to_scale(dsk4j_block_max(amax, red), ue8m0);
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const long long r = rb + 16 * i, e = r * k + col;
                if (r < n) {
                    const uint32_t lo = dsk4j_f32x2_to_e4m3x2(__fdiv_rn(f[4 * i], s), __fdiv_rn(f[4 * i + 1], s));
                    const uint32_t hi = dsk4j_f32x2_to_e4m3x2(__fdiv_rn(f[4 * i + 2], s), __fdiv_rn(f[4 * i + 3], s));
                    const uint32_t q = lo | (hi << 16);
                    if (cvec) {
                        *(uint32_t*)(y + e) = q;
                    } else {
#pragma unroll
                        for (int j = 0; j < 4; j++)
                            if (col + j < k) y[e + j] = (uint8_t)(q >> (8 * j));
                    }
                }
            }
        } else {
            const long long rows = min(n, r0 + block) - r0, cols = min(k, c0 + block) - c0;
            float amax = 0.0f;
            for (long long e = threadIdx.x; e < rows * cols; e += DSK4J_WQ_THREADS) {
                const long long r = dsk4j_div64(e, cols);
                amax = fmaxf(amax, fabsf(dsk4j_load_as_f32(w, w_dtype, (r0 + r) * k + c0 + e - r * cols)));
            }
            s = dsk4j_amax_to_scale(dsk4j_block_max(amax, red), ue8m0);
            for (long long e = threadIdx.x; e < rows * cols; e += DSK4J_WQ_THREADS) {
                const long long r = dsk4j_div64(e, cols), i = (r0 + r) * k + c0 + e - r * cols;
                y[i] = dsk4j_f32_to_e4m3(__fdiv_rn(dsk4j_load_as_f32(w, w_dtype, i), s));
            }
        }
        if (threadIdx.x == 0) scale_inv[t] = s;
    }
}

// fp8.weight_dequant: w[n,k] e4m3, scale_inv[ceil(n/block), ceil(k/block)] f32 ->
// y[n,k] f32|bf16 = f32(w) * scale_inv[i/block, j/block] (one f32 multiply, then rounded).
// 8 elements (one scale) per thread step when k % 8 == 0, block % 8 == 0 and the pointers
// are aligned (w: 8 bytes, y: 16 bytes); element-wise otherwise.
extern "C" __global__ void __launch_bounds__(DSK4J_THREADS)
dsk4j_fp8_weight_dequant(void* __restrict__ y, int y_dtype, const uint8_t* __restrict__ w,
                         const float* __restrict__ scale_inv, long long n, long long k, int block) {
    const long long nbk = (k + block - 1) / block;
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const bool vec = (k & 7) == 0 && (block & 7) == 0 && dsk4j_aligned(w, 8u) && dsk4j_aligned(y, 16u);
    if (vec) {
        const long long cpr = k / 8;
        for (long long v = tid; v < n * cpr; v += stride) {
            const long long r = dsk4j_div64(v, cpr), c = (v - r * cpr) * 8;
            const float s = scale_inv[dsk4j_div64(r, block) * nbk + dsk4j_div64(c, block)];
            float f[8];
            dsk4j_load8(w, DSK4J_DT_E4M3, v, f);
#pragma unroll
            for (int i = 0; i < 8; i++) f[i] = __fmul_rn(f[i], s);
            dsk4j_store8(y, y_dtype, v, f);
        }
    } else {
        for (long long i = tid; i < n * k; i += stride) {
            const long long r = dsk4j_div64(i, k), c = i - r * k;
            const float s = scale_inv[dsk4j_div64(r, block) * nbk + dsk4j_div64(c, block)];
            dsk4j_store_from_f32(y, y_dtype, i, __fmul_rn(dsk4j_e4m3_to_f32(w[i]), s));
        }
    }
}
