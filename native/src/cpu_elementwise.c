/* cpu_elementwise.c - the elementwise ops (dsk4j.h elementwise.*) on the cpu backend, in plain C (no
 * SIMD intrinsics: these steps are small and bound by memory). Rows (rmsnorm, embed, copy_columns)
 * or element chunks (add, silu_mul) are split over cpu_parallel_for (gather_rows runs cpu_moe_gather); every element is
 * computed by one fixed expression, so the bits do not depend on the thread count. Arguments were
 * validated by api_elementwise.c (ids / idx in range too). This file is compiled without FMA flags,
 * so no product-sum below is contracted into an fma. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* Elements per chunk at least (64 KiB of f32): far more than a thread handoff costs. */
#define EW_GRAIN_ELEMS ((int64_t)1 << 14)

static inline float load(const void* x, int32_t dt, int64_t i) {
    return dt == DSK4J_DTYPE_F32 ? ((const float*)x)[i] : cpu_bf16_to_f32(((const uint16_t*)x)[i]);
}

static inline void store(void* y, int32_t dt, int64_t i, float v) {
    if (dt == DSK4J_DTYPE_F32) ((float*)y)[i] = v;
    else ((uint16_t*)y)[i] = cpu_f32_to_bf16(v);
}

/* Rows per chunk so that a chunk holds about EW_GRAIN_ELEMS elements. */
static int64_t row_grain(int64_t row_elems) {
    return row_elems >= EW_GRAIN_ELEMS ? 1 : EW_GRAIN_ELEMS / (row_elems > 0 ? row_elems : 1);
}

/* ---------------- rmsnorm ---------------- */

/* y[r, i] = (float)(((double)x_i * inv) * (double)w_i), inv = 1 / sqrt(ss/d + eps), ss = sum_i x_i^2 in
 * order (double). Reads the whole row before writing it, so y == x (in place, ldx == d) is safe. */
static void rmsnorm_rows(void* arg, int64_t r0, int64_t r1) {
    const rmsnorm_args* a = (const rmsnorm_args*)arg;
    const int64_t d = a->d;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t xo = r * a->ldx, yo = r * d;
        double ss = 0.0;
        for (int64_t i = 0; i < d; i++) {
            const double v = (double)load(a->x, a->dtype, xo + i);
            ss += v * v;
        }
        const double inv = 1.0 / sqrt(ss / (double)d + a->eps);
        for (int64_t i = 0; i < d; i++) {
            const double v = (double)load(a->x, a->dtype, xo + i);
            store(a->y, a->dtype, yo + i, (float)((v * inv) * (double)a->w[i]));
        }
    }
}

void cpu_rmsnorm(dsk4j_context* ctx, const rmsnorm_args* a) {
    cpu_parallel_for(ctx, a->rows, row_grain(a->d), rmsnorm_rows, (void*)a);
}

/* ---------------- add, silu_mul ---------------- */

typedef struct {
    void* y;
    const void* p;
    const void* q;
    int32_t dtype;
} binary_job;

/* y = a + b in f32 (element i read before written: in place is safe). */
static void add_range(void* arg, int64_t i0, int64_t i1) {
    const binary_job* j = (const binary_job*)arg;
    for (int64_t i = i0; i < i1; i++) {
        const float s = load(j->p, j->dtype, i) + load(j->q, j->dtype, i);
        store(j->y, j->dtype, i, s);
    }
}

void cpu_add(dsk4j_context* ctx, void* y, const void* a, const void* b, int32_t dtype, int64_t n) {
    binary_job j = {y, a, b, dtype};
    cpu_parallel_for(ctx, n, EW_GRAIN_ELEMS, add_range, &j);
}

/* y = (float)((z / (1 + exp(-z))) * u) in double, z = g. */
static void silu_range(void* arg, int64_t i0, int64_t i1) {
    const binary_job* j = (const binary_job*)arg;
    for (int64_t i = i0; i < i1; i++) {
        const double z = (double)load(j->p, j->dtype, i), u = (double)load(j->q, j->dtype, i);
        const double s = z / (1.0 + exp(-z));
        store(j->y, j->dtype, i, (float)(s * u));
    }
}

void cpu_silu_mul(dsk4j_context* ctx, void* y, const void* g, const void* u, int32_t dtype, int64_t n) {
    binary_job j = {y, g, u, dtype};
    cpu_parallel_for(ctx, n, EW_GRAIN_ELEMS, silu_range, &j);
}

/* ---------------- embed ---------------- */

typedef struct {
    void* y;
    int32_t y_dtype;
    const void* table;
    int32_t table_dtype;
    const int32_t* ids;
    int64_t d;
} embed_job;

static void embed_rows(void* arg, int64_t t0, int64_t t1) {
    const embed_job* j = (const embed_job*)arg;
    const int64_t d = j->d;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t src = (int64_t)j->ids[t] * d, dst = t * d;
        if (j->y_dtype == j->table_dtype) {
            const size_t es = j->y_dtype == DSK4J_DTYPE_F32 ? 4 : 2;
            memcpy((char*)j->y + (size_t)dst * es, (const char*)j->table + (size_t)src * es, (size_t)d * es);
        } else {
            for (int64_t i = 0; i < d; i++) store(j->y, j->y_dtype, dst + i, load(j->table, j->table_dtype, src + i));
        }
    }
}

void cpu_embed(dsk4j_context* ctx, void* y, int32_t y_dtype, const void* table, int32_t table_dtype, const int32_t* ids,
               int64_t tokens, int64_t d) {
    embed_job j = {y, y_dtype, table, table_dtype, ids, d};
    cpu_parallel_for(ctx, tokens, row_grain(d), embed_rows, &j);
}

/* ---------------- copy_columns (gather_rows is cpu_moe_gather with top_k = 1) ---------------- */

typedef struct {
    char* dst;
    const char* src;
    size_t elem;
    int64_t dst_cols, dst_col0, src_cols, src_col0, width;
} copy_job;

static void copy_rows(void* arg, int64_t r0, int64_t r1) {
    const copy_job* j = (const copy_job*)arg;
    for (int64_t r = r0; r < r1; r++)
        memcpy(j->dst + (size_t)(r * j->dst_cols + j->dst_col0) * j->elem,
               j->src + (size_t)(r * j->src_cols + j->src_col0) * j->elem, (size_t)j->width * j->elem);
}

void cpu_copy_columns(dsk4j_context* ctx, void* dst, const void* src, size_t elem, int64_t rows, int64_t dst_cols,
                      int64_t dst_col0, int64_t src_cols, int64_t src_col0, int64_t width) {
    copy_job j = {(char*)dst, (const char*)src, elem, dst_cols, dst_col0, src_cols, src_col0, width};
    cpu_parallel_for(ctx, rows, row_grain(width), copy_rows, &j);
}
