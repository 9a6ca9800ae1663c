/* cpu_avx2_rope.c - the AVX2+FMA loop of rope.apply (cpu_avx2.h; compiled with -mavx2 -mfma,
 * entered only when ctx->simd says the CPU has them). Same bits as the portable loop of
 * cpu_rope.c: per pair y0 = fma(x0, c, -(x1 * s)), y1 = fma(x1, c, x0 * s) in f32.
 *
 * interleaved: 8 lanes hold 4 pairs (x0 x1 ...); with xs = the pairs swapped (x1 x0 ...),
 *   cc = (c c ...) and ss = (-s s ...): y = fma(x, cc, xs * ss), lane by lane the formula above
 *   (x1 * -s == -(x1 * s) exactly).
 * neox: lanes j..j+7 of the two halves: lo' = fma(lo, c, hi * -s), hi' = fma(hi, c, lo * s).
 * The cos/sin rows of the token are expanded once and reused for all of its heads. */
#include <immintrin.h>
#include <math.h>

#include "cpu_avx2.h"
#include "internal.h"

#define AI static inline __attribute__((always_inline))

AI __m256 load8(const void* x, int32_t dt, int64_t i) {
    if (dt == DSK4J_DTYPE_F32) return _mm256_loadu_ps((const float*)x + i);
    __m128i h = _mm_loadu_si128((const __m128i*)((const uint16_t*)x + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* f32 -> bf16 round to nearest even, NaN -> (bits >> 16) | 0x40 (as cpu_f32_to_bf16) */
AI __m256i bf16_lanes(__m256 f);
AI __m128i to_bf16(__m256 f) {
    __m256i r = bf16_lanes(f);
    /* 32-bit lanes hold values < 2^16: pack them (packus works per 128-bit lane) */
    __m256i p = _mm256_packus_epi32(r, r);
    p = _mm256_permute4x64_epi64(p, 0x08); /* qwords 0, 2 */
    return _mm256_castsi256_si128(p);
}

/* 16 bf16 at x + i -> two f32 vectors (elements 0-7, 8-15) */
AI void load16_bf16(const uint16_t* x, int64_t i, __m256* lo, __m256* hi) {
    __m256i h = _mm256_loadu_si256((const __m256i*)(x + i));
    *lo = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(h)), 16));
    *hi = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(h, 1)), 16));
}

/* bf16 bits (RNE, NaN as to_bf16) in the 32-bit lanes of f */
AI __m256i bf16_lanes(__m256 f) {
    __m256i b = _mm256_castps_si256(f);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7fff)), lsb), 16);
    __m256i q = _mm256_or_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(0x40));
    return _mm256_blendv_epi8(r, q, _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q)));
}

/* two f32 vectors -> 16 bf16 at y + i (one pack, one lane fix-up, one store) */
AI void store16_bf16(uint16_t* y, int64_t i, __m256 lo, __m256 hi) {
    __m256i p = _mm256_packus_epi32(bf16_lanes(lo), bf16_lanes(hi));
    _mm256_storeu_si256((__m256i*)(y + i), _mm256_permute4x64_epi64(p, 0xd8));
}

AI void store8(void* y, int32_t dt, int64_t i, __m256 v) {
    if (dt == DSK4J_DTYPE_F32) _mm256_storeu_ps((float*)y + i, v);
    else _mm_storeu_si128((__m128i*)((uint16_t*)y + i), to_bf16(v));
}

AI float load1(const void* x, int32_t dt, int64_t i) {
    return dt == DSK4J_DTYPE_F32 ? ((const float*)x)[i] : cpu_bf16_to_f32(((const uint16_t*)x)[i]);
}

AI void store1(void* y, int32_t dt, int64_t i, float v) {
    if (dt == DSK4J_DTYPE_F32) ((float*)y)[i] = v;
    else ((uint16_t*)y)[i] = cpu_f32_to_bf16(v);
}

AI void pair(void* y, const void* x, int32_t dt, int64_t i0, int64_t i1, float c, float s) {
    float x0 = load1(x, dt, i0), x1 = load1(x, dt, i1);
    float y0 = fmaf(x0, c, -(x1 * s));
    float y1 = fmaf(x1, c, x0 * s);
    store1(y, dt, i0, y0);
    store1(y, dt, i1, y1);
}

static void interleaved(void* y, const void* x, int32_t dt, const float* c, const float* s, int64_t heads,
                        int64_t dim, int64_t base) {
    float cc[1024] __attribute__((aligned(32))), ss[1024] __attribute__((aligned(32)));
    const int64_t v = dim & ~(int64_t)7; /* elements done 8 at a time */
    for (int64_t j = 0; j < v / 2; j++) {
        cc[2 * j] = cc[2 * j + 1] = c[j];
        ss[2 * j] = -s[j];
        ss[2 * j + 1] = s[j];
    }
    if (dt == DSK4J_DTYPE_BF16 && dim % 16 == 0) { /* 16 per step: one load, one pack, one store */
        uint16_t* yb = (uint16_t*)y;
        const uint16_t* xb = (const uint16_t*)x;
        for (int64_t h = 0; h < heads; h++) {
            const int64_t row = base + h * dim;
            for (int64_t i = 0; i < dim; i += 16) {
                __m256 a, b;
                load16_bf16(xb, row + i, &a, &b);
                __m256 ya = _mm256_fmadd_ps(a, _mm256_load_ps(cc + i), _mm256_mul_ps(_mm256_permute_ps(a, 0xb1), _mm256_load_ps(ss + i)));
                __m256 yb8 = _mm256_fmadd_ps(b, _mm256_load_ps(cc + i + 8),
                                             _mm256_mul_ps(_mm256_permute_ps(b, 0xb1), _mm256_load_ps(ss + i + 8)));
                store16_bf16(yb, row + i, ya, yb8);
            }
        }
        return;
    }
    for (int64_t h = 0; h < heads; h++) {
        const int64_t row = base + h * dim;
        for (int64_t i = 0; i < v; i += 8) {
            __m256 xv = load8(x, dt, row + i);
            __m256 xs = _mm256_permute_ps(xv, 0xb1);
            store8(y, dt, row + i, _mm256_fmadd_ps(xv, _mm256_load_ps(cc + i), _mm256_mul_ps(xs, _mm256_load_ps(ss + i))));
        }
        for (int64_t i = v; i < dim; i += 2) pair(y, x, dt, row + i, row + i + 1, c[i / 2], s[i / 2]);
    }
}

static void neox(void* y, const void* x, int32_t dt, const float* c, const float* s, int64_t heads, int64_t dim,
                 int64_t base) {
    const int64_t half = dim / 2, v = half & ~(int64_t)7;
    if (dt == DSK4J_DTYPE_BF16 && half % 16 == 0) { /* 16 per step in each half */
        uint16_t* yb = (uint16_t*)y;
        const uint16_t* xb = (const uint16_t*)x;
        const __m256 neg = _mm256_set1_ps(-0.0f);
        for (int64_t h = 0; h < heads; h++) {
            const int64_t row = base + h * dim;
            for (int64_t j = 0; j < half; j += 16) {
                __m256 l0, l1, h0, h1;
                load16_bf16(xb, row + j, &l0, &l1);
                load16_bf16(xb, row + half + j, &h0, &h1);
                __m256 c0 = _mm256_loadu_ps(c + j), c1 = _mm256_loadu_ps(c + j + 8);
                __m256 s0 = _mm256_loadu_ps(s + j), s1 = _mm256_loadu_ps(s + j + 8);
                store16_bf16(yb, row + j, _mm256_fmadd_ps(l0, c0, _mm256_mul_ps(h0, _mm256_xor_ps(s0, neg))),
                             _mm256_fmadd_ps(l1, c1, _mm256_mul_ps(h1, _mm256_xor_ps(s1, neg))));
                store16_bf16(yb, row + half + j, _mm256_fmadd_ps(h0, c0, _mm256_mul_ps(l0, s0)),
                             _mm256_fmadd_ps(h1, c1, _mm256_mul_ps(l1, s1)));
            }
        }
        return;
    }
    for (int64_t h = 0; h < heads; h++) {
        const int64_t row = base + h * dim;
        for (int64_t j = 0; j < v; j += 8) {
            __m256 lo = load8(x, dt, row + j), hi = load8(x, dt, row + half + j);
            __m256 cv = _mm256_loadu_ps(c + j), sv = _mm256_loadu_ps(s + j);
            __m256 nsv = _mm256_xor_ps(sv, _mm256_set1_ps(-0.0f));
            __m256 ylo = _mm256_fmadd_ps(lo, cv, _mm256_mul_ps(hi, nsv));
            __m256 yhi = _mm256_fmadd_ps(hi, cv, _mm256_mul_ps(lo, sv));
            store8(y, dt, row + j, ylo);
            store8(y, dt, row + half + j, yhi);
        }
        for (int64_t j = v; j < half; j++) pair(y, x, dt, row + j, row + half + j, c[j], s[j]);
    }
}

void cpu_avx2_rope_token(void* y, const void* x, int32_t dtype, const float* c, const float* s, int64_t heads,
                         int64_t dim, int32_t layout, int64_t base) {
    if (layout == DSK4J_ROPE_NEOX) neox(y, x, dtype, c, s, heads, dim, base);
    else interleaved(y, x, dtype, c, s, heads, dim, base);
}
