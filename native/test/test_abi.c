/* test_abi.c - the native test suite: calls every exported dsk4j_* function of dsk4j.h directly on
 * a cpu context, once per SIMD path (portable, AVX2, AVX-512, AVX-512 + AMX; a path the CPU lacks
 * falls back to the best one it has, as dsk4j_context_open says).
 *
 *  - valid calls on small random inputs, checked against scalar references computed here (bit
 *    for bit where the contract says so, with a stated tolerance for the f32 sums), with guard
 *    bytes around every buffer that must stay intact;
 *  - invalid calls (NULL pointers, negative sizes, byte capacities one byte too small, wrong
 *    dtypes, inconsistent shapes, int64 overflowing sizes, bad index contents) that must return
 *    the documented negative code with a non-empty dsk4j_last_error() and change no byte of any
 *    buffer;
 *  - a "cuda:0" open must fail cleanly where there is no driver or device.
 *
 * Built under -fsanitize=address,undefined (native/test/run-sanitizers.sh); exit status 1 on any
 * failed check. Usage: test_abi [portable|avx2|avx512|amx ...] (default: all four). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsk4j.h"
#include "tcheck.h"

static dsk4j_context* ctx; /* the context under test */
static const char* cap_name;

#define F32 DSK4J_DTYPE_F32
#define BF16 DSK4J_DTYPE_BF16
#define F16 DSK4J_DTYPE_F16
#define E4M3 DSK4J_DTYPE_E4M3
#define E5M2 DSK4J_DTYPE_E5M2
#define I32 DSK4J_DTYPE_I32
#define INVALID DSK4J_ERR_INVALID_ARGUMENT
#define BIG (INT64_MAX / 2)

/* |got - ref| <= tol * scale (scale: the sum of magnitudes of the terms), counted as one check */
static int close_to(double got, double ref, double scale, double tol) {
    if (isnan(got) || isnan(ref)) return 0;
    return fabs(got - ref) <= tol * scale + 1e-30;
}

static float* bf16_widen(const uint16_t* v, int64_t n) {
    float* f = malloc((size_t)(n ? n : 1) * 4);
    for (int64_t i = 0; i < n; i++) f[i] = ref_bf16_to_f32(v[i]);
    return f;
}

static void fill_bf16(uint16_t* p, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) p[i] = ref_f32_to_bf16(t_uniform(lo, hi));
}

/* random e4m3 codes without NaN */
static void fill_e4m3(uint8_t* p, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint8_t v = (uint8_t)(t_rand() >> 56);
        if ((v & 0x7f) == 0x7f) v = 0x38;
        p[i] = v;
    }
}

/* ======================================================================= context & memory */

static void test_context(void) {
    int32_t a, b, c;
#define CALL() dsk4j_version(out_major, out_minor, out_patch)
    int32_t* out_major = &a;
    int32_t* out_minor = &b;
    int32_t* out_patch = &c;
    EXPECT_OK(CALL());
    CHECK(a == DSK4J_VERSION_MAJOR && b == DSK4J_VERSION_MINOR && c == DSK4J_VERSION_PATCH, "version %d.%d.%d", a, b, c);
    BAD(out_major, NULL);
    BAD(out_minor, NULL);
    BAD(out_patch, NULL);
#undef CALL

    /* context_open: bad arguments; out_ctx is set to NULL on failure */
    dsk4j_context* o = (dsk4j_context*)&a;
    dsk4j_context** out_ctx = &o;
    const char* device = "cpu";
    int32_t num_threads = 1, flags = 0;
#define CALL() dsk4j_context_open(out_ctx, device, num_threads, flags)
    BAD(out_ctx, NULL);
    BAD(device, NULL);
    CHECK(o == NULL, "out_ctx not cleared on failure");
    BAD(device, "");
    BAD(device, "gpu");
    BAD(device, "cuda:");
    BAD(device, "cuda:x");
    BAD(device, "cuda:-1");
    BAD(device, "cuda:99999999999");
    BAD(device, "cpu ");
    BAD(num_threads, -1);
    BAD(num_threads, 1025);
    BAD(flags, 0x100);
    BAD(flags, -1);
#undef CALL
    /* cuda:0: no driver or no device here -> UNAVAILABLE (or DEVICE) with a message, no context;
     * where a device exists it opens, and is closed again. */
    o = (dsk4j_context*)&a;
    int rc = dsk4j_context_open(&o, "cuda:0", 0, 0);
    if (rc == DSK4J_OK) {
        printf("  note: cuda:0 opened (a device is present)\n");
        CHECK(dsk4j_context_close(o) == DSK4J_OK, "close cuda");
    } else {
        CHECK(rc == DSK4J_ERR_UNAVAILABLE || rc == DSK4J_ERR_DEVICE, "cuda:0 open -> %d: %s", rc, dsk4j_last_error());
        CHECK(dsk4j_last_error()[0] != '\0', "cuda:0 failure without a message");
        CHECK(o == NULL, "cuda:0 failure left a context");
    }
    rc = dsk4j_context_open(&o, "cuda:7", 0, DSK4J_CUDA_REFERENCE_KERNELS);
    CHECK(rc != DSK4J_OK ? o == NULL && dsk4j_last_error()[0] != '\0' : dsk4j_context_close(o) == 0, "cuda:7 -> %d", rc);

    int32_t count = -5;
    rc = dsk4j_cuda_device_count(&count);
    CHECK((rc == DSK4J_OK && count >= 0) || (rc == DSK4J_ERR_UNAVAILABLE && count == 0 && dsk4j_last_error()[0]),
          "cuda_device_count -> %d, %d: %s", rc, count, dsk4j_last_error());
    EXPECT_FAILC(INVALID, dsk4j_cuda_device_count(NULL));

    CHECK(dsk4j_context_close(NULL) == DSK4J_OK, "close(NULL)");
    /* open/close a few contexts of every kind of thread count */
    for (int t = 0; t < 4; t++) {
        dsk4j_context* x = NULL;
        EXPECT_OK(dsk4j_context_open(&x, "cpu", t, DSK4J_CPU_FORCE_PORTABLE));
        CHECK(x != NULL, "context");
        EXPECT_OK(dsk4j_context_close(x));
    }

    /* describe: NUL-terminated, at most buf_bytes bytes */
    char* buf = gb_alloc(128);
    int64_t buf_bytes = 128;
#define CALL() dsk4j_context_describe(buf, buf_bytes, ctx)
    EXPECT_OK(CALL());
    CHECK(strncmp(buf, "cpu: ", 5) == 0 && strlen(buf) < 128, "describe: %s", buf);
    char* small = gb_alloc(5);
    EXPECT_OK(dsk4j_context_describe(small, 5, ctx));
    CHECK(small[4] == '\0' && strncmp(small, "cpu:", 4) == 0, "describe truncated");
    char* one = gb_alloc(1);
    EXPECT_OK(dsk4j_context_describe(one, 1, ctx));
    CHECK(one[0] == '\0', "describe into 1 byte");
    BAD(buf, NULL);
    BAD(buf_bytes, 0);
    BAD(buf_bytes, -1);
    BAD(ctx, NULL);
#undef CALL
    EXPECT_OK(dsk4j_synchronize(ctx));
    EXPECT_FAILC(INVALID, dsk4j_synchronize(NULL));

    /* mem_alloc / mem_free: 64-byte aligned host memory */
    void* p = NULL;
    void** out_ptr = &p;
    int64_t bytes = 1000;
#define CALL() dsk4j_mem_alloc(out_ptr, ctx, bytes)
    EXPECT_OK(CALL());
    CHECK(p != NULL && ((uintptr_t)p % 64) == 0, "mem_alloc alignment");
    memset(p, 1, 1000);
    EXPECT_OK(dsk4j_mem_free(ctx, p));
    BAD(out_ptr, NULL);
    BAD(ctx, NULL);
    BAD(bytes, 0);
    BAD(bytes, -1);
    BAD(bytes, INT64_MIN);
    BADC(DSK4J_ERR_OUT_OF_MEMORY, bytes, INT64_MAX);
    CHECK(p == NULL, "out_ptr not cleared on failure");
#undef CALL
    EXPECT_OK(dsk4j_mem_free(ctx, NULL));
    EXPECT_FAILC(INVALID, dsk4j_mem_free(NULL, NULL));

    /* memcpy: every direction is host to host on cpu; overlapping copies are moves */
    uint8_t* dst = gb_alloc(64);
    uint8_t* src = gb_alloc(64);
    t_fill_bytes(src, 64);
    int64_t dst_bytes = 64, src_bytes = 64, n = 64;
    int32_t direction = DSK4J_COPY_HOST_TO_DEVICE;
#define CALL() dsk4j_memcpy(ctx, dst, dst_bytes, src, src_bytes, n, direction)
    for (int d = 0; d < 3; d++) {
        memset(dst, 0, 64);
        EXPECT_OK(dsk4j_memcpy(ctx, dst, 64, src, 64, 64, d));
        CHECK(memcmp(dst, src, 64) == 0, "memcpy direction %d", d);
    }
    EXPECT_OK(dsk4j_memcpy(ctx, dst, 0, NULL, 0, 0, 0));
    uint8_t ref[64];
    memcpy(ref, src, 64);
    EXPECT_OK(dsk4j_memcpy(ctx, src + 8, 56, src, 64, 40, 0));
    CHECK(memcmp(src + 8, ref, 40) == 0, "overlapping memcpy is a move");
    BAD(ctx, NULL);
    BAD(dst, NULL);
    BAD(src, NULL);
    BAD(dst_bytes, 63);
    BAD(src_bytes, 63);
    BAD(dst_bytes, -1);
    BAD(n, -1);
    BAD(n, INT64_MAX);
    BAD(direction, 3);
    BAD(direction, -1);
#undef CALL
    int32_t value = 7;
#define CALL() dsk4j_memset(ctx, dst, dst_bytes, value, n)
    EXPECT_OK(CALL());
    for (int i = 0; i < 64; i++) CHECK(dst[i] == 7, "memset");
    BAD(ctx, NULL);
    BAD(dst, NULL);
    BAD(dst_bytes, 63);
    BAD(n, -1);
    BAD(value, 256);
    BAD(value, -1);
#undef CALL
    gb_free_all();
}

/* ======================================================================= fp8 */

static void test_fp8_cast(void) {
    const int fl[3] = {F32, BF16, F16};
    const int f8[2] = {E4M3, E5M2};
    for (int fi = 0; fi < 3; fi++)
        for (int e = 0; e < 2; e++) {
            int64_t n = t_range(1, 300);
            int es = fl[fi] == F32 ? 4 : 2;
            /* float -> fp8 */
            void* x = gb_alloc((size_t)n * es);
            uint8_t* y = gb_alloc((size_t)n);
            float* xf = malloc((size_t)n * 4);
            for (int64_t i = 0; i < n; i++) {
                float v = t_uniform(-2, 2) * ldexpf(1.0f, (int)t_range(-22, f8[e] == E5M2 ? 17 : 10));
                if (i == 0) v = NAN;
                if (i == 1) v = -INFINITY;
                if (i == 2) v = -0.0f;
                if (fl[fi] == F32) ((float*)x)[i] = v;
                else if (fl[fi] == BF16) ((uint16_t*)x)[i] = ref_f32_to_bf16(v);
                else ((uint16_t*)x)[i] = (uint16_t)(t_rand() >> 48);
                xf[i] = fl[fi] == F32 ? v : fl[fi] == BF16 ? ref_bf16_to_f32(((uint16_t*)x)[i])
                                                           : ref_f16_to_f32(((uint16_t*)x)[i]);
            }
            EXPECT_OK(dsk4j_fp8_cast(ctx, y, n, f8[e], x, n * es, fl[fi], n));
            int bad = 0;
            for (int64_t i = 0; i < n; i++) bad += y[i] != ref_f32_to_fp8(xf[i], f8[e] == E5M2);
            CHECK(bad == 0, "fp8_cast %d -> %d: %d of %lld codes differ from the reference", fl[fi], f8[e], bad, (long long)n);
            /* fp8 -> float: every code */
            uint8_t* codes = gb_alloc(256);
            void* back = gb_alloc(256 * (size_t)es);
            for (int i = 0; i < 256; i++) codes[i] = (uint8_t)i;
            EXPECT_OK(dsk4j_fp8_cast(ctx, back, 256 * es, fl[fi], codes, 256, f8[e], 256));
            bad = 0;
            for (int i = 0; i < 256; i++) {
                float r = f8[e] == E5M2 ? ref_e5m2_to_f32((uint8_t)i) : ref_e4m3_to_f32((uint8_t)i);
                float g = fl[fi] == F32 ? ((float*)back)[i] : fl[fi] == BF16 ? ref_bf16_to_f32(((uint16_t*)back)[i])
                                                                              : ref_f16_to_f32(((uint16_t*)back)[i]);
                bad += !same_f32(g, r);
            }
            CHECK(bad == 0, "fp8_cast %d -> %d: %d of 256 decoded values differ", f8[e], fl[fi], bad);

            /* invalid calls */
            int64_t y_bytes = n, x_bytes = n * es;
            int32_t y_dtype = f8[e], x_dtype = fl[fi];
#define CALL() dsk4j_fp8_cast(ctx, y, y_bytes, y_dtype, x, x_bytes, x_dtype, n)
            BAD(ctx, NULL);
            BAD(y, NULL);
            BAD(x, NULL);
            BAD(y_bytes, y_bytes - 1);
            BAD(x_bytes, x_bytes - 1);
            BAD(y_bytes, -1);
            BAD(n, -1);
            BAD(n, n + 1);
            BAD(n, BIG);
            BAD(n, INT64_MAX);
            BAD(y_dtype, x_dtype);
            BAD(x_dtype, y_dtype);
            BAD(x_dtype, I32);
            BAD(y_dtype, 99);
            BAD(y_dtype, -1);
            BAD(x, (void*)((char*)x + 1)); /* misaligned */
            BAD(y, (void*)x);              /* overlap */
#undef CALL
            free(xf);
            gb_free_all();
        }
}

/* reference of act_quant for one group of a row */
static void ref_quant_group(const float* x, int64_t n, int ue8m0, uint8_t* y, float* s_out) {
    float amax = 0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(x[i]) && fabsf(x[i]) > amax) amax = fabsf(x[i]);
    if (!(amax >= 1e-4f)) amax = 1e-4f;
    float s = amax / 448.0f;
    if (ue8m0) s = ref_ue8m0(s);
    for (int64_t i = 0; i < n; i++) y[i] = ref_f32_to_fp8(x[i] / s, 0);
    *s_out = s;
}

static void test_fp8_act_quant(void) {
    for (int variant = 0; variant < 4; variant++) {
        int32_t x_dtype = variant & 1 ? BF16 : F32;
        int32_t flags = variant == 2 ? DSK4J_SCALE_UE8M0 : variant == 3 ? DSK4J_SCALE_COL_MAJOR | DSK4J_SCALE_UE8M0 : 0;
        int64_t rows = t_range(1, 9), k = 128 * t_range(1, 3), groups = k / 128;
        int64_t scale_ld = variant == 3 ? rows + 2 : variant == 1 ? groups + 1 : 0;
        int64_t ld = scale_ld ? scale_ld : (flags & DSK4J_SCALE_COL_MAJOR ? rows : groups);
        int64_t selems = flags & DSK4J_SCALE_COL_MAJOR ? (groups - 1) * ld + rows : (rows - 1) * ld + groups;
        int es = x_dtype == F32 ? 4 : 2;
        void* x = gb_alloc((size_t)(rows * k * es));
        uint8_t* y = gb_alloc((size_t)(rows * k));
        float* scale = gb_alloc((size_t)selems * 4);
        float* xf = malloc((size_t)(rows * k) * 4);
        for (int64_t i = 0; i < rows * k; i++) {
            float v = t_uniform(-1, 1) * ldexpf(1.0f, (int)t_range(-14, 8));
            if (i % 200 == 17) v = NAN;
            if (i % 128 == 5 && (i / 128) % 3 == 1) v = 0; /* leaves room for an all-small group */
            if (x_dtype == F32) ((float*)x)[i] = v;
            else ((uint16_t*)x)[i] = ref_f32_to_bf16(v);
            xf[i] = x_dtype == F32 ? v : ref_bf16_to_f32(((uint16_t*)x)[i]);
        }
        if (rows > 1) /* a row of tiny values: amax below 1e-4 */
            for (int64_t j = 0; j < k; j++) xf[j] = x_dtype == F32 ? (((float*)x)[j] = 1e-7f * (float)(j % 5))
                                                                   : ref_bf16_to_f32(((uint16_t*)x)[j] = ref_f32_to_bf16(1e-7f));
        int32_t group_size = 128;
        int64_t y_bytes = rows * k, scale_bytes = selems * 4, x_bytes = rows * k * es;
#define CALL() dsk4j_fp8_act_quant(ctx, y, y_bytes, scale, scale_bytes, x, x_bytes, x_dtype, rows, k, group_size, flags, scale_ld)
        EXPECT_OK(CALL());
        int bad = 0, bads = 0;
        uint8_t ry[128];
        for (int64_t r = 0; r < rows; r++)
            for (int64_t g = 0; g < groups; g++) {
                float s;
                ref_quant_group(xf + r * k + g * 128, 128, flags & DSK4J_SCALE_UE8M0, ry, &s);
                float gs = flags & DSK4J_SCALE_COL_MAJOR ? scale[g * ld + r] : scale[r * ld + g];
                bads += !same_f32(gs, s);
                bad += memcmp(ry, y + r * k + g * 128, 128) != 0;
            }
        CHECK(bad == 0 && bads == 0, "act_quant variant %d: %d groups' codes, %d scales differ", variant, bad, bads);
        BAD(ctx, NULL);
        BAD(y, NULL);
        BAD(scale, NULL);
        BAD(x, NULL);
        BAD(y_bytes, y_bytes - 1);
        BAD(scale_bytes, scale_bytes - 1);
        BAD(x_bytes, x_bytes - 1);
        BAD(rows, -1);
        BAD(k, -128);
        BAD(k, k + 1);
        BAD(k, k + 128);
        BAD(rows, rows + 1);
        BAD(rows, BIG);
        BAD(k, (INT64_MAX / 128) * 128);
        BAD(scale_ld, -1);
        if ((flags & DSK4J_SCALE_COL_MAJOR ? rows : groups) > 1) BAD(scale_ld, flags & DSK4J_SCALE_COL_MAJOR ? rows - 1 : groups - 1);
        if ((flags & DSK4J_SCALE_COL_MAJOR ? groups : rows) > 1) BAD(scale_ld, BIG);
        BAD(x_dtype, E4M3);
        BAD(x_dtype, F16);
        BAD(flags, 4);
        BADC(DSK4J_ERR_UNSUPPORTED, group_size, 64);
        BAD(y, (void*)x);
        BAD(scale, (float*)((char*)scale + 2));
#undef CALL
        free(xf);
        gb_free_all();
    }
}

static void test_fp8_weight(void) {
    for (int variant = 0; variant < 3; variant++) {
        int32_t w_dtype = variant == 1 ? BF16 : F32, flags = variant == 2 ? DSK4J_SCALE_UE8M0 : 0, block = 128;
        int64_t n = t_range(1, 300), k = t_range(1, 300);
        int64_t nb = (n + 127) / 128, kb = (k + 127) / 128;
        int es = w_dtype == F32 ? 4 : 2;
        void* w = gb_alloc((size_t)(n * k * es));
        uint8_t* y = gb_alloc((size_t)(n * k));
        float* s = gb_alloc((size_t)(nb * kb * 4));
        float* wf = malloc((size_t)(n * k) * 4);
        for (int64_t i = 0; i < n * k; i++) {
            float v = t_uniform(-3, 3);
            if (w_dtype == F32) ((float*)w)[i] = v;
            else ((uint16_t*)w)[i] = ref_f32_to_bf16(v);
            wf[i] = w_dtype == F32 ? v : ref_bf16_to_f32(((uint16_t*)w)[i]);
        }
        int64_t y_bytes = n * k, scale_inv_bytes = nb * kb * 4, w_bytes = n * k * es;
        float* scale_inv = s;
#define CALL() dsk4j_fp8_weight_quant(ctx, y, y_bytes, scale_inv, scale_inv_bytes, w, w_bytes, w_dtype, n, k, block, flags)
        EXPECT_OK(CALL());
        int bad = 0;
        for (int64_t bi = 0; bi < nb; bi++)
            for (int64_t bj = 0; bj < kb; bj++) {
                float amax = 0;
                for (int64_t i = bi * 128; i < n && i < bi * 128 + 128; i++)
                    for (int64_t j = bj * 128; j < k && j < bj * 128 + 128; j++) amax = fmaxf(amax, fabsf(wf[i * k + j]));
                if (!(amax >= 1e-4f)) amax = 1e-4f;
                float sc = amax / 448.0f;
                if (flags) sc = ref_ue8m0(sc);
                bad += !same_f32(s[bi * kb + bj], sc);
                for (int64_t i = bi * 128; i < n && i < bi * 128 + 128; i++)
                    for (int64_t j = bj * 128; j < k && j < bj * 128 + 128; j++)
                        bad += y[i * k + j] != ref_f32_to_fp8(wf[i * k + j] / sc, 0);
            }
        CHECK(bad == 0, "weight_quant variant %d (n %lld, k %lld): %d differences", variant, (long long)n, (long long)k, bad);
        BAD(ctx, NULL);
        BAD(y, NULL);
        BAD(scale_inv, NULL);
        BAD(w, NULL);
        BAD(y_bytes, y_bytes - 1);
        BAD(scale_inv_bytes, scale_inv_bytes - 1);
        BAD(w_bytes, w_bytes - 1);
        BAD(n, -1);
        BAD(k, -1);
        BAD(n, n + 1);
        BAD(n, BIG);
        BAD(k, INT64_MAX);
        BAD(w_dtype, E4M3);
        BAD(flags, DSK4J_SCALE_COL_MAJOR);
        BADC(DSK4J_ERR_UNSUPPORTED, block, 64);
        BAD(y, (void*)w);
#undef CALL

        /* dequant back: y2 = float(w8) * scale_inv, rounded to the output type */
        for (int od = 0; od < 2; od++) {
            int32_t y_dtype = od ? BF16 : F32;
            int oes = od ? 2 : 4;
            void* y2 = gb_alloc((size_t)(n * k * oes));
            uint8_t* w8 = y;
            int64_t y2_bytes = n * k * oes, w8_bytes = n * k;
            w8[0] = 0x7f; /* NaN */
            EXPECT_OK(dsk4j_fp8_weight_dequant(ctx, y2, y2_bytes, y_dtype, w8, w8_bytes, s, scale_inv_bytes, n, k, block));
            int bad2 = 0;
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < k; j++) {
                    float r = ref_e4m3_to_f32(w8[i * k + j]) * s[(i / 128) * kb + j / 128];
                    float g = od ? ref_bf16_to_f32(((uint16_t*)y2)[i * k + j]) : ((float*)y2)[i * k + j];
                    if (od) r = ref_bf16_to_f32(ref_f32_to_bf16(r));
                    bad2 += !same_f32(g, r);
                }
            CHECK(bad2 == 0, "weight_dequant -> %d: %d differences", y_dtype, bad2);
#define CALL() dsk4j_fp8_weight_dequant(ctx, y2, y2_bytes, y_dtype, w8, w8_bytes, scale_inv, scale_inv_bytes, n, k, block)
            BAD(ctx, NULL);
            BAD(y2, NULL);
            BAD(w8, NULL);
            BAD(scale_inv, NULL);
            BAD(y2_bytes, y2_bytes - 1);
            BAD(w8_bytes, w8_bytes - 1);
            BAD(scale_inv_bytes, scale_inv_bytes - 1);
            BAD(n, -5);
            BAD(k, k + 1);
            BAD(k, BIG);
            BAD(y_dtype, E4M3);
            BAD(y_dtype, 17);
            BADC(DSK4J_ERR_UNSUPPORTED, block, 256);
            BAD(y2, (void*)w8);
#undef CALL
        }
        free(wf);
        gb_free_all();
    }
}

/* ======================================================================= gemm */

/* reference of one fp8 block GEMM row/col, in double; *mag = sum of |terms| */
static double ref_fp8_dot(const uint8_t* a, const float* as, int64_t as_cs, const uint8_t* b, const float* bs, int64_t k,
                          double* mag) {
    double acc = 0, m = 0;
    for (int64_t kb = 0; kb < k / 128; kb++) {
        double part = 0, pm = 0;
        for (int64_t t = kb * 128; t < kb * 128 + 128; t++) {
            double p = (double)ref_e4m3_to_f32(a[t]) * ref_e4m3_to_f32(b[t]);
            part += p;
            pm += fabs(p);
        }
        double sc = (double)as[kb * as_cs] * bs[kb];
        acc += part * sc;
        m += pm * fabs(sc);
    }
    *mag = m;
    return acc;
}

static void test_gemm_fp8_block(void) {
    const int64_t ms[] = {1, 2, 3, 17, 40};
    for (int variant = 0; variant < 5; variant++) {
        int64_t m = ms[variant], n = t_range(1, 300), k = 128 * t_range(0, 3), kb = k / 128, nb = (n + 127) / 128;
        int32_t d_dtype = variant & 1 ? BF16 : F32, flags = variant == 3 ? DSK4J_SCALE_COL_MAJOR : 0;
        int64_t a_scale_ld = variant == 4 ? kb + 3 : 0;
        int64_t ld = a_scale_ld ? a_scale_ld : flags ? m : kb;
        int64_t selems = kb == 0 ? 0 : flags ? (kb - 1) * ld + m : (m - 1) * ld + kb;
        int des = d_dtype == F32 ? 4 : 2;
        void* d = gb_alloc((size_t)(m * n * des));
        uint8_t* a = gb_alloc((size_t)(m * k));
        float* a_scale = gb_alloc((size_t)(selems * 4));
        uint8_t* b = gb_alloc((size_t)(n * k));
        float* b_scale = gb_alloc((size_t)(nb * kb * 4));
        float* c = variant == 2 || variant == 4 ? gb_alloc((size_t)(m * n * 4)) : NULL;
        fill_e4m3(a, m * k);
        fill_e4m3(b, n * k);
        t_fill_f32(a_scale, selems, 0.001f, 0.1f);
        t_fill_f32(b_scale, nb * kb, 0.001f, 0.1f);
        if (c) t_fill_f32(c, m * n, -1, 1);
        int64_t d_bytes = m * n * des, a_bytes = m * k, a_scale_bytes = selems * 4, b_bytes = n * k,
                b_scale_bytes = nb * kb * 4, c_bytes = c ? m * n * 4 : 0;
#define CALL() dsk4j_gemm_fp8_block(ctx, d, d_bytes, d_dtype, a, a_bytes, a_scale, a_scale_bytes, b, b_bytes, b_scale, b_scale_bytes, c, c_bytes, m, n, k, flags, a_scale_ld)
        EXPECT_OK(CALL());
        int bad = 0;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double mag;
                const float* as = flags ? a_scale + i : a_scale + i * ld;
                double r = ref_fp8_dot(a + i * k, as, flags ? ld : 1, b + j * k, b_scale + (j / 128) * kb, k, &mag);
                if (c) r += c[i * n + j], mag += fabs(c[i * n + j]);
                double g = d_dtype == F32 ? ((float*)d)[i * n + j] : ref_bf16_to_f32(((uint16_t*)d)[i * n + j]);
                bad += !close_to(g, r, mag + fabs(r), d_dtype == F32 ? 1e-5 : 8e-3);
            }
        CHECK(bad == 0, "gemm_fp8_block variant %d m %lld n %lld k %lld: %d elements off", variant, (long long)m, (long long)n,
              (long long)k, bad);
        BAD(ctx, NULL);
        BAD(d, NULL);
        if (k) {
            BAD(a, NULL);
            BAD(a_scale, NULL);
            BAD(b, NULL);
            BAD(b_scale, NULL);
            BAD(a_bytes, a_bytes - 1);
            BAD(a_scale_bytes, a_scale_bytes - 1);
            BAD(b_bytes, b_bytes - 1);
            BAD(b_scale_bytes, b_scale_bytes - 1);
            BAD(d, (void*)a);
        }
        BAD(d_bytes, d_bytes - 1);
        if (c) BAD(c_bytes, c_bytes - 1);
        BAD(m, -1);
        BAD(n, -1);
        BAD(k, -128);
        BAD(k, k + 64);
        BAD(m, m + 1);
        BAD(n, n + 1);
        BAD(m, BIG);
        BAD(n, INT64_MAX);
        BAD(k, (INT64_MAX / 128) * 128);
        BAD(a_scale_ld, -1);
        if ((flags ? m : kb) > 1) BAD(a_scale_ld, flags ? m - 1 : kb - 1);
        BAD(d_dtype, E4M3);
        BAD(d_dtype, I32);
        BAD(flags, DSK4J_SCALE_UE8M0);
        BAD(d, (void*)((char*)d + 1));
#undef CALL
        if (d_dtype == BF16 && c) {
            /* c aliasing a bf16 d is refused */
            EXPECT_FAILC(INVALID, dsk4j_gemm_fp8_block(ctx, d, d_bytes, d_dtype, a, a_bytes, a_scale, a_scale_bytes, b, b_bytes,
                                                       b_scale, b_scale_bytes, (const float*)d, d_bytes, m, n, k, flags, a_scale_ld));
        }
        gb_free_all();
    }
}

static void test_gemm_bf16(void) {
    for (int variant = 0; variant < 4; variant++) {
        int64_t m = t_range(1, 20), n = t_range(1, 70), k = t_range(0, 300);
        if (variant == 3) m = 1;
        int32_t d_dtype = variant & 1 ? BF16 : F32;
        int des = d_dtype == F32 ? 4 : 2;
        void* d = gb_alloc((size_t)(m * n * des));
        uint16_t* a = gb_alloc((size_t)(m * k * 2));
        uint16_t* b = gb_alloc((size_t)(n * k * 2));
        float* c = variant == 2 ? gb_alloc((size_t)(m * n * 4)) : NULL;
        fill_bf16(a, m * k, -2, 2);
        fill_bf16(b, n * k, -2, 2);
        if (c) t_fill_f32(c, m * n, -1, 1);
        int64_t d_bytes = m * n * des, a_bytes = m * k * 2, b_bytes = n * k * 2, c_bytes = c ? m * n * 4 : 0;
#define CALL() dsk4j_gemm_bf16(ctx, d, d_bytes, d_dtype, a, a_bytes, b, b_bytes, c, c_bytes, m, n, k)
        EXPECT_OK(CALL());
        int bad = 0;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double r = 0, mag = 0;
                for (int64_t t = 0; t < k; t++) {
                    double p = (double)ref_bf16_to_f32(a[i * k + t]) * ref_bf16_to_f32(b[j * k + t]);
                    r += p;
                    mag += fabs(p);
                }
                if (c) r += c[i * n + j], mag += fabs(c[i * n + j]);
                double g = d_dtype == F32 ? ((float*)d)[i * n + j] : ref_bf16_to_f32(((uint16_t*)d)[i * n + j]);
                bad += !close_to(g, r, mag + fabs(r), d_dtype == F32 ? 1e-5 : 8e-3);
            }
        CHECK(bad == 0, "gemm_bf16 variant %d m %lld n %lld k %lld: %d elements off", variant, (long long)m, (long long)n,
              (long long)k, bad);
        BAD(ctx, NULL);
        BAD(d, NULL);
        if (k) {
            BAD(a, NULL);
            BAD(b, NULL);
            BAD(a_bytes, a_bytes - 1);
            BAD(b_bytes, b_bytes - 1);
            BAD(a, (uint16_t*)((char*)a + 1));
            BAD(k, k + 1);
            BAD(d, (void*)b);
        }
        BAD(d_bytes, d_bytes - 1);
        if (c) BAD(c_bytes, c_bytes - 1);
        BAD(m, -1);
        BAD(n, -1);
        BAD(k, -1);
        BAD(m, m + 1);
        BAD(m, BIG);
        BAD(k, INT64_MAX);
        BAD(d_dtype, F16);
#undef CALL
        gb_free_all();
    }
}

/* gemm.f32: a f32 [m,k], b f32|bf16 [n,k], d f32 [m,n] = a b^T (+ c); c NULL, separate, or d itself.
 * Checked against a double reference with the f32 tolerance of the other gemms, k = 0 exactly
 * (d = c or 0), and a second call giving the same bits (the cpu backend's fixed K order). */
static void test_gemm_f32(void) {
    for (int variant = 0; variant < 8; variant++) {
        /* 0: b f32; 1: b bf16 + c; 2: b f32, c == d; 3: b bf16, decode m <= 8; 4: b f32 + c, decode;
         * 5: b bf16, c == d, decode; 6: k = 0 with c; 7: k = 0 without c */
        int64_t m = variant >= 3 && variant <= 5 ? t_range(1, 8) : t_range(1, 40), n = t_range(1, 90), k = t_range(1, 300);
        if (variant >= 6) k = 0;
        int32_t b_dtype = variant == 1 || variant == 3 || variant == 5 || variant == 6 ? BF16 : F32;
        int bes = b_dtype == F32 ? 4 : 2;
        int c_mode = variant == 1 || variant == 4 || variant == 6 ? 1 : variant == 2 || variant == 5 ? 2 : 0;
        float* d = gb_alloc((size_t)(m * n * 4));
        float* a = gb_alloc((size_t)(m * k * 4));
        void* b = gb_alloc((size_t)(n * k * bes));
        float* c = c_mode == 1 ? gb_alloc((size_t)(m * n * 4)) : c_mode == 2 ? d : NULL;
        t_fill_f32(a, m * k, -2, 2);
        if (b_dtype == F32)
            t_fill_f32(b, n * k, -2, 2);
        else
            fill_bf16(b, n * k, -2, 2);
        float* c0 = malloc((size_t)(m * n * 4)); /* the addend before the call (c may be d) */
        t_fill_f32(c0, m * n, -1, 1);
        if (c) memcpy(c, c0, (size_t)(m * n * 4));
        float* bw = b_dtype == F32 ? NULL : bf16_widen(b, n * k);
        const float* bf = b_dtype == F32 ? (const float*)b : bw;
        int64_t d_bytes = m * n * 4, a_bytes = m * k * 4, b_bytes = n * k * bes, c_bytes = c ? m * n * 4 : 0;
#define CALL() dsk4j_gemm_f32(ctx, d, d_bytes, a, a_bytes, b, b_bytes, b_dtype, c, c_bytes, m, n, k)
        EXPECT_OK(CALL());
        int bad = 0;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double r = 0, mag = 0;
                for (int64_t t = 0; t < k; t++) {
                    double p = (double)a[i * k + t] * bf[j * k + t];
                    r += p;
                    mag += fabs(p);
                }
                if (c) r += c0[i * n + j], mag += fabs(c0[i * n + j]);
                float g = d[i * n + j];
                /* k = 0: d is c (or 0) exactly */
                bad += k == 0 ? !same_f32(g, c ? c0[i * n + j] : 0.0f) : !close_to(g, r, mag + fabs(r), 1e-5);
            }
        CHECK(bad == 0, "gemm_f32 variant %d m %lld n %lld k %lld: %d elements off", variant, (long long)m, (long long)n,
              (long long)k, bad);
        /* the same bits again (in place: from the same addend) */
        float* first = malloc((size_t)d_bytes);
        memcpy(first, d, (size_t)d_bytes);
        if (c) memcpy(c, c0, (size_t)(m * n * 4));
        EXPECT_OK(CALL());
        CHECK(memcmp(first, d, (size_t)d_bytes) == 0, "gemm_f32 variant %d: a second call gave other bits", variant);
        free(first);

        BAD(ctx, NULL);
        BAD(d, NULL);
        if (k) {
            BAD(a, NULL);
            BAD(b, NULL);
            BAD(a_bytes, a_bytes - 1);
            BAD(b_bytes, b_bytes - 1);
            BAD(a, (float*)((char*)a + 1));
            BAD(b, (void*)((char*)b + 1));
            BAD(k, k + 1);
            BAD(d, (float*)a);
            if (b_dtype == F32) BAD(d, (float*)b);
            if (b_dtype == BF16) BAD(b_dtype, F32); /* b's capacity is half of what f32 needs */
        }
        BAD(d_bytes, d_bytes - 1);
        BAD(d, (float*)((char*)d + 2));
        if (c) {
            BAD(c_bytes, c_bytes - 1);
            BAD(c, (float*)((char*)c + 1));
        }
        BAD(m, -1);
        BAD(n, -1);
        BAD(k, -1);
        BAD(m, m + 1);
        BAD(n, n + 1);
        BAD(m, BIG);
        BAD(n, INT64_MAX);
        BAD(k, INT64_MAX);
        BAD(m, INT64_MIN);
        BAD(b_dtype, E4M3);
        BAD(b_dtype, F16);
        BAD(b_dtype, I32);
        BAD(b_dtype, -1);
        BAD(b_dtype, 1000);
#undef CALL
        /* c overlapping d without being d: refused (d given room for a shifted c) */
        float* d2 = gb_alloc((size_t)(m * n * 4 + 4));
        EXPECT_FAILC(INVALID, dsk4j_gemm_f32(ctx, d2, d_bytes, a, a_bytes, b, b_bytes, b_dtype, d2 + 1, d_bytes, m, n, k));
        free(bw);
        free(c0);
        gb_free_all();
    }

    /* m = 0 or n = 0: nothing to write, the empty operands may be NULL; the other is still checked */
    int64_t n = t_range(1, 40), k = t_range(1, 40);
    float* b = gb_alloc((size_t)(n * k * 4));
    float* a = gb_alloc((size_t)(n * k * 4));
    t_fill_f32(b, n * k, -1, 1);
    t_fill_f32(a, n * k, -1, 1);
    EXPECT_OK(dsk4j_gemm_f32(ctx, NULL, 0, NULL, 0, b, n * k * 4, F32, NULL, 0, 0, n, k));
    EXPECT_OK(dsk4j_gemm_f32(ctx, NULL, 0, NULL, 0, b, n * k * 2, BF16, NULL, 0, 0, n, k));
    EXPECT_OK(dsk4j_gemm_f32(ctx, NULL, 0, a, n * k * 4, NULL, 0, F32, NULL, 0, n, 0, k));
    EXPECT_OK(dsk4j_gemm_f32(ctx, NULL, 0, NULL, 0, NULL, 0, BF16, NULL, 0, 0, 0, k));
    EXPECT_OK(dsk4j_gemm_f32(ctx, NULL, 0, NULL, 0, NULL, 0, F32, NULL, 0, 0, 0, 0));
    EXPECT_FAILC(INVALID, dsk4j_gemm_f32(ctx, NULL, 0, NULL, 0, b, n * k * 4 - 1, F32, NULL, 0, 0, n, k));
    EXPECT_FAILC(INVALID, dsk4j_gemm_f32(ctx, NULL, 0, NULL, 0, NULL, 0, F32, NULL, 0, 0, n, k));
    EXPECT_FAILC(INVALID, dsk4j_gemm_f32(ctx, NULL, 0, a, n * k * 4 - 1, NULL, 0, F32, NULL, 0, n, 0, k));
    EXPECT_FAILC(INVALID, dsk4j_gemm_f32(ctx, NULL, 0, NULL, 0, b, n * k * 4, E5M2, NULL, 0, 0, n, k));
    /* sizes whose byte counts overflow int64 although the element counts do not */
    EXPECT_FAILC(INVALID, dsk4j_gemm_f32(ctx, NULL, 0, NULL, 0, b, 16, BF16, NULL, 0, 0, INT64_MAX / 3, 2));
    EXPECT_FAILC(INVALID, dsk4j_gemm_f32(ctx, NULL, 0, a, 16, NULL, 0, F32, NULL, 0, INT64_MAX / 3, 0, 2));
    EXPECT_FAILC(INVALID, dsk4j_gemm_f32(ctx, (float*)b, 16, NULL, 0, NULL, 0, F32, NULL, 0, INT64_MAX / 3, 2, 0));
    /* m = 0, k = 0, n at INT64_MAX: every size is 0, a valid empty call */
    EXPECT_OK(dsk4j_gemm_f32(ctx, NULL, 0, NULL, 0, NULL, 0, F32, NULL, 0, 0, INT64_MAX, 0));
    gb_free_all();
}

static void test_gemm_grouped(void) {
    for (int variant = 0; variant < 2; variant++) {
        int32_t d_dtype = variant ? BF16 : F32;
        int des = variant ? 2 : 4;
        int64_t groups = 3, n = t_range(1, 140), k = 128 * t_range(1, 2), kb = k / 128, nb = (n + 127) / 128;
        /* contiguous: offsets {0, 3, 3, 7}, m = 9: rows 7 and 8 belong to no group and stay unwritten */
        int64_t m = 9;
        int32_t* group_offsets = gb_alloc(16);
        group_offsets[0] = 0, group_offsets[1] = 3, group_offsets[2] = 3, group_offsets[3] = 7;
        void* d = gb_alloc((size_t)(m * n * des));
        uint8_t* a = gb_alloc((size_t)(m * k));
        float* a_scale = gb_alloc((size_t)(m * kb * 4));
        uint8_t* b = gb_alloc((size_t)(groups * n * k));
        float* b_scale = gb_alloc((size_t)(groups * nb * kb * 4));
        fill_e4m3(a, m * k);
        fill_e4m3(b, groups * n * k);
        t_fill_f32(a_scale, m * kb, 0.01f, 0.1f);
        t_fill_f32(b_scale, groups * nb * kb, 0.01f, 0.1f);
        int64_t d_bytes = m * n * des, a_bytes = m * k, a_scale_bytes = m * kb * 4, b_bytes = groups * n * k,
                b_scale_bytes = groups * nb * kb * 4, group_offsets_bytes = 16;
#define CALL() dsk4j_gemm_fp8_grouped_contiguous(ctx, d, d_bytes, d_dtype, a, a_bytes, a_scale, a_scale_bytes, b, b_bytes, b_scale, b_scale_bytes, group_offsets, group_offsets_bytes, groups, m, n, k)
        EXPECT_OK(CALL());
        int bad = 0;
        for (int64_t g = 0; g < groups; g++)
            for (int64_t i = group_offsets[g]; i < group_offsets[g + 1]; i++)
                for (int64_t j = 0; j < n; j++) {
                    double mag;
                    double r = ref_fp8_dot(a + i * k, a_scale + i * kb, 1, b + (g * n + j) * k, b_scale + (g * nb + j / 128) * kb, k, &mag);
                    double got = variant ? ref_bf16_to_f32(((uint16_t*)d)[i * n + j]) : ((float*)d)[i * n + j];
                    bad += !close_to(got, r, mag + fabs(r), variant ? 8e-3 : 1e-5);
                }
        for (int64_t i = 7 * n * des; i < m * n * des; i++) bad += ((uint8_t*)d)[i] != 0xCD;
        CHECK(bad == 0, "grouped_contiguous: %d elements off or rows outside the groups written", bad);
        BAD(ctx, NULL);
        BAD(d, NULL);
        BAD(a, NULL);
        BAD(a_scale, NULL);
        BAD(b, NULL);
        BAD(b_scale, NULL);
        BAD(group_offsets, NULL);
        BAD(d_bytes, d_bytes - 1);
        BAD(a_bytes, a_bytes - 1);
        BAD(a_scale_bytes, a_scale_bytes - 1);
        BAD(b_bytes, b_bytes - 1);
        BAD(b_scale_bytes, b_scale_bytes - 1);
        BAD(group_offsets_bytes, group_offsets_bytes - 1);
        BAD(groups, -1);
        BAD(groups, groups + 1);
        BAD(groups, BIG);
        BAD(m, -1);
        BAD(m, (int64_t)INT32_MAX + 1);
        BAD(n, n + 1);
        BAD(k, k + 1);
        BAD(k, (INT64_MAX / 128) * 128);
        BAD(d_dtype, E4M3);
        BAD(m, 6); /* offsets[3] = 7 > m */
#undef CALL
        /* bad offsets contents: negative, decreasing, past m */
        const int32_t bad_offsets[3][4] = {{-1, 3, 3, 7}, {0, 5, 3, 7}, {0, 3, 3, 10}};
        for (int t = 0; t < 3; t++) {
            memcpy(group_offsets, bad_offsets[t], 16);
            EXPECT_FAILC(INVALID, dsk4j_gemm_fp8_grouped_contiguous(ctx, d, d_bytes, d_dtype, a, a_bytes, a_scale, a_scale_bytes, b, b_bytes, b_scale, b_scale_bytes, group_offsets, group_offsets_bytes, groups, m, n, k));
        }

        /* masked: groups 2, m_max 4, masked_m {3, 0} */
        int64_t mg = 2, m_max = 4;
        int32_t* masked_m = gb_alloc(8);
        masked_m[0] = 3, masked_m[1] = 0;
        void* d2 = gb_alloc((size_t)(mg * m_max * n * des));
        uint8_t* a2 = gb_alloc((size_t)(mg * m_max * k));
        float* s2 = gb_alloc((size_t)(mg * m_max * kb * 4));
        fill_e4m3(a2, mg * m_max * k);
        t_fill_f32(s2, mg * m_max * kb, 0.01f, 0.1f);
        int64_t d2_bytes = mg * m_max * n * des, a2_bytes = mg * m_max * k, s2_bytes = mg * m_max * kb * 4,
                b2_bytes = mg * n * k, bs2_bytes = mg * nb * kb * 4, masked_m_bytes = 8;
#undef CALL
#define CALL() dsk4j_gemm_fp8_grouped_masked(ctx, d2, d2_bytes, d_dtype, a2, a2_bytes, s2, s2_bytes, b, b2_bytes, b_scale, bs2_bytes, masked_m, masked_m_bytes, mg, m_max, n, k)
        EXPECT_OK(CALL());
        bad = 0;
        for (int64_t g = 0; g < mg; g++)
            for (int64_t i = 0; i < m_max; i++)
                for (int64_t j = 0; j < n; j++) {
                    int64_t row = g * m_max + i;
                    if (i >= masked_m[g]) {
                        for (int q = 0; q < des; q++) bad += ((uint8_t*)d2)[(row * n + j) * des + q] != 0xCD;
                        continue;
                    }
                    double mag;
                    double r = ref_fp8_dot(a2 + row * k, s2 + row * kb, 1, b + (g * n + j) * k, b_scale + (g * nb + j / 128) * kb, k, &mag);
                    double got = variant ? ref_bf16_to_f32(((uint16_t*)d2)[row * n + j]) : ((float*)d2)[row * n + j];
                    bad += !close_to(got, r, mag + fabs(r), variant ? 8e-3 : 1e-5);
                }
        CHECK(bad == 0, "grouped_masked: %d elements off or masked rows written", bad);
        BAD(ctx, NULL);
        BAD(d2, NULL);
        BAD(masked_m, NULL);
        BAD(d2_bytes, d2_bytes - 1);
        BAD(a2_bytes, a2_bytes - 1);
        BAD(s2_bytes, s2_bytes - 1);
        BAD(b2_bytes, b2_bytes - 1);
        BAD(bs2_bytes, bs2_bytes - 1);
        BAD(masked_m_bytes, masked_m_bytes - 1);
        BAD(mg, -1);
        BAD(mg, mg + 1);
        BAD(m_max, -1);
        BAD(m_max, m_max + 1);
        BAD(m_max, (int64_t)INT32_MAX + 1);
        BAD(mg, BIG);
        BAD(k, 64);
        BAD(d_dtype, BF16 + F32 + 7);
#undef CALL
        masked_m[0] = 5;
        EXPECT_FAILC(INVALID, dsk4j_gemm_fp8_grouped_masked(ctx, d2, d2_bytes, d_dtype, a2, a2_bytes, s2, s2_bytes, b, b2_bytes, b_scale, bs2_bytes, masked_m, masked_m_bytes, mg, m_max, n, k));
        masked_m[0] = -1;
        EXPECT_FAILC(INVALID, dsk4j_gemm_fp8_grouped_masked(ctx, d2, d2_bytes, d_dtype, a2, a2_bytes, s2, s2_bytes, b, b2_bytes, b_scale, bs2_bytes, masked_m, masked_m_bytes, mg, m_max, n, k));
        gb_free_all();
    }
}

/* ======================================================================= rope */

static void ref_yarn_freqs(double* f, int64_t dim, double theta, double factor, int64_t orig, int64_t max_len, double bf,
                           double bs) {
    for (int64_t i = 0; i < dim / 2; i++) f[i] = pow(theta, -2.0 * (double)i / (double)dim);
    if (max_len > orig) {
        const double PI = 3.14159265358979323846;
        double cdf = dim * log(orig / (2 * PI * bf)) / (2 * log(theta));
        double cds = dim * log(orig / (2 * PI * bs)) / (2 * log(theta));
        double low = fmax(floor(cdf), 0), high = fmin(ceil(cds), dim - 1);
        if (low == high) high += 0.001;
        for (int64_t i = 0; i < dim / 2; i++) {
            double r = ((double)i - low) / (high - low);
            r = r < 0 ? 0 : r > 1 ? 1 : r;
            f[i] = f[i] / factor * r + f[i] * (1 - r);
        }
    }
}

static void test_rope(void) {
    for (int variant = 0; variant < 4; variant++) {
        int64_t dim = 2 * t_range(1, 40), half = dim / 2, max_seq_len = t_range(1, 70), original_seq_len = variant & 1 ? 16 : 4096;
        double theta = 10000, factor = 40, beta_fast = 32, beta_slow = 1;
        float* cos_table = gb_alloc((size_t)(max_seq_len * half * 4));
        float* sin_table = gb_alloc((size_t)(max_seq_len * half * 4));
        int64_t cos_bytes = max_seq_len * half * 4, sin_bytes = cos_bytes;
#define CALL() dsk4j_rope_yarn_table(ctx, cos_table, cos_bytes, sin_table, sin_bytes, dim, theta, factor, original_seq_len, max_seq_len, beta_fast, beta_slow)
        EXPECT_OK(CALL());
        double f[1024];
        ref_yarn_freqs(f, dim, theta, factor, original_seq_len, max_seq_len, beta_fast, beta_slow);
        int bad = 0;
        for (int64_t t = 0; t < max_seq_len; t++)
            for (int64_t i = 0; i < half; i++) {
                bad += fabs(cos_table[t * half + i] - cos((double)t * f[i])) > 2e-7;
                bad += fabs(sin_table[t * half + i] - sin((double)t * f[i])) > 2e-7;
            }
        CHECK(bad == 0, "yarn_table dim %lld len %lld: %d values off", (long long)dim, (long long)max_seq_len, bad);
        BAD(ctx, NULL);
        BAD(cos_table, NULL);
        BAD(sin_table, NULL);
        BAD(cos_bytes, cos_bytes - 1);
        BAD(sin_bytes, sin_bytes - 1);
        BAD(dim, dim + 1);
        BAD(dim, 0);
        BAD(dim, 1026);
        BAD(dim, -2);
        BAD(theta, 1.0);
        BAD(theta, NAN);
        BAD(factor, 0.5);
        BAD(factor, INFINITY);
        BAD(beta_fast, 0.0);
        BAD(beta_slow, -1.0);
        BAD(original_seq_len, 0);
        BAD(max_seq_len, -1);
        BAD(max_seq_len, (int64_t)INT32_MAX + 2);
        BAD(max_seq_len, max_seq_len + 1);
        BAD(sin_table, cos_table);
#undef CALL

        /* apply on random x with the table just made, f32 and bf16, both layouts, in place too */
        int32_t dtype = variant < 2 ? F32 : BF16, layout = variant & 1 ? DSK4J_ROPE_NEOX : DSK4J_ROPE_INTERLEAVED;
        int es = dtype == F32 ? 4 : 2;
        int64_t tokens = t_range(1, 6), heads = t_range(1, 4), numel = tokens * heads * dim;
        void* x = gb_alloc((size_t)(numel * es));
        void* y = gb_alloc((size_t)(numel * es));
        int32_t* positions = gb_alloc((size_t)(tokens * 4));
        for (int64_t t = 0; t < tokens; t++) positions[t] = (int32_t)t_range(0, max_seq_len - 1);
        if (dtype == F32) t_fill_f32(x, numel, -3, 3);
        else fill_bf16(x, numel, -3, 3);
        int64_t x_bytes = numel * es, y_bytes = x_bytes, positions_bytes = tokens * 4;
#define CALL() dsk4j_rope_apply(ctx, y, y_bytes, x, x_bytes, dtype, positions, positions_bytes, cos_table, cos_bytes, sin_table, sin_bytes, tokens, heads, dim, max_seq_len, layout)
        EXPECT_OK(CALL());
        bad = 0;
        for (int64_t t = 0; t < tokens; t++)
            for (int64_t h = 0; h < heads; h++)
                for (int64_t j = 0; j < half; j++) {
                    int64_t base = (t * heads + h) * dim, i0 = layout ? base + j : base + 2 * j, i1 = layout ? i0 + half : i0 + 1;
                    float c = cos_table[positions[t] * half + j], s = sin_table[positions[t] * half + j];
                    float x0 = dtype == F32 ? ((float*)x)[i0] : ref_bf16_to_f32(((uint16_t*)x)[i0]);
                    float x1 = dtype == F32 ? ((float*)x)[i1] : ref_bf16_to_f32(((uint16_t*)x)[i1]);
                    float y0 = fmaf(x0, c, -(x1 * s)), y1 = fmaf(x1, c, x0 * s);
                    if (dtype == F32) {
                        bad += !same_f32(((float*)y)[i0], y0) + !same_f32(((float*)y)[i1], y1);
                    } else {
                        bad += (((uint16_t*)y)[i0] != ref_f32_to_bf16(y0)) + (((uint16_t*)y)[i1] != ref_f32_to_bf16(y1));
                    }
                }
        CHECK(bad == 0, "rope_apply variant %d: %d values differ", variant, bad);
        /* in place gives the same bits */
        EXPECT_OK(dsk4j_rope_apply(ctx, x, x_bytes, x, x_bytes, dtype, positions, positions_bytes, cos_table, cos_bytes, sin_table,
                                   sin_bytes, tokens, heads, dim, max_seq_len, layout));
        CHECK(memcmp(x, y, (size_t)x_bytes) == 0, "rope_apply in place differs");
        BAD(ctx, NULL);
        BAD(y, NULL);
        BAD(x, NULL);
        BAD(positions, NULL);
        BAD(cos_table, NULL);
        BAD(sin_table, NULL);
        BAD(y_bytes, y_bytes - 1);
        BAD(x_bytes, x_bytes - 1);
        BAD(positions_bytes, positions_bytes - 1);
        BAD(cos_bytes, cos_bytes - 1);
        BAD(sin_bytes, sin_bytes - 1);
        BAD(dtype, F16);
        BAD(layout, 2);
        BAD(tokens, -1);
        BAD(tokens, tokens + 1);
        BAD(heads, -1);
        BAD(heads, BIG);
        BAD(dim, dim + 2);
        BAD(dim, 3);
        BAD(max_seq_len, max_seq_len + 1);
        BAD(max_seq_len, -1);
        BAD(y, (void*)((char*)x + es)); /* partial overlap */
        BAD(y, (void*)cos_table);
#undef CALL
        positions[tokens - 1] = (int32_t)max_seq_len;
        EXPECT_FAILC(INVALID, dsk4j_rope_apply(ctx, y, y_bytes, x, x_bytes, dtype, positions, positions_bytes, cos_table, cos_bytes, sin_table, sin_bytes, tokens, heads, dim, max_seq_len, layout));
        positions[tokens - 1] = -1;
        EXPECT_FAILC(INVALID, dsk4j_rope_apply(ctx, y, y_bytes, x, x_bytes, dtype, positions, positions_bytes, cos_table, cos_bytes, sin_table, sin_bytes, tokens, heads, dim, max_seq_len, layout));
        gb_free_all();
    }
}

/* ======================================================================= mla */

#define LAT DSK4J_MLA_LATENT
#define ROPE DSK4J_MLA_ROPE
#define PAGE DSK4J_MLA_PAGE_TOKENS

static void test_mla_cache(void) {
    const int64_t tb[3] = {2304, 1152, 656};
    for (int f = 0; f < 3; f++) {
        int64_t v = 0;
        EXPECT_OK(dsk4j_mla_cache_token_bytes(&v, f));
        CHECK(v == tb[f], "token bytes of format %d: %lld", f, (long long)v);
    }
    EXPECT_FAILC(INVALID, dsk4j_mla_cache_token_bytes(NULL, 0));
    int64_t tmp;
    EXPECT_FAILC(INVALID, dsk4j_mla_cache_token_bytes(&tmp, 3));
    EXPECT_FAILC(INVALID, dsk4j_mla_cache_token_bytes(&tmp, -1));

    for (int variant = 0; variant < 6; variant++) {
        int32_t format = variant % 3, dtype = variant < 3 ? F32 : BF16;
        int es = dtype == F32 ? 4 : 2;
        int64_t batch = 2, max_pages = 2, num_pages = 4, tokens = 5, tbytes = tb[format];
        void* cache = gb_alloc((size_t)(num_pages * PAGE * tbytes));
        void* kv_latent = gb_alloc((size_t)(tokens * LAT * es));
        void* k_pe = gb_alloc((size_t)(tokens * ROPE * es));
        int32_t* seq_ids = gb_alloc((size_t)(tokens * 4));
        int32_t* positions = gb_alloc((size_t)(tokens * 4));
        int32_t* block_table = gb_alloc((size_t)(batch * max_pages * 4));
        block_table[0] = 2, block_table[1] = 0, block_table[2] = 1, block_table[3] = 3;
        const int32_t sq[5] = {0, 1, 0, 1, 0}, ps[5] = {0, 3, 70, 127, 64};
        memcpy(seq_ids, sq, sizeof sq);
        memcpy(positions, ps, sizeof ps);
        if (dtype == F32) {
            t_fill_f32(kv_latent, tokens * LAT, -2, 2);
            t_fill_f32(k_pe, tokens * ROPE, -2, 2);
        } else {
            fill_bf16(kv_latent, tokens * LAT, -2, 2);
            fill_bf16(k_pe, tokens * ROPE, -2, 2);
        }
        int64_t cache_bytes = num_pages * PAGE * tbytes, kv_latent_bytes = tokens * LAT * es, k_pe_bytes = tokens * ROPE * es,
                seq_ids_bytes = tokens * 4, positions_bytes = tokens * 4, block_table_bytes = batch * max_pages * 4;
#define CALL() dsk4j_mla_cache_append(ctx, cache, cache_bytes, format, kv_latent, kv_latent_bytes, k_pe, k_pe_bytes, dtype, seq_ids, seq_ids_bytes, positions, positions_bytes, block_table, block_table_bytes, batch, max_pages, num_pages, tokens)
        EXPECT_OK(CALL());
        int bad = 0;
        int written[4 * 64] = {0};
        for (int64_t t = 0; t < tokens; t++) {
            int64_t page = block_table[seq_ids[t] * max_pages + positions[t] / PAGE], slot = page * PAGE + positions[t] % PAGE;
            written[slot] = 1;
            const uint8_t* tok = (const uint8_t*)cache + slot * tbytes;
            float lat[LAT], rope[ROPE];
            for (int i = 0; i < LAT; i++)
                lat[i] = dtype == F32 ? ((float*)kv_latent)[t * LAT + i] : ref_bf16_to_f32(((uint16_t*)kv_latent)[t * LAT + i]);
            for (int i = 0; i < ROPE; i++)
                rope[i] = dtype == F32 ? ((float*)k_pe)[t * ROPE + i] : ref_bf16_to_f32(((uint16_t*)k_pe)[t * ROPE + i]);
            if (format == DSK4J_MLA_CACHE_F32) {
                bad += memcmp(tok, lat, LAT * 4) != 0 || memcmp(tok + LAT * 4, rope, ROPE * 4) != 0;
            } else if (format == DSK4J_MLA_CACHE_BF16) {
                for (int i = 0; i < LAT; i++) bad += ((const uint16_t*)tok)[i] != ref_f32_to_bf16(lat[i]);
                for (int i = 0; i < ROPE; i++) bad += ((const uint16_t*)tok)[LAT + i] != ref_f32_to_bf16(rope[i]);
            } else {
                uint8_t ry[128];
                for (int g = 0; g < 4; g++) {
                    float s, gs;
                    ref_quant_group(lat + g * 128, 128, 1, ry, &s);
                    memcpy(&gs, tok + LAT + g * 4, 4);
                    bad += memcmp(ry, tok + g * 128, 128) != 0 || !same_f32(s, gs);
                }
                for (int i = 0; i < ROPE; i++) {
                    uint16_t v;
                    memcpy(&v, tok + LAT + 16 + 2 * i, 2);
                    bad += v != ref_f32_to_bf16(rope[i]);
                }
            }
        }
        for (int s = 0; s < 4 * 64; s++)
            if (!written[s])
                for (int64_t i = 0; i < tbytes; i++) bad += ((uint8_t*)cache)[s * tbytes + i] != 0xCD;
        CHECK(bad == 0, "cache_append format %d dtype %d: %d differences", format, dtype, bad);
        BAD(ctx, NULL);
        BAD(cache, NULL);
        BAD(kv_latent, NULL);
        BAD(k_pe, NULL);
        BAD(seq_ids, NULL);
        BAD(positions, NULL);
        BAD(block_table, NULL);
        BAD(cache_bytes, cache_bytes - 1);
        BAD(kv_latent_bytes, kv_latent_bytes - 1);
        BAD(k_pe_bytes, k_pe_bytes - 1);
        BAD(seq_ids_bytes, seq_ids_bytes - 1);
        BAD(positions_bytes, positions_bytes - 1);
        BAD(block_table_bytes, block_table_bytes - 1);
        BAD(format, 3);
        BAD(dtype, E4M3);
        BAD(batch, -1);
        BAD(batch, 0);
        BAD(batch, 1); /* seq_ids[1] = 1 */
        BAD(max_pages, 1);
        BAD(max_pages, -1);
        BAD(max_pages, BIG);
        BAD(num_pages, 3); /* page 3 used */
        BAD(num_pages, BIG);
        BAD(tokens, tokens + 1);
        BAD(tokens, -1);
        BAD(tokens, BIG);
        BAD(kv_latent, cache);
#undef CALL
        gb_free_all();
    }
}

/* reference decode of one query row: q [576] against visible cache tokens read as floats */
static void test_mla_decode(void) {
    for (int variant = 0; variant < 6; variant++) {
        int32_t format = variant % 3, dtype = variant < 3 ? F32 : BF16, flags = variant & 1 ? DSK4J_MLA_CAUSAL : 0;
        int es = dtype == F32 ? 4 : 2;
        int64_t batch = 3, sq = 2, heads = 3, max_pages = 2, num_pages = 4, rows = batch * sq * heads;
        int64_t tbytes = format == 0 ? 2304 : format == 1 ? 1152 : 656;
        float softmax_scale = 0.0625f;
        /* fill the cache through cache_append from random f32 tokens: every slot of every page */
        void* cache = gb_alloc((size_t)(num_pages * PAGE * tbytes));
        {
            int64_t nt = num_pages * PAGE;
            float* lat = malloc((size_t)(nt * LAT * 4));
            float* rp = malloc((size_t)(nt * ROPE * 4));
            int32_t* sid = malloc((size_t)nt * 4);
            int32_t* pos = malloc((size_t)nt * 4);
            int32_t bt[4] = {0, 1, 2, 3};
            t_fill_f32(lat, nt * LAT, -1, 1);
            t_fill_f32(rp, nt * ROPE, -1, 1);
            for (int64_t t = 0; t < nt; t++) sid[t] = (int32_t)(t / (2 * PAGE)), pos[t] = (int32_t)(t % (2 * PAGE));
            EXPECT_OK(dsk4j_mla_cache_append(ctx, cache, num_pages * PAGE * tbytes, format, lat, nt * LAT * 4, rp, nt * ROPE * 4, F32,
                                             sid, nt * 4, pos, nt * 4, bt, 16, 2, 2, num_pages, nt));
            free(lat), free(rp), free(sid), free(pos);
        }
        int32_t* block_table = gb_alloc((size_t)(batch * max_pages * 4));
        const int32_t bt[6] = {3, 1, 0, 2, 2, 9}; /* sequence 2 uses only its first page: entry 9 never read */
        memcpy(block_table, bt, sizeof bt);
        int32_t* seq_lens = gb_alloc((size_t)(batch * 4));
        seq_lens[0] = 100, seq_lens[1] = 0, seq_lens[2] = 2;
        void* o_latent = gb_alloc((size_t)(rows * LAT * es));
        float* lse = gb_alloc((size_t)(rows * 4));
        void* q_latent = gb_alloc((size_t)(rows * LAT * es));
        void* q_pe = gb_alloc((size_t)(rows * ROPE * es));
        if (dtype == F32) {
            t_fill_f32(q_latent, rows * LAT, -1, 1);
            t_fill_f32(q_pe, rows * ROPE, -1, 1);
        } else {
            fill_bf16(q_latent, rows * LAT, -1, 1);
            fill_bf16(q_pe, rows * ROPE, -1, 1);
        }
        int64_t o_latent_bytes = rows * LAT * es, lse_bytes = rows * 4, q_latent_bytes = o_latent_bytes, q_pe_bytes = rows * ROPE * es,
                cache_bytes = num_pages * PAGE * tbytes, block_table_bytes = batch * max_pages * 4, seq_lens_bytes = batch * 4;
#define CALL() dsk4j_mla_decode(ctx, o_latent, o_latent_bytes, lse, lse_bytes, q_latent, q_latent_bytes, q_pe, q_pe_bytes, dtype, cache, cache_bytes, format, block_table, block_table_bytes, seq_lens, seq_lens_bytes, batch, sq, heads, max_pages, num_pages, softmax_scale, flags)
        EXPECT_OK(CALL());
        int bad = 0;
        double* lg = malloc(128 * sizeof(double));
        for (int64_t b = 0; b < batch; b++)
            for (int64_t s = 0; s < sq; s++)
                for (int64_t h = 0; h < heads; h++) {
                    int64_t r = (b * sq + s) * heads + h, L = seq_lens[b], vis = flags ? L - sq + s + 1 : L;
                    if (L == 0) vis = 0;
                    float q[LAT + ROPE];
                    for (int i = 0; i < LAT; i++)
                        q[i] = dtype == F32 ? ((float*)q_latent)[r * LAT + i] : ref_bf16_to_f32(((uint16_t*)q_latent)[r * LAT + i]);
                    for (int i = 0; i < ROPE; i++)
                        q[LAT + i] = dtype == F32 ? ((float*)q_pe)[r * ROPE + i] : ref_bf16_to_f32(((uint16_t*)q_pe)[r * ROPE + i]);
                    double mx = -INFINITY, o[LAT] = {0}, sum = 0;
                    for (int64_t p = 0; p < vis; p++) {
                        const uint8_t* tok = (const uint8_t*)cache + (block_table[b * max_pages + p / PAGE] * PAGE + p % PAGE) * tbytes;
                        double dot = 0;
                        for (int i = 0; i < LAT + ROPE; i++) {
                            float kv;
                            if (format == 0) memcpy(&kv, tok + 4 * i, 4);
                            else if (format == 1) { uint16_t u; memcpy(&u, tok + 2 * i, 2); kv = ref_bf16_to_f32(u); }
                            else if (i < LAT) { float sc; memcpy(&sc, tok + LAT + (i / 128) * 4, 4); kv = ref_e4m3_to_f32(tok[i]) * sc; }
                            else { uint16_t u; memcpy(&u, tok + LAT + 16 + 2 * (i - LAT), 2); kv = ref_bf16_to_f32(u); }
                            dot += (double)q[i] * kv;
                        }
                        lg[p] = dot * softmax_scale;
                        if (lg[p] > mx) mx = lg[p];
                    }
                    for (int64_t p = 0; p < vis; p++) {
                        const uint8_t* tok = (const uint8_t*)cache + (block_table[b * max_pages + p / PAGE] * PAGE + p % PAGE) * tbytes;
                        double w = exp(lg[p] - mx);
                        sum += w;
                        for (int i = 0; i < LAT; i++) {
                            float kv;
                            if (format == 0) memcpy(&kv, tok + 4 * i, 4);
                            else if (format == 1) { uint16_t u; memcpy(&u, tok + 2 * i, 2); kv = ref_bf16_to_f32(u); }
                            else { float sc; memcpy(&sc, tok + LAT + (i / 128) * 4, 4); kv = ref_e4m3_to_f32(tok[i]) * sc; }
                            o[i] += w * kv;
                        }
                    }
                    double rl = vis ? mx + log(sum) : -INFINITY;
                    bad += vis ? !close_to(lse[r], rl, 1 + fabs(rl), 1e-5) : !(isinf(lse[r]) && lse[r] < 0);
                    for (int i = 0; i < LAT; i++) {
                        double ref = vis ? o[i] / sum : 0;
                        double got = dtype == F32 ? ((float*)o_latent)[r * LAT + i] : ref_bf16_to_f32(((uint16_t*)o_latent)[r * LAT + i]);
                        bad += !close_to(got, ref, 1, dtype == F32 ? 2e-5 : 8e-3);
                    }
                }
        free(lg);
        CHECK(bad == 0, "mla_decode format %d dtype %d flags %d: %d values off", format, dtype, flags, bad);
        /* lse may be NULL */
        EXPECT_OK(dsk4j_mla_decode(ctx, o_latent, o_latent_bytes, NULL, 0, q_latent, q_latent_bytes, q_pe, q_pe_bytes, dtype, cache, cache_bytes, format, block_table, block_table_bytes, seq_lens, seq_lens_bytes, batch, sq, heads, max_pages, num_pages, softmax_scale, flags));
        BAD(ctx, NULL);
        BAD(o_latent, NULL);
        BAD(q_latent, NULL);
        BAD(q_pe, NULL);
        BAD(cache, NULL);
        BAD(block_table, NULL);
        BAD(seq_lens, NULL);
        BAD(o_latent_bytes, o_latent_bytes - 1);
        BAD(lse_bytes, lse_bytes - 1);
        BAD(q_latent_bytes, q_latent_bytes - 1);
        BAD(q_pe_bytes, q_pe_bytes - 1);
        BAD(cache_bytes, cache_bytes - 1);
        BAD(block_table_bytes, block_table_bytes - 1);
        BAD(seq_lens_bytes, seq_lens_bytes - 1);
        BAD(dtype, E4M3);
        BAD(format, 7);
        BAD(flags, 2);
        BAD(softmax_scale, 0.0f);
        BAD(softmax_scale, NAN);
        BAD(softmax_scale, -1.0f);
        BAD(batch, -1);
        BAD(batch, batch + 1);
        BAD(sq, sq + 1);
        BAD(heads, heads + 1);
        BAD(heads, BIG);
        BAD(max_pages, 1); /* seq_lens[0] = 100 > 64 */
        BAD(max_pages, -1);
        BAD(num_pages, 3); /* page 3 used */
        BAD(num_pages, BIG);
        BAD(o_latent, (void*)q_latent);
        BAD(lse, (float*)cache);
#undef CALL
        seq_lens[2] = 1; /* causal: L < sq; non-causal fine */
        if (flags) EXPECT_FAILC(INVALID, dsk4j_mla_decode(ctx, o_latent, o_latent_bytes, lse, lse_bytes, q_latent, q_latent_bytes, q_pe, q_pe_bytes, dtype, cache, cache_bytes, format, block_table, block_table_bytes, seq_lens, seq_lens_bytes, batch, sq, heads, max_pages, num_pages, softmax_scale, flags));
        seq_lens[2] = 65; /* now uses page entry 9 */
        EXPECT_FAILC(INVALID, dsk4j_mla_decode(ctx, o_latent, o_latent_bytes, lse, lse_bytes, q_latent, q_latent_bytes, q_pe, q_pe_bytes, dtype, cache, cache_bytes, format, block_table, block_table_bytes, seq_lens, seq_lens_bytes, batch, sq, heads, max_pages, num_pages, softmax_scale, flags));
        seq_lens[2] = -1;
        EXPECT_FAILC(INVALID, dsk4j_mla_decode(ctx, o_latent, o_latent_bytes, lse, lse_bytes, q_latent, q_latent_bytes, q_pe, q_pe_bytes, dtype, cache, cache_bytes, format, block_table, block_table_bytes, seq_lens, seq_lens_bytes, batch, sq, heads, max_pages, num_pages, softmax_scale, flags));
        seq_lens[2] = 129;
        EXPECT_FAILC(INVALID, dsk4j_mla_decode(ctx, o_latent, o_latent_bytes, lse, lse_bytes, q_latent, q_latent_bytes, q_pe, q_pe_bytes, dtype, cache, cache_bytes, format, block_table, block_table_bytes, seq_lens, seq_lens_bytes, batch, sq, heads, max_pages, num_pages, softmax_scale, flags));
        gb_free_all();
    }
}

static void test_mla_prefill(void) {
    for (int variant = 0; variant < 4; variant++) {
        int32_t dtype = variant < 2 ? F32 : BF16, flags = variant & 1 ? DSK4J_MLA_CAUSAL : 0;
        int es = dtype == F32 ? 4 : 2;
        int64_t nseq = 3, tokens = 9, heads = 2, qk_dim = t_range(1, 40), v_dim = t_range(1, 24);
        float softmax_scale = 0.3f;
        int32_t* cu_seqlens = gb_alloc(16);
        cu_seqlens[0] = 0, cu_seqlens[1] = 4, cu_seqlens[2] = 4, cu_seqlens[3] = 9;
        void* o = gb_alloc((size_t)(tokens * heads * v_dim * es));
        float* lse = gb_alloc((size_t)(tokens * heads * 4));
        void* q = gb_alloc((size_t)(tokens * heads * qk_dim * es));
        void* k = gb_alloc((size_t)(tokens * heads * qk_dim * es));
        void* v = gb_alloc((size_t)(tokens * heads * v_dim * es));
        float *qf, *kf, *vf;
        if (dtype == F32) {
            t_fill_f32(q, tokens * heads * qk_dim, -1, 1);
            t_fill_f32(k, tokens * heads * qk_dim, -1, 1);
            t_fill_f32(v, tokens * heads * v_dim, -1, 1);
            qf = q, kf = k, vf = v;
        } else {
            fill_bf16(q, tokens * heads * qk_dim, -1, 1);
            fill_bf16(k, tokens * heads * qk_dim, -1, 1);
            fill_bf16(v, tokens * heads * v_dim, -1, 1);
            qf = bf16_widen(q, tokens * heads * qk_dim), kf = bf16_widen(k, tokens * heads * qk_dim), vf = bf16_widen(v, tokens * heads * v_dim);
        }
        int64_t o_bytes = tokens * heads * v_dim * es, lse_bytes = tokens * heads * 4, q_bytes = tokens * heads * qk_dim * es,
                k_bytes = q_bytes, v_bytes = o_bytes, cu_seqlens_bytes = 16;
#define CALL() dsk4j_mla_prefill(ctx, o, o_bytes, lse, lse_bytes, q, q_bytes, k, k_bytes, v, v_bytes, dtype, cu_seqlens, cu_seqlens_bytes, nseq, tokens, heads, qk_dim, v_dim, softmax_scale, flags)
        EXPECT_OK(CALL());
        int bad = 0;
        for (int64_t sidx = 0; sidx < nseq; sidx++)
            for (int64_t t = cu_seqlens[sidx]; t < cu_seqlens[sidx + 1]; t++)
                for (int64_t h = 0; h < heads; h++) {
                    int64_t u1 = flags ? t + 1 : cu_seqlens[sidx + 1];
                    double lg[16], mx = -INFINITY, sum = 0;
                    for (int64_t u = cu_seqlens[sidx]; u < u1; u++) {
                        double dot = 0;
                        for (int64_t i = 0; i < qk_dim; i++) dot += (double)qf[(t * heads + h) * qk_dim + i] * kf[(u * heads + h) * qk_dim + i];
                        lg[u - cu_seqlens[sidx]] = dot * softmax_scale;
                        mx = fmax(mx, lg[u - cu_seqlens[sidx]]);
                    }
                    for (int64_t u = cu_seqlens[sidx]; u < u1; u++) sum += exp(lg[u - cu_seqlens[sidx]] - mx);
                    bad += !close_to(lse[t * heads + h], mx + log(sum), 1 + fabs(mx), 1e-5);
                    for (int64_t i = 0; i < v_dim; i++) {
                        double acc = 0;
                        for (int64_t u = cu_seqlens[sidx]; u < u1; u++) acc += exp(lg[u - cu_seqlens[sidx]] - mx) * vf[(u * heads + h) * v_dim + i];
                        double got = dtype == F32 ? ((float*)o)[(t * heads + h) * v_dim + i] : ref_bf16_to_f32(((uint16_t*)o)[(t * heads + h) * v_dim + i]);
                        bad += !close_to(got, acc / sum, 1, dtype == F32 ? 2e-5 : 8e-3);
                    }
                }
        CHECK(bad == 0, "mla_prefill variant %d qk %lld v %lld: %d values off", variant, (long long)qk_dim, (long long)v_dim, bad);
        EXPECT_OK(dsk4j_mla_prefill(ctx, o, o_bytes, NULL, 0, q, q_bytes, k, k_bytes, v, v_bytes, dtype, cu_seqlens, cu_seqlens_bytes, nseq, tokens, heads, qk_dim, v_dim, softmax_scale, flags));
        BAD(ctx, NULL);
        BAD(o, NULL);
        BAD(q, NULL);
        BAD(k, NULL);
        BAD(v, NULL);
        BAD(cu_seqlens, NULL);
        BAD(o_bytes, o_bytes - 1);
        BAD(lse_bytes, lse_bytes - 1);
        BAD(q_bytes, q_bytes - 1);
        BAD(k_bytes, k_bytes - 1);
        BAD(v_bytes, v_bytes - 1);
        BAD(cu_seqlens_bytes, cu_seqlens_bytes - 1);
        BAD(dtype, F16);
        BAD(flags, 4);
        BAD(softmax_scale, INFINITY);
        BAD(nseq, -1);
        BAD(nseq, nseq + 1);
        BAD(nseq, nseq - 1); /* last entry != tokens */
        BAD(nseq, BIG);
        BAD(tokens, tokens - 1);
        BAD(tokens, -1);
        BAD(heads, heads + 1);
        BAD(heads, BIG);
        BAD(qk_dim, 0);
        BAD(qk_dim, 257);
        BAD(v_dim, 0);
        BAD(v_dim, 257);
        BAD(o, (void*)q);
        BAD(lse, (float*)v);
#undef CALL
        const int32_t badcu[3][4] = {{1, 4, 4, 9}, {0, 5, 4, 9}, {0, 4, -4, 9}};
        for (int t = 0; t < 3; t++) {
            memcpy(cu_seqlens, badcu[t], 16);
            EXPECT_FAILC(INVALID, dsk4j_mla_prefill(ctx, o, o_bytes, lse, lse_bytes, q, q_bytes, k, k_bytes, v, v_bytes, dtype, cu_seqlens, cu_seqlens_bytes, nseq, tokens, heads, qk_dim, v_dim, softmax_scale, flags));
        }
        if (dtype == BF16) free(qf), free(kf), free(vf);
        gb_free_all();
    }
}

static void test_mla_absorb(void) {
    for (int variant = 0; variant < 4; variant++) {
        int32_t dtype = variant & 1 ? BF16 : F32, w_dtype = variant & 2 ? BF16 : F32;
        int es = dtype == F32 ? 4 : 2, ws = w_dtype == F32 ? 4 : 2;
        int64_t tokens = t_range(1, 3), heads = t_range(1, 2), q_head_stride = variant == 0 ? 128 : 192;
        void* wkv_b = gb_alloc((size_t)(heads * 256 * LAT * ws));
        if (w_dtype == F32) t_fill_f32(wkv_b, heads * 256 * LAT, -0.1f, 0.1f);
        else fill_bf16(wkv_b, heads * 256 * LAT, -0.1f, 0.1f);
        float* wf = w_dtype == F32 ? (float*)wkv_b : bf16_widen(wkv_b, heads * 256 * LAT);
        void* q_nope = gb_alloc((size_t)(tokens * heads * q_head_stride * es));
        void* q_latent = gb_alloc((size_t)(tokens * heads * LAT * es));
        if (dtype == F32) t_fill_f32(q_nope, tokens * heads * q_head_stride, -1, 1);
        else fill_bf16(q_nope, tokens * heads * q_head_stride, -1, 1);
        float* qf = dtype == F32 ? (float*)q_nope : bf16_widen(q_nope, tokens * heads * q_head_stride);
        int64_t q_latent_bytes = tokens * heads * LAT * es, q_nope_bytes = tokens * heads * q_head_stride * es, wkv_b_bytes = heads * 256 * LAT * ws;
#define CALL() dsk4j_mla_absorb_q(ctx, q_latent, q_latent_bytes, q_nope, q_nope_bytes, dtype, wkv_b, wkv_b_bytes, w_dtype, tokens, heads, q_head_stride)
        EXPECT_OK(CALL());
        int bad = 0;
        for (int64_t t = 0; t < tokens; t++)
            for (int64_t h = 0; h < heads; h++)
                for (int64_t c = 0; c < LAT; c++) {
                    double r = 0, mag = 0;
                    for (int64_t d = 0; d < 128; d++) {
                        double p = (double)qf[(t * heads + h) * q_head_stride + d] * wf[(h * 256 + d) * LAT + c];
                        r += p, mag += fabs(p);
                    }
                    double got = dtype == F32 ? ((float*)q_latent)[(t * heads + h) * LAT + c] : ref_bf16_to_f32(((uint16_t*)q_latent)[(t * heads + h) * LAT + c]);
                    bad += !close_to(got, r, mag + fabs(r), dtype == F32 ? 1e-5 : 8e-3);
                }
        CHECK(bad == 0, "absorb_q variant %d: %d values off", variant, bad);
        BAD(ctx, NULL);
        BAD(q_latent, NULL);
        BAD(q_nope, NULL);
        BAD(wkv_b, NULL);
        BAD(q_latent_bytes, q_latent_bytes - 1);
        BAD(q_nope_bytes, q_nope_bytes - 1);
        BAD(wkv_b_bytes, wkv_b_bytes - 1);
        BAD(dtype, E5M2);
        BAD(w_dtype, I32);
        BAD(tokens, -1);
        BAD(tokens, tokens + 1);
        BAD(heads, heads + 1);
        BAD(heads, BIG);
        BAD(q_head_stride, 127);
        BAD(q_head_stride, BIG);
        BAD(q_latent, (void*)q_nope);
#undef CALL
        void* o_latent = q_latent;
        void* o = gb_alloc((size_t)(tokens * heads * 128 * es));
        float* olf = dtype == F32 ? (float*)o_latent : bf16_widen(o_latent, tokens * heads * LAT);
        int64_t o_bytes = tokens * heads * 128 * es, o_latent_bytes = q_latent_bytes;
#define CALL() dsk4j_mla_absorb_o(ctx, o, o_bytes, o_latent, o_latent_bytes, dtype, wkv_b, wkv_b_bytes, w_dtype, tokens, heads)
        EXPECT_OK(CALL());
        bad = 0;
        for (int64_t t = 0; t < tokens; t++)
            for (int64_t h = 0; h < heads; h++)
                for (int64_t d = 0; d < 128; d++) {
                    double r = 0, mag = 0;
                    for (int64_t c = 0; c < LAT; c++) {
                        double p = (double)olf[(t * heads + h) * LAT + c] * wf[(h * 256 + 128 + d) * LAT + c];
                        r += p, mag += fabs(p);
                    }
                    double got = dtype == F32 ? ((float*)o)[(t * heads + h) * 128 + d] : ref_bf16_to_f32(((uint16_t*)o)[(t * heads + h) * 128 + d]);
                    bad += !close_to(got, r, mag + fabs(r), dtype == F32 ? 1e-5 : 8e-3);
                }
        CHECK(bad == 0, "absorb_o variant %d: %d values off", variant, bad);
        BAD(ctx, NULL);
        BAD(o, NULL);
        BAD(o_latent, NULL);
        BAD(wkv_b, NULL);
        BAD(o_bytes, o_bytes - 1);
        BAD(o_latent_bytes, o_latent_bytes - 1);
        BAD(wkv_b_bytes, wkv_b_bytes - 1);
        BAD(dtype, -1);
        BAD(w_dtype, E4M3);
        BAD(tokens, -1);
        BAD(heads, heads + 1);
        BAD(tokens, BIG);
        BAD(o, (void*)wkv_b);
#undef CALL
        if (w_dtype == BF16) free(wf);
        if (dtype == BF16) free(qf), free(olf);
        gb_free_all();
    }
}

/* ======================================================================= moe */

/* the contract's moe.gate selection and weights, from the logits the library returned */
static void ref_gate_row(const float* logit, const float* bias, int64_t E, int64_t top_k, int64_t n_group, int64_t topk_group,
                         int score_func, int norm, float rsf, int32_t* idx, float* w) {
    float s[64], b[64];
    int keep[64];
    if (score_func == DSK4J_MOE_SIGMOID) {
        for (int64_t e = 0; e < E; e++) s[e] = (float)(1.0 / (1.0 + exp(-(double)logit[e])));
    } else {
        float m = logit[0];
        for (int64_t e = 1; e < E; e++) m = fmaxf(m, logit[e]);
        double sum = 0;
        for (int64_t e = 0; e < E; e++) sum += exp((double)logit[e] - (double)m);
        for (int64_t e = 0; e < E; e++) s[e] = (float)(exp((double)logit[e] - (double)m) / sum);
    }
    for (int64_t e = 0; e < E; e++) b[e] = s[e] + (bias ? bias[e] : 0.0f), keep[e] = 1;
    if (n_group > 1) {
        int64_t per = E / n_group;
        float gs[64];
        int gkeep[64] = {0};
        for (int64_t g = 0; g < n_group; g++) {
            float m1 = -INFINITY, m2 = -INFINITY;
            for (int64_t e = g * per; e < (g + 1) * per; e++) {
                if (b[e] > m1) m2 = m1, m1 = b[e];
                else if (b[e] > m2) m2 = b[e];
            }
            gs[g] = bias ? m1 + m2 : m1;
        }
        for (int64_t i = 0; i < topk_group; i++) {
            int64_t best = -1;
            for (int64_t g = 0; g < n_group; g++)
                if (!gkeep[g] && (best < 0 || gs[g] > gs[best])) best = g;
            gkeep[best] = 1;
        }
        for (int64_t e = 0; e < E; e++) keep[e] = gkeep[e / per];
    }
    float sum = 0;
    for (int64_t i = 0; i < top_k; i++) {
        int64_t best = -1;
        for (int64_t e = 0; e < E; e++)
            if (keep[e] && (best < 0 || b[e] > b[best])) best = e;
        keep[best] = 0;
        idx[i] = (int32_t)best;
        w[i] = s[best];
    }
    for (int64_t i = 0; i < top_k; i++) sum += w[i];
    for (int64_t i = 0; i < top_k; i++) {
        if (norm && sum > 0) w[i] /= sum;
        w[i] *= rsf;
    }
}

static void test_moe_gate(void) {
    for (int variant = 0; variant < 4; variant++) {
        int32_t x_dtype = variant & 1 ? BF16 : F32, wg_dtype = variant & 2 ? BF16 : F32;
        int32_t score_func = variant < 2 ? DSK4J_MOE_SIGMOID : DSK4J_MOE_SOFTMAX, norm_topk_prob = variant != 2;
        int64_t tokens = t_range(1, 9), hidden = t_range(1, 70), experts = 16, top_k = 3, n_group = variant < 2 ? 4 : 1,
                topk_group = variant < 2 ? 2 : 1;
        float routed_scaling_factor = 2.5f;
        int xs = x_dtype == F32 ? 4 : 2, wsz = wg_dtype == F32 ? 4 : 2;
        void* x = gb_alloc((size_t)(tokens * hidden * xs));
        void* wg = gb_alloc((size_t)(experts * hidden * wsz));
        float* bias = variant < 2 ? gb_alloc((size_t)experts * 4) : NULL;
        int32_t* indices = gb_alloc((size_t)(tokens * top_k * 4));
        float* weights = gb_alloc((size_t)(tokens * top_k * 4));
        float* logits = gb_alloc((size_t)(tokens * experts * 4));
        if (x_dtype == F32) t_fill_f32(x, tokens * hidden, -1, 1); else fill_bf16(x, tokens * hidden, -1, 1);
        if (wg_dtype == F32) t_fill_f32(wg, experts * hidden, -1, 1); else fill_bf16(wg, experts * hidden, -1, 1);
        if (bias) t_fill_f32(bias, experts, -0.1f, 0.1f);
        int64_t x_bytes = tokens * hidden * xs, wg_bytes = experts * hidden * wsz, bias_bytes = bias ? experts * 4 : 0,
                indices_bytes = tokens * top_k * 4, weights_bytes = indices_bytes, logits_bytes = tokens * experts * 4;
#define CALL() dsk4j_moe_gate(ctx, indices, indices_bytes, weights, weights_bytes, logits, logits_bytes, x, x_bytes, x_dtype, wg, wg_bytes, wg_dtype, bias, bias_bytes, tokens, hidden, experts, top_k, n_group, topk_group, score_func, norm_topk_prob, routed_scaling_factor)
        EXPECT_OK(CALL());
        int bad = 0;
        for (int64_t t = 0; t < tokens; t++) {
            for (int64_t e = 0; e < experts; e++) {
                double r = 0, mag = 0;
                for (int64_t j = 0; j < hidden; j++) {
                    double xv = x_dtype == F32 ? ((float*)x)[t * hidden + j] : ref_bf16_to_f32(((uint16_t*)x)[t * hidden + j]);
                    double wv = wg_dtype == F32 ? ((float*)wg)[e * hidden + j] : ref_bf16_to_f32(((uint16_t*)wg)[e * hidden + j]);
                    r += xv * wv, mag += fabs(xv * wv);
                }
                bad += !close_to(logits[t * experts + e], r, mag, 1e-5);
            }
            int32_t ri[16];
            float rw[16];
            ref_gate_row(logits + t * experts, bias, experts, top_k, n_group, topk_group, score_func, norm_topk_prob,
                         routed_scaling_factor, ri, rw);
            for (int64_t i = 0; i < top_k; i++) bad += indices[t * top_k + i] != ri[i] || !same_f32(weights[t * top_k + i], rw[i]);
        }
        CHECK(bad == 0, "moe_gate variant %d: %d differences", variant, bad);
        /* logits may be NULL: same indices and weights */
        int32_t* i2 = gb_alloc((size_t)indices_bytes);
        float* w2 = gb_alloc((size_t)weights_bytes);
        EXPECT_OK(dsk4j_moe_gate(ctx, i2, indices_bytes, w2, weights_bytes, NULL, 0, x, x_bytes, x_dtype, wg, wg_bytes, wg_dtype, bias, bias_bytes, tokens, hidden, experts, top_k, n_group, topk_group, score_func, norm_topk_prob, routed_scaling_factor));
        CHECK(memcmp(i2, indices, (size_t)indices_bytes) == 0 && memcmp(w2, weights, (size_t)weights_bytes) == 0, "gate without logits differs");
        BAD(ctx, NULL);
        BAD(indices, NULL);
        BAD(weights, NULL);
        BAD(x, NULL);
        BAD(wg, NULL);
        BAD(indices_bytes, indices_bytes - 1);
        BAD(weights_bytes, weights_bytes - 1);
        BAD(logits_bytes, logits_bytes - 1);
        BAD(x_bytes, x_bytes - 1);
        BAD(wg_bytes, wg_bytes - 1);
        if (bias) BAD(bias_bytes, bias_bytes - 1);
        BAD(x_dtype, E4M3);
        BAD(wg_dtype, I32);
        BAD(score_func, 2);
        BAD(routed_scaling_factor, NAN);
        BAD(routed_scaling_factor, INFINITY);
        BAD(tokens, -1);
        BAD(tokens, tokens + 1);
        BAD(tokens, BIG);
        BAD(hidden, 0);
        BAD(hidden, BIG);
        BAD(experts, 0);
        BAD(experts, 4097);
        if (n_group > 1) BAD(experts, 15); /* n_group does not divide it */
        else BAD(experts, 17);         /* buffers too small */
        BAD(n_group, 0);
        BAD(n_group, 3);
        BAD(n_group, 17);
        BAD(topk_group, 0);
        BAD(topk_group, n_group + 1);
        BAD(top_k, 0);
        BAD(top_k, topk_group * (experts / n_group) + 1);
        BAD(top_k, BIG);
        BAD(indices, (int32_t*)weights);
        BAD(logits, (float*)x);
        BAD(weights, (float*)((char*)weights + 1));
#undef CALL
        gb_free_all();
    }
}

/* top_k distinct experts per token, as moe.gate chooses them */
static void fill_routes(int32_t* idx, int64_t tokens, int64_t top_k, int64_t experts) {
    for (int64_t t = 0; t < tokens; t++)
        for (int64_t i = 0; i < top_k; i++) {
            int32_t e;
            int dup;
            do {
                e = (int32_t)t_range(0, experts - 1);
                dup = 0;
                for (int64_t j = 0; j < i; j++) dup |= idx[t * top_k + j] == e;
            } while (dup);
            idx[t * top_k + i] = e;
        }
}

static void test_moe_dispatch_gather_combine(void) {
    for (int variant = 0; variant < 3; variant++) {
        int64_t tokens = t_range(1, 12), experts = t_range(1, 9), top_k = t_range(1, experts < 4 ? experts : 4), pairs = tokens * top_k;
        int32_t align = variant == 0 ? 1 : variant == 1 ? 4 : 1;
        int64_t m_max = variant == 2 ? tokens : 0;
        int64_t rows = m_max ? experts * m_max : pairs + experts * (align - 1) + 2;
        int32_t* indices = gb_alloc((size_t)pairs * 4);
        fill_routes(indices, tokens, top_k, experts);
        int32_t* counts = gb_alloc((size_t)experts * 4);
        int32_t* offsets = gb_alloc((size_t)(experts + 1) * 4);
        int32_t* row_of = gb_alloc((size_t)pairs * 4);
        int32_t* src_of = gb_alloc((size_t)rows * 4);
        int64_t counts_bytes = experts * 4, offsets_bytes = (experts + 1) * 4, row_of_bytes = pairs * 4, src_of_bytes = rows * 4,
                indices_bytes = pairs * 4;
#define CALL() dsk4j_moe_dispatch(ctx, counts, counts_bytes, offsets, offsets_bytes, row_of, row_of_bytes, src_of, src_of_bytes, indices, indices_bytes, tokens, top_k, experts, align, m_max)
        EXPECT_OK(CALL());
        int bad = 0;
        int64_t off = 0;
        for (int64_t e = 0; e < experts; e++) {
            int64_t c = 0;
            for (int64_t p = 0; p < pairs; p++) c += indices[p] == e;
            bad += counts[e] != c;
            int64_t o0 = m_max ? e * m_max : off;
            bad += offsets[e] != o0;
            int64_t r = o0;
            for (int64_t p = 0; p < pairs; p++)
                if (indices[p] == e) bad += row_of[p] != r || src_of[r] != p, r++;
            int64_t end = m_max ? (e + 1) * m_max : o0 + (c + align - 1) / align * align;
            for (; r < end; r++) bad += src_of[r] != -1;
            off = end;
        }
        bad += offsets[experts] != (m_max ? experts * m_max : off);
        for (int64_t r = off; r < rows; r++) bad += src_of[r] != -1;
        CHECK(bad == 0, "moe_dispatch variant %d: %d differences", variant, bad);
        BAD(ctx, NULL);
        BAD(counts, NULL);
        BAD(offsets, NULL);
        BAD(row_of, NULL);
        BAD(src_of, NULL);
        BAD(indices, NULL);
        BAD(counts_bytes, counts_bytes - 1);
        BAD(offsets_bytes, offsets_bytes - 1);
        BAD(row_of_bytes, row_of_bytes - 1);
        BAD(src_of_bytes, (m_max ? rows : off) * 4 - 1);
        BAD(src_of_bytes, -1);
        BAD(indices_bytes, indices_bytes - 1);
        BAD(tokens, -1);
        BAD(tokens, tokens + 1);
        BAD(tokens, BIG);
        BAD(top_k, 0);
        BAD(top_k, (int64_t)INT32_MAX + 1);
        BAD(experts, 0);
        BAD(experts, INT32_MAX);
        BAD(align, 0);
        BAD(align, (1 << 20) + 1);
        BAD(m_max, -1);
        BAD(m_max, (int64_t)INT32_MAX + 1);
        BAD(src_of, (int32_t*)((char*)src_of + 2)); /* misaligned */
        BAD(src_of, indices);
        BAD(counts, offsets);
#undef CALL
        if (variant == 2 && tokens > 1) { /* one expert over m_max */
            for (int64_t p = 0; p < pairs; p++) indices[p] = 0;
            EXPECT_FAILC(INVALID, dsk4j_moe_dispatch(ctx, counts, counts_bytes, offsets, offsets_bytes, row_of, row_of_bytes, src_of, src_of_bytes, indices, indices_bytes, tokens, top_k, experts, align, tokens - 1 ? tokens - 1 : 1));
            fill_routes(indices, tokens, top_k, experts);
            EXPECT_OK(dsk4j_moe_dispatch(ctx, counts, counts_bytes, offsets, offsets_bytes, row_of, row_of_bytes, src_of, src_of_bytes, indices, indices_bytes, tokens, top_k, experts, align, m_max));
        }
        indices[pairs - 1] = (int32_t)experts;
        EXPECT_FAILC(INVALID, dsk4j_moe_dispatch(ctx, counts, counts_bytes, offsets, offsets_bytes, row_of, row_of_bytes, src_of, src_of_bytes, indices, indices_bytes, tokens, top_k, experts, align, m_max));
        indices[pairs - 1] = -1;
        EXPECT_FAILC(INVALID, dsk4j_moe_dispatch(ctx, counts, counts_bytes, offsets, offsets_bytes, row_of, row_of_bytes, src_of, src_of_bytes, indices, indices_bytes, tokens, top_k, experts, align, m_max));

        /* gather with the src_of just made (valid from the last successful dispatch) */
        int64_t hidden = t_range(0, 40);
        const int32_t dts[3] = {F32, BF16, E4M3};
        int32_t dtype = dts[variant];
        int es = dtype == F32 ? 4 : dtype == BF16 ? 2 : 1;
        void* x = gb_alloc((size_t)(tokens * hidden * es));
        void* xp = gb_alloc((size_t)(rows * hidden * es));
        t_fill_bytes(x, tokens * hidden * es);
        int64_t xp_bytes = rows * hidden * es, x_bytes = tokens * hidden * es;
#define CALL() dsk4j_moe_gather(ctx, xp, xp_bytes, x, x_bytes, dtype, src_of, src_of_bytes, rows, tokens, top_k, hidden)
        EXPECT_OK(CALL());
        bad = 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < hidden * es; i++)
                bad += ((uint8_t*)xp)[r * hidden * es + i] != (src_of[r] < 0 ? 0 : ((uint8_t*)x)[(src_of[r] / top_k) * hidden * es + i]);
        CHECK(bad == 0, "moe_gather: %d bytes differ", bad);
        BAD(ctx, NULL);
        if (hidden) {
            BAD(xp, NULL);
            BAD(x, NULL);
            BAD(xp_bytes, xp_bytes - 1);
            BAD(x_bytes, x_bytes - 1);
            BAD(tokens, tokens - 1); /* src_of points past tokens */
            BAD(hidden, BIG);
        }
        BAD(src_of, NULL);
        BAD(src_of_bytes, src_of_bytes - 1);
        BAD(dtype, 6);
        BAD(rows, -1);
        BAD(rows, rows + 1);
        BAD(tokens, -1);
        BAD(top_k, 0);
        BAD(hidden, -1);
        BAD(rows, BIG);
#undef CALL

        /* combine: e rows from the layout, f32 or bf16, with or without shared */
        int32_t y_dtype = variant == 1 ? BF16 : F32, e_dtype = variant == 0 ? F32 : BF16, shared_dtype = variant == 2 ? F32 : BF16;
        int yes = y_dtype == F32 ? 4 : 2, ees = e_dtype == F32 ? 4 : 2, ses = shared_dtype == F32 ? 4 : 2;
        void* y = gb_alloc((size_t)(tokens * hidden * yes));
        void* e = gb_alloc((size_t)(rows * hidden * ees));
        float* weights = gb_alloc((size_t)pairs * 4);
        void* shared = variant ? gb_alloc((size_t)(tokens * hidden * ses)) : NULL;
        if (e_dtype == F32) t_fill_f32(e, rows * hidden, -1, 1); else fill_bf16(e, rows * hidden, -1, 1);
        if (shared) { if (shared_dtype == F32) t_fill_f32(shared, tokens * hidden, -1, 1); else fill_bf16(shared, tokens * hidden, -1, 1); }
        t_fill_f32(weights, pairs, 0, 1);
        int64_t y_bytes = tokens * hidden * yes, e_bytes = rows * hidden * ees, weights_bytes = pairs * 4,
                shared_bytes = shared ? tokens * hidden * ses : 0;
#define CALL() dsk4j_moe_combine(ctx, y, y_bytes, y_dtype, e, e_bytes, e_dtype, weights, weights_bytes, row_of, row_of_bytes, shared, shared_bytes, shared_dtype, tokens, top_k, rows, hidden)
        EXPECT_OK(CALL());
        bad = 0;
        for (int64_t t = 0; t < tokens; t++)
            for (int64_t j = 0; j < hidden; j++) {
                float acc = 0;
                for (int64_t i = 0; i < top_k; i++) {
                    int64_t r = row_of[t * top_k + i];
                    float ev = e_dtype == F32 ? ((float*)e)[r * hidden + j] : ref_bf16_to_f32(((uint16_t*)e)[r * hidden + j]);
                    acc = fmaf(weights[t * top_k + i], ev, acc);
                }
                if (shared) acc += shared_dtype == F32 ? ((float*)shared)[t * hidden + j] : ref_bf16_to_f32(((uint16_t*)shared)[t * hidden + j]);
                bad += y_dtype == F32 ? !same_f32(((float*)y)[t * hidden + j], acc) : ((uint16_t*)y)[t * hidden + j] != ref_f32_to_bf16(acc);
            }
        CHECK(bad == 0, "moe_combine variant %d: %d differences", variant, bad);
        BAD(ctx, NULL);
        BAD(row_of, NULL);
        BAD(weights, NULL);
        BAD(row_of_bytes, row_of_bytes - 1);
        BAD(weights_bytes, weights_bytes - 1);
        if (hidden) {
            BAD(y, NULL);
            BAD(e, NULL);
            BAD(y_bytes, y_bytes - 1);
            BAD(e_bytes, e_bytes - 1);
            if (shared) BAD(shared_bytes, shared_bytes - 1);
            BAD(y, e);
        }
        BAD(y_dtype, E4M3);
        BAD(e_dtype, I32);
        if (shared) BAD(shared_dtype, F16);
        BAD(tokens, -1);
        BAD(tokens, tokens + 1);
        BAD(top_k, 0);
        BAD(top_k, top_k + 1);
        BAD(rows, -1);
        BAD(hidden, -1);
        BAD(hidden, BIG);
        BAD(rows, row_of[0]); /* an entry now outside [0, rows) */
#undef CALL
        gb_free_all();
    }
}

static void test_moe_bias_update(void) {
    int64_t experts = t_range(1, 20);
    float* bias = gb_alloc((size_t)experts * 4);
    int32_t* counts = gb_alloc((size_t)experts * 4);
    float* ref = malloc((size_t)experts * 4);
    t_fill_f32(bias, experts, -1, 1);
    for (int64_t e = 0; e < experts; e++) counts[e] = (int32_t)t_range(0, 6);
    memcpy(ref, bias, (size_t)experts * 4);
    float gamma = 0.001f;
    int64_t bias_bytes = experts * 4, counts_bytes = experts * 4;
#define CALL() dsk4j_moe_bias_update(ctx, bias, bias_bytes, counts, counts_bytes, experts, gamma)
    EXPECT_OK(CALL());
    double total = 0;
    for (int64_t e = 0; e < experts; e++) total += counts[e];
    int bad = 0;
    for (int64_t e = 0; e < experts; e++) {
        float r = ref[e];
        if (counts[e] < total / experts) r += gamma;
        else if (counts[e] > total / experts) r -= gamma;
        bad += !same_f32(bias[e], r);
    }
    CHECK(bad == 0, "moe_bias_update: %d differences", bad);
    BAD(ctx, NULL);
    BAD(bias, NULL);
    BAD(counts, NULL);
    BAD(bias_bytes, bias_bytes - 1);
    BAD(counts_bytes, counts_bytes - 1);
    BAD(experts, -1);
    BAD(experts, experts + 1);
    BAD(experts, BIG);
    BAD(gamma, NAN);
    BAD(gamma, -INFINITY);
    BAD(bias, (float*)counts);
#undef CALL
    free(ref);
    gb_free_all();
}

static void test_moe_silu_quant(void) {
    int64_t rows = t_range(1, 7), inter = 128 * t_range(1, 3);
    float* h = gb_alloc((size_t)(rows * 2 * inter * 4));
    uint8_t* y = gb_alloc((size_t)(rows * inter));
    float* scale = gb_alloc((size_t)(rows * inter / 128 * 4));
    t_fill_f32(h, rows * 2 * inter, -4, 4);
    int64_t y_bytes = rows * inter, scale_bytes = rows * inter / 128 * 4, h_bytes = rows * 2 * inter * 4;
#define CALL() dsk4j_moe_silu_quant(ctx, y, y_bytes, scale, scale_bytes, h, h_bytes, rows, inter)
    EXPECT_OK(CALL());
    int bad = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < inter / 128; g++) {
            float a[128], amax = 0;
            for (int j = 0; j < 128; j++) {
                float gv = h[r * 2 * inter + g * 128 + j], u = h[r * 2 * inter + inter + g * 128 + j];
                a[j] = gv / (1.0f + expf(-gv)) * u;
                amax = fmaxf(amax, fabsf(a[j]));
            }
            float s = fmaxf(amax, 1e-4f) / 448.0f, gs = scale[r * (inter / 128) + g];
            bad += fabsf(gs - s) > 1e-5f * s;
            for (int j = 0; j < 128; j++) /* within one e4m3 step of a / s (0.0625 relative, 2^-9 absolute) */
                bad += fabs((double)ref_e4m3_to_f32(y[r * inter + g * 128 + j]) - a[j] / gs) > 0.07 * fabs(a[j] / gs) + 0.002;
        }
    CHECK(bad == 0, "moe_silu_quant: %d values off", bad);
    BAD(ctx, NULL);
    BAD(y, NULL);
    BAD(scale, NULL);
    BAD(h, NULL);
    BAD(y_bytes, y_bytes - 1);
    BAD(scale_bytes, scale_bytes - 1);
    BAD(h_bytes, h_bytes - 1);
    BAD(rows, -1);
    BAD(rows, rows + 1);
    BAD(rows, BIG);
    BAD(inter, 0);
    BAD(inter, 64);
    BAD(inter, inter + 1);
    BAD(inter, inter + 128);
    BAD(inter, (int64_t)INT32_MAX + 1);
    BAD(y, (void*)h);
#undef CALL
    gb_free_all();
}

static void test_moe_forward(void) {
    for (int variant = 0; variant < 4; variant++) {
        int32_t w_dtype = variant == 0 ? BF16 : variant == 3 ? F32 : E4M3, y_dtype = variant == 2 ? BF16 : F32, x_dtype = variant == 1 ? BF16 : F32,
                wg_dtype = F32, score_func = DSK4J_MOE_SIGMOID, norm_topk_prob = 1;
        int64_t tokens = t_range(1, 5), hidden = 128, inter = 128, shared_inter = variant == 1 ? 0 : 128, experts = 4, top_k = 2,
                n_group = 2, topk_group = 1;
        float routed_scaling_factor = 1.5f;
        int xs = x_dtype == F32 ? 4 : 2, ys = y_dtype == F32 ? 4 : 2, ws = w_dtype == BF16 ? 2 : w_dtype == F32 ? 4 : 1;
        int fp8 = w_dtype == E4M3;
        void* y = gb_alloc((size_t)(tokens * hidden * ys));
        int32_t* counts = gb_alloc((size_t)experts * 4);
        void* x = gb_alloc((size_t)(tokens * hidden * xs));
        float* wg = gb_alloc((size_t)(experts * hidden * 4));
        float* bias = gb_alloc((size_t)experts * 4);
        void* w13 = gb_alloc((size_t)(experts * 2 * inter * hidden * ws));
        void* w2 = gb_alloc((size_t)(experts * hidden * inter * ws));
        float* w13_scale = fp8 ? gb_alloc((size_t)(experts * 2 * inter / 128 * hidden / 128 * 4)) : NULL;
        float* w2_scale = fp8 ? gb_alloc((size_t)(experts * hidden / 128 * inter / 128 * 4)) : NULL;
        void* s13 = shared_inter ? gb_alloc((size_t)(2 * shared_inter * hidden * ws)) : NULL;
        void* s2 = shared_inter ? gb_alloc((size_t)(hidden * shared_inter * ws)) : NULL;
        float* s13_scale = fp8 && shared_inter ? gb_alloc((size_t)(2 * shared_inter / 128 * hidden / 128 * 4)) : NULL;
        float* s2_scale = fp8 && shared_inter ? gb_alloc((size_t)(hidden / 128 * shared_inter / 128 * 4)) : NULL;
        if (x_dtype == F32) t_fill_f32(x, tokens * hidden, -1, 1); else fill_bf16(x, tokens * hidden, -1, 1);
        t_fill_f32(wg, experts * hidden, -0.2f, 0.2f);
        t_fill_f32(bias, experts, -0.01f, 0.01f);
        if (fp8) {
            fill_e4m3(w13, experts * 2 * inter * hidden);
            fill_e4m3(w2, experts * hidden * inter);
            t_fill_f32(w13_scale, experts * 2 * inter / 128 * hidden / 128, 0.001f, 0.01f);
            t_fill_f32(w2_scale, experts * hidden / 128 * inter / 128, 0.001f, 0.01f);
            if (shared_inter) {
                fill_e4m3(s13, 2 * shared_inter * hidden);
                fill_e4m3(s2, hidden * shared_inter);
                t_fill_f32(s13_scale, 2 * shared_inter / 128 * hidden / 128, 0.001f, 0.01f);
                t_fill_f32(s2_scale, hidden / 128 * shared_inter / 128, 0.001f, 0.01f);
            }
        } else if (w_dtype == F32) {
            t_fill_f32(w13, experts * 2 * inter * hidden, -0.1f, 0.1f);
            t_fill_f32(w2, experts * hidden * inter, -0.1f, 0.1f);
            if (shared_inter) {
                t_fill_f32(s13, 2 * shared_inter * hidden, -0.1f, 0.1f);
                t_fill_f32(s2, hidden * shared_inter, -0.1f, 0.1f);
            }
        } else {
            fill_bf16(w13, experts * 2 * inter * hidden, -0.1f, 0.1f);
            fill_bf16(w2, experts * hidden * inter, -0.1f, 0.1f);
            fill_bf16(s13, 2 * shared_inter * hidden, -0.1f, 0.1f);
            fill_bf16(s2, hidden * shared_inter, -0.1f, 0.1f);
        }
        int64_t y_bytes = tokens * hidden * ys, counts_bytes = experts * 4, x_bytes = tokens * hidden * xs, wg_bytes = experts * hidden * 4,
                bias_bytes = experts * 4, w13_bytes = experts * 2 * inter * hidden * ws, w2_bytes = experts * hidden * inter * ws,
                w13_scale_bytes = fp8 ? experts * 2 * inter / 128 * hidden / 128 * 4 : 0,
                w2_scale_bytes = fp8 ? experts * hidden / 128 * inter / 128 * 4 : 0,
                s13_bytes = 2 * shared_inter * hidden * ws, s2_bytes = hidden * shared_inter * ws,
                s13_scale_bytes = fp8 ? 2 * shared_inter / 128 * hidden / 128 * 4 : 0,
                s2_scale_bytes = fp8 ? hidden / 128 * shared_inter / 128 * 4 : 0;
#define CALL() dsk4j_moe_forward(ctx, y, y_bytes, y_dtype, counts, counts_bytes, x, x_bytes, x_dtype, wg, wg_bytes, wg_dtype, bias, bias_bytes, w_dtype, w13, w13_bytes, w13_scale, w13_scale_bytes, w2, w2_bytes, w2_scale, w2_scale_bytes, s13, s13_bytes, s13_scale, s13_scale_bytes, s2, s2_bytes, s2_scale, s2_scale_bytes, tokens, hidden, inter, shared_inter, experts, top_k, n_group, topk_group, score_func, norm_topk_prob, routed_scaling_factor)
        EXPECT_OK(CALL());
        /* sanity: finite outputs, counts sum to tokens * top_k and agree with moe.gate's routing */
        int bad = 0;
        for (int64_t i = 0; i < tokens * hidden; i++) {
            float v = y_dtype == F32 ? ((float*)y)[i] : ref_bf16_to_f32(((uint16_t*)y)[i]);
            bad += !isfinite(v);
        }
        int32_t* gi = gb_alloc((size_t)(tokens * top_k * 4));
        float* gw = gb_alloc((size_t)(tokens * top_k * 4));
        EXPECT_OK(dsk4j_moe_gate(ctx, gi, tokens * top_k * 4, gw, tokens * top_k * 4, NULL, 0, x, x_bytes, x_dtype, wg, wg_bytes, wg_dtype, bias, bias_bytes, tokens, hidden, experts, top_k, n_group, topk_group, score_func, norm_topk_prob, routed_scaling_factor));
        for (int64_t e = 0; e < experts; e++) {
            int c = 0;
            for (int64_t p = 0; p < tokens * top_k; p++) c += gi[p] == e;
            bad += counts[e] != c;
        }
        CHECK(bad == 0, "moe_forward variant %d: %d non-finite outputs or wrong counts", variant, bad);
        BAD(ctx, NULL);
        BAD(y, NULL);
        BAD(x, NULL);
        BAD(wg, NULL);
        BAD(w13, NULL);
        BAD(w2, NULL);
        BAD(y_bytes, y_bytes - 1);
        BAD(counts_bytes, counts_bytes - 1);
        BAD(x_bytes, x_bytes - 1);
        BAD(wg_bytes, wg_bytes - 1);
        BAD(bias_bytes, bias_bytes - 1);
        BAD(w13_bytes, w13_bytes - 1);
        BAD(w2_bytes, w2_bytes - 1);
        if (fp8) {
            BAD(w13_scale, NULL);
            BAD(w2_scale, NULL);
            BAD(w13_scale_bytes, w13_scale_bytes - 1);
            BAD(w2_scale_bytes, w2_scale_bytes - 1);
            BAD(hidden, 130);
            BAD(inter, 192);
        } else {
            BAD(w13_scale, wg); /* scales must be NULL for bf16 and f32 weights */
            if (shared_inter) BAD(s2_scale, wg);
        }
        if (shared_inter) {
            BAD(s13, NULL);
            BAD(s2, NULL);
            BAD(s13_bytes, s13_bytes - 1);
            BAD(s2_bytes, s2_bytes - 1);
            if (fp8) {
                BAD(s13_scale_bytes, s13_scale_bytes - 1);
                BAD(s2_scale_bytes, s2_scale_bytes - 1);
            }
            BAD(shared_inter, shared_inter + 128);
        }
        BAD(y_dtype, E4M3);
        BAD(x_dtype, I32);
        if (w_dtype != F32) BAD(w_dtype, F32); /* f32 weights need 4-byte elements: the buffers are short */
        BAD(w_dtype, E5M2);
        BAD(tokens, -1);
        BAD(tokens, tokens + 1);
        BAD(tokens, BIG);
        BAD(hidden, hidden + 128);
        BAD(hidden, BIG);
        BAD(inter, 0);
        BAD(inter, inter + 128);
        BAD(inter, (int64_t)INT32_MAX + 1);
        BAD(shared_inter, -128);
        BAD(experts, 5);
        BAD(experts, 0);
        BAD(top_k, 3);
        BAD(top_k, 0);
        BAD(n_group, 3);
        BAD(topk_group, 3);
        BAD(score_func, -1);
        BAD(routed_scaling_factor, NAN);
        BAD(y, x);
        BAD(counts, (int32_t*)bias);
#undef CALL
        gb_free_all();
    }
}

/* ======================================================================= elementwise */

/* value i of a float buffer of dtype f32|bf16 */
static float ew_ld(const void* p, int32_t dt, int64_t i) {
    return dt == F32 ? ((const float*)p)[i] : ref_bf16_to_f32(((const uint16_t*)p)[i]);
}

/* bits of y[i] (dtype) equal the f32 value v rounded to dtype (NaN: any NaN) */
static int ew_same(const void* y, int32_t dt, int64_t i, float v) {
    if (dt == F32) return same_f32(((const float*)y)[i], v);
    uint16_t got = ((const uint16_t*)y)[i], want = ref_f32_to_bf16(v);
    if (isnan(ref_bf16_to_f32(got)) || isnan(ref_bf16_to_f32(want))) return isnan(ref_bf16_to_f32(got)) && isnan(ref_bf16_to_f32(want));
    return got == want;
}

static void ew_fill(void* p, int32_t dt, int64_t n, float lo, float hi) {
    if (dt == F32) t_fill_f32(p, n, lo, hi);
    else fill_bf16(p, n, lo, hi);
}

static void test_elementwise(void) {
    for (int variant = 0; variant < 4; variant++) {
        int32_t dtype = variant & 1 ? BF16 : F32;
        int es = dtype == F32 ? 4 : 2;

        /* ---- rmsnorm: x [rows, ldx], the first d columns ---- */
        int64_t rows = t_range(2, 5), d = variant == 3 ? 7168 : t_range(1, 80), ldx = d + (variant & 2 ? t_range(1, 64) : 0);
        double eps = 1e-6;
        void* x = gb_alloc((size_t)(rows * ldx * es));
        void* y = gb_alloc((size_t)(rows * d * es));
        float* w = gb_alloc((size_t)(d * 4));
        ew_fill(x, dtype, rows * ldx, -4, 4);
        t_fill_f32(w, d, -2, 2);
        if (dtype == F32) ((float*)x)[0] = 1e-40f; /* a denormal */
        int64_t x_bytes = rows * ldx * es, y_bytes = rows * d * es, w_bytes = d * 4;
#define CALL() dsk4j_rmsnorm(ctx, y, y_bytes, x, x_bytes, w, w_bytes, dtype, rows, d, ldx, eps)
        EXPECT_OK(CALL());
        int bad = 0;
        for (int64_t r = 0; r < rows; r++) {
            double ss = 0;
            for (int64_t i = 0; i < d; i++) ss += (double)ew_ld(x, dtype, r * ldx + i) * ew_ld(x, dtype, r * ldx + i);
            double inv = 1.0 / sqrt(ss / (double)d + eps);
            for (int64_t i = 0; i < d; i++)
                bad += !ew_same(y, dtype, r * d + i, (float)((double)ew_ld(x, dtype, r * ldx + i) * inv * (double)w[i]));
        }
        CHECK(bad == 0, "rmsnorm variant %d (d %lld, ldx %lld): %d values differ", variant, (long long)d, (long long)ldx, bad);
        /* the x buffer may be as short as (rows - 1) * ldx + d elements */
        EXPECT_OK(dsk4j_rmsnorm(ctx, y, y_bytes, x, ((rows - 1) * ldx + d) * es, w, w_bytes, dtype, rows, d, ldx, eps));
        /* rows 0: nothing to read or write, NULL buffers are fine */
        EXPECT_OK(dsk4j_rmsnorm(ctx, NULL, 0, NULL, 0, w, w_bytes, dtype, 0, d, ldx, eps));
        BAD(ctx, NULL);
        BAD(y, NULL);
        BAD(x, NULL);
        BAD(w, NULL);
        BAD(y_bytes, y_bytes - 1);
        BAD(x_bytes, ((rows - 1) * ldx + d) * es - 1);
        BAD(w_bytes, w_bytes - 1);
        BAD(dtype, F16);
        BAD(dtype, I32);
        BAD(rows, -1);
        BAD(rows, rows + 1);
        BAD(rows, BIG);
        BAD(d, 0);
        BAD(d, -1);
        BAD(d, ldx + 1);
        BAD(ldx, d - 1);
        BAD(ldx, BIG);
        BAD(eps, -1.0);
        BAD(eps, NAN);
        BAD(eps, INFINITY);
        if (ldx != d) BAD(y, x); /* in place needs ldx == d (and then the same pointer) */
        BAD(y, (void*)((char*)x + es));
        BAD(y, (void*)w);
#undef CALL
        if (ldx == d) { /* in place gives the bits of the out-of-place call */
            EXPECT_OK(dsk4j_rmsnorm(ctx, y, y_bytes, x, x_bytes, w, w_bytes, dtype, rows, d, d, eps));
            EXPECT_OK(dsk4j_rmsnorm(ctx, x, x_bytes, x, x_bytes, w, w_bytes, dtype, rows, d, d, eps));
            CHECK(memcmp(x, y, (size_t)y_bytes) == 0, "rmsnorm in place differs");
        }
        /* an all-zero row with eps > 0 is finite (zero) */
        memset(x, 0, (size_t)x_bytes);
        EXPECT_OK(dsk4j_rmsnorm(ctx, y, y_bytes, x, x_bytes, w, w_bytes, dtype, rows, d, ldx, eps));
        bad = 0;
        for (int64_t i = 0; i < rows * d; i++) bad += ew_ld(y, dtype, i) != 0.0f;
        CHECK(bad == 0, "rmsnorm of zero rows: %d nonzero", bad);
        gb_free_all();

        /* ---- add, silu_mul ---- */
        int64_t n = t_range(1, 3000);
        void* a = gb_alloc((size_t)(n * es));
        void* b = gb_alloc((size_t)(n * es));
        void* c = gb_alloc((size_t)(n * es));
        ew_fill(a, dtype, n, -30, 30);
        ew_fill(b, dtype, n, -30, 30);
        int64_t a_bytes = n * es, b_bytes = n * es, c_bytes = n * es;
#define CALL() dsk4j_add(ctx, c, c_bytes, a, a_bytes, b, b_bytes, dtype, n)
        EXPECT_OK(CALL());
        bad = 0;
        for (int64_t i = 0; i < n; i++) bad += !ew_same(c, dtype, i, ew_ld(a, dtype, i) + ew_ld(b, dtype, i));
        CHECK(bad == 0, "add variant %d: %d values differ", variant, bad);
        EXPECT_OK(dsk4j_add(ctx, NULL, 0, NULL, 0, NULL, 0, dtype, 0));
        BAD(ctx, NULL);
        BAD(c, NULL);
        BAD(a, NULL);
        BAD(b, NULL);
        BAD(c_bytes, c_bytes - 1);
        BAD(a_bytes, a_bytes - 1);
        BAD(b_bytes, b_bytes - 1);
        BAD(dtype, E4M3);
        BAD(n, -1);
        BAD(n, n + 1);
        BAD(n, BIG);
        BAD(c, (void*)((char*)a + es));
        BAD(c, (void*)((char*)b + es));
#undef CALL
        /* silu_mul */
#define CALL() dsk4j_silu_mul(ctx, c, c_bytes, a, a_bytes, b, b_bytes, dtype, n)
        EXPECT_OK(CALL());
        bad = 0;
        for (int64_t i = 0; i < n; i++) {
            double z = ew_ld(a, dtype, i);
            bad += !ew_same(c, dtype, i, (float)((z / (1.0 + exp(-z))) * (double)ew_ld(b, dtype, i)));
        }
        CHECK(bad == 0, "silu_mul variant %d: %d values differ", variant, bad);
        BAD(ctx, NULL);
        BAD(c, NULL);
        BAD(a, NULL);
        BAD(b, NULL);
        BAD(c_bytes, c_bytes - 1);
        BAD(a_bytes, a_bytes - 1);
        BAD(b_bytes, b_bytes - 1);
        BAD(dtype, I32);
        BAD(n, -1);
        BAD(n, BIG);
        BAD(c, (void*)((char*)b + es));
#undef CALL
        /* in place: y == a, y == b give the bits of the out-of-place call */
        EXPECT_OK(dsk4j_silu_mul(ctx, c, c_bytes, a, a_bytes, b, b_bytes, dtype, n));
        EXPECT_OK(dsk4j_silu_mul(ctx, b, b_bytes, a, a_bytes, b, b_bytes, dtype, n));
        CHECK(memcmp(b, c, (size_t)c_bytes) == 0, "silu_mul in place (y == u) differs");
        EXPECT_OK(dsk4j_add(ctx, c, c_bytes, a, a_bytes, b, b_bytes, dtype, n));
        EXPECT_OK(dsk4j_add(ctx, a, a_bytes, a, a_bytes, b, b_bytes, dtype, n));
        CHECK(memcmp(a, c, (size_t)c_bytes) == 0, "add in place (y == a) differs");
        gb_free_all();

        /* ---- embed ---- */
        int32_t y_dtype = dtype, table_dtype = variant & 2 ? F32 : BF16;
        int yes = y_dtype == F32 ? 4 : 2, tes = table_dtype == F32 ? 4 : 2;
        int64_t tokens = t_range(1, 7), vocab = t_range(1, 50), ed = t_range(1, 70);
        void* table = gb_alloc((size_t)(vocab * ed * tes));
        void* ey = gb_alloc((size_t)(tokens * ed * yes));
        int32_t* ids = gb_alloc((size_t)(tokens * 4));
        ew_fill(table, table_dtype, vocab * ed, -5, 5);
        for (int64_t t = 0; t < tokens; t++) ids[t] = (int32_t)(t == 0 ? vocab - 1 : t == 1 ? 0 : t_range(0, vocab - 1));
        int64_t ey_bytes = tokens * ed * yes, table_bytes = vocab * ed * tes, ids_bytes = tokens * 4;
#define CALL() dsk4j_embed(ctx, ey, ey_bytes, y_dtype, table, table_bytes, table_dtype, ids, ids_bytes, tokens, vocab, ed)
        EXPECT_OK(CALL());
        bad = 0;
        for (int64_t t = 0; t < tokens; t++)
            for (int64_t i = 0; i < ed; i++) bad += !ew_same(ey, y_dtype, t * ed + i, ew_ld(table, table_dtype, ids[t] * ed + i));
        CHECK(bad == 0, "embed variant %d: %d values differ", variant, bad);
        BAD(ctx, NULL);
        BAD(ey, NULL);
        BAD(table, NULL);
        BAD(ids, NULL);
        BAD(ey_bytes, ey_bytes - 1);
        BAD(table_bytes, table_bytes - 1);
        BAD(ids_bytes, ids_bytes - 1);
        BAD(y_dtype, E4M3);
        BAD(table_dtype, I32);
        BAD(tokens, -1);
        BAD(tokens, tokens + 1);
        BAD(vocab, -1);
        BAD(vocab, vocab + 1);
        BAD(ed, -1);
        BAD(ed, BIG);
        BAD(ey, (void*)table);
        BAD(ey, (void*)ids);
        BAD(vocab, (int64_t)ids[0]); /* ids[0] = vocab - 1 is then out of range */
#undef CALL
        ids[tokens - 1] = (int32_t)vocab;
        EXPECT_FAILC(INVALID, dsk4j_embed(ctx, ey, ey_bytes, y_dtype, table, table_bytes, table_dtype, ids, ids_bytes, tokens, vocab, ed));
        CHECK(strstr(dsk4j_last_error(), "'ids'") != NULL, "embed error names ids: %s", dsk4j_last_error());
        ids[tokens - 1] = -1;
        EXPECT_FAILC(INVALID, dsk4j_embed(ctx, ey, ey_bytes, y_dtype, table, table_bytes, table_dtype, ids, ids_bytes, tokens, vocab, ed));
        gb_free_all();

        /* ---- copy_columns (any dtype) ---- */
        static const int32_t ANY[6] = {F32, BF16, F16, E4M3, E5M2, I32};
        static const int ANY_SIZE[6] = {4, 2, 2, 1, 1, 4};
        int ai = (int)t_range(0, 5);
        int32_t cdtype = ANY[ai];
        int ces = ANY_SIZE[ai];
        int64_t crows = t_range(1, 6), dst_cols = t_range(1, 90), src_cols = t_range(1, 90);
        int64_t width = t_range(0, dst_cols < src_cols ? dst_cols : src_cols);
        int64_t dst_col0 = t_range(0, dst_cols - width), src_col0 = t_range(0, src_cols - width);
        uint8_t* dst = gb_alloc((size_t)(crows * dst_cols * ces));
        uint8_t* src = gb_alloc((size_t)(crows * src_cols * ces));
        uint8_t* want = malloc((size_t)(crows * dst_cols * ces));
        t_fill_bytes(dst, crows * dst_cols * ces);
        t_fill_bytes(src, crows * src_cols * ces);
        memcpy(want, dst, (size_t)(crows * dst_cols * ces));
        for (int64_t r = 0; r < crows; r++)
            memcpy(want + (r * dst_cols + dst_col0) * ces, src + (r * src_cols + src_col0) * ces, (size_t)(width * ces));
        int64_t dst_bytes = crows * dst_cols * ces, src_bytes = crows * src_cols * ces;
#define CALL() dsk4j_copy_columns(ctx, dst, dst_bytes, src, src_bytes, cdtype, crows, dst_cols, dst_col0, src_cols, src_col0, width)
        EXPECT_OK(CALL());
        CHECK(memcmp(dst, want, (size_t)dst_bytes) == 0, "copy_columns %s: window or the rest differs", cap_name);
        free(want);
        BAD(ctx, NULL);
        BAD(dst, NULL);
        BAD(src, NULL);
        BAD(dst_bytes, dst_bytes - 1);
        BAD(src_bytes, src_bytes - 1);
        BAD(cdtype, 6);
        BAD(cdtype, -1);
        BAD(crows, -1);
        BAD(crows, crows + 1);
        BAD(dst_cols, -1);
        BAD(dst_col0, -1);
        BAD(dst_col0, dst_cols - width + 1);
        BAD(src_col0, src_cols - width + 1);
        BAD(src_col0, BIG);
        BAD(src_cols, BIG);
        BAD(width, -1);
        BAD(width, BIG);
        BAD(dst, (void*)src);
#undef CALL
        gb_free_all();

        /* ---- gather_rows (any dtype) ---- */
        int64_t grows = t_range(1, 9), src_rows = t_range(1, 6), cols = t_range(0, 40);
        uint8_t* gdst = gb_alloc((size_t)(grows * cols * ces + 1));
        uint8_t* gsrc = gb_alloc((size_t)(src_rows * cols * ces + 1));
        int32_t* idx = gb_alloc((size_t)(grows * 4));
        t_fill_bytes(gsrc, src_rows * cols * ces);
        for (int64_t i = 0; i < grows; i++) idx[i] = (int32_t)(i > 0 && t_range(0, 3) == 0 ? idx[i - 1] : t_range(0, src_rows - 1));
        int64_t gdst_bytes = grows * cols * ces, gsrc_bytes = src_rows * cols * ces, idx_bytes = grows * 4;
#define CALL() dsk4j_gather_rows(ctx, gdst, gdst_bytes, gsrc, gsrc_bytes, cdtype, idx, idx_bytes, grows, src_rows, cols)
        EXPECT_OK(CALL());
        bad = 0;
        for (int64_t i = 0; i < grows; i++) bad += memcmp(gdst + i * cols * ces, gsrc + idx[i] * cols * ces, (size_t)(cols * ces)) != 0;
        CHECK(bad == 0, "gather_rows: %d rows differ", bad);
        BAD(ctx, NULL);
        BAD(idx, NULL);
        BAD(gdst_bytes, gdst_bytes - 1);
        BAD(gsrc_bytes, gsrc_bytes - 1);
        BAD(idx_bytes, idx_bytes - 1);
        BAD(cdtype, 17);
        BAD(grows, -1);
        BAD(grows, grows + 1);
        BAD(src_rows, -1);
        BAD(cols, -1);
        BAD(cols, BIG);
        if (cols > 0) BAD(gdst, (void*)idx);
        if (cols > 0) BAD(gdst, (void*)gsrc);
#undef CALL
        if (cols > 0) {
            EXPECT_FAILC(INVALID, dsk4j_gather_rows(ctx, NULL, gdst_bytes, gsrc, gsrc_bytes, cdtype, idx, idx_bytes, grows, src_rows, cols));
            EXPECT_FAILC(INVALID, dsk4j_gather_rows(ctx, gdst, gdst_bytes, gsrc, gsrc_bytes, cdtype, idx, idx_bytes, grows, src_rows, cols + 1));
            EXPECT_FAILC(INVALID, dsk4j_gather_rows(ctx, gdst, gdst_bytes, gsrc, gsrc_bytes, cdtype, idx, idx_bytes, grows, 0, cols)); /* every idx out of [0, 0) */
        }
        idx[grows - 1] = (int32_t)src_rows;
        EXPECT_FAILC(INVALID, dsk4j_gather_rows(ctx, gdst, gdst_bytes, gsrc, gsrc_bytes, cdtype, idx, idx_bytes, grows, src_rows, cols));
        CHECK(strstr(dsk4j_last_error(), "'idx'") != NULL, "gather_rows error names idx: %s", dsk4j_last_error());
        idx[grows - 1] = -2;
        EXPECT_FAILC(INVALID, dsk4j_gather_rows(ctx, gdst, gdst_bytes, gsrc, gsrc_bytes, cdtype, idx, idx_bytes, grows, src_rows, cols));
        gb_free_all();
    }
}

/* ======================================================================= regressions */

/* Inputs that once hit undefined behaviour in the validation (int64 overflow of a size sum or of
 * n + 127); each is a valid empty call or a refused one, never UB. */
static void test_regressions(void) {
    uint8_t* b1 = gb_alloc(16);
    float* f1 = gb_alloc(16);
    /* weight_quant / weight_dequant with n = 0 and k near INT64_MAX: ceil(k/128) (fuzz_fp8) */
    EXPECT_OK(dsk4j_fp8_weight_quant(ctx, b1, 16, f1, 16, f1, 16, F32, 0, INT64_MAX, 128, 0));
    EXPECT_OK(dsk4j_fp8_weight_dequant(ctx, f1, 16, F32, b1, 16, f1, 16, INT64_MAX - 1, 0, 128));
    /* gemm with m = 0, k = 0, n near INT64_MAX: ceil(n/128) of b_scale */
    EXPECT_OK(dsk4j_gemm_fp8_block(ctx, f1, 16, F32, b1, 16, f1, 16, b1, 16, f1, 16, NULL, 0, 0, INT64_MAX, 0, 0, 0));
    EXPECT_OK(dsk4j_gemm_fp8_grouped_masked(ctx, f1, 16, F32, b1, 16, f1, 16, b1, 16, f1, 16, NULL, 0, 0, 4, INT64_MAX, 0));
    /* act_quant / gemm scale size ld * (rows - 1) + groups just past INT64_MAX (test_abi) */
    EXPECT_FAILC(INVALID, dsk4j_fp8_act_quant(ctx, b1, 16, f1, 16, f1, 16, F32, 2, 256, 128, 0, INT64_MAX - 1));
    EXPECT_FAILC(INVALID, dsk4j_fp8_act_quant(ctx, b1, 16, f1, 16, f1, 16, F32, 2, 256, 128, DSK4J_SCALE_COL_MAJOR, INT64_MAX - 1));
    EXPECT_FAILC(INVALID, dsk4j_gemm_fp8_block(ctx, f1, 16, F32, b1, 16, f1, 16, b1, 16, f1, 16, NULL, 0, 2, 1, 256, 0, INT64_MAX - 1));
    /* groups + 1 and nseq + 1 at INT64_MAX (fuzz_gemm) */
    EXPECT_FAILC(INVALID, dsk4j_gemm_fp8_grouped_contiguous(ctx, f1, 16, F32, b1, 16, f1, 16, b1, 16, f1, 16, (int32_t*)f1, 16, INT64_MAX, 0, 0, 0));
    EXPECT_FAILC(INVALID, dsk4j_mla_prefill(ctx, f1, 16, NULL, 0, f1, 16, f1, 16, f1, 16, F32, (int32_t*)b1, 16, INT64_MAX, 0, 1, 8, 8, 1.0f, 0));
    /* groups * n * k with k = 0 and groups * n past INT64_MAX (fuzz_gemm) */
    memset(b1, 0, 16);
    EXPECT_OK(dsk4j_gemm_fp8_grouped_masked(ctx, f1, 16, F32, b1, 16, f1, 16, b1, 16, f1, 16, (int32_t*)b1, 16, 4, 0, INT64_MAX / 2, 0));
    /* moe.dispatch with a misaligned src_of (UBSan misaligned store) */
    int32_t* idx = gb_alloc(8);
    idx[0] = 0, idx[1] = 1;
    int32_t* o = gb_alloc(64);
    EXPECT_FAILC(INVALID, dsk4j_moe_dispatch(ctx, o, 8, o + 4, 12, o + 8, 8, (int32_t*)((char*)(o + 11) + 2), 8, idx, 8, 2, 1, 2, 1, 0));
    gb_free_all();
}

/* ======================================================================= main */

typedef struct {
    const char* name;
    int32_t flags;
} cap;

static const cap CAPS[] = {
    {"portable", DSK4J_CPU_FORCE_PORTABLE},
    {"avx2", DSK4J_CPU_MAX_AVX2},
    {"avx512", DSK4J_CPU_MAX_AVX512},
    {"amx", 0},
};

static void run_cap(const cap* c, int threads) {
    cap_name = c->name;
    int rc = dsk4j_context_open(&ctx, "cpu", threads, c->flags);
    CHECK(rc == DSK4J_OK, "open cpu (%s): %s", c->name, dsk4j_last_error());
    if (rc) return;
    char desc[128];
    dsk4j_context_describe(desc, sizeof desc, ctx);
    long before = t_checks, fails = t_failures;
    t_seed(0x5eed0000u + (uint64_t)(c - CAPS) * 7919u + (uint64_t)threads);
    test_context();
    test_fp8_cast();
    test_fp8_act_quant();
    test_fp8_weight();
    test_gemm_fp8_block();
    test_gemm_bf16();
    test_gemm_f32();
    test_gemm_grouped();
    test_rope();
    test_mla_cache();
    test_mla_decode();
    test_mla_prefill();
    test_mla_absorb();
    test_moe_gate();
    test_moe_dispatch_gather_combine();
    test_moe_bias_update();
    test_moe_silu_quant();
    test_moe_forward();
    test_elementwise();
    test_regressions();
    dsk4j_context_close(ctx);
    ctx = NULL;
    printf("test_abi: cap %-8s threads %d (%s): %ld checks, %ld failed\n", c->name, threads, desc, t_checks - before,
           t_failures - fails);
    fflush(stdout);
}

int main(int argc, char** argv) {
    int ncaps = (int)(sizeof CAPS / sizeof CAPS[0]);
    for (int i = 0; i < ncaps; i++) {
        int wanted = argc < 2;
        for (int j = 1; j < argc; j++) wanted |= strcmp(argv[j], CAPS[i].name) == 0;
        if (!wanted) continue;
        run_cap(&CAPS[i], 2);
        if (i == 0) run_cap(&CAPS[i], 1);
    }
    printf("test_abi: %ld checks, %ld failed\n", t_checks, t_failures);
    return t_failures ? 1 : 0;
}
