/* cpu_avx2.h - the AVX2+FMA+F16C inner loops of the cpu backend (cpu_avx2_*.c).
 *
 * Only files named cpu_avx2_*.c are compiled with -mavx2 -mfma -mf16c. The functions
 * declared here may be called only when ctx->simd == SIMD_AVX2, which the context sets only
 * after cpu_has_avx2_fma(); this header itself holds no vector code, so any file may include
 * it. Each function agrees bit for bit with the scalar conversions of cpu_convert.c.
 */
#ifndef DSK4J_CPU_AVX2_H
#define DSK4J_CPU_AVX2_H

#include <stdint.h>
#include <string.h>

/* y[n] fp8 (y_dtype e4m3|e5m2) = convert(x[n]) (x_dtype f32|bf16|f16). */
void cpu_avx2_fp8_encode(uint8_t* y, int32_t y_dtype, const void* x, int32_t x_dtype, int64_t n);
/* y[n] (y_dtype f32|bf16|f16) = convert(x[n]) (x_dtype e4m3|e5m2). */
void cpu_avx2_fp8_decode(void* y, int32_t y_dtype, const uint8_t* x, int32_t x_dtype, int64_t n);
/* max over i of |x[i]| (x_dtype f32|bf16), NaN ignored, 0 for n == 0. */
float cpu_avx2_amax(const void* x, int32_t x_dtype, int64_t n);
/* y[n] e4m3 = e4m3(x[n] / s) (x_dtype f32|bf16), a true f32 division. s_pow2 != 0 promises that
 * s is a power of two or Inf, where x * (1/s) is the same number and cheaper. stream != 0:
 * non-temporal stores where y is 32-byte aligned (call cpu_avx2_sfence after). */
void cpu_avx2_quant_e4m3(uint8_t* y, const void* x, int32_t x_dtype, int64_t n, float s,
                         int s_pow2, int stream);
/* y[n] (y_dtype f32|bf16) = e4m3_to_f32(w[n]) * s (one f32 multiply, then bf16 RNE).
 * stream != 0: non-temporal stores where y is 32-byte aligned (call cpu_avx2_sfence after). */
void cpu_avx2_dequant_e4m3(void* y, int32_t y_dtype, const uint8_t* w, int64_t n, float s,
                           int stream);
/* Orders the non-temporal stores of this thread before the ones that follow. */
void cpu_avx2_sfence(void);

/* rope.apply, one token: rows base + h*dim (h < heads) of x (dtype f32|bf16) rotated into the same
 * rows of y (may be x) with the token's table rows c, s [dim/2]; layout DSK4J_ROPE_*; dim even,
 * <= 1024. y0 = fma(x0, c, -(x1 * s)), y1 = fma(x1, c, x0 * s), as the portable loop. */
void cpu_avx2_rope_token(void* y, const void* x, int32_t dtype, const float* c, const float* s, int64_t heads,
                         int64_t dim, int32_t layout, int64_t base);

/* The fp8 scale of a group or block, shared by the portable and the AVX2 path (plain C):
 * s = max(amax, 1e-4) / 448 (f32); ue8m0: the smallest power of two >= s, exactly, from the
 * bits (Inf stays Inf). */
static inline float cpu_fp8_scale_from_amax(float amax, int ue8m0) {
    if (!(amax >= 1e-4f)) amax = 1e-4f;
    float s = amax / 448.0f;
    if (ue8m0) {
        uint32_t b;
        memcpy(&b, &s, sizeof b);
        if (b & 0x007fffffu) b = (b & 0x7f800000u) + 0x00800000u;
        memcpy(&s, &b, sizeof s);
    }
    return s;
}

#endif
