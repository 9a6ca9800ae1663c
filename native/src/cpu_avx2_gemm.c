/* cpu_avx2_gemm.c - AVX2 + FMA micro-kernels of the gemm ops (compiled with -mavx2 -mfma
 * -mf16c; entered only when ctx->simd == SIMD_AVX2). The same algorithms as
 * cpu_avx512_gemm.c with 8 lanes and 16 vector registers; see there for the e4m3 decoding
 * (sign-extend to 16 bits, shift left 7, mask 0xbfff: f16 value * 2^-8, vcvtph2ps, one
 * multiply by scale * 2^8; no f32 denormal ever enters an arithmetic instruction).
 */
#include <immintrin.h>
#include <math.h>

#include "cpu_gemm.h"
#include "internal.h"

#define AI static inline __attribute__((always_inline))

/* 16 e4m3 bytes -> 16 f16 (value * 2^-8); NaN bytes give finite garbage */
AI __m256i e4m3_h16(const uint8_t* p) {
    __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)p));
    return _mm256_and_si256(_mm256_slli_epi16(w, 7), _mm256_set1_epi16((short)0xbfff));
}
AI __m256 h_lo(__m256i h) { return _mm256_cvtph_ps(_mm256_castsi256_si128(h)); }
AI __m256 h_hi(__m256i h) { return _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)); }

/* ---------------- unpacking rows (outer path) ---------------- */

void cpu_avx2_gemm_unpack_e4m3(float* y, const uint8_t* x, const float* bs, int64_t bs_stride,
                               int64_t kc) {
    const __m256i m7f = _mm256_set1_epi8(0x7f);
    for (int64_t t0 = 0; t0 < kc; t0 += 128) {
        float s = bs[(t0 >> 7) * bs_stride];
        float mult = s * 256.0f;
        int two = isfinite(s) && !isfinite(mult); /* |s| >= 2^120: two multiplies */
        __m256 vm = _mm256_set1_ps(two ? 256.0f : mult), vs = _mm256_set1_ps(s);
        for (int64_t t = t0; t < t0 + 128; t += 32) {
            __m256i v = _mm256_loadu_si256((const __m256i*)(x + t));
            if (_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_and_si256(v, m7f), m7f))) {
                for (int64_t u = t; u < t + 32; u++) {
                    float f = cpu_e4m3_to_f32(x[u]);
                    y[u] = f * s;
                }
                continue;
            }
            for (int q = 0; q < 32; q += 16) {
                __m256i h = e4m3_h16(x + t + q);
                __m256 lo = _mm256_mul_ps(h_lo(h), vm), hi = _mm256_mul_ps(h_hi(h), vm);
                if (two) lo = _mm256_mul_ps(lo, vs), hi = _mm256_mul_ps(hi, vs);
                _mm256_storeu_ps(y + t + q, lo);
                _mm256_storeu_ps(y + t + q + 8, hi);
            }
        }
    }
}

void cpu_avx2_gemm_unpack_bf16(float* y, const uint16_t* x, int64_t kc) {
    int64_t t = 0;
    for (; t + 8 <= kc; t += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)(x + t)));
        _mm256_storeu_ps(y + t, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    }
    for (; t < kc; t++) y[t] = cpu_bf16_to_f32(x[t]);
}

/* ---------------- outer-product kernel ---------------- */

/* c[NR][ldc] tile (MV*8 rows of D per B row) (+)= sum_k a[k][MV*8] * b[j][k] */
#define OKERN(NAME, MV, NR, LDB)                                                                  \
void NAME(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int first) {           \
    __m256 acc[NR][MV];                                                                             \
_Pragma("GCC unroll 32")                                                                            \
    for (int j = 0; j < NR; j++)                                                                    \
_Pragma("GCC unroll 2")                                                                             \
        for (int v = 0; v < MV; v++) acc[j][v] = _mm256_setzero_ps();                               \
    for (int64_t k = 0; k < kc; k++) {                                                              \
        __m256 av[MV];                                                                              \
_Pragma("GCC unroll 2")                                                                             \
        for (int v = 0; v < MV; v++) av[v] = _mm256_load_ps(a + k * 8 * MV + 8 * v);                \
_Pragma("GCC unroll 32")                                                                            \
        for (int j = 0; j < NR; j++) {                                                              \
            __m256 bj = _mm256_broadcast_ss(b + j * LDB + k);                                       \
_Pragma("GCC unroll 2")                                                                             \
            for (int v = 0; v < MV; v++) acc[j][v] = _mm256_fmadd_ps(av[v], bj, acc[j][v]);         \
        }                                                                                           \
    }                                                                                               \
_Pragma("GCC unroll 32")                                                                            \
    for (int j = 0; j < NR; j++) {                                                                  \
        float* cj = c + j * ldc;                                                                    \
_Pragma("GCC unroll 2")                                                                             \
        for (int v = 0; v < MV; v++) {                                                              \
            __m256 r = acc[j][v];                                                                   \
            if (!first) r = _mm256_add_ps(r, _mm256_load_ps(cj + 8 * v));                           \
            _mm256_store_ps(cj + 8 * v, r);                                                         \
        }                                                                                           \
    }                                                                                               \
}

OKERN(cpu_avx2_gemm_kernel_16x6, 2, 6, CPU_GEMM_LDB256)

/* ---------------- dot kernels (e4m3 B streamed) ---------------- */

AI float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define DKERN(MI, NJ)                                                                                                        \
static int dk_##MI##_##NJ(int64_t nkb, const float* a, int64_t lda, const uint8_t* b,                                        \
             int64_t ldb, const float* bscale, int64_t bs_ld, int64_t j0, float* out, int64_t ldo,                           \
             int accumulate) {                                                                                               \
    __m256 acc[MI][NJ];                                                                                                      \
_Pragma("GCC unroll 8")                                                                                                      \
    for (int i = 0; i < MI; i++)                                                                                             \
_Pragma("GCC unroll 8")                                                                                                      \
        for (int j = 0; j < NJ; j++) acc[i][j] = _mm256_setzero_ps();                                                        \
    const float* bsr[NJ];                                                                                                    \
_Pragma("GCC unroll 8")                                                                                                      \
    for (int j = 0; j < NJ; j++) bsr[j] = bscale + ((j0 + j) >> 7) * bs_ld;                                                  \
    const __m256i m7f = _mm256_set1_epi8(0x7f);                                                                              \
    __m256i nanv = _mm256_setzero_si256();                                                                                   \
    for (int64_t kb = 0; kb < nkb; kb++) {                                                                                   \
        const uint8_t* bk = b + kb * 128;                                                                                    \
        const float* ak = a + kb * 128;                                                                                      \
        float mult[NJ];                                                                                                      \
_Pragma("GCC unroll 8")                                                                                                      \
        for (int j = 0; j < NJ; j++) {                                                                                       \
            mult[j] = bsr[j][kb] * 256.0f;                                                                                 \
_Pragma("GCC unroll 4")                                                                                                      \
            for (int q = 0; q < 128; q += 32)                                                                                \
                nanv = _mm256_max_epu8(nanv, _mm256_and_si256(_mm256_loadu_si256((const __m256i*)(bk + j * ldb + q)), m7f)); \
        }                                                                                                                    \
_Pragma("GCC unroll 1")                                                                                                      \
        for (int s = 0; s < 128; s += 16) {                                                                            \
            if (MI * NJ <= 8 && MI <= 4) {                                                                             \
                __m256 av[MI][2];                                                                                      \
_Pragma("GCC unroll 8")                                                                                                \
                for (int i = 0; i < MI; i++) {                                                                         \
                    av[i][0] = _mm256_loadu_ps(ak + i * lda + s);                                                      \
                    av[i][1] = _mm256_loadu_ps(ak + i * lda + s + 8);                                                  \
                }                                                                                                      \
_Pragma("GCC unroll 8")                                                                                                \
                for (int j = 0; j < NJ; j++) {                                                                         \
                    __m256i h = e4m3_h16(bk + j * ldb + s);                                                            \
                    __m256 b0 = _mm256_mul_ps(h_lo(h), _mm256_broadcast_ss(mult + j));                                 \
                    __m256 b1 = _mm256_mul_ps(h_hi(h), _mm256_broadcast_ss(mult + j));                                 \
_Pragma("GCC unroll 8")                                                                                                \
                    for (int i = 0; i < MI; i++) {                                                                     \
                        acc[i][j] = _mm256_fmadd_ps(av[i][0], b0, acc[i][j]);                                          \
                        acc[i][j] = _mm256_fmadd_ps(av[i][1], b1, acc[i][j]);                                          \
                    }                                                                                                  \
                }                                                                                                      \
            } else {                                                                                                   \
_Pragma("GCC unroll 8")                                                                                                \
                for (int j = 0; j < NJ; j++) {                                                                         \
                    __m256i h = e4m3_h16(bk + j * ldb + s);                                                            \
                    __m256 b0 = _mm256_mul_ps(h_lo(h), _mm256_broadcast_ss(mult + j));                                 \
                    __m256 b1 = _mm256_mul_ps(h_hi(h), _mm256_broadcast_ss(mult + j));                                 \
_Pragma("GCC unroll 8")                                                                                                \
                    for (int i = 0; i < MI; i++) {                                                                     \
                        acc[i][j] = _mm256_fmadd_ps(_mm256_loadu_ps(ak + i * lda + s), b0, acc[i][j]);                 \
                        acc[i][j] = _mm256_fmadd_ps(_mm256_loadu_ps(ak + i * lda + s + 8), b1, acc[i][j]);             \
                    }                                                                                                  \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    }                                                                                                                        \
_Pragma("GCC unroll 8")                                                                                                      \
    for (int i = 0; i < MI; i++)                                                                                             \
_Pragma("GCC unroll 8")                                                                                                      \
        for (int j = 0; j < NJ; j++) {                                                                                       \
            float r = hsum8(acc[i][j]);                                                                                      \
            if (accumulate) out[i * ldo + j] += r;                                                                           \
            else out[i * ldo + j] = r;                                                                                       \
        }                                                                                                                    \
    return _mm256_movemask_epi8(_mm256_cmpeq_epi8(nanv, m7f)) != 0;                                                          \
}

DKERN(1, 1)
DKERN(1, 2)
DKERN(1, 3)
DKERN(1, 4)
DKERN(1, 5)
DKERN(1, 6)
DKERN(1, 7)
DKERN(1, 8)
DKERN(2, 1)
DKERN(2, 2)
DKERN(2, 3)
DKERN(2, 4)
DKERN(3, 1)
DKERN(3, 2)
DKERN(4, 1)
DKERN(4, 2)
DKERN(5, 1)
DKERN(6, 1)
DKERN(7, 1)
DKERN(8, 1)

#define DK(MI, NJ) \
    case NJ: return dk_##MI##_##NJ(nkb, a, lda, b, ldb, bscale, bs_ld, j0, out, ldo, accumulate)

int cpu_avx2_gemm_dot(int mi, int nj, int64_t nkb, const float* a, int64_t lda, const uint8_t* b,
                      int64_t ldb, const float* bscale, int64_t bs_ld, int64_t j0, float* out,
                      int64_t ldo, int accumulate) {
    switch (mi) {
    case 1:
        switch (nj) { DK(1, 1); DK(1, 2); DK(1, 3); DK(1, 4); DK(1, 5); DK(1, 6); DK(1, 7); DK(1, 8); }
        break;
    case 2:
        switch (nj) { DK(2, 1); DK(2, 2); DK(2, 3); DK(2, 4); }
        break;
    case 3:
        switch (nj) { DK(3, 1); DK(3, 2); }
        break;
    case 4:
        switch (nj) { DK(4, 1); DK(4, 2); }
        break;
    case 5:
        switch (nj) { DK(5, 1); }
        break;
    case 6:
        switch (nj) { DK(6, 1); }
        break;
    case 7:
        switch (nj) { DK(7, 1); }
        break;
    case 8:
        switch (nj) { DK(8, 1); }
        break;
    }
    return 0;
}
