/* api_fp8.c - the fp8.* entry points: validate every argument, then run the backend
 * (DESIGN.md 3 and 4.1). */
#include "check.h"

static int is_float_dtype(int32_t d) {
    return d == DSK4J_DTYPE_F32 || d == DSK4J_DTYPE_BF16 || d == DSK4J_DTYPE_F16;
}
static int is_fp8_dtype(int32_t d) { return d == DSK4J_DTYPE_E4M3 || d == DSK4J_DTYPE_E5M2; }

/* fp8.cast: y[n] = convert(x[n]), {f32,bf16,f16} <-> {e4m3,e5m2}. */
DSK4J_EXPORT int dsk4j_fp8_cast(dsk4j_context* ctx, void* y, int64_t y_bytes, int32_t y_dtype,
                                const void* x, int64_t x_bytes, int32_t x_dtype, int64_t n) {
    static const char* fn = "dsk4j_fp8_cast";
    TRY(check_ctx(fn, ctx));
    TRY(check_nonneg(fn, "n", n));
    if (!((is_float_dtype(x_dtype) && is_fp8_dtype(y_dtype)) || (is_fp8_dtype(x_dtype) && is_float_dtype(y_dtype))))
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                          "%s: unsupported conversion %s -> %s (arguments 'x_dtype', 'y_dtype'): one side must "
                          "be e4m3 or e5m2, the other f32, bf16 or f16",
                          fn, dsk4j_dtype_name(x_dtype), dsk4j_dtype_name(y_dtype));
    size_t xs = dsk4j_dtype_size(x_dtype), ys = dsk4j_dtype_size(y_dtype);
    int64_t xneed, yneed;
    TRY(check_mul(fn, "n * sizeof(x)", n, (int64_t)xs, &xneed));
    TRY(check_mul(fn, "n * sizeof(y)", n, (int64_t)ys, &yneed));
    TRY(check_buf(fn, ctx, "y", y, y_bytes, yneed, ys));
    TRY(check_buf(fn, ctx, "x", x, x_bytes, xneed, xs));
    TRY(check_disjoint(fn, "y", y, yneed, "x", x, xneed));
    if (n == 0) return finish(DSK4J_OK);
    if (ctx->kind == CTX_CUDA) return finish(cuda_fp8_cast(ctx, y, y_dtype, x, x_dtype, n));
    cpu_fp8_cast(ctx, y, y_dtype, x, x_dtype, n);
    return finish(DSK4J_OK);
}

/* fp8.act_quant: x[rows,k] f32|bf16 -> y[rows,k] e4m3, scale[rows,k/128] f32 (or [k/128, ld]). */
DSK4J_EXPORT int dsk4j_fp8_act_quant(dsk4j_context* ctx, void* y, int64_t y_bytes, float* scale,
                                     int64_t scale_bytes, const void* x, int64_t x_bytes, int32_t x_dtype,
                                     int64_t rows, int64_t k, int32_t group_size, int32_t flags,
                                     int64_t scale_ld) {
    static const char* fn = "dsk4j_fp8_act_quant";
    TRY(check_ctx(fn, ctx));
    TRY(check_nonneg(fn, "rows", rows));
    TRY(check_nonneg(fn, "k", k));
    TRY(check_nonneg(fn, "scale_ld", scale_ld));
    if (x_dtype != DSK4J_DTYPE_F32 && x_dtype != DSK4J_DTYPE_BF16)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'x_dtype' must be f32 or bf16, got %s", fn,
                          dsk4j_dtype_name(x_dtype));
    if (group_size != 128)
        return dsk4j_fail(DSK4J_ERR_UNSUPPORTED, "%s: argument 'group_size' must be 128, got %d", fn, group_size);
    if (flags & ~(DSK4J_SCALE_UE8M0 | DSK4J_SCALE_COL_MAJOR))
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'flags' has unknown bits 0x%x", fn, flags);
    if (k % group_size != 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'k' (%lld) is not a multiple of group_size %d",
                          fn, (long long)k, group_size);
    int64_t groups = k / group_size, numel, scale_elems = 0, rs, cs;
    TRY(check_mul(fn, "rows * k", rows, k, &numel));
    if (flags & DSK4J_SCALE_COL_MAJOR) {
        int64_t ld = scale_ld ? scale_ld : rows;
        if (ld < rows)
            return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                              "%s: argument 'scale_ld' (%lld) is smaller than rows (%lld) for a column-major scale",
                              fn, (long long)ld, (long long)rows);
        if (groups > 0 && rows > 0) {
            TRY(check_mul(fn, "scale size", groups - 1, ld, &scale_elems));
            TRY(check_add(fn, "scale size", &scale_elems, rows));
        }
        rs = 1, cs = ld;
    } else {
        int64_t ld = scale_ld ? scale_ld : groups;
        if (ld < groups)
            return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                              "%s: argument 'scale_ld' (%lld) is smaller than k/group_size (%lld)", fn,
                              (long long)ld, (long long)groups);
        if (groups > 0 && rows > 0) {
            TRY(check_mul(fn, "scale size", rows - 1, ld, &scale_elems));
            TRY(check_add(fn, "scale size", &scale_elems, groups));
        }
        rs = ld, cs = 1;
    }
    int64_t xneed, sneed;
    TRY(check_mul(fn, "x bytes", numel, (int64_t)dsk4j_dtype_size(x_dtype), &xneed));
    TRY(check_mul(fn, "scale bytes", scale_elems, 4, &sneed));
    TRY(check_buf(fn, ctx, "y", y, y_bytes, numel, 1));
    TRY(check_buf(fn, ctx, "scale", scale, scale_bytes, sneed, 4));
    TRY(check_buf(fn, ctx, "x", x, x_bytes, xneed, dsk4j_dtype_size(x_dtype)));
    TRY(check_disjoint(fn, "y", y, numel, "x", x, xneed));
    TRY(check_disjoint(fn, "scale", scale, sneed, "x", x, xneed));
    TRY(check_disjoint(fn, "y", y, numel, "scale", scale, sneed));
    if (numel == 0) return finish(DSK4J_OK);
    if (ctx->kind == CTX_CUDA)
        return finish(cuda_fp8_act_quant(ctx, y, scale, rs, cs, x, x_dtype, rows, k, group_size, flags));
    cpu_fp8_act_quant(ctx, y, scale, rs, cs, x, x_dtype, rows, k, group_size, flags);
    return finish(DSK4J_OK);
}

/* Shared checks of the 128x128 block ops: sizes of y/w and of scale_inv. */
static int block_sizes(const char* fn, int64_t n, int64_t k, int32_t block, int64_t* numel, int64_t* sneed) {
    TRY(check_nonneg(fn, "n", n));
    TRY(check_nonneg(fn, "k", k));
    if (block != 128)
        return dsk4j_fail(DSK4J_ERR_UNSUPPORTED, "%s: argument 'block' must be 128, got %d", fn, block);
    int64_t sb;
    TRY(check_mul(fn, "n * k", n, k, numel));
    TRY(check_mul(fn, "scale_inv size", ceil_div(n, block), ceil_div(k, block), &sb));
    return check_mul(fn, "scale_inv bytes", sb, 4, sneed);
}

/* fp8.weight_quant: w[n,k] f32|bf16 -> y[n,k] e4m3, scale_inv[ceil(n/128), ceil(k/128)] f32. */
DSK4J_EXPORT int dsk4j_fp8_weight_quant(dsk4j_context* ctx, void* y, int64_t y_bytes, float* scale_inv,
                                        int64_t scale_inv_bytes, const void* w, int64_t w_bytes,
                                        int32_t w_dtype, int64_t n, int64_t k, int32_t block, int32_t flags) {
    static const char* fn = "dsk4j_fp8_weight_quant";
    TRY(check_ctx(fn, ctx));
    if (w_dtype != DSK4J_DTYPE_F32 && w_dtype != DSK4J_DTYPE_BF16)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'w_dtype' must be f32 or bf16, got %s", fn,
                          dsk4j_dtype_name(w_dtype));
    if (flags & ~DSK4J_SCALE_UE8M0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'flags' has unknown bits 0x%x", fn, flags);
    int64_t numel, sneed, wneed;
    TRY(block_sizes(fn, n, k, block, &numel, &sneed));
    TRY(check_mul(fn, "w bytes", numel, (int64_t)dsk4j_dtype_size(w_dtype), &wneed));
    TRY(check_buf(fn, ctx, "y", y, y_bytes, numel, 1));
    TRY(check_buf(fn, ctx, "scale_inv", scale_inv, scale_inv_bytes, sneed, 4));
    TRY(check_buf(fn, ctx, "w", w, w_bytes, wneed, dsk4j_dtype_size(w_dtype)));
    TRY(check_disjoint(fn, "y", y, numel, "w", w, wneed));
    TRY(check_disjoint(fn, "scale_inv", scale_inv, sneed, "w", w, wneed));
    TRY(check_disjoint(fn, "y", y, numel, "scale_inv", scale_inv, sneed));
    if (numel == 0) return finish(DSK4J_OK);
    if (ctx->kind == CTX_CUDA)
        return finish(cuda_fp8_weight_quant(ctx, y, scale_inv, w, w_dtype, n, k, block, flags));
    cpu_fp8_weight_quant(ctx, y, scale_inv, w, w_dtype, n, k, block, flags);
    return finish(DSK4J_OK);
}

/* fp8.weight_dequant: w[n,k] e4m3 * scale_inv[ceil(n/128), ceil(k/128)] -> y[n,k] f32|bf16. */
DSK4J_EXPORT int dsk4j_fp8_weight_dequant(dsk4j_context* ctx, void* y, int64_t y_bytes, int32_t y_dtype,
                                          const void* w, int64_t w_bytes, const float* scale_inv,
                                          int64_t scale_inv_bytes, int64_t n, int64_t k, int32_t block) {
    static const char* fn = "dsk4j_fp8_weight_dequant";
    TRY(check_ctx(fn, ctx));
    if (y_dtype != DSK4J_DTYPE_F32 && y_dtype != DSK4J_DTYPE_BF16)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'y_dtype' must be f32 or bf16, got %s", fn,
                          dsk4j_dtype_name(y_dtype));
    int64_t numel, sneed, yneed;
    TRY(block_sizes(fn, n, k, block, &numel, &sneed));
    TRY(check_mul(fn, "y bytes", numel, (int64_t)dsk4j_dtype_size(y_dtype), &yneed));
    TRY(check_buf(fn, ctx, "y", y, y_bytes, yneed, dsk4j_dtype_size(y_dtype)));
    TRY(check_buf(fn, ctx, "w", w, w_bytes, numel, 1));
    TRY(check_buf(fn, ctx, "scale_inv", scale_inv, scale_inv_bytes, sneed, 4));
    TRY(check_disjoint(fn, "y", y, yneed, "w", w, numel));
    TRY(check_disjoint(fn, "y", y, yneed, "scale_inv", scale_inv, sneed));
    if (numel == 0) return finish(DSK4J_OK);
    if (ctx->kind == CTX_CUDA)
        return finish(cuda_fp8_weight_dequant(ctx, y, y_dtype, w, scale_inv, n, k, block));
    cpu_fp8_weight_dequant(ctx, y, y_dtype, w, scale_inv, n, k, block);
    return finish(DSK4J_OK);
}
