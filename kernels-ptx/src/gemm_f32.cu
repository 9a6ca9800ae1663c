// gemm_f32.cu - the fast kernels of gemm.f32 (DESIGN.md 4.2; formula and parameters as
// dsk4j_ref_gemm_f32 in gemm_reference.cu): d f32 [m,n] = a f32 [m,k] · b[n,k]ᵀ (+ c), b f32 or
// bf16 (b_bf16, widened exactly), exact f32 products with fmaf (no tensor cores, no tf32), any
// m, n, k, any alignment (scalar loads with bounds guards; all global indices 64-bit).
//
//   dsk4j_gemm_f32_tiled (m > 8): 128 x 128 output tiles per block of 256 threads, each thread
//       8 x 8 outputs (rows ty + 16r, columns tx + 16c: conflict-free shared-memory reads);
//       K staged 8 at a time in shared memory As/Bs [8][132] (padded: conflict-free stores).
//       Every element is one fmaf chain in increasing t, as the reference (the zero-filled K
//       tail adds +0 products only). Blocks stride over the tiles, M tiles fastest, so that
//       neighbouring blocks share a B (weight) tile in L2.
//   dsk4j_gemm_f32_gemv (1 <= m <= 8, decode): one warp per row j of b, 8 warps per block; lane l
//       sums t = l, l + 32, ... for every row of a (coalesced 128-byte reads of b), then a fixed
//       xor-shuffle tree (16, 8, 4, 2, 1) folds the lanes. Rows stride over the grid.
#include "fp8_convert.cuh"

#define DSK4J_GEMM_F32_THREADS 256 // must match F32_THREADS in native/src/cuda_gemm.c

namespace dsk4j_gemm_f32 {
constexpr int THREADS = DSK4J_GEMM_F32_THREADS;
constexpr int BM = 128, BN = 128, BK = 8, LD = 132;

__device__ __forceinline__ float ld_b(const void* b, int bf16, long long idx) {
    return bf16 ? dsk4j_bf16_to_f32(((const uint16_t*)b)[idx]) : ((const float*)b)[idx];
}
} // namespace dsk4j_gemm_f32

extern "C" __global__ void __launch_bounds__(DSK4J_GEMM_F32_THREADS)
    dsk4j_gemm_f32_tiled(float* d, const float* a, const void* b, int b_bf16, const float* c, long long m,
                         long long n, long long k) {
    using namespace dsk4j_gemm_f32;
    __shared__ float As[BK][LD];
    __shared__ float Bs[BK][LD];
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const long long mt = (m + BM - 1) / BM, tiles = mt * ((n + BN - 1) / BN);
    for (long long tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const long long i0 = (tile % mt) * BM, j0 = (tile / mt) * BN;
        float acc[8][8];
#pragma unroll
        for (int r = 0; r < 8; r++)
#pragma unroll
            for (int q = 0; q < 8; q++) acc[r][q] = 0.0f;
        for (long long k0 = 0; k0 < k; k0 += BK) {
            // 128 rows x 8 K of a and of b: 4 elements of each per thread, 8 threads per row
#pragma unroll
            for (int e = 0; e < (BM * BK) / THREADS; e++) {
                const int idx = tid + e * THREADS, r = idx / BK, kk = idx % BK;
                const long long gi = i0 + r, gj = j0 + r, gk = k0 + kk;
                As[kk][r] = (gi < m && gk < k) ? a[gi * k + gk] : 0.0f;
                Bs[kk][r] = (gj < n && gk < k) ? ld_b(b, b_bf16, gj * k + gk) : 0.0f;
            }
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < BK; kk++) {
                float av[8], bv[8];
#pragma unroll
                for (int r = 0; r < 8; r++) av[r] = As[kk][ty + 16 * r];
#pragma unroll
                for (int q = 0; q < 8; q++) bv[q] = Bs[kk][tx + 16 * q];
#pragma unroll
                for (int r = 0; r < 8; r++)
#pragma unroll
                    for (int q = 0; q < 8; q++) acc[r][q] = fmaf(av[r], bv[q], acc[r][q]);
            }
            __syncthreads();
        }
#pragma unroll
        for (int r = 0; r < 8; r++) {
            const long long gi = i0 + ty + 16 * r;
            if (gi >= m) continue;
#pragma unroll
            for (int q = 0; q < 8; q++) {
                const long long gj = j0 + tx + 16 * q;
                if (gj >= n) continue;
                const long long o = gi * n + gj;
                d[o] = c != nullptr ? acc[r][q] + c[o] : acc[r][q];
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(DSK4J_GEMM_F32_THREADS)
    dsk4j_gemm_f32_gemv(float* d, const float* a, const void* b, int b_bf16, const float* c, long long m,
                        long long n, long long k) {
    using namespace dsk4j_gemm_f32;
    constexpr int WARPS = THREADS / 32;
    const int lane = threadIdx.x & 31;
    const long long stride = (long long)gridDim.x * WARPS;
    for (long long j = (long long)blockIdx.x * WARPS + threadIdx.x / 32; j < n; j += stride) { // warp-uniform
        float acc[8];
#pragma unroll
        for (int i = 0; i < 8; i++) acc[i] = 0.0f;
        if (b_bf16) {
            const uint16_t* br = (const uint16_t*)b + j * k;
#pragma unroll 1 // unrolled, ptxas spills on sm_89
            for (long long t = lane; t < k; t += 32) {
                const float w = dsk4j_bf16_to_f32(br[t]);
#pragma unroll
                for (int i = 0; i < 8; i++)
                    if (i < m) acc[i] = fmaf(a[i * k + t], w, acc[i]);
            }
        } else {
            const float* br = (const float*)b + j * k;
#pragma unroll 1 // unrolled, ptxas spills on sm_89
            for (long long t = lane; t < k; t += 32) {
                const float w = br[t];
#pragma unroll
                for (int i = 0; i < 8; i++)
                    if (i < m) acc[i] = fmaf(a[i * k + t], w, acc[i]);
            }
        }
#pragma unroll
        for (int i = 0; i < 8; i++) {
            float v = acc[i];
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
            if (i < m && lane == 0) {
                const long long o = i * n + j;
                d[o] = c != nullptr ? v + c[o] : v;
            }
        }
    }
}
