/* fuzz_fp8.c - libFuzzer target of the fp8.* entry points (fp8.cast, fp8.act_quant,
 * fp8.weight_quant, fp8.weight_dequant): shapes, dtypes, flags, capacities and pointers from the
 * input (fuzz_common.h). */
#include "fuzz_common.h"

static int64_t esz(int32_t dt) {
    return dt == DSK4J_DTYPE_F32 || dt == DSK4J_DTYPE_I32 ? 4 : dt == DSK4J_DTYPE_BF16 || dt == DSK4J_DTYPE_F16 ? 2 : 1;
}
int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fz_in in = {data, size, 0}, *f = &in;
    dsk4j_context* ctx = fz_ctx(f);
    int op = fz_u8(f) % 4, rc;
    int64_t c1, c2, c3;
    if (op == 0) {
        int32_t xd = fz_dtype(f, DSK4J_DTYPE_F32, DSK4J_DTYPE_E4M3), yd = fz_dtype(f, DSK4J_DTYPE_E5M2, DSK4J_DTYPE_BF16);
        int64_t n = fz_dim(f, 3000);
        void* y = fz_buf(f, mul(n, esz(yd)), &c1);
        void* x = fz_buf(f, mul(n, esz(xd)), &c2);
        rc = dsk4j_fp8_cast(ctx, y, c1, yd, x, c2, xd, n);
    } else if (op == 1) {
        int32_t xd = fz_dtype(f, DSK4J_DTYPE_F32, DSK4J_DTYPE_BF16), flags = fz_u8(f) % 5, group = fz_bool(f, 20) ? 64 : 128;
        int64_t rows = fz_dim(f, 40), k = fz_dim128(f, 4), ld = fz_bool(f, 3) ? fz_dim(f, 50) : 0;
        int64_t groups = k / 128, l = ld ? ld : (flags & DSK4J_SCALE_COL_MAJOR ? rows : groups);
        int64_t se = flags & DSK4J_SCALE_COL_MAJOR ? add(mul(dec(groups), l), rows) : add(mul(dec(rows), l), groups);
        if (rows <= 0 || groups <= 0) se = 0;
        void* y = fz_buf(f, mul(rows, k), &c1);
        float* s = (float*)fz_buf(f, mul(se, 4), &c2);
        void* x = fz_fbuf(f, mul(mul(rows, k), esz(xd)), &c3);
        rc = dsk4j_fp8_act_quant(ctx, y, c1, s, c2, x, c3, xd, rows, k, group, flags, ld);
    } else if (op == 2) {
        int32_t wd = fz_dtype(f, DSK4J_DTYPE_F32, DSK4J_DTYPE_BF16), flags = fz_u8(f) % 3, block = fz_bool(f, 20) ? 64 : 128;
        int64_t n = fz_dim(f, 300), k = fz_dim(f, 300);
        void* y = fz_buf(f, mul(n, k), &c1);
        float* s = (float*)fz_buf(f, mul(mul(cdiv128(n), cdiv128(k)), 4), &c2);
        void* w = fz_fbuf(f, mul(mul(n, k), esz(wd)), &c3);
        rc = dsk4j_fp8_weight_quant(ctx, y, c1, s, c2, w, c3, wd, n, k, block, flags);
    } else {
        int32_t yd = fz_dtype(f, DSK4J_DTYPE_F32, DSK4J_DTYPE_BF16), block = fz_bool(f, 20) ? 256 : 128;
        int64_t n = fz_dim(f, 300), k = fz_dim(f, 300);
        void* y = fz_buf(f, mul(mul(n, k), esz(yd)), &c1);
        void* w = fz_buf(f, mul(n, k), &c2);
        float* s = (float*)fz_fbuf(f, mul(mul(cdiv128(n), cdiv128(k)), 4), &c3);
        rc = dsk4j_fp8_weight_dequant(ctx, y, c1, yd, w, c2, s, c3, n, k, block);
    }
    fz_check_rc(rc);
    fz_end();
    return 0;
}
