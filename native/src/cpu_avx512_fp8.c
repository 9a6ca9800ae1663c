/* cpu_avx512_fp8.c - AVX-512 (F, BW, VL, DQ) inner loops of the fp8 ops (compiled with
 * -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma -mf16c; entered only when
 * ctx->simd == SIMD_AVX512). Bit-exact with cpu_convert.c and cpu_avx2_fp8.c.
 *
 * The same formulas as cpu_avx2_fp8.c, 16 lanes (one zmm of f32) at a time; tails are masked
 * loads and stores (a masked-off lane is never read or written, so no scalar tail loops).
 *
 * f32 -> e4m3, with a = |x| bits:
 *   normal (a >= 2^-6):  code = ((a + 0x7ffff + ((a >> 20) & 1)) >> 20) - (120 << 3)
 *                        (round to nearest even on the f32 bits, rebias 127 -> 7)
 *   subnormal (< 2^-6):  code = rne(|x| * 2^9) = bits(|x| + 2^14) - bits(2^14), |x| clamped
 *                        to 2^-6 so that normal lanes give 8 there; the max of both codes
 *   min(code, 0x7e) saturates (Inf too); NaN -> 0x7f; the sign is OR'ed in otherwise.
 * e5m2 is the same with shift 21, rebias (127 - 15) << 2, subnormal scale 2^16 (add 2^7),
 * max 0x7b. The 32-bit codes are narrowed to bytes by vpmovdb.
 *
 * e4m3 -> f32: the byte s.eeee.mmm becomes the f16 s.0eeee.mmm0000000 (the value times 2^-8,
 * subnormals included), widened exactly by vcvtph2ps, the 2^8 folded into the scale; e5m2
 * is the upper byte of an f16. A NaN byte becomes the f16 sign|0x7e00, the f32
 * sign|0x7fc00000, as on the AVX2 path. Every f32 operation assumes the default rounding
 * mode (round to nearest even); conversions to f16 take it from the immediate.
 */
#include <immintrin.h>

#include "cpu_avx2.h" /* cpu_fp8_scale_from_amax (plain C) */
#include "cpu_avx512.h"
#include "internal.h"

#define AI static inline __attribute__((always_inline))

/* the first r lanes (0 <= r <= 16 resp. 32) */
AI __mmask16 lanes16(int64_t r) { return (__mmask16)(((uint32_t)1 << r) - 1); }
AI __mmask32 lanes32(int64_t r) { return (__mmask32)(((uint64_t)1 << r) - 1); }

/* ---------------- loads: 16 lanes of f32 from f32 | bf16 | f16 ---------------- */

AI __m512 widen16(__m256i h, int32_t dt) {
    if (dt == DSK4J_DTYPE_BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}

// x[i .. i+16) -> f32
AI __m512 load16(const void* x, int64_t i, int32_t dt) {
    if (dt == DSK4J_DTYPE_F32) return _mm512_loadu_ps((const float*)x + i);
    return widen16(_mm256_loadu_si256((const __m256i*)((const uint16_t*)x + i)), dt);
}

// x[i .. i+16) -> f32, lanes outside m read nothing and are 0
AI __m512 load16_masked(const void* x, int64_t i, int32_t dt, __mmask16 m) {
    if (dt == DSK4J_DTYPE_F32) return _mm512_maskz_loadu_ps(m, (const float*)x + i);
    return widen16(_mm256_maskz_loadu_epi16(m, (const uint16_t*)x + i), dt);
}

/* ---------------- f32 -> fp8 codes (one code per 32-bit lane) ---------------- */

AI __m512i enc16(__m512 x, int e5m2) {
    const int shift = e5m2 ? 21 : 20;
    __m512i b = _mm512_castps_si512(x);
    __m512i a = _mm512_and_si512(b, _mm512_set1_epi32(0x7fffffff));
    /* normal range: cn = (a + bias + lsb) >> shift (arithmetic), bias = half ulp - 1 minus
     * the rebias; lsb (the kept mantissa's last bit) added under a mask */
    __mmask16 odd = _mm512_test_epi32_mask(a, _mm512_set1_epi32(1 << shift));
    __m512i cn = _mm512_add_epi32(a, _mm512_set1_epi32(e5m2 ? 0xfffff - (448 << 21) : 0x7ffff - (960 << 20)));
    cn = _mm512_mask_add_epi32(cn, odd, cn, _mm512_set1_epi32(1));
    cn = _mm512_srai_epi32(cn, shift);
    /* subnormal range: bits(min(|x|, min normal) + M) - bits(M), M = 2^14 resp. 2^7; the
     * max with cn picks the right code (see cpu_avx2_fp8.c) */
    const float m = e5m2 ? 128.0f : 16384.0f;
    __m512 xs = _mm512_min_ps(_mm512_castsi512_ps(a), _mm512_set1_ps(e5m2 ? 0x1p-14f : 0x1p-6f));
    __m512i cs = _mm512_sub_epi32(_mm512_castps_si512(_mm512_add_ps(xs, _mm512_set1_ps(m))),
                                  _mm512_castps_si512(_mm512_set1_ps(m)));
    __m512i c = _mm512_max_epi32(cn, cs);
    c = _mm512_min_epi32(c, _mm512_set1_epi32(e5m2 ? 0x7b : 0x7e)); /* saturate, Inf too */
    /* c | (sign >> 24), then NaN lanes (a > Inf bits) -> 0x7f */
    c = _mm512_ternarylogic_epi32(c, _mm512_srli_epi32(b, 24), _mm512_set1_epi32(0x80), 0xf8); /* A|(B&C) */
    __mmask16 nan = _mm512_cmpgt_epi32_mask(a, _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_mov_epi32(c, nan, _mm512_set1_epi32(0x7f));
}

AI void store16_codes(uint8_t* y, __m512i c) { _mm_storeu_si128((__m128i*)y, _mm512_cvtepi32_epi8(c)); }

AI void encode_loop(uint8_t* y, const void* x, int32_t dt, int64_t n, int e5m2) {
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        store16_codes(y + i, enc16(load16(x, i, dt), e5m2));
        store16_codes(y + i + 16, enc16(load16(x, i + 16, dt), e5m2));
        store16_codes(y + i + 32, enc16(load16(x, i + 32, dt), e5m2));
        store16_codes(y + i + 48, enc16(load16(x, i + 48, dt), e5m2));
    }
    for (; i < n; i += 16) {
        __mmask16 m = lanes16(n - i < 16 ? n - i : 16);
        _mm512_mask_cvtepi32_storeu_epi8(y + i, m, enc16(load16_masked(x, i, dt, m), e5m2));
    }
}

// x[n] f32|bf16|f16 -> y[n] e4m3|e5m2
void cpu_avx512_fp8_encode(uint8_t* y, int32_t y_dtype, const void* x, int32_t x_dtype, int64_t n) {
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

/* ---------------- fp8 -> f32 (32 lanes: two zmm) ---------------- */

/* 32 fp8 bytes -> 32 f16 bit patterns: e4m3 as value * 2^-8, e5m2 exact; NaN bytes become
 * sign | 0x7e00 (F16C widens it to sign | 0x7fc00000) */
AI __m512i fp8_to_h32(__m256i bytes, int e5m2) {
    __m512i v = _mm512_cvtepu8_epi16(bytes);
    __m512i a = _mm512_and_si512(v, _mm512_set1_epi16(0x7f));
    __m512i sign = _mm512_slli_epi16(_mm512_and_si512(v, _mm512_set1_epi16(0x80)), 8);
    __m512i h;
    __mmask32 nan;
    if (e5m2) {
        h = _mm512_slli_epi16(v, 8);
        nan = _mm512_cmpgt_epi16_mask(a, _mm512_set1_epi16(0x7c));
    } else {
        h = _mm512_or_si512(_mm512_slli_epi16(a, 7), sign);
        nan = _mm512_cmpeq_epi16_mask(a, _mm512_set1_epi16(0x7f));
    }
    return _mm512_mask_mov_epi16(h, nan, _mm512_or_si512(sign, _mm512_set1_epi16(0x7e00)));
}

AI __m512 h_lo(__m512i h) { return _mm512_cvtph_ps(_mm512_castsi512_si256(h)); }
AI __m512 h_hi(__m512i h) { return _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1)); }

/* f32 -> bf16 bits, round to nearest even (32-bit lanes). Only for values whose NaNs are
 * quiet with a zero lower half (sign|0x7fc00000: fp8 NaNs, their products, the default NaN
 * of Inf*0), where the rounding already gives (bits >> 16) | 0x40 as cpu_f32_to_bf16. */
AI __m512i bf16_lanes(__m512 f) {
    __m512i b = _mm512_castps_si512(f);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    return _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(b, _mm512_set1_epi32(0x7fff)), lsb), 16);
}

/* 32 f32 (lo, hi) -> 32 bf16 in order */
AI __m512i pack_bf16(__m512 lo, __m512 hi) {
    __m512i p = _mm512_packus_epi32(bf16_lanes(lo), bf16_lanes(hi)); /* per 128-bit lane: lo4, hi4 */
    return _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), p);
}

/* 32 fp8 codes at x[i..] (lanes outside m: not read, not written) -> y[i..] */
AI void decode32(void* y, int32_t ydt, const uint8_t* x, int64_t i, int e5m2, int tail, __mmask32 m) {
    __m256i bytes = tail ? _mm256_maskz_loadu_epi8(m, x + i) : _mm256_loadu_si256((const __m256i*)(x + i));
    __m512i h = fp8_to_h32(bytes, e5m2);
    if (ydt == DSK4J_DTYPE_F16 && e5m2) {
        if (tail) _mm512_mask_storeu_epi16((uint16_t*)y + i, m, h);
        else _mm512_storeu_si512((uint16_t*)y + i, h);
        return;
    }
    __m512 lo = h_lo(h), hi = h_hi(h);
    if (!e5m2) { /* e4m3: the f16 holds value * 2^-8 */
        lo = _mm512_mul_ps(lo, _mm512_set1_ps(256.0f));
        hi = _mm512_mul_ps(hi, _mm512_set1_ps(256.0f));
    }
    if (ydt == DSK4J_DTYPE_F32) {
        float* yf = (float*)y + i;
        if (tail) {
            _mm512_mask_storeu_ps(yf, (__mmask16)m, lo);
            _mm512_mask_storeu_ps(yf + 16, (__mmask16)(m >> 16), hi);
        } else {
            _mm512_storeu_ps(yf, lo);
            _mm512_storeu_ps(yf + 16, hi);
        }
        return;
    }
    __m512i p;
    if (ydt == DSK4J_DTYPE_BF16) { /* every fp8 value is exact in bf16 */
        p = pack_bf16(lo, hi);
    } else {
        __m256i l = _mm512_cvtps_ph(lo, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256i u = _mm512_cvtps_ph(hi, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        p = _mm512_inserti64x4(_mm512_castsi256_si512(l), u, 1);
    }
    if (tail) _mm512_mask_storeu_epi16((uint16_t*)y + i, m, p);
    else _mm512_storeu_si512((uint16_t*)y + i, p);
}

AI void decode_loop(void* y, int32_t ydt, const uint8_t* x, int64_t n, int e5m2) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) decode32(y, ydt, x, i, e5m2, 0, 0);
    if (i < n) decode32(y, ydt, x, i, e5m2, 1, lanes32(n - i));
}

// x[n] e4m3|e5m2 -> y[n] f32|bf16|f16 (exact)
void cpu_avx512_fp8_decode(void* y, int32_t y_dtype, const uint8_t* x, int32_t x_dtype, int64_t n) {
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

/* bytes ahead of the first pass over a group that are prefetched (as on the AVX2 path; a
 * prefetch never faults, so running past the end of the tensor is harmless) */
#define AMAX_PREFETCH 2048

/* |v| max'ed into m; _mm512_max_ps(a, m) returns m when a is NaN: NaN ignored */
AI __m512 absmax(__m512 v, __m512 m) {
    return _mm512_max_ps(_mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff))), m);
}

AI float amax_loop(const void* x, int32_t dt, int64_t n) {
    const size_t esz = dt == DSK4J_DTYPE_F32 ? 4 : 2;
    __m512 m0 = _mm512_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const char* p = (const char*)x + i * esz + AMAX_PREFETCH;
        _mm_prefetch(p, _MM_HINT_T0);
        _mm_prefetch(p + 64, _MM_HINT_T0);
        if (esz == 4) {
            _mm_prefetch(p + 128, _MM_HINT_T0);
            _mm_prefetch(p + 192, _MM_HINT_T0);
        }
        m0 = absmax(load16(x, i, dt), m0);
        m1 = absmax(load16(x, i + 16, dt), m1);
        m2 = absmax(load16(x, i + 32, dt), m2);
        m3 = absmax(load16(x, i + 48, dt), m3);
    }
    for (; i < n; i += 16) m0 = absmax(load16_masked(x, i, dt, lanes16(n - i < 16 ? n - i : 16)), m0);
    /* no NaN left: any order */
    return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
}

// max_i |x[i]|, x[n] f32|bf16, NaN ignored
float cpu_avx512_amax(const void* x, int32_t x_dtype, int64_t n) {
    if (x_dtype == DSK4J_DTYPE_F32) return amax_loop(x, DSK4J_DTYPE_F32, n);
    return amax_loop(x, DSK4J_DTYPE_BF16, n);
}

/* e4m3(x / s), or x * r with r = 1/s exact when s is a power of two (the same number) */
AI __m512i quant16(__m512 x, __m512 s, __m512 r, int pow2) {
    return enc16(pow2 ? _mm512_mul_ps(x, r) : _mm512_div_ps(x, s), 0);
}

AI void quant_loop(uint8_t* y, const void* x, int32_t dt, int64_t n, float s, int pow2) {
    const __m512 vs = _mm512_set1_ps(s), vr = _mm512_set1_ps(1.0f / s);
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        store16_codes(y + i, quant16(load16(x, i, dt), vs, vr, pow2));
        store16_codes(y + i + 16, quant16(load16(x, i + 16, dt), vs, vr, pow2));
        store16_codes(y + i + 32, quant16(load16(x, i + 32, dt), vs, vr, pow2));
        store16_codes(y + i + 48, quant16(load16(x, i + 48, dt), vs, vr, pow2));
    }
    for (; i < n; i += 16) {
        __mmask16 m = lanes16(n - i < 16 ? n - i : 16);
        _mm512_mask_cvtepi32_storeu_epi8(y + i, m, quant16(load16_masked(x, i, dt, m), vs, vr, pow2));
    }
}

// x[n] f32|bf16, s f32 -> y[n] e4m3 = e4m3(x / s)
void cpu_avx512_quant_e4m3(uint8_t* y, const void* x, int32_t x_dtype, int64_t n, float s, int s_pow2) {
    if (x_dtype == DSK4J_DTYPE_F32) {
        if (s_pow2) quant_loop(y, x, DSK4J_DTYPE_F32, n, s, 1);
        else quant_loop(y, x, DSK4J_DTYPE_F32, n, s, 0);
    } else {
        if (s_pow2) quant_loop(y, x, DSK4J_DTYPE_BF16, n, s, 1);
        else quant_loop(y, x, DSK4J_DTYPE_BF16, n, s, 0);
    }
}

/* act_quant in runs of AQ_RUN groups of 128, two passes per run: pass 1 computes every s
 * of the run (amax, reduce, scalar scale), pass 2 quantizes the run again from L1. Each
 * group's s is then ready when its divisions start; one pass per group would chain load ->
 * amax -> reduce -> s -> divide -> encode, ~100 cycles, too long for out-of-order execution
 * to hide (measured: slower). AQ_RUN * 512 bytes (f32) stay well inside L1. */
#define AQ_RUN 16

/* max_i |x[i]| over one group x[128] f32|bf16, NaN ignored; prefetches AMAX_PREFETCH ahead */
AI float amax128(const void* x, int32_t dt) {
    const size_t esz = dt == DSK4J_DTYPE_F32 ? 4 : 2;
    const char* p = (const char*)x + AMAX_PREFETCH;
#pragma GCC unroll 8
    for (size_t off = 0; off < 128 * esz; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
    /* two chains from 0, so that a NaN lane is never the accumulator */
    __m512 m0 = absmax(load16(x, 0, dt), _mm512_setzero_ps());
    __m512 m1 = absmax(load16(x, 16, dt), _mm512_setzero_ps());
#pragma GCC unroll 8
    for (int j = 32; j < 128; j += 32) {
        m0 = absmax(load16(x, j, dt), m0);
        m1 = absmax(load16(x, j + 16, dt), m1);
    }
    return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}

/* y[128] e4m3 = e4m3(x[128] / s), or x * r, r = 1/s, when pow2 */
AI void quant128(uint8_t* y, const void* x, int32_t dt, float s, float r, int pow2) {
    const __m512 vs = _mm512_set1_ps(s), vr = _mm512_set1_ps(r);
#pragma GCC unroll 8
    for (int j = 0; j < 128; j += 16) store16_codes(y + j, quant16(load16(x, j, dt), vs, vr, pow2));
}

AI void groups128_loop(uint8_t* y, float* s, const void* x, int32_t dt, int64_t ngroups, int ue8m0) {
    const size_t gbytes = 128 * (dt == DSK4J_DTYPE_F32 ? 4 : 2);
    float r[AQ_RUN];
    for (int64_t g0 = 0; g0 < ngroups; g0 += AQ_RUN) {
        int64_t nr = ngroups - g0 < AQ_RUN ? ngroups - g0 : AQ_RUN;
        const char* xr = (const char*)x + (size_t)g0 * gbytes;
        for (int64_t j = 0; j < nr; j++) {
            s[g0 + j] = cpu_fp8_scale_from_amax(amax128(xr + j * gbytes, dt), ue8m0);
            if (ue8m0) r[j] = 1.0f / s[g0 + j]; /* exact: s is a power of two (or Inf) */
        }
        for (int64_t j = 0; j < nr; j++)
            quant128(y + (g0 + j) * 128, xr + j * gbytes, dt, s[g0 + j], ue8m0 ? r[j] : 0.0f, ue8m0);
    }
}

// x[ngroups,128] f32|bf16 -> y[ngroups,128] e4m3, s[ngroups] f32: per group
//   s = scale(max(max|x| (NaN ignored), 1e-4) / 448, ue8m0), y = e4m3(x / s)
void cpu_avx512_act_quant_128(uint8_t* y, float* s, const void* x, int32_t x_dtype, int64_t ngroups,
                              int ue8m0) {
    if (x_dtype == DSK4J_DTYPE_F32) {
        if (ue8m0) groups128_loop(y, s, x, DSK4J_DTYPE_F32, ngroups, 1);
        else groups128_loop(y, s, x, DSK4J_DTYPE_F32, ngroups, 0);
    } else {
        if (ue8m0) groups128_loop(y, s, x, DSK4J_DTYPE_BF16, ngroups, 1);
        else groups128_loop(y, s, x, DSK4J_DTYPE_BF16, ngroups, 0);
    }
}

/* ---------------- weight_dequant ---------------- */

AI void dequant_loop(void* y, int32_t ydt, const uint8_t* w, int64_t n, float s, int stream) {
    int64_t i = 0;
    float s256 = s * 256.0f;
    /* vector path when 256*s is exact (s = Inf too) and s is not NaN: a NaN s goes to the
     * scalar loop, so that a NaN w always gives w's NaN on every path (and every NaN product
     * here is sign|0x7fc00000, as bf16_lanes needs); the same split as cpu_avx2_fp8.c */
    int folded = !(__builtin_isinf(s256) && !__builtin_isinf(s)) && s == s;
    if (stream && ((uintptr_t)y & 63) != 0) stream = 0;
    if (folded) {
        const __m512 k = _mm512_set1_ps(s256);
        for (; i + 32 <= n; i += 32) {
            __m512i h = fp8_to_h32(_mm256_loadu_si256((const __m256i*)(w + i)), 0);
            __m512 lo = _mm512_mul_ps(h_lo(h), k), hi = _mm512_mul_ps(h_hi(h), k);
            if (ydt == DSK4J_DTYPE_F32) {
                float* yp = (float*)y + i;
                if (stream) {
                    _mm512_stream_ps(yp, lo);
                    _mm512_stream_ps(yp + 16, hi);
                } else {
                    _mm512_storeu_ps(yp, lo);
                    _mm512_storeu_ps(yp + 16, hi);
                }
            } else {
                __m512i p = pack_bf16(lo, hi);
                if (stream) _mm512_stream_si512((__m512i*)((uint16_t*)y + i), p);
                else _mm512_storeu_si512((uint16_t*)y + i, p);
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
void cpu_avx512_dequant_e4m3(void* y, int32_t y_dtype, const uint8_t* w, int64_t n, float s, int stream) {
    if (y_dtype == DSK4J_DTYPE_F32) {
        if (stream) dequant_loop(y, DSK4J_DTYPE_F32, w, n, s, 1);
        else dequant_loop(y, DSK4J_DTYPE_F32, w, n, s, 0);
    } else {
        if (stream) dequant_loop(y, DSK4J_DTYPE_BF16, w, n, s, 1);
        else dequant_loop(y, DSK4J_DTYPE_BF16, w, n, s, 0);
    }
}
