/* api_gemm.c - the gemm.* entry points (DESIGN.md 4.2): validate every argument, then run the
 * backend. D = A * B^T, f32 accumulation. */
#include "check.h"

static int check_d_dtype(const char* fn, int32_t d_dtype) {
    if (d_dtype != DSK4J_DTYPE_F32 && d_dtype != DSK4J_DTYPE_BF16)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'd_dtype' must be f32 or bf16, got %s", fn,
                          dsk4j_dtype_name(d_dtype));
    return DSK4J_OK;
}

/* c may be d itself (in-place accumulation) only when d is f32; otherwise they must not overlap. */
static int check_addend(const char* fn, void* d, int64_t d_need, int32_t d_dtype, const float* c, int64_t c_need) {
    if (!c) return DSK4J_OK;
    if ((const void*)c == (const void*)d) {
        if (d_dtype != DSK4J_DTYPE_F32)
            return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: arguments 'c' and 'd' alias, which needs an f32 'd'", fn);
        return DSK4J_OK;
    }
    return check_disjoint(fn, "d", d, d_need, "c", c, c_need);
}

static int check_k128(const char* fn, int64_t k) {
    if (k % 128 != 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'k' (%lld) is not a multiple of 128", fn,
                          (long long)k);
    return DSK4J_OK;
}

/* b e4m3 [groups, n, k] and b_scale f32 [groups, ceil(n/128), k/128]. */
static int check_b(const char* fn, dsk4j_context* ctx, const void* b, int64_t b_bytes, const float* b_scale,
                   int64_t b_scale_bytes, int64_t groups, int64_t n, int64_t k) {
    int64_t per, need, sper, sneed;
    TRY(check_mul(fn, "n * k", n, k, &per));
    TRY(check_mul(fn, "b bytes", groups, per, &need));
    TRY(check_mul(fn, "b_scale blocks", ceil_div(n, 128), k / 128, &sper));
    TRY(check_mul(fn, "b_scale size", groups, sper, &sneed));
    TRY(check_mul(fn, "b_scale bytes", sneed, 4, &sneed));
    TRY(check_buf(fn, ctx, "b", b, b_bytes, need, 1));
    TRY(check_buf(fn, ctx, "b_scale", b_scale, b_scale_bytes, sneed, 4));
    return DSK4J_OK;
}

/* d f32|bf16 [rows, n] must not overlap the inputs (host). */
static int check_d(const char* fn, dsk4j_context* ctx, void* d, int64_t d_bytes, int32_t d_dtype, int64_t rows,
                   int64_t n, int64_t* d_need) {
    int64_t numel;
    TRY(check_d_dtype(fn, d_dtype));
    TRY(check_mul(fn, "m * n", rows, n, &numel));
    TRY(check_mul(fn, "d bytes", numel, (int64_t)dsk4j_dtype_size(d_dtype), d_need));
    return check_buf(fn, ctx, "d", d, d_bytes, *d_need, dsk4j_dtype_size(d_dtype));
}

DSK4J_EXPORT int dsk4j_gemm_fp8_block(dsk4j_context* ctx, void* d, int64_t d_bytes, int32_t d_dtype,
                                      const void* a, int64_t a_bytes, const float* a_scale,
                                      int64_t a_scale_bytes, const void* b, int64_t b_bytes,
                                      const float* b_scale, int64_t b_scale_bytes, const float* c,
                                      int64_t c_bytes, int64_t m, int64_t n, int64_t k, int32_t flags,
                                      int64_t a_scale_ld) {
    static const char* fn = "dsk4j_gemm_fp8_block";
    TRY(check_ctx(fn, ctx));
    TRY(check_nonneg(fn, "m", m));
    TRY(check_nonneg(fn, "n", n));
    TRY(check_nonneg(fn, "k", k));
    TRY(check_nonneg(fn, "a_scale_ld", a_scale_ld));
    TRY(check_k128(fn, k));
    if (flags & ~DSK4J_SCALE_COL_MAJOR)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'flags' has unknown bits 0x%x", fn, flags);
    int64_t kb = k / 128, a_need, s_elems = 0, rs, cs, d_need;
    TRY(check_mul(fn, "m * k", m, k, &a_need));
    if (flags & DSK4J_SCALE_COL_MAJOR) {
        int64_t ld = a_scale_ld ? a_scale_ld : m;
        if (ld < m)
            return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'a_scale_ld' (%lld) is smaller than m (%lld)",
                              fn, (long long)ld, (long long)m);
        if (kb > 0 && m > 0) {
            TRY(check_mul(fn, "a_scale size", kb - 1, ld, &s_elems));
            TRY(check_add(fn, "a_scale size", &s_elems, m));
        }
        rs = 1, cs = ld;
    } else {
        int64_t ld = a_scale_ld ? a_scale_ld : kb;
        if (ld < kb)
            return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'a_scale_ld' (%lld) is smaller than k/128 (%lld)",
                              fn, (long long)ld, (long long)kb);
        if (kb > 0 && m > 0) {
            TRY(check_mul(fn, "a_scale size", m - 1, ld, &s_elems));
            TRY(check_add(fn, "a_scale size", &s_elems, kb));
        }
        rs = ld, cs = 1;
    }
    int64_t s_need;
    TRY(check_mul(fn, "a_scale bytes", s_elems, 4, &s_need));
    TRY(check_d(fn, ctx, d, d_bytes, d_dtype, m, n, &d_need));
    TRY(check_buf(fn, ctx, "a", a, a_bytes, a_need, 1));
    TRY(check_buf(fn, ctx, "a_scale", a_scale, a_scale_bytes, s_need, 4));
    TRY(check_b(fn, ctx, b, b_bytes, b_scale, b_scale_bytes, 1, n, k));
    int64_t c_need = c ? d_need / (int64_t)dsk4j_dtype_size(d_dtype) * 4 : 0;
    if (c) TRY(check_buf(fn, ctx, "c", c, c_bytes, c_need, 4));
    TRY(check_disjoint(fn, "d", d, d_need, "a", a, a_need));
    TRY(check_disjoint(fn, "d", d, d_need, "a_scale", a_scale, s_need));
    TRY(check_disjoint(fn, "d", d, d_need, "b", b, n * k));
    TRY(check_disjoint(fn, "d", d, d_need, "b_scale", b_scale, ceil_div(n, 128) * kb * 4));
    TRY(check_addend(fn, d, d_need, d_dtype, c, c_need));
    if (m == 0 || n == 0) return finish(DSK4J_OK);
    gemm_args g = {d, d_dtype, a, a_scale, rs, cs, b, b_scale, c, m, n, k, DSK4J_DTYPE_E4M3};
    if (ctx->kind == CTX_CUDA) return finish(cuda_gemm_fp8_block(ctx, &g));
    cpu_gemm_fp8_block(ctx, &g);
    return finish(DSK4J_OK);
}

DSK4J_EXPORT int dsk4j_gemm_bf16(dsk4j_context* ctx, void* d, int64_t d_bytes, int32_t d_dtype,
                                 const void* a, int64_t a_bytes, const void* b, int64_t b_bytes,
                                 const float* c, int64_t c_bytes, int64_t m, int64_t n, int64_t k) {
    static const char* fn = "dsk4j_gemm_bf16";
    TRY(check_ctx(fn, ctx));
    TRY(check_nonneg(fn, "m", m));
    TRY(check_nonneg(fn, "n", n));
    TRY(check_nonneg(fn, "k", k));
    int64_t a_need, b_need, d_need;
    TRY(check_mul(fn, "a bytes", m, k, &a_need));
    TRY(check_mul(fn, "a bytes", a_need, 2, &a_need));
    TRY(check_mul(fn, "b bytes", n, k, &b_need));
    TRY(check_mul(fn, "b bytes", b_need, 2, &b_need));
    TRY(check_d(fn, ctx, d, d_bytes, d_dtype, m, n, &d_need));
    TRY(check_buf(fn, ctx, "a", a, a_bytes, a_need, 2));
    TRY(check_buf(fn, ctx, "b", b, b_bytes, b_need, 2));
    int64_t c_need = c ? d_need / (int64_t)dsk4j_dtype_size(d_dtype) * 4 : 0;
    if (c) TRY(check_buf(fn, ctx, "c", c, c_bytes, c_need, 4));
    TRY(check_disjoint(fn, "d", d, d_need, "a", a, a_need));
    TRY(check_disjoint(fn, "d", d, d_need, "b", b, b_need));
    TRY(check_addend(fn, d, d_need, d_dtype, c, c_need));
    if (m == 0 || n == 0) return finish(DSK4J_OK);
    gemm_args g = {d, d_dtype, a, NULL, 0, 0, b, NULL, c, m, n, k, DSK4J_DTYPE_BF16};
    if (ctx->kind == CTX_CUDA) return finish(cuda_gemm_bf16(ctx, &g));
    cpu_gemm_bf16(ctx, &g);
    return finish(DSK4J_OK);
}

DSK4J_EXPORT int dsk4j_gemm_f32(dsk4j_context* ctx, float* d, int64_t d_bytes, const float* a, int64_t a_bytes,
                                const void* b, int64_t b_bytes, int32_t b_dtype, const float* c, int64_t c_bytes,
                                int64_t m, int64_t n, int64_t k) {
    static const char* fn = "dsk4j_gemm_f32";
    TRY(check_ctx(fn, ctx));
    TRY(check_nonneg(fn, "m", m));
    TRY(check_nonneg(fn, "n", n));
    TRY(check_nonneg(fn, "k", k));
    if (b_dtype != DSK4J_DTYPE_F32 && b_dtype != DSK4J_DTYPE_BF16)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'b_dtype' must be f32 or bf16, got %s", fn,
                          dsk4j_dtype_name(b_dtype));
    int64_t bsz = (int64_t)dsk4j_dtype_size(b_dtype), a_need, b_need, d_need;
    TRY(check_mul(fn, "a bytes", m, k, &a_need));
    TRY(check_mul(fn, "a bytes", a_need, 4, &a_need));
    TRY(check_mul(fn, "b bytes", n, k, &b_need));
    TRY(check_mul(fn, "b bytes", b_need, bsz, &b_need));
    TRY(check_d(fn, ctx, d, d_bytes, DSK4J_DTYPE_F32, m, n, &d_need));
    TRY(check_buf(fn, ctx, "a", a, a_bytes, a_need, 4));
    TRY(check_buf(fn, ctx, "b", b, b_bytes, b_need, (size_t)bsz));
    int64_t c_need = c ? d_need : 0;
    if (c) TRY(check_buf(fn, ctx, "c", c, c_bytes, c_need, 4));
    TRY(check_disjoint(fn, "d", d, d_need, "a", a, a_need));
    TRY(check_disjoint(fn, "d", d, d_need, "b", b, b_need));
    TRY(check_addend(fn, d, d_need, DSK4J_DTYPE_F32, c, c_need));
    if (m == 0 || n == 0) return finish(DSK4J_OK);
    gemm_args g = {d, DSK4J_DTYPE_F32, a, NULL, 0, 0, b, NULL, c, m, n, k, b_dtype};
    if (ctx->kind == CTX_CUDA) return finish(cuda_gemm_f32(ctx, &g));
    cpu_gemm_f32(ctx, &g);
    return finish(DSK4J_OK);
}

DSK4J_EXPORT int dsk4j_gemm_fp8_grouped_contiguous(
    dsk4j_context* ctx, void* d, int64_t d_bytes, int32_t d_dtype, const void* a, int64_t a_bytes,
    const float* a_scale, int64_t a_scale_bytes, const void* b, int64_t b_bytes, const float* b_scale,
    int64_t b_scale_bytes, const int32_t* group_offsets, int64_t group_offsets_bytes, int64_t groups,
    int64_t m, int64_t n, int64_t k) {
    static const char* fn = "dsk4j_gemm_fp8_grouped_contiguous";
    TRY(check_ctx(fn, ctx));
    TRY(check_nonneg(fn, "groups", groups));
    TRY(check_nonneg(fn, "m", m));
    TRY(check_nonneg(fn, "n", n));
    TRY(check_nonneg(fn, "k", k));
    TRY(check_k128(fn, k));
    if (m > INT32_MAX)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'm' (%lld) exceeds the i32 offsets", fn, (long long)m);
    int64_t a_need, s_need, d_need, o_need;
    TRY(check_mul(fn, "m * k", m, k, &a_need));
    TRY(check_mul(fn, "a_scale bytes", m, k / 128 * 4, &s_need));
    int64_t g1 = groups;
    TRY(check_add(fn, "groups + 1", &g1, 1));
    TRY(check_mul(fn, "group_offsets bytes", g1, 4, &o_need));
    TRY(check_d(fn, ctx, d, d_bytes, d_dtype, m, n, &d_need));
    TRY(check_buf(fn, ctx, "a", a, a_bytes, a_need, 1));
    TRY(check_buf(fn, ctx, "a_scale", a_scale, a_scale_bytes, s_need, 4));
    TRY(check_b(fn, ctx, b, b_bytes, b_scale, b_scale_bytes, groups, n, k));
    TRY(check_buf(fn, ctx, "group_offsets", group_offsets, group_offsets_bytes, o_need, 4));
    TRY(check_disjoint(fn, "d", d, d_need, "a", a, a_need));
    TRY(check_disjoint(fn, "d", d, d_need, "a_scale", a_scale, s_need));
    TRY(check_disjoint(fn, "d", d, d_need, "group_offsets", group_offsets, o_need));
    TRY(check_disjoint(fn, "d", d, d_need, "b", b, groups * (n * k)));
    if (ctx->kind == CTX_CPU) {
        for (int64_t g = 0; g <= groups; g++) {
            int32_t o = group_offsets[g];
            if (o < 0 || o > m || (g > 0 && o < group_offsets[g - 1]))
                return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                                  "%s: argument 'group_offsets': entry %lld is %d; entries must be non-decreasing "
                                  "within [0, m = %lld]",
                                  fn, (long long)g, o, (long long)m);
        }
    }
    if (groups == 0 || m == 0 || n == 0) return finish(DSK4J_OK);
    gemm_grouped_args g = {{d, d_dtype, a, a_scale, k / 128, 1, b, b_scale, NULL, m, n, k, DSK4J_DTYPE_E4M3},
                           groups, group_offsets, NULL, 0};
    if (ctx->kind == CTX_CUDA) return finish(cuda_gemm_fp8_grouped(ctx, &g));
    cpu_gemm_fp8_grouped(ctx, &g);
    return finish(DSK4J_OK);
}

DSK4J_EXPORT int dsk4j_gemm_fp8_grouped_masked(
    dsk4j_context* ctx, void* d, int64_t d_bytes, int32_t d_dtype, const void* a, int64_t a_bytes,
    const float* a_scale, int64_t a_scale_bytes, const void* b, int64_t b_bytes, const float* b_scale,
    int64_t b_scale_bytes, const int32_t* masked_m, int64_t masked_m_bytes, int64_t groups,
    int64_t m_max, int64_t n, int64_t k) {
    static const char* fn = "dsk4j_gemm_fp8_grouped_masked";
    TRY(check_ctx(fn, ctx));
    TRY(check_nonneg(fn, "groups", groups));
    TRY(check_nonneg(fn, "m_max", m_max));
    TRY(check_nonneg(fn, "n", n));
    TRY(check_nonneg(fn, "k", k));
    TRY(check_k128(fn, k));
    if (m_max > INT32_MAX)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'm_max' (%lld) exceeds i32", fn, (long long)m_max);
    int64_t rows, a_need, s_need, d_need, mm_need;
    TRY(check_mul(fn, "groups * m_max", groups, m_max, &rows));
    TRY(check_mul(fn, "a bytes", rows, k, &a_need));
    TRY(check_mul(fn, "a_scale bytes", rows, k / 128 * 4, &s_need));
    TRY(check_mul(fn, "masked_m bytes", groups, 4, &mm_need));
    TRY(check_d(fn, ctx, d, d_bytes, d_dtype, rows, n, &d_need));
    TRY(check_buf(fn, ctx, "a", a, a_bytes, a_need, 1));
    TRY(check_buf(fn, ctx, "a_scale", a_scale, a_scale_bytes, s_need, 4));
    TRY(check_b(fn, ctx, b, b_bytes, b_scale, b_scale_bytes, groups, n, k));
    TRY(check_buf(fn, ctx, "masked_m", masked_m, masked_m_bytes, mm_need, 4));
    TRY(check_disjoint(fn, "d", d, d_need, "a", a, a_need));
    TRY(check_disjoint(fn, "d", d, d_need, "a_scale", a_scale, s_need));
    TRY(check_disjoint(fn, "d", d, d_need, "masked_m", masked_m, mm_need));
    TRY(check_disjoint(fn, "d", d, d_need, "b", b, groups * (n * k)));
    if (ctx->kind == CTX_CPU) {
        for (int64_t g = 0; g < groups; g++)
            if (masked_m[g] < 0 || masked_m[g] > m_max)
                return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                                  "%s: argument 'masked_m': entry %lld is %d, outside [0, m_max = %lld]", fn,
                                  (long long)g, masked_m[g], (long long)m_max);
    }
    if (groups == 0 || m_max == 0 || n == 0) return finish(DSK4J_OK);
    gemm_grouped_args g = {{d, d_dtype, a, a_scale, k / 128, 1, b, b_scale, NULL, rows, n, k, DSK4J_DTYPE_E4M3},
                           groups, NULL, masked_m, m_max};
    if (ctx->kind == CTX_CUDA) return finish(cuda_gemm_fp8_grouped(ctx, &g));
    cpu_gemm_fp8_grouped(ctx, &g);
    return finish(DSK4J_OK);
}
