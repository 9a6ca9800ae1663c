/* cpu_avx512.h - the AVX-512 (F, BW, VL, DQ) inner loops of the cpu backend (cpu_avx512_*.c).
 *
 * Only files named cpu_avx512_*.c are compiled with -mavx512f -mavx512bw -mavx512vl
 * -mavx512dq (and -mavx2 -mfma -mf16c). The functions declared here may be called only when
 * ctx->simd == SIMD_AVX512, which the context sets only after cpu_has_avx512(); this header
 * itself holds no vector code, so any file may include it. Each function agrees bit for bit
 * with the scalar conversions of cpu_convert.c and with the AVX2 loops of cpu_avx2.h.
 * Ops without an AVX-512 loop here run the AVX2 ones (an AVX-512 CPU has AVX2+FMA+F16C).
 */
#ifndef DSK4J_CPU_AVX512_H
#define DSK4J_CPU_AVX512_H

#include <stdint.h>

/* y[n] fp8 (y_dtype e4m3|e5m2) = convert(x[n]) (x_dtype f32|bf16|f16). */
void cpu_avx512_fp8_encode(uint8_t* y, int32_t y_dtype, const void* x, int32_t x_dtype, int64_t n);
/* y[n] (y_dtype f32|bf16|f16) = convert(x[n]) (x_dtype e4m3|e5m2). */
void cpu_avx512_fp8_decode(void* y, int32_t y_dtype, const uint8_t* x, int32_t x_dtype, int64_t n);
/* max over i of |x[i]| (x_dtype f32|bf16), NaN ignored, 0 for n == 0. */
float cpu_avx512_amax(const void* x, int32_t x_dtype, int64_t n);
/* y[n] e4m3 = e4m3(x[n] / s) (x_dtype f32|bf16), a true f32 division. s_pow2 != 0 promises
 * that s is a power of two or Inf, where x * (1/s) is the same number and cheaper. */
void cpu_avx512_quant_e4m3(uint8_t* y, const void* x, int32_t x_dtype, int64_t n, float s,
                           int s_pow2);
/* act_quant over ngroups contiguous groups of 128: x[ngroups,128] f32|bf16 -> y[ngroups,128]
 * e4m3, s[ngroups] f32; per group s = cpu_fp8_scale_from_amax(amax(x), ue8m0) and
 * y = e4m3(x / s) (ue8m0 makes s a power of two: x * (1/s), the same number). One pass: the
 * group stays in registers between amax and quant. */
void cpu_avx512_act_quant_128(uint8_t* y, float* s, const void* x, int32_t x_dtype, int64_t ngroups,
                              int ue8m0);
/* y[n] (y_dtype f32|bf16) = e4m3_to_f32(w[n]) * s (one f32 multiply, then bf16 RNE); a NaN w
 * gives its own NaN. stream != 0: non-temporal stores where y is 64-byte aligned (call
 * cpu_avx2_sfence after). */
void cpu_avx512_dequant_e4m3(void* y, int32_t y_dtype, const uint8_t* w, int64_t n, float s,
                             int stream);

/* rope.apply, one token (cpu_avx512_rope.c): bf16 with dim % 32 == 0 (interleaved) or
 * (dim / 2) % 16 == 0 (neox), dim <= 1024; anything else is passed to cpu_avx2_rope_token. */
void cpu_avx512_rope_token(void* y, const void* x, int32_t dtype, const float* c, const float* s, int64_t heads,
                           int64_t dim, int32_t layout, int64_t base);

#endif
