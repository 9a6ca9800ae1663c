/* fuzz_mla.c - libFuzzer target of the mla.* entry points (cache_token_bytes, cache_append, decode,
 * prefill, absorb_q, absorb_o): formats, dtypes, flags, shapes, paged-cache block tables, sequence
 * lengths, positions and cu_seqlens (in range mostly, sometimes not), capacities and pointers from
 * the input (fuzz_common.h). */
#include "fuzz_common.h"

#define LAT 512
#define ROPE 64
#define PAGE 64

static int64_t token_bytes(int32_t fmt) { return fmt == 0 ? 2304 : fmt == 1 ? 1152 : fmt == 2 ? 656 : 1; }

static float fz_scale(fz_in* f) {
    uint8_t b = fz_u8(f);
    return b == 255 ? __builtin_nanf("") : b == 254 ? 0.0f : b == 253 ? -1.0f : b == 252 ? __builtin_inff() : 0.01f + b / 256.0f;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fz_in in = {data, size, 0}, *f = &in;
    dsk4j_context* ctx = fz_ctx(f);
    int op = fz_u8(f) % 6, rc;
    int32_t dt = fz_dtype(f, DSK4J_DTYPE_F32, DSK4J_DTYPE_BF16);
    int64_t es = dt == DSK4J_DTYPE_F32 ? 4 : 2;
    int64_t c[12];
    if (op == 0) {
        int64_t out = 0;
        int32_t fmt = (int32_t)(fz_u8(f) % 5) - 1;
        rc = dsk4j_mla_cache_token_bytes(fz_bool(f, 8) ? NULL : &out, fmt);
    } else if (op == 1) {
        int32_t fmt = fz_u8(f) % 4;
        int64_t batch = fz_dim(f, 4), maxp = fz_dim(f, 3), nump = fz_dim(f, 4), tokens = fz_dim(f, 12);
        void* cache = fz_buf(f, mul(mul(nump, PAGE), token_bytes(fmt)), &c[0]);
        void* lat = fz_fbuf(f, mul(mul(tokens, LAT), es), &c[1]);
        void* pe = fz_fbuf(f, mul(mul(tokens, ROPE), es), &c[2]);
        int32_t* sid = fz_ibuf(f, tokens, 0, dec(batch), &c[3]);
        int32_t* pos = fz_ibuf(f, tokens, 0, dec(mul(maxp, PAGE)), &c[4]);
        int32_t* bt = fz_ibuf(f, mul(batch, maxp), 0, dec(nump), &c[5]);
        rc = dsk4j_mla_cache_append(ctx, cache, c[0], fmt, lat, c[1], pe, c[2], dt, sid, c[3], pos, c[4], bt, c[5], batch, maxp,
                                    nump, tokens);
    } else if (op == 2) {
        int32_t fmt = fz_u8(f) % 4, flags = fz_u8(f) % 3;
        int64_t batch = fz_dim(f, 3), sq = fz_dim(f, 3), heads = fz_dim(f, 3), maxp = fz_dim(f, 3), nump = fz_dim(f, 4);
        int64_t rows = mul(mul(batch, sq), heads);
        float sc = fz_scale(f);
        void* o = fz_buf(f, mul(mul(rows, LAT), es), &c[0]);
        float* lse = fz_bool(f, 4) ? (c[1] = 0, NULL) : (float*)fz_buf(f, mul(rows, 4), &c[1]);
        void* q = fz_fbuf(f, mul(mul(rows, LAT), es), &c[2]);
        void* qpe = fz_fbuf(f, mul(mul(rows, ROPE), es), &c[3]);
        void* cache = fz_fbuf(f, mul(mul(nump, PAGE), token_bytes(fmt)), &c[4]);
        int32_t* bt = fz_ibuf(f, mul(batch, maxp), 0, dec(nump), &c[5]);
        int32_t* lens = fz_ibuf(f, batch, 0, mul(maxp, PAGE), &c[6]);
        rc = dsk4j_mla_decode(ctx, o, c[0], lse, c[1], q, c[2], qpe, c[3], dt, cache, c[4], fmt, bt, c[5], lens, c[6], batch, sq,
                              heads, maxp, nump, sc, flags);
    } else if (op == 3) {
        int32_t flags = fz_u8(f) % 3;
        int64_t nseq = fz_dim(f, 4), tokens = fz_dim(f, 40), heads = fz_dim(f, 3), qk = fz_dim(f, 260), vd = fz_dim(f, 260);
        int64_t rows = mul(tokens, heads);
        float sc = fz_scale(f);
        void* o = fz_buf(f, mul(mul(rows, vd), es), &c[0]);
        float* lse = fz_bool(f, 4) ? (c[1] = 0, NULL) : (float*)fz_buf(f, mul(rows, 4), &c[1]);
        void* q = fz_fbuf(f, mul(mul(rows, qk), es), &c[2]);
        void* k = fz_fbuf(f, mul(mul(rows, qk), es), &c[3]);
        void* v = fz_fbuf(f, mul(mul(rows, vd), es), &c[4]);
        int32_t* cu = fz_offsets(f, nseq, tokens, &c[5]);
        rc = dsk4j_mla_prefill(ctx, o, c[0], lse, c[1], q, c[2], k, c[3], v, c[4], dt, cu, c[5], nseq, tokens, heads, qk, vd, sc,
                               flags);
    } else {
        int32_t wd = fz_dtype(f, DSK4J_DTYPE_BF16, DSK4J_DTYPE_F32);
        int64_t ws = wd == DSK4J_DTYPE_F32 ? 4 : 2, tokens = fz_dim(f, 4), heads = fz_dim(f, 2);
        int64_t rows = mul(tokens, heads);
        void* w = fz_fbuf(f, mul(mul(heads, 256 * LAT), ws), &c[2]);
        if (op == 4) {
            int64_t stride = fz_bool(f, 2) ? 128 : fz_dim(f, 300);
            void* y = fz_buf(f, mul(mul(rows, LAT), es), &c[0]);
            void* x = fz_fbuf(f, mul(mul(rows, stride), es), &c[1]);
            rc = dsk4j_mla_absorb_q(ctx, y, c[0], x, c[1], dt, w, c[2], wd, tokens, heads, stride);
        } else {
            void* y = fz_buf(f, mul(mul(rows, 128), es), &c[0]);
            void* x = fz_fbuf(f, mul(mul(rows, LAT), es), &c[1]);
            rc = dsk4j_mla_absorb_o(ctx, y, c[0], x, c[1], dt, w, c[2], wd, tokens, heads);
        }
    }
    fz_check_rc(rc);
    fz_end();
    return 0;
}
