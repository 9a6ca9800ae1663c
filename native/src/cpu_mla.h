/* cpu_mla.h - the per-ISA inner loops of mla (cpu_mla_kernel.h) as a table the driver in
 * cpu_mla.c picks from ctx->simd. See cpu_mla_kernel.h for the layouts. */
#ifndef DSK4J_CPU_MLA_H
#define DSK4J_CPU_MLA_H
#include <stdint.h>

typedef struct mla_kernels {
    int vl; /* f32 lanes of a vector: Rpad is a multiple of it */
    int cw; /* pv column step: dvpad is a multiple of it */
    void (*qk)(float* St, const float* Qt, int64_t Rpad, const float* K, int64_t ks, int64_t ntpad, int64_t d);
    void (*softmax)(float* St, int64_t Rpad, int64_t ntpad, const int32_t* vis, float* m, float* l, float* alpha);
    void (*pv)(float* O, int64_t os, const float* Pt, int64_t Rpad, int64_t R, const float* V, int64_t vs,
               int64_t nt, int64_t dvpad, const float* alpha);
    void (*widen_bf16)(float* dst, const uint16_t* src, int64_t n); /* exact bf16 -> f32 */
    void (*dequant_e4m3)(float* dst, const uint8_t* src, int64_t n, float s); /* e4m3 * s, exact */
} mla_kernels;

extern const mla_kernels cpu_mla_kernels_portable;
extern const mla_kernels cpu_avx2_mla_kernels;   /* only where ctx->simd >= SIMD_AVX2 */
extern const mla_kernels cpu_avx512_mla_kernels; /* only where ctx->simd == SIMD_AVX512 */
#endif
