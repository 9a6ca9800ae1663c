/* gpu_check.c - checks the CUDA backend's fp8 kernels against the CPU backend and times them.
 *
 * Opens "cpu", "cuda:0" (fast kernels) and "cuda:0" with DSK4J_CUDA_REFERENCE_KERNELS. For every
 * fp8 op, on random inputs with edge cases (NaN, +-Inf, +-0, denormals, huge values, ties) and
 * DeepSeek-V3 shapes, outputs are poisoned (0xAB) before each run and the cuda results are
 * compared with the CPU backend's: bit for bit, except that any NaN matches any NaN in float
 * outputs (the contract says only "NaN stays NaN" there). Then all 2^32 f32 patterns go
 * through dsk4j_fp8_cast -> e4m3 / e5m2 on the GPU (fast kernels) and the CPU. Last, the fast
 * kernels are timed (dsk4j_synchronize + clock_gettime) against a device-to-device copy.
 *
 * Then the gemm ops (gemm.fp8_block, gemm.bf16, gemm.fp8_grouped_contiguous / _masked, gemm.f32
 * with f32 and bf16 b): cuda ref and fast vs the cpu backend, relative Frobenius error <= 2e-3
 * (f32 out; 1e-5 for gemm.f32, exact f32 products on both) / 1e-2 (bf16 out) over
 * the written rows, rows that must not be written still poisoned; and TFLOPS of the fast kernels
 * on m=4096 n=7168 k=16384 and m=64 n=2112 k=7168 (checked against a sampled double reference).
 * Every gemm output has 4096 guard bytes of 0xFF after it that must stay untouched.
 *
 * Then gemm.fp8_block on the sm_90a wgmma kernel (the default context; DSK4J_CUDA_GEMM_KERNEL)
 * and on the mma.sync kernel (a context opened with DSK4J_CUDA_GEMM_KERNEL=mma): M / N tails,
 * K 128..7168, bf16 / + c / col-major scales, a misaligned view (fallback), random shapes,
 * and TFLOPS on the DeepGEMM shapes M x N x K = 4096x7168x16384, 64x2112x7168,
 * 128x7168x2048, 4096x2112x7168 (own table: shape, kernel, TFLOPS, errors). On a compute
 * capability 9.0 GPU the default context must be on wgmma, else the run fails.
 *
 * Then the rope ops (see the rope section: cuda vs cpu bit for bit, timings of rope.apply).
 *
 * Then the mla ops (see the mla section: cache append byte for byte, decode / prefill / absorb
 * within tolerance of the cpu backend, decode timed on FlashMLA's shapes).
 *
 * Then the moe ops (see the moe section: every op on cuda ref / fast vs the cpu backend on the
 * DeepSeek-V3 and V2-Lite routers, T in {1, 7, 128, 1000}; moe.forward checked and timed).
 *
 * Then the elementwise ops (see the elementwise section: rmsnorm, add, silu_mul, embed,
 * copy_columns, gather_rows at the model's shapes, cuda ref and fast vs the cpu backend).
 *
 * usage: gpu_check [--quick] [--no-exhaustive] [--no-timing] [--no-gemm] [--only-gemm]
 *                  [--only-wgmma] [--no-rope] [--only-rope] [--no-mla] [--only-mla] [--no-moe] [--only-moe]
 *                  [--no-ew] [--only-ew] [--seed N] [--device cuda:N]
 * exit: 0 all equal, 1 a mismatch, 2 an error, 77 skipped (CUDA unavailable here). */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsk4j.h"

#define EXIT_SKIP 77

#define CK(call)                                                                                   \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != DSK4J_OK) {                                                                     \
            fprintf(stderr, "gpu_check: %s:%d: %s -> %d: %s\n", __FILE__, __LINE__, #call, rc_,     \
                    dsk4j_last_error());                                                           \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)

static void* xmalloc(size_t n) {
    void* p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "gpu_check: out of host memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- random inputs ---- */
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* The e4m3 value of code c (0..126), for ties. */
static float e4m3_value(int c) {
    int e = (c >> 3) & 15, m = c & 7;
    return e ? ldexpf(1.0f + m / 8.0f, e - 7) : ldexpf((float)m, -9);
}

/* One value around magnitude 2^ex, or a special one. */
static float gen_value(int ex) {
    uint32_t r = (uint32_t)(rnd() % 1000);
    float sign = (rnd() & 1) ? -1.0f : 1.0f;
    if (r < 10) { static const uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff812345u, 0x7fffffffu};
                  return u2f(nans[rnd() % 5]); }
    if (r < 15) return sign * INFINITY;
    if (r < 30) return sign * 0.0f;
    if (r < 40) return u2f((uint32_t)(rnd() & 0x807fffffu)); /* denormal */
    if (r < 45) return sign * (rnd() & 1 ? FLT_MAX : 1e30f);
    if (r < 60) { int c = (int)(rnd() % 126); /* midpoint of two e4m3 neighbours, scaled */
                  return sign * ldexpf(0.5f * (e4m3_value(c) + e4m3_value(c + 1)), ex - 8); }
    float m = (float)(rnd() >> 40) / (float)(1ull << 24); /* [0,1) */
    return sign * ldexpf(m, ex);
}

/* f32 rows x k: per 128-group exponents vary; some groups are ties (amax 448*2^e exactly, the
 * rest midpoints * 2^e, so that x / s lands on e4m3 ties), tiny (amax < 1e-4) or special. */
static void gen_matrix(float* x, int64_t rows, int64_t k) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < k; g += 128) {
            int64_t len = k - g < 128 ? k - g : 128;
            float* p = x + r * k + g;
            uint32_t kind = (uint32_t)(rnd() % 16);
            int ex = (int)(rnd() % 61) - 30;
            if (kind == 0) { /* ties */
                int e = (int)(rnd() % 41) - 20;
                for (int64_t j = 0; j < len; j++) {
                    int c = (int)(rnd() % 125);
                    p[j] = ((rnd() & 1) ? -1.0f : 1.0f) * ldexpf(0.5f * (e4m3_value(c) + e4m3_value(c + 1)), e);
                }
                p[rnd() % len] = ((rnd() & 1) ? -448.0f : 448.0f) * ldexpf(1.0f, e);
            } else if (kind == 1) { /* tiny: the 1e-4 floor */
                for (int64_t j = 0; j < len; j++) p[j] = gen_value(-20);
            } else if (kind == 2) { /* all NaN or all zero */
                float v = (rnd() & 1) ? NAN : -0.0f;
                for (int64_t j = 0; j < len; j++) p[j] = v;
            } else {
                for (int64_t j = 0; j < len; j++) p[j] = gen_value(ex + (int)(rnd() % 5) - 2);
            }
        }
}

static void to_bf16(uint16_t* y, const float* x, int64_t n) { /* truncation: any bf16 pattern */
    for (int64_t i = 0; i < n; i++) y[i] = (uint16_t)(f2u(x[i]) >> 16);
}

/* ---- cases ---- */
enum { OP_CAST, OP_ACT, OP_WQ, OP_WDQ };
enum { CMP_BYTES, CMP_F32, CMP_16 }; /* CMP_16: bf16 or f16 (nan_mask decides) */

typedef struct {
    int op;
    const char* name;
    char shape[64];
    int32_t x_dtype, y_dtype, flags;
    int64_t n, rows, k, scale_ld, off; /* off: element offset of x and y (misaligned views) */
    int nin, nout;
    void* in[2];
    int64_t in_bytes[2];
    int64_t out_bytes[2];
    int out_cmp[2];
    int out_dtype[2];
    int time_it;
    double moved_bytes;
} check_case;

static size_t dsize(int32_t d) {
    return d == DSK4J_DTYPE_F32 ? 4 : (d == DSK4J_DTYPE_BF16 || d == DSK4J_DTYPE_F16) ? 2 : 1;
}

static int run_op(dsk4j_context* ctx, const check_case* c, void* const* out, void* const* in) {
    switch (c->op) {
    case OP_CAST: {
        int64_t xs = (int64_t)dsize(c->x_dtype), ys = (int64_t)dsize(c->y_dtype);
        return dsk4j_fp8_cast(ctx, (char*)out[0] + c->off * ys, c->out_bytes[0] - c->off * ys, c->y_dtype,
                              (const char*)in[0] + c->off * xs, c->in_bytes[0] - c->off * xs, c->x_dtype,
                              c->n);
    }
    case OP_ACT:
        return dsk4j_fp8_act_quant(ctx, out[0], c->out_bytes[0], (float*)out[1], c->out_bytes[1], in[0],
                                   c->in_bytes[0], c->x_dtype, c->rows, c->k, 128, c->flags, c->scale_ld);
    case OP_WQ:
        return dsk4j_fp8_weight_quant(ctx, out[0], c->out_bytes[0], (float*)out[1], c->out_bytes[1], in[0],
                                      c->in_bytes[0], c->x_dtype, c->rows, c->k, 128, c->flags);
    default:
        return dsk4j_fp8_weight_dequant(ctx, out[0], c->out_bytes[0], c->y_dtype, in[0], c->in_bytes[0],
                                        (const float*)in[1], c->in_bytes[1], c->rows, c->k, 128);
    }
}

static void run_cpu(dsk4j_context* cpu, const check_case* c, void** host_out) {
    for (int i = 0; i < c->nout; i++) memset(host_out[i], 0xAB, (size_t)c->out_bytes[i]);
    CK(run_op(cpu, c, host_out, c->in));
}

/* Runs on a cuda context; returns seconds per iteration of the timed loop (0 if not timed). */
static double run_cuda(dsk4j_context* g, const check_case* c, void** host_out, int iters) {
    void *din[2] = {0, 0}, *dout[2] = {0, 0};
    for (int i = 0; i < c->nin; i++) {
        CK(dsk4j_mem_alloc(&din[i], g, c->in_bytes[i]));
        CK(dsk4j_memcpy(g, din[i], c->in_bytes[i], c->in[i], c->in_bytes[i], c->in_bytes[i],
                        DSK4J_COPY_HOST_TO_DEVICE));
    }
    for (int i = 0; i < c->nout; i++) {
        CK(dsk4j_mem_alloc(&dout[i], g, c->out_bytes[i]));
        CK(dsk4j_memset(g, dout[i], c->out_bytes[i], 0xAB, c->out_bytes[i]));
    }
    CK(run_op(g, c, dout, din));
    CK(dsk4j_synchronize(g));
    for (int i = 0; i < c->nout; i++)
        CK(dsk4j_memcpy(g, host_out[i], c->out_bytes[i], dout[i], c->out_bytes[i], c->out_bytes[i],
                        DSK4J_COPY_DEVICE_TO_HOST));
    double per = 0;
    if (iters > 0) {
        for (int w = 0; w < 3; w++) CK(run_op(g, c, dout, din));
        CK(dsk4j_synchronize(g));
        double t0 = now_s();
        for (int it = 0; it < iters; it++) CK(run_op(g, c, dout, din));
        CK(dsk4j_synchronize(g));
        per = (now_s() - t0) / iters;
    }
    for (int i = 0; i < 2; i++) {
        if (din[i]) CK(dsk4j_mem_free(g, din[i]));
        if (dout[i]) CK(dsk4j_mem_free(g, dout[i]));
    }
    return per;
}

static int is_nan16(uint16_t v, int dtype) {
    return dtype == DSK4J_DTYPE_BF16 ? (v & 0x7fff) > 0x7f80 : (v & 0x7fff) > 0x7c00;
}

/* Number of differing elements; prints the first few. */
static long long compare(const char* what, const check_case* c, int o, const void* want, const void* got) {
    long long bad = 0;
    int64_t bytes = c->out_bytes[o];
    int kind = c->out_cmp[o];
    int64_t es = kind == CMP_BYTES ? 1 : kind == CMP_F32 ? 4 : 2;
    for (int64_t i = 0; i < bytes / es; i++) {
        int differ;
        if (kind == CMP_BYTES) {
            differ = ((const uint8_t*)want)[i] != ((const uint8_t*)got)[i];
        } else if (kind == CMP_F32) {
            uint32_t a, b;
            memcpy(&a, (const char*)want + 4 * i, 4);
            memcpy(&b, (const char*)got + 4 * i, 4);
            differ = a != b && !((a & 0x7fffffffu) > 0x7f800000u && (b & 0x7fffffffu) > 0x7f800000u);
        } else {
            uint16_t a = ((const uint16_t*)want)[i], b = ((const uint16_t*)got)[i];
            differ = a != b && !(is_nan16(a, c->out_dtype[o]) && is_nan16(b, c->out_dtype[o]));
        }
        if (differ) {
            if (bad < 5) {
                uint64_t a = 0, b = 0;
                memcpy(&a, (const char*)want + es * i, (size_t)es);
                memcpy(&b, (const char*)got + es * i, (size_t)es);
                printf("  MISMATCH %s %s %s out%d[%lld]: cpu 0x%llx, cuda 0x%llx\n", what, c->name, c->shape, o,
                       (long long)i, (unsigned long long)a, (unsigned long long)b);
            }
            bad++;
        }
    }
    return bad;
}

/* ---- results table ---- */
typedef struct {
    char op[40], shape[64];
    long long ref_bad, fast_bad;
    double gbps;
} row_t;
#define MAX_ROWS 256
static row_t g_rows[MAX_ROWS];
static int g_nrows;

static row_t* new_row(void) {
    if (g_nrows >= MAX_ROWS) {
        fprintf(stderr, "gpu_check: more than %d cases\n", MAX_ROWS);
        exit(2);
    }
    return &g_rows[g_nrows++];
}
static double g_copy_gbps;

static dsk4j_context *g_cpu, *g_fast, *g_ref, *g_mma; /* g_mma: DSK4J_CUDA_GEMM_KERNEL=mma */
static int g_fast_wgmma; /* g_fast's describe says "fp8 gemm wgmma" */
static int g_quick, g_timing = 1;

static void check(check_case* c) {
    void* want[2] = {0, 0};
    void* got[2] = {0, 0};
    for (int i = 0; i < c->nout; i++) {
        want[i] = xmalloc((size_t)c->out_bytes[i]);
        got[i] = xmalloc((size_t)c->out_bytes[i]);
    }
    run_cpu(g_cpu, c, want);
    long long bad_ref = 0, bad_fast = 0;
    run_cuda(g_ref, c, got, 0);
    for (int i = 0; i < c->nout; i++) bad_ref += compare("ref", c, i, want[i], got[i]);
    double per = run_cuda(g_fast, c, got, (g_timing && c->time_it) ? 20 : 0);
    for (int i = 0; i < c->nout; i++) bad_fast += compare("fast", c, i, want[i], got[i]);
    row_t* r = new_row();
    snprintf(r->op, sizeof r->op, "%s", c->name);
    snprintf(r->shape, sizeof r->shape, "%s", c->shape);
    r->ref_bad = bad_ref;
    r->fast_bad = bad_fast;
    r->gbps = per > 0 ? c->moved_bytes / per / 1e9 : 0;
    printf("%-30s %-26s ref %s fast %s\n", c->name, c->shape, bad_ref ? "FAIL" : "ok", bad_fast ? "FAIL" : "ok");
    fflush(stdout);
    for (int i = 0; i < c->nout; i++) {
        free(want[i]);
        free(got[i]);
    }
}

static const char* dname(int32_t d) {
    static const char* n[] = {"f32", "bf16", "f16", "e4m3", "e5m2"};
    return d >= 0 && d < 5 ? n[d] : "?";
}

static void check_cast(int32_t xd, int32_t yd, int64_t n, int64_t off) {
    check_case c;
    memset(&c, 0, sizeof c);
    c.op = OP_CAST;
    c.x_dtype = xd;
    c.y_dtype = yd;
    c.n = n;
    c.off = off;
    char name[40];
    snprintf(name, sizeof name, "fp8.cast %s->%s", dname(xd), dname(yd));
    c.name = name;
    snprintf(c.shape, sizeof c.shape, "[%lld]%s", (long long)n, off ? " +1 (misaligned)" : "");
    int64_t total = n + off;
    c.nin = 1;
    c.nout = 1;
    c.in_bytes[0] = total * (int64_t)dsize(xd);
    c.out_bytes[0] = total * (int64_t)dsize(yd);
    c.in[0] = xmalloc((size_t)c.in_bytes[0]);
    if (xd == DSK4J_DTYPE_F32) {
        gen_matrix((float*)c.in[0], 1, total);
    } else if (xd == DSK4J_DTYPE_BF16) {
        float* t = xmalloc((size_t)total * 4);
        gen_matrix(t, 1, total);
        to_bf16(c.in[0], t, total);
        free(t);
    } else { /* f16, e4m3, e5m2: every bit pattern */
        for (int64_t i = 0; i < c.in_bytes[0]; i++) ((uint8_t*)c.in[0])[i] = (uint8_t)rnd();
        if (dsize(xd) == 1)
            for (int64_t i = 0; i < total && i < 256; i++) ((uint8_t*)c.in[0])[i] = (uint8_t)i;
    }
    c.out_cmp[0] = yd == DSK4J_DTYPE_F32 ? CMP_F32 : dsize(yd) == 2 ? CMP_16 : CMP_BYTES;
    c.out_dtype[0] = yd;
    c.time_it = n >= (1 << 24);
    c.moved_bytes = (double)n * (double)(dsize(xd) + dsize(yd));
    check(&c);
    free(c.in[0]);
}

static void check_act(int32_t xd, int64_t rows, int64_t k, int32_t flags, int timed) {
    check_case c;
    memset(&c, 0, sizeof c);
    c.op = OP_ACT;
    c.x_dtype = xd;
    c.rows = rows;
    c.k = k;
    c.flags = flags;
    char name[40];
    snprintf(name, sizeof name, "fp8.act_quant %s%s%s", dname(xd), flags & DSK4J_SCALE_UE8M0 ? " ue8m0" : "",
             flags & DSK4J_SCALE_COL_MAJOR ? " colmaj" : "");
    c.name = name;
    snprintf(c.shape, sizeof c.shape, "[%lld,%lld]", (long long)rows, (long long)k);
    int64_t groups = k / 128;
    c.scale_ld = (flags & DSK4J_SCALE_COL_MAJOR) ? rows + 3 : 0; /* padded: padding stays poisoned */
    c.nin = 1;
    c.nout = 2;
    c.in_bytes[0] = rows * k * (int64_t)dsize(xd);
    c.out_bytes[0] = rows * k;
    c.out_bytes[1] = 4 * ((flags & DSK4J_SCALE_COL_MAJOR) ? groups * c.scale_ld : rows * groups);
    c.out_cmp[0] = CMP_BYTES;
    c.out_cmp[1] = CMP_BYTES; /* scales are never NaN: exact bits */
    float* x = xmalloc((size_t)(rows * k) * 4);
    gen_matrix(x, rows, k);
    if (xd == DSK4J_DTYPE_BF16) {
        c.in[0] = xmalloc((size_t)c.in_bytes[0]);
        to_bf16(c.in[0], x, rows * k);
        free(x);
    } else {
        c.in[0] = x;
    }
    c.time_it = timed;
    c.moved_bytes = (double)rows * (double)k * (double)(dsize(xd) + 1) + 4.0 * (double)(rows * groups);
    check(&c);
    free(c.in[0]);
}

static void check_wq(int32_t wd, int64_t n, int64_t k, int32_t flags, int timed) {
    check_case c;
    memset(&c, 0, sizeof c);
    c.op = OP_WQ;
    c.x_dtype = wd;
    c.rows = n;
    c.k = k;
    c.flags = flags;
    char name[40];
    snprintf(name, sizeof name, "fp8.weight_quant %s%s", dname(wd), flags & DSK4J_SCALE_UE8M0 ? " ue8m0" : "");
    c.name = name;
    snprintf(c.shape, sizeof c.shape, "[%lld,%lld]", (long long)n, (long long)k);
    int64_t nb = ((n + 127) / 128) * ((k + 127) / 128);
    c.nin = 1;
    c.nout = 2;
    c.in_bytes[0] = n * k * (int64_t)dsize(wd);
    c.out_bytes[0] = n * k;
    c.out_bytes[1] = 4 * nb;
    c.out_cmp[0] = CMP_BYTES;
    c.out_cmp[1] = CMP_BYTES;
    float* x = xmalloc((size_t)(n * k) * 4);
    gen_matrix(x, n, k);
    /* A few blocks get ties: max 448*2^e and midpoints. gen_matrix already does it per row group;
     * whole blocks of ties come from identical generation of rows, which is rare: add one. */
    if (n >= 128 && k >= 128) {
        int e = (int)(rnd() % 21) - 10;
        for (int64_t r = 0; r < 128; r++)
            for (int64_t j = 0; j < 128; j++) {
                int cc = (int)(rnd() % 125);
                x[r * k + j] = ((rnd() & 1) ? -1.0f : 1.0f) * ldexpf(0.5f * (e4m3_value(cc) + e4m3_value(cc + 1)), e);
            }
        x[5 * k + 7] = 448.0f * ldexpf(1.0f, e);
    }
    if (wd == DSK4J_DTYPE_BF16) {
        c.in[0] = xmalloc((size_t)c.in_bytes[0]);
        to_bf16(c.in[0], x, n * k);
        free(x);
    } else {
        c.in[0] = x;
    }
    c.time_it = timed;
    c.moved_bytes = (double)n * (double)k * (double)(dsize(wd) + 1) + 4.0 * (double)nb;
    check(&c);
    free(c.in[0]);
}

static void check_wdq(int32_t yd, int64_t n, int64_t k, int timed) {
    check_case c;
    memset(&c, 0, sizeof c);
    c.op = OP_WDQ;
    c.y_dtype = yd;
    c.rows = n;
    c.k = k;
    char name[40];
    snprintf(name, sizeof name, "fp8.weight_dequant ->%s", dname(yd));
    c.name = name;
    snprintf(c.shape, sizeof c.shape, "[%lld,%lld]", (long long)n, (long long)k);
    int64_t nb = ((n + 127) / 128) * ((k + 127) / 128);
    c.nin = 2;
    c.nout = 1;
    c.in_bytes[0] = n * k;
    c.in_bytes[1] = 4 * nb;
    c.out_bytes[0] = n * k * (int64_t)dsize(yd);
    c.out_cmp[0] = yd == DSK4J_DTYPE_F32 ? CMP_F32 : CMP_16;
    c.out_dtype[0] = yd;
    c.in[0] = xmalloc((size_t)c.in_bytes[0]);
    for (int64_t i = 0; i < n * k; i++) ((uint8_t*)c.in[0])[i] = (uint8_t)rnd();
    float* s = xmalloc((size_t)c.in_bytes[1]);
    for (int64_t i = 0; i < nb; i++) {
        uint32_t r = (uint32_t)(rnd() % 8);
        s[i] = r == 0 ? 1e-30f : r == 1 ? 1e30f : r == 2 ? ldexpf(1.0f, (int)(rnd() % 40) - 20)
                                                          : ldexpf(0.5f + (float)(rnd() >> 41) / (float)(1ull << 24),
                                                                   (int)(rnd() % 40) - 30);
    }
    c.in[1] = s;
    c.time_it = timed;
    c.moved_bytes = (double)n * (double)k * (double)(1 + dsize(yd)) + 4.0 * (double)nb;
    check(&c);
    free(c.in[0]);
    free(c.in[1]);
}

/* All 2^32 f32 patterns -> e4m3 and e5m2 on the GPU (fast) and the CPU. */
static void check_exhaustive(void) {
    const int64_t chunk = g_quick ? (1 << 22) : (1 << 28);
    const int64_t total = g_quick ? (int64_t)1 << 26 : (int64_t)1 << 32;
    uint32_t* x = xmalloc((size_t)chunk * 4);
    uint8_t *want = xmalloc((size_t)chunk), *got = xmalloc((size_t)chunk);
    void *dx = NULL, *dy = NULL;
    CK(dsk4j_mem_alloc(&dx, g_fast, chunk * 4));
    CK(dsk4j_mem_alloc(&dy, g_fast, chunk));
    long long bad[2] = {0, 0};
    double t0 = now_s();
    for (int64_t base = 0; base < total; base += chunk) {
        /* In quick mode, spread the chunks over the whole range. */
        uint64_t start = g_quick ? (uint64_t)(base / chunk) * ((uint64_t)1 << 32) / (uint64_t)(total / chunk)
                                 : (uint64_t)base;
        for (int64_t i = 0; i < chunk; i++) x[i] = (uint32_t)(start + (uint64_t)i);
        CK(dsk4j_memcpy(g_fast, dx, chunk * 4, x, chunk * 4, chunk * 4, DSK4J_COPY_HOST_TO_DEVICE));
        for (int f = 0; f < 2; f++) {
            int32_t yd = f ? DSK4J_DTYPE_E5M2 : DSK4J_DTYPE_E4M3;
            CK(dsk4j_memset(g_fast, dy, chunk, 0xAB, chunk));
            CK(dsk4j_fp8_cast(g_fast, dy, chunk, yd, dx, chunk * 4, DSK4J_DTYPE_F32, chunk));
            memset(want, 0xAB, (size_t)chunk);
            CK(dsk4j_fp8_cast(g_cpu, want, chunk, yd, x, chunk * 4, DSK4J_DTYPE_F32, chunk));
            CK(dsk4j_memcpy(g_fast, got, chunk, dy, chunk, chunk, DSK4J_COPY_DEVICE_TO_HOST));
            for (int64_t i = 0; i < chunk; i++)
                if (want[i] != got[i]) {
                    if (bad[f] < 5)
                        printf("  MISMATCH exhaustive f32 0x%08x -> %s: cpu 0x%02x, cuda 0x%02x\n", x[i],
                               dname(yd), want[i], got[i]);
                    bad[f]++;
                }
        }
    }
    CK(dsk4j_mem_free(g_fast, dx));
    CK(dsk4j_mem_free(g_fast, dy));
    free(x);
    free(want);
    free(got);
    for (int f = 0; f < 2; f++) {
        row_t* r = new_row();
        snprintf(r->op, sizeof r->op, "exhaustive f32->%s", f ? "e5m2" : "e4m3");
        snprintf(r->shape, sizeof r->shape, "%s", g_quick ? "2^26 sampled" : "all 2^32");
        r->ref_bad = -1; /* not run */
        r->fast_bad = bad[f];
        r->gbps = 0;
    }
    printf("exhaustive f32->e4m3/e5m2: %lld / %lld mismatches (%.1f s)\n", bad[0], bad[1], now_s() - t0);
}


/* ---- gemm (DESIGN.md 4.2): cuda ref and fast vs the cpu backend (relative Frobenius error over
 * the written rows; rows that must not be written stay poisoned 0xFF = NaN bits, which also makes
 * an unwritten element fail). Big timing shapes: fast vs a double reference on sampled elements. */
enum { G_FP8, G_BF16, G_CONTIG, G_MASKED, G_F32, G_F32_BF16 }; /* G_F32*: gemm.f32 with b f32 / bf16 */
typedef struct {
    int op, d_dtype, with_c, colmajor, sampled; /* sampled: compare fast with a host double reference */
    int64_t m, n, k, groups, m_max, off;        /* off: byte offset of the a and b views (misaligned) */
    int64_t rows;                               /* rows of d */
    void* in[5];                                /* a, a_scale, b, b_scale, c | offsets | masked_m */
    int64_t in_bytes[5];
    int64_t d_bytes, a_scale_ld;
    uint8_t* written;                           /* per row of d */
    double flops;
} gemm_case;
typedef struct {
    char op[40], shape[64];
    double ref_err, fast_err, tflops;
    long long ref_bad, fast_bad; /* poisoned rows touched, NaN where finite; -1: not run */
    int pass;
} gemm_row;
static gemm_row g_grows[96];
static int g_ngrows;

static int gemm_exec(dsk4j_context* ctx, const gemm_case* c, void* const* in, void* d) {
    const int64_t o = c->off;
    switch (c->op) {
    case G_FP8:
        return dsk4j_gemm_fp8_block(ctx, d, c->d_bytes, c->d_dtype, (const char*)in[0] + o, c->in_bytes[0] - o,
                                    in[1], c->in_bytes[1], (const char*)in[2] + o, c->in_bytes[2] - o, in[3],
                                    c->in_bytes[3], c->with_c ? in[4] : NULL, c->with_c ? c->in_bytes[4] : 0, c->m,
                                    c->n, c->k, c->colmajor ? DSK4J_SCALE_COL_MAJOR : 0, c->a_scale_ld);
    case G_BF16:
        return dsk4j_gemm_bf16(ctx, d, c->d_bytes, c->d_dtype, (const char*)in[0] + o, c->in_bytes[0] - o,
                               (const char*)in[2] + o, c->in_bytes[2] - o, c->with_c ? in[4] : NULL,
                               c->with_c ? c->in_bytes[4] : 0, c->m, c->n, c->k);
    case G_F32:
    case G_F32_BF16:
        return dsk4j_gemm_f32(ctx, d, c->d_bytes, (const float*)(const void*)((const char*)in[0] + o), c->in_bytes[0] - o,
                              (const char*)in[2] + o, c->in_bytes[2] - o,
                              c->op == G_F32 ? DSK4J_DTYPE_F32 : DSK4J_DTYPE_BF16, c->with_c ? in[4] : NULL,
                              c->with_c ? c->in_bytes[4] : 0, c->m, c->n, c->k);
    case G_CONTIG:
        return dsk4j_gemm_fp8_grouped_contiguous(ctx, d, c->d_bytes, c->d_dtype, in[0], c->in_bytes[0], in[1],
                                                 c->in_bytes[1], in[2], c->in_bytes[2], in[3], c->in_bytes[3],
                                                 in[4], c->in_bytes[4], c->groups, c->m, c->n, c->k);
    default:
        return dsk4j_gemm_fp8_grouped_masked(ctx, d, c->d_bytes, c->d_dtype, in[0], c->in_bytes[0], in[1],
                                             c->in_bytes[1], in[2], c->in_bytes[2], in[3], c->in_bytes[3], in[4],
                                             c->in_bytes[4], c->groups, c->m_max, c->n, c->k);
    }
}

/* Runs on a cuda context into host d (poisoned first); returns seconds per timed iteration.
 * d gets GUARD more bytes of 0xFF after it on the device; *guard_bad counts those written. */
#define GUARD 4096
static double gemm_cuda(dsk4j_context* g, const gemm_case* c, void* d, int iters, long long* guard_bad) {
    void* din[5] = {0, 0, 0, 0, 0};
    void* dd = NULL;
    for (int i = 0; i < 5; i++) {
        if (!c->in[i]) continue;
        CK(dsk4j_mem_alloc(&din[i], g, c->in_bytes[i]));
        CK(dsk4j_memcpy(g, din[i], c->in_bytes[i], c->in[i], c->in_bytes[i], c->in_bytes[i],
                        DSK4J_COPY_HOST_TO_DEVICE));
    }
    const int64_t all = c->d_bytes + GUARD;
    CK(dsk4j_mem_alloc(&dd, g, all));
    CK(dsk4j_memset(g, dd, all, 0xFF, all));
    CK(gemm_exec(g, c, din, dd));
    CK(dsk4j_synchronize(g));
    CK(dsk4j_memcpy(g, d, c->d_bytes, dd, c->d_bytes, c->d_bytes, DSK4J_COPY_DEVICE_TO_HOST));
    uint8_t guard[GUARD];
    CK(dsk4j_memcpy(g, guard, GUARD, (char*)dd + c->d_bytes, GUARD, GUARD, DSK4J_COPY_DEVICE_TO_HOST));
    *guard_bad = 0;
    for (int i = 0; i < GUARD; i++) *guard_bad += guard[i] != 0xFF;
    if (*guard_bad) printf("  %lld bytes written past the end of d\n", *guard_bad);
    double per = 0;
    if (iters > 0) {
        CK(gemm_exec(g, c, din, dd));
        CK(dsk4j_synchronize(g));
        double t0 = now_s();
        for (int it = 0; it < iters; it++) CK(gemm_exec(g, c, din, dd));
        CK(dsk4j_synchronize(g));
        per = (now_s() - t0) / iters;
    }
    for (int i = 0; i < 5; i++)
        if (din[i]) CK(dsk4j_mem_free(g, din[i]));
    CK(dsk4j_mem_free(g, dd));
    return per;
}

static double bf16f(uint16_t v) { return (double)u2f((uint32_t)v << 16); }
static double e4m3f(uint8_t v) {
    double x = (v & 0x7f) == 0x7f ? NAN : (double)e4m3_value(v & 0x7f);
    return (v & 0x80) ? -x : x;
}
static double d_elem(const gemm_case* c, const void* d, int64_t idx) {
    return c->d_dtype == DSK4J_DTYPE_F32 ? (double)((const float*)d)[idx] : bf16f(((const uint16_t*)d)[idx]);
}

/* Double reference of element (i, j) of d (host inputs). */
static double gemm_ref_elem(const gemm_case* c, int64_t i, int64_t j) {
    const uint8_t* a8 = (const uint8_t*)c->in[0] + c->off;
    const uint8_t* b8 = (const uint8_t*)c->in[2] + c->off;
    double acc = 0;
    if (c->op == G_BF16) {
        const uint16_t *a = (const uint16_t*)(const void*)a8, *b = (const uint16_t*)(const void*)b8;
        for (int64_t t = 0; t < c->k; t++) acc += bf16f(a[i * c->k + t]) * bf16f(b[j * c->k + t]);
    } else if (c->op == G_F32 || c->op == G_F32_BF16) {
        const float* a = (const float*)(const void*)a8;
        for (int64_t t = 0; t < c->k; t++)
            acc += (double)a[i * c->k + t] * (c->op == G_F32 ? (double)((const float*)(const void*)b8)[j * c->k + t]
                                                           : bf16f(((const uint16_t*)(const void*)b8)[j * c->k + t]));
    } else {
        int64_t g = 0;
        if (c->op == G_CONTIG) {
            const int32_t* o = c->in[4];
            while (g < c->groups && !(o[g] <= i && i < o[g + 1])) g++;
        } else if (c->op == G_MASKED) {
            g = i / c->m_max;
        }
        const float *as = c->in[1], *bs = c->in[3];
        const int64_t kb_n = c->k / 128, nb = (c->n + 127) / 128;
        for (int64_t kb = 0; kb < kb_n; kb++) {
            double s = 0;
            for (int64_t t = kb * 128; t < kb * 128 + 128; t++)
                s += e4m3f(a8[i * c->k + t]) * e4m3f(b8[(g * c->n + j) * c->k + t]);
            const double sa = c->colmajor ? as[kb * c->a_scale_ld + i] : as[i * kb_n + kb];
            acc += s * sa * (double)bs[(g * nb + j / 128) * kb_n + kb];
        }
    }
    if (c->with_c) acc += ((const float*)c->in[4])[i * c->n + j];
    return acc;
}

/* Relative Frobenius error of got vs want over the written rows (want NULL: sampled double
 * reference); *bad counts poisoned rows touched and NaN where the reference is finite;
 * *max_err (if not NULL): max |got - want| / max |want| over the compared finite elements. */
static double gemm_compare(const gemm_case* c, const void* want, const void* got, long long* bad,
                           double* max_err) {
    double num = 0, den = 0, max_diff = 0, max_ref = 0;
    *bad = 0;
    const int64_t es = c->d_dtype == DSK4J_DTYPE_F32 ? 4 : 2;
    const int64_t rstep = want ? 1 : (c->rows + 47) / 48, cstep = want ? 1 : (c->n + 47) / 48;
    for (int64_t i = 0; i < c->rows; i++) {
        if (!c->written[i]) {
            const uint8_t* p = (const uint8_t*)got + i * c->n * es;
            for (int64_t x = 0; x < c->n * es; x++)
                if (p[x] != 0xFF) {
                    if (*bad < 3) printf("  row %lld must not be written, byte %lld is 0x%02x\n", (long long)i,
                                         (long long)x, p[x]);
                    (*bad)++;
                    break;
                }
            continue;
        }
        if (!want && i % rstep != 0 && i != c->rows - 1) continue;
        for (int64_t j = 0; j < c->n; j += want ? 1 : cstep) {
            const double w = want ? d_elem(c, want, i * c->n + j) : gemm_ref_elem(c, i, j);
            const double v = d_elem(c, got, i * c->n + j);
            if (isfinite(w) && !isfinite(v)) {
                if (*bad < 3) printf("  d[%lld,%lld]: want %g, got %g\n", (long long)i, (long long)j, w, v);
                (*bad)++;
                continue;
            }
            if (!isfinite(w)) continue;
            num += (v - w) * (v - w);
            den += w * w;
            if (fabs(v - w) > max_diff || isnan(v)) max_diff = isnan(v) ? INFINITY : fabs(v - w);
            if (fabs(w) > max_ref) max_ref = fabs(w);
        }
    }
    if (max_err) *max_err = max_ref > 0 ? max_diff / max_ref : max_diff;
    return den > 0 ? sqrt(num / den) : (num > 0 ? INFINITY : 0.0);
}

static void gemm_check(gemm_case* c, const char* name, int timed) {
    const int64_t es = c->d_dtype == DSK4J_DTYPE_F32 ? 4 : 2;
    c->d_bytes = c->rows * c->n * es;
    void* want = c->sampled ? NULL : xmalloc((size_t)c->d_bytes);
    void* got = xmalloc((size_t)c->d_bytes);
    gemm_row* r = &g_grows[g_ngrows < 96 ? g_ngrows++ : 95];
    memset(r, 0, sizeof *r);
    snprintf(r->op, sizeof r->op, "%s%s%s%s", name, c->d_dtype == DSK4J_DTYPE_BF16 ? " ->bf16" : "",
             c->with_c ? " +c" : "", c->off ? " misal" : "");
    if (c->op == G_CONTIG || c->op == G_MASKED)
        snprintf(r->shape, sizeof r->shape, "G=%lld m=%lld n=%lld k=%lld", (long long)c->groups,
                 (long long)(c->op == G_MASKED ? c->m_max : c->m), (long long)c->n, (long long)c->k);
    else
        snprintf(r->shape, sizeof r->shape, "m=%lld n=%lld k=%lld%s", (long long)c->m, (long long)c->n,
                 (long long)c->k, c->colmajor ? " colmaj" : "");
    /* gemm.f32 multiplies exactly in f32 on every device (fmaf, no tensor cores): the f32 CPU bound */
    const double tol = c->d_dtype == DSK4J_DTYPE_BF16 ? 1e-2 : (c->op == G_F32 || c->op == G_F32_BF16) ? 1e-5 : 2e-3;
    r->pass = 1;
    if (!c->sampled) {
        memset(want, 0xFF, (size_t)c->d_bytes);
        CK(gemm_exec(g_cpu, c, c->in, want));
        long long gb = 0;
        gemm_cuda(g_ref, c, got, 0, &gb);
        r->ref_err = gemm_compare(c, want, got, &r->ref_bad, NULL);
        r->ref_bad += gb;
        r->pass &= r->ref_bad == 0 && r->ref_err <= tol;
    } else {
        r->ref_bad = -1;
    }
    long long gb = 0;
    double per = gemm_cuda(g_fast, c, got, timed && g_timing ? 10 : 0, &gb);
    r->fast_err = gemm_compare(c, want, got, &r->fast_bad, NULL);
    r->fast_bad += gb;
    r->pass &= r->fast_bad == 0 && r->fast_err <= tol;
    r->tflops = per > 0 ? c->flops / per / 1e12 : 0;
    printf("%-34s %-32s ref %s fast %s (err %.2e / %.2e)%s\n", r->op, r->shape,
           c->sampled ? "-" : (r->ref_bad || r->ref_err > tol) ? "FAIL" : "ok",
           (r->fast_bad || r->fast_err > tol) ? "FAIL" : "ok", r->ref_err, r->fast_err,
           c->sampled ? " [fast vs sampled double ref]" : "");
    fflush(stdout);
    free(want);
    free(got);
}

/* ---- the sm_90a wgmma fp8 gemm (cuda_gemm.c: g_fast uses it where it applies) vs the mma.sync
 * kernel (g_mma): both against the cpu backend (or a sampled double reference for the timed
 * shapes), d poisoned 0xFF with a guard after it; TFLOPS and errors in their own table. */
typedef struct {
    char shape[64], kernel[24];
    double err, max_err, tflops;
    long long bad;
    int pass;
} wg_row;
static wg_row g_wrows[128];
static int g_nwrows, g_wg_mode;

static void wg_check(gemm_case* c, int timed) {
    const int64_t es = c->d_dtype == DSK4J_DTYPE_F32 ? 4 : 2;
    c->d_bytes = c->rows * c->n * es;
    void* want = c->sampled ? NULL : xmalloc((size_t)c->d_bytes);
    void* got = xmalloc((size_t)c->d_bytes);
    if (!c->sampled) {
        memset(want, 0xFF, (size_t)c->d_bytes);
        CK(gemm_exec(g_cpu, c, c->in, want));
    }
    const double tol = c->d_dtype == DSK4J_DTYPE_BF16 ? 1e-2 : 2e-3;
    for (int q = 0; q < 2; q++) {
        dsk4j_context* ctx = q == 0 ? g_fast : g_mma;
        wg_row* r = &g_wrows[g_nwrows < 128 ? g_nwrows++ : 127];
        memset(r, 0, sizeof *r);
        snprintf(r->shape, sizeof r->shape, "%lldx%lldx%lld%s%s%s%s", (long long)c->m, (long long)c->n,
                 (long long)c->k, c->d_dtype == DSK4J_DTYPE_BF16 ? " bf16" : "", c->with_c ? " +c" : "",
                 c->colmajor ? " colmaj" : "", c->off ? (c->off % 16 ? " misal" : " +16B") : "");
        /* g_fast takes wgmma only with 16-byte aligned a/b (else it falls back to mma.sync). */
        const int wg = q == 0 && g_fast_wgmma && c->off % 16 == 0;
        snprintf(r->kernel, sizeof r->kernel, "%s", wg ? "wgmma" : q == 0 ? "fast(mma.sync)" : "mma.sync");
        long long gb = 0;
        double per = gemm_cuda(ctx, c, got, timed && g_timing ? 10 : 0, &gb);
        r->err = gemm_compare(c, want, got, &r->bad, &r->max_err);
        r->bad += gb;
        r->tflops = per > 0 ? c->flops / per / 1e12 : 0;
        r->pass = r->bad == 0 && r->err <= tol;
        printf("%-34s %-16s %s (err %.2e, max %.2e)%s\n", r->shape, r->kernel, r->pass ? "ok" : "FAIL", r->err,
               r->max_err, c->sampled ? " [vs sampled double ref]" : "");
        fflush(stdout);
    }
    free(want);
    free(got);
}

static float rnd_scale(void) { return ldexpf(1.0f + (float)(rnd() % 1024) / 1024.0f, (int)(rnd() % 9) - 12); }
static uint8_t rnd_e4m3(void) {
    uint8_t v;
    do v = (uint8_t)rnd();
    while ((v & 0x7f) == 0x7f);
    return v;
}

/* Builds and checks one case. sizes: group sizes (contiguous: row counts of the groups after
 * `lead` unwritten rows, with `gap` unwritten rows after each; masked: masked_m). */
static void gemm_run(int op, int d_dtype, int64_t m, int64_t n, int64_t k, int with_c, int colmajor, int64_t off,
                     int64_t groups, const int32_t* sizes, int64_t m_max, int sampled, int timed) {
    gemm_case c;
    memset(&c, 0, sizeof c);
    c.op = op, c.d_dtype = d_dtype, c.n = n, c.k = k, c.with_c = with_c, c.colmajor = colmajor, c.off = off;
    c.groups = op == G_CONTIG || op == G_MASKED ? groups : 1;
    c.sampled = sampled;
    int32_t* offs = NULL;
    if (op == G_CONTIG) { /* 5 unwritten rows before the groups, 7 after */
        offs = xmalloc((size_t)(groups + 1) * 4);
        int64_t row = 5;
        for (int64_t g = 0; g < groups; g++) {
            offs[g] = (int32_t)row;
            row += sizes[g];
        }
        offs[groups] = (int32_t)row;
        m = row + 7;
    }
    c.m = m;
    c.m_max = m_max;
    c.rows = op == G_MASKED ? groups * m_max : m;
    c.written = xmalloc((size_t)c.rows);
    double valid_rows = 0;
    for (int64_t i = 0; i < c.rows; i++) {
        int w = 1;
        if (op == G_CONTIG) {
            w = offs[0] <= i && i < offs[groups];
        } else if (op == G_MASKED) {
            w = i % m_max < sizes[i / m_max];
        }
        c.written[i] = (uint8_t)w;
        valid_rows += w;
    }
    c.flops = 2.0 * valid_rows * (double)n * (double)k;
    const int f32op = op == G_F32 || op == G_F32_BF16;
    const int64_t es_a = op == G_BF16 ? 2 : f32op ? 4 : 1, es_b = op == G_BF16 || op == G_F32_BF16 ? 2 : op == G_F32 ? 4 : 1;
    const int64_t kb = k / 128, bgroups = c.groups;
    c.in_bytes[0] = c.rows * k * es_a + off;
    c.in_bytes[2] = bgroups * n * k * es_b + off;
    c.in[0] = xmalloc((size_t)c.in_bytes[0] + 1);
    c.in[2] = xmalloc((size_t)c.in_bytes[2] + 1);
    for (int q = 0; q < 2; q++) {
        uint8_t* p = c.in[q * 2];
        const int64_t es = q == 0 ? es_a : es_b;
        int64_t cnt = (c.in_bytes[q * 2] - off) / es;
        if (es == 4) {
            float* f = (float*)(void*)(p + off);
            for (int64_t i = 0; i < cnt; i++) f[i] = (float)((double)(rnd() >> 11) / 9007199254740992.0 * 2 - 1);
        } else if (es == 2) {
            uint16_t* h = (uint16_t*)(void*)(p + off);
            for (int64_t i = 0; i < cnt; i++) h[i] = (uint16_t)(f2u((float)((double)(rnd() >> 11) / 9007199254740992.0 * 2 - 1)) >> 16);
        } else {
            for (int64_t i = 0; i < cnt; i++) p[off + i] = rnd_e4m3();
        }
    }
    if (op != G_BF16 && !f32op) {
        c.a_scale_ld = colmajor ? c.rows + 3 : 0;
        int64_t as_n = colmajor ? kb * c.a_scale_ld : c.rows * kb, bs_n = bgroups * ((n + 127) / 128) * kb;
        c.in_bytes[1] = as_n * 4;
        c.in_bytes[3] = bs_n * 4;
        float* as = xmalloc((size_t)c.in_bytes[1]);
        float* bs = xmalloc((size_t)c.in_bytes[3]);
        for (int64_t i = 0; i < as_n; i++) as[i] = rnd_scale();
        for (int64_t i = 0; i < bs_n; i++) bs[i] = rnd_scale();
        c.in[1] = as, c.in[3] = bs;
    }
    if (with_c) {
        c.in_bytes[4] = c.rows * n * 4;
        float* cc = xmalloc((size_t)c.in_bytes[4]);
        for (int64_t i = 0; i < c.rows * n; i++) cc[i] = (float)((int64_t)(rnd() % 2001) - 1000) / 100.0f;
        c.in[4] = cc;
    } else if (op == G_CONTIG) {
        c.in_bytes[4] = (groups + 1) * 4;
        c.in[4] = offs;
        offs = NULL;
    } else if (op == G_MASKED) {
        c.in_bytes[4] = groups * 4;
        int32_t* mm = xmalloc((size_t)groups * 4);
        memcpy(mm, sizes, (size_t)groups * 4);
        c.in[4] = mm;
    }
    static const char* names[] = {"gemm.fp8_block", "gemm.bf16", "gemm.fp8_grouped_contiguous", "gemm.fp8_grouped_masked",
                                  "gemm.f32", "gemm.f32 b=bf16"};
    if (g_wg_mode) wg_check(&c, timed);
    else gemm_check(&c, names[op], timed);
    for (int i = 0; i < 5; i++) free(c.in[i]);
    free(offs);
    free(c.written);
}

static void check_gemms(void) {
    const int Q = g_quick;
    const int F = DSK4J_DTYPE_F32, B = DSK4J_DTYPE_BF16;
    static const int64_t ms[] = {1, 4, 16, 127, 129, 512};
    static const int64_t nk[][2] = {{2112, 7168}, {4096, 7168}, {7168, 2048}};
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 6; i++) {
            if (s > 0 && ms[i] != 16 && ms[i] != 129) continue;
            if (Q && (s > 0 || (ms[i] != 1 && ms[i] != 129))) continue;
            gemm_run(G_FP8, F, ms[i], nk[s][0], nk[s][1], 0, 0, 0, 0, NULL, 0, 0, 0);
        }
    gemm_run(G_FP8, B, 129, 300, 256, 1, 0, 0, 0, NULL, 0, 0, 0);  /* n % 128 != 0, bf16 out, + c */
    gemm_run(G_FP8, F, 77, 1000, 384, 1, 1, 0, 0, NULL, 0, 0, 0);  /* col-major padded a_scale */
    gemm_run(G_FP8, F, 65, 130, 256, 0, 0, 1, 0, NULL, 0, 0, 0);   /* misaligned views */
    gemm_run(G_FP8, F, 1, 1, 128, 0, 0, 0, 0, NULL, 0, 0, 0);
    gemm_run(G_BF16, F, 129, 300, 1000, 1, 0, 0, 0, NULL, 0, 0, 0);
    gemm_run(G_BF16, B, 4, 2112, 7168, 0, 0, 0, 0, NULL, 0, 0, 0);
    gemm_run(G_BF16, F, Q ? 64 : 512, 4096, 7168, 0, 0, 0, 0, NULL, 0, 0, 0);
    gemm_run(G_BF16, F, 33, 70, 13, 1, 0, 1, 0, NULL, 0, 0, 0);    /* odd k, misaligned */
    gemm_run(G_BF16, B, 3, 5, 0, 1, 0, 0, 0, NULL, 0, 0, 0);       /* k = 0: d = c */
    /* gemm.f32: the gemv kernel (m <= 8) and the tiled one, b f32 and bf16, tails, + c, k = 0, a 4-byte offset view */
    for (int fb = 0; fb < 2; fb++) {
        const int op = fb ? G_F32_BF16 : G_F32;
        gemm_run(op, F, 1, 2112, 7168, 0, 0, 0, 0, NULL, 0, 0, 0);
        gemm_run(op, F, 8, 7168, 2048, 1, 0, 0, 0, NULL, 0, 0, 0);
        gemm_run(op, F, 9, 130, 255, 1, 0, 0, 0, NULL, 0, 0, 0);
        gemm_run(op, F, Q ? 65 : 200, 2112, Q ? 1024 : 7168, 0, 0, 0, 0, NULL, 0, 0, 0);
        gemm_run(op, F, 129, 131, 17, 1, 0, 4, 0, NULL, 0, 0, 0);
        gemm_run(op, F, 3, 5, 0, 1, 0, 0, 0, NULL, 0, 0, 0);
    }
    static const int32_t csz[] = {0, 130, 1, 0, 257, 64, 0, 100};  /* empty groups, odd sizes */
    gemm_run(G_CONTIG, F, 0, Q ? 512 : 4096, 7168, 0, 0, 0, 8, csz, 0, 0, 0);
    static const int32_t csz2[] = {256, 0, 384, 128};
    gemm_run(G_CONTIG, B, 0, 2112, 2048, 0, 0, 0, 4, csz2, 0, 0, 0);
    static const int32_t msz[] = {0, 1, 64, 17, 0, 33};
    gemm_run(G_MASKED, F, 0, Q ? 512 : 4096, 7168, 0, 0, 0, 6, msz, 64, 0, 0);
    static const int32_t msz2[] = {128, 5, 0, 77};
    gemm_run(G_MASKED, B, 0, 7168, 2048, 0, 0, 0, 4, msz2, 128, 0, 0);
    if (Q || !g_timing) return;
    /* Timing (fast kernels), checked against a double reference on ~48 x 48 sampled elements. */
    gemm_run(G_FP8, F, 4096, 7168, 16384, 0, 0, 0, 0, NULL, 0, 1, 1);
    gemm_run(G_FP8, B, 4096, 7168, 16384, 0, 0, 0, 0, NULL, 0, 1, 1);
    gemm_run(G_FP8, F, 64, 2112, 7168, 0, 0, 0, 0, NULL, 0, 1, 1);
    gemm_run(G_BF16, F, 4096, 7168, 16384, 0, 0, 0, 0, NULL, 0, 1, 1);
    gemm_run(G_F32, F, 4096, 7168, 4096, 0, 0, 0, 0, NULL, 0, 1, 1);
    gemm_run(G_F32_BF16, F, 1, 18432, 7168, 0, 0, 0, 0, NULL, 0, 1, 1); /* decode: 264 MB of bf16 weights */
    static const int32_t tsz[] = {512, 512, 512, 512, 512, 512, 512, 512};
    gemm_run(G_CONTIG, B, 0, 4096, 7168, 0, 0, 0, 8, tsz, 0, 1, 1);
    static const int32_t tm[] = {256, 200, 256, 128, 256, 256, 64, 256};
    gemm_run(G_MASKED, B, 0, 4096, 7168, 0, 0, 0, 8, tm, 256, 1, 1);
}

/* The wgmma section: M tails (1, 64, 127, 129, 300), N tails (100, 2112, 7168), K 128 .. 7168,
 * bf16 / + c / col-major scales, a 16-byte offset view (still wgmma) and a misaligned one (the
 * fallback), random shapes; then the timed DeepGEMM shapes (M x N x K). */
static void check_wgmma(void) {
    const int F = DSK4J_DTYPE_F32, B = DSK4J_DTYPE_BF16, Q = g_quick;
    g_wg_mode = 1;
    static const int64_t shapes[][3] = {{1, 2112, 7168}, {64, 2112, 7168}, {127, 7168, 2048}, {129, 100, 128},
                                        {300, 7168, 1536}, {300, 2112, 7168}, {1, 100, 128}, {129, 7168, 128},
                                        {64, 100, 7168}, {300, 100, 256}, {128, 128, 128}, {257, 2112, 384}};
    for (int i = 0; i < 12; i++) {
        if (Q && shapes[i][0] * shapes[i][1] * shapes[i][2] > (int64_t)1 << 30) continue;
        gemm_run(G_FP8, F, shapes[i][0], shapes[i][1], shapes[i][2], 0, 0, 0, 0, NULL, 0, 0, 0);
    }
    gemm_run(G_FP8, B, 129, 300, 256, 1, 0, 0, 0, NULL, 0, 0, 0);   /* bf16 out + c, n % 128 != 0 */
    gemm_run(G_FP8, F, 300, 2112, 1024, 1, 0, 0, 0, NULL, 0, 0, 0); /* f32 out + c */
    gemm_run(G_FP8, B, 127, 7168, 512, 0, 0, 0, 0, NULL, 0, 0, 0);
    gemm_run(G_FP8, B, 65, 101, 256, 1, 0, 0, 0, NULL, 0, 0, 0);    /* odd n: scalar epilogue */
    gemm_run(G_FP8, F, 77, 1000, 384, 1, 1, 0, 0, NULL, 0, 0, 0);   /* col-major padded a_scale */
    gemm_run(G_FP8, F, 130, 300, 640, 0, 0, 16, 0, NULL, 0, 0, 0);  /* 16-byte offset views: wgmma */
    gemm_run(G_FP8, F, 65, 130, 256, 0, 0, 1, 0, NULL, 0, 0, 0);    /* misaligned: mma.sync fallback */
    for (int i = 0; i < (Q ? 2 : 8); i++) {                          /* random shapes */
        const int64_t m = 1 + (int64_t)(rnd() % 600), n = 1 + (int64_t)(rnd() % 3000);
        const int64_t k = 128 * (1 + (int64_t)(rnd() % 24));
        gemm_run(G_FP8, (rnd() & 1) ? B : F, m, n, k, (int)(rnd() & 1), (int)(rnd() % 4 == 0), 0, 0, NULL, 0, 0, 0);
    }
    if (!Q && g_timing) {
        static const int64_t timed[][3] = {{4096, 7168, 16384}, {64, 2112, 7168}, {128, 7168, 2048}, {4096, 2112, 7168}};
        for (int i = 0; i < 4; i++) gemm_run(G_FP8, B, timed[i][0], timed[i][1], timed[i][2], 0, 0, 0, 0, NULL, 0, 1, 1);
        gemm_run(G_FP8, F, 4096, 7168, 16384, 0, 0, 0, 0, NULL, 0, 1, 1);
    }
    g_wg_mode = 0;
}

static long long wg_table(void) {
    long long fails = 0;
    printf("\nfp8 gemm kernels (M x N x K; err: relative Frobenius, max: max|diff| / max|ref|)\n");
    printf("%-34s %-16s %8s %9s %9s %s\n", "shape", "kernel", "TFLOPS", "err", "max_err", "");
    for (int i = 0; i < g_nwrows; i++) {
        wg_row* r = &g_wrows[i];
        char tf[16];
        if (r->tflops > 0) snprintf(tf, sizeof tf, "%.1f", r->tflops);
        else snprintf(tf, sizeof tf, "-");
        printf("%-34s %-16s %8s %9.2e %9.2e %s\n", r->shape, r->kernel, tf, r->err, r->max_err, r->pass ? "ok" : "FAIL");
        fails += !r->pass;
    }
    return fails;
}

static long long gemm_table(void) {
    long long fails = 0;
    printf("\n%-34s %-32s %9s %9s %8s %s\n", "gemm op", "shape", "ref_err", "fast_err", "TFLOPS", "");
    for (int i = 0; i < g_ngrows; i++) {
        gemm_row* r = &g_grows[i];
        char ref[24], tf[16];
        if (r->ref_bad < 0) snprintf(ref, sizeof ref, "-");
        else snprintf(ref, sizeof ref, "%.2e", r->ref_err);
        if (r->tflops > 0) snprintf(tf, sizeof tf, "%.1f", r->tflops);
        else snprintf(tf, sizeof tf, "-");
        printf("%-34s %-32s %9s %9.2e %8s %s\n", r->op, r->shape, ref, r->fast_err, tf, r->pass ? "ok" : "FAIL");
        fails += !r->pass;
    }
    return fails;
}

static void measure_copy(void) {
    const int64_t bytes = g_quick ? (64 << 20) : ((int64_t)2 << 30);
    void *a = NULL, *b = NULL;
    CK(dsk4j_mem_alloc(&a, g_fast, bytes));
    CK(dsk4j_mem_alloc(&b, g_fast, bytes));
    CK(dsk4j_memset(g_fast, a, bytes, 0x5A, bytes));
    for (int i = 0; i < 3; i++) CK(dsk4j_memcpy(g_fast, b, bytes, a, bytes, bytes, DSK4J_COPY_DEVICE_TO_DEVICE));
    const int iters = 20;
    double t0 = now_s();
    for (int i = 0; i < iters; i++) CK(dsk4j_memcpy(g_fast, b, bytes, a, bytes, bytes, DSK4J_COPY_DEVICE_TO_DEVICE));
    double per = (now_s() - t0) / iters;
    g_copy_gbps = 2.0 * (double)bytes / per / 1e9; /* read + write */
    CK(dsk4j_mem_free(g_fast, a));
    CK(dsk4j_mem_free(g_fast, b));
    printf("device-to-device copy: %.0f GB/s (read + write, %lld MiB buffers)\n", g_copy_gbps,
           (long long)(bytes >> 20));
}

/* ==== rope (DESIGN.md 4.3): rope.yarn_table and rope.apply, cuda ref and fast vs the cpu backend ====
 * The table is computed on the host for every backend: the cuda copy must equal the cpu one bit for
 * bit. rope.apply uses one f32 formula (fma) everywhere: cuda outputs must equal the cpu backend's
 * bit for bit, in place and out of place, aligned (the fast kernel's vector path) and misaligned
 * (its scalar path), both layouts, f32 and bf16, q_pe [T, 128, 64] and k_pe [T, 1, 64]; then the
 * fast kernel is timed in place on q_pe [16384, 128, 64] against the device copy bandwidth, and
 * an out-of-range position must be an error. Options: --no-rope, --only-rope. */
typedef struct {
    char op[40];
    char shape[56];
    long long ref_bad, fast_bad;
    double gbps;
} rope_row;
static rope_row g_rrows[48];
static int g_nrrows;

static long long rope_cmp(const void* want, const void* got, int64_t n, int32_t dt, const char* what) {
    long long bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t a = 0, b = 0;
        if (dt == DSK4J_DTYPE_F32) {
            memcpy(&a, (const char*)want + 4 * i, 4);
            memcpy(&b, (const char*)got + 4 * i, 4);
        } else {
            a = ((const uint16_t*)want)[i];
            b = ((const uint16_t*)got)[i];
        }
        if (a != b) {
            if (bad < 5) printf("  MISMATCH rope %s [%lld]: cpu 0x%x, cuda 0x%x\n", what, (long long)i, a, b);
            bad++;
        }
    }
    return bad;
}

/* One rope.apply case on DeepSeek-V3's table (dim 64) or, dim != 64, a small YaRN table of that
 * dim. misalign: x and y start one element past a 16-byte boundary. timed: time the fast kernel. */
static void rope_run(int64_t dim, int64_t t, int64_t h, int32_t dt, int32_t layout, int inplace, int misalign,
                     int timed) {
    const int64_t rows = dim == 64 ? 16384 : 300, orig = dim == 64 ? 4096 : 100, half = dim / 2;
    const int64_t n = t * h * dim, es = (int64_t)dsize(dt), tb = rows * half * 4, off = misalign ? es : 0;
    rope_row* r = &g_rrows[g_nrrows++];
    snprintf(r->op, sizeof r->op, "rope.apply %s %s%s", dt == DSK4J_DTYPE_F32 ? "f32" : "bf16",
             layout == DSK4J_ROPE_NEOX ? "neox" : "interleaved", inplace ? " in place" : "");
    snprintf(r->shape, sizeof r->shape, "[%lld,%lld,%lld]%s", (long long)t, (long long)h, (long long)dim,
             misalign ? " misaligned" : "");
    float* cos_h = xmalloc((size_t)tb);
    float* sin_h = xmalloc((size_t)tb);
    CK(dsk4j_rope_yarn_table(g_cpu, cos_h, tb, sin_h, tb, dim, 1e4, 40, orig, rows, 32, 1));
    char* x = xmalloc((size_t)(n * es));
    char* want = xmalloc((size_t)(n * es));
    char* got = xmalloc((size_t)(n * es) + 1);
    for (int64_t i = 0; i < n; i++) {
        float v = ldexpf((float)((int64_t)(rnd() % 2000001) - 1000000) / 1e6f, (int)(rnd() % 16) - 8);
        if (dt == DSK4J_DTYPE_F32) memcpy(x + 4 * i, &v, 4);
        else to_bf16((uint16_t*)x + i, &v, 1);
    }
    int32_t* pos = xmalloc((size_t)(t * 4));
    for (int64_t i = 0; i < t; i++) pos[i] = (int32_t)(rnd() % (uint64_t)rows);
    pos[0] = 0;
    if (t > 1) pos[t - 1] = (int32_t)(rows - 1);
    CK(dsk4j_rope_apply(g_cpu, want, n * es, x, n * es, dt, pos, t * 4, cos_h, tb, sin_h, tb, t, h, dim, rows, layout));
    dsk4j_context* ctxs[2] = {g_ref, g_fast};
    for (int k = 0; k < 2; k++) {
        dsk4j_context* g = ctxs[k];
        char *xd, *yd = NULL;
        void *cd, *sd, *pd;
        CK(dsk4j_mem_alloc((void**)&xd, g, n * es + 16));
        CK(dsk4j_mem_alloc(&cd, g, tb));
        CK(dsk4j_mem_alloc(&sd, g, tb));
        CK(dsk4j_mem_alloc(&pd, g, t * 4 + 4));
        CK(dsk4j_rope_yarn_table(g, cd, tb, sd, tb, dim, 1e4, 40, orig, rows, 32, 1));
        long long bad = 0;
        float* tab = xmalloc((size_t)tb);
        CK(dsk4j_memcpy(g, tab, tb, cd, tb, tb, DSK4J_COPY_DEVICE_TO_HOST));
        bad += rope_cmp(cos_h, tab, rows * half, DSK4J_DTYPE_F32, "yarn_table cos");
        CK(dsk4j_memcpy(g, tab, tb, sd, tb, tb, DSK4J_COPY_DEVICE_TO_HOST));
        bad += rope_cmp(sin_h, tab, rows * half, DSK4J_DTYPE_F32, "yarn_table sin");
        free(tab);
        CK(dsk4j_memcpy(g, xd + off, n * es, x, n * es, n * es, DSK4J_COPY_HOST_TO_DEVICE));
        CK(dsk4j_memcpy(g, pd, t * 4, pos, t * 4, t * 4, DSK4J_COPY_HOST_TO_DEVICE));
        if (inplace) {
            yd = xd;
        } else {
            CK(dsk4j_mem_alloc((void**)&yd, g, n * es + 16));
            CK(dsk4j_memset(g, yd, n * es + 16, 0xAB, n * es + 16));
        }
        CK(dsk4j_rope_apply(g, yd + off, n * es, xd + off, n * es, dt, pd, t * 4, cd, tb, sd, tb, t, h, dim, rows,
                            layout));
        CK(dsk4j_memcpy(g, got, n * es, yd + off, n * es, n * es, DSK4J_COPY_DEVICE_TO_HOST));
        bad += rope_cmp(want, got, n, dt, r->op);
        if (k == 0) r->ref_bad = bad;
        else r->fast_bad = bad;
        if (k == 1 && timed && g_timing) { /* in place, repeatedly (rotations keep magnitudes) */
            for (int w = 0; w < 3; w++)
                CK(dsk4j_rope_apply(g, xd + off, n * es, xd + off, n * es, dt, pd, t * 4, cd, tb, sd, tb, t, h, dim,
                                    rows, layout));
            CK(dsk4j_synchronize(g));
            const int iters = 20;
            double t0 = now_s();
            for (int it = 0; it < iters; it++)
                CK(dsk4j_rope_apply(g, xd + off, n * es, xd + off, n * es, dt, pd, t * 4, cd, tb, sd, tb, t, h, dim,
                                    rows, layout));
            CK(dsk4j_synchronize(g));
            double per = (now_s() - t0) / iters; /* includes the host check of the positions (a D2H copy) */
            r->gbps = (2.0 * (double)(n * es) + 4.0 * (double)t + 4.0 * (double)(t * dim)) / per / 1e9;
        }
        if (k == 1 && t > 2) { /* an out-of-range position is an error, nothing written */
            int32_t badpos = (int32_t)rows;
            CK(dsk4j_memcpy(g, (char*)pd + 4, 4, &badpos, 4, 4, DSK4J_COPY_HOST_TO_DEVICE));
            int rc = dsk4j_rope_apply(g, yd + off, n * es, xd + off, n * es, dt, pd, t * 4, cd, tb, sd, tb, t, h, dim,
                                      rows, layout);
            if (rc != DSK4J_ERR_INVALID_ARGUMENT || !strstr(dsk4j_last_error(), "'positions'")) {
                printf("  FAIL rope: position %d gave %d (%s), not an error naming 'positions'\n", badpos, rc,
                       dsk4j_last_error());
                r->fast_bad++;
            }
        }
        if (yd != xd) CK(dsk4j_mem_free(g, yd));
        CK(dsk4j_mem_free(g, xd));
        CK(dsk4j_mem_free(g, cd));
        CK(dsk4j_mem_free(g, sd));
        CK(dsk4j_mem_free(g, pd));
    }
    free(cos_h);
    free(sin_h);
    free(x);
    free(want);
    free(got);
    free(pos);
}

static void check_rope(void) {
    const int F = DSK4J_DTYPE_F32, B = DSK4J_DTYPE_BF16, IL = DSK4J_ROPE_INTERLEAVED, NX = DSK4J_ROPE_NEOX;
    for (int l = 0; l < 2; l++) {
        int32_t lay = l ? NX : IL;
        rope_run(64, 1, 128, F, lay, 0, 0, 0);                  /* decode */
        rope_run(64, g_quick ? 64 : 4096, 128, F, lay, 0, 0, 0); /* prefill q_pe */
        rope_run(64, g_quick ? 64 : 4096, 128, B, lay, 1, 0, 0);
        rope_run(64, 333, 1, B, lay, 0, 0, 0);                   /* k_pe [T, 64] */
        rope_run(64, 77, 3, F, lay, 1, 1, 0);                    /* misaligned: scalar path */
        rope_run(18, 50, 5, B, lay, 0, 0, 0);                    /* dim without a vector path */
        rope_run(32, 40, 2, F, lay, 0, 0, 0);
    }
    if (g_quick || !g_timing) return;
    rope_run(64, 16384, 128, F, IL, 1, 0, 1); /* 512 MiB f32 q_pe */
    rope_run(64, 32768, 128, B, IL, 1, 0, 1); /* 512 MiB bf16 q_pe */
    rope_run(64, 16384, 128, F, NX, 1, 0, 1);
}

static long long rope_table(void) {
    long long fails = 0;
    printf("\n%-34s %-32s %9s %9s %8s %7s\n", "rope op", "shape", "ref_mism", "fast_mism", "GB/s", "%copy");
    for (int i = 0; i < g_nrrows; i++) {
        rope_row* r = &g_rrows[i];
        char gb[16] = "-", pc[16] = "-";
        if (r->gbps > 0) {
            snprintf(gb, sizeof gb, "%.0f", r->gbps);
            if (g_copy_gbps > 0) snprintf(pc, sizeof pc, "%.0f%%", 100.0 * r->gbps / g_copy_gbps);
        }
        printf("%-34s %-32s %9lld %9lld %8s %7s\n", r->op, r->shape, r->ref_bad, r->fast_bad, gb, pc);
        fails += r->ref_bad + r->fast_bad;
    }
    return fails;
}
/* ==== end of rope ==== */

/* ==== elementwise (dsk4j.h elementwise.*): cuda ref and fast vs the cpu backend ====
 * rmsnorm [T, 7168] (ldx 7168) and [T, 512] of rows 576 wide (the kv_a_layernorm view), T in
 * {1, 7, 128}, f32 / bf16, in place too: the reference kernel (one thread per row, the cpu's order)
 * must equal the cpu bit for bit, the fast kernel (a block per row, tree-reduced double sum) within
 * 1 ulp of the output dtype. add and silu_mul on [T, 18432] (edge values: NaN, Inf, denormals,
 * huge), in place too: add bit for bit, silu_mul within 1 ulp (CUDA's f64 exp). embed V = 129280,
 * D = 7168 (bf16 table -> f32 and a smaller f32 table -> bf16), T = 7 ids incl. 0 and V-1: bit for
 * bit; an id outside [0, V) gives a zero row on cuda. copy_columns (k_pe out of [T, 576], the MTP
 * concat [T, 14336], odd windows of e4m3 / i32) and gather_rows (repeats; an idx out of range gives
 * a zero row): byte for byte. Outputs poisoned (0xAB) first. The maps have one kernel for both
 * contexts. Fast kernels at T = 128 timed against the device copy. Options: --no-ew, --only-ew. */
typedef struct {
    char op[40];
    char shape[56];
    long long ref_bad, fast_bad;
    double gbps;
} ew_row;
static ew_row g_ewrows[64];
static int g_newrows;

static ew_row* ew_new(const char* op, const char* shape) {
    ew_row* r = &g_ewrows[g_newrows++];
    memset(r, 0, sizeof *r);
    snprintf(r->op, sizeof r->op, "%s", op);
    snprintf(r->shape, sizeof r->shape, "%s", shape);
    return r;
}

static void* ew_in(dsk4j_context* g, const void* h, int64_t bytes) {
    void* d = NULL;
    CK(dsk4j_mem_alloc(&d, g, bytes > 0 ? bytes : 1));
    if (bytes > 0) CK(dsk4j_memcpy(g, d, bytes, h, bytes, bytes, DSK4J_COPY_HOST_TO_DEVICE));
    return d;
}

static void* ew_out(dsk4j_context* g, int64_t bytes) {
    void* d = NULL;
    CK(dsk4j_mem_alloc(&d, g, bytes > 0 ? bytes : 1));
    if (bytes > 0) CK(dsk4j_memset(g, d, bytes, 0xAB, bytes));
    return d;
}

static void ew_fetch(dsk4j_context* g, void* h, const void* d, int64_t bytes) {
    if (bytes > 0) CK(dsk4j_memcpy(g, h, bytes, d, bytes, bytes, DSK4J_COPY_DEVICE_TO_HOST));
}

/* Sign-magnitude bits -> a monotone integer (adjacent floats differ by 1). */
static long long ew_ord(uint32_t b, uint32_t sign) { return (b & sign) ? -(long long)(b & (sign - 1)) : (long long)b; }

/* Mismatches of got vs want (n elements): f32 / bf16 within `ulps` (any NaN matches any NaN), any
 * other dt (-1: raw bytes) byte for byte. */
static long long ew_cmp(const void* want, const void* got, int64_t n, int32_t dt, int ulps, const char* what) {
    long long bad = 0;
    for (int64_t i = 0; i < n; i++) {
        int ok;
        uint32_t a, b;
        if (dt == DSK4J_DTYPE_F32) {
            memcpy(&a, (const char*)want + 4 * i, 4);
            memcpy(&b, (const char*)got + 4 * i, 4);
            int na = isnan(u2f(a)), nb = isnan(u2f(b));
            ok = (na || nb) ? (na && nb) : llabs(ew_ord(a, 0x80000000u) - ew_ord(b, 0x80000000u)) <= ulps;
        } else if (dt == DSK4J_DTYPE_BF16) {
            a = ((const uint16_t*)want)[i];
            b = ((const uint16_t*)got)[i];
            int na = isnan(u2f(a << 16)), nb = isnan(u2f(b << 16));
            ok = (na || nb) ? (na && nb) : llabs(ew_ord(a, 0x8000u) - ew_ord(b, 0x8000u)) <= ulps;
        } else {
            a = ((const uint8_t*)want)[i];
            b = ((const uint8_t*)got)[i];
            ok = a == b;
        }
        if (!ok) {
            if (bad < 5) printf("  MISMATCH %s [%lld]: cpu 0x%x, cuda 0x%x\n", what, (long long)i, a, b);
            bad++;
        }
    }
    return bad;
}

/* n values of dt (f32 or bf16) into h: plain values of magnitudes 2^-8 .. 2^8, or with `special`
 * gen_value's edge cases (NaN, Inf, 0, denormals, huge). */
static void ew_fill(void* h, int32_t dt, int64_t n, int special) {
    for (int64_t i = 0; i < n; i++) {
        float v = special ? gen_value((int)(rnd() % 17) - 8)
                          : ldexpf((float)((int64_t)(rnd() % 2000001) - 1000000) / 1e6f, (int)(rnd() % 17) - 8);
        if (dt == DSK4J_DTYPE_F32) memcpy((char*)h + 4 * i, &v, 4);
        else to_bf16((uint16_t*)h + i, &v, 1);
    }
}

static void ew_time(ew_row* r, int64_t bytes, dsk4j_context* g, int (*op)(dsk4j_context*, void*), void* arg) {
    if (!g_timing) return;
    for (int w = 0; w < 3; w++) CK(op(g, arg));
    CK(dsk4j_synchronize(g));
    const int iters = 20;
    double t0 = now_s();
    for (int it = 0; it < iters; it++) CK(op(g, arg));
    CK(dsk4j_synchronize(g));
    r->gbps = (double)bytes / ((now_s() - t0) / iters) / 1e9;
}

typedef struct {
    void *y, *x, *w;
    int64_t yb, xb, wb, t, d, ldx;
    int32_t dt;
} ew_rms_args;
static int ew_rms_op(dsk4j_context* g, void* p) {
    ew_rms_args* a = p;
    return dsk4j_rmsnorm(g, a->y, a->yb, a->x, a->xb, a->w, a->wb, a->dt, a->t, a->d, a->ldx, 1e-6);
}

static void ew_rmsnorm(int64_t t, int64_t d, int64_t ldx, int32_t dt, int inplace) {
    const int64_t es = (int64_t)dsize(dt), xb = t * ldx * es, yb = t * d * es, wb = d * 4;
    char op[40], shape[56];
    snprintf(op, sizeof op, "rmsnorm %s%s", dname(dt), inplace ? " in place" : "");
    snprintf(shape, sizeof shape, "[%lld,%lld] ldx %lld", (long long)t, (long long)d, (long long)ldx);
    ew_row* r = ew_new(op, shape);
    char* x = xmalloc((size_t)xb);
    float* w = xmalloc((size_t)wb);
    char* want = xmalloc((size_t)yb);
    char* got = xmalloc((size_t)yb);
    ew_fill(x, dt, t * ldx, 0);
    if (t > 1) ew_fill(x, dt, ldx, 1); /* row 0 with edge values */
    if (t > 2) memset(x + 2 * ldx * es, 0, (size_t)(ldx * es)); /* row 2 all zero: finite */
    for (int64_t i = 0; i < d; i++) w[i] = 0.5f + (float)(rnd() % 1000) / 1000.0f;
    CK(dsk4j_rmsnorm(g_cpu, want, yb, x, xb, w, wb, dt, t, d, ldx, 1e-6));
    dsk4j_context* ctxs[2] = {g_ref, g_fast};
    for (int k = 0; k < 2; k++) {
        dsk4j_context* g = ctxs[k];
        void* xd = ew_in(g, x, xb);
        void* wd = ew_in(g, w, wb);
        void* yd = inplace ? xd : ew_out(g, yb);
        ew_rms_args a = {yd, xd, wd, yb, xb, wb, t, d, ldx, dt};
        CK(ew_rms_op(g, &a));
        ew_fetch(g, got, yd, yb);
        long long bad = ew_cmp(want, got, t * d, dt, k, op);
        if (k == 0) r->ref_bad = bad;
        else r->fast_bad = bad;
        if (k == 1 && t == 128 && !inplace) ew_time(r, xb + yb + wb, g, ew_rms_op, &a);
        if (!inplace) CK(dsk4j_mem_free(g, yd));
        CK(dsk4j_mem_free(g, xd));
        CK(dsk4j_mem_free(g, wd));
    }
    free(x);
    free(w);
    free(want);
    free(got);
}

typedef struct {
    void *y, *p, *q;
    int64_t b, n;
    int32_t dt;
    int silu;
} ew_bin_args;
static int ew_bin_op(dsk4j_context* g, void* v) {
    ew_bin_args* a = v;
    return a->silu ? dsk4j_silu_mul(g, a->y, a->b, a->p, a->b, a->q, a->b, a->dt, a->n)
                   : dsk4j_add(g, a->y, a->b, a->p, a->b, a->q, a->b, a->dt, a->n);
}

/* add / silu_mul on [t, cols]; where: 0 out of place, 1 y = first input, 2 y = second input. */
static void ew_binary(int silu, int64_t t, int64_t cols, int32_t dt, int where) {
    const int64_t n = t * cols, es = (int64_t)dsize(dt), b = n * es;
    char op[40], shape[56];
    snprintf(op, sizeof op, "%s %s%s", silu ? "silu_mul" : "add", dname(dt),
             where == 1 ? " y=first" : where == 2 ? " y=second" : "");
    snprintf(shape, sizeof shape, "[%lld,%lld]", (long long)t, (long long)cols);
    ew_row* r = ew_new(op, shape);
    char* p = xmalloc((size_t)b);
    char* q = xmalloc((size_t)b);
    char* want = xmalloc((size_t)b);
    char* got = xmalloc((size_t)b);
    ew_fill(p, dt, n, 1);
    ew_fill(q, dt, n, 1);
    ew_bin_args h = {want, p, q, b, n, dt, silu};
    CK(ew_bin_op(g_cpu, &h));
    dsk4j_context* ctxs[2] = {g_ref, g_fast};
    for (int k = 0; k < 2; k++) {
        dsk4j_context* g = ctxs[k];
        void* pd = ew_in(g, p, b);
        void* qd = ew_in(g, q, b);
        void* yd = where == 1 ? pd : where == 2 ? qd : ew_out(g, b);
        ew_bin_args a = {yd, pd, qd, b, n, dt, silu};
        CK(ew_bin_op(g, &a));
        ew_fetch(g, got, yd, b);
        long long bad = ew_cmp(want, got, n, dt, silu, op);
        if (k == 0) r->ref_bad = bad;
        else r->fast_bad = bad;
        if (k == 1 && t == 128 && where == 0) ew_time(r, 3 * b, g, ew_bin_op, &a);
        if (where == 0) CK(dsk4j_mem_free(g, yd));
        CK(dsk4j_mem_free(g, pd));
        CK(dsk4j_mem_free(g, qd));
    }
    free(p);
    free(q);
    free(want);
    free(got);
}

/* embed: table [v, d] of tdt, t ids (0, v-1, random) -> y [t, d] of ydt; with bad_id one id is v
 * (cuda: a zero row; the cpu result is made by hand). */
static void ew_embed(int64_t v, int64_t d, int64_t t, int32_t tdt, int32_t ydt, int bad_id) {
    const int64_t tes = (int64_t)dsize(tdt), yes = (int64_t)dsize(ydt), tb = v * d * tes, yb = t * d * yes;
    char op[40], shape[56];
    snprintf(op, sizeof op, "embed %s->%s%s", dname(tdt), dname(ydt), bad_id ? " bad id" : "");
    snprintf(shape, sizeof shape, "V %lld D %lld T %lld", (long long)v, (long long)d, (long long)t);
    ew_row* r = ew_new(op, shape);
    char* table = xmalloc((size_t)tb);
    ew_fill(table, tdt, v * d, 1);
    int32_t* ids = xmalloc((size_t)(t * 4));
    for (int64_t i = 0; i < t; i++) ids[i] = (int32_t)(i == 0 ? 0 : i == 1 ? v - 1 : (int64_t)(rnd() % (uint64_t)v));
    char* want = xmalloc((size_t)yb);
    char* got = xmalloc((size_t)yb);
    CK(dsk4j_embed(g_cpu, want, yb, ydt, table, tb, tdt, ids, t * 4, t, v, d));
    if (bad_id) {
        ids[t - 1] = (int32_t)v;
        memset(want + (t - 1) * d * yes, 0, (size_t)(d * yes));
        if (dsk4j_embed(g_cpu, got, yb, ydt, table, tb, tdt, ids, t * 4, t, v, d) != DSK4J_ERR_INVALID_ARGUMENT ||
            !strstr(dsk4j_last_error(), "'ids'")) {
            printf("  FAIL embed: the cpu took id %lld of a vocabulary of %lld\n", (long long)v, (long long)v);
            r->fast_bad++;
        }
    }
    dsk4j_context* ctxs[2] = {g_ref, g_fast};
    for (int k = 0; k < 2; k++) {
        dsk4j_context* g = ctxs[k];
        void* td = ew_in(g, table, tb);
        void* idd = ew_in(g, ids, t * 4);
        void* yd = ew_out(g, yb);
        CK(dsk4j_embed(g, yd, yb, ydt, td, tb, tdt, idd, t * 4, t, v, d));
        ew_fetch(g, got, yd, yb);
        long long bad = ew_cmp(want, got, t * d, ydt, 0, op);
        if (k == 0) r->ref_bad += bad;
        else r->fast_bad += bad;
        CK(dsk4j_mem_free(g, yd));
        CK(dsk4j_mem_free(g, idd));
        CK(dsk4j_mem_free(g, td));
    }
    free(table);
    free(ids);
    free(want);
    free(got);
}

static void ew_copy_columns(int32_t dt, int64_t t, int64_t dst_cols, int64_t d0, int64_t src_cols, int64_t s0,
                            int64_t width) {
    const int64_t es = (int64_t)dsize(dt == DSK4J_DTYPE_I32 ? DSK4J_DTYPE_F32 : dt), db = t * dst_cols * es,
                  sb = t * src_cols * es;
    char op[40], shape[56];
    snprintf(op, sizeof op, "copy_columns %s", dt == DSK4J_DTYPE_I32 ? "i32" : dname(dt));
    snprintf(shape, sizeof shape, "[%lld,%lld]@%lld <- [%lld]@%lld w %lld", (long long)t, (long long)dst_cols,
             (long long)d0, (long long)src_cols, (long long)s0, (long long)width);
    ew_row* r = ew_new(op, shape);
    uint8_t* dst = xmalloc((size_t)db);
    uint8_t* src = xmalloc((size_t)sb);
    uint8_t* want = xmalloc((size_t)db);
    uint8_t* got = xmalloc((size_t)db);
    for (int64_t i = 0; i < db; i++) dst[i] = (uint8_t)rnd();
    for (int64_t i = 0; i < sb; i++) src[i] = (uint8_t)rnd();
    memcpy(want, dst, (size_t)db);
    CK(dsk4j_copy_columns(g_cpu, want, db, src, sb, dt, t, dst_cols, d0, src_cols, s0, width));
    dsk4j_context* ctxs[2] = {g_ref, g_fast};
    for (int k = 0; k < 2; k++) {
        dsk4j_context* g = ctxs[k];
        void* dd = ew_in(g, dst, db); /* the columns outside the window must keep their bytes */
        void* sd = ew_in(g, src, sb);
        CK(dsk4j_copy_columns(g, dd, db, sd, sb, dt, t, dst_cols, d0, src_cols, s0, width));
        ew_fetch(g, got, dd, db);
        long long bad = ew_cmp(want, got, db, -1, 0, op);
        if (k == 0) r->ref_bad = bad;
        else r->fast_bad = bad;
        CK(dsk4j_mem_free(g, dd));
        CK(dsk4j_mem_free(g, sd));
    }
    free(dst);
    free(src);
    free(want);
    free(got);
}

/* gather_rows: n rows of src [m, cols] (repeats); with bad_idx the last index is m (cuda: zeros). */
static void ew_gather_rows(int32_t dt, int64_t n, int64_t m, int64_t cols, int bad_idx) {
    const int64_t es = (int64_t)dsize(dt == DSK4J_DTYPE_I32 ? DSK4J_DTYPE_F32 : dt), db = n * cols * es,
                  sb = m * cols * es;
    char op[40], shape[56];
    snprintf(op, sizeof op, "gather_rows %s%s", dt == DSK4J_DTYPE_I32 ? "i32" : dname(dt), bad_idx ? " bad idx" : "");
    snprintf(shape, sizeof shape, "[%lld,%lld] <- [%lld]", (long long)n, (long long)cols, (long long)m);
    ew_row* r = ew_new(op, shape);
    uint8_t* src = xmalloc((size_t)sb);
    for (int64_t i = 0; i < sb; i++) src[i] = (uint8_t)rnd();
    int32_t* idx = xmalloc((size_t)(n * 4));
    for (int64_t i = 0; i < n; i++) idx[i] = (int32_t)(i > 0 && rnd() % 3 == 0 ? idx[i - 1] : (int64_t)(rnd() % (uint64_t)m));
    uint8_t* want = xmalloc((size_t)db);
    uint8_t* got = xmalloc((size_t)db);
    CK(dsk4j_gather_rows(g_cpu, want, db, src, sb, dt, idx, n * 4, n, m, cols));
    if (bad_idx) {
        idx[n - 1] = (int32_t)m;
        memset(want + (n - 1) * cols * es, 0, (size_t)(cols * es));
    }
    dsk4j_context* ctxs[2] = {g_ref, g_fast};
    for (int k = 0; k < 2; k++) {
        dsk4j_context* g = ctxs[k];
        void* sd = ew_in(g, src, sb);
        void* id = ew_in(g, idx, n * 4);
        void* dd = ew_out(g, db);
        CK(dsk4j_gather_rows(g, dd, db, sd, sb, dt, id, n * 4, n, m, cols));
        ew_fetch(g, got, dd, db);
        long long bad = ew_cmp(want, got, db, -1, 0, op);
        if (k == 0) r->ref_bad = bad;
        else r->fast_bad = bad;
        CK(dsk4j_mem_free(g, dd));
        CK(dsk4j_mem_free(g, id));
        CK(dsk4j_mem_free(g, sd));
    }
    free(src);
    free(idx);
    free(want);
    free(got);
}

static void check_elementwise(void) {
    const int F = DSK4J_DTYPE_F32, B = DSK4J_DTYPE_BF16;
    static const int64_t ts[3] = {1, 7, 128};
    for (int i = 0; i < 3; i++) {
        int64_t t = ts[i];
        for (int b = 0; b < 2; b++) {
            int32_t dt = b ? B : F;
            ew_rmsnorm(t, 7168, 7168, dt, 0);
            ew_rmsnorm(t, 512, 576, dt, 0);
            ew_binary(0, t, 18432, dt, 0);
            ew_binary(1, t, 18432, dt, 0);
        }
    }
    ew_rmsnorm(7, 7168, 7168, B, 1);
    ew_rmsnorm(5, 1, 3, F, 0); /* d = 1 */
    ew_rmsnorm(3, 333, 333, F, 1);
    ew_binary(0, 7, 18432, B, 1);
    ew_binary(0, 3, 1001, F, 2);
    ew_binary(1, 7, 18432, F, 1);
    ew_binary(1, 3, 1001, B, 2);
    ew_embed(g_quick ? 4096 : 129280, 7168, 7, B, F, 0);
    ew_embed(1000, 7168, 7, F, B, 0);
    ew_embed(1000, 7168, 7, B, B, 1);
    ew_embed(50, 33, 7, F, F, 1);
    for (int i = 0; i < 3; i++) {
        ew_copy_columns(B, ts[i], 64, 0, 576, 512, 64);           /* k_pe out of kv_a [T, 576] */
        ew_copy_columns(F, ts[i], 14336, 7168, 7168, 0, 7168);    /* the MTP concat [emb; h] */
        ew_copy_columns(DSK4J_DTYPE_E4M3, ts[i], 100, 3, 77, 5, 60);
        ew_copy_columns(DSK4J_DTYPE_I32, ts[i], 9, 8, 4, 3, 1);
        ew_gather_rows(F, 7, ts[i], 7168, 0);
        ew_gather_rows(B, 7, ts[i], 7168, 0);
    }
    ew_gather_rows(DSK4J_DTYPE_E4M3, 33, 128, 7168, 0);
    ew_gather_rows(F, 7, 128, 7168, 1);
    ew_gather_rows(DSK4J_DTYPE_E5M2, 5, 3, 13, 1);
}

static long long ew_table(void) {
    long long fails = 0;
    printf("\n%-34s %-32s %9s %9s %8s %7s\n", "elementwise op", "shape", "ref_mism", "fast_mism", "GB/s", "%copy");
    for (int i = 0; i < g_newrows; i++) {
        ew_row* r = &g_ewrows[i];
        char gb[16] = "-", pc[16] = "-";
        if (r->gbps > 0) {
            snprintf(gb, sizeof gb, "%.0f", r->gbps);
            if (g_copy_gbps > 0) snprintf(pc, sizeof pc, "%.0f%%", 100.0 * r->gbps / g_copy_gbps);
        }
        printf("%-34s %-32s %9lld %9lld %8s %7s\n", r->op, r->shape, r->ref_bad, r->fast_bad, gb, pc);
        fails += r->ref_bad + r->fast_bad;
    }
    return fails;
}
/* ==== end of elementwise ==== */

/* ==== mla (DESIGN.md 4.4): cache append, decode, prefill, absorb; cuda ref and fast vs the cpu backend ====
 * mla.cache_append: tokens in shuffled order scattered through shuffled page tables into a pool
 * poisoned with 0xFF (NaN in every format), every format, f32 / bf16 input: the cuda pools must
 * equal the cpu pool byte for byte (the format is exact). mla.decode on that pool (unused slots
 * and pages stay NaN, block_table entries past a sequence are -1, so a read outside the visible
 * tokens shows): B, Sq in {1, 2} (causal and not), H in {1, 5, 16, 128}, seq lens 0, 1, 63, 64,
 * 65, 4096, random, every cache format, f32 / bf16 q and o; outputs poisoned (NaN). o: relative
 * Frobenius error vs the cpu backend <= 2e-5 (f32: every context runs the exact f32 reference
 * kernel) / 1e-2 (bf16 out; the fast kernels round P to bf16 as FlashMLA does); lse: |err| <= 1e-4
 * (ref, f32) / 1e-2 (fast, bf16), -inf exactly where the cpu has it; a NaN where the cpu is finite
 * fails.
 * mla.prefill (fast: the bf16 qk 192 / v 128 tensor-core kernel, 1e-2, lse 1e-2; f32, other dims
 * and the reference context: <= 1e-5) and absorb_q / absorb_o (reference kernels): 1e-2 for bf16 out;
 * prefill timed on one causal 4096-token sequence, 16 heads (TFLOPS over the computed pairs). Timing (fast context): decode on FlashMLA's shapes b = 128, s_q in {1, 2} (causal),
 * h = 128, seq 4096, page 64, bf16 cache and q (and h = 16, the memory-bound case, and the FP8
 * cache), checked against the cpu on the first 2 sequences; GB/s = (cache + q + o bytes) / time and
 * TFLOPS = 2 b s_q h L (576 + 512) / time as FlashMLA counts them, printed beside the H200 targets
 * (>= 3000 GB/s memory-bound, >= 550 TFLOPS compute-bound). On an sm_90a module a third context
 * opened with DSK4J_CUDA_MLA_KERNEL=wgmma runs every decode case and timing on the wgmma kernel
 * (columns wg_*; opt-in until verified), and a fourth with DSK4J_CUDA_MLA_KERNEL=flash every case
 * and timing on the FlashMLA-style kernel (mla_decode_sm90.cu, never run on a GPU before: lines
 * 'flash'); on the timed shapes the flash output is also compared over the whole batch with the
 * reference kernel's (column 'vs ref', same 1e-2 / lse 1e-2 bounds), and the H = 128 tail cases
 * (seq 1, 63, 65, 130, 4096; random page order; Sq = 2 causal) are the shapes it splits and masks.
 * Options: --no-mla, --only-mla. */
typedef struct {
    char op[40];
    char shape[80];
    double ref_err, fast_err, wg_err, fl_err; /* o: relative Frobenius error; < 0: not run */
    long long ref_bad, fast_bad, wg_bad, fl_bad;
    double ms, gbps, tflops;          /* fast context */
    double wg_ms, wg_gbps, wg_tflops; /* wgmma context */
    double fl_ms, fl_gbps, fl_tflops; /* flash context */
    double flref_err;                 /* timed shapes: flash vs the reference kernel, whole batch; < 0: not run */
    long long flref_bad;
} mla_row;
static dsk4j_context* g_mla_wg; /* DSK4J_CUDA_MLA_KERNEL=wgmma, when its describe says so; else NULL */
static dsk4j_context* g_mla_fl; /* DSK4J_CUDA_MLA_KERNEL=flash, when its describe says so; else NULL */
static mla_row g_mrows[160];
static int g_nmrows;

static mla_row* mla_new_row(void) {
    if (g_nmrows >= (int)(sizeof g_mrows / sizeof g_mrows[0])) {
        fprintf(stderr, "gpu_check: too many mla cases\n");
        exit(2);
    }
    mla_row* r = &g_mrows[g_nmrows++];
    memset(r, 0, sizeof *r);
    r->ref_err = r->fast_err = r->wg_err = r->fl_err = r->flref_err = -1;
    return r;
}

static float mla_uniform(float amp) { return amp * (2.0f * (float)(rnd() >> 40) / (float)(1ull << 24) - 1.0f); }

/* n values uniform in [-amp, amp) in dt (bf16: rounded from f32). */
static void mla_fill(void* p, int32_t dt, int64_t n, float amp) {
    for (int64_t i = 0; i < n; i++) {
        float v = mla_uniform(amp);
        if (dt == DSK4J_DTYPE_F32) ((float*)p)[i] = v;
        else ((uint16_t*)p)[i] = (uint16_t)((f2u(v) + 0x7fffu + ((f2u(v) >> 16) & 1u)) >> 16);
    }
}

static double mla_val(const void* p, int32_t dt, int64_t i) {
    if (dt == DSK4J_DTYPE_F32) return (double)((const float*)p)[i];
    return (double)u2f((uint32_t)((const uint16_t*)p)[i] << 16);
}

/* Relative Frobenius error of got vs want (n values in dt); *bad += non-finite where want is finite
 * (first few printed) and 1 if the error is above tol. */
static double mla_cmp(const char* what, const void* want, const void* got, int32_t dt, int64_t n, double tol,
                      long long* bad) {
    double num = 0, den = 0;
    long long nf = 0;
    for (int64_t i = 0; i < n; i++) {
        double w = mla_val(want, dt, i), g = mla_val(got, dt, i);
        if (isfinite(w) && !isfinite(g)) {
            if (nf < 3) printf("  MISMATCH %s [%lld]: cpu %g, cuda %g\n", what, (long long)i, w, g);
            nf++;
            continue;
        }
        if (!isfinite(w)) continue;
        num += (g - w) * (g - w);
        den += w * w;
    }
    double err = den > 0 ? sqrt(num / den) : sqrt(num);
    *bad += nf;
    if (err > tol) {
        printf("  MISMATCH %s: relative error %.3g > %.3g\n", what, err, tol);
        (*bad)++;
    }
    return err;
}

static long long mla_cmp_lse(const char* what, const float* want, const float* got, int64_t n, double tol) {
    long long bad = 0;
    for (int64_t i = 0; i < n; i++) {
        int ok = isinf(want[i]) ? (isinf(got[i]) && (want[i] < 0) == (got[i] < 0))
                                : (isfinite(got[i]) && fabs((double)got[i] - (double)want[i]) <= tol);
        if (!ok) {
            if (bad < 3) printf("  MISMATCH %s lse[%lld]: cpu %.9g, cuda %.9g\n", what, (long long)i, want[i], got[i]);
            bad++;
        }
    }
    return bad;
}

static void* mla_upload(dsk4j_context* g, const void* h, int64_t bytes) {
    void* d = NULL;
    CK(dsk4j_mem_alloc(&d, g, bytes > 0 ? bytes : 16));
    if (bytes > 0) CK(dsk4j_memcpy(g, d, bytes, h, bytes, bytes, DSK4J_COPY_HOST_TO_DEVICE));
    return d;
}

static const char* mla_fmt_name(int32_t f) {
    return f == DSK4J_MLA_CACHE_F32 ? "f32" : f == DSK4J_MLA_CACHE_BF16 ? "bf16" : "fp8";
}

/* One paged cache: lens[batch], shuffled pages, shuffled token order; built on the cpu (host pool)
 * and, when check_append, also on both cuda contexts and compared byte for byte. */
typedef struct {
    int64_t batch, max_pages, num_pages, tokens, token_bytes, cache_bytes;
    int32_t format, dtype;
    int32_t *bt, *lens;
    uint8_t* cache; /* host pool (cpu-built) */
    int64_t max_len;
} mla_cache;

static void mla_cache_build(mla_cache* c, int64_t batch, const int32_t* lens, int32_t format, int32_t dt,
                            int check_append, mla_row* row) {
    memset(c, 0, sizeof *c);
    c->batch = batch;
    c->format = format;
    c->dtype = dt;
    CK(dsk4j_mla_cache_token_bytes(&c->token_bytes, format));
    int64_t need = 0, maxp = 0;
    for (int64_t b = 0; b < batch; b++) {
        int64_t p = (lens[b] + 63) / 64;
        need += p;
        if (p > maxp) maxp = p;
        if (lens[b] > c->max_len) c->max_len = lens[b];
        c->tokens += lens[b];
    }
    c->max_pages = maxp + 1;
    c->num_pages = need + 3;
    c->cache_bytes = c->num_pages * 64 * c->token_bytes;
    c->lens = xmalloc((size_t)batch * 4);
    memcpy(c->lens, lens, (size_t)batch * 4);
    c->bt = xmalloc((size_t)(batch * c->max_pages) * 4);
    int32_t* perm = xmalloc((size_t)c->num_pages * 4);
    for (int64_t i = 0; i < c->num_pages; i++) perm[i] = (int32_t)i;
    for (int64_t i = c->num_pages - 1; i > 0; i--) {
        int64_t j = (int64_t)(rnd() % (uint64_t)(i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int64_t k = 0;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t g = 0; g < c->max_pages; g++) c->bt[b * c->max_pages + g] = g * 64 < lens[b] ? perm[k++] : -1;
    free(perm);
    const int64_t T = c->tokens, es = (int64_t)dsize(dt);
    int32_t* ids = xmalloc((size_t)(T > 0 ? T : 1) * 4);
    int32_t* pos = xmalloc((size_t)(T > 0 ? T : 1) * 4);
    k = 0;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t p = 0; p < lens[b]; p++) ids[k] = (int32_t)b, pos[k++] = (int32_t)p;
    for (int64_t i = T - 1; i > 0; i--) {
        int64_t j = (int64_t)(rnd() % (uint64_t)(i + 1));
        int32_t t = ids[i]; ids[i] = ids[j]; ids[j] = t;
        t = pos[i]; pos[i] = pos[j]; pos[j] = t;
    }
    void* kv = xmalloc((size_t)(T * 512 * es + 16));
    void* pe = xmalloc((size_t)(T * 64 * es + 16));
    mla_fill(kv, dt, T * 512, 1.0f);
    mla_fill(pe, dt, T * 64, 1.0f);
    c->cache = xmalloc((size_t)c->cache_bytes);
    memset(c->cache, 0xFF, (size_t)c->cache_bytes);
    const int64_t btb = batch * c->max_pages * 4;
    if (T > 0)
        CK(dsk4j_mla_cache_append(g_cpu, c->cache, c->cache_bytes, format, kv, T * 512 * es, pe, T * 64 * es, dt, ids,
                                  T * 4, pos, T * 4, c->bt, btb, batch, c->max_pages, c->num_pages, T));
    if (check_append && T > 0) {
        dsk4j_context* ctxs[2] = {g_ref, g_fast};
        uint8_t* got = xmalloc((size_t)c->cache_bytes);
        for (int x = 0; x < 2; x++) {
            dsk4j_context* g = ctxs[x];
            void* dc = NULL;
            CK(dsk4j_mem_alloc(&dc, g, c->cache_bytes));
            CK(dsk4j_memset(g, dc, c->cache_bytes, 0xFF, c->cache_bytes));
            void* dkv = mla_upload(g, kv, T * 512 * es);
            void* dpe = mla_upload(g, pe, T * 64 * es);
            void* dids = mla_upload(g, ids, T * 4);
            void* dpos = mla_upload(g, pos, T * 4);
            void* dbt = mla_upload(g, c->bt, btb);
            CK(dsk4j_mla_cache_append(g, dc, c->cache_bytes, format, dkv, T * 512 * es, dpe, T * 64 * es, dt, dids,
                                      T * 4, dpos, T * 4, dbt, btb, batch, c->max_pages, c->num_pages, T));
            CK(dsk4j_memcpy(g, got, c->cache_bytes, dc, c->cache_bytes, c->cache_bytes, DSK4J_COPY_DEVICE_TO_HOST));
            long long bad = 0;
            for (int64_t i = 0; i < c->cache_bytes; i++)
                if (got[i] != c->cache[i]) {
                    if (bad < 3)
                        printf("  MISMATCH mla.cache_append %s %s byte %lld (token %lld, offset %lld): cpu 0x%02x, cuda 0x%02x\n",
                               x ? "fast" : "ref", mla_fmt_name(format), (long long)i, (long long)(i / c->token_bytes),
                               (long long)(i % c->token_bytes), c->cache[i], got[i]);
                    bad++;
                }
            if (x == 0) row->ref_bad += bad;
            else row->fast_bad += bad;
            void* frees[6] = {dc, dkv, dpe, dids, dpos, dbt};
            for (int i = 0; i < 6; i++) CK(dsk4j_mem_free(g, frees[i]));
        }
        free(got);
    }
    free(ids);
    free(pos);
    free(kv);
    free(pe);
}

static void mla_cache_free(mla_cache* c) {
    free(c->bt);
    free(c->lens);
    free(c->cache);
}

#define MLA_SCALE 0.1352338f

/* Decode of batch x sq x heads on the cache c. check_batch: the sequences compared (all unless
 * timed). timed: only the fast context, timed. */
static void mla_decode_run(mla_cache* c, int64_t sq, int64_t heads, int32_t dt, int causal, int timed,
                           int64_t check_batch, mla_row* r) {
    const int64_t B = c->batch, rows = B * sq * heads, rows_c = check_batch * sq * heads, es = (int64_t)dsize(dt);
    const int32_t flags = causal ? DSK4J_MLA_CAUSAL : 0;
    void* ql = xmalloc((size_t)(rows * 512 * es));
    void* qp = xmalloc((size_t)(rows * 64 * es));
    mla_fill(ql, dt, rows * 512, 1.0f);
    mla_fill(qp, dt, rows * 64, 1.0f);
    void* want = xmalloc((size_t)(rows_c * 512 * es));
    float* want_lse = xmalloc((size_t)rows_c * 4);
    void* got = xmalloc((size_t)(rows_c * 512 * es));
    float* got_lse = xmalloc((size_t)rows_c * 4);
    const int64_t btb = B * c->max_pages * 4;
    CK(dsk4j_mla_decode(g_cpu, want, rows_c * 512 * es, want_lse, rows_c * 4, ql, rows_c * 512 * es, qp,
                        rows_c * 64 * es, dt, c->cache, c->cache_bytes, c->format, c->bt, check_batch * c->max_pages * 4,
                        c->lens, check_batch * 4, check_batch, sq, heads, c->max_pages, c->num_pages, MLA_SCALE, flags));
    /* timed with the flash context: the reference kernel's output over the whole batch, to compare
     * the flash kernel's with (the cpu checks only the first check_batch sequences) */
    void* ref_all = NULL;
    float* ref_all_lse = NULL;
    void* fl_all = NULL;
    float* fl_all_lse = NULL;
    if (timed && g_mla_fl != NULL) {
        ref_all = xmalloc((size_t)(rows * 512 * es));
        ref_all_lse = xmalloc((size_t)rows * 4);
        fl_all = xmalloc((size_t)(rows * 512 * es));
        fl_all_lse = xmalloc((size_t)rows * 4);
    }
    dsk4j_context* ctxs[4] = {g_ref, g_fast, g_mla_wg, g_mla_fl};
    for (int x = timed ? (ref_all != NULL ? 0 : 1) : 0; x < 4; x++) {
        dsk4j_context* g = ctxs[x];
        if (g == NULL) continue;
        void* dc = mla_upload(g, c->cache, c->cache_bytes);
        void* dbt = mla_upload(g, c->bt, btb);
        void* dl = mla_upload(g, c->lens, B * 4);
        void* dq = mla_upload(g, ql, rows * 512 * es);
        void* dp = mla_upload(g, qp, rows * 64 * es);
        void *dout = NULL, *dlse = NULL;
        CK(dsk4j_mem_alloc(&dout, g, rows * 512 * es));
        CK(dsk4j_mem_alloc(&dlse, g, rows * 4));
        CK(dsk4j_memset(g, dout, rows * 512 * es, 0xFF, rows * 512 * es));
        CK(dsk4j_memset(g, dlse, rows * 4, 0xFF, rows * 4));
        CK(dsk4j_mla_decode(g, dout, rows * 512 * es, dlse, rows * 4, dq, rows * 512 * es, dp, rows * 64 * es, dt, dc,
                            c->cache_bytes, c->format, dbt, btb, dl, B * 4, B, sq, heads, c->max_pages, c->num_pages,
                            MLA_SCALE, flags));
        CK(dsk4j_memcpy(g, got, rows_c * 512 * es, dout, rows * 512 * es, rows_c * 512 * es, DSK4J_COPY_DEVICE_TO_HOST));
        CK(dsk4j_memcpy(g, got_lse, rows_c * 4, dlse, rows * 4, rows_c * 4, DSK4J_COPY_DEVICE_TO_HOST));
        if (ref_all != NULL && (x == 0 || x == 3)) { /* whole batch, for flash vs the reference kernel */
            CK(dsk4j_memcpy(g, x == 0 ? ref_all : fl_all, rows * 512 * es, dout, rows * 512 * es, rows * 512 * es,
                            DSK4J_COPY_DEVICE_TO_HOST));
            CK(dsk4j_memcpy(g, x == 0 ? ref_all_lse : fl_all_lse, rows * 4, dlse, rows * 4, rows * 4,
                            DSK4J_COPY_DEVICE_TO_HOST));
        }
        long long bad = 0;
        /* f32 q / o run the exact f32 reference kernel in every context (cuda_mla.c) */
        const double tol = dt == DSK4J_DTYPE_BF16 ? 1e-2 : 2e-5;
        char what[160];
        static const char* const ctx_names[4] = {"ref", "fast", "wgmma", "flash"};
        snprintf(what, sizeof what, "mla.decode %s %s %s", ctx_names[x], r->op, r->shape);
        double err = mla_cmp(what, want, got, dt, rows_c * 512, tol, &bad);
        bad += mla_cmp_lse(what, want_lse, got_lse, rows_c, x == 0 || dt == DSK4J_DTYPE_F32 ? 1e-4 : 1e-2);
        if (x == 0) r->ref_err = err, r->ref_bad += bad;
        else if (x == 1) r->fast_err = err, r->fast_bad += bad;
        else if (x == 2) r->wg_err = err, r->wg_bad += bad;
        else r->fl_err = err, r->fl_bad += bad;
        if (x == 3 && ref_all != NULL) {
            long long fb = 0;
            snprintf(what, sizeof what, "mla.decode flash vs ref %s %s", r->op, r->shape);
            r->flref_err = mla_cmp(what, ref_all, fl_all, dt, rows * 512, 1e-2, &fb);
            fb += mla_cmp_lse(what, ref_all_lse, fl_all_lse, rows, 1e-2);
            r->flref_bad = fb;
        }
        if (timed && g_timing && x > 0) {
            for (int w = 0; w < 3; w++)
                CK(dsk4j_mla_decode(g, dout, rows * 512 * es, dlse, rows * 4, dq, rows * 512 * es, dp, rows * 64 * es, dt,
                                    dc, c->cache_bytes, c->format, dbt, btb, dl, B * 4, B, sq, heads, c->max_pages,
                                    c->num_pages, MLA_SCALE, flags));
            CK(dsk4j_synchronize(g));
            const int iters = 10;
            double t0 = now_s();
            for (int it = 0; it < iters; it++)
                CK(dsk4j_mla_decode(g, dout, rows * 512 * es, dlse, rows * 4, dq, rows * 512 * es, dp, rows * 64 * es, dt,
                                    dc, c->cache_bytes, c->format, dbt, btb, dl, B * 4, B, sq, heads, c->max_pages,
                                    c->num_pages, MLA_SCALE, flags));
            CK(dsk4j_synchronize(g));
            /* per call: includes api_mla.c's host check (seq_lens and block_table copied to the host) */
            const double per = (now_s() - t0) / iters;
            double kv_tokens = 0;
            for (int64_t b = 0; b < B; b++) kv_tokens += (double)c->lens[b];
            const double gbps = (kv_tokens * (double)c->token_bytes + (double)rows * (576 + 512) * (double)es) / per / 1e9;
            const double tflops = 2.0 * (double)sq * (double)heads * kv_tokens * (576 + 512) / per / 1e12;
            if (x == 1) r->ms = per * 1e3, r->gbps = gbps, r->tflops = tflops;
            else if (x == 2) r->wg_ms = per * 1e3, r->wg_gbps = gbps, r->wg_tflops = tflops;
            else r->fl_ms = per * 1e3, r->fl_gbps = gbps, r->fl_tflops = tflops;
        }
        void* frees[7] = {dc, dbt, dl, dq, dp, dout, dlse};
        for (int i = 0; i < 7; i++) CK(dsk4j_mem_free(g, frees[i]));
    }
    free(ref_all);
    free(ref_all_lse);
    free(fl_all);
    free(fl_all_lse);
    free(ql);
    free(qp);
    free(want);
    free(want_lse);
    free(got);
    free(got_lse);
}

/* Correctness: one cache (append checked) and decode for each sq / causal on it. */
static void mla_decode_case(int64_t batch, const int32_t* lens, int64_t heads, int32_t format, int32_t dt) {
    mla_row* ar = mla_new_row();
    snprintf(ar->op, sizeof ar->op, "mla.cache_append %s<-%s", mla_fmt_name(format), dt == DSK4J_DTYPE_F32 ? "f32" : "bf16");
    int n = snprintf(ar->shape, sizeof ar->shape, "B=%lld L=", (long long)batch);
    for (int64_t b = 0; b < batch && n < (int)sizeof ar->shape - 8; b++)
        n += snprintf(ar->shape + n, sizeof ar->shape - (size_t)n, "%s%d", b ? "," : "", lens[b]);
    mla_cache c;
    mla_cache_build(&c, batch, lens, format, dt, 1, ar);
    ar->ref_err = ar->fast_err = 0;
    int causal_ok = 1; /* causal needs every L = 0 or >= sq (= 2) */
    for (int64_t b = 0; b < batch; b++)
        if (lens[b] == 1) causal_ok = 0;
    for (int v = 0; v < 3; v++) {
        const int64_t sq = v == 0 ? 1 : 2;
        const int causal = v == 2;
        if (causal && !causal_ok) continue;
        mla_row* r = mla_new_row();
        snprintf(r->op, sizeof r->op, "mla.decode %s q:%s%s", mla_fmt_name(format), dt == DSK4J_DTYPE_F32 ? "f32" : "bf16",
                 causal ? " causal" : "");
        snprintf(r->shape, sizeof r->shape, "Sq=%lld H=%lld %.60s", (long long)sq, (long long)heads, ar->shape);
        mla_decode_run(&c, sq, heads, dt, causal, 0, batch, r);
        printf("%-34s %-40s ref %s fast %s%s%s\n", r->op, r->shape, r->ref_bad ? "FAIL" : "ok", r->fast_bad ? "FAIL" : "ok",
               g_mla_wg == NULL ? "" : r->wg_bad ? " wgmma FAIL" : " wgmma ok",
               g_mla_fl == NULL ? "" : r->fl_bad ? " flash FAIL" : " flash ok");
        fflush(stdout);
    }
    printf("%-34s %-40s ref %s fast %s\n", ar->op, ar->shape, ar->ref_bad ? "FAIL" : "ok", ar->fast_bad ? "FAIL" : "ok");
    mla_cache_free(&c);
}

/* Timing on FlashMLA's shapes (fast context); the first 2 sequences checked against the cpu. */
static void mla_decode_timed(int64_t batch, int64_t sq, int64_t heads, int64_t len, int32_t format) {
    int32_t* lens = xmalloc((size_t)batch * 4);
    for (int64_t b = 0; b < batch; b++) lens[b] = (int32_t)len;
    mla_row* r = mla_new_row();
    snprintf(r->op, sizeof r->op, "mla.decode %s q:bf16%s (timed)", mla_fmt_name(format), sq > 1 ? " causal" : "");
    snprintf(r->shape, sizeof r->shape, "b=%lld s_q=%lld h=%lld seq=%lld page=64", (long long)batch, (long long)sq,
             (long long)heads, (long long)len);
    mla_cache c;
    mla_cache_build(&c, batch, lens, format, DSK4J_DTYPE_BF16, 0, r);
    mla_decode_run(&c, sq, heads, DSK4J_DTYPE_BF16, sq > 1, 1, 2, r);
    printf("%-34s %-40s fast %s, %.3f ms, %.0f GB/s, %.1f TFLOPS\n", r->op, r->shape, r->fast_bad ? "FAIL" : "ok", r->ms,
           r->gbps, r->tflops);
    if (g_mla_wg != NULL)
        printf("%-34s %-40s wgmma %s, %.3f ms, %.0f GB/s, %.1f TFLOPS\n", r->op, r->shape, r->wg_bad ? "FAIL" : "ok",
               r->wg_ms, r->wg_gbps, r->wg_tflops);
    if (g_mla_fl != NULL)
        printf("%-34s %-40s flash %s (vs cpu %.2e, vs ref kernel %.2e over all %lld rows: %s), %.3f ms, %.0f GB/s, %.1f TFLOPS\n",
               r->op, r->shape, r->fl_bad || r->flref_bad ? "FAIL" : "ok", r->fl_err, r->flref_err,
               (long long)(batch * sq * heads), r->flref_bad ? "FAIL" : "ok", r->fl_ms, r->fl_gbps, r->fl_tflops);
    fflush(stdout);
    mla_cache_free(&c);
    free(lens);
}

/* mla.prefill: nseq packed sequences of the given lengths, heads, qk 192, v 128 (or other dims). */
static void mla_prefill_case(int64_t nseq, const int32_t* lens, int64_t heads, int64_t qk, int64_t vd, int32_t dt,
                             int causal, int timed) {
    mla_row* r = mla_new_row();
    int32_t* cu = xmalloc((size_t)(nseq + 1) * 4);
    cu[0] = 0;
    for (int64_t i = 0; i < nseq; i++) cu[i + 1] = cu[i] + lens[i];
    const int64_t T = cu[nseq], es = (int64_t)dsize(dt);
    snprintf(r->op, sizeof r->op, "mla.prefill %s%s", dt == DSK4J_DTYPE_F32 ? "f32" : "bf16", causal ? " causal" : "");
    snprintf(r->shape, sizeof r->shape, "T=%lld nseq=%lld H=%lld qk=%lld v=%lld", (long long)T, (long long)nseq,
             (long long)heads, (long long)qk, (long long)vd);
    const int64_t qb = T * heads * qk * es, vb = T * heads * vd * es, lb = T * heads * 4;
    void* q = xmalloc((size_t)qb);
    void* k = xmalloc((size_t)qb);
    void* v = xmalloc((size_t)vb);
    mla_fill(q, dt, T * heads * qk, 1.0f);
    mla_fill(k, dt, T * heads * qk, 1.0f);
    mla_fill(v, dt, T * heads * vd, 1.0f);
    void* want = xmalloc((size_t)vb);
    float* want_lse = xmalloc((size_t)lb);
    void* got = xmalloc((size_t)vb);
    float* got_lse = xmalloc((size_t)lb);
    const int32_t flags = causal ? DSK4J_MLA_CAUSAL : 0;
    CK(dsk4j_mla_prefill(g_cpu, want, vb, want_lse, lb, q, qb, k, qb, v, vb, dt, cu, (nseq + 1) * 4, nseq, T, heads, qk,
                         vd, MLA_SCALE, flags));
    dsk4j_context* ctxs[2] = {g_ref, g_fast};
    for (int x = 0; x < 2; x++) {
        dsk4j_context* g = ctxs[x];
        void* dq = mla_upload(g, q, qb);
        void* dk = mla_upload(g, k, qb);
        void* dv = mla_upload(g, v, vb);
        void* dcu = mla_upload(g, cu, (nseq + 1) * 4);
        void *dout = NULL, *dlse = NULL;
        CK(dsk4j_mem_alloc(&dout, g, vb));
        CK(dsk4j_mem_alloc(&dlse, g, lb));
        CK(dsk4j_memset(g, dout, vb, 0xFF, vb));
        CK(dsk4j_memset(g, dlse, lb, 0xFF, lb));
        CK(dsk4j_mla_prefill(g, dout, vb, dlse, lb, dq, qb, dk, qb, dv, vb, dt, dcu, (nseq + 1) * 4, nseq, T, heads, qk, vd,
                             MLA_SCALE, flags));
        CK(dsk4j_memcpy(g, got, vb, dout, vb, vb, DSK4J_COPY_DEVICE_TO_HOST));
        CK(dsk4j_memcpy(g, got_lse, lb, dlse, lb, lb, DSK4J_COPY_DEVICE_TO_HOST));
        long long bad = 0;
        char what[160];
        snprintf(what, sizeof what, "%s %s %s", r->op, x ? "fast" : "ref", r->shape);
        /* the fast kernel (qk 192, v 128) rounds q, k, v and P to bf16 for the tensor cores */
        const int tc = x == 1 && qk == 192 && vd == 128 && dt == DSK4J_DTYPE_BF16;
        double err = mla_cmp(what, want, got, dt, T * heads * vd, dt == DSK4J_DTYPE_BF16 ? 1e-2 : 1e-5, &bad);
        bad += mla_cmp_lse(what, want_lse, got_lse, T * heads, tc ? 1e-2 : 1e-4);
        if (x == 0) r->ref_err = err, r->ref_bad = bad;
        else r->fast_err = err, r->fast_bad = bad;
        if (x == 1 && timed && g_timing) {
            for (int w = 0; w < 2; w++)
                CK(dsk4j_mla_prefill(g, dout, vb, dlse, lb, dq, qb, dk, qb, dv, vb, dt, dcu, (nseq + 1) * 4, nseq, T, heads,
                                     qk, vd, MLA_SCALE, flags));
            CK(dsk4j_synchronize(g));
            const int iters = 5;
            double t0 = now_s();
            for (int it = 0; it < iters; it++)
                CK(dsk4j_mla_prefill(g, dout, vb, dlse, lb, dq, qb, dk, qb, dv, vb, dt, dcu, (nseq + 1) * 4, nseq, T, heads,
                                     qk, vd, MLA_SCALE, flags));
            CK(dsk4j_synchronize(g));
            const double per = (now_s() - t0) / iters;
            double pairs = 0; /* (query, key) pairs computed */
            for (int64_t i = 0; i < nseq; i++)
                pairs += causal ? (double)lens[i] * (lens[i] + 1) / 2.0 : (double)lens[i] * (double)lens[i];
            r->ms = per * 1e3;
            r->gbps = (double)(2 * qb + 2 * vb) / per / 1e9;
            r->tflops = 2.0 * (double)heads * pairs * (double)(qk + vd) / per / 1e12;
        }
        void* frees[6] = {dq, dk, dv, dcu, dout, dlse};
        for (int i = 0; i < 6; i++) CK(dsk4j_mem_free(g, frees[i]));
    }
    printf("%-34s %-40s ref %s fast %s\n", r->op, r->shape, r->ref_bad ? "FAIL" : "ok", r->fast_bad ? "FAIL" : "ok");
    fflush(stdout);
    free(cu);
    free(q);
    free(k);
    free(v);
    free(want);
    free(want_lse);
    free(got);
    free(got_lse);
}

/* mla.absorb_q (q_nope read out of q [T, H, 192]) and mla.absorb_o. */
static void mla_absorb_case(int64_t tokens, int64_t heads, int32_t dt, int32_t wd, int o_side) {
    mla_row* r = mla_new_row();
    snprintf(r->op, sizeof r->op, "mla.absorb_%s %s w:%s", o_side ? "o" : "q", dt == DSK4J_DTYPE_F32 ? "f32" : "bf16",
             wd == DSK4J_DTYPE_F32 ? "f32" : "bf16");
    snprintf(r->shape, sizeof r->shape, "T=%lld H=%lld", (long long)tokens, (long long)heads);
    const int64_t es = (int64_t)dsize(dt), ws = (int64_t)dsize(wd);
    const int64_t xn = tokens * heads * (o_side ? 512 : 192), yn = tokens * heads * (o_side ? 128 : 512),
                  wn = heads * 256 * 512;
    void* x = xmalloc((size_t)(xn * es));
    void* w = xmalloc((size_t)(wn * ws));
    mla_fill(x, dt, xn, 1.0f);
    mla_fill(w, wd, wn, 0.1f);
    void* want = xmalloc((size_t)(yn * es));
    void* got = xmalloc((size_t)(yn * es));
    if (o_side) CK(dsk4j_mla_absorb_o(g_cpu, want, yn * es, x, xn * es, dt, w, wn * ws, wd, tokens, heads));
    else CK(dsk4j_mla_absorb_q(g_cpu, want, yn * es, x, xn * es, dt, w, wn * ws, wd, tokens, heads, 192));
    dsk4j_context* ctxs[2] = {g_ref, g_fast};
    for (int k = 0; k < 2; k++) {
        dsk4j_context* g = ctxs[k];
        void* dx = mla_upload(g, x, xn * es);
        void* dw = mla_upload(g, w, wn * ws);
        void* dy = NULL;
        CK(dsk4j_mem_alloc(&dy, g, yn * es));
        CK(dsk4j_memset(g, dy, yn * es, 0xFF, yn * es));
        if (o_side) CK(dsk4j_mla_absorb_o(g, dy, yn * es, dx, xn * es, dt, dw, wn * ws, wd, tokens, heads));
        else CK(dsk4j_mla_absorb_q(g, dy, yn * es, dx, xn * es, dt, dw, wn * ws, wd, tokens, heads, 192));
        CK(dsk4j_memcpy(g, got, yn * es, dy, yn * es, yn * es, DSK4J_COPY_DEVICE_TO_HOST));
        long long bad = 0;
        char what[160];
        snprintf(what, sizeof what, "%s %s %s", r->op, k ? "fast" : "ref", r->shape);
        double err = mla_cmp(what, want, got, dt, yn, dt == DSK4J_DTYPE_BF16 ? 1e-2 : 1e-5, &bad);
        if (k == 0) r->ref_err = err, r->ref_bad = bad;
        else r->fast_err = err, r->fast_bad = bad;
        CK(dsk4j_mem_free(g, dx));
        CK(dsk4j_mem_free(g, dw));
        CK(dsk4j_mem_free(g, dy));
    }
    printf("%-34s %-40s ref %s fast %s\n", r->op, r->shape, r->ref_bad ? "FAIL" : "ok", r->fast_bad ? "FAIL" : "ok");
    free(x);
    free(w);
    free(want);
    free(got);
}

static void check_mla(void) {
    const int32_t F = DSK4J_DTYPE_F32, B = DSK4J_DTYPE_BF16;
    static const int32_t formats[3] = {DSK4J_MLA_CACHE_BF16, DSK4J_MLA_CACHE_FP8, DSK4J_MLA_CACHE_F32};
    const int32_t edge[] = {1, 63, 64, 65};
    const int32_t mixed[] = {65, 0, 200, 2, 129};
    const int32_t longer[] = {4096, 1000};
    for (int f = 0; f < 3; f++) {
        for (int d = 0; d < 2; d++) {
            const int32_t dt = d ? F : B;
            mla_decode_case(4, edge, 16, formats[f], dt);
            mla_decode_case(5, mixed, 5, formats[f], dt);
            if (!g_quick) mla_decode_case(2, longer, 128, formats[f], dt);
        }
        int32_t rl[3];
        for (int i = 0; i < 3; i++) rl[i] = 1 + (int32_t)(rnd() % 700);
        mla_decode_case(3, rl, 1 + (int64_t)(rnd() % 40), formats[f], B);
        const int32_t one[] = {64};
        mla_decode_case(1, one, 128, formats[f], B);
    }
    /* H = 128 tails on the bf16 cache (the flash kernel's shapes: 2 or 4 row tiles, splits, partial
     * last pages, random page order; Sq = 2 causal on the second, where every L >= 2) */
    const int32_t tails1[] = {1, 63, 65, 4096};
    const int32_t tails2[] = {63, 65, 130, 4096};
    mla_decode_case(4, tails1, 128, DSK4J_MLA_CACHE_BF16, B);
    mla_decode_case(4, tails2, 128, DSK4J_MLA_CACHE_BF16, B);
    const int32_t pl[] = {1, 63, 64, 65, 130};
    const int32_t pz[] = {3, 0, 70};
    for (int d = 0; d < 2; d++) {
        const int32_t dt = d ? F : B;
        mla_prefill_case(5, pl, 4, 192, 128, dt, 1, 0);
        mla_prefill_case(5, pl, 4, 192, 128, dt, 0, 0);
        mla_prefill_case(3, pz, 3, 64, 32, dt, 1, 0);
        const int32_t pbig[] = {1000, 1, 300, 64};
        if (!g_quick) mla_prefill_case(4, pbig, 16, 192, 128, dt, d == 0, 0);
        mla_absorb_case(5, 3, dt, B, 0);
        mla_absorb_case(5, 3, dt, F, 1);
    }
    if (g_quick || !g_timing) return;
    mla_decode_timed(128, 1, 128, 4096, DSK4J_MLA_CACHE_BF16);
    mla_decode_timed(128, 2, 128, 4096, DSK4J_MLA_CACHE_BF16);
    mla_decode_timed(128, 1, 16, 4096, DSK4J_MLA_CACHE_BF16);
    mla_decode_timed(128, 1, 128, 4096, DSK4J_MLA_CACHE_FP8);
    const int32_t p4k[] = {4096};
    mla_prefill_case(1, p4k, 16, 192, 128, B, 1, 1); /* prefill timed: one 4096-token sequence, causal */
}

static long long mla_table(void) {
    long long fails = 0;
    printf("\n%-34s %-40s %9s %9s %8s %8s %8s %8s %8s  %s\n", "mla op", "shape", "ref_err", "fast_err", "ref_bad",
           "fast_bad", "ms", "GB/s", "TFLOPS", "H200 target");
    if (g_mla_wg != NULL) printf("(decode rows: a second line 'wgmma' for the DSK4J_CUDA_MLA_KERNEL=wgmma context)\n");
    if (g_mla_fl != NULL)
        printf("(decode rows: a line 'flash' for the DSK4J_CUDA_MLA_KERNEL=flash context; 'vs ref': flash vs the\n"
               " reference kernel over the whole batch on the timed shapes)\n");
    for (int i = 0; i < g_nmrows; i++) {
        mla_row* r = &g_mrows[i];
        char re[16] = "-", fe[16] = "-", ms[16] = "-", gb[16] = "-", tf[16] = "-";
        if (r->ref_err >= 0) snprintf(re, sizeof re, "%.2e", r->ref_err);
        if (r->fast_err >= 0) snprintf(fe, sizeof fe, "%.2e", r->fast_err);
        if (r->ms > 0) {
            snprintf(ms, sizeof ms, "%.3f", r->ms);
            snprintf(gb, sizeof gb, "%.0f", r->gbps);
            snprintf(tf, sizeof tf, "%.1f", r->tflops);
        }
        printf("%-34s %-40s %9s %9s %8lld %8lld %8s %8s %8s  %s\n", r->op, r->shape, re, fe, r->ref_bad, r->fast_bad, ms,
               gb, tf, r->ms > 0 && strncmp(r->op, "mla.decode", 10) == 0 ? ">= 3000 GB/s memory-bound, >= 550 TFLOPS compute-bound" : "");
        fails += r->ref_bad + r->fast_bad;
        if (g_mla_wg != NULL && r->wg_err >= 0) {
            char we[16], wms[16] = "-", wgb[16] = "-", wtf[16] = "-";
            snprintf(we, sizeof we, "%.2e", r->wg_err);
            if (r->wg_ms > 0) {
                snprintf(wms, sizeof wms, "%.3f", r->wg_ms);
                snprintf(wgb, sizeof wgb, "%.0f", r->wg_gbps);
                snprintf(wtf, sizeof wtf, "%.1f", r->wg_tflops);
            }
            printf("%-34s %-40s %9s %9s %8s %8lld %8s %8s %8s\n", "  wgmma", "", "", we, "", r->wg_bad, wms, wgb, wtf);
            fails += r->wg_bad;
        }
        if (g_mla_fl != NULL && r->fl_err >= 0) {
            char fe2[16], fms[16] = "-", fgb[16] = "-", ftf[16] = "-", vr[40] = "";
            snprintf(fe2, sizeof fe2, "%.2e", r->fl_err);
            if (r->fl_ms > 0) {
                snprintf(fms, sizeof fms, "%.3f", r->fl_ms);
                snprintf(fgb, sizeof fgb, "%.0f", r->fl_gbps);
                snprintf(ftf, sizeof ftf, "%.1f", r->fl_tflops);
            }
            if (r->flref_err >= 0) snprintf(vr, sizeof vr, "vs ref %.2e, %lld bad", r->flref_err, r->flref_bad);
            printf("%-34s %-40s %9s %9s %8s %8lld %8s %8s %8s  %s\n", "  flash", "", "", fe2, "", r->fl_bad, fms, fgb, ftf, vr);
            fails += r->fl_bad + r->flref_bad;
        }
    }
    return fails;
}
/* ==== end of mla ==== */

/* ==== moe (moe.gate, dispatch, gather, combine, silu_quant, bias_update, forward) ====
 * Every moe op on cuda (reference and fast contexts) against the cpu backend, outputs poisoned
 * (0xAB) before each run: moe.gate on the DeepSeek-V3 router (256 experts, hidden 7168, sigmoid +
 * bias, 8 groups keep 4, top-8) and the V2-Lite router (64 experts, hidden 2048, softmax, top-6),
 * T in {1, 7, 128, 1000}, f32 and bf16 x / wg, and an all-ties case: indices and logits bit for
 * bit, weights within 1e-6 relative (the f64 exp may differ by one ulp: see dsk4j.h); dispatch
 * (contiguous align 1 and 128, masked m_max = T), gather (bf16 x, f32 scales), combine (f32 / bf16,
 * with and without a shared term) and bias_update bit for bit; silu_quant scales within 1e-6
 * relative and codes at most one step apart (expf: see dsk4j.h), no more than 1 in 1000 off;
 * moe.forward within 1e-2 (fp8 weights: re-quantized activations, a code can move a step) / 2e-3 (bf16) /
 * 1e-5 (f32 weights: gemm.f32, unrounded activations) relative Frobenius error of the cpu's (different GEMM
 * summation order),
 * counts exact, on a V3-router layer with 64 experts (hidden 7168, inter 2048, 1 shared; fp8
 * weights), the V2-Lite layer (hidden 2048, inter 1408, 2 shared, fp8; T up to 1000), a small
 * bf16-weight layer and a small f32-weight layer (inter 200, shared 300: no multiples of 128). Timing (fast context): moe.gate on both routers, and moe.forward on the full
 * V3 layer (256 experts, fp8 weights replicated from a 64 MiB random block on the device) for
 * T in {1, 128, 4096}: ms, weight GB/s over the experts the tokens touched (decode) and TFLOPS.
 * Options: --no-moe, --only-moe. */
typedef struct {
    char op[32];
    char shape[72];
    long long ref_bad, fast_bad;
    double ref_err, fast_err; /* relative error (forward); < 0: not measured */
    double ms, gbps, tflops;  /* fast context, timed cases */
    char note[64];
} moe_row;
static moe_row g_erows[160];
static int g_nerows;

static moe_row* moe_new_row(const char* op, const char* shape) {
    if (g_nerows >= (int)(sizeof g_erows / sizeof g_erows[0])) {
        fprintf(stderr, "gpu_check: too many moe cases\n");
        exit(2);
    }
    moe_row* r = &g_erows[g_nerows++];
    memset(r, 0, sizeof *r);
    snprintf(r->op, sizeof r->op, "%s", op);
    snprintf(r->shape, sizeof r->shape, "%s", shape);
    r->ref_err = r->fast_err = -1;
    return r;
}

typedef struct {
    const char* name;
    int64_t experts, hidden, top_k, n_group, topk_group;
    int32_t score_func;
    int norm;
    float scale;
    int bias;
} moe_router;
static const moe_router MOE_V3 = {"v3", 256, 7168, 8, 8, 4, DSK4J_MOE_SIGMOID, 1, 2.5f, 1};
static const moe_router MOE_V2L = {"v2-lite", 64, 2048, 6, 1, 1, DSK4J_MOE_SOFTMAX, 0, 1.0f, 0};

static void* moe_poisoned(dsk4j_context* g, int64_t bytes) {
    void* d = NULL;
    CK(dsk4j_mem_alloc(&d, g, bytes > 0 ? bytes : 16));
    if (bytes > 0) CK(dsk4j_memset(g, d, bytes, 0xAB, bytes));
    return d;
}

static void moe_download(dsk4j_context* g, void* h, const void* d, int64_t bytes) {
    if (bytes > 0) CK(dsk4j_memcpy(g, h, bytes, d, bytes, bytes, DSK4J_COPY_DEVICE_TO_HOST));
}

/* Elements of n bytes that differ (first few printed). */
static long long moe_cmp_bytes(const char* what, const void* want, const void* got, int64_t n, int64_t elem) {
    long long bad = 0;
    for (int64_t i = 0; i < n / elem; i++)
        if (memcmp((const char*)want + i * elem, (const char*)got + i * elem, (size_t)elem) != 0) {
            if (bad < 3) {
                uint32_t w = 0, g = 0;
                memcpy(&w, (const char*)want + i * elem, (size_t)(elem < 4 ? elem : 4));
                memcpy(&g, (const char*)got + i * elem, (size_t)(elem < 4 ? elem : 4));
                printf("  MISMATCH %s [%lld]: cpu 0x%x, cuda 0x%x\n", what, (long long)i, w, g);
            }
            bad++;
        }
    return bad;
}

static long long moe_cmp_rel(const char* what, const float* want, const float* got, int64_t n, double tol) {
    long long bad = 0;
    for (int64_t i = 0; i < n; i++) {
        const double w = want[i], g = got[i];
        if (!(fabs(g - w) <= tol * fabs(w) + 1e-30)) {
            if (bad < 3) printf("  MISMATCH %s [%lld]: cpu %.9g, cuda %.9g\n", what, (long long)i, w, g);
            bad++;
        }
    }
    return bad;
}

static double moe_time_end(double t0, int iters) { return (now_s() - t0) / iters; }

/* moe.gate: x [T, H], wg [E, H] (dtypes xdt / wdt), bias (router's); ties: every gate row equal and
 * the bias zero, so that every choice is a tie (lower ids must win). */
static void moe_gate_case(const moe_router* r, int64_t T, int32_t xdt, int32_t wdt, int ties, int timed) {
    const int64_t E = r->experts, H = r->hidden, K = r->top_k;
    char shape[72];
    snprintf(shape, sizeof shape, "%s T=%lld x=%s wg=%s%s", r->name, (long long)T, dname(xdt), dname(wdt),
             ties ? " ties" : "");
    moe_row* row = moe_new_row("moe.gate", shape);
    const int64_t xb = T * H * (int64_t)dsize(xdt), wb = E * H * (int64_t)dsize(wdt), bb = r->bias ? E * 4 : 0;
    void* x = xmalloc((size_t)xb);
    void* wg = xmalloc((size_t)wb);
    float* bias = r->bias ? xmalloc((size_t)bb) : NULL;
    mla_fill(x, xdt, T * H, 1.0f);
    mla_fill(wg, wdt, E * H, (float)(2.0 / sqrt((double)H)));
    if (ties) {
        for (int64_t e = 1; e < E; e++) memcpy((char*)wg + e * (wb / E), wg, (size_t)(wb / E));
        if (bias) memset(bias, 0, (size_t)bb);
    } else if (bias) {
        mla_fill(bias, DSK4J_DTYPE_F32, E, 0.02f);
    }
    const int64_t ib = T * K * 4, lb = T * E * 4;
    int32_t* widx = xmalloc((size_t)ib);
    float* ww = xmalloc((size_t)ib);
    float* wl = xmalloc((size_t)lb);
    int32_t* gidx = xmalloc((size_t)ib);
    float* gw = xmalloc((size_t)ib);
    float* gl = xmalloc((size_t)lb);
    CK(dsk4j_moe_gate(g_cpu, widx, ib, ww, ib, wl, lb, x, xb, xdt, wg, wb, wdt, bias, bb, T, H, E, K, r->n_group,
                      r->topk_group, r->score_func, r->norm, r->scale));
    if (ties)
        for (int64_t t = 0; t < T; t++)
            for (int64_t k = 0; k < K; k++)
                if (widx[t * K + k] != (int32_t)k) {
                    printf("  MISMATCH moe.gate ties: cpu chose %d at slot %lld\n", widx[t * K + k], (long long)k);
                    row->ref_bad++;
                    break;
                }
    dsk4j_context* ctxs[2] = {g_ref, g_fast};
    for (int c = 0; c < 2; c++) {
        dsk4j_context* g = ctxs[c];
        void* dx = mla_upload(g, x, xb);
        void* dw = mla_upload(g, wg, wb);
        void* db = bias ? mla_upload(g, bias, bb) : NULL;
        void* di = moe_poisoned(g, ib);
        void* dwt = moe_poisoned(g, ib);
        void* dl = moe_poisoned(g, lb);
        CK(dsk4j_moe_gate(g, di, ib, dwt, ib, dl, lb, dx, xb, xdt, dw, wb, wdt, db, bb, T, H, E, K, r->n_group,
                          r->topk_group, r->score_func, r->norm, r->scale));
        moe_download(g, gidx, di, ib);
        moe_download(g, gw, dwt, ib);
        moe_download(g, gl, dl, lb);
        char what[128];
        snprintf(what, sizeof what, "moe.gate %s %s", c ? "fast" : "ref", shape);
        long long bad = moe_cmp_bytes(what, widx, gidx, ib, 4) + moe_cmp_bytes(what, wl, gl, lb, 4) +
                        moe_cmp_rel(what, ww, gw, T * K, 1e-6);
        if (c == 0) row->ref_bad += bad;
        else row->fast_bad += bad;
        if (c == 1 && timed && g_timing) {
            for (int w = 0; w < 2; w++)
                CK(dsk4j_moe_gate(g, di, ib, dwt, ib, NULL, 0, dx, xb, xdt, dw, wb, wdt, db, bb, T, H, E, K, r->n_group,
                                  r->topk_group, r->score_func, r->norm, r->scale));
            CK(dsk4j_synchronize(g));
            const int iters = 20;
            const double t0 = now_s();
            for (int it = 0; it < iters; it++)
                CK(dsk4j_moe_gate(g, di, ib, dwt, ib, NULL, 0, dx, xb, xdt, dw, wb, wdt, db, bb, T, H, E, K, r->n_group,
                                  r->topk_group, r->score_func, r->norm, r->scale));
            CK(dsk4j_synchronize(g));
            const double per = moe_time_end(t0, iters);
            row->ms = per * 1e3;
            row->gbps = (double)(xb + wb) / per / 1e9;
            row->tflops = 2.0 * (double)T * (double)E * (double)H / per / 1e12;
        }
        void* frees[6] = {dx, dw, db, di, dwt, dl};
        for (int i = 0; i < 6; i++)
            if (frees[i]) CK(dsk4j_mem_free(g, frees[i]));
    }
    free(x); free(wg); free(bias); free(widx); free(ww); free(wl); free(gidx); free(gw); free(gl);
}

/* K distinct random experts per token. */
static void moe_random_indices(int32_t* idx, int64_t T, int64_t K, int64_t E) {
    int32_t* p = xmalloc((size_t)E * 4);
    for (int64_t t = 0; t < T; t++) {
        for (int64_t e = 0; e < E; e++) p[e] = (int32_t)e;
        for (int64_t k = 0; k < K; k++) {
            int64_t j = k + (int64_t)(rnd() % (uint64_t)(E - k));
            int32_t tmp = p[k]; p[k] = p[j]; p[j] = tmp;
            idx[t * K + k] = p[k];
        }
    }
    free(p);
}

/* moe.dispatch (align, m_max as given), then with its cpu result moe.gather (bf16 x [T, H], f32
 * scales [T, H/128]) and moe.combine (e f32|bf16 [rows, H], shared or not, y f32|bf16). H is not
 * the router's (the data movement does not depend on it): 1024 keeps the host side short, an odd
 * H takes the kernels' scalar paths. */
static void moe_dispatch_case(const moe_router* r, int64_t T, int32_t align, int64_t m_max, int64_t H) {
    const int64_t E = r->experts, K = r->top_k, P = T * K;
    const int64_t rows = m_max > 0 ? E * m_max : P + E * (align - 1);
    char shape[72];
    snprintf(shape, sizeof shape, "%s T=%lld %s%lld H=%lld", r->name, (long long)T, m_max > 0 ? "masked m_max=" : "align=",
             (long long)(m_max > 0 ? m_max : align), (long long)H);
    moe_row* rd = moe_new_row("moe.dispatch", shape);
    int32_t* idx = xmalloc((size_t)P * 4);
    moe_random_indices(idx, T, K, E);
    const int64_t cb = E * 4, ob = (E + 1) * 4, pb = P * 4, sb = rows * 4;
    int32_t *wc = xmalloc((size_t)cb), *wo = xmalloc((size_t)ob), *wr = xmalloc((size_t)pb), *ws = xmalloc((size_t)sb);
    int32_t *gc = xmalloc((size_t)cb), *go = xmalloc((size_t)ob), *gr = xmalloc((size_t)pb), *gs = xmalloc((size_t)sb);
    CK(dsk4j_moe_dispatch(g_cpu, wc, cb, wo, ob, wr, pb, ws, sb, idx, pb, T, K, E, align, m_max));
    /* gather / combine inputs */
    const int64_t xb = T * H * 2, xsb = T * (H / 128) * 4;
    uint16_t* x = xmalloc((size_t)xb);
    float* xs = xmalloc((size_t)xsb);
    mla_fill(x, DSK4J_DTYPE_BF16, T * H, 3.0f);
    mla_fill(xs, DSK4J_DTYPE_F32, T * (H / 128), 1.0f);
    uint16_t* wxp = xmalloc((size_t)(rows * H * 2));
    float* wxs = xmalloc((size_t)(rows * (H / 128) * 4));
    void* gbuf = xmalloc((size_t)(rows * H * 4 > T * H * 4 ? rows * H * 4 : T * H * 4));
    CK(dsk4j_moe_gather(g_cpu, wxp, rows * H * 2, x, xb, DSK4J_DTYPE_BF16, ws, sb, rows, T, K, H));
    CK(dsk4j_moe_gather(g_cpu, wxs, rows * (H / 128) * 4, xs, xsb, DSK4J_DTYPE_F32, ws, sb, rows, T, K, H / 128));
    float* e32 = xmalloc((size_t)(rows * H * 4));
    uint16_t* e16 = xmalloc((size_t)(rows * H * 2));
    float* wts = xmalloc((size_t)pb);
    float* sh = xmalloc((size_t)(T * H * 4));
    mla_fill(e32, DSK4J_DTYPE_F32, rows * H, 2.0f);
    mla_fill(e16, DSK4J_DTYPE_BF16, rows * H, 2.0f);
    mla_fill(wts, DSK4J_DTYPE_F32, P, 1.0f);
    mla_fill(sh, DSK4J_DTYPE_F32, T * H, 1.0f);
    /* combine variants: (e dtype, y dtype, shared) */
    const int32_t cv[3][3] = {{DSK4J_DTYPE_F32, DSK4J_DTYPE_F32, 1}, {DSK4J_DTYPE_BF16, DSK4J_DTYPE_BF16, 0},
                              {DSK4J_DTYPE_F32, DSK4J_DTYPE_BF16, 1}};
    void* wy[3];
    for (int v = 0; v < 3; v++) {
        const int64_t yb = T * H * (int64_t)dsize(cv[v][1]);
        wy[v] = xmalloc((size_t)yb);
        CK(dsk4j_moe_combine(g_cpu, wy[v], yb, cv[v][1], cv[v][0] == DSK4J_DTYPE_F32 ? (void*)e32 : (void*)e16,
                             rows * H * (int64_t)dsize(cv[v][0]), cv[v][0], wts, pb, wr, pb, cv[v][2] ? sh : NULL,
                             cv[v][2] ? T * H * 4 : 0, DSK4J_DTYPE_F32, T, K, rows, H));
    }
    moe_row* rg = moe_new_row("moe.gather", shape);
    moe_row* rc = moe_new_row("moe.combine", shape);
    dsk4j_context* ctxs[2] = {g_ref, g_fast};
    for (int c = 0; c < 2; c++) {
        dsk4j_context* g = ctxs[c];
        char what[128];
        snprintf(what, sizeof what, "moe.dispatch %s %s", c ? "fast" : "ref", shape);
        void* di = mla_upload(g, idx, pb);
        void *dc = moe_poisoned(g, cb), *dof = moe_poisoned(g, ob), *dr = moe_poisoned(g, pb), *ds = moe_poisoned(g, sb);
        CK(dsk4j_moe_dispatch(g, dc, cb, dof, ob, dr, pb, ds, sb, di, pb, T, K, E, align, m_max));
        moe_download(g, gc, dc, cb);
        moe_download(g, go, dof, ob);
        moe_download(g, gr, dr, pb);
        moe_download(g, gs, ds, sb);
        long long bad = moe_cmp_bytes(what, wc, gc, cb, 4) + moe_cmp_bytes(what, wo, go, ob, 4) +
                        moe_cmp_bytes(what, wr, gr, pb, 4) + moe_cmp_bytes(what, ws, gs, sb, 4);
        if (c == 0) rd->ref_bad += bad;
        else rd->fast_bad += bad;
        /* gather and combine from the cpu's layout (uploaded), so that they are checked on their own */
        void* dso = mla_upload(g, ws, sb);
        void* dro = mla_upload(g, wr, pb);
        void* dx = mla_upload(g, x, xb);
        void* dxs = mla_upload(g, xs, xsb);
        void* dxp = moe_poisoned(g, rows * H * 2);
        void* dxsp = moe_poisoned(g, rows * (H / 128) * 4);
        snprintf(what, sizeof what, "moe.gather %s %s", c ? "fast" : "ref", shape);
        CK(dsk4j_moe_gather(g, dxp, rows * H * 2, dx, xb, DSK4J_DTYPE_BF16, dso, sb, rows, T, K, H));
        CK(dsk4j_moe_gather(g, dxsp, rows * (H / 128) * 4, dxs, xsb, DSK4J_DTYPE_F32, dso, sb, rows, T, K, H / 128));
        moe_download(g, gbuf, dxp, rows * H * 2);
        bad = moe_cmp_bytes(what, wxp, gbuf, rows * H * 2, 2);
        moe_download(g, gbuf, dxsp, rows * (H / 128) * 4);
        bad += moe_cmp_bytes(what, wxs, gbuf, rows * (H / 128) * 4, 4);
        if (c == 0) rg->ref_bad += bad;
        else rg->fast_bad += bad;
        void* de32 = mla_upload(g, e32, rows * H * 4);
        void* de16 = mla_upload(g, e16, rows * H * 2);
        void* dw = mla_upload(g, wts, pb);
        void* dsh = mla_upload(g, sh, T * H * 4);
        bad = 0;
        for (int v = 0; v < 3; v++) {
            const int64_t yb = T * H * (int64_t)dsize(cv[v][1]);
            void* dy = moe_poisoned(g, yb);
            snprintf(what, sizeof what, "moe.combine %s e=%s y=%s%s %s", c ? "fast" : "ref", dname(cv[v][0]),
                     dname(cv[v][1]), cv[v][2] ? " +shared" : "", shape);
            CK(dsk4j_moe_combine(g, dy, yb, cv[v][1], cv[v][0] == DSK4J_DTYPE_F32 ? de32 : de16,
                                 rows * H * (int64_t)dsize(cv[v][0]), cv[v][0], dw, pb, dro, pb, cv[v][2] ? dsh : NULL,
                                 cv[v][2] ? T * H * 4 : 0, DSK4J_DTYPE_F32, T, K, rows, H));
            moe_download(g, gbuf, dy, yb);
            bad += moe_cmp_bytes(what, wy[v], gbuf, yb, (int64_t)dsize(cv[v][1]));
            CK(dsk4j_mem_free(g, dy));
        }
        if (c == 0) rc->ref_bad += bad;
        else rc->fast_bad += bad;
        void* frees[15] = {di, dc, dof, dr, ds, dso, dro, dx, dxs, dxp, dxsp, de32, de16, dw, dsh};
        for (int i = 0; i < 15; i++) CK(dsk4j_mem_free(g, frees[i]));
    }
    for (int v = 0; v < 3; v++) free(wy[v]);
    free(idx); free(wc); free(wo); free(wr); free(ws); free(gc); free(go); free(gr); free(gs);
    free(x); free(xs); free(wxp); free(wxs); free(gbuf); free(e32); free(e16); free(wts); free(sh);
}

/* moe.silu_quant on h [rows, 2*inter] (amplitude amp). */
static void moe_silu_case(int64_t rows, int64_t inter, float amp) {
    char shape[72];
    snprintf(shape, sizeof shape, "rows=%lld inter=%lld amp=%g", (long long)rows, (long long)inter, (double)amp);
    moe_row* row = moe_new_row("moe.silu_quant", shape);
    const int64_t hb = rows * 2 * inter * 4, yb = rows * inter, sb = rows * (inter / 128) * 4;
    float* h = xmalloc((size_t)hb);
    mla_fill(h, DSK4J_DTYPE_F32, rows * 2 * inter, amp);
    uint8_t *wy = xmalloc((size_t)yb), *gy = xmalloc((size_t)yb);
    float *wsc = xmalloc((size_t)sb), *gsc = xmalloc((size_t)sb);
    CK(dsk4j_moe_silu_quant(g_cpu, wy, yb, wsc, sb, h, hb, rows, inter));
    dsk4j_context* ctxs[2] = {g_ref, g_fast};
    long long off_total = 0;
    for (int c = 0; c < 2; c++) {
        dsk4j_context* g = ctxs[c];
        void* dh = mla_upload(g, h, hb);
        void* dy = moe_poisoned(g, yb);
        void* ds = moe_poisoned(g, sb);
        CK(dsk4j_moe_silu_quant(g, dy, yb, ds, sb, dh, hb, rows, inter));
        moe_download(g, gy, dy, yb);
        moe_download(g, gsc, ds, sb);
        char what[128];
        snprintf(what, sizeof what, "moe.silu_quant %s %s", c ? "fast" : "ref", shape);
        long long bad = moe_cmp_rel(what, wsc, gsc, rows * (inter / 128), 1e-6), off = 0;
        for (int64_t i = 0; i < yb; i++) {
            const int d = abs((int)(wy[i] & 0x7f) - (int)(gy[i] & 0x7f));
            const int same_sign = (wy[i] & 0x80) == (gy[i] & 0x80) || (wy[i] & 0x7f) == 0 || (gy[i] & 0x7f) == 0;
            if (d > 1 || !same_sign) {
                if (bad < 3) printf("  MISMATCH %s code [%lld]: cpu 0x%02x, cuda 0x%02x\n", what, (long long)i, wy[i], gy[i]);
                bad++;
            } else if (d) {
                off++;
            }
        }
        if (off > (yb / 1000 > 1 ? yb / 1000 : 1)) {
            printf("  MISMATCH %s: %lld codes one step off\n", what, off);
            bad++;
        }
        off_total += off;
        if (c == 0) row->ref_bad += bad;
        else row->fast_bad += bad;
        CK(dsk4j_mem_free(g, dh));
        CK(dsk4j_mem_free(g, dy));
        CK(dsk4j_mem_free(g, ds));
    }
    snprintf(row->note, sizeof row->note, "%lld codes one step off (expf)", off_total);
    free(h); free(wy); free(gy); free(wsc); free(gsc);
}

static void moe_bias_case(int64_t experts) {
    char shape[72];
    snprintf(shape, sizeof shape, "experts=%lld", (long long)experts);
    moe_row* row = moe_new_row("moe.bias_update", shape);
    float* bias = xmalloc((size_t)experts * 4);
    int32_t* counts = xmalloc((size_t)experts * 4);
    float* got = xmalloc((size_t)experts * 4);
    mla_fill(bias, DSK4J_DTYPE_F32, experts, 0.01f);
    for (int64_t e = 0; e < experts; e++) counts[e] = (int32_t)(rnd() % 64);
    float* want = xmalloc((size_t)experts * 4);
    memcpy(want, bias, (size_t)experts * 4);
    CK(dsk4j_moe_bias_update(g_cpu, want, experts * 4, counts, experts * 4, experts, 0.001f));
    dsk4j_context* ctxs[2] = {g_ref, g_fast};
    for (int c = 0; c < 2; c++) {
        void* db = mla_upload(ctxs[c], bias, experts * 4);
        void* dc = mla_upload(ctxs[c], counts, experts * 4);
        CK(dsk4j_moe_bias_update(ctxs[c], db, experts * 4, dc, experts * 4, experts, 0.001f));
        moe_download(ctxs[c], got, db, experts * 4);
        long long bad = moe_cmp_bytes(c ? "moe.bias_update fast" : "moe.bias_update ref", want, got, experts * 4, 4);
        if (c == 0) row->ref_bad += bad;
        else row->fast_bad += bad;
        CK(dsk4j_mem_free(ctxs[c], db));
        CK(dsk4j_mem_free(ctxs[c], dc));
    }
    free(bias); free(counts); free(got); free(want);
}

/* One layer's weights (sizes in bytes): fp8 (codes of magnitude <= 1.875, scales ~2^-7..2^-9), bf16 or f32,
 * host or device-replicated. */
typedef struct {
    int64_t E, H, I, Is;
    int32_t wdt; /* DSK4J_DTYPE_E4M3, _BF16 or _F32 */
    int fp8;
    int64_t n13, n2, ns13, ns2, s13b, s2b, ss13b, ss2b; /* bytes */
    void *w13, *w2, *s13, *s2;                            /* host (NULL when device-only) */
    float *w13s, *w2s, *s13s, *s2s;
} moe_layer;

static void moe_fill_weights(void* p, int64_t n, int32_t wdt) {
    if (wdt == DSK4J_DTYPE_E4M3) {
        uint8_t* b = p;
        for (int64_t i = 0; i < n; i += 8) {
            uint64_t v = rnd() & 0xBFBFBFBFBFBFBFBFull; /* exponent <= 7: |w| <= 1.875, never NaN */
            memcpy(b + i, &v, (size_t)(n - i < 8 ? n - i : 8));
        }
    } else {
        mla_fill(p, wdt, n / (wdt == DSK4J_DTYPE_F32 ? 4 : 2), 0.03f); /* n bytes */
    }
}

static void moe_fill_scales(float* s, int64_t n) {
    for (int64_t i = 0; i < n; i++) s[i] = ldexpf(1.0f + (float)(rnd() % 256) / 256.0f, -7 - (int)(rnd() % 3));
}

static void moe_layer_init(moe_layer* L, int64_t E, int64_t H, int64_t I, int64_t Is, int32_t wdt, int host) {
    memset(L, 0, sizeof *L);
    const int fp8 = wdt == DSK4J_DTYPE_E4M3;
    L->E = E, L->H = H, L->I = I, L->Is = Is, L->wdt = wdt, L->fp8 = fp8;
    const int64_t es = fp8 ? 1 : wdt == DSK4J_DTYPE_F32 ? 4 : 2;
    L->n13 = E * 2 * I * H * es;
    L->n2 = E * H * I * es;
    L->ns13 = 2 * Is * H * es;
    L->ns2 = H * Is * es;
    if (fp8) {
        L->s13b = E * ((2 * I + 127) / 128) * (H / 128) * 4;
        L->s2b = E * ((H + 127) / 128) * (I / 128) * 4;
        L->ss13b = ((2 * Is + 127) / 128) * (H / 128) * 4;
        L->ss2b = ((H + 127) / 128) * (Is / 128) * 4;
        L->w13s = xmalloc((size_t)L->s13b);
        L->w2s = xmalloc((size_t)L->s2b);
        L->s13s = xmalloc((size_t)(L->ss13b ? L->ss13b : 4));
        L->s2s = xmalloc((size_t)(L->ss2b ? L->ss2b : 4));
        moe_fill_scales(L->w13s, L->s13b / 4);
        moe_fill_scales(L->w2s, L->s2b / 4);
        moe_fill_scales(L->s13s, L->ss13b / 4);
        moe_fill_scales(L->s2s, L->ss2b / 4);
    }
    if (!host) return;
    L->w13 = xmalloc((size_t)L->n13);
    L->w2 = xmalloc((size_t)L->n2);
    L->s13 = xmalloc((size_t)(L->ns13 ? L->ns13 : 4));
    L->s2 = xmalloc((size_t)(L->ns2 ? L->ns2 : 4));
    moe_fill_weights(L->w13, L->n13, wdt);
    moe_fill_weights(L->w2, L->n2, wdt);
    moe_fill_weights(L->s13, L->ns13, wdt);
    moe_fill_weights(L->s2, L->ns2, wdt);
}

static void moe_layer_free(moe_layer* L) {
    free(L->w13); free(L->w2); free(L->s13); free(L->s2); free(L->w13s); free(L->w2s); free(L->s13s); free(L->s2s);
}

/* A device copy of n bytes: from host h, or (h NULL) n bytes replicated from a 64 MiB random block. */
static void* moe_device_weights(dsk4j_context* g, const void* h, int64_t n, int32_t wdt) {
    if (h) return mla_upload(g, h, n);
    void* d = NULL;
    CK(dsk4j_mem_alloc(&d, g, n > 0 ? n : 16));
    const int64_t blk = (int64_t)64 << 20;
    void* hb = xmalloc((size_t)blk);
    moe_fill_weights(hb, blk, wdt);
    const int64_t first = n < blk ? n : blk;
    if (first > 0) CK(dsk4j_memcpy(g, d, n, hb, blk, first, DSK4J_COPY_HOST_TO_DEVICE));
    for (int64_t off = first; off < n; off += blk) {
        const int64_t len = n - off < blk ? n - off : blk;
        CK(dsk4j_memcpy(g, (char*)d + off, n - off, d, n, len, DSK4J_COPY_DEVICE_TO_DEVICE));
    }
    free(hb);
    return d;
}

/* moe.forward: cpu vs cuda (ref, fast) when check, and timed on the fast context when timed. */
static void moe_forward_case(const moe_router* r, moe_layer* L, int64_t T, int check, int timed) {
    const int64_t E = L->E, H = L->H, K = r->top_k;
    char shape[72];
    snprintf(shape, sizeof shape, "%s E=%lld H=%lld I=%lld Is=%lld %s T=%lld", r->name, (long long)E, (long long)H,
             (long long)L->I, (long long)L->Is, L->fp8 ? "fp8" : L->wdt == DSK4J_DTYPE_F32 ? "f32" : "bf16", (long long)T);
    moe_row* row = moe_new_row("moe.forward", shape);
    const int32_t wdt = L->wdt;
    const int64_t xb = T * H * 4, wgb = E * H * 4, bb = r->bias ? E * 4 : 0, yb = T * H * 4, cb = E * 4;
    float* x = xmalloc((size_t)xb);
    float* wg = xmalloc((size_t)wgb);
    float* bias = r->bias ? xmalloc((size_t)bb) : NULL;
    mla_fill(x, DSK4J_DTYPE_F32, T * H, 1.0f);
    mla_fill(wg, DSK4J_DTYPE_F32, E * H, (float)(2.0 / sqrt((double)H)));
    if (bias) mla_fill(bias, DSK4J_DTYPE_F32, E, 0.02f);
    float *wy = xmalloc((size_t)yb), *gy = xmalloc((size_t)yb);
    int32_t *wc = xmalloc((size_t)cb), *gc = xmalloc((size_t)cb);
    const int sh = L->Is > 0;
    if (check)
        CK(dsk4j_moe_forward(g_cpu, wy, yb, DSK4J_DTYPE_F32, wc, cb, x, xb, DSK4J_DTYPE_F32, wg, wgb, DSK4J_DTYPE_F32,
                             bias, bb, wdt, L->w13, L->n13, L->w13s, L->s13b, L->w2, L->n2, L->w2s, L->s2b,
                             sh ? L->s13 : NULL, sh ? L->ns13 : 0, sh ? L->s13s : NULL, sh ? L->ss13b : 0,
                             sh ? L->s2 : NULL, sh ? L->ns2 : 0, sh ? L->s2s : NULL, sh ? L->ss2b : 0, T, H, L->I, L->Is,
                             E, K, r->n_group, r->topk_group, r->score_func, r->norm, r->scale));
    dsk4j_context* ctxs[2] = {g_ref, g_fast};
    for (int c = check ? 0 : 1; c < 2; c++) {
        dsk4j_context* g = ctxs[c];
        void* dx = mla_upload(g, x, xb);
        void* dwg = mla_upload(g, wg, wgb);
        void* db = bias ? mla_upload(g, bias, bb) : NULL;
        void* d13 = moe_device_weights(g, L->w13, L->n13, L->wdt);
        void* d2 = moe_device_weights(g, L->w2, L->n2, L->wdt);
        void* ds13 = sh ? moe_device_weights(g, L->s13, L->ns13, L->wdt) : NULL;
        void* ds2 = sh ? moe_device_weights(g, L->s2, L->ns2, L->wdt) : NULL;
        void* d13s = L->fp8 ? mla_upload(g, L->w13s, L->s13b) : NULL;
        void* d2s = L->fp8 ? mla_upload(g, L->w2s, L->s2b) : NULL;
        void* ds13s = L->fp8 && sh ? mla_upload(g, L->s13s, L->ss13b) : NULL;
        void* ds2s = L->fp8 && sh ? mla_upload(g, L->s2s, L->ss2b) : NULL;
        void* dy = moe_poisoned(g, yb);
        void* dc = moe_poisoned(g, cb);
#define MOE_FWD(ctx)                                                                                                   \
    dsk4j_moe_forward(ctx, dy, yb, DSK4J_DTYPE_F32, dc, cb, dx, xb, DSK4J_DTYPE_F32, dwg, wgb, DSK4J_DTYPE_F32, db, bb, \
                      wdt, d13, L->n13, d13s, L->s13b, d2, L->n2, d2s, L->s2b, ds13, sh ? L->ns13 : 0, ds13s,          \
                      sh ? L->ss13b : 0, ds2, sh ? L->ns2 : 0, ds2s, sh ? L->ss2b : 0, T, H, L->I, L->Is, E, K,         \
                      r->n_group, r->topk_group, r->score_func, r->norm, r->scale)
        CK(MOE_FWD(g));
        if (check) {
            moe_download(g, gy, dy, yb);
            moe_download(g, gc, dc, cb);
            char what[128];
            snprintf(what, sizeof what, "moe.forward %s %s", c ? "fast" : "ref", shape);
            long long bad = 0;
            /* fp8: the activations are re-quantized after w13, so a GEMM rounding difference near an
             * e4m3 rounding boundary moves a code by a whole step (~6%): 1e-2 as for bf16 outputs; f32:
             * exact f32 products and unrounded activations, 1e-5 as for gemm.f32 */
            const double tol = L->fp8 ? 1e-2 : wdt == DSK4J_DTYPE_F32 ? 1e-5 : 2e-3;
            const double err = mla_cmp(what, wy, gy, DSK4J_DTYPE_F32, T * H, tol, &bad);
            bad += moe_cmp_bytes(what, wc, gc, cb, 4);
            if (c == 0) row->ref_bad += bad, row->ref_err = err;
            else row->fast_bad += bad, row->fast_err = err;
        }
        if (c == 1 && timed && g_timing) {
            CK(MOE_FWD(g));
            CK(dsk4j_synchronize(g));
            const int iters = T >= 1024 ? 5 : 20;
            const double t0 = now_s();
            for (int it = 0; it < iters; it++) CK(MOE_FWD(g));
            CK(dsk4j_synchronize(g));
            const double per = moe_time_end(t0, iters);
            moe_download(g, gc, dc, cb);
            int64_t touched = 0;
            for (int64_t e = 0; e < E; e++) touched += gc[e] > 0;
            const double per_expert = (double)(L->n13 + L->n2) / (double)E;
            row->ms = per * 1e3;
            row->gbps = ((double)touched * per_expert + (double)(L->ns13 + L->ns2)) / per / 1e9;
            row->tflops = 2.0 * (double)T * (double)H * (double)(K * 3 * L->I + 3 * L->Is) / per / 1e12;
            snprintf(row->note, sizeof row->note, "%lld of %lld experts touched", (long long)touched, (long long)E);
        }
#undef MOE_FWD
        void* frees[13] = {dx, dwg, db, d13, d2, ds13, ds2, d13s, d2s, ds13s, ds2s, dy, dc};
        for (int i = 0; i < 13; i++)
            if (frees[i]) CK(dsk4j_mem_free(g, frees[i]));
    }
    free(x); free(wg); free(bias); free(wy); free(gy); free(wc); free(gc);
}

static void check_moe(void) {
    const int Q = g_quick;
    const int64_t ts[4] = {1, 7, 128, 1000};
    const moe_router* routers[2] = {&MOE_V3, &MOE_V2L};
    for (int ri = 0; ri < 2; ri++) {
        const moe_router* r = routers[ri];
        for (int ti = 0; ti < 4; ti++) {
            const int64_t T = ts[ti];
            if (Q && T == 1000) continue;
            moe_gate_case(r, T, DSK4J_DTYPE_F32, DSK4J_DTYPE_F32, 0, T >= 128);
            moe_gate_case(r, T, DSK4J_DTYPE_BF16, DSK4J_DTYPE_BF16, 0, 0);
            if (T == 7) {
                moe_gate_case(r, T, DSK4J_DTYPE_BF16, DSK4J_DTYPE_F32, 0, 0);
                moe_gate_case(r, T, DSK4J_DTYPE_F32, DSK4J_DTYPE_F32, 1, 0);
            }
            moe_dispatch_case(r, T, 1, 0, 1024);
            moe_dispatch_case(r, T, 128, 0, 1024);
            moe_dispatch_case(r, T, 1, T, 1024);
            if (T == 7) moe_dispatch_case(r, T, 3, 0, 333);
        }
    }
    moe_silu_case(7, 2048, 1.0f);
    moe_silu_case(Q ? 128 : 8000, 2048, 3.0f);
    moe_silu_case(300, 1408, 0.01f);
    moe_bias_case(256);
    moe_bias_case(64);
    moe_bias_case(5000);
    /* forward vs the cpu */
    moe_router v3e64 = MOE_V3;
    v3e64.name = "v3-router/64";
    v3e64.experts = 64;
    moe_layer L;
    moe_layer_init(&L, 64, 7168, 2048, 2048, DSK4J_DTYPE_E4M3, 1);
    moe_forward_case(&v3e64, &L, 1, 1, 0);
    moe_forward_case(&v3e64, &L, 7, 1, 0);
    if (!Q) moe_forward_case(&v3e64, &L, 128, 1, 0);
    moe_layer_free(&L);
    moe_layer_init(&L, 64, 2048, 1408, 2816, DSK4J_DTYPE_E4M3, 1);
    for (int ti = 0; ti < 4; ti++)
        if (!(Q && ts[ti] == 1000)) moe_forward_case(&MOE_V2L, &L, ts[ti], 1, 0);
    moe_layer_free(&L);
    moe_router small = MOE_V2L;
    small.name = "v2-lite-router/bf16";
    small.hidden = 512;
    moe_layer_init(&L, 64, 512, 256, 512, DSK4J_DTYPE_BF16, 1);
    moe_forward_case(&small, &L, 7, 1, 0);
    moe_forward_case(&small, &L, 128, 1, 0);
    moe_layer_free(&L);
    small.name = "v2-lite-router/f32";
    moe_layer_init(&L, 64, 512, 200, 300, DSK4J_DTYPE_F32, 1); /* f32: no multiple of 128 needed */
    moe_forward_case(&small, &L, 1, 1, 0);
    moe_forward_case(&small, &L, 7, 1, 0);
    moe_forward_case(&small, &L, 128, 1, 0);
    moe_layer_free(&L);
    if (Q || !g_timing) return;
    /* timing: the full V3 layer, weights replicated on the device */
    moe_layer_init(&L, 256, 7168, 2048, 2048, DSK4J_DTYPE_E4M3, 0);
    const int64_t tt[3] = {1, 128, 4096};
    for (int i = 0; i < 3; i++) moe_forward_case(&MOE_V3, &L, tt[i], 0, 1);
    moe_layer_free(&L);
}

static long long moe_table(void) {
    long long fails = 0;
    printf("\n%-16s %-52s %8s %8s %9s %9s %8s %8s %8s  %s\n", "moe op", "shape", "ref_bad", "fast_bad", "ref_err",
           "fast_err", "ms", "GB/s", "TFLOPS", "note");
    for (int i = 0; i < g_nerows; i++) {
        moe_row* r = &g_erows[i];
        char re[16] = "-", fe[16] = "-", ms[16] = "-", gb[16] = "-", tf[16] = "-";
        if (r->ref_err >= 0) snprintf(re, sizeof re, "%.2e", r->ref_err);
        if (r->fast_err >= 0) snprintf(fe, sizeof fe, "%.2e", r->fast_err);
        if (r->ms > 0) {
            snprintf(ms, sizeof ms, "%.3f", r->ms);
            snprintf(gb, sizeof gb, "%.0f", r->gbps);
            snprintf(tf, sizeof tf, "%.2f", r->tflops);
        }
        printf("%-16s %-52s %8lld %8lld %9s %9s %8s %8s %8s  %s\n", r->op, r->shape, r->ref_bad, r->fast_bad, re, fe, ms,
               gb, tf, r->note);
        fails += r->ref_bad + r->fast_bad;
    }
    return fails;
}
/* ==== end of moe ==== */

int main(int argc, char** argv) {
    const char* device = "cuda:0";
    int exhaustive = 1, do_gemm = 1, only_gemm = 0, only_wgmma = 0;
    int do_rope = 1, only_rope = 0; /* rope section */
    int do_mla = 1, only_mla = 0;   /* mla section */
    int do_moe = 1, only_moe = 0;   /* moe section */
    int do_ew = 1, only_ew = 0;     /* elementwise section */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) g_quick = 1;
        else if (!strcmp(argv[i], "--no-exhaustive")) exhaustive = 0;
        else if (!strcmp(argv[i], "--no-timing")) g_timing = 0;
        else if (!strcmp(argv[i], "--no-gemm")) do_gemm = 0;
        else if (!strcmp(argv[i], "--only-gemm")) only_gemm = 1;
        else if (!strcmp(argv[i], "--only-wgmma")) only_wgmma = only_gemm = 1;
        else if (!strcmp(argv[i], "--no-rope")) do_rope = 0;
        else if (!strcmp(argv[i], "--only-rope")) only_rope = 1;
        else if (!strcmp(argv[i], "--no-mla")) do_mla = 0;
        else if (!strcmp(argv[i], "--only-mla")) only_mla = 1;
        else if (!strcmp(argv[i], "--no-moe")) do_moe = 0;
        else if (!strcmp(argv[i], "--only-moe")) only_moe = 1;
        else if (!strcmp(argv[i], "--no-ew")) do_ew = 0;
        else if (!strcmp(argv[i], "--only-ew")) only_ew = 1;
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) g_rng = strtoull(argv[++i], NULL, 0) | 1;
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--quick] [--no-exhaustive] [--no-timing] [--no-gemm] [--only-gemm] [--only-wgmma] [--no-rope] [--only-rope] [--no-mla] [--only-mla] [--no-moe] [--only-moe] [--no-ew] [--only-ew] [--seed N] [--device cuda:N]\n",
                    argv[0]);
            return 2;
        }
    }
    printf("gpu_check: seed 0x%llx\n", (unsigned long long)g_rng);
    /* g_fast: the default fp8 gemm choice (wgmma on sm_90a); g_mma: forced mma.sync. The
     * variable is read when a context opens. */
    const char* env0 = getenv("DSK4J_CUDA_GEMM_KERNEL");
    char* saved_env = env0 ? strdup(env0) : NULL;
    setenv("DSK4J_CUDA_GEMM_KERNEL", "auto", 1);
    int rc = dsk4j_context_open(&g_fast, device, 0, 0);
    if (rc == DSK4J_ERR_UNAVAILABLE) {
        printf("gpu_check: SKIPPED - CUDA is unavailable here: %s\n", dsk4j_last_error());
        return EXIT_SKIP;
    }
    if (rc != DSK4J_OK) {
        fprintf(stderr, "gpu_check: cannot open %s: %d: %s\n", device, rc, dsk4j_last_error());
        return 2;
    }
    CK(dsk4j_context_open(&g_ref, device, 0, DSK4J_CUDA_REFERENCE_KERNELS));
    setenv("DSK4J_CUDA_GEMM_KERNEL", "mma", 1);
    CK(dsk4j_context_open(&g_mma, device, 0, 0));
    if (saved_env) setenv("DSK4J_CUDA_GEMM_KERNEL", saved_env, 1);
    else unsetenv("DSK4J_CUDA_GEMM_KERNEL");
    free(saved_env);
    CK(dsk4j_context_open(&g_cpu, "cpu", 0, 0));
    if (only_moe || only_ew) do_mla = 0;
    if (do_mla) { /* the opt-in sm_90a mla decode kernel, where the module has it */
        const char* m0 = getenv("DSK4J_CUDA_MLA_KERNEL");
        char* saved_mla = m0 ? strdup(m0) : NULL;
        setenv("DSK4J_CUDA_MLA_KERNEL", "wgmma", 1);
        CK(dsk4j_context_open(&g_mla_wg, device, 0, 0));
        if (saved_mla) setenv("DSK4J_CUDA_MLA_KERNEL", saved_mla, 1);
        else unsetenv("DSK4J_CUDA_MLA_KERNEL");
        free(saved_mla);
        char dw[256];
        CK(dsk4j_context_describe(dw, sizeof dw, g_mla_wg));
        printf("mla wgmma: %s\n", dw);
        if (strstr(dw, ", mla decode wgmma") == NULL) {
            CK(dsk4j_context_close(g_mla_wg));
            g_mla_wg = NULL;
            printf("mla wgmma: not available on this module (sm_90a only) - decode runs on mma.sync only\n");
        }
        /* the FlashMLA-style sm_90a kernel (never run on a GPU before this check) */
        m0 = getenv("DSK4J_CUDA_MLA_KERNEL");
        saved_mla = m0 ? strdup(m0) : NULL;
        setenv("DSK4J_CUDA_MLA_KERNEL", "flash", 1);
        CK(dsk4j_context_open(&g_mla_fl, device, 0, 0));
        if (saved_mla) setenv("DSK4J_CUDA_MLA_KERNEL", saved_mla, 1);
        else unsetenv("DSK4J_CUDA_MLA_KERNEL");
        free(saved_mla);
        CK(dsk4j_context_describe(dw, sizeof dw, g_mla_fl));
        printf("mla flash: %s\n", dw);
        if (strstr(dw, ", mla decode flash") == NULL) {
            CK(dsk4j_context_close(g_mla_fl));
            g_mla_fl = NULL;
            printf("mla flash: not available on this module (sm_90a + cuTensorMapEncodeTiled only)\n");
        }
    }
    char d1[256], d2[256], d3[256], d4[256];
    CK(dsk4j_context_describe(d1, sizeof d1, g_fast));
    CK(dsk4j_context_describe(d2, sizeof d2, g_ref));
    CK(dsk4j_context_describe(d3, sizeof d3, g_cpu));
    CK(dsk4j_context_describe(d4, sizeof d4, g_mma));
    printf("fast: %s\nref:  %s\ncpu:  %s\nmma:  %s\n", d1, d2, d3, d4);
    g_fast_wgmma = strstr(d1, "fp8 gemm wgmma") != NULL;
    /* A compute capability 9.0 GPU must get the wgmma kernel (sm_90a cubin + a CUDA 12 driver). */
    const int hopper_without_wgmma = strstr(d1, ", sm_90, ") != NULL && !g_fast_wgmma;
    if (hopper_without_wgmma) printf("gpu_check: FAIL - sm_90 device but the fp8 gemm is not on wgmma\n");

    if (g_timing) measure_copy();

    const int Q = g_quick;
    if (only_ew) {
        exhaustive = 0;
        do_gemm = 0;
        do_rope = 0;
        do_mla = 0;
        do_moe = 0;
        goto gemm_section;
    }
    if (only_moe) {
        exhaustive = 0;
        do_ew = 0;
        do_gemm = 0;
        do_rope = 0;
        do_mla = 0;
        goto gemm_section;
    }
    if (only_mla) {
        exhaustive = 0;
        do_ew = 0;
        do_gemm = 0;
        do_rope = 0;
        do_moe = 0;
        goto gemm_section;
    }
    if (only_rope) {
        exhaustive = 0;
        do_ew = 0;
        do_gemm = 0;
        do_mla = 0;
        do_moe = 0;
        goto gemm_section;
    }
    if (only_gemm) {
        exhaustive = 0;
        do_ew = 0;
        do_rope = 0;
        do_mla = 0;
        do_moe = 0;
        goto gemm_section;
    }
    /* fp8.cast: every direction; big aligned, odd length, misaligned view. */
    static const int32_t wide[] = {DSK4J_DTYPE_F32, DSK4J_DTYPE_BF16, DSK4J_DTYPE_F16};
    static const int32_t f8[] = {DSK4J_DTYPE_E4M3, DSK4J_DTYPE_E5M2};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 2; b++) {
            check_cast(wide[a], f8[b], Q ? 100003 : (int64_t)4096 * 7168, 0);
            check_cast(wide[a], f8[b], 1001, 1);
            check_cast(f8[b], wide[a], Q ? 100003 : (int64_t)4096 * 7168, 0);
            check_cast(f8[b], wide[a], 1001, 1);
        }
    /* fp8.act_quant: DeepSeek-V3 activations. */
    static const int64_t act_rows[] = {1, 128, 4096, 300};
    for (int r = 0; r < 4; r++) {
        if (Q && act_rows[r] == 4096) continue;
        for (int f = 0; f < 4; f++) {
            check_act(DSK4J_DTYPE_F32, act_rows[r], 7168, f, act_rows[r] == 4096 && f == 0);
            check_act(DSK4J_DTYPE_BF16, act_rows[r], 7168, f, act_rows[r] == 4096 && f == 0);
        }
    }
    check_act(DSK4J_DTYPE_F32, 3, 128, 0, 0);
    /* fp8.weight_quant / weight_dequant: DeepSeek-V3 weights and partial edge blocks. */
    static const int64_t wshape[][2] = {{7168, 2048}, {18432, 7168}, {200, 300}, {129, 257}, {300, 7168}, {1, 1}};
    for (int s = 0; s < 6; s++) {
        int64_t n = wshape[s][0], k = wshape[s][1];
        if (Q && n * k > (int64_t)1 << 22) continue;
        int big = n == 18432;
        for (int f = 0; f < 2; f++) {
            if (!(big && f == 1)) check_wq(DSK4J_DTYPE_F32, n, k, f, big && f == 0);
            check_wq(DSK4J_DTYPE_BF16, n, k, f, big && f == 0);
        }
        check_wdq(DSK4J_DTYPE_F32, n, k, big);
        check_wdq(DSK4J_DTYPE_BF16, n, k, big);
    }
gemm_section:
    if (exhaustive) check_exhaustive();
    if (do_gemm && !only_wgmma) check_gemms();
    if (do_gemm) check_wgmma();
    if (do_rope) check_rope();
    if (do_mla) check_mla();
    if (do_moe) check_moe();
    if (do_ew) check_elementwise();

    long long total_bad = 0;
    printf("\n%-30s %-26s %9s %9s %8s %7s\n", "op", "shape", "ref_mism", "fast_mism", "GB/s", "%copy");
    for (int i = 0; i < g_nrows; i++) {
        row_t* r = &g_rows[i];
        char ref[24], gb[16], pc[16];
        if (r->ref_bad < 0) snprintf(ref, sizeof ref, "-");
        else snprintf(ref, sizeof ref, "%lld", r->ref_bad);
        if (r->gbps > 0) {
            snprintf(gb, sizeof gb, "%.0f", r->gbps);
            snprintf(pc, sizeof pc, "%.0f%%", g_copy_gbps > 0 ? 100.0 * r->gbps / g_copy_gbps : 0.0);
        } else {
            snprintf(gb, sizeof gb, "-");
            snprintf(pc, sizeof pc, "-");
        }
        total_bad += (r->ref_bad > 0 ? r->ref_bad : 0) + r->fast_bad;
        if (r->gbps > 0 || r->ref_bad != 0 || r->fast_bad != 0 || strncmp(r->op, "exhaustive", 10) == 0)
            printf("%-30s %-26s %9s %9lld %8s %7s\n", r->op, r->shape, ref, r->fast_bad, gb, pc);
    }
    printf("(%d cases; rows shown: timed, failed or exhaustive; copy %.0f GB/s)\n", g_nrows, g_copy_gbps);
    if (do_gemm) total_bad += gemm_table() + wg_table();
    total_bad += hopper_without_wgmma;
    if (do_rope) total_bad += rope_table();
    if (do_mla) total_bad += mla_table();
    if (do_moe) total_bad += moe_table();
    if (do_ew) total_bad += ew_table();
    CK(dsk4j_context_close(g_fast));
    CK(dsk4j_context_close(g_mma));
    CK(dsk4j_context_close(g_ref));
    CK(dsk4j_context_close(g_cpu));
    if (g_mla_wg) CK(dsk4j_context_close(g_mla_wg));
    if (g_mla_fl) CK(dsk4j_context_close(g_mla_fl));
    if (total_bad) {
        printf("gpu_check: FAIL - %lld mismatching elements\n", total_bad);
        return 1;
    }
    printf("gpu_check: PASS\n");
    return 0;
}
