/* cpu_avx512_gemm_f32.c - the decode path (M <= 8) of gemm.f32 with AVX-512 (compiled with
 * -mavx512f/bw/vl/dq; entered only when ctx->simd == SIMD_AVX512, AMX contexts included).
 *
 * out[i*ldo + jj] = sum_{t<k} a[i*lda + t] * b_jj[t], i < mi, jj < nj: a GEMV over a few rows of
 * A that streams the nj rows of B (f32, or bf16 widened by a 16-bit shift) once, with software
 * prefetch ahead in every row. Summation order, the same for every (i, jj) whatever mi, nj or the
 * caller's split of N: lane l (16 lanes) sums the products t = l, l + 16, ... in increasing t with
 * one FMA each (the last, partial step zero-filled), then _mm512_reduce_add_ps folds the lanes.
 */
#include <immintrin.h>

#include "cpu_gemm.h"
#include "internal.h"

#define AI static inline __attribute__((always_inline))

/* elements of B ahead of the current step that each row prefetches (1 KiB of f32) */
#define PF_F32 256
#define PF_BF16 512

AI __m512 load_b(const void* b, int bf16, int64_t off) {
    if (bf16) {
        __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)((const uint16_t*)b + off)));
        return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    }
    return _mm512_loadu_ps((const float*)b + off);
}

AI __m512 load_b_tail(const void* b, int bf16, int64_t off, __mmask16 m) {
    if (bf16) {
        __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t*)b + off));
        return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    }
    return _mm512_maskz_loadu_ps(m, (const float*)b + off);
}

/* One MI x NJ tile (compile-time sizes after inlining; BF16 likewise). */
AI void tile(const int MI, const int NJ, const int BF16, int64_t k, const float* a, int64_t lda, const void* b,
             int64_t ldb, float* out, int64_t ldo) {
    __m512 acc[8][8];
#pragma GCC unroll 8
    for (int i = 0; i < MI; i++)
#pragma GCC unroll 8
        for (int j = 0; j < NJ; j++) acc[i][j] = _mm512_setzero_ps();
    const int64_t pf = BF16 ? PF_BF16 : PF_F32;
    const size_t es = BF16 ? 2 : 4;
    int64_t t = 0;
    for (; t + 16 <= k; t += 16) {
        __m512 bv[8];
#pragma GCC unroll 8
        for (int j = 0; j < NJ; j++) {
            _mm_prefetch((const char*)b + (size_t)(j * ldb + t + pf) * es, _MM_HINT_T0);
            bv[j] = load_b(b, BF16, j * ldb + t);
        }
#pragma GCC unroll 8
        for (int i = 0; i < MI; i++) {
            __m512 av = _mm512_loadu_ps(a + i * lda + t);
#pragma GCC unroll 8
            for (int j = 0; j < NJ; j++) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
        }
    }
    if (t < k) {
        __mmask16 m = (__mmask16)((1u << (k - t)) - 1u);
        __m512 bv[8];
#pragma GCC unroll 8
        for (int j = 0; j < NJ; j++) bv[j] = load_b_tail(b, BF16, j * ldb + t, m);
#pragma GCC unroll 8
        for (int i = 0; i < MI; i++) {
            __m512 av = _mm512_maskz_loadu_ps(m, a + i * lda + t);
#pragma GCC unroll 8
            for (int j = 0; j < NJ; j++) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MI; i++)
#pragma GCC unroll 8
        for (int j = 0; j < NJ; j++) out[i * ldo + j] = _mm512_reduce_add_ps(acc[i][j]);
}

#define TILE_FNS(MI, NJ)                                                                                      \
    static void tile_##MI##x##NJ##_f32(int64_t k, const float* a, int64_t lda, const void* b, int64_t ldb,   \
                                        float* out, int64_t ldo) {                                            \
        tile(MI, NJ, 0, k, a, lda, b, ldb, out, ldo);                                                         \
    }                                                                                                         \
    static void tile_##MI##x##NJ##_bf16(int64_t k, const float* a, int64_t lda, const void* b, int64_t ldb,  \
                                         float* out, int64_t ldo) {                                           \
        tile(MI, NJ, 1, k, a, lda, b, ldb, out, ldo);                                                         \
    }

/* NJ per MI: cpu_gemm_f32_nj(1, MI) (accumulators MI*NJ + NJ rows of B + 1 of A <= 32 registers) */
TILE_FNS(1, 8)
TILE_FNS(2, 8)
TILE_FNS(3, 6)
TILE_FNS(4, 6)
TILE_FNS(5, 4)
TILE_FNS(6, 4)
TILE_FNS(7, 3)
TILE_FNS(8, 3)
TILE_FNS(1, 1)
TILE_FNS(2, 1)
TILE_FNS(3, 1)
TILE_FNS(4, 1)
TILE_FNS(5, 1)
TILE_FNS(6, 1)
TILE_FNS(7, 1)
TILE_FNS(8, 1)

typedef void (*tile_fn)(int64_t, const float*, int64_t, const void*, int64_t, float*, int64_t);

#define ROW(MI, NJ) {{tile_##MI##x##NJ##_f32, tile_##MI##x##NJ##_bf16}, {tile_##MI##x1_f32, tile_##MI##x1_bf16}}
static const tile_fn TILES[8][2][2] = {ROW(1, 8), ROW(2, 8), ROW(3, 6), ROW(4, 6),
                                       ROW(5, 4), ROW(6, 4), ROW(7, 3), ROW(8, 3)};

void cpu_avx512_gemm_f32_dot(int mi, int nj, int64_t k, const float* a, int64_t lda, const void* b, int b_bf16,
                             int64_t ldb, float* out, int64_t ldo) {
    const int full = cpu_gemm_f32_nj(1, mi);
    const size_t es = b_bf16 ? 2 : 4;
    if (nj == full) {
        TILES[mi - 1][0][b_bf16 != 0](k, a, lda, b, ldb, out, ldo);
        return;
    }
    for (int j = 0; j < nj; j++) /* a partial tile: row by row (the same sums) */
        TILES[mi - 1][1][b_bf16 != 0](k, a, lda, (const char*)b + (size_t)(j * ldb) * es, ldb, out + j, ldo);
}
