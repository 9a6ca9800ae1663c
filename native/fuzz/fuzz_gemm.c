/* fuzz_gemm.c - libFuzzer target of the gemm.* entry points (fp8_block, bf16, f32,
 * fp8_grouped_contiguous, fp8_grouped_masked): shapes, dtypes, flags, capacities, pointers, group
 * offsets and masks from the input (fuzz_common.h).
 *
 * The op byte: values below 208 pick op byte % 4 (the four ops of the first corpus), 208..255
 * gemm.f32. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fz_in in = {data, size, 0}, *f = &in;
    dsk4j_context* ctx = fz_ctx(f);
    uint8_t op_byte = fz_u8(f);
    int op = op_byte < 208 ? op_byte % 4 : 4, rc;
    int32_t dd = fz_dtype(f, DSK4J_DTYPE_F32, DSK4J_DTYPE_BF16);
    int64_t des = dd == DSK4J_DTYPE_F32 ? 4 : 2;
    int64_t cd, ca, cas, cb, cbs, cc, co;
    if (op == 0) {
        int64_t m = fz_dim(f, 40), n = fz_dim(f, 300), k = fz_dim128(f, 3), kb = k / 128;
        int32_t flags = fz_u8(f) % 4;
        int64_t ld = fz_bool(f, 3) ? fz_dim(f, 50) : 0, l = ld ? ld : (flags & DSK4J_SCALE_COL_MAJOR ? m : kb);
        int64_t se = flags & DSK4J_SCALE_COL_MAJOR ? add(mul(dec(kb), l), m) : add(mul(dec(m), l), kb);
        if (m <= 0 || kb <= 0) se = 0;
        void* d = fz_buf(f, mul(mul(m, n), des), &cd);
        void* a = fz_buf(f, mul(m, k), &ca);
        float* as = (float*)fz_fbuf(f, mul(se, 4), &cas);
        void* b = fz_buf(f, mul(n, k), &cb);
        float* bs = (float*)fz_fbuf(f, mul(mul(cdiv128(n), kb), 4), &cbs);
        const float* c = NULL;
        cc = 0;
        uint8_t cm = fz_u8(f) % 4;
        if (cm == 1) c = (const float*)fz_fbuf(f, mul(mul(m, n), 4), &cc);
        if (cm == 2) c = (const float*)d, cc = cd; /* in place */
        rc = dsk4j_gemm_fp8_block(ctx, d, cd, dd, a, ca, as, cas, b, cb, bs, cbs, c, cc, m, n, k, flags, ld);
    } else if (op == 1) {
        int64_t m = fz_dim(f, 40), n = fz_dim(f, 100), k = fz_dim(f, 300);
        void* d = fz_buf(f, mul(mul(m, n), des), &cd);
        void* a = fz_fbuf(f, mul(mul(m, k), 2), &ca);
        void* b = fz_fbuf(f, mul(mul(n, k), 2), &cb);
        const float* c = fz_bool(f, 3) ? (const float*)fz_fbuf(f, mul(mul(m, n), 4), &cc) : (cc = 0, NULL);
        rc = dsk4j_gemm_bf16(ctx, d, cd, dd, a, ca, b, cb, c, cc, m, n, k);
    } else if (op == 2) {
        int64_t g = fz_dim(f, 6), m = fz_dim(f, 40), n = fz_dim(f, 140), k = fz_dim128(f, 2), kb = k / 128;
        void* d = fz_buf(f, mul(mul(m, n), des), &cd);
        void* a = fz_buf(f, mul(m, k), &ca);
        float* as = (float*)fz_fbuf(f, mul(mul(m, kb), 4), &cas);
        void* b = fz_buf(f, mul(mul(g, n), k), &cb);
        float* bs = (float*)fz_fbuf(f, mul(mul(g, mul(cdiv128(n), kb)), 4), &cbs);
        int32_t* off = fz_offsets(f, g, m, &co);
        rc = dsk4j_gemm_fp8_grouped_contiguous(ctx, d, cd, dd, a, ca, as, cas, b, cb, bs, cbs, off, co, g, m, n, k);
    } else if (op == 4) {
        /* gemm.f32: the dtype byte is b's (f32 | bf16 mostly, any code now and then); c NULL,
         * separate, or d itself (in place) */
        int32_t bd = dd;
        int64_t bes = bd == DSK4J_DTYPE_BF16 ? 2 : 4;
        int64_t m = fz_dim(f, 40), n = fz_dim(f, 100), k = fz_dim(f, 300);
        float* d = (float*)fz_fbuf(f, mul(mul(m, n), 4), &cd);
        const float* a = (const float*)fz_fbuf(f, mul(mul(m, k), 4), &ca);
        const void* b = fz_fbuf(f, mul(mul(n, k), bes), &cb);
        const float* c = NULL;
        cc = 0;
        uint8_t cm = fz_u8(f) % 4;
        if (cm == 1) c = (const float*)fz_fbuf(f, mul(mul(m, n), 4), &cc);
        if (cm == 2) c = d, cc = cd; /* in place */
        rc = dsk4j_gemm_f32(ctx, d, cd, a, ca, b, cb, bd, c, cc, m, n, k);
    } else {
        int64_t g = fz_dim(f, 6), mm = fz_dim(f, 12), n = fz_dim(f, 140), k = fz_dim128(f, 2), kb = k / 128;
        int64_t rows = mul(g, mm);
        void* d = fz_buf(f, mul(mul(rows, n), des), &cd);
        void* a = fz_buf(f, mul(rows, k), &ca);
        float* as = (float*)fz_fbuf(f, mul(mul(rows, kb), 4), &cas);
        void* b = fz_buf(f, mul(mul(g, n), k), &cb);
        float* bs = (float*)fz_fbuf(f, mul(mul(g, mul(cdiv128(n), kb)), 4), &cbs);
        int32_t* mk = fz_ibuf(f, g, 0, mm, &co);
        rc = dsk4j_gemm_fp8_grouped_masked(ctx, d, cd, dd, a, ca, as, cas, b, cb, bs, cbs, mk, co, g, mm, n, k);
    }
    fz_check_rc(rc);
    fz_end();
    return 0;
}
