/* api_elementwise.c - the elementwise.* entry points (dsk4j.h "elementwise": rmsnorm, add, silu_mul,
 * embed, copy_columns, gather_rows): validate every argument, then run the backend (cpu_elementwise.c
 * or cuda_elementwise.c). On cpu the index arrays (ids, idx) are checked here, before anything is
 * written; on cuda they are device data the host does not read (the kernels write zero rows). */
#include <math.h>

#include "check.h"

/* Every entry of index array v [n] in [0, bound); else an error naming arg and the position. */
static int check_indices(const char* fn, const char* arg, const char* bound_name, const int32_t* v, int64_t n,
                         int64_t bound) {
    for (int64_t i = 0; i < n; i++)
        if (v[i] < 0 || (int64_t)v[i] >= bound)
            return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument '%s': entry %lld is %d, outside [0, %s = %lld)", fn,
                              arg, (long long)i, v[i], bound_name, (long long)bound);
    return DSK4J_OK;
}

DSK4J_EXPORT int dsk4j_rmsnorm(dsk4j_context* ctx, void* y, int64_t y_bytes, const void* x, int64_t x_bytes,
                               const float* w, int64_t w_bytes, int32_t dtype, int64_t rows, int64_t d, int64_t ldx,
                               double eps) {
    static const char* fn = "dsk4j_rmsnorm";
    TRY(check_ctx(fn, ctx));
    TRY(check_float_dtype(fn, "dtype", dtype));
    TRY(check_nonneg(fn, "rows", rows));
    if (d < 1) return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'd' must be >= 1, got %lld", fn, (long long)d);
    if (ldx < d)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'ldx' (%lld) must be >= d (%lld)", fn, (long long)ldx,
                          (long long)d);
    if (!isfinite(eps) || eps < 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'eps' must be finite and >= 0, got %g", fn, eps);
    const int64_t es = (int64_t)dsk4j_dtype_size(dtype);
    int64_t yneed, xneed = 0, wneed;
    TRY(check_bytes2(fn, "y bytes (rows * d)", rows, d, es, &yneed));
    if (rows > 0) { /* (rows - 1) * ldx + d elements */
        int64_t xe;
        TRY(check_mul(fn, "x elements ((rows - 1) * ldx)", rows - 1, ldx, &xe));
        TRY(check_add(fn, "x elements ((rows - 1) * ldx + d)", &xe, d));
        TRY(check_mul(fn, "x bytes", xe, es, &xneed));
    }
    TRY(check_mul(fn, "w bytes", d, 4, &wneed));
    TRY(check_buf(fn, ctx, "y", y, y_bytes, yneed, (size_t)es));
    TRY(check_buf(fn, ctx, "x", x, x_bytes, xneed, (size_t)es));
    TRY(check_buf(fn, ctx, "w", w, w_bytes, wneed, 4));
    if (!((const void*)y == x && ldx == d)) TRY(check_disjoint(fn, "y", y, yneed, "x", x, xneed));
    TRY(check_disjoint(fn, "y", y, yneed, "w", w, wneed));
    if (rows == 0) return finish(DSK4J_OK);
    rmsnorm_args a = {y, x, w, dtype, rows, d, ldx, eps};
    if (ctx->kind == CTX_CUDA) return finish(cuda_rmsnorm(ctx, &a));
    cpu_rmsnorm(ctx, &a);
    return finish(DSK4J_OK);
}

/* The shared checks of add and silu_mul: y = f(p, q) element-wise, y may be p or q exactly. */
static int check_binary(const char* fn, dsk4j_context* ctx, const void* y, int64_t y_bytes, const char* pn,
                        const void* p, int64_t p_bytes, const char* qn, const void* q, int64_t q_bytes, int32_t dtype,
                        int64_t n, int64_t* need) {
    TRY(check_ctx(fn, ctx));
    TRY(check_float_dtype(fn, "dtype", dtype));
    TRY(check_nonneg(fn, "n", n));
    const int64_t es = (int64_t)dsk4j_dtype_size(dtype);
    TRY(check_mul(fn, "n bytes", n, es, need));
    TRY(check_buf(fn, ctx, "y", y, y_bytes, *need, (size_t)es));
    TRY(check_buf(fn, ctx, pn, p, p_bytes, *need, (size_t)es));
    TRY(check_buf(fn, ctx, qn, q, q_bytes, *need, (size_t)es));
    if (y != p) TRY(check_disjoint(fn, "y", y, *need, pn, p, *need));
    if (y != q) TRY(check_disjoint(fn, "y", y, *need, qn, q, *need));
    return DSK4J_OK;
}

DSK4J_EXPORT int dsk4j_add(dsk4j_context* ctx, void* y, int64_t y_bytes, const void* a, int64_t a_bytes, const void* b,
                           int64_t b_bytes, int32_t dtype, int64_t n) {
    static const char* fn = "dsk4j_add";
    int64_t need;
    TRY(check_binary(fn, ctx, y, y_bytes, "a", a, a_bytes, "b", b, b_bytes, dtype, n, &need));
    if (n == 0) return finish(DSK4J_OK);
    if (ctx->kind == CTX_CUDA) return finish(cuda_add(ctx, y, a, b, dtype, n));
    cpu_add(ctx, y, a, b, dtype, n);
    return finish(DSK4J_OK);
}

DSK4J_EXPORT int dsk4j_silu_mul(dsk4j_context* ctx, void* y, int64_t y_bytes, const void* g, int64_t g_bytes,
                                const void* u, int64_t u_bytes, int32_t dtype, int64_t n) {
    static const char* fn = "dsk4j_silu_mul";
    int64_t need;
    TRY(check_binary(fn, ctx, y, y_bytes, "g", g, g_bytes, "u", u, u_bytes, dtype, n, &need));
    if (n == 0) return finish(DSK4J_OK);
    if (ctx->kind == CTX_CUDA) return finish(cuda_silu_mul(ctx, y, g, u, dtype, n));
    cpu_silu_mul(ctx, y, g, u, dtype, n);
    return finish(DSK4J_OK);
}

DSK4J_EXPORT int dsk4j_embed(dsk4j_context* ctx, void* y, int64_t y_bytes, int32_t y_dtype, const void* table,
                             int64_t table_bytes, int32_t table_dtype, const int32_t* ids, int64_t ids_bytes,
                             int64_t tokens, int64_t vocab, int64_t d) {
    static const char* fn = "dsk4j_embed";
    TRY(check_ctx(fn, ctx));
    TRY(check_float_dtype(fn, "y_dtype", y_dtype));
    TRY(check_float_dtype(fn, "table_dtype", table_dtype));
    TRY(check_nonneg(fn, "tokens", tokens));
    TRY(check_nonneg(fn, "vocab", vocab));
    TRY(check_nonneg(fn, "d", d));
    const int64_t yes = (int64_t)dsk4j_dtype_size(y_dtype), tes = (int64_t)dsk4j_dtype_size(table_dtype);
    int64_t yneed, tneed, ineed;
    TRY(check_bytes2(fn, "y bytes (tokens * d)", tokens, d, yes, &yneed));
    TRY(check_bytes2(fn, "table bytes (vocab * d)", vocab, d, tes, &tneed));
    TRY(check_mul(fn, "ids bytes", tokens, 4, &ineed));
    TRY(check_buf(fn, ctx, "y", y, y_bytes, yneed, (size_t)yes));
    TRY(check_buf(fn, ctx, "table", table, table_bytes, tneed, (size_t)tes));
    TRY(check_buf(fn, ctx, "ids", ids, ids_bytes, ineed, 4));
    TRY(check_disjoint(fn, "y", y, yneed, "table", table, tneed));
    TRY(check_disjoint(fn, "y", y, yneed, "ids", ids, ineed));
    if (tokens == 0) return finish(DSK4J_OK);
    if (ctx->kind == CTX_CUDA) {
        if (d == 0) return finish(DSK4J_OK);
        return finish(cuda_embed(ctx, y, y_dtype, table, table_dtype, ids, tokens, vocab, d));
    }
    TRY(check_indices(fn, "ids", "vocab", ids, tokens, vocab));
    if (d == 0) return finish(DSK4J_OK);
    cpu_embed(ctx, y, y_dtype, table, table_dtype, ids, tokens, d);
    return finish(DSK4J_OK);
}

/* col0 + width <= cols (overflow-safe); names the arguments of one side. */
static int check_window(const char* fn, const char* col0_name, int64_t col0, int64_t width, const char* cols_name,
                        int64_t cols) {
    if (col0 > cols || width > cols - col0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument '%s' (%lld) + width (%lld) exceeds '%s' (%lld)", fn,
                          col0_name, (long long)col0, (long long)width, cols_name, (long long)cols);
    return DSK4J_OK;
}

DSK4J_EXPORT int dsk4j_copy_columns(dsk4j_context* ctx, void* dst, int64_t dst_bytes, const void* src,
                                    int64_t src_bytes, int32_t dtype, int64_t rows, int64_t dst_cols,
                                    int64_t dst_col0, int64_t src_cols, int64_t src_col0, int64_t width) {
    static const char* fn = "dsk4j_copy_columns";
    TRY(check_ctx(fn, ctx));
    int64_t es;
    TRY(check_any_dtype(fn, dtype, &es));
    TRY(check_nonneg(fn, "rows", rows));
    TRY(check_nonneg(fn, "dst_cols", dst_cols));
    TRY(check_nonneg(fn, "dst_col0", dst_col0));
    TRY(check_nonneg(fn, "src_cols", src_cols));
    TRY(check_nonneg(fn, "src_col0", src_col0));
    TRY(check_nonneg(fn, "width", width));
    TRY(check_window(fn, "dst_col0", dst_col0, width, "dst_cols", dst_cols));
    TRY(check_window(fn, "src_col0", src_col0, width, "src_cols", src_cols));
    int64_t dneed, sneed;
    TRY(check_bytes2(fn, "dst bytes (rows * dst_cols)", rows, dst_cols, es, &dneed));
    TRY(check_bytes2(fn, "src bytes (rows * src_cols)", rows, src_cols, es, &sneed));
    TRY(check_buf(fn, ctx, "dst", dst, dst_bytes, dneed, (size_t)es));
    TRY(check_buf(fn, ctx, "src", src, src_bytes, sneed, (size_t)es));
    TRY(check_disjoint(fn, "dst", dst, dneed, "src", src, sneed));
    if (rows == 0 || width == 0) return finish(DSK4J_OK);
    if (ctx->kind == CTX_CUDA)
        return finish(cuda_copy_columns(ctx, dst, src, (size_t)es, rows, dst_cols, dst_col0, src_cols, src_col0, width));
    cpu_copy_columns(ctx, dst, src, (size_t)es, rows, dst_cols, dst_col0, src_cols, src_col0, width);
    return finish(DSK4J_OK);
}

DSK4J_EXPORT int dsk4j_gather_rows(dsk4j_context* ctx, void* dst, int64_t dst_bytes, const void* src,
                                   int64_t src_bytes, int32_t dtype, const int32_t* idx, int64_t idx_bytes,
                                   int64_t rows, int64_t src_rows, int64_t cols) {
    static const char* fn = "dsk4j_gather_rows";
    TRY(check_ctx(fn, ctx));
    int64_t es;
    TRY(check_any_dtype(fn, dtype, &es));
    TRY(check_nonneg(fn, "rows", rows));
    TRY(check_nonneg(fn, "src_rows", src_rows));
    TRY(check_nonneg(fn, "cols", cols));
    int64_t dneed, sneed, ineed;
    TRY(check_bytes2(fn, "dst bytes (rows * cols)", rows, cols, es, &dneed));
    TRY(check_bytes2(fn, "src bytes (src_rows * cols)", src_rows, cols, es, &sneed));
    TRY(check_mul(fn, "idx bytes", rows, 4, &ineed));
    TRY(check_buf(fn, ctx, "dst", dst, dst_bytes, dneed, (size_t)es));
    TRY(check_buf(fn, ctx, "src", src, src_bytes, sneed, (size_t)es));
    TRY(check_buf(fn, ctx, "idx", idx, idx_bytes, ineed, 4));
    TRY(check_disjoint(fn, "dst", dst, dneed, "src", src, sneed));
    TRY(check_disjoint(fn, "dst", dst, dneed, "idx", idx, ineed));
    if (rows == 0) return finish(DSK4J_OK);
    if (ctx->kind == CTX_CUDA) {
        if (cols == 0) return finish(DSK4J_OK);
        return finish(cuda_moe_gather(ctx, dst, src, (size_t)es, idx, rows, src_rows, 1, cols)); /* moe.gather, top_k 1 */
    }
    TRY(check_indices(fn, "idx", "src_rows", idx, rows, src_rows));
    if (cols == 0) return finish(DSK4J_OK);
    cpu_moe_gather(ctx, dst, src, (size_t)es, idx, rows, 1, cols); /* moe.gather, top_k 1 */
    return finish(DSK4J_OK);
}
