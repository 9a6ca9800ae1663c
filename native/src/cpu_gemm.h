/* cpu_gemm.h - internal declarations shared by cpu_gemm.c (driver: packing, blocking,
 * threading, dispatch, portable kernels) and the SIMD micro-kernels of cpu_avx2_gemm.c and
 * cpu_avx512_gemm.c. This header holds no vector code, so any file may include it; the
 * functions named cpu_avx2_* / cpu_avx512_* may be called only when ctx->simd says so.
 *
 * Two ways through a GEMM D = A * B^T (see cpu_gemm.c):
 *
 * "outer" (every M, every path): A is packed once, dequantized and scaled by a_scale, into
 *   panels of MR rows stored k-major (panel[k][MR]); per (K block of KC, NR rows of B) the B
 *   rows are dequantized and scaled by b_scale into a small buffer bbuf[NR][LDB] (row-major,
 *   fixed row stride LDB, so the kernel addresses every row from one pointer); the kernel
 *   computes an MR x NR tile of D^T: c[j*ldc + i] (+)= sum_k a[k*MR + i] * b[j*LDB + k], with
 *   A as the vector operand and B broadcast.
 *
 * "dot" (fp8, small M, AVX2/AVX-512): the e4m3 B rows are streamed once and decoded in
 *   registers; each output is a dot product along K of a dequantized A row (f32, scaled by
 *   a_scale) with a decoded B row times b_scale.
 */
#ifndef DSK4J_CPU_GEMM_H
#define DSK4J_CPU_GEMM_H

#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

/* One GEMM problem (a slice of a grouped one too); arguments validated by api_gemm.c. */
typedef struct {
    dsk4j_context* ctx;
    int simd;
    int bf16; /* a, b bf16 (no scales) */
    int f32;  /* gemm.f32: a f32, b f32 or (b_bf16) bf16, d f32, no scales */
    int b_bf16;
    void* d;
    int32_t d_dtype;
    const void* a;
    const float* a_scale;
    int64_t a_rs, a_cs;
    const void* b;
    const float* b_scale;
    const float* c;
    int64_t m, n, k;
    const float* e4m3_table; /* 256 entries (portable decode) */
} gemm_prob;

/* 64-byte aligned, at least 64 bytes; NULL when out of memory; free it with cpu_host_free */
static inline void* cpu_gemm_alloc64(size_t bytes) { return cpu_host_alloc(bytes); }

/* epilogue: d[i, j] = v (+ c[i, j]), f32 or bf16 (RNE) */
static inline void cpu_gemm_store_d(const gemm_prob* p, int64_t i, int64_t j, float v) {
    int64_t o = i * p->n + j;
    if (p->c) v += p->c[o];
    if (p->d_dtype == DSK4J_DTYPE_F32) ((float*)p->d)[o] = v;
    else ((uint16_t*)p->d)[o] = cpu_f32_to_bf16(v);
}

/* ---- AMX path (cpu_amx_gemm.c; only when ctx->amx) ----
 * The whole problem (fp8 or bf16; for bf16 only when cpu_amx_bf16_in_range holds for a).
 * Returns 0 when a buffer could not be allocated or (bf16) a value of b is out of that range:
 * d may then be partly written, and the caller computes all of it another way. */
int cpu_amx_gemm(const gemm_prob* p);
int cpu_amx_bf16_in_range(const uint16_t* x, int64_t n);
/* fp8 with 1 <= M <= 2 (decode): AVX512-BF16 dot products streaming the weights once; returns
 * 0 (nothing written) when not applicable or out of memory. */
int cpu_amx_gemm_dot(const gemm_prob* p);

/* ---- outer-product micro-kernels ----
 * kc >= 1 steps; a: [kc][MR] f32 (64-byte aligned); b: [NR][LDB] f32; c: [NR][ldc] f32 tile of
 * D^T (64-byte aligned rows when ldc % 16 == 0). first != 0: c = sum, else c += sum. */
typedef void (*cpu_gemm_kernel_fn)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                   int first);

/* Row buffers: LDB for the kernels with KC = 256 (the wide-M ones) resp. 128 (the M <= 16 one). */
#define CPU_GEMM_LDB256 (256 + 16)
#define CPU_GEMM_LDB128 (128 + 16)

/* AVX-512: MR 32 x NR 12 (KC 256) and MR 16 x NR 24 (KC 128). */
void cpu_avx512_gemm_kernel_32x12(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                  int first);
void cpu_avx512_gemm_kernel_16x24(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                  int first);
/* AVX2: MR 16 x NR 6 (KC 256). */
void cpu_avx2_gemm_kernel_16x6(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                               int first);

/* ---- row unpacking: y[kc] f32 = decode(x[kc]) (* a scale per 128 elements for e4m3) ----
 * e4m3: kc % 128 == 0; element t is scaled by bs[(t / 128) * bs_stride] (one f32 multiply of
 * the exact value: the same number as cpu_e4m3_to_f32(x) * s); a NaN byte gives NaN.
 * bf16: x is uint16_t, kc >= 0 any, exact. */
void cpu_avx512_gemm_unpack_e4m3(float* y, const uint8_t* x, const float* bs, int64_t bs_stride,
                                 int64_t kc);
void cpu_avx2_gemm_unpack_e4m3(float* y, const uint8_t* x, const float* bs, int64_t bs_stride,
                               int64_t kc);
void cpu_avx512_gemm_unpack_bf16(float* y, const uint16_t* x, int64_t kc);
void cpu_avx2_gemm_unpack_bf16(float* y, const uint16_t* x, int64_t kc);

/* ---- dot path (e4m3 B streamed, M <= 8) ----
 * Computes, for i < mi (1..8) and jj < nj rows of B (1 <= nj <= cpu_gemm_dot_nj(., mi)):
 *   s = sum_{t < nkb*128} a[i*lda + t] * e4m3(b[jj*ldb + t]) * bs[jj][t / 128]
 * where bs[jj][kb] = bscale[((j0 + jj) >> 7) * bs_ld + kb] (bscale already offset to the first
 * K block); out[i*ldo + jj] = s (accumulate == 0) or += s. Requires |finite b_scale| < 2^100
 * (the caller checks). Returns nonzero when a B byte is NaN (0x7f/0xff): the outputs are then
 * garbage and the caller recomputes them exactly. */
int cpu_avx512_gemm_dot(int mi, int nj, int64_t nkb, const float* a, int64_t lda, const uint8_t* b,
                        int64_t ldb, const float* bscale, int64_t bs_ld, int64_t j0, float* out,
                        int64_t ldo, int accumulate);
int cpu_avx2_gemm_dot(int mi, int nj, int64_t nkb, const float* a, int64_t lda, const uint8_t* b,
                      int64_t ldb, const float* bscale, int64_t bs_ld, int64_t j0, float* out,
                      int64_t ldo, int accumulate);

/* rows of B per dot tile for mi rows of A (avx512 != 0: 32 vector registers, else 16) */
static inline int cpu_gemm_dot_nj(int avx512, int mi) {
    if (avx512) return mi == 1 ? 8 : mi == 2 ? 4 : mi <= 4 ? 4 : 2;
    return mi == 1 ? 8 : mi == 2 ? 4 : mi <= 4 ? 2 : 1;
}
#define CPU_GEMM_DOT_MAX_M 8

/* ---- gemm.f32 decode path (cpu_avx512_gemm_f32.c, cpu_avx2_gemm_f32.c; M <= 8) ----
 * out[i*ldo + jj] = sum_{t<k} a[i*lda + t] * b[jj*ldb + t] for i < mi (1..8), jj < nj
 * (1..cpu_gemm_f32_nj(., mi)); b f32, or bf16 (b_bf16, widened exactly), ldb in elements. The nj
 * rows of B are streamed once (prefetched ahead). Each (i, jj) is summed in the same fixed order
 * whatever mi, nj and the caller's split: W lanes (16 / 8) over t = lane mod W in increasing t,
 * a zero-filled last step, one fixed lane reduction. */
void cpu_avx512_gemm_f32_dot(int mi, int nj, int64_t k, const float* a, int64_t lda, const void* b, int b_bf16,
                             int64_t ldb, float* out, int64_t ldo);
void cpu_avx2_gemm_f32_dot(int mi, int nj, int64_t k, const float* a, int64_t lda, const void* b, int b_bf16,
                           int64_t ldb, float* out, int64_t ldo);

/* rows of B per gemm.f32 dot tile for mi rows of A: accumulators + B rows + one A vector fit the
 * 32 (avx512) or 16 vector registers */
static inline int cpu_gemm_f32_nj(int avx512, int mi) {
    static const int w[8] = {8, 8, 6, 6, 4, 4, 3, 3}, n[8] = {6, 4, 3, 3, 2, 2, 1, 1};
    return avx512 ? w[mi - 1] : n[mi - 1];
}

#endif
