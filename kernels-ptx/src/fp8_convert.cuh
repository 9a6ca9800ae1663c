// fp8_convert.cuh - scalar conversions between f32 and e4m3 / e5m2 / bf16 / f16 (DESIGN.md 3).
//
// f32 -> e4m3/e5m2: round to nearest even, saturate to +-max (Inf too), every NaN -> 0x7f,
// signed zeros kept: bit for bit NVIDIA's host __nv_cvt_float_to_fp8(x, __NV_SATFINITE, ...).
// On sm_89+ the packed PTX cvt is used, with NaN forced to 0x7f afterwards; below (and on
// the host) an exact integer conversion. All functions are __host__ __device__ so that a
// host program can check the software path against cuda_fp8.h on all 2^32 inputs.
// Decodes are exact integer code; decoded NaNs are quiet NaNs that keep their sign.
#ifndef DSK4J_FP8_CONVERT_CUH
#define DSK4J_FP8_CONVERT_CUH

#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define DSK4J_HD __host__ __device__ __forceinline__
#else
#define DSK4J_HD static inline
#endif

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 890)
#define DSK4J_HW_FP8 1
#else
#define DSK4J_HW_FP8 0
#endif

// Dtype codes (dsk4j.h, contract).
#define DSK4J_DT_F32 0
#define DSK4J_DT_BF16 1
#define DSK4J_DT_F16 2
#define DSK4J_DT_E4M3 3
#define DSK4J_DT_E5M2 4

DSK4J_HD uint32_t dsk4j_f2u(float x) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(x);
#else
    uint32_t u; memcpy(&u, &x, 4); return u;
#endif
}
DSK4J_HD float dsk4j_u2f(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float x; memcpy(&x, &u, 4); return x;
#endif
}

// Right shift by s (1..31) with round to nearest, ties to even.
DSK4J_HD uint32_t dsk4j_rne_shift(uint32_t m, uint32_t s) {
    return (m + ((1u << (s - 1u)) - 1u) + ((m >> s) & 1u)) >> s;
}

// ---- f32 -> e4m3 (exact software path): max 448, min normal 2^-6, min denormal 2^-9 ----
DSK4J_HD uint8_t dsk4j_f32_to_e4m3_sw(float x) {
    const uint32_t u = dsk4j_f2u(x);
    const uint32_t sign = (u >> 24) & 0x80u;
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return 0x7f;                    // NaN
    if (a >= 0x43e80000u) return (uint8_t)(sign | 0x7e); // >= 464 (448 + half ulp), Inf
    if (a >= 0x3c800000u)                                // normal: rebias 127 -> 7, 3 bits
        return (uint8_t)(sign | dsk4j_rne_shift(a - (120u << 23), 20u));
    if (a <= 0x3a800000u) return (uint8_t)sign;          // <= 2^-10 (half min denormal)
    // denormal: q = round(|x| * 2^9); |x| = m24 * 2^(e-150), so shift = 141 - e (17..24)
    const uint32_t e = a >> 23, m24 = (a & 0x7fffffu) | 0x800000u;
    return (uint8_t)(sign | dsk4j_rne_shift(m24, 141u - e));
}

// ---- f32 -> e5m2 (exact software path): max 57344, min normal 2^-14, min denormal 2^-16 ----
DSK4J_HD uint8_t dsk4j_f32_to_e5m2_sw(float x) {
    const uint32_t u = dsk4j_f2u(x);
    const uint32_t sign = (u >> 24) & 0x80u;
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return 0x7f;                    // NaN
    if (a >= 0x47700000u) return (uint8_t)(sign | 0x7b); // >= 61440 (57344 + half ulp), Inf
    if (a >= 0x38800000u)                                // normal: rebias 127 -> 15, 2 bits
        return (uint8_t)(sign | dsk4j_rne_shift(a - (112u << 23), 21u));
    if (a <= 0x37000000u) return (uint8_t)sign;          // <= 2^-17 (half min denormal)
    // denormal: q = round(|x| * 2^16); shift = 134 - e (22..24)
    const uint32_t e = a >> 23, m24 = (a & 0x7fffffu) | 0x800000u;
    return (uint8_t)(sign | dsk4j_rne_shift(m24, 134u - e));
}

// Two values -> packed pair (lo in bits 0..7, hi in bits 8..15).
DSK4J_HD uint32_t dsk4j_f32x2_to_e4m3x2(float lo, float hi) {
#if DSK4J_HW_FP8
    unsigned short r;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
    uint32_t v = r;
    // Contract: every NaN -> 0x7f, whatever the hardware's NaN (sign) is.
    if (lo != lo) v = (v & 0xff00u) | 0x7fu;
    if (hi != hi) v = (v & 0x00ffu) | 0x7f00u;
    return v;
#else
    return (uint32_t)dsk4j_f32_to_e4m3_sw(lo) | ((uint32_t)dsk4j_f32_to_e4m3_sw(hi) << 8);
#endif
}
DSK4J_HD uint32_t dsk4j_f32x2_to_e5m2x2(float lo, float hi) {
#if DSK4J_HW_FP8
    unsigned short r;
    asm("cvt.rn.satfinite.e5m2x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
    uint32_t v = r;
    if (lo != lo) v = (v & 0xff00u) | 0x7fu;
    if (hi != hi) v = (v & 0x00ffu) | 0x7f00u;
    return v;
#else
    return (uint32_t)dsk4j_f32_to_e5m2_sw(lo) | ((uint32_t)dsk4j_f32_to_e5m2_sw(hi) << 8);
#endif
}
DSK4J_HD uint8_t dsk4j_f32_to_e4m3(float x) { return (uint8_t)dsk4j_f32x2_to_e4m3x2(x, 0.0f); }
DSK4J_HD uint8_t dsk4j_f32_to_e5m2(float x) { return (uint8_t)dsk4j_f32x2_to_e5m2x2(x, 0.0f); }

// ---- decodes (exact) ----
// e4m3: s eeee mmm, bias 7; 0x7f/0xff NaN; e == 0: m * 2^-9.
DSK4J_HD float dsk4j_e4m3_to_f32(uint32_t v) {
    const uint32_t sign = (v & 0x80u) << 24, e = (v >> 3) & 0xfu, m = v & 7u;
    if (e == 15u && m == 7u) return dsk4j_u2f(sign | 0x7fc00000u);
    if (e == 0u) return dsk4j_u2f(sign | dsk4j_f2u((float)m * 0.001953125f)); // exact
    return dsk4j_u2f(sign | ((e + 120u) << 23) | (m << 20));
}

// f16 -> f32 (exact; NaN made quiet, sign and payload kept).
DSK4J_HD float dsk4j_f16_to_f32(uint32_t h) {
    const uint32_t sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 31u) return dsk4j_u2f(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0u));
    if (e == 0u) return dsk4j_u2f(sign | dsk4j_f2u((float)m * 5.9604644775390625e-8f)); // m*2^-24
    return dsk4j_u2f(sign | ((e + 112u) << 23) | (m << 13));
}

// e5m2 is the upper byte of an f16.
DSK4J_HD float dsk4j_e5m2_to_f32(uint32_t v) { return dsk4j_f16_to_f32((v & 0xffu) << 8); }

DSK4J_HD float dsk4j_bf16_to_f32(uint32_t b) { return dsk4j_u2f((b & 0xffffu) << 16); }

// f32 -> bf16: round to nearest even; NaN -> (bits >> 16) | 0x40 (quiet, sign kept).
DSK4J_HD uint16_t dsk4j_f32_to_bf16(float x) {
    const uint32_t u = dsk4j_f2u(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// f32 -> f16: __float2half_rn semantics (RNE, overflow -> Inf), but a NaN stays a quiet NaN
// with its sign and upper payload: sign | 0x7e00 | (mantissa >> 13).
DSK4J_HD uint16_t dsk4j_f32_to_f16(float x) {
    const uint32_t u = dsk4j_f2u(x);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);   // >= 65520: Inf
    if (a >= 0x38800000u) return (uint16_t)(sign | dsk4j_rne_shift(a - (112u << 23), 13u));
    if (a <= 0x33000000u) return (uint16_t)sign;                // <= 2^-25
    const uint32_t e = a >> 23, m24 = (a & 0x7fffffu) | 0x800000u;
    return (uint16_t)(sign | dsk4j_rne_shift(m24, 126u - e));   // q = |x| * 2^24
}

// Element access by dtype code (element i of a typed array).
DSK4J_HD float dsk4j_load_as_f32(const void* p, int dtype, int64_t i) {
    switch (dtype) {
    case DSK4J_DT_F32: return ((const float*)p)[i];
    case DSK4J_DT_BF16: return dsk4j_bf16_to_f32(((const uint16_t*)p)[i]);
    case DSK4J_DT_F16: return dsk4j_f16_to_f32(((const uint16_t*)p)[i]);
    case DSK4J_DT_E4M3: return dsk4j_e4m3_to_f32(((const uint8_t*)p)[i]);
    default: return dsk4j_e5m2_to_f32(((const uint8_t*)p)[i]);
    }
}
DSK4J_HD void dsk4j_store_from_f32(void* p, int dtype, int64_t i, float v) {
    switch (dtype) {
    case DSK4J_DT_F32: ((float*)p)[i] = v; break;
    case DSK4J_DT_BF16: ((uint16_t*)p)[i] = dsk4j_f32_to_bf16(v); break;
    case DSK4J_DT_F16: ((uint16_t*)p)[i] = dsk4j_f32_to_f16(v); break;
    case DSK4J_DT_E4M3: ((uint8_t*)p)[i] = dsk4j_f32_to_e4m3(v); break;
    default: ((uint8_t*)p)[i] = dsk4j_f32_to_e5m2(v); break;
    }
}

// ---- quantization scale (DESIGN.md 4.1), device only ----
#if defined(__CUDACC__)
#define DSK4J_FLAG_UE8M0 1

// 64-bit a / b for a >= 0, b > 0, with a 32-bit fast path.
__device__ __forceinline__ long long dsk4j_div64(long long a, long long b) {
    if ((((unsigned long long)a | (unsigned long long)b) >> 32) == 0ull)
        return (long long)((unsigned)a / (unsigned)b);
    return a / b;
}

// amax (NaN already ignored through fmaxf) -> s = max(amax, 1e-4) / 448, rounded up to a
// power of two from the bits when ue8m0 (Inf stays Inf).
__device__ __forceinline__ float dsk4j_amax_to_scale(float amax, int ue8m0) {
    float s = __fdiv_rn(fmaxf(amax, 1e-4f), 448.0f);
    if (ue8m0) {
        uint32_t b = __float_as_uint(s);
        if (b & 0x7fffffu) b = (b & 0x7f800000u) + 0x800000u;
        s = __uint_as_float(b);
    }
    return s;
}
#endif

#endif
