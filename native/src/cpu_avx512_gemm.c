/* cpu_avx512_gemm.c - AVX-512 (F, BW, VL, DQ) + FMA micro-kernels of the gemm ops (compiled
 * with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma -mf16c; entered only when
 * ctx->simd == SIMD_AVX512). The driver (blocking, packing, threads) is cpu_gemm.c; see
 * cpu_gemm.h for the layouts.
 *
 * e4m3 -> f32 in registers: the bytes, sign-extended to 16 bits, shifted left by 7 and masked
 * with 0xbfff give the f16 sign | (b & 0x7f) << 7, whose value is the e4m3 value times 2^-8
 * (an e4m3 subnormal is an f16 subnormal, exactly); vcvtph2ps widens it exactly to a normal
 * f32 (no f32 denormal ever enters an arithmetic instruction: those take microcode assists).
 * One multiply by (scale * 2^8), exact as long as |scale| < 2^100 (the caller checks; the
 * unpack loop falls back to two multiplies), gives value * scale with one rounding, the same
 * number as cpu_e4m3_to_f32(b) * scale. NaN bytes (0x7f/0xff) are found with a byte compare:
 * the unpack loop decodes them exactly (scalar), the dot kernel reports them.
 */
#include <immintrin.h>
#include <math.h>

#include "cpu_gemm.h"
#include "internal.h"

#define AI static inline __attribute__((always_inline))

/* 32 e4m3 bytes -> 32 f16 (value * 2^-8); NaN bytes give finite garbage */
AI __m512i e4m3_h32(const uint8_t* p) {
    __m512i w = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i*)p));
    return _mm512_and_si512(_mm512_slli_epi16(w, 7), _mm512_set1_epi16((short)0xbfff));
}
AI __m512 h_lo(__m512i h) { return _mm512_cvtph_ps(_mm512_castsi512_si256(h)); }
AI __m512 h_hi(__m512i h) { return _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1)); }

/* ---------------- unpacking rows (outer path) ---------------- */

void cpu_avx512_gemm_unpack_e4m3(float* y, const uint8_t* x, const float* bs, int64_t bs_stride,
                                 int64_t kc) {
    const __m512i m7f = _mm512_set1_epi8(0x7f);
    for (int64_t t0 = 0; t0 < kc; t0 += 128) {
        float s = bs[(t0 >> 7) * bs_stride];
        float mult = s * 256.0f;
        int two = isfinite(s) && !isfinite(mult); /* |s| >= 2^120: two multiplies */
        __m512 vm = _mm512_set1_ps(two ? 256.0f : mult), vs = _mm512_set1_ps(s);
        for (int64_t t = t0; t < t0 + 128; t += 64) {
            __m512i v = _mm512_loadu_si512((const void*)(x + t));
            if (_mm512_cmpeq_epi8_mask(_mm512_and_si512(v, m7f), m7f)) {
                for (int64_t u = t; u < t + 64; u++) {
                    float f = cpu_e4m3_to_f32(x[u]);
                    y[u] = f * s;
                }
                continue;
            }
            for (int q = 0; q < 64; q += 32) {
                __m512i h = e4m3_h32(x + t + q);
                __m512 lo = _mm512_mul_ps(h_lo(h), vm), hi = _mm512_mul_ps(h_hi(h), vm);
                if (two) lo = _mm512_mul_ps(lo, vs), hi = _mm512_mul_ps(hi, vs);
                _mm512_storeu_ps(y + t + q, lo);
                _mm512_storeu_ps(y + t + q + 16, hi);
            }
        }
    }
}

void cpu_avx512_gemm_unpack_bf16(float* y, const uint16_t* x, int64_t kc) {
    int64_t t = 0;
    for (; t + 16 <= kc; t += 16) {
        __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(x + t)));
        _mm512_storeu_ps(y + t, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
    }
    if (t < kc) {
        __mmask16 m = (__mmask16)((1u << (kc - t)) - 1u);
        __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x + t));
        _mm512_mask_storeu_ps(y + t, m, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
    }
}

/* ---------------- outer-product kernels ---------------- */

/* c[NR][ldc] tile (MV*16 rows of D per B row) (+)= sum_k a[k][MV*16] * b[j][k] */
#define OKERN(NAME, MV, NR, LDB)                                                                  \
void NAME(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int first) {           \
    __m512 acc[NR][MV];                                                                             \
_Pragma("GCC unroll 32")                                                                            \
    for (int j = 0; j < NR; j++)                                                                    \
_Pragma("GCC unroll 2")                                                                             \
        for (int v = 0; v < MV; v++) acc[j][v] = _mm512_setzero_ps();                               \
    for (int64_t k = 0; k < kc; k++) {                                                              \
        __m512 av[MV];                                                                              \
_Pragma("GCC unroll 2")                                                                             \
        for (int v = 0; v < MV; v++) av[v] = _mm512_load_ps(a + k * 16 * MV + 16 * v);              \
_Pragma("GCC unroll 32")                                                                            \
        for (int j = 0; j < NR; j++) {                                                              \
            __m512 bj = _mm512_set1_ps(b[j * LDB + k]);                                             \
_Pragma("GCC unroll 2")                                                                             \
            for (int v = 0; v < MV; v++) acc[j][v] = _mm512_fmadd_ps(av[v], bj, acc[j][v]);         \
        }                                                                                           \
    }                                                                                               \
_Pragma("GCC unroll 32")                                                                            \
    for (int j = 0; j < NR; j++) {                                                                  \
        float* cj = c + j * ldc;                                                                    \
_Pragma("GCC unroll 2")                                                                             \
        for (int v = 0; v < MV; v++) {                                                              \
            __m512 r = acc[j][v];                                                                   \
            if (!first) r = _mm512_add_ps(r, _mm512_load_ps(cj + 16 * v));                          \
            _mm512_store_ps(cj + 16 * v, r);                                                        \
        }                                                                                           \
    }                                                                                               \
}

OKERN(cpu_avx512_gemm_kernel_32x12, 2, 12, CPU_GEMM_LDB256)

OKERN(cpu_avx512_gemm_kernel_16x24, 1, 24, CPU_GEMM_LDB128)

/* ---------------- dot kernels (e4m3 B streamed) ---------------- */

#define DKERN(MI, NJ)                                                                                                  \
static int dk_##MI##_##NJ(int64_t nkb, const float* a, int64_t lda, const uint8_t* b,                                  \
             int64_t ldb, const float* bscale, int64_t bs_ld, int64_t j0, float* out, int64_t ldo,                     \
             int accumulate) {                                                                                         \
    __m512 acc[MI][NJ];                                                                                                \
_Pragma("GCC unroll 8")                                                                                                \
    for (int i = 0; i < MI; i++)                                                                                       \
_Pragma("GCC unroll 8")                                                                                                \
        for (int j = 0; j < NJ; j++) acc[i][j] = _mm512_setzero_ps();                                                  \
    const float* bsr[NJ];                                                                                              \
_Pragma("GCC unroll 8")                                                                                                \
    for (int j = 0; j < NJ; j++) bsr[j] = bscale + ((j0 + j) >> 7) * bs_ld;                                            \
    const __m512i m7f = _mm512_set1_epi8(0x7f);                                                                        \
    __m512i nanv = _mm512_setzero_si512();                                                                             \
    for (int64_t kb = 0; kb < nkb; kb++) {                                                                             \
        const uint8_t* bk = b + kb * 128;                                                                              \
        const float* ak = a + kb * 128;                                                                                \
        float mult[NJ];                                                                                                \
_Pragma("GCC unroll 8")                                                                                                \
        for (int j = 0; j < NJ; j++) {                                                                                 \
            mult[j] = bsr[j][kb] * 256.0f;                                                                           \
            nanv = _mm512_max_epu8(nanv, _mm512_and_si512(_mm512_loadu_si512((const void*)(bk + j * ldb)), m7f));      \
            nanv = _mm512_max_epu8(nanv, _mm512_and_si512(_mm512_loadu_si512((const void*)(bk + j * ldb + 64)), m7f)); \
        }                                                                                                              \
_Pragma("GCC unroll 1")                                                                                                \
        for (int s = 0; s < 128; s += 32) {                                                                            \
            if (MI <= 4) {                                                                                             \
                __m512 av[MI][2];                                                                                      \
_Pragma("GCC unroll 8")                                                                                                \
                for (int i = 0; i < MI; i++) {                                                                         \
                    av[i][0] = _mm512_loadu_ps(ak + i * lda + s);                                                      \
                    av[i][1] = _mm512_loadu_ps(ak + i * lda + s + 16);                                                 \
                }                                                                                                      \
_Pragma("GCC unroll 8")                                                                                                \
                for (int j = 0; j < NJ; j++) {                                                                         \
                    __m512i h = e4m3_h32(bk + j * ldb + s);                                                            \
                    __m512 b0 = _mm512_mul_ps(h_lo(h), _mm512_set1_ps(mult[j]));                                       \
                    __m512 b1 = _mm512_mul_ps(h_hi(h), _mm512_set1_ps(mult[j]));                                       \
_Pragma("GCC unroll 8")                                                                                                \
                    for (int i = 0; i < MI; i++) {                                                                     \
                        acc[i][j] = _mm512_fmadd_ps(av[i][0], b0, acc[i][j]);                                          \
                        acc[i][j] = _mm512_fmadd_ps(av[i][1], b1, acc[i][j]);                                          \
                    }                                                                                                  \
                }                                                                                                      \
            } else {                                                                                                   \
_Pragma("GCC unroll 8")                                                                                                \
                for (int j = 0; j < NJ; j++) {                                                                         \
                    __m512i h = e4m3_h32(bk + j * ldb + s);                                                            \
                    __m512 b0 = _mm512_mul_ps(h_lo(h), _mm512_set1_ps(mult[j]));                                       \
                    __m512 b1 = _mm512_mul_ps(h_hi(h), _mm512_set1_ps(mult[j]));                                       \
_Pragma("GCC unroll 8")                                                                                                \
                    for (int i = 0; i < MI; i++) {                                                                     \
                        acc[i][j] = _mm512_fmadd_ps(_mm512_loadu_ps(ak + i * lda + s), b0, acc[i][j]);                 \
                        acc[i][j] = _mm512_fmadd_ps(_mm512_loadu_ps(ak + i * lda + s + 16), b1, acc[i][j]);            \
                    }                                                                                                  \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    }                                                                                                          \
_Pragma("GCC unroll 8")                                                                                                \
    for (int i = 0; i < MI; i++)                                                                                       \
_Pragma("GCC unroll 8")                                                                                                \
        for (int j = 0; j < NJ; j++) {                                                                                 \
            float r = _mm512_reduce_add_ps(acc[i][j]);                                                                 \
            if (accumulate) out[i * ldo + j] += r;                                                                     \
            else out[i * ldo + j] = r;                                                                                 \
        }                                                                                                              \
    return _mm512_cmpeq_epi8_mask(nanv, m7f) != 0;                                                                     \
}

/* B rows are decoded without scaling (value * 2^-8, exact) and dotted with the A rows into
 * per-K-block partial sums; at the end of each 128-wide block the partial is folded into the
 * accumulator with one FMA by (b_scale * 2^8). */
#define DKERN2(MI, NJ)                                                                                                  \
static int dk_##MI##_##NJ(int64_t nkb, const float* a, int64_t lda, const uint8_t* b,                                  \
             int64_t ldb, const float* bscale, int64_t bs_ld, int64_t j0, float* out, int64_t ldo,                     \
             int accumulate) {                                                                                         \
    __m512 acc[MI][NJ];                                                                                                \
_Pragma("GCC unroll 8")                                                                                                \
    for (int i = 0; i < MI; i++)                                                                                       \
_Pragma("GCC unroll 8")                                                                                                \
        for (int j = 0; j < NJ; j++) acc[i][j] = _mm512_setzero_ps();                                                  \
    const float* bsr[NJ];                                                                                              \
_Pragma("GCC unroll 8")                                                                                                \
    for (int j = 0; j < NJ; j++) bsr[j] = bscale + ((j0 + j) >> 7) * bs_ld;                                            \
    const __m512i m7f = _mm512_set1_epi8(0x7f);                                                                        \
    __m512i nanv = _mm512_setzero_si512();                                                                             \
    for (int64_t kb = 0; kb < nkb; kb++) {                                                                             \
        const uint8_t* bk = b + kb * 128;                                                                              \
        const float* ak = a + kb * 128;                                                                                \
        __m512 part[MI][NJ];                                                                                           \
_Pragma("GCC unroll 8")                                                                                                \
        for (int j = 0; j < NJ; j++) {                                                                                 \
            nanv = _mm512_max_epu8(nanv, _mm512_and_si512(_mm512_loadu_si512((const void*)(bk + j * ldb)), m7f));      \
            nanv = _mm512_max_epu8(nanv, _mm512_and_si512(_mm512_loadu_si512((const void*)(bk + j * ldb + 64)), m7f)); \
        }                                                                                                              \
_Pragma("GCC unroll 4")                                                                                                \
        for (int s = 0; s < 128; s += 32) {                                                                            \
            __m512 av[MI][2];                                                                                          \
_Pragma("GCC unroll 8")                                                                                                \
            for (int i = 0; i < MI; i++) {                                                                             \
                av[i][0] = _mm512_loadu_ps(ak + i * lda + s);                                                          \
                av[i][1] = _mm512_loadu_ps(ak + i * lda + s + 16);                                                     \
            }                                                                                                          \
_Pragma("GCC unroll 8")                                                                                                \
            for (int j = 0; j < NJ; j++) {                                                                             \
                __m512i h = e4m3_h32(bk + j * ldb + s);                                                                \
                __m512 b0 = h_lo(h), b1 = h_hi(h);                                                                     \
_Pragma("GCC unroll 8")                                                                                                \
                for (int i = 0; i < MI; i++) {                                                                         \
                    if (s == 0) part[i][j] = _mm512_mul_ps(av[i][0], b0);                                              \
                    else part[i][j] = _mm512_fmadd_ps(av[i][0], b0, part[i][j]);                                       \
                    part[i][j] = _mm512_fmadd_ps(av[i][1], b1, part[i][j]);                                            \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
_Pragma("GCC unroll 8")                                                                                                \
        for (int j = 0; j < NJ; j++) {                                                                                 \
            __m512 mv = _mm512_set1_ps(bsr[j][kb] * 256.0f);                                                           \
_Pragma("GCC unroll 8")                                                                                                \
            for (int i = 0; i < MI; i++) acc[i][j] = _mm512_fmadd_ps(part[i][j], mv, acc[i][j]);                       \
        }                                                                                                              \
    }                                                                                                                  \
_Pragma("GCC unroll 8")                                                                                                \
    for (int i = 0; i < MI; i++)                                                                                       \
_Pragma("GCC unroll 8")                                                                                                \
        for (int j = 0; j < NJ; j++) {                                                                                 \
            float r = _mm512_reduce_add_ps(acc[i][j]);                                                                 \
            if (accumulate) out[i * ldo + j] += r;                                                                     \
            else out[i * ldo + j] = r;                                                                                 \
        }                                                                                                              \
    return _mm512_cmpeq_epi8_mask(nanv, m7f) != 0;                                                                     \
}

DKERN2(1, 1)
DKERN2(1, 2)
DKERN2(1, 3)
DKERN2(1, 4)
DKERN2(1, 5)
DKERN2(1, 6)
DKERN2(1, 7)
DKERN2(1, 8)
DKERN2(2, 1)
DKERN2(2, 2)
DKERN2(2, 3)
DKERN2(2, 4)
DKERN(3, 1)
DKERN(3, 2)
DKERN(3, 3)
DKERN(3, 4)
DKERN(4, 1)
DKERN(4, 2)
DKERN(4, 3)
DKERN(4, 4)
DKERN(5, 1)
DKERN(5, 2)
DKERN(6, 1)
DKERN(6, 2)
DKERN(7, 1)
DKERN(7, 2)
DKERN(8, 1)
DKERN(8, 2)

#define DK(MI, NJ) \
    case NJ: return dk_##MI##_##NJ(nkb, a, lda, b, ldb, bscale, bs_ld, j0, out, ldo, accumulate)

int cpu_avx512_gemm_dot(int mi, int nj, int64_t nkb, const float* a, int64_t lda, const uint8_t* b,
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
        switch (nj) { DK(3, 1); DK(3, 2); DK(3, 3); DK(3, 4); }
        break;
    case 4:
        switch (nj) { DK(4, 1); DK(4, 2); DK(4, 3); DK(4, 4); }
        break;
    case 5:
        switch (nj) { DK(5, 1); DK(5, 2); }
        break;
    case 6:
        switch (nj) { DK(6, 1); DK(6, 2); }
        break;
    case 7:
        switch (nj) { DK(7, 1); DK(7, 2); }
        break;
    case 8:
        switch (nj) { DK(8, 1); DK(8, 2); }
        break;
    }
    return 0;
}
