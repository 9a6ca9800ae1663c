/* api_moe.c - the moe.* entry points (DESIGN.md 4.5): validate every argument, then run the
 * backend. moe.dispatch and moe.bias_update are short sequential loops done here on the host for
 * the cpu backend; on a cuda context every moe op runs as kernels (cuda_moe.c). The contents of
 * i32 index arrays (indices, src_of, row_of) are checked here on the cpu only: on cuda they are
 * device memory, and the kernels ignore out-of-range entries (dsk4j.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static int range(const char* fn, const char* arg, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument '%s' must be in [%lld, %lld], got %lld", fn, arg,
                          (long long)lo, (long long)hi, (long long)v);
    return DSK4J_OK;
}

/* The router's arguments shared by moe.gate and moe.forward; the byte sizes of x, wg and bias. */
static int check_router(const char* fn, dsk4j_context* ctx, const void* x, int64_t x_bytes, int32_t x_dtype,
                        const void* wg, int64_t wg_bytes, int32_t wg_dtype, const float* bias, int64_t bias_bytes,
                        int64_t tokens, int64_t hidden, int64_t experts, int64_t top_k, int64_t n_group,
                        int64_t topk_group, int32_t score_func, float routed_scaling_factor, int64_t* xneed_out,
                        int64_t* wneed_out, int64_t* bneed_out) {
    TRY(check_float_dtype(fn, "x_dtype", x_dtype));
    TRY(check_float_dtype(fn, "wg_dtype", wg_dtype));
    if (score_func != DSK4J_MOE_SIGMOID && score_func != DSK4J_MOE_SOFTMAX)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                          "%s: argument 'score_func' must be DSK4J_MOE_SIGMOID (0) or DSK4J_MOE_SOFTMAX (1), got %d", fn,
                          score_func);
    if (!isfinite(routed_scaling_factor))
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'routed_scaling_factor' must be finite, got %g", fn,
                          (double)routed_scaling_factor);
    TRY(check_nonneg(fn, "tokens", tokens));
    TRY(range(fn, "hidden", hidden, 1, INT64_MAX));
    TRY(range(fn, "experts", experts, 1, MOE_MAX_EXPERTS));
    TRY(range(fn, "n_group", n_group, 1, experts));
    if (experts % n_group != 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'n_group' (%lld) does not divide 'experts' (%lld)",
                          fn, (long long)n_group, (long long)experts);
    TRY(range(fn, "topk_group", topk_group, 1, n_group));
    TRY(range(fn, "top_k", top_k, 1, topk_group * (experts / n_group)));
    if (n_group > 1 && bias && experts / n_group < 2)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                          "%s: argument 'n_group': groups of one expert have no top-2 score (bias given)", fn);
    const int64_t xes = (int64_t)dsk4j_dtype_size(x_dtype), wes = (int64_t)dsk4j_dtype_size(wg_dtype);
    int64_t xneed, wneed, bneed = bias ? experts * 4 : 0;
    TRY(check_bytes2(fn, "x bytes", tokens, hidden, xes, &xneed));
    TRY(check_bytes2(fn, "wg bytes", experts, hidden, wes, &wneed));
    TRY(check_buf(fn, ctx, "x", x, x_bytes, xneed, (size_t)xes));
    TRY(check_buf(fn, ctx, "wg", wg, wg_bytes, wneed, (size_t)wes));
    if (bias) TRY(check_buf(fn, ctx, "bias", bias, bias_bytes, bneed, 4));
    *xneed_out = xneed;
    *wneed_out = wneed;
    *bneed_out = bneed;
    return DSK4J_OK;
}

DSK4J_EXPORT int dsk4j_moe_gate(dsk4j_context* ctx, int32_t* indices, int64_t indices_bytes, float* weights,
                                int64_t weights_bytes, float* logits, int64_t logits_bytes, const void* x,
                                int64_t x_bytes, int32_t x_dtype, const void* wg, int64_t wg_bytes, int32_t wg_dtype,
                                const float* bias, int64_t bias_bytes, int64_t tokens, int64_t hidden,
                                int64_t experts, int64_t top_k, int64_t n_group, int64_t topk_group,
                                int32_t score_func, int32_t norm_topk_prob, float routed_scaling_factor) {
    static const char* fn = "dsk4j_moe_gate";
    TRY(check_ctx(fn, ctx));
    int64_t xneed, wneed, bneed;
    TRY(check_router(fn, ctx, x, x_bytes, x_dtype, wg, wg_bytes, wg_dtype, bias, bias_bytes, tokens, hidden, experts,
                     top_k, n_group, topk_group, score_func, routed_scaling_factor, &xneed, &wneed, &bneed));
    int64_t ineed, lneed;
    TRY(check_bytes2(fn, "indices bytes", tokens, top_k, 4, &ineed));
    TRY(check_bytes2(fn, "logits bytes", tokens, experts, 4, &lneed));
    if (!logits) lneed = 0;
    TRY(check_buf(fn, ctx, "indices", indices, indices_bytes, ineed, 4));
    TRY(check_buf(fn, ctx, "weights", weights, weights_bytes, ineed, 4));
    if (logits) TRY(check_buf(fn, ctx, "logits", logits, logits_bytes, lneed, 4));
    const void* outs[3] = {indices, weights, logits};
    const int64_t on[3] = {ineed, ineed, lneed};
    const char* onames[3] = {"indices", "weights", "logits"};
    const void* ins[3] = {x, wg, bias};
    const int64_t in[3] = {xneed, wneed, bneed};
    const char* inames[3] = {"x", "wg", "bias"};
    for (int i = 0; i < 3; i++) {
        for (int k = i + 1; k < 3; k++) TRY(check_disjoint(fn, onames[i], outs[i], on[i], onames[k], outs[k], on[k]));
        for (int k = 0; k < 3; k++) TRY(check_disjoint(fn, onames[i], outs[i], on[i], inames[k], ins[k], in[k]));
    }
    if (tokens == 0) return finish(DSK4J_OK);
    moe_gate_args a = {indices, weights, logits, x, wg, bias, x_dtype, wg_dtype, tokens, hidden, experts, top_k,
                       n_group, topk_group, score_func, norm_topk_prob != 0, routed_scaling_factor};
    if (ctx->kind == CTX_CUDA) return finish(cuda_moe_gate(ctx, &a));
    cpu_moe_gate(ctx, &a);
    return finish(DSK4J_OK);
}

DSK4J_EXPORT int dsk4j_moe_dispatch(dsk4j_context* ctx, int32_t* counts, int64_t counts_bytes, int32_t* offsets,
                                    int64_t offsets_bytes, int32_t* row_of, int64_t row_of_bytes, int32_t* src_of,
                                    int64_t src_of_bytes, const int32_t* indices, int64_t indices_bytes,
                                    int64_t tokens, int64_t top_k, int64_t experts, int32_t align, int64_t m_max) {
    static const char* fn = "dsk4j_moe_dispatch";
    TRY(check_ctx(fn, ctx));
    TRY(check_nonneg(fn, "tokens", tokens));
    TRY(range(fn, "top_k", top_k, 1, INT32_MAX));
    TRY(range(fn, "experts", experts, 1, INT32_MAX - 1));
    TRY(range(fn, "align", align, 1, 1 << 20));
    TRY(range(fn, "m_max", m_max, 0, INT32_MAX));
    int64_t pairs, pneed, cneed = experts * 4, oneed = (experts + 1) * 4;
    TRY(check_mul(fn, "tokens * top_k", tokens, top_k, &pairs));
    TRY(check_mul(fn, "indices bytes", pairs, 4, &pneed));
    if (pairs > INT32_MAX)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: tokens * top_k (%lld) exceeds 2^31 - 1", fn,
                          (long long)pairs);
    TRY(check_buf(fn, ctx, "counts", counts, counts_bytes, cneed, 4));
    TRY(check_buf(fn, ctx, "offsets", offsets, offsets_bytes, oneed, 4));
    TRY(check_buf(fn, ctx, "row_of", row_of, row_of_bytes, pneed, 4));
    /* src_of: any capacity (its rows are checked below), but aligned and non-NULL when not empty */
    TRY(check_buf(fn, ctx, "src_of", src_of, src_of_bytes, src_of_bytes > 0 ? src_of_bytes / 4 * 4 : 0, 4));
    TRY(check_buf(fn, ctx, "indices", indices, indices_bytes, pneed, 4));
    if (src_of_bytes > 0 && !src_of) return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'src_of' is NULL", fn);
    const int64_t rows_cap = src_of_bytes / 4;
    const void* outs[4] = {counts, offsets, row_of, src_of};
    const int64_t on[4] = {cneed, oneed, pneed, rows_cap * 4};
    const char* names[4] = {"counts", "offsets", "row_of", "src_of"};
    for (int i = 0; i < 4; i++) {
        for (int k = i + 1; k < 4; k++) TRY(check_disjoint(fn, names[i], outs[i], on[i], names[k], outs[k], on[k]));
        TRY(check_disjoint(fn, names[i], outs[i], on[i], "indices", indices, pneed));
    }
    if (ctx->kind == CTX_CUDA) {
        /* The device cannot report an overflow or a short src_of: the host checks the layout's bound. */
        int64_t bound;
        if (m_max > 0) TRY(check_mul(fn, "experts * m_max", experts, m_max, &bound));
        else bound = pairs + experts * (int64_t)(align - 1); /* < 2^31 + 2^31 * 2^20: no overflow */
        if (bound > INT32_MAX)
            return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                              "%s: on cuda the layout's bound (%lld rows: %s) must be <= 2^31 - 1", fn, (long long)bound,
                              m_max > 0 ? "experts * m_max" : "tokens * top_k + experts * (align - 1)");
        if (rows_cap < bound)
            return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                              "%s: argument 'src_of' is too small: %lld rows given; on cuda %lld are needed (%s)", fn,
                              (long long)rows_cap, (long long)bound,
                              m_max > 0 ? "experts * m_max" : "tokens * top_k + experts * (align - 1)");
        /* every one of the rows_cap rows is written (-1 or a pair): all of them must be device memory */
        TRY(check_buf(fn, ctx, "src_of", src_of, src_of_bytes, rows_cap * 4, 4));
        return finish(cuda_moe_dispatch(ctx, counts, offsets, row_of, src_of, rows_cap, indices, pairs, experts, align,
                                        m_max));
    }
    int64_t* cnt = (int64_t*)calloc((size_t)experts + 1, sizeof(int64_t));
    int64_t* cur = (int64_t*)malloc(((size_t)experts + 1) * sizeof(int64_t));
    if (!cnt || !cur) {
        free(cnt);
        free(cur);
        return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "%s: cannot allocate %lld experts' counters", fn, (long long)experts);
    }
    int rc = DSK4J_OK;
    for (int64_t p = 0; p < pairs; p++) {
        int32_t e = indices[p];
        if (e < 0 || e >= experts) {
            rc = dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'indices': entry %lld is %d, outside [0, experts = %lld)",
                            fn, (long long)p, e, (long long)experts);
            goto out;
        }
        cnt[e]++;
    }
    int64_t total = 0;
    for (int64_t e = 0; e < experts; e++) {
        if (m_max > 0) {
            if (cnt[e] > m_max) {
                rc = dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                                "%s: argument 'indices' routes %lld rows to expert %lld, more than 'm_max' = %lld", fn,
                                (long long)cnt[e], (long long)e, (long long)m_max);
                goto out;
            }
            cur[e] = e * m_max;
        } else {
            cur[e] = total;
            total += (cnt[e] + align - 1) / align * align;
        }
    }
    if (m_max > 0) total = experts * m_max;
    if (total > INT32_MAX) {
        rc = dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: the layout has %lld rows, more than 2^31 - 1", fn, (long long)total);
        goto out;
    }
    if (rows_cap < total) {
        rc = dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'src_of' is too small: %lld rows given, %lld needed",
                        fn, (long long)rows_cap, (long long)total);
        goto out;
    }
    for (int64_t e = 0; e < experts; e++) {
        counts[e] = (int32_t)cnt[e];
        offsets[e] = (int32_t)cur[e];
    }
    offsets[experts] = (int32_t)total;
    for (int64_t r = 0; r < rows_cap; r++) src_of[r] = -1;
    for (int64_t p = 0; p < pairs; p++) {
        int64_t r = cur[indices[p]]++;
        row_of[p] = (int32_t)r;
        src_of[r] = (int32_t)p;
    }
out:
    free(cnt);
    free(cur);
    return finish(rc);
}

DSK4J_EXPORT int dsk4j_moe_gather(dsk4j_context* ctx, void* xp, int64_t xp_bytes, const void* x, int64_t x_bytes,
                                  int32_t dtype, const int32_t* src_of, int64_t src_of_bytes, int64_t rows,
                                  int64_t tokens, int64_t top_k, int64_t hidden) {
    static const char* fn = "dsk4j_moe_gather";
    TRY(check_ctx(fn, ctx));
    int64_t es;
    TRY(check_any_dtype(fn, dtype, &es));
    TRY(check_nonneg(fn, "rows", rows));
    TRY(check_nonneg(fn, "tokens", tokens));
    TRY(range(fn, "top_k", top_k, 1, INT32_MAX));
    TRY(check_nonneg(fn, "hidden", hidden));
    int64_t pneed, xneed, sneed;
    TRY(check_bytes2(fn, "xp bytes", rows, hidden, es, &pneed));
    TRY(check_bytes2(fn, "x bytes", tokens, hidden, es, &xneed));
    TRY(check_mul(fn, "src_of bytes", rows, 4, &sneed));
    TRY(check_buf(fn, ctx, "xp", xp, xp_bytes, pneed, (size_t)es));
    TRY(check_buf(fn, ctx, "x", x, x_bytes, xneed, (size_t)es));
    TRY(check_buf(fn, ctx, "src_of", src_of, src_of_bytes, sneed, 4));
    TRY(check_disjoint(fn, "xp", xp, pneed, "x", x, xneed));
    TRY(check_disjoint(fn, "xp", xp, pneed, "src_of", src_of, sneed));
    if (ctx->kind == CTX_CUDA) return finish(cuda_moe_gather(ctx, xp, x, (size_t)es, src_of, rows, tokens, top_k, hidden));
    for (int64_t r = 0; r < rows; r++)
        if (src_of[r] >= 0 && (int64_t)src_of[r] / top_k >= tokens)
            return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                              "%s: argument 'src_of': entry %lld is %d, past tokens * top_k = %lld", fn, (long long)r,
                              src_of[r], (long long)(tokens * top_k));
    if (pneed == 0) return finish(DSK4J_OK);
    cpu_moe_gather(ctx, xp, x, (size_t)es, src_of, rows, top_k, hidden);
    return finish(DSK4J_OK);
}

DSK4J_EXPORT int dsk4j_moe_combine(dsk4j_context* ctx, void* y, int64_t y_bytes, int32_t y_dtype, const void* e,
                                   int64_t e_bytes, int32_t e_dtype, const float* weights, int64_t weights_bytes,
                                   const int32_t* row_of, int64_t row_of_bytes, const void* shared,
                                   int64_t shared_bytes, int32_t shared_dtype, int64_t tokens, int64_t top_k,
                                   int64_t rows, int64_t hidden) {
    static const char* fn = "dsk4j_moe_combine";
    TRY(check_ctx(fn, ctx));
    TRY(check_float_dtype(fn, "y_dtype", y_dtype));
    TRY(check_float_dtype(fn, "e_dtype", e_dtype));
    if (shared) TRY(check_float_dtype(fn, "shared_dtype", shared_dtype));
    TRY(check_nonneg(fn, "tokens", tokens));
    TRY(range(fn, "top_k", top_k, 1, INT32_MAX));
    TRY(check_nonneg(fn, "rows", rows));
    TRY(check_nonneg(fn, "hidden", hidden));
    const int64_t yes = (int64_t)dsk4j_dtype_size(y_dtype), ees = (int64_t)dsk4j_dtype_size(e_dtype),
                  ses = shared ? (int64_t)dsk4j_dtype_size(shared_dtype) : 0;
    int64_t yneed, eneed, wneed, sneed = 0;
    TRY(check_bytes2(fn, "y bytes", tokens, hidden, yes, &yneed));
    TRY(check_bytes2(fn, "e bytes", rows, hidden, ees, &eneed));
    TRY(check_bytes2(fn, "weights bytes", tokens, top_k, 4, &wneed));
    if (shared) TRY(check_bytes2(fn, "shared bytes", tokens, hidden, ses, &sneed));
    TRY(check_buf(fn, ctx, "y", y, y_bytes, yneed, (size_t)yes));
    TRY(check_buf(fn, ctx, "e", e, e_bytes, eneed, (size_t)ees));
    TRY(check_buf(fn, ctx, "weights", weights, weights_bytes, wneed, 4));
    TRY(check_buf(fn, ctx, "row_of", row_of, row_of_bytes, wneed, 4));
    if (shared) TRY(check_buf(fn, ctx, "shared", shared, shared_bytes, sneed, (size_t)ses));
    TRY(check_disjoint(fn, "y", y, yneed, "e", e, eneed));
    TRY(check_disjoint(fn, "y", y, yneed, "weights", weights, wneed));
    TRY(check_disjoint(fn, "y", y, yneed, "row_of", row_of, wneed));
    if (shared) TRY(check_disjoint(fn, "y", y, yneed, "shared", shared, sneed));
    if (ctx->kind == CTX_CUDA)
        return finish(cuda_moe_combine(ctx, y, y_dtype, e, e_dtype, weights, row_of, shared, shared_dtype, tokens, top_k,
                                       rows, hidden));
    for (int64_t p = 0; p < tokens * top_k; p++)
        if (row_of[p] < 0 || row_of[p] >= rows)
            return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'row_of': entry %lld is %d, outside [0, rows = %lld)",
                              fn, (long long)p, row_of[p], (long long)rows);
    if (yneed == 0) return finish(DSK4J_OK);
    cpu_moe_combine(ctx, y, y_dtype, e, e_dtype, weights, row_of, shared, shared_dtype, tokens, top_k, hidden);
    return finish(DSK4J_OK);
}

DSK4J_EXPORT int dsk4j_moe_bias_update(dsk4j_context* ctx, float* bias, int64_t bias_bytes, const int32_t* counts,
                                       int64_t counts_bytes, int64_t experts, float gamma) {
    static const char* fn = "dsk4j_moe_bias_update";
    TRY(check_ctx(fn, ctx));
    TRY(check_nonneg(fn, "experts", experts));
    if (!isfinite(gamma))
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'gamma' must be finite, got %g", fn, (double)gamma);
    int64_t need;
    TRY(check_mul(fn, "experts bytes", experts, 4, &need));
    TRY(check_buf(fn, ctx, "bias", bias, bias_bytes, need, 4));
    TRY(check_buf(fn, ctx, "counts", counts, counts_bytes, need, 4));
    TRY(check_disjoint(fn, "bias", bias, need, "counts", counts, need));
    if (ctx->kind == CTX_CUDA) return finish(cuda_moe_bias_update(ctx, bias, counts, experts, gamma));
    if (experts == 0) return finish(DSK4J_OK);
    double total = 0;
    for (int64_t e = 0; e < experts; e++) total += counts[e];
    const double mean = total / (double)experts;
    for (int64_t e = 0; e < experts; e++) {
        if (counts[e] < mean) bias[e] += gamma;
        else if (counts[e] > mean) bias[e] -= gamma;
    }
    return finish(DSK4J_OK);
}

/* A weight tensor [groups, n, k] of w_dtype and its block scales [groups, ceil(n/128), k/128] (fp8;
 * NULL for bf16 and f32 weights). */
static int check_weight(const char* fn, dsk4j_context* ctx, const char* arg, const char* sarg, const void* w,
                        int64_t w_bytes, const float* ws, int64_t ws_bytes, int32_t w_dtype, int64_t groups, int64_t n,
                        int64_t k, int64_t* need_out) {
    int64_t per, need, sneed = 0;
    TRY(check_mul(fn, arg, n, k, &per));
    TRY(check_mul(fn, arg, per, groups, &need));
    TRY(check_mul(fn, arg, need, (int64_t)dsk4j_dtype_size(w_dtype), &need));
    TRY(check_buf(fn, ctx, arg, w, w_bytes, need, dsk4j_dtype_size(w_dtype)));
    if (w_dtype == DSK4J_DTYPE_E4M3) {
        TRY(check_mul(fn, sarg, ceil_div(n, 128), k / 128, &sneed));
        TRY(check_mul(fn, sarg, sneed, groups * 4, &sneed));
        TRY(check_buf(fn, ctx, sarg, ws, ws_bytes, sneed, 4));
    } else if (ws) {
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument '%s' must be NULL for %s weights", fn, sarg,
                          dsk4j_dtype_name(w_dtype));
    }
    *need_out = need;
    return DSK4J_OK;
}

DSK4J_EXPORT int dsk4j_moe_forward(dsk4j_context* ctx, void* y, int64_t y_bytes, int32_t y_dtype, int32_t* counts,
                                   int64_t counts_bytes, const void* x, int64_t x_bytes, int32_t x_dtype,
                                   const void* wg, int64_t wg_bytes, int32_t wg_dtype, const float* bias,
                                   int64_t bias_bytes, int32_t w_dtype, const void* w13, int64_t w13_bytes,
                                   const float* w13_scale, int64_t w13_scale_bytes, const void* w2, int64_t w2_bytes,
                                   const float* w2_scale, int64_t w2_scale_bytes, const void* s13, int64_t s13_bytes,
                                   const float* s13_scale, int64_t s13_scale_bytes, const void* s2, int64_t s2_bytes,
                                   const float* s2_scale, int64_t s2_scale_bytes, int64_t tokens, int64_t hidden,
                                   int64_t inter, int64_t shared_inter, int64_t experts, int64_t top_k,
                                   int64_t n_group, int64_t topk_group, int32_t score_func, int32_t norm_topk_prob,
                                   float routed_scaling_factor) {
    static const char* fn = "dsk4j_moe_forward";
    TRY(check_ctx(fn, ctx));
    int64_t xneed, wneed, bneed;
    TRY(check_router(fn, ctx, x, x_bytes, x_dtype, wg, wg_bytes, wg_dtype, bias, bias_bytes, tokens, hidden, experts,
                     top_k, n_group, topk_group, score_func, routed_scaling_factor, &xneed, &wneed, &bneed));
    TRY(check_float_dtype(fn, "y_dtype", y_dtype));
    if (w_dtype != DSK4J_DTYPE_E4M3 && w_dtype != DSK4J_DTYPE_BF16 && w_dtype != DSK4J_DTYPE_F32)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'w_dtype' must be e4m3, bf16 or f32, got %s", fn,
                          dsk4j_dtype_name(w_dtype));
    TRY(range(fn, "inter", inter, 1, INT32_MAX));
    TRY(range(fn, "shared_inter", shared_inter, 0, INT32_MAX));
    if (w_dtype == DSK4J_DTYPE_E4M3 && (hidden % 128 || inter % 128 || shared_inter % 128))
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                          "%s: fp8 weights need hidden (%lld), inter (%lld) and shared_inter (%lld) multiples of 128", fn,
                          (long long)hidden, (long long)inter, (long long)shared_inter);
    int64_t pairs;
    TRY(check_mul(fn, "tokens * top_k", tokens, top_k, &pairs));
    if (pairs > INT32_MAX)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: tokens * top_k (%lld) exceeds 2^31 - 1", fn, (long long)pairs);
    int64_t yneed, n13, n2, ns13 = 0, ns2 = 0, cneed = counts ? experts * 4 : 0;
    TRY(check_bytes2(fn, "y bytes", tokens, hidden, (int64_t)dsk4j_dtype_size(y_dtype), &yneed));
    TRY(check_buf(fn, ctx, "y", y, y_bytes, yneed, dsk4j_dtype_size(y_dtype)));
    if (counts) TRY(check_buf(fn, ctx, "counts", counts, counts_bytes, cneed, 4));
    TRY(check_weight(fn, ctx, "w13", "w13_scale", w13, w13_bytes, w13_scale, w13_scale_bytes, w_dtype, experts,
                     2 * inter, hidden, &n13));
    TRY(check_weight(fn, ctx, "w2", "w2_scale", w2, w2_bytes, w2_scale, w2_scale_bytes, w_dtype, experts, hidden, inter,
                     &n2));
    if (shared_inter > 0) {
        TRY(check_weight(fn, ctx, "s13", "s13_scale", s13, s13_bytes, s13_scale, s13_scale_bytes, w_dtype, 1,
                         2 * shared_inter, hidden, &ns13));
        TRY(check_weight(fn, ctx, "s2", "s2_scale", s2, s2_bytes, s2_scale, s2_scale_bytes, w_dtype, 1, hidden,
                         shared_inter, &ns2));
    }
    const void* ins[7] = {x, wg, bias, w13, w2, s13, s2};
    const int64_t in[7] = {xneed, wneed, bneed, n13, n2, ns13, ns2};
    const char* inames[7] = {"x", "wg", "bias", "w13", "w2", "s13", "s2"};
    TRY(check_disjoint(fn, "y", y, yneed, "counts", counts, cneed));
    for (int k = 0; k < 7; k++) {
        TRY(check_disjoint(fn, "y", y, yneed, inames[k], ins[k], in[k]));
        TRY(check_disjoint(fn, "counts", counts, cneed, inames[k], ins[k], in[k]));
    }
    if (tokens == 0) {
        if (counts && ctx->kind == CTX_CUDA) return finish(cuda_memset(ctx, counts, 0, cneed));
        if (counts) memset(counts, 0, (size_t)cneed);
        return finish(DSK4J_OK);
    }
    moe_forward_args a = {{NULL, NULL, NULL, x, wg, bias, x_dtype, wg_dtype, tokens, hidden, experts, top_k, n_group,
                           topk_group, score_func, norm_topk_prob != 0, routed_scaling_factor},
                          y, y_dtype, counts, w_dtype, w13, w2, shared_inter > 0 ? s13 : NULL,
                          shared_inter > 0 ? s2 : NULL, w13_scale, w2_scale, s13_scale, s2_scale, inter, shared_inter};
    if (ctx->kind == CTX_CUDA) return finish(cuda_moe_forward(ctx, &a));
    return finish(cpu_moe_forward(ctx, &a));
}

DSK4J_EXPORT int dsk4j_moe_silu_quant(dsk4j_context* ctx, void* y, int64_t y_bytes, float* scale, int64_t scale_bytes,
                                      const float* h, int64_t h_bytes, int64_t rows, int64_t inter) {
    static const char* fn = "dsk4j_moe_silu_quant";
    TRY(check_ctx(fn, ctx));
    TRY(check_nonneg(fn, "rows", rows));
    TRY(range(fn, "inter", inter, 128, INT32_MAX));
    if (inter % 128 != 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'inter' (%lld) is not a multiple of 128", fn,
                          (long long)inter);
    int64_t yneed, sneed, hneed;
    TRY(check_bytes2(fn, "y bytes", rows, inter, 1, &yneed));
    TRY(check_bytes2(fn, "scale bytes", rows, inter / 128, 4, &sneed));
    TRY(check_bytes2(fn, "h bytes", rows, 2 * inter, 4, &hneed));
    TRY(check_buf(fn, ctx, "y", y, y_bytes, yneed, 1));
    TRY(check_buf(fn, ctx, "scale", scale, scale_bytes, sneed, 4));
    TRY(check_buf(fn, ctx, "h", h, h_bytes, hneed, 4));
    TRY(check_disjoint(fn, "y", y, yneed, "scale", scale, sneed));
    TRY(check_disjoint(fn, "y", y, yneed, "h", h, hneed));
    TRY(check_disjoint(fn, "scale", scale, sneed, "h", h, hneed));
    if (rows == 0) return finish(DSK4J_OK);
    if (ctx->kind == CTX_CUDA) return finish(cuda_moe_silu_quant(ctx, h, rows, inter, (uint8_t*)y, scale, NULL));
    cpu_moe_silu_quant(ctx, h, rows, inter, (uint8_t*)y, scale, NULL);
    return finish(DSK4J_OK);
}
