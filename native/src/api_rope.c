/* api_rope.c - the rope.* entry points (DESIGN.md 4.3): validate every argument, then run the
 * backend. rope.yarn_table is computed on the host for every backend (cpu_rope.c). */
#include <math.h>
#include <stdlib.h>

#include "check.h"

#define ROPE_MAX_DIM 1024
/* positions are i32: more table rows than that could never be used */
#define ROPE_MAX_ROWS ((int64_t)INT32_MAX + 1)

static int check_dim(const char* fn, int64_t dim) {
    if (dim < 2 || dim > ROPE_MAX_DIM || dim % 2 != 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'dim' must be even and in [2, %d], got %lld", fn,
                          ROPE_MAX_DIM, (long long)dim);
    return DSK4J_OK;
}

static int check_rows(const char* fn, int64_t max_seq_len) {
    TRY(check_nonneg(fn, "max_seq_len", max_seq_len));
    if (max_seq_len > ROPE_MAX_ROWS)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'max_seq_len' (%lld) exceeds 2^31 (positions are i32)",
                          fn, (long long)max_seq_len);
    return DSK4J_OK;
}

/* The byte size of one table [max_seq_len, dim/2] f32. */
static int table_bytes(const char* fn, int64_t max_seq_len, int64_t dim, int64_t* out) {
    int64_t elems;
    TRY(check_mul(fn, "max_seq_len * dim/2", max_seq_len, dim / 2, &elems));
    return check_mul(fn, "table bytes", elems, 4, out);
}

static int check_param(const char* fn, const char* arg, double v, double min, int strict) {
    if (!isfinite(v) || (strict ? !(v > min) : !(v >= min)))
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument '%s' must be finite and %s %g, got %g", fn, arg,
                          strict ? ">" : ">=", min, v);
    return DSK4J_OK;
}

DSK4J_EXPORT int dsk4j_rope_yarn_table(dsk4j_context* ctx, float* cos_table, int64_t cos_bytes, float* sin_table,
                                       int64_t sin_bytes, int64_t dim, double theta, double factor,
                                       int64_t original_seq_len, int64_t max_seq_len, double beta_fast,
                                       double beta_slow) {
    static const char* fn = "dsk4j_rope_yarn_table";
    TRY(check_ctx(fn, ctx));
    TRY(check_dim(fn, dim));
    TRY(check_param(fn, "theta", theta, 1.0, 1));
    TRY(check_param(fn, "factor", factor, 1.0, 0));
    TRY(check_param(fn, "beta_fast", beta_fast, 0.0, 1));
    TRY(check_param(fn, "beta_slow", beta_slow, 0.0, 1));
    if (original_seq_len < 1)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'original_seq_len' must be >= 1, got %lld", fn,
                          (long long)original_seq_len);
    TRY(check_rows(fn, max_seq_len));
    int64_t need;
    TRY(table_bytes(fn, max_seq_len, dim, &need));
    TRY(check_buf(fn, ctx, "cos_table", cos_table, cos_bytes, need, 4));
    TRY(check_buf(fn, ctx, "sin_table", sin_table, sin_bytes, need, 4));
    TRY(check_disjoint(fn, "cos_table", cos_table, need, "sin_table", sin_table, need));
    if (need == 0) return finish(DSK4J_OK);
    if (ctx->kind == CTX_CPU) {
        rope_yarn_table_host(ctx, cos_table, sin_table, dim, theta, factor, original_seq_len, max_seq_len, beta_fast,
                             beta_slow);
        return finish(DSK4J_OK);
    }
    /* cuda: the same host computation, then copied (cuda_memcpy waits for the copies) */
    float* host = (float*)malloc((size_t)need * 2);
    if (!host)
        return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "%s: cannot allocate %lld bytes of host memory for the table", fn,
                          (long long)need * 2);
    float* hsin = host + need / 4;
    rope_yarn_table_host(NULL, host, hsin, dim, theta, factor, original_seq_len, max_seq_len, beta_fast, beta_slow);
    int rc = cuda_memcpy(ctx, cos_table, host, need, DSK4J_COPY_HOST_TO_DEVICE);
    if (rc == DSK4J_OK) rc = cuda_memcpy(ctx, sin_table, hsin, need, DSK4J_COPY_HOST_TO_DEVICE);
    free(host);
    return finish(rc);
}

/* Every position in [0, max_seq_len); on cuda they are device memory and copied here first. */
static int check_positions(const char* fn, dsk4j_context* ctx, const int32_t* positions, int64_t tokens,
                           int64_t max_seq_len) {
    const int32_t* p = positions;
    int32_t* copy = NULL;
    if (ctx->kind == CTX_CUDA) {
        copy = (int32_t*)malloc((size_t)tokens * 4);
        if (!copy)
            return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "%s: cannot allocate %lld bytes to check 'positions'", fn,
                              (long long)tokens * 4);
        int rc = cuda_memcpy(ctx, copy, positions, tokens * 4, DSK4J_COPY_DEVICE_TO_HOST);
        if (rc != DSK4J_OK) {
            free(copy);
            return rc;
        }
        p = copy;
    }
    int rc = DSK4J_OK;
    for (int64_t t = 0; t < tokens; t++)
        if (p[t] < 0 || (int64_t)p[t] >= max_seq_len) {
            rc = dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                            "%s: argument 'positions': entry %lld is %d, outside [0, max_seq_len = %lld)", fn,
                            (long long)t, p[t], (long long)max_seq_len);
            break;
        }
    free(copy);
    return rc;
}

DSK4J_EXPORT int dsk4j_rope_apply(dsk4j_context* ctx, void* y, int64_t y_bytes, const void* x, int64_t x_bytes,
                                  int32_t dtype, const int32_t* positions, int64_t positions_bytes,
                                  const float* cos_table, int64_t cos_bytes, const float* sin_table,
                                  int64_t sin_bytes, int64_t tokens, int64_t heads, int64_t dim, int64_t max_seq_len,
                                  int32_t layout) {
    static const char* fn = "dsk4j_rope_apply";
    TRY(check_ctx(fn, ctx));
    if (dtype != DSK4J_DTYPE_F32 && dtype != DSK4J_DTYPE_BF16)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'dtype' must be f32 or bf16, got %s", fn,
                          dsk4j_dtype_name(dtype));
    if (layout != DSK4J_ROPE_INTERLEAVED && layout != DSK4J_ROPE_NEOX)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                          "%s: argument 'layout' must be DSK4J_ROPE_INTERLEAVED (0) or DSK4J_ROPE_NEOX (1), got %d", fn,
                          layout);
    TRY(check_nonneg(fn, "tokens", tokens));
    TRY(check_nonneg(fn, "heads", heads));
    TRY(check_dim(fn, dim));
    TRY(check_rows(fn, max_seq_len));
    const int64_t es = (int64_t)dsk4j_dtype_size(dtype);
    int64_t rows, numel, xneed, pneed, tneed;
    TRY(check_mul(fn, "tokens * heads", tokens, heads, &rows));
    TRY(check_mul(fn, "tokens * heads * dim", rows, dim, &numel));
    TRY(check_mul(fn, "x bytes", numel, es, &xneed));
    TRY(check_mul(fn, "positions bytes", tokens, 4, &pneed));
    TRY(table_bytes(fn, max_seq_len, dim, &tneed));
    TRY(check_buf(fn, ctx, "y", y, y_bytes, xneed, (size_t)es));
    TRY(check_buf(fn, ctx, "x", x, x_bytes, xneed, (size_t)es));
    TRY(check_buf(fn, ctx, "positions", positions, positions_bytes, pneed, 4));
    TRY(check_buf(fn, ctx, "cos_table", cos_table, cos_bytes, tneed, 4));
    TRY(check_buf(fn, ctx, "sin_table", sin_table, sin_bytes, tneed, 4));
    if ((const void*)y != x) TRY(check_disjoint(fn, "y", y, xneed, "x", x, xneed));
    TRY(check_disjoint(fn, "y", y, xneed, "positions", positions, pneed));
    TRY(check_disjoint(fn, "y", y, xneed, "cos_table", cos_table, tneed));
    TRY(check_disjoint(fn, "y", y, xneed, "sin_table", sin_table, tneed));
    if (tokens == 0) return finish(DSK4J_OK);
    TRY(check_positions(fn, ctx, positions, tokens, max_seq_len));
    if (numel == 0) return finish(DSK4J_OK);
    rope_args a = {y, x, dtype, positions, cos_table, sin_table, tokens, heads, dim, max_seq_len, layout};
    if (ctx->kind == CTX_CUDA) return finish(cuda_rope_apply(ctx, &a));
    cpu_rope_apply(ctx, &a);
    return finish(DSK4J_OK);
}
