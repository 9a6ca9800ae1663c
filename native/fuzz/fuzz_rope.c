/* fuzz_rope.c - libFuzzer target of rope.yarn_table and rope.apply: dims, YaRN parameters (NaN, Inf,
 * out of range), positions, layouts, capacities and pointers from the input (fuzz_common.h). */
#include "fuzz_common.h"

static double fz_param(fz_in* f, double usual) {
    static const double special[] = {0.0, -1.0, 1.0, 0.5, 1e300, -1e300, __builtin_nan(""), __builtin_inf()};
    uint8_t b = fz_u8(f);
    if (b >= 248) return special[b - 248];
    return usual * (0.25 + b / 64.0);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fz_in in = {data, size, 0}, *f = &in;
    dsk4j_context* ctx = fz_ctx(f);
    int op = fz_u8(f) % 2, rc;
    int64_t dim = fz_bool(f, 4) ? fz_dim(f, 1100) : 2 * (1 + fz_u8(f) % 64), len = fz_dim(f, 200);
    int64_t cc, cs, cx, cy, cp;
    int64_t tb = mul(mul(len, dim / 2 > 0 ? dim / 2 : 0), 4);
    if (op == 0) {
        double theta = fz_param(f, 10000), factor = fz_param(f, 40), bf = fz_param(f, 32), bs = fz_param(f, 1);
        int64_t orig = fz_dim(f, 300);
        float* c = (float*)fz_buf(f, tb, &cc);
        float* s = (float*)fz_buf(f, tb, &cs);
        rc = dsk4j_rope_yarn_table(ctx, c, cc, s, cs, dim, theta, factor, orig, len, bf, bs);
    } else {
        int32_t dt = fz_dtype(f, DSK4J_DTYPE_F32, DSK4J_DTYPE_BF16), layout = fz_u8(f) % 3;
        int64_t es = dt == DSK4J_DTYPE_F32 ? 4 : 2, tokens = fz_dim(f, 20), heads = fz_dim(f, 6);
        int64_t xb = mul(mul(mul(tokens, heads), dim), es);
        float* c = (float*)fz_fbuf(f, tb, &cc);
        float* s = (float*)fz_fbuf(f, tb, &cs);
        void* x = fz_fbuf(f, xb, &cx);
        void* y = fz_bool(f, 4) ? (cy = cx, x) : fz_buf(f, xb, &cy); /* in place sometimes */
        int32_t* pos = fz_ibuf(f, tokens, 0, dec(len), &cp);
        rc = dsk4j_rope_apply(ctx, y, cy, x, cx, dt, pos, cp, c, cc, s, cs, tokens, heads, dim, len, layout);
    }
    fz_check_rc(rc);
    fz_end();
    return 0;
}
