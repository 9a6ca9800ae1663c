/* cpu_avx2_fp8.c - AVX2+FMA+F16C inner loops of the fp8 ops (compiled with -mavx2 -mfma
 * -mf16c; entered only when ctx->simd == SIMD_AVX2). Bit-exact with cpu_convert.c.
 *
 * f32 -> e4m3, 8 lanes at a time, with a = |x| bits:
 *   normal (a >= 2^-6):  code = ((a + 0x7ffff + ((a >> 20) & 1)) >> 20) - (120 << 3)
 *                        (round to nearest even on the f32 bits, rebias 127 -> 7)
 *   subnormal (< 2^-6):  code = rne(|x| * 2^9) = bits(|x| + 2^14) - bits(2^14), |x| clamped
 *                        to 2^-6 so that normal lanes give 8 there; the max of both codes
 *   min(code, 0x7e) saturates (Inf too); NaN -> 0x7f; the sign is OR'ed in otherwise.
 * e5m2 is the same with shift 21, rebias (127 - 15) << 2, subnormal scale 2^16 (add 2^7),
 * max 0x7b.
 *
 * e4m3 -> f32, 16 lanes at a time: the byte s.eeee.mmm becomes the f16 s.0eeee.mmm0000000,
 * which is the e4m3 value times 2^-8 (subnormals included); F16C widens it exactly to f32
 * and the 2^8 is folded into the scale: dequant = f16(h) * (256 * s), one rounding, the same
 * number as e4m3(w) * s whenever 256 * s does not overflow (else the plain path is taken).
 * e5m2 is the upper byte of an f16, so it widens through F16C directly.
 * Like every f32 operation here (x / s above all, on both paths), the add assumes the default
 * rounding mode, round to nearest even (the JVM never changes it); F16C conversions take
 * their rounding from the immediate.
 */
#include <immintrin.h>

#include "cpu_avx2.h"
#include "internal.h"

#define AI static inline __attribute__((always_inline))

/* ---------------- loads: 8 lanes of f32 from f32 | bf16 | f16 ---------------- */

AI __m256 load8(const void* x, int64_t i, int32_t dt) {
    if (dt == DSK4J_DTYPE_F32) return _mm256_loadu_ps((const float*)x + i);
    __m128i h = _mm_loadu_si128((const __m128i*)((const uint16_t*)x + i));
    if (dt == DSK4J_DTYPE_BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

AI float load1(const void* x, int64_t i, int32_t dt) {
    if (dt == DSK4J_DTYPE_F32) return ((const float*)x)[i];
    if (dt == DSK4J_DTYPE_BF16) return cpu_bf16_to_f32(((const uint16_t*)x)[i]);
    return cpu_f16_to_f32(((const uint16_t*)x)[i]);
}

/* ---------------- f32 -> fp8 codes (one code per 32-bit lane) ---------------- */

AI __m256i enc_lanes(__m256 x, int e5m2) {
    const int shift = e5m2 ? 21 : 20;
    __m256i b = _mm256_castps_si256(x);
    __m256i a = _mm256_and_si256(b, _mm256_set1_epi32(0x7fffffff));
    /* normal range: round to nearest even on the bits and rebias in one add; an arithmetic
     * shift leaves lanes below the normal range at codes <= the min normal code */
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(a, shift), _mm256_set1_epi32(1));
    __m256i cn = _mm256_add_epi32(a, _mm256_set1_epi32(e5m2 ? 0xfffff - (448 << 21) : 0x7ffff - (960 << 20)));
    cn = _mm256_srai_epi32(_mm256_add_epi32(cn, lsb), shift);
    /* subnormal range: |x| clamped to the min normal, rounded to the subnormal quantum by
     * adding M (ulp(M) = 2^-9 resp. 2^-16); the code is bits(|x| + M) - bits(M). Normal lanes
     * give the min normal code here, which is <= cn; subnormal lanes give the right code,
     * which is >= cn: max picks the right one. (|x| + M is never subnormal, so neither FTZ
     * nor DAZ changes it; f32 subnormals give 0 either way.) */
    const float m = e5m2 ? 128.0f : 16384.0f;
    __m256 xs = _mm256_min_ps(_mm256_castsi256_ps(a), _mm256_set1_ps(e5m2 ? 0x1p-14f : 0x1p-6f));
    __m256i cs = _mm256_sub_epi32(_mm256_castps_si256(_mm256_add_ps(xs, _mm256_set1_ps(m))),
                                  _mm256_castps_si256(_mm256_set1_ps(m)));
    __m256i c = _mm256_max_epi32(cn, cs);
    c = _mm256_min_epi32(c, _mm256_set1_epi32(e5m2 ? 0x7b : 0x7e)); /* saturate, Inf too */
    /* NaN -> 0x7f (c <= 0x7e, so OR gives 0x7f), sign for everything else */
    __m256i isnan = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f800000));
    __m256i sign = _mm256_and_si256(_mm256_srli_epi32(b, 24), _mm256_set1_epi32(0x80));
    c = _mm256_or_si256(c, _mm256_and_si256(isnan, _mm256_set1_epi32(0x7f)));
    return _mm256_or_si256(c, _mm256_andnot_si256(isnan, sign));
}

/* 4 x 8 codes (0..255 in 32-bit lanes) -> 32 bytes in order */
AI __m256i pack32_codes(__m256i c0, __m256i c1, __m256i c2, __m256i c3) {
    __m256i p01 = _mm256_packus_epi32(c0, c1);
    __m256i p23 = _mm256_packus_epi32(c2, c3);
    __m256i p = _mm256_packus_epi16(p01, p23);
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

AI void store32_codes(uint8_t* y, __m256i c0, __m256i c1, __m256i c2, __m256i c3) {
    _mm256_storeu_si256((__m256i*)y, pack32_codes(c0, c1, c2, c3));
}

AI void store8_codes(uint8_t* y, __m256i c) {
    __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    _mm_storel_epi64((__m128i*)y, _mm_packus_epi16(p, p));
}

AI void encode_loop(uint8_t* y, const void* x, int32_t dt, int64_t n, int e5m2) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        store32_codes(y + i, enc_lanes(load8(x, i, dt), e5m2), enc_lanes(load8(x, i + 8, dt), e5m2),
                      enc_lanes(load8(x, i + 16, dt), e5m2), enc_lanes(load8(x, i + 24, dt), e5m2));
    for (; i + 8 <= n; i += 8) store8_codes(y + i, enc_lanes(load8(x, i, dt), e5m2));
    for (; i < n; i++) y[i] = e5m2 ? cpu_f32_to_e5m2(load1(x, i, dt)) : cpu_f32_to_e4m3(load1(x, i, dt));
}

// x[n] f32|bf16|f16 -> y[n] e4m3|e5m2
void cpu_avx2_fp8_encode(uint8_t* y, int32_t y_dtype, const void* x, int32_t x_dtype, int64_t n) {
    int e5 = y_dtype == DSK4J_DTYPE_E5M2;
    switch (x_dtype) {
    case DSK4J_DTYPE_F32:
        if (e5) encode_loop(y, x, DSK4J_DTYPE_F32, n, 1); else encode_loop(y, x, DSK4J_DTYPE_F32, n, 0);
        break;
    case DSK4J_DTYPE_BF16:
        if (e5) encode_loop(y, x, DSK4J_DTYPE_BF16, n, 1); else encode_loop(y, x, DSK4J_DTYPE_BF16, n, 0);
        break;
    default:
        if (e5) encode_loop(y, x, DSK4J_DTYPE_F16, n, 1); else encode_loop(y, x, DSK4J_DTYPE_F16, n, 0);
        break;
    }
}

/* ---------------- fp8 -> f32 (16 lanes: two __m256) ---------------- */

/* 16 fp8 bytes -> 16 f16 bit patterns: e4m3 as value * 2^-8 (see the top), e5m2 exact.
 * NaN bytes become sign | 0x7e00, which F16C widens to sign | 0x7fc00000. */
AI __m256i fp8_to_h16(__m128i bytes, int e5m2) {
    __m256i v = _mm256_cvtepu8_epi16(bytes);
    __m256i a = _mm256_and_si256(v, _mm256_set1_epi16(0x7f));
    __m256i sign = _mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x80)), 8);
    __m256i h, isnan;
    if (e5m2) {
        h = _mm256_slli_epi16(v, 8);
        isnan = _mm256_cmpgt_epi16(a, _mm256_set1_epi16(0x7c));
    } else {
        h = _mm256_or_si256(_mm256_slli_epi16(a, 7), sign);
        isnan = _mm256_cmpeq_epi16(a, _mm256_set1_epi16(0x7f));
    }
    __m256i qnan = _mm256_or_si256(sign, _mm256_set1_epi16(0x7e00));
    return _mm256_blendv_epi8(h, qnan, isnan);
}

/* f32 -> bf16 bits, round to nearest even (32-bit lanes). Only for values whose NaNs are
 * quiet with a zero lower half (sign|0x7fc00000: fp8 NaNs, their products, the default
 * NaN of Inf*0), where the rounding already gives (bits >> 16) | 0x40 as cpu_f32_to_bf16. */
AI __m256i bf16_lanes(__m256 f) {
    __m256i b = _mm256_castps_si256(f);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
    return _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7fff)), lsb), 16);
}

/* 16 f32 (lo, hi) -> 16 bf16 stored at y */
AI void store16_bf16(uint16_t* y, __m256 lo, __m256 hi, int stream) {
    __m256i p = _mm256_packus_epi32(bf16_lanes(lo), bf16_lanes(hi));
    p = _mm256_permute4x64_epi64(p, 0xd8);
    if (stream) _mm256_stream_si256((__m256i*)y, p);
    else _mm256_storeu_si256((__m256i*)y, p);
}

AI void decode_loop(void* y, int32_t ydt, const uint8_t* x, int64_t n, int e5m2) {
    int64_t i = 0;
    /* e4m3: the f16 holds value * 2^-8 */
    const __m256 k = _mm256_set1_ps(e5m2 ? 1.0f : 256.0f);
    for (; i + 16 <= n; i += 16) {
        __m256i h = fp8_to_h16(_mm_loadu_si128((const __m128i*)(x + i)), e5m2);
        if (ydt == DSK4J_DTYPE_F16 && e5m2) {
            _mm256_storeu_si256((__m256i*)((uint16_t*)y + i), h);
            continue;
        }
        __m256 lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
        __m256 hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
        if (!e5m2) {
            lo = _mm256_mul_ps(lo, k);
            hi = _mm256_mul_ps(hi, k);
        }
        if (ydt == DSK4J_DTYPE_F32) {
            _mm256_storeu_ps((float*)y + i, lo);
            _mm256_storeu_ps((float*)y + i + 8, hi);
        } else if (ydt == DSK4J_DTYPE_BF16) {
            /* every fp8 value is exact in bf16: the upper half of the f32 bits */
            store16_bf16((uint16_t*)y + i, lo, hi, 0);
        } else {
            __m128i l = _mm256_cvtps_ph(lo, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            __m128i u = _mm256_cvtps_ph(hi, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm256_storeu_si256((__m256i*)((uint16_t*)y + i), _mm256_set_m128i(u, l));
        }
    }
    for (; i < n; i++) {
        float f = e5m2 ? cpu_e5m2_to_f32(x[i]) : cpu_e4m3_to_f32(x[i]);
        if (ydt == DSK4J_DTYPE_F32) ((float*)y)[i] = f;
        else if (ydt == DSK4J_DTYPE_BF16) ((uint16_t*)y)[i] = cpu_f32_to_bf16(f);
        else ((uint16_t*)y)[i] = cpu_f32_to_f16(f);
    }
}

// x[n] e4m3|e5m2 -> y[n] f32|bf16|f16 (exact)
void cpu_avx2_fp8_decode(void* y, int32_t y_dtype, const uint8_t* x, int32_t x_dtype, int64_t n) {
    int e5 = x_dtype == DSK4J_DTYPE_E5M2;
    switch (y_dtype) {
    case DSK4J_DTYPE_F32:
        if (e5) decode_loop(y, DSK4J_DTYPE_F32, x, n, 1); else decode_loop(y, DSK4J_DTYPE_F32, x, n, 0);
        break;
    case DSK4J_DTYPE_BF16:
        if (e5) decode_loop(y, DSK4J_DTYPE_BF16, x, n, 1); else decode_loop(y, DSK4J_DTYPE_BF16, x, n, 0);
        break;
    default:
        if (e5) decode_loop(y, DSK4J_DTYPE_F16, x, n, 1); else decode_loop(y, DSK4J_DTYPE_F16, x, n, 0);
        break;
    }
}

/* ---------------- act_quant / weight_quant pieces ---------------- */

/* bytes ahead of the amax pass (the first pass over a group) that are prefetched; a
 * prefetch never faults, so running past the end of the tensor is harmless */
#define AMAX_PREFETCH 2048

AI float amax_loop(const void* x, int32_t dt, int64_t n) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m0 = _mm256_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;
    int64_t i = 0;
    /* _mm256_max_ps(a, m) returns m when a is NaN: NaN ignored */
    const size_t esz = dt == DSK4J_DTYPE_F32 ? 4 : 2;
    for (; i + 32 <= n; i += 32) {
        /* software prefetch: the hardware prefetcher alone leaves a core short of reads
         * (measured: 8.7 -> 11.1 GB/s for act_quant f32 on 2 cores) */
        _mm_prefetch((const char*)x + i * esz + AMAX_PREFETCH, _MM_HINT_T0);
        if (esz == 4) _mm_prefetch((const char*)x + i * esz + AMAX_PREFETCH + 64, _MM_HINT_T0);
        m0 = _mm256_max_ps(_mm256_and_ps(load8(x, i, dt), absmask), m0);
        m1 = _mm256_max_ps(_mm256_and_ps(load8(x, i + 8, dt), absmask), m1);
        m2 = _mm256_max_ps(_mm256_and_ps(load8(x, i + 16, dt), absmask), m2);
        m3 = _mm256_max_ps(_mm256_and_ps(load8(x, i + 24, dt), absmask), m3);
    }
    for (; i + 8 <= n; i += 8) m0 = _mm256_max_ps(_mm256_and_ps(load8(x, i, dt), absmask), m0);
    m0 = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
    __m128 r = _mm_max_ps(_mm256_castps256_ps128(m0), _mm256_extractf128_ps(m0, 1));
    r = _mm_max_ps(r, _mm_movehl_ps(r, r));
    r = _mm_max_ss(r, _mm_shuffle_ps(r, r, 1));
    float amax = _mm_cvtss_f32(r);
    for (; i < n; i++) {
        float a = __builtin_fabsf(load1(x, i, dt));
        if (a > amax) amax = a;
    }
    return amax;
}

// max_i |x[i]|, x[n] f32|bf16, NaN ignored
float cpu_avx2_amax(const void* x, int32_t x_dtype, int64_t n) {
    if (x_dtype == DSK4J_DTYPE_F32) return amax_loop(x, DSK4J_DTYPE_F32, n);
    return amax_loop(x, DSK4J_DTYPE_BF16, n);
}

/* x / s, or x * r with r = 1/s exact when s is a power of two (the same number) */
AI __m256 scale_lanes(__m256 x, __m256 s, __m256 r, int pow2) {
    return pow2 ? _mm256_mul_ps(x, r) : _mm256_div_ps(x, s);
}

AI void quant_loop(uint8_t* y, const void* x, int32_t dt, int64_t n, float s, int pow2, int stream) {
    const __m256 vs = _mm256_set1_ps(s), vr = _mm256_set1_ps(1.0f / s);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i p = pack32_codes(enc_lanes(scale_lanes(load8(x, i, dt), vs, vr, pow2), 0),
                                 enc_lanes(scale_lanes(load8(x, i + 8, dt), vs, vr, pow2), 0),
                                 enc_lanes(scale_lanes(load8(x, i + 16, dt), vs, vr, pow2), 0),
                                 enc_lanes(scale_lanes(load8(x, i + 24, dt), vs, vr, pow2), 0));
        if (stream) _mm256_stream_si256((__m256i*)(y + i), p);
        else _mm256_storeu_si256((__m256i*)(y + i), p);
    }
    for (; i + 8 <= n; i += 8) store8_codes(y + i, enc_lanes(scale_lanes(load8(x, i, dt), vs, vr, pow2), 0));
    for (; i < n; i++) y[i] = cpu_f32_to_e4m3(load1(x, i, dt) / s);
}

// x[n] f32|bf16, s f32 -> y[n] e4m3 = e4m3(x / s)
void cpu_avx2_quant_e4m3(uint8_t* y, const void* x, int32_t x_dtype, int64_t n, float s, int s_pow2,
                         int stream) {
    if (stream && ((uintptr_t)y & 31) != 0) stream = 0;
#define Q(DT, P) \
    (stream ? quant_loop(y, x, DT, n, s, P, 1) : quant_loop(y, x, DT, n, s, P, 0))
    if (x_dtype == DSK4J_DTYPE_F32) {
        if (s_pow2) Q(DSK4J_DTYPE_F32, 1);
        else Q(DSK4J_DTYPE_F32, 0);
    } else {
        if (s_pow2) Q(DSK4J_DTYPE_BF16, 1);
        else Q(DSK4J_DTYPE_BF16, 0);
    }
#undef Q
}

/* ---------------- weight_dequant ---------------- */

AI void dequant_loop(void* y, int32_t ydt, const uint8_t* w, int64_t n, float s, int stream) {
    int64_t i = 0;
    float s256 = s * 256.0f;
    /* vector path when 256*s is exact (s = Inf too) and s is not NaN: a NaN s goes to the
     * scalar loop, so that a NaN w always gives w's NaN on both paths (and every NaN product
     * here is sign|0x7fc00000, as bf16_lanes needs) */
    int folded = !(__builtin_isinf(s256) && !__builtin_isinf(s)) && s == s;
    if (stream && ((uintptr_t)y & 31) != 0) stream = 0;
    if (folded) {
        const __m256 k = _mm256_set1_ps(s256);
        for (; i + 16 <= n; i += 16) {
            __m256i h = fp8_to_h16(_mm_loadu_si128((const __m128i*)(w + i)), 0);
            __m256 lo = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), k);
            __m256 hi = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)), k);
            if (ydt == DSK4J_DTYPE_F32) {
                float* yp = (float*)y + i;
                if (stream) {
                    _mm256_stream_ps(yp, lo);
                    _mm256_stream_ps(yp + 8, hi);
                } else {
                    _mm256_storeu_ps(yp, lo);
                    _mm256_storeu_ps(yp + 8, hi);
                }
            } else {
                store16_bf16((uint16_t*)y + i, lo, hi, stream);
            }
        }
    }
    for (; i < n; i++) {
        float d = cpu_e4m3_to_f32(w[i]);
        float f = d != d ? d : d * s;
        if (ydt == DSK4J_DTYPE_F32) ((float*)y)[i] = f;
        else ((uint16_t*)y)[i] = cpu_f32_to_bf16(f);
    }
}

// w[n] e4m3, s f32 -> y[n] f32|bf16 = e4m3_to_f32(w) * s (a NaN w gives its own NaN)
void cpu_avx2_dequant_e4m3(void* y, int32_t y_dtype, const uint8_t* w, int64_t n, float s, int stream) {
    if (y_dtype == DSK4J_DTYPE_F32) {
        if (stream) dequant_loop(y, DSK4J_DTYPE_F32, w, n, s, 1);
        else dequant_loop(y, DSK4J_DTYPE_F32, w, n, s, 0);
    } else {
        if (stream) dequant_loop(y, DSK4J_DTYPE_BF16, w, n, s, 1);
        else dequant_loop(y, DSK4J_DTYPE_BF16, w, n, s, 0);
    }
}

void cpu_avx2_sfence(void) { _mm_sfence(); }
