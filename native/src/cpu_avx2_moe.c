/* cpu_avx2_moe.c - the moe.gate logits with AVX2+FMA: the 16 lanes of dsk4j.h are two 8-wide
 * accumulators (lanes 0-7 and 8-15), the tail goes to the same lanes one element at a time, and
 * the pairwise reduction is the contract's, so the bits equal cpu_moe_logits_portable's. */
#include <immintrin.h>
#include <math.h>

#include "internal.h"

static inline __m256 load8(const void* p, int32_t dt, int64_t i) {
    if (dt == DSK4J_DTYPE_F32) return _mm256_loadu_ps((const float*)p + i);
    __m128i h = _mm_loadu_si128((const __m128i*)((const uint16_t*)p + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static inline float ld1(const void* p, int32_t dt, int64_t i) {
    return dt == DSK4J_DTYPE_F32 ? ((const float*)p)[i] : cpu_bf16_to_f32(((const uint16_t*)p)[i]);
}

void cpu_avx2_moe_logits(float* out, const void* x, int32_t x_dtype, const void* wg, int32_t wg_dtype,
                         int64_t hidden, int64_t e0, int64_t e1) {
    const int64_t full = hidden & ~(int64_t)15;
    for (int64_t e = e0; e < e1; e++) {
        const int64_t base = e * hidden;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (int64_t j = 0; j < full; j += 16) {
            a0 = _mm256_fmadd_ps(load8(x, x_dtype, j), load8(wg, wg_dtype, base + j), a0);
            a1 = _mm256_fmadd_ps(load8(x, x_dtype, j + 8), load8(wg, wg_dtype, base + j + 8), a1);
        }
        float acc[16];
        _mm256_storeu_ps(acc, a0);
        _mm256_storeu_ps(acc + 8, a1);
        for (int64_t j = full; j < hidden; j++)
            acc[j & 15] = fmaf(ld1(x, x_dtype, j), ld1(wg, wg_dtype, base + j), acc[j & 15]);
        for (int l = 0; l < 8; l++) acc[l] += acc[l + 8];
        for (int l = 0; l < 4; l++) acc[l] += acc[l + 4];
        for (int l = 0; l < 2; l++) acc[l] += acc[l + 2];
        out[e - e0] = acc[0] + acc[1];
    }
}

/* 4 independent (x row, gate row) dot products with 8 explicit accumulators (the FMA latency
 * chains of one dot product cannot be split: the lane order is contract). */
static inline void dot4(float out[4], const void* const x[4], int32_t x_dtype, const void* const w[4],
                        int32_t wg_dtype, int64_t hidden) {
    const int64_t full = hidden & ~(int64_t)15;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, d0 = a0, d1 = a0;
#define DOT4_LOOP(XDT, WDT)                                                                        \
    for (int64_t j = 0; j < full; j += 16) {                                                       \
        a0 = _mm256_fmadd_ps(load8(x[0], XDT, j), load8(w[0], WDT, j), a0);                        \
        b0 = _mm256_fmadd_ps(load8(x[1], XDT, j), load8(w[1], WDT, j), b0);                        \
        c0 = _mm256_fmadd_ps(load8(x[2], XDT, j), load8(w[2], WDT, j), c0);                        \
        d0 = _mm256_fmadd_ps(load8(x[3], XDT, j), load8(w[3], WDT, j), d0);                        \
        a1 = _mm256_fmadd_ps(load8(x[0], XDT, j + 8), load8(w[0], WDT, j + 8), a1);                \
        b1 = _mm256_fmadd_ps(load8(x[1], XDT, j + 8), load8(w[1], WDT, j + 8), b1);                \
        c1 = _mm256_fmadd_ps(load8(x[2], XDT, j + 8), load8(w[2], WDT, j + 8), c1);                \
        d1 = _mm256_fmadd_ps(load8(x[3], XDT, j + 8), load8(w[3], WDT, j + 8), d1);                \
    }
    /* one loop per dtype pair: no dtype test inside */
    if (x_dtype == DSK4J_DTYPE_F32 && wg_dtype == DSK4J_DTYPE_F32) { DOT4_LOOP(DSK4J_DTYPE_F32, DSK4J_DTYPE_F32) }
    else if (x_dtype == DSK4J_DTYPE_F32) { DOT4_LOOP(DSK4J_DTYPE_F32, DSK4J_DTYPE_BF16) }
    else if (wg_dtype == DSK4J_DTYPE_F32) { DOT4_LOOP(DSK4J_DTYPE_BF16, DSK4J_DTYPE_F32) }
    else { DOT4_LOOP(DSK4J_DTYPE_BF16, DSK4J_DTYPE_BF16) }
#undef DOT4_LOOP
    __m256 lo[4] = {a0, b0, c0, d0}, hi[4] = {a1, b1, c1, d1};
    for (int i = 0; i < 4; i++) {
        float acc[16];
        _mm256_storeu_ps(acc, lo[i]);
        _mm256_storeu_ps(acc + 8, hi[i]);
        for (int64_t j = full; j < hidden; j++)
            acc[j & 15] = fmaf(ld1(x[i], x_dtype, j), ld1(w[i], wg_dtype, j), acc[j & 15]);
        for (int l = 0; l < 8; l++) acc[l] += acc[l + 8];
        for (int l = 0; l < 4; l++) acc[l] += acc[l + 4];
        for (int l = 0; l < 2; l++) acc[l] += acc[l + 2];
        out[i] = acc[0] + acc[1];
    }
}

/* The logits of 4 tokens (x rows x_ld elements apart) at once; per (token, expert) the lanes and
 * their order are those of cpu_avx2_moe_logits. out row i (token i) is out + i*out_ld. */
void cpu_avx2_moe_logits4(float* out, int64_t out_ld, const void* x, int64_t x_ld, int32_t x_dtype, const void* wg,
                          int32_t wg_dtype, int64_t hidden, int64_t e0, int64_t e1) {
    const size_t xes = x_dtype == DSK4J_DTYPE_F32 ? 4 : 2, wes = wg_dtype == DSK4J_DTYPE_F32 ? 4 : 2;
    const void* xr[4];
    for (int i = 0; i < 4; i++) xr[i] = (const char*)x + (size_t)(i * x_ld) * xes;
    for (int64_t e = e0; e < e1; e++) {
        const void* w = (const char*)wg + (size_t)(e * hidden) * wes;
        const void* wr[4] = {w, w, w, w};
        float o[4];
        dot4(o, xr, x_dtype, wr, wg_dtype, hidden);
        for (int i = 0; i < 4; i++) out[i * out_ld + (e - e0)] = o[i];
    }
}

/* One token against experts [e0, e1), four experts at a time. */
void cpu_avx2_moe_logits_x4(float* out, const void* x, int32_t x_dtype, const void* wg, int32_t wg_dtype,
                            int64_t hidden, int64_t e0, int64_t e1) {
    const size_t wes = wg_dtype == DSK4J_DTYPE_F32 ? 4 : 2;
    const void* xr[4] = {x, x, x, x};
    int64_t e = e0;
    for (; e + 4 <= e1; e += 4) {
        const void* wr[4];
        for (int i = 0; i < 4; i++) wr[i] = (const char*)wg + (size_t)((e + i) * hidden) * wes;
        dot4(out + (e - e0), xr, x_dtype, wr, wg_dtype, hidden);
    }
    if (e < e1) cpu_avx2_moe_logits(out + (e - e0), x, x_dtype, wg, wg_dtype, hidden, e, e1);
}
