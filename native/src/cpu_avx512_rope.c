/* cpu_avx512_rope.c - the AVX-512 loop of rope.apply for bf16 (cpu_avx512.h; compiled with
 * -mavx512f -mavx512bw, entered only when ctx->simd == SIMD_AVX512). Same bits as the portable
 * loop of cpu_rope.c: per pair y0 = fma(x0, c, -(x1 * s)), y1 = fma(x1, c, x0 * s) in f32, the
 * bf16 result rounded to nearest even by integer arithmetic (subnormals kept: VCVTNEPS2BF16
 * would flush them), NaN -> (bits >> 16) | 0x40 as cpu_f32_to_bf16. 32 elements per step:
 *   interleaved: y = fma(x, cc, swap_pairs(x) * ss) with cc = (c c ..), ss = (-s s ..);
 *   neox: lo' = fma(lo, c, hi * -s), hi' = fma(hi, c, lo * s).
 * Other cases (f32, dims not a multiple of 32 resp. halves of 16) go to the AVX2 loop. */
#include <immintrin.h>

#include "cpu_avx2.h"
#include "cpu_avx512.h"
#include "internal.h"

#define AI static inline __attribute__((always_inline))

/* 16 bf16 -> f32 (exact) */
AI __m512 widen(const uint16_t* x) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)x)), 16));
}

/* f32 -> bf16 bits (RNE; NaN quieted) in the low halves of the 32-bit lanes */
AI __m512i narrow_lanes(__m512 f) {
    const __m512i b = _mm512_castps_si512(f);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7fff)), lsb), 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
    return _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40));
}

/* two f32 vectors (elements 0-15, 16-31) -> 32 bf16 at y */
AI void store32(uint16_t* y, __m512 lo, __m512 hi) {
    _mm256_storeu_si256((__m256i*)y, _mm512_cvtepi32_epi16(narrow_lanes(lo)));
    _mm256_storeu_si256((__m256i*)(y + 16), _mm512_cvtepi32_epi16(narrow_lanes(hi)));
}

void cpu_avx512_rope_token(void* y, const void* x, int32_t dtype, const float* c, const float* s, int64_t heads,
                           int64_t dim, int32_t layout, int64_t base) {
    const int neox = layout == DSK4J_ROPE_NEOX;
    if (dtype != DSK4J_DTYPE_BF16 || dim > 1024 || (neox ? (dim / 2) % 16 != 0 : dim % 32 != 0)) {
        cpu_avx2_rope_token(y, x, dtype, c, s, heads, dim, layout, base);
        return;
    }
    uint16_t* yb = (uint16_t*)y;
    const uint16_t* xb = (const uint16_t*)x;
    if (neox) {
        const int64_t half = dim / 2;
        for (int64_t h = 0; h < heads; h++) {
            const int64_t row = base + h * dim;
            for (int64_t j = 0; j < half; j += 16) {
                const __m512 lo = widen(xb + row + j), hi = widen(xb + row + half + j);
                const __m512 cv = _mm512_loadu_ps(c + j), sv = _mm512_loadu_ps(s + j);
                const __m512 nsv = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(sv), _mm512_set1_epi32((int)0x80000000u)));
                _mm256_storeu_si256((__m256i*)(yb + row + j),
                                    _mm512_cvtepi32_epi16(narrow_lanes(_mm512_fmadd_ps(lo, cv, _mm512_mul_ps(hi, nsv)))));
                _mm256_storeu_si256((__m256i*)(yb + row + half + j),
                                    _mm512_cvtepi32_epi16(narrow_lanes(_mm512_fmadd_ps(hi, cv, _mm512_mul_ps(lo, sv)))));
            }
        }
        return;
    }
    float cc[1024] __attribute__((aligned(64))), ss[1024] __attribute__((aligned(64)));
    for (int64_t j = 0; j < dim / 2; j++) {
        cc[2 * j] = cc[2 * j + 1] = c[j];
        ss[2 * j] = -s[j];
        ss[2 * j + 1] = s[j];
    }
    for (int64_t h = 0; h < heads; h++) {
        const int64_t row = base + h * dim;
        for (int64_t i = 0; i < dim; i += 32) {
            const __m512 a = widen(xb + row + i), b = widen(xb + row + i + 16);
            const __m512 ya = _mm512_fmadd_ps(a, _mm512_load_ps(cc + i), _mm512_mul_ps(_mm512_permute_ps(a, 0xb1), _mm512_load_ps(ss + i)));
            const __m512 yb2 = _mm512_fmadd_ps(b, _mm512_load_ps(cc + i + 16),
                                               _mm512_mul_ps(_mm512_permute_ps(b, 0xb1), _mm512_load_ps(ss + i + 16)));
            store32(yb + row + i, ya, yb2);
        }
    }
}
