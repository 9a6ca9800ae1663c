/* cpu_avx2_gemm_f32.c - the decode path (M <= 8) of gemm.f32 with AVX2 + FMA (compiled with
 * -mavx2 -mfma -mf16c; entered only when ctx->simd == SIMD_AVX2).
 *
 * out[i*ldo + jj] = sum_{t<k} a[i*lda + t] * b_jj[t], i < mi, jj < nj: a GEMV over a few rows of
 * A that streams the nj rows of B (f32, or bf16 widened by a 16-bit shift) once, with software
 * prefetch ahead in every row. Summation order, the same for every (i, jj) whatever mi, nj or the
 * caller's split of N: lane l (8 lanes) sums the products t = l, l + 8, ... in increasing t with
 * one FMA each (the last, partial step zero-filled), then the lanes are folded in a fixed tree,
 * ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)).
 */
#include <immintrin.h>

#include "cpu_gemm.h"
#include "internal.h"

#define AI static inline __attribute__((always_inline))

/* elements of B ahead of the current step that each row prefetches (1 KiB of f32) */
#define PF_F32 256
#define PF_BF16 512

AI __m256 load_b(const void* b, int bf16, int64_t off) {
    if (bf16) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)((const uint16_t*)b + off)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    }
    return _mm256_loadu_ps((const float*)b + off);
}

/* the r < 8 elements at off, zero-filled to 8 (never reads past them) */
AI __m256 load_b_tail(const void* b, int bf16, int64_t off, int r, __m256i mask) {
    if (bf16) {
        uint16_t tmp[8] = {0};
        for (int q = 0; q < r; q++) tmp[q] = ((const uint16_t*)b)[off + q];
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)tmp));
        return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    }
    return _mm256_maskload_ps((const float*)b + off, mask);
}

/* ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)) */
AI float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* One MI x NJ tile (compile-time sizes after inlining; BF16 likewise). */
AI void tile(const int MI, const int NJ, const int BF16, int64_t k, const float* a, int64_t lda, const void* b,
             int64_t ldb, float* out, int64_t ldo) {
    __m256 acc[8][8];
#pragma GCC unroll 8
    for (int i = 0; i < MI; i++)
#pragma GCC unroll 8
        for (int j = 0; j < NJ; j++) acc[i][j] = _mm256_setzero_ps();
    const int64_t pf = BF16 ? PF_BF16 : PF_F32;
    const size_t es = BF16 ? 2 : 4;
    int64_t t = 0;
    for (; t + 8 <= k; t += 8) {
        __m256 bv[8];
#pragma GCC unroll 8
        for (int j = 0; j < NJ; j++) {
            _mm_prefetch((const char*)b + (size_t)(j * ldb + t + pf) * es, _MM_HINT_T0);
            bv[j] = load_b(b, BF16, j * ldb + t);
        }
#pragma GCC unroll 8
        for (int i = 0; i < MI; i++) {
            __m256 av = _mm256_loadu_ps(a + i * lda + t);
#pragma GCC unroll 8
            for (int j = 0; j < NJ; j++) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
        }
    }
    if (t < k) {
        const int r = (int)(k - t);
        const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 bv[8];
#pragma GCC unroll 8
        for (int j = 0; j < NJ; j++) bv[j] = load_b_tail(b, BF16, j * ldb + t, r, m);
#pragma GCC unroll 8
        for (int i = 0; i < MI; i++) {
            __m256 av = _mm256_maskload_ps(a + i * lda + t, m);
#pragma GCC unroll 8
            for (int j = 0; j < NJ; j++) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MI; i++)
#pragma GCC unroll 8
        for (int j = 0; j < NJ; j++) out[i * ldo + j] = hsum(acc[i][j]);
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

/* NJ per MI: cpu_gemm_f32_nj(0, MI) (accumulators MI*NJ + NJ rows of B + 1 of A <= 16 registers) */
TILE_FNS(1, 6)
TILE_FNS(2, 4)
TILE_FNS(3, 3)
TILE_FNS(4, 3)
TILE_FNS(5, 2)
TILE_FNS(6, 2)
TILE_FNS(7, 1)
TILE_FNS(8, 1)
TILE_FNS(1, 1)
TILE_FNS(2, 1)
TILE_FNS(3, 1)
TILE_FNS(4, 1)
TILE_FNS(5, 1)
TILE_FNS(6, 1)

typedef void (*tile_fn)(int64_t, const float*, int64_t, const void*, int64_t, float*, int64_t);

#define ROW(MI, NJ) {{tile_##MI##x##NJ##_f32, tile_##MI##x##NJ##_bf16}, {tile_##MI##x1_f32, tile_##MI##x1_bf16}}
static const tile_fn TILES[8][2][2] = {ROW(1, 6), ROW(2, 4), ROW(3, 3), ROW(4, 3),
                                       ROW(5, 2), ROW(6, 2), ROW(7, 1), ROW(8, 1)};

void cpu_avx2_gemm_f32_dot(int mi, int nj, int64_t k, const float* a, int64_t lda, const void* b, int b_bf16,
                             int64_t ldb, float* out, int64_t ldo) {
    const int full = cpu_gemm_f32_nj(0, mi);
    const size_t es = b_bf16 ? 2 : 4;
    if (nj == full) {
        TILES[mi - 1][0][b_bf16 != 0](k, a, lda, b, ldb, out, ldo);
        return;
    }
    for (int j = 0; j < nj; j++) /* a partial tile: row by row (the same sums) */
        TILES[mi - 1][1][b_bf16 != 0](k, a, lda, (const char*)b + (size_t)(j * ldb) * es, ldb, out + j, ldo);
}
