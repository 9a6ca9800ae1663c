/* cpu_gemm.c - the gemm ops of the cpu backend (DESIGN.md 4.2): gemm.fp8_block, gemm.bf16,
 * gemm.f32 and the grouped fp8 forms, D = A * B^T with f32 accumulation. Arguments were
 * validated by api_gemm.c.
 *
 * Scales. The contract scales each 128-wide K block's partial sum by a_scale[i,kb] *
 * b_scale[j/128,kb]. That product factorizes, so the kernels fold a_scale into the
 * dequantized A and b_scale into the dequantized B (each a single f32 multiply of an exact
 * e4m3 value) and then accumulate plain products: the result differs from the contract's
 * order only by f32 rounding.
 *
 * Two ways through (layouts in cpu_gemm.h):
 *  - outer (every path, every M): A is dequantized once into k-major panels of MR rows;
 *    tasks are (MC rows, NC columns) blocks; per task and K block of KC, each group of NR rows
 *    of B is dequantized into an L1 buffer and the MR x NR kernel runs over every A panel of
 *    the block (the dequantized B is reused by all rows), accumulating an f32 tile of D^T in
 *    a task-local scratch that the epilogue adds c to and stores (f32 or bf16, RNE).
 *  - dot (fp8, M <= 8, AVX2/AVX-512): B is streamed once, decoded in registers and dotted
 *    with the few dequantized A rows (memory-bound on the e4m3 weight bytes); tasks split N.
 *  - f32 dot (gemm.f32, M <= 8, AVX2/AVX-512): a GEMV streaming the f32 or bf16 rows of B
 *    once (cpu_avx512_gemm_f32.c, cpu_avx2_gemm_f32.c); tasks split N in units of 48 rows.
 * gemm.f32 with M > 8 (or on the portable path) takes the outer way (A f32 copied into the
 * panels, B f32 copied / bf16 widened into the L1 buffer); it never takes the AMX tiles (they
 * would round A to bf16). Every way sums each element's K in an order fixed by the path and M
 * alone (the kernels' K blocking, never the thread split): the same bits on every call.
 * Threads: cpu_parallel_for over the tasks (N is always split, so M = 1 uses every core).
 * Portable path: the outer way with a plain C kernel on 128-bit GCC vectors (SSE2).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_avx2.h"
#include "cpu_avx512.h"
#include "internal.h"
#include "cpu_gemm.h"

/* ---------------- decoding rows ---------------- */

/* element kinds of the A and B rows */
enum { ROW_E4M3, ROW_BF16, ROW_F32 };

static inline int a_kind(const gemm_prob* p) { return p->f32 ? ROW_F32 : p->bf16 ? ROW_BF16 : ROW_E4M3; }
static inline int b_kind(const gemm_prob* p) {
    return p->f32 ? (p->b_bf16 ? ROW_BF16 : ROW_F32) : p->bf16 ? ROW_BF16 : ROW_E4M3;
}
static inline size_t kind_size(int kind) { return kind == ROW_F32 ? 4 : kind == ROW_BF16 ? 2 : 1; }

/* y[kc] = A or B row elements [pc, pc + kc) (of the given kind) as f32, e4m3 ones times scale
 * s[(t/128) * ss] (pc % 128 == 0 and s already offset to pc / 128 for e4m3). */
static void unpack_row(const gemm_prob* p, int kind, float* y, const void* row, int64_t pc, int64_t kc,
                       const float* s, int64_t ss) {
    if (kind == ROW_F32) {
        memcpy(y, (const float*)row + pc, (size_t)kc * sizeof(float));
        return;
    }
    if (kind == ROW_BF16) {
        const uint16_t* x = (const uint16_t*)row + pc;
        if (p->simd == SIMD_AVX512) cpu_avx512_gemm_unpack_bf16(y, x, kc);
        else if (p->simd == SIMD_AVX2) cpu_avx2_gemm_unpack_bf16(y, x, kc);
        else
            for (int64_t t = 0; t < kc; t++) y[t] = cpu_bf16_to_f32(x[t]);
        return;
    }
    const uint8_t* x = (const uint8_t*)row + pc;
    if (p->simd == SIMD_AVX512) {
        cpu_avx512_gemm_unpack_e4m3(y, x, s, ss, kc);
    } else if (p->simd == SIMD_AVX2) {
        cpu_avx2_gemm_unpack_e4m3(y, x, s, ss, kc);
    } else {
        const float* tb = p->e4m3_table;
        for (int64_t t0 = 0; t0 < kc; t0 += 128) {
            float sc = s[(t0 >> 7) * ss];
            for (int64_t t = t0; t < t0 + 128; t++) y[t] = tb[x[t]] * sc;
        }
    }
}

static inline const void* a_row(const gemm_prob* p, int64_t i) {
    return (const char*)p->a + (size_t)(i * p->k) * kind_size(a_kind(p));
}

static inline const void* b_row(const gemm_prob* p, int64_t j) {
    return (const char*)p->b + (size_t)(j * p->k) * kind_size(b_kind(p));
}

/* b_scale of row j, K block 0 (stride 1 along K blocks) */
static inline const float* b_scale_row(const gemm_prob* p, int64_t j) {
    return p->b_scale ? p->b_scale + (j >> 7) * (p->k / 128) : NULL;
}

/* ---------------- direct fallback (no allocation; used only if malloc fails) ---------------- */

static void direct_block(const gemm_prob* p, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    for (int64_t i = i0; i < i1; i++)
        for (int64_t j = j0; j < j1; j++) {
            float acc = 0.0f;
            if (p->f32) {
                const float* x = (const float*)a_row(p, i);
                const void* y = b_row(p, j);
                for (int64_t t = 0; t < p->k; t++)
                    acc += x[t] * (p->b_bf16 ? cpu_bf16_to_f32(((const uint16_t*)y)[t]) : ((const float*)y)[t]);
            } else if (p->bf16) {
                const uint16_t* x = (const uint16_t*)a_row(p, i);
                const uint16_t* y = (const uint16_t*)b_row(p, j);
                for (int64_t t = 0; t < p->k; t++) acc += cpu_bf16_to_f32(x[t]) * cpu_bf16_to_f32(y[t]);
            } else {
                const uint8_t* x = (const uint8_t*)a_row(p, i);
                const uint8_t* y = (const uint8_t*)b_row(p, j);
                const float* bs = b_scale_row(p, j);
                for (int64_t kb = 0; kb < p->k / 128; kb++) {
                    float part = 0.0f;
                    for (int64_t t = kb * 128; t < kb * 128 + 128; t++)
                        part += cpu_e4m3_to_f32(x[t]) * cpu_e4m3_to_f32(y[t]);
                    acc += part * p->a_scale[i * p->a_rs + kb * p->a_cs] * bs[kb];
                }
            }
            cpu_gemm_store_d(p, i, j, acc);
        }
}

/* ---------------- portable outer kernel: MR 8 x NR 4 on 128-bit vectors ---------------- */

typedef float v4f __attribute__((vector_size(16)));

static void port_kernel_8x4(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int first) {
    v4f c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
    const float* b0 = b;
    const float* b1 = b + CPU_GEMM_LDB256;
    const float* b2 = b + 2 * CPU_GEMM_LDB256;
    const float* b3 = b + 3 * CPU_GEMM_LDB256;
    for (int64_t k = 0; k < kc; k++) {
        v4f a0 = *(const v4f*)(a + 8 * k), a1 = *(const v4f*)(a + 8 * k + 4);
        float x0 = b0[k], x1 = b1[k], x2 = b2[k], x3 = b3[k];
        c00 += a0 * x0;
        c01 += a1 * x0;
        c10 += a0 * x1;
        c11 += a1 * x1;
        c20 += a0 * x2;
        c21 += a1 * x2;
        c30 += a0 * x3;
        c31 += a1 * x3;
    }
    v4f* r0 = (v4f*)c;
    v4f* r1 = (v4f*)(c + ldc);
    v4f* r2 = (v4f*)(c + 2 * ldc);
    v4f* r3 = (v4f*)(c + 3 * ldc);
    if (!first) {
        c00 += r0[0], c01 += r0[1], c10 += r1[0], c11 += r1[1];
        c20 += r2[0], c21 += r2[1], c30 += r3[0], c31 += r3[1];
    }
    r0[0] = c00, r0[1] = c01, r1[0] = c10, r1[1] = c11;
    r2[0] = c20, r2[1] = c21, r3[0] = c30, r3[1] = c31;
}

/* ---------------- outer path ---------------- */

typedef struct {
    int mr, nr;
    int64_t kc, ldb;
    cpu_gemm_kernel_fn kern;
} outer_cfg;

static outer_cfg pick_outer(int simd, int64_t m) {
    outer_cfg c;
    if (simd == SIMD_AVX512) {
        if (m <= 16) c = (outer_cfg){16, 24, 128, CPU_GEMM_LDB128, cpu_avx512_gemm_kernel_16x24};
        else c = (outer_cfg){32, 12, 256, CPU_GEMM_LDB256, cpu_avx512_gemm_kernel_32x12};
    } else if (simd == SIMD_AVX2) {
        c = (outer_cfg){16, 6, 256, CPU_GEMM_LDB256, cpu_avx2_gemm_kernel_16x6};
    } else {
        c = (outer_cfg){8, 4, 256, CPU_GEMM_LDB256, port_kernel_8x4};
    }
    return c;
}

typedef struct {
    const gemm_prob* p;
    outer_cfg cfg;
    float* apack;      /* [panels][k][mr] */
    int64_t mc;        /* rows per task (multiple of mr) */
    int64_t tpt;       /* NR tiles per task */
    int64_t ntj;       /* NR tiles in n */
    int64_t njc;       /* column blocks */
    int jt_outer;      /* loop order: B panels outside K blocks (few rows of A) */
    int failed;        /* an allocation failed somewhere (the work was done directly) */
} outer_job;

/* A panels [begin, end): rows panel*mr .. +mr, k-major, rows past m zero */
static void pack_a_task(void* vp, int64_t begin, int64_t end) {
    outer_job* J = (outer_job*)vp;
    const gemm_prob* p = J->p;
    int64_t mr = J->cfg.mr, k = p->k;
    float* row = (float*)cpu_gemm_alloc64((size_t)k * sizeof(float));
    if (!row) {
        J->failed = 1; /* the caller falls back to the direct loop */
        return;
    }
    for (int64_t pn = begin; pn < end; pn++) {
        float* pan = J->apack + pn * k * mr;
        for (int64_t r = 0; r < mr; r++) {
            int64_t i = pn * mr + r;
            if (i >= p->m) {
                for (int64_t t = 0; t < k; t++) pan[t * mr + r] = 0.0f;
                continue;
            }
            unpack_row(p, a_kind(p), row, a_row(p, i), 0, k, p->a_scale ? p->a_scale + i * p->a_rs : NULL, p->a_cs);
            for (int64_t t = 0; t < k; t++) pan[t * mr + r] = row[t];
        }
    }
    cpu_host_free(row);
}

/* bbuf[r][0..kc) = B row j + r, elements [pc, pc + kc), dequantized (rows past n: zero). Then
 * prefetches rows pf_j .. pf_j + nr at elements [pf_pc, pf_pc + kc) (none when either is < 0). */
static void unpack_panel(const gemm_prob* p, const outer_cfg* cf, float* bbuf, int64_t j, int64_t pc, int64_t kc,
                         int64_t pf_pc, int64_t pf_j) {
    int64_t nr = cf->nr;
    size_t es = kind_size(b_kind(p));
    for (int64_t r = 0; r < nr; r++) {
        float* y = bbuf + r * cf->ldb;
        if (j + r < p->n) {
            const float* bs = b_scale_row(p, j + r);
            unpack_row(p, b_kind(p), y, b_row(p, j + r), pc, kc, bs ? bs + pc / 128 : NULL, 1);
        } else {
            memset(y, 0, (size_t)kc * sizeof(float));
        }
    }
    if (pf_pc < 0 || pf_j < 0) return;
    int64_t pk = p->k - pf_pc < kc ? p->k - pf_pc : kc;
    for (int64_t r = 0; r < nr && pf_j + r < p->n; r++) {
        const char* x = (const char*)b_row(p, pf_j + r) + (size_t)pf_pc * es;
        for (size_t o = 0; o < (size_t)pk * es; o += 64) __builtin_prefetch(x + o, 0, 3);
    }
}

static void outer_task(void* vp, int64_t begin, int64_t end) {
    outer_job* J = (outer_job*)vp;
    const gemm_prob* p = J->p;
    const outer_cfg* cf = &J->cfg;
    int64_t mr = cf->mr, nr = cf->nr, k = p->k;
    int64_t mpad = (p->m + mr - 1) / mr * mr;
    float* scratch = (float*)cpu_gemm_alloc64((size_t)(J->mc * J->tpt * nr) * sizeof(float));
    float* bbuf = (float*)cpu_gemm_alloc64((size_t)(nr * cf->ldb) * sizeof(float));
    for (int64_t t = begin; t < end; t++) {
        int64_t ic = t / J->njc, jc = t % J->njc;
        int64_t i0 = ic * J->mc, mc = mpad - i0 < J->mc ? mpad - i0 : J->mc;
        int64_t jt0 = jc * J->tpt, jt1 = jt0 + J->tpt < J->ntj ? jt0 + J->tpt : J->ntj;
        int64_t ie = i0 + mc < p->m ? i0 + mc : p->m;
        int64_t je = jt1 * nr < p->n ? jt1 * nr : p->n;
        if (!scratch || !bbuf) {
            direct_block(p, i0, ie, jt0 * nr, je);
            continue;
        }
        int64_t ldc = mc;
        if (J->jt_outer) {
            /* few rows: walk each NR-row panel of B along all of K (long sequential streams,
             * the C tile stays in L1; A, a few hundred KiB, comes from L2) */
            for (int64_t jt = jt0; jt < jt1; jt++)
                for (int64_t pc = 0; pc < k; pc += cf->kc) {
                    int64_t kc = k - pc < cf->kc ? k - pc : cf->kc;
                    unpack_panel(p, cf, bbuf, jt * nr, pc, kc, pc + 4 * cf->kc < k ? pc + 4 * cf->kc : -1, jt * nr);
                    float* ct = scratch + (jt - jt0) * nr * ldc;
                    const float* ap = J->apack + (i0 / mr) * k * mr + pc * mr;
                    for (int64_t ir = 0; ir < mc; ir += mr) cf->kern(kc, ap + ir * k, bbuf, ct + ir, ldc, pc == 0);
                }
        } else {
            for (int64_t pc = 0; pc < k; pc += cf->kc) {
                int64_t kc = k - pc < cf->kc ? k - pc : cf->kc;
                for (int64_t jt = jt0; jt < jt1; jt++) {
                    /* prefetch the next panel's rows of this K block while this one computes */
                    unpack_panel(p, cf, bbuf, jt * nr, pc, kc, pc, jt + 1 < jt1 ? (jt + 1) * nr : -1);
                    float* ct = scratch + (jt - jt0) * nr * ldc;
                    const float* ap = J->apack + (i0 / mr) * k * mr + pc * mr;
                    for (int64_t ir = 0; ir < mc; ir += mr) cf->kern(kc, ap + ir * k, bbuf, ct + ir, ldc, pc == 0);
                }
            }
        }
        for (int64_t i = i0; i < ie; i++) {
            const float* s = scratch + (i - i0);
            for (int64_t j = jt0 * nr; j < je; j++) cpu_gemm_store_d(p, i, j, s[(j - jt0 * nr) * ldc]);
        }
    }
    cpu_host_free(bbuf);
    cpu_host_free(scratch);
}

static void outer_run(const gemm_prob* p) {
    outer_job J;
    memset(&J, 0, sizeof J);
    J.p = p;
    J.cfg = pick_outer(p->simd, p->m);
    int64_t mr = J.cfg.mr, nr = J.cfg.nr;
    int64_t panels = (p->m + mr - 1) / mr, mpad = panels * mr;
    int threads = p->ctx->num_threads > 0 ? p->ctx->num_threads : 1;
    J.apack = (float*)cpu_gemm_alloc64((size_t)(panels * p->k * mr) * sizeof(float));
    if (!J.apack) {
        direct_block(p, 0, p->m, 0, p->n);
        return;
    }
    cpu_parallel_for(p->ctx, panels, 1, pack_a_task, &J);
    if (J.failed) {
        cpu_host_free(J.apack);
        direct_block(p, 0, p->m, 0, p->n);
        return;
    }
    /* blocks: MC <= 512 rows, NC <= ~512 columns, about 4 tasks per thread */
    J.mc = mpad <= 512 ? mpad : 256 / mr * mr;
    int64_t nic = (mpad + J.mc - 1) / J.mc;
    J.ntj = (p->n + nr - 1) / nr;
    int64_t want = 4 * (int64_t)threads;
    int64_t njc_want = (want + nic - 1) / nic;
    J.tpt = (J.ntj + njc_want - 1) / njc_want;
    int64_t tmax = 512 / nr;
    if (J.tpt > tmax) J.tpt = tmax;
    if (J.tpt < 1) J.tpt = 1;
    J.njc = (J.ntj + J.tpt - 1) / J.tpt;
    J.jt_outer = mpad <= 32;
    cpu_parallel_for(p->ctx, nic * J.njc, 1, outer_task, &J);
    cpu_host_free(J.apack);
}

/* ---------------- dot path (fp8, M <= 8, SIMD) ---------------- */

typedef struct {
    const gemm_prob* p;
    float* adot; /* [m][k] dequantized, scaled A */
    float* out;  /* [m][n] accumulators */
    int64_t kch; /* K chunk (multiple of 128) */
} dot_job;

/* exact recomputation of a tile over K blocks [kb0, kb0 + nkb) (a B byte was NaN) */
static void dot_tile_exact(const dot_job* D, int64_t j, int nj, int64_t kb0, int64_t nkb, int accumulate) {
    const gemm_prob* p = D->p;
    for (int64_t i = 0; i < p->m; i++)
        for (int jj = 0; jj < nj; jj++) {
            const uint8_t* y = (const uint8_t*)b_row(p, j + jj);
            const float* bs = b_scale_row(p, j + jj);
            const float* x = D->adot + i * p->k;
            float acc = 0.0f;
            for (int64_t kb = kb0; kb < kb0 + nkb; kb++)
                for (int64_t t = kb * 128; t < kb * 128 + 128; t++)
                    acc += x[t] * (cpu_e4m3_to_f32(y[t]) * bs[kb]);
            float* o = D->out + i * p->n + j + jj;
            *o = accumulate ? *o + acc : acc;
        }
}

static void dot_task(void* vp, int64_t begin, int64_t end) {
    const dot_job* D = (const dot_job*)vp;
    const gemm_prob* p = D->p;
    int avx512 = p->simd == SIMD_AVX512;
    int mi = (int)p->m;
    int njmax = cpu_gemm_dot_nj(avx512, mi);
    int64_t j0 = begin * 16, j1 = end * 16 < p->n ? end * 16 : p->n;
    int64_t k = p->k, kbs = k / 128;
    for (int64_t pc = 0; pc < k; pc += D->kch) {
        int64_t kc = k - pc < D->kch ? k - pc : D->kch;
        int64_t nkb = kc / 128;
        for (int64_t j = j0; j < j1; j += njmax) {
            int nj = (int)(j1 - j < njmax ? j1 - j : njmax);
            const uint8_t* b = (const uint8_t*)b_row(p, j) + pc;
            const float* bs = p->b_scale + pc / 128;
            int nan;
            if (avx512)
                nan = cpu_avx512_gemm_dot(mi, nj, nkb, D->adot + pc, k, b, k, bs, kbs, j, D->out + j, p->n, pc > 0);
            else
                nan = cpu_avx2_gemm_dot(mi, nj, nkb, D->adot + pc, k, b, k, bs, kbs, j, D->out + j, p->n, pc > 0);
            if (nan) dot_tile_exact(D, j, nj, pc / 128, nkb, pc > 0);
        }
    }
    for (int64_t i = 0; i < p->m; i++)
        for (int64_t j = j0; j < j1; j++) cpu_gemm_store_d(p, i, j, D->out[i * p->n + j]);
}

/* the dot kernels need s * 2^8 exact (no overflow): |s| < 2^100 or s not finite */
static int b_scales_dot_ok(const gemm_prob* p) {
    int64_t cnt = (p->n + 127) / 128 * (p->k / 128);
    for (int64_t t = 0; t < cnt; t++) {
        float s = p->b_scale[t];
        if (isfinite(s) && !(fabsf(s) < 0x1p100f)) return 0;
    }
    return 1;
}

static int dot_run(const gemm_prob* p) {
    dot_job D;
    D.p = p;
    D.adot = (float*)cpu_gemm_alloc64((size_t)(p->m * p->k) * sizeof(float));
    D.out = (float*)cpu_gemm_alloc64((size_t)(p->m * p->n) * sizeof(float));
    if (!D.adot || !D.out) {
        cpu_host_free(D.adot);
        cpu_host_free(D.out);
        return 0;
    }
    for (int64_t i = 0; i < p->m; i++)
        unpack_row(p, ROW_E4M3, D.adot + i * p->k, a_row(p, i), 0, p->k, p->a_scale + i * p->a_rs, p->a_cs);
    /* keep the A chunk (m rows x kch f32) within about 32 KiB of L1 */
    int64_t kch = 8192 / p->m / 128 * 128;
    if (kch < 128) kch = 128;
    D.kch = kch;
    int64_t units = (p->n + 15) / 16; /* 16 rows of B */
    cpu_parallel_for(p->ctx, units, 1, dot_task, &D);
    cpu_host_free(D.adot);
    cpu_host_free(D.out);
    return 1;
}

/* ---------------- f32 dot path (gemm.f32, M <= 8, SIMD) ---------------- */

#define F32_DOT_UNIT 48 /* rows of B per task unit: a multiple of every cpu_gemm_f32_nj */

/* rows [begin, end) * F32_DOT_UNIT of B against all of A (f32, row stride k) */
static void f32_dot_task(void* vp, int64_t begin, int64_t end) {
    const gemm_prob* p = (const gemm_prob*)vp;
    int avx512 = p->simd == SIMD_AVX512, mi = (int)p->m;
    int njmax = cpu_gemm_f32_nj(avx512, mi);
    int64_t j0 = begin * F32_DOT_UNIT, j1 = end * F32_DOT_UNIT < p->n ? end * F32_DOT_UNIT : p->n;
    size_t es = p->b_bf16 ? 2 : 4;
    float out[CPU_GEMM_DOT_MAX_M * 8];
    for (int64_t j = j0; j < j1; j += njmax) {
        int nj = (int)(j1 - j < njmax ? j1 - j : njmax);
        const void* b = (const char*)p->b + (size_t)(j * p->k) * es;
        if (avx512)
            cpu_avx512_gemm_f32_dot(mi, nj, p->k, (const float*)p->a, p->k, b, p->b_bf16, p->k, out, 8);
        else
            cpu_avx2_gemm_f32_dot(mi, nj, p->k, (const float*)p->a, p->k, b, p->b_bf16, p->k, out, 8);
        /* through a buffer: c may be d itself */
        for (int i = 0; i < mi; i++)
            for (int jj = 0; jj < nj; jj++) cpu_gemm_store_d(p, i, j + jj, out[i * 8 + jj]);
    }
}

static void f32_dot_run(const gemm_prob* p) {
    cpu_parallel_for(p->ctx, (p->n + F32_DOT_UNIT - 1) / F32_DOT_UNIT, 1, f32_dot_task, (void*)p);
}

/* ---------------- dispatch ---------------- */

/* On AMX machines fp8 problems with M <= 2 take the AVX512-BF16 decode path (cpu_amx_gemm_dot);
 * the tiles (cpu_amx_gemm.c) take the other fp8 problems, and bf16 ones when
 * no value could meet the tile unit's denormal flushing or overflow (nonzero magnitudes in
 * [2^-50, 2^50]: a is scanned here, b by the AMX path as it reads it, which gives up - returns 0 -
 * on an outlier). */
static int amx_suits(const gemm_prob* p) {
    if (!p->bf16) return 1;
    return cpu_amx_bf16_in_range((const uint16_t*)p->a, p->m * p->k); /* b: checked as it is read */
}

static void run(const gemm_prob* p) {
    if (p->m <= 0 || p->n <= 0) return;
    if (p->k == 0) { /* empty sums: d = 0 (+ c) */
        for (int64_t i = 0; i < p->m; i++)
            for (int64_t j = 0; j < p->n; j++) cpu_gemm_store_d(p, i, j, 0.0f);
        return;
    }
    if (p->f32) { /* never the AMX tiles (bf16 operands) */
        if (p->simd != SIMD_PORTABLE && p->m <= CPU_GEMM_DOT_MAX_M) f32_dot_run(p);
        else outer_run(p);
        return;
    }
    if (p->ctx->amx && !p->bf16 && p->m <= 2 && cpu_amx_gemm_dot(p)) return;
    if (p->ctx->amx && amx_suits(p) && cpu_amx_gemm(p)) return;
    if (!p->bf16 && p->simd != SIMD_PORTABLE && p->m <= CPU_GEMM_DOT_MAX_M && b_scales_dot_ok(p) && dot_run(p))
        return;
    outer_run(p);
}

static void prob_init(gemm_prob* p, dsk4j_context* ctx, const gemm_args* g, int bf16, const float* table) {
    p->ctx = ctx;
    p->simd = ctx->simd;
    p->bf16 = bf16;
    p->f32 = 0;
    p->b_bf16 = 0;
    p->d = g->d;
    p->d_dtype = g->d_dtype;
    p->a = g->a;
    p->a_scale = g->a_scale;
    p->a_rs = g->a_scale_rs;
    p->a_cs = g->a_scale_cs;
    p->b = g->b;
    p->b_scale = g->b_scale;
    p->c = g->c;
    p->m = g->m;
    p->n = g->n;
    p->k = g->k;
    p->e4m3_table = table;
}

static void e4m3_table(float* t) {
    for (int v = 0; v < 256; v++) t[v] = cpu_e4m3_to_f32((uint8_t)v);
}

void cpu_gemm_fp8_block(dsk4j_context* ctx, const gemm_args* g) {
    float table[256];
    e4m3_table(table);
    gemm_prob p;
    prob_init(&p, ctx, g, 0, table);
    run(&p);
}

void cpu_gemm_bf16(dsk4j_context* ctx, const gemm_args* g) {
    gemm_prob p;
    prob_init(&p, ctx, g, 1, NULL);
    run(&p);
}

/* gemm.f32: a f32 [m,k], b f32|bf16 [n,k] (g->b_dtype), d f32 [m,n] (+ c) */
void cpu_gemm_f32(dsk4j_context* ctx, const gemm_args* g) {
    gemm_prob p;
    prob_init(&p, ctx, g, 0, NULL);
    p.f32 = 1;
    p.b_bf16 = g->b_dtype == DSK4J_DTYPE_BF16;
    run(&p);
}

/* Each non-empty group is one problem on its rows of a / a_scale / d and its expert's b. */
void cpu_gemm_fp8_grouped(dsk4j_context* ctx, const gemm_grouped_args* g) {
    float table[256];
    e4m3_table(table);
    const gemm_args* bg = &g->base;
    int64_t n = bg->n, k = bg->k;
    size_t dsz = bg->d_dtype == DSK4J_DTYPE_F32 ? 4 : 2;
    int64_t bs_per = (n + 127) / 128 * (k / 128);
    for (int64_t e = 0; e < g->groups; e++) {
        int64_t row0, rows;
        if (g->offsets) {
            row0 = g->offsets[e];
            rows = (int64_t)g->offsets[e + 1] - row0;
        } else {
            row0 = e * g->m_max;
            rows = g->masked_m[e];
        }
        if (rows <= 0) continue;
        gemm_prob p;
        prob_init(&p, ctx, bg, 0, table);
        p.d = (char*)bg->d + (size_t)(row0 * n) * dsz;
        /* with k == 0 the a/b operands and their scales are empty and may be NULL: no offset from NULL */
        p.a = bg->a ? (const uint8_t*)bg->a + row0 * k : NULL;
        p.a_scale = bg->a_scale ? bg->a_scale + row0 * bg->a_scale_rs : NULL;
        p.b = bg->b ? (const uint8_t*)bg->b + e * (n * k) : NULL;
        p.b_scale = bg->b_scale ? bg->b_scale + e * bs_per : NULL;
        p.c = NULL;
        p.m = rows;
        run(&p);
    }
}
