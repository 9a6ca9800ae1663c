/* api_mla.c - the mla.* entry points (DESIGN.md 4.4; dsk4j.h): validate every argument (each
 * buffer against its size, every index array's contents on the host: on cuda those arrays are
 * copied to the host first), then run the backend (cpu_mla*.c or cuda_mla.c). */
#include <math.h>
#include <stdlib.h>

#include "check.h"

#define LAT DSK4J_MLA_LATENT
#define ROPE DSK4J_MLA_ROPE
#define PAGE DSK4J_MLA_PAGE_TOKENS
#define MAX_HEAD_DIM 256

int64_t mla_token_bytes(int32_t format) {
    switch (format) {
        case DSK4J_MLA_CACHE_F32: return (LAT + ROPE) * 4;
        case DSK4J_MLA_CACHE_BF16: return (LAT + ROPE) * 2;
        case DSK4J_MLA_CACHE_FP8: return LAT + 4 * 4 + ROPE * 2;
        default: return 0;
    }
}

static int check_format(const char* fn, int32_t format) {
    if (mla_token_bytes(format) == 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                          "%s: argument 'format' must be DSK4J_MLA_CACHE_F32 (0), _BF16 (1) or _FP8 (2), got %d", fn,
                          format);
    return DSK4J_OK;
}

static int check_dtype(const char* fn, const char* arg, int32_t dtype) {
    if (dtype != DSK4J_DTYPE_F32 && dtype != DSK4J_DTYPE_BF16)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument '%s' must be f32 or bf16, got %s", fn, arg,
                          dsk4j_dtype_name(dtype));
    return DSK4J_OK;
}

static int check_flags(const char* fn, int32_t flags) {
    if (flags & ~DSK4J_MLA_CAUSAL)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'flags' has unknown bits 0x%x (only DSK4J_MLA_CAUSAL)",
                          fn, (unsigned)(flags & ~DSK4J_MLA_CAUSAL));
    return DSK4J_OK;
}

static int check_scale(const char* fn, float s) {
    if (!isfinite(s) || !(s > 0.0f))
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'softmax_scale' must be finite and > 0, got %g", fn,
                          (double)s);
    return DSK4J_OK;
}

/* The pool's size in bytes: num_pages * 64 * token_bytes. */
static int cache_need(const char* fn, int64_t num_pages, int32_t format, int64_t* out) {
    int64_t toks;
    TRY(check_mul(fn, "num_pages * 64", num_pages, PAGE, &toks));
    return check_mul(fn, "cache bytes", toks, mla_token_bytes(format), out);
}

/* A host view of an i32 array: the array itself on cpu, a malloc'ed copy on cuda (*copy set). */
static int host_i32(const char* fn, dsk4j_context* ctx, const char* arg, const int32_t* p, int64_t n,
                    const int32_t** out, int32_t** copy) {
    *copy = NULL;
    *out = p;
    if (ctx->kind != CTX_CUDA || n == 0) return DSK4J_OK;
    int32_t* c = (int32_t*)malloc((size_t)n * 4);
    if (!c)
        return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "%s: cannot allocate %lld bytes to check '%s'", fn,
                          (long long)n * 4, arg);
    int rc = cuda_memcpy(ctx, c, p, n * 4, DSK4J_COPY_DEVICE_TO_HOST);
    if (rc != DSK4J_OK) {
        free(c);
        return rc;
    }
    *copy = c;
    *out = c;
    return DSK4J_OK;
}

DSK4J_EXPORT int dsk4j_mla_cache_token_bytes(int64_t* out_bytes, int32_t format) {
    static const char* fn = "dsk4j_mla_cache_token_bytes";
    if (!out_bytes) return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'out_bytes' is NULL", fn);
    TRY(check_format(fn, format));
    *out_bytes = mla_token_bytes(format);
    return finish(DSK4J_OK);
}

/* ---------------- mla.cache_append ---------------- */

static int check_append_indices(const char* fn, const int32_t* seq, const int32_t* pos, const int32_t* bt,
                                int64_t batch, int64_t max_pages, int64_t num_pages, int64_t tokens) {
    const int64_t cap = max_pages * PAGE;
    for (int64_t t = 0; t < tokens; t++) {
        if (seq[t] < 0 || seq[t] >= batch)
            return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                              "%s: argument 'seq_ids': entry %lld is %d, outside [0, batch = %lld)", fn, (long long)t,
                              seq[t], (long long)batch);
        if (pos[t] < 0 || pos[t] >= cap)
            return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                              "%s: argument 'positions': entry %lld is %d, outside the sequence's pages [0, "
                              "max_pages * 64 = %lld)",
                              fn, (long long)t, pos[t], (long long)cap);
        int32_t pg = bt[(int64_t)seq[t] * max_pages + pos[t] / PAGE];
        if (pg < 0 || pg >= num_pages)
            return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                              "%s: argument 'block_table': entry [%d, %d] (used by token %lld at position %d) is %d, "
                              "outside [0, num_pages = %lld)",
                              fn, seq[t], pos[t] / PAGE, (long long)t, pos[t], pg, (long long)num_pages);
    }
    return DSK4J_OK;
}

DSK4J_EXPORT int dsk4j_mla_cache_append(dsk4j_context* ctx, void* cache, int64_t cache_bytes, int32_t format,
                                        const void* kv_latent, int64_t kv_latent_bytes, const void* k_pe,
                                        int64_t k_pe_bytes, int32_t dtype, const int32_t* seq_ids,
                                        int64_t seq_ids_bytes, const int32_t* positions, int64_t positions_bytes,
                                        const int32_t* block_table, int64_t block_table_bytes, int64_t batch,
                                        int64_t max_pages, int64_t num_pages, int64_t tokens) {
    static const char* fn = "dsk4j_mla_cache_append";
    TRY(check_ctx(fn, ctx));
    TRY(check_format(fn, format));
    TRY(check_dtype(fn, "dtype", dtype));
    TRY(check_nonneg(fn, "batch", batch));
    TRY(check_nonneg(fn, "max_pages", max_pages));
    TRY(check_nonneg(fn, "num_pages", num_pages));
    TRY(check_nonneg(fn, "tokens", tokens));
    const int64_t es = (int64_t)dsk4j_dtype_size(dtype);
    int64_t cneed, lneed, pneed, ineed, bneed, cap;
    TRY(cache_need(fn, num_pages, format, &cneed));
    TRY(check_mul(fn, "max_pages * 64", max_pages, PAGE, &cap));
    TRY(check_mul(fn, "kv_latent bytes", tokens, LAT * es, &lneed));
    TRY(check_mul(fn, "k_pe bytes", tokens, ROPE * es, &pneed));
    TRY(check_mul(fn, "seq_ids bytes", tokens, 4, &ineed));
    TRY(check_mul(fn, "block_table entries", batch, max_pages, &bneed));
    TRY(check_mul(fn, "block_table bytes", bneed, 4, &bneed));
    TRY(check_buf(fn, ctx, "cache", cache, cache_bytes, tokens ? cneed : 0, 4));
    TRY(check_buf(fn, ctx, "kv_latent", kv_latent, kv_latent_bytes, lneed, (size_t)es));
    TRY(check_buf(fn, ctx, "k_pe", k_pe, k_pe_bytes, pneed, (size_t)es));
    TRY(check_buf(fn, ctx, "seq_ids", seq_ids, seq_ids_bytes, ineed, 4));
    TRY(check_buf(fn, ctx, "positions", positions, positions_bytes, ineed, 4));
    TRY(check_buf(fn, ctx, "block_table", block_table, block_table_bytes, tokens ? bneed : 0, 4));
    if (tokens == 0) return finish(DSK4J_OK);
    TRY(check_disjoint(fn, "cache", cache, cneed, "kv_latent", kv_latent, lneed));
    TRY(check_disjoint(fn, "cache", cache, cneed, "k_pe", k_pe, pneed));
    TRY(check_disjoint(fn, "cache", cache, cneed, "seq_ids", seq_ids, ineed));
    TRY(check_disjoint(fn, "cache", cache, cneed, "positions", positions, ineed));
    TRY(check_disjoint(fn, "cache", cache, cneed, "block_table", block_table, bneed));
    if (batch == 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'batch' is 0 ('block_table' has no rows) but there are %lld tokens", fn,
                          (long long)tokens);
    const int32_t *hs, *hp, *hb;
    int32_t *cs, *cp, *cb;
    TRY(host_i32(fn, ctx, "seq_ids", seq_ids, tokens, &hs, &cs));
    int rc = host_i32(fn, ctx, "positions", positions, tokens, &hp, &cp);
    if (rc == DSK4J_OK) {
        rc = host_i32(fn, ctx, "block_table", block_table, bneed / 4, &hb, &cb);
        if (rc == DSK4J_OK) {
            rc = check_append_indices(fn, hs, hp, hb, batch, max_pages, num_pages, tokens);
            free(cb);
        }
        free(cp);
    }
    free(cs);
    if (rc != DSK4J_OK) return rc;
    mla_append_args a = {cache,     format,    kv_latent, k_pe, dtype,    seq_ids,
                         positions, block_table, batch,   max_pages, num_pages, tokens};
    if (ctx->kind == CTX_CUDA) return finish(cuda_mla_cache_append(ctx, &a));
    cpu_mla_cache_append(ctx, &a);
    return finish(DSK4J_OK);
}

/* ---------------- mla.decode ---------------- */

/* seq_lens in range, every page the visible positions use in [0, num_pages); *max_len set. */
static int check_decode_indices(const char* fn, const int32_t* lens, const int32_t* bt, int64_t batch, int64_t sq,
                                int64_t max_pages, int64_t num_pages, int causal, int64_t* max_len) {
    const int64_t cap = max_pages * PAGE;
    *max_len = 0;
    for (int64_t b = 0; b < batch; b++) {
        int64_t L = lens[b];
        if (L < 0 || L > cap)
            return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                              "%s: argument 'seq_lens': entry %lld is %lld, outside [0, max_pages * 64 = %lld]", fn,
                              (long long)b, (long long)L, (long long)cap);
        if (causal && L != 0 && L < sq)
            return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                              "%s: argument 'seq_lens': entry %lld is %lld, less than sq = %lld (causal: the sq "
                              "queries are the last sq tokens of the sequence)",
                              fn, (long long)b, (long long)L, (long long)sq);
        if (L > *max_len) *max_len = L;
        for (int64_t g = 0; g * PAGE < L; g++) {
            int32_t pg = bt[b * max_pages + g];
            if (pg < 0 || pg >= num_pages)
                return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                                  "%s: argument 'block_table': entry [%lld, %lld] is %d, outside [0, num_pages = %lld)",
                                  fn, (long long)b, (long long)g, pg, (long long)num_pages);
        }
    }
    return DSK4J_OK;
}

DSK4J_EXPORT int dsk4j_mla_decode(dsk4j_context* ctx, void* o_latent, int64_t o_latent_bytes, float* lse,
                                  int64_t lse_bytes, const void* q_latent, int64_t q_latent_bytes, const void* q_pe,
                                  int64_t q_pe_bytes, int32_t dtype, const void* cache, int64_t cache_bytes,
                                  int32_t format, const int32_t* block_table, int64_t block_table_bytes,
                                  const int32_t* seq_lens, int64_t seq_lens_bytes, int64_t batch, int64_t sq,
                                  int64_t heads, int64_t max_pages, int64_t num_pages, float softmax_scale,
                                  int32_t flags) {
    static const char* fn = "dsk4j_mla_decode";
    TRY(check_ctx(fn, ctx));
    TRY(check_dtype(fn, "dtype", dtype));
    TRY(check_format(fn, format));
    TRY(check_flags(fn, flags));
    TRY(check_scale(fn, softmax_scale));
    TRY(check_nonneg(fn, "batch", batch));
    TRY(check_nonneg(fn, "sq", sq));
    TRY(check_nonneg(fn, "heads", heads));
    TRY(check_nonneg(fn, "max_pages", max_pages));
    TRY(check_nonneg(fn, "num_pages", num_pages));
    const int64_t es = (int64_t)dsk4j_dtype_size(dtype);
    int64_t rows, oneed, lneed, qneed, pneed, cneed, bneed, sneed, cap;
    TRY(check_mul(fn, "batch * sq", batch, sq, &rows));
    TRY(check_mul(fn, "batch * sq * heads", rows, heads, &rows));
    TRY(check_mul(fn, "o_latent bytes", rows, LAT * es, &oneed));
    TRY(check_mul(fn, "lse bytes", rows, 4, &lneed));
    TRY(check_mul(fn, "q_pe bytes", rows, ROPE * es, &pneed));
    qneed = oneed;
    TRY(cache_need(fn, num_pages, format, &cneed));
    TRY(check_mul(fn, "max_pages * 64", max_pages, PAGE, &cap));
    TRY(check_mul(fn, "block_table entries", batch, max_pages, &bneed));
    TRY(check_mul(fn, "block_table bytes", bneed, 4, &bneed));
    TRY(check_mul(fn, "seq_lens bytes", batch, 4, &sneed));
    if (!lse) lneed = 0;
    TRY(check_buf(fn, ctx, "o_latent", o_latent, o_latent_bytes, oneed, (size_t)es));
    TRY(check_buf(fn, ctx, "lse", lse, lse_bytes, lneed, 4));
    TRY(check_buf(fn, ctx, "q_latent", q_latent, q_latent_bytes, qneed, (size_t)es));
    TRY(check_buf(fn, ctx, "q_pe", q_pe, q_pe_bytes, pneed, (size_t)es));
    TRY(check_buf(fn, ctx, "block_table", block_table, block_table_bytes, rows ? bneed : 0, 4));
    TRY(check_buf(fn, ctx, "seq_lens", seq_lens, seq_lens_bytes, rows ? sneed : 0, 4));
    if (rows == 0) return finish(DSK4J_OK);
    /* the cache is checked after seq_lens: an empty pool is fine when every length is 0 */
    const void* outs[2] = {o_latent, lse};
    const int64_t outn[2] = {oneed, lneed};
    const char* outname[2] = {"o_latent", "lse"};
    const void* ins[5] = {q_latent, q_pe, cache, block_table, seq_lens};
    const int64_t inn[5] = {qneed, pneed, cneed, bneed, sneed};
    const char* inname[5] = {"q_latent", "q_pe", "cache", "block_table", "seq_lens"};
    TRY(check_disjoint(fn, "o_latent", o_latent, oneed, "lse", lse, lneed));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 5; j++) TRY(check_disjoint(fn, outname[i], outs[i], outn[i], inname[j], ins[j], inn[j]));
    const int32_t *hl, *hb;
    int32_t *cl, *cb;
    int64_t max_len = 0;
    TRY(host_i32(fn, ctx, "seq_lens", seq_lens, batch, &hl, &cl));
    int rc = host_i32(fn, ctx, "block_table", block_table, bneed / 4, &hb, &cb);
    if (rc == DSK4J_OK) {
        rc = check_decode_indices(fn, hl, hb, batch, sq, max_pages, num_pages, flags & DSK4J_MLA_CAUSAL, &max_len);
        free(cb);
    }
    free(cl);
    if (rc != DSK4J_OK) return rc;
    TRY(check_buf(fn, ctx, "cache", cache, cache_bytes, max_len ? cneed : 0, 4));
    mla_decode_args a = {o_latent, lse,       q_latent,  q_pe,    dtype,         cache,
                         format,   block_table, seq_lens, batch,  sq,            heads,
                         max_pages, num_pages, max_len,   softmax_scale, flags & DSK4J_MLA_CAUSAL};
    if (ctx->kind == CTX_CUDA) return finish(cuda_mla_decode(ctx, &a));
    return finish(cpu_mla_decode(ctx, &a));
}

/* ---------------- mla.prefill ---------------- */

DSK4J_EXPORT int dsk4j_mla_prefill(dsk4j_context* ctx, void* o, int64_t o_bytes, float* lse, int64_t lse_bytes,
                                   const void* q, int64_t q_bytes, const void* k, int64_t k_bytes, const void* v,
                                   int64_t v_bytes, int32_t dtype, const int32_t* cu_seqlens,
                                   int64_t cu_seqlens_bytes, int64_t nseq, int64_t tokens, int64_t heads,
                                   int64_t qk_dim, int64_t v_dim, float softmax_scale, int32_t flags) {
    static const char* fn = "dsk4j_mla_prefill";
    TRY(check_ctx(fn, ctx));
    TRY(check_dtype(fn, "dtype", dtype));
    TRY(check_flags(fn, flags));
    TRY(check_scale(fn, softmax_scale));
    TRY(check_nonneg(fn, "nseq", nseq));
    TRY(check_nonneg(fn, "tokens", tokens));
    TRY(check_nonneg(fn, "heads", heads));
    if (qk_dim < 1 || qk_dim > MAX_HEAD_DIM)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'qk_dim' must be in [1, %d], got %lld", fn,
                          MAX_HEAD_DIM, (long long)qk_dim);
    if (v_dim < 1 || v_dim > MAX_HEAD_DIM)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'v_dim' must be in [1, %d], got %lld", fn,
                          MAX_HEAD_DIM, (long long)v_dim);
    const int64_t es = (int64_t)dsk4j_dtype_size(dtype);
    int64_t rows, oneed, lneed, qneed, vneed, cneed;
    TRY(check_mul(fn, "tokens * heads", tokens, heads, &rows));
    TRY(check_mul(fn, "o bytes", rows, v_dim * es, &oneed));
    TRY(check_mul(fn, "lse bytes", rows, 4, &lneed));
    TRY(check_mul(fn, "q bytes", rows, qk_dim * es, &qneed));
    vneed = oneed;
    int64_t n1 = nseq;
    TRY(check_add(fn, "nseq + 1", &n1, 1));
    TRY(check_mul(fn, "cu_seqlens bytes", n1, 4, &cneed));
    if (!lse) lneed = 0;
    TRY(check_buf(fn, ctx, "o", o, o_bytes, oneed, (size_t)es));
    TRY(check_buf(fn, ctx, "lse", lse, lse_bytes, lneed, 4));
    TRY(check_buf(fn, ctx, "q", q, q_bytes, qneed, (size_t)es));
    TRY(check_buf(fn, ctx, "k", k, k_bytes, qneed, (size_t)es));
    TRY(check_buf(fn, ctx, "v", v, v_bytes, vneed, (size_t)es));
    TRY(check_buf(fn, ctx, "cu_seqlens", cu_seqlens, cu_seqlens_bytes, cneed, 4));
    const void* ins[4] = {q, k, v, cu_seqlens};
    const int64_t inn[4] = {qneed, qneed, vneed, cneed};
    const char* inname[4] = {"q", "k", "v", "cu_seqlens"};
    TRY(check_disjoint(fn, "o", o, oneed, "lse", lse, lneed));
    for (int j = 0; j < 4; j++) {
        TRY(check_disjoint(fn, "o", o, oneed, inname[j], ins[j], inn[j]));
        TRY(check_disjoint(fn, "lse", lse, lneed, inname[j], ins[j], inn[j]));
    }
    const int32_t* hc;
    int32_t* cc;
    TRY(host_i32(fn, ctx, "cu_seqlens", cu_seqlens, nseq + 1, &hc, &cc));
    int64_t max_len = 0;
    int rc = DSK4J_OK;
    if (hc[0] != 0)
        rc = dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'cu_seqlens': entry 0 is %d, must be 0", fn, hc[0]);
    for (int64_t i = 0; rc == DSK4J_OK && i < nseq; i++) {
        if (hc[i + 1] < hc[i])
            rc = dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                            "%s: argument 'cu_seqlens': entry %lld (%d) is less than entry %lld (%d)", fn,
                            (long long)(i + 1), hc[i + 1], (long long)i, hc[i]);
        else if (hc[i + 1] - hc[i] > max_len)
            max_len = hc[i + 1] - hc[i];
    }
    if (rc == DSK4J_OK && hc[nseq] != tokens)
        rc = dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'cu_seqlens': last entry is %d, must equal tokens = %lld",
                        fn, hc[nseq], (long long)tokens);
    free(cc);
    if (rc != DSK4J_OK) return rc;
    if (rows == 0) return finish(DSK4J_OK);
    mla_prefill_args a = {o,      lse,    q,     k,      v,       dtype,         cu_seqlens, nseq,
                          tokens, heads,  qk_dim, v_dim, max_len, softmax_scale, flags & DSK4J_MLA_CAUSAL};
    if (ctx->kind == CTX_CUDA) return finish(cuda_mla_prefill(ctx, &a));
    return finish(cpu_mla_prefill(ctx, &a));
}

/* ---------------- absorption ---------------- */

static int absorb(const char* fn, dsk4j_context* ctx, void* y, int64_t y_bytes, const void* x, int64_t x_bytes,
                  int32_t dtype, const void* w, int64_t w_bytes, int32_t w_dtype, int64_t tokens, int64_t heads,
                  int64_t x_stride, int o_side) {
    TRY(check_ctx(fn, ctx));
    TRY(check_dtype(fn, "dtype", dtype));
    TRY(check_dtype(fn, "w_dtype", w_dtype));
    TRY(check_nonneg(fn, "tokens", tokens));
    TRY(check_nonneg(fn, "heads", heads));
    if (!o_side && x_stride < 128)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'q_head_stride' must be >= 128, got %lld", fn,
                          (long long)x_stride);
    const int64_t es = (int64_t)dsk4j_dtype_size(dtype), ws = (int64_t)dsk4j_dtype_size(w_dtype);
    int64_t rows, yneed, xneed, wneed;
    TRY(check_mul(fn, "tokens * heads", tokens, heads, &rows));
    TRY(check_mul(fn, o_side ? "o bytes" : "q_latent bytes", rows, (o_side ? 128 : LAT) * es, &yneed));
    TRY(check_mul(fn, o_side ? "o_latent bytes" : "q_nope bytes", rows, x_stride, &xneed));
    TRY(check_mul(fn, "x bytes", xneed, es, &xneed));
    TRY(check_mul(fn, "wkv_b bytes", heads, 256 * LAT * ws, &wneed));
    const char* yn = o_side ? "o" : "q_latent";
    const char* xn = o_side ? "o_latent" : "q_nope";
    TRY(check_buf(fn, ctx, yn, y, y_bytes, yneed, (size_t)es));
    TRY(check_buf(fn, ctx, xn, x, x_bytes, xneed, (size_t)es));
    TRY(check_buf(fn, ctx, "wkv_b", w, w_bytes, rows ? wneed : 0, (size_t)ws));
    if (rows == 0) return finish(DSK4J_OK);
    TRY(check_disjoint(fn, yn, y, yneed, xn, x, xneed));
    TRY(check_disjoint(fn, yn, y, yneed, "wkv_b", w, wneed));
    mla_absorb_args a = {y, x, dtype, w, w_dtype, tokens, heads, x_stride, o_side};
    if (ctx->kind == CTX_CUDA) return finish(cuda_mla_absorb(ctx, &a));
    return finish(cpu_mla_absorb(ctx, &a));
}

DSK4J_EXPORT int dsk4j_mla_absorb_q(dsk4j_context* ctx, void* q_latent, int64_t q_latent_bytes, const void* q_nope,
                                    int64_t q_nope_bytes, int32_t dtype, const void* wkv_b, int64_t wkv_b_bytes,
                                    int32_t w_dtype, int64_t tokens, int64_t heads, int64_t q_head_stride) {
    return absorb("dsk4j_mla_absorb_q", ctx, q_latent, q_latent_bytes, q_nope, q_nope_bytes, dtype, wkv_b,
                  wkv_b_bytes, w_dtype, tokens, heads, q_head_stride, 0);
}

DSK4J_EXPORT int dsk4j_mla_absorb_o(dsk4j_context* ctx, void* o, int64_t o_bytes, const void* o_latent,
                                    int64_t o_latent_bytes, int32_t dtype, const void* wkv_b, int64_t wkv_b_bytes,
                                    int32_t w_dtype, int64_t tokens, int64_t heads) {
    return absorb("dsk4j_mla_absorb_o", ctx, o, o_bytes, o_latent, o_latent_bytes, dtype, wkv_b, wkv_b_bytes, w_dtype,
                  tokens, heads, LAT, 1);
}
