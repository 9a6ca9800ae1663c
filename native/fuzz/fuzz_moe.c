/* fuzz_moe.c - libFuzzer target of the moe.* entry points (gate, dispatch, gather, combine,
 * bias_update, silu_quant, forward): router parameters, dtypes, shapes, routing indices, row maps,
 * capacities and pointers from the input (fuzz_common.h). */
#include "fuzz_common.h"

static int64_t esz(int32_t dt) {
    return dt == DSK4J_DTYPE_F32 || dt == DSK4J_DTYPE_I32 ? 4 : dt == DSK4J_DTYPE_BF16 || dt == DSK4J_DTYPE_F16 ? 2 : 1;
}

static float fz_float(fz_in* f) {
    uint8_t b = fz_u8(f);
    return b == 255 ? __builtin_nanf("") : b == 254 ? __builtin_inff() : (b - 64) / 32.0f;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fz_in in = {data, size, 0}, *f = &in;
    dsk4j_context* ctx = fz_ctx(f);
    int op = fz_u8(f) % 7, rc;
    int64_t c[16];
    int64_t tokens = fz_dim(f, 12), experts = fz_dim(f, 16), top_k = fz_dim(f, 4);
    if (op == 0 || op == 6) {
        int32_t xd = fz_dtype(f, DSK4J_DTYPE_F32, DSK4J_DTYPE_BF16), wd = fz_dtype(f, DSK4J_DTYPE_BF16, DSK4J_DTYPE_F32);
        int32_t sf = fz_u8(f) % 3, norm = fz_u8(f) % 2;
        int64_t ng = fz_dim(f, 4), tg = fz_dim(f, 4);
        float rsf = fz_float(f);
        int64_t hidden = op == 6 ? fz_dim128(f, 2) : fz_dim(f, 64);
        void* x = fz_fbuf(f, mul(mul(tokens, hidden), esz(xd)), &c[0]);
        void* wg = fz_fbuf(f, mul(mul(experts, hidden), esz(wd)), &c[1]);
        float* bias = fz_bool(f, 3) ? (c[2] = 0, NULL) : (float*)fz_fbuf(f, mul(experts, 4), &c[2]);
        if (op == 0) {
            int32_t* idx = (int32_t*)fz_buf(f, mul(mul(tokens, top_k), 4), &c[3]);
            float* w = (float*)fz_buf(f, mul(mul(tokens, top_k), 4), &c[4]);
            float* lg = fz_bool(f, 3) ? (c[5] = 0, NULL) : (float*)fz_buf(f, mul(mul(tokens, experts), 4), &c[5]);
            rc = dsk4j_moe_gate(ctx, idx, c[3], w, c[4], lg, c[5], x, c[0], xd, wg, c[1], wd, bias, c[2], tokens, hidden, experts,
                                top_k, ng, tg, sf, norm, rsf);
        } else {
            int32_t yd = fz_dtype(f, DSK4J_DTYPE_F32, DSK4J_DTYPE_BF16), wdt = fz_dtype(f, DSK4J_DTYPE_E4M3, DSK4J_DTYPE_BF16);
            int64_t inter = fz_dim128(f, 2), si = fz_bool(f, 2) ? 0 : fz_dim128(f, 1), ws = esz(wdt);
            int fp8 = wdt == DSK4J_DTYPE_E4M3;
            void* y = fz_buf(f, mul(mul(tokens, hidden), esz(yd)), &c[3]);
            int32_t* counts = fz_bool(f, 3) ? (c[4] = 0, NULL) : (int32_t*)fz_buf(f, mul(experts, 4), &c[4]);
            void* w13 = fz_fbuf(f, mul(mul(mul(experts, mul(2, inter)), hidden), ws), &c[5]);
            float* w13s = fp8 ? (float*)fz_fbuf(f, mul(mul(mul(experts, cdiv128(mul(2, inter))), hidden / 128), 4), &c[6]) : (c[6] = 0, NULL);
            void* w2 = fz_fbuf(f, mul(mul(mul(experts, hidden), inter), ws), &c[7]);
            float* w2s = fp8 ? (float*)fz_fbuf(f, mul(mul(mul(experts, cdiv128(hidden)), inter / 128), 4), &c[8]) : (c[8] = 0, NULL);
            void* s13 = si ? fz_fbuf(f, mul(mul(mul(2, si), hidden), ws), &c[9]) : (c[9] = 0, NULL);
            float* s13s = si && fp8 ? (float*)fz_fbuf(f, mul(mul(cdiv128(mul(2, si)), hidden / 128), 4), &c[10]) : (c[10] = 0, NULL);
            void* s2 = si ? fz_fbuf(f, mul(mul(hidden, si), ws), &c[11]) : (c[11] = 0, NULL);
            float* s2s = si && fp8 ? (float*)fz_fbuf(f, mul(mul(cdiv128(hidden), si / 128), 4), &c[12]) : (c[12] = 0, NULL);
            rc = dsk4j_moe_forward(ctx, y, c[3], yd, counts, c[4], x, c[0], xd, wg, c[1], wd, bias, c[2], wdt, w13, c[5], w13s, c[6],
                                   w2, c[7], w2s, c[8], s13, c[9], s13s, c[10], s2, c[11], s2s, c[12], tokens, hidden, inter, si,
                                   experts, top_k, ng, tg, sf, norm, rsf);
        }
    } else if (op == 1) {
        int32_t align = fz_bool(f, 2) ? 1 : (int32_t)fz_dim(f, 130);
        int64_t mmax = fz_bool(f, 2) ? 0 : fz_dim(f, 12), pairs = mul(tokens, top_k);
        int32_t* idx = fz_ibuf(f, pairs, 0, dec(experts), &c[0]);
        int32_t* cnt = (int32_t*)fz_buf(f, mul(experts, 4), &c[1]);
        int32_t* off = (int32_t*)fz_buf(f, mul(add(experts, 1), 4), &c[2]);
        int32_t* row = (int32_t*)fz_buf(f, mul(pairs, 4), &c[3]);
        int64_t rows = mmax ? mul(experts, mmax) : add(pairs, mul(experts, align > 0 ? align - 1 : 0));
        int32_t* src = (int32_t*)fz_buf(f, mul(rows, 4), &c[4]);
        rc = dsk4j_moe_dispatch(ctx, cnt, c[1], off, c[2], row, c[3], src, c[4], idx, c[0], tokens, top_k, experts, align, mmax);
    } else if (op == 2) {
        int32_t dt = fz_dtype(f, DSK4J_DTYPE_E4M3, DSK4J_DTYPE_BF16);
        int64_t rows = fz_dim(f, 40), hidden = fz_dim(f, 64);
        void* xp = fz_buf(f, mul(mul(rows, hidden), esz(dt)), &c[0]);
        void* x = fz_buf(f, mul(mul(tokens, hidden), esz(dt)), &c[1]);
        int32_t* src = fz_ibuf(f, rows, -1, dec(mul(tokens, top_k)), &c[2]);
        rc = dsk4j_moe_gather(ctx, xp, c[0], x, c[1], dt, src, c[2], rows, tokens, top_k, hidden);
    } else if (op == 3) {
        int32_t yd = fz_dtype(f, DSK4J_DTYPE_F32, DSK4J_DTYPE_BF16), ed = fz_dtype(f, DSK4J_DTYPE_BF16, DSK4J_DTYPE_F32),
                sd = fz_dtype(f, DSK4J_DTYPE_F32, DSK4J_DTYPE_BF16);
        int64_t rows = fz_dim(f, 40), hidden = fz_dim(f, 64);
        void* y = fz_buf(f, mul(mul(tokens, hidden), esz(yd)), &c[0]);
        void* e = fz_fbuf(f, mul(mul(rows, hidden), esz(ed)), &c[1]);
        float* w = (float*)fz_fbuf(f, mul(mul(tokens, top_k), 4), &c[2]);
        int32_t* row = fz_ibuf(f, mul(tokens, top_k), 0, dec(rows), &c[3]);
        void* sh = fz_bool(f, 2) ? (c[4] = 0, NULL) : fz_fbuf(f, mul(mul(tokens, hidden), esz(sd)), &c[4]);
        rc = dsk4j_moe_combine(ctx, y, c[0], yd, e, c[1], ed, w, c[2], row, c[3], sh, c[4], sd, tokens, top_k, rows, hidden);
    } else if (op == 4) {
        float gamma = fz_float(f);
        float* bias = (float*)fz_fbuf(f, mul(experts, 4), &c[0]);
        int32_t* cnt = fz_ibuf(f, experts, 0, 100, &c[1]);
        rc = dsk4j_moe_bias_update(ctx, bias, c[0], cnt, c[1], experts, gamma);
    } else {
        int64_t rows = fz_dim(f, 12), inter = fz_dim128(f, 3);
        void* y = fz_buf(f, mul(rows, inter), &c[0]);
        float* s = (float*)fz_buf(f, mul(mul(rows, inter / 128), 4), &c[1]);
        float* h = (float*)fz_fbuf(f, mul(mul(rows, mul(2, inter)), 4), &c[2]);
        rc = dsk4j_moe_silu_quant(ctx, y, c[0], s, c[1], h, c[2], rows, inter);
    }
    fz_check_rc(rc);
    fz_end();
    return 0;
}
