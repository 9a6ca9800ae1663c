/* cpu_rope.c - rope.yarn_table and rope.apply (DESIGN.md 4.3) on the cpu backend.
 *
 * rope.yarn_table is computed here in double for every backend (the cuda backend copies the
 * host result to the device), so every backend rotates with the same f32 table bits.
 *
 * rope.apply splits tokens over cpu_parallel_for; per token it runs the AVX2 loop of
 * cpu_avx2_rope.c (SIMD_AVX2 and SIMD_AVX512: the op is bound by memory, 256-bit vectors already
 * saturate it) or the portable one below. Both compute, for each pair (x0, x1) with
 * c = cos[p, j], s = sin[p, j], exactly
 *   y0 = fmaf(x0, c, -(x1 * s)),  y1 = fmaf(x1, c, x0 * s)
 * (f32; bf16 inputs widened exactly, outputs rounded to nearest even), so all paths give the
 * same bits. Arguments were validated by api_rope.c (positions in range too).
 */
#include <math.h>

#include "cpu_avx2.h"
#include "cpu_avx512.h"
#include "internal.h"

/* Tokens per chunk, at least: a chunk of this many DeepSeek q_pe rows (128 heads x 64) is
 * 32 KiB of f32, far more than a thread handoff costs. */
#define ROPE_GRAIN_ELEMS ((int64_t)1 << 13)
#define TABLE_GRAIN_ROWS 64

/* ---------------- rope.yarn_table ---------------- */

void rope_yarn_freqs(double* f, int64_t dim, double theta, double factor, int64_t original_seq_len,
                     int64_t max_seq_len, double beta_fast, double beta_slow) {
    const int64_t half = dim / 2;
    for (int64_t i = 0; i < half; i++) f[i] = pow(theta, -(double)(2 * i) / (double)dim);
    if (max_seq_len <= original_seq_len) return;
    const double two_pi = 6.283185307179586476925286766559;
    double low = floor((double)dim * log((double)original_seq_len / (two_pi * beta_fast)) / (2.0 * log(theta)));
    double high = ceil((double)dim * log((double)original_seq_len / (two_pi * beta_slow)) / (2.0 * log(theta)));
    if (low < 0) low = 0;
    if (high > (double)(dim - 1)) high = (double)(dim - 1);
    if (low == high) high += 0.001;
    for (int64_t i = 0; i < half; i++) {
        double ramp = ((double)i - low) / (high - low);
        if (ramp < 0) ramp = 0;
        if (ramp > 1) ramp = 1;
        f[i] = f[i] / factor * ramp + f[i] * (1.0 - ramp);
    }
}

typedef struct {
    float* cos_t;
    float* sin_t;
    const double* f;
    int64_t half;
} table_job;

static void table_rows(void* arg, int64_t t0, int64_t t1) {
    const table_job* j = (const table_job*)arg;
    for (int64_t t = t0; t < t1; t++)
        for (int64_t i = 0; i < j->half; i++) {
            double a = (double)t * j->f[i];
            j->cos_t[t * j->half + i] = (float)cos(a);
            j->sin_t[t * j->half + i] = (float)sin(a);
        }
}

void rope_yarn_table_host(dsk4j_context* ctx, float* cos_t, float* sin_t, int64_t dim, double theta,
                          double factor, int64_t original_seq_len, int64_t max_seq_len, double beta_fast,
                          double beta_slow) {
    double f[512]; /* dim <= 1024 (api_rope.c) */
    rope_yarn_freqs(f, dim, theta, factor, original_seq_len, max_seq_len, beta_fast, beta_slow);
    table_job j = {cos_t, sin_t, f, dim / 2};
    if (ctx && ctx->kind == CTX_CPU) cpu_parallel_for(ctx, max_seq_len, TABLE_GRAIN_ROWS, table_rows, &j);
    else table_rows(&j, 0, max_seq_len);
}

/* ---------------- rope.apply ---------------- */

static inline float load(const void* x, int32_t dt, int64_t i) {
    return dt == DSK4J_DTYPE_F32 ? ((const float*)x)[i] : cpu_bf16_to_f32(((const uint16_t*)x)[i]);
}

static inline void store(void* y, int32_t dt, int64_t i, float v) {
    if (dt == DSK4J_DTYPE_F32) ((float*)y)[i] = v;
    else ((uint16_t*)y)[i] = cpu_f32_to_bf16(v);
}

/* One token, every head, portable: pairs (i0, i1) of the layout. */
static void port_token(void* y, const void* x, int32_t dt, const float* c, const float* s, int64_t heads,
                       int64_t dim, int32_t layout, int64_t base) {
    const int64_t half = dim / 2;
    for (int64_t h = 0; h < heads; h++) {
        int64_t row = base + h * dim;
        for (int64_t j = 0; j < half; j++) {
            int64_t i0 = layout == DSK4J_ROPE_NEOX ? row + j : row + 2 * j;
            int64_t i1 = layout == DSK4J_ROPE_NEOX ? row + j + half : i0 + 1;
            float x0 = load(x, dt, i0), x1 = load(x, dt, i1);
            float y0 = fmaf(x0, c[j], -(x1 * s[j]));
            float y1 = fmaf(x1, c[j], x0 * s[j]);
            store(y, dt, i0, y0);
            store(y, dt, i1, y1);
        }
    }
}

typedef struct {
    const rope_args* a;
    int simd;
} apply_job;

static void apply_tokens(void* arg, int64_t t0, int64_t t1) {
    const apply_job* j = (const apply_job*)arg;
    const rope_args* a = j->a;
    const int64_t half = a->dim / 2, per_token = a->heads * a->dim;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t p = a->positions[t];
        const float* c = a->cos_table + p * half;
        const float* s = a->sin_table + p * half;
        if (j->simd == SIMD_AVX512)
            cpu_avx512_rope_token(a->y, a->x, a->dtype, c, s, a->heads, a->dim, a->layout, t * per_token);
        else if (j->simd != SIMD_PORTABLE)
            cpu_avx2_rope_token(a->y, a->x, a->dtype, c, s, a->heads, a->dim, a->layout, t * per_token);
        else
            port_token(a->y, a->x, a->dtype, c, s, a->heads, a->dim, a->layout, t * per_token);
    }
}

void cpu_rope_apply(dsk4j_context* ctx, const rope_args* a) {
    apply_job j = {a, ctx->simd};
    int64_t per_token = a->heads * a->dim;
    int64_t grain = per_token >= ROPE_GRAIN_ELEMS ? 1 : ROPE_GRAIN_ELEMS / (per_token > 0 ? per_token : 1);
    cpu_parallel_for(ctx, a->tokens, grain, apply_tokens, &j);
}
