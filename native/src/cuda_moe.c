/* cuda_moe.c - the moe ops on the CUDA backend (DESIGN.md 4.5; dsk4j.h moe.*; internal.h cuda_moe_*):
 * picks the reference (kernels-ptx/src/moe_reference.cu) or fast kernels (kernels-ptx/src/moe.cu)
 * per DSK4J_CUDA_REFERENCE_KERNELS, sizes the launches and queues them through cuda_backend.c
 * (cuda_moe_launch). moe.forward is composed here from those kernels, fp8.act_quant / fp8.cast and
 * the gemm ops (cuda_gemm.c), with one device workspace: the context's scratch
 * (cuda_mla_scratch_acquire, grown on demand and kept until the context closes).
 * Arguments arrive validated (api_moe.c): every pointer a device address inside a live allocation
 * of ctx, sizes consistent. The i32 index arrays (indices, src_of, row_of, counts) are device data
 * the host cannot read: the kernels ignore out-of-range entries (moe_reference.cu). */
#include <stdint.h>
#include <stdlib.h>

#include "cuda_driver.h"
#include "cuda_launch.h"
#include "internal.h"

/* Must match kernels-ptx/src/moe_reference.cu (DSK4J_MOE_REF_THREADS) and moe.cu
 * (DSK4J_MOE_LANES_THREADS, _TILE_THREADS, _ROUTE_THREADS, _ROUTE_MAX, _DISPATCH_THREADS, _THREADS). */
#define REF_THREADS 128
#define LANES_THREADS 128
#define TILE_THREADS 256
#define TILE_T 16
#define TILE_E 16
#define ROUTE_THREADS 128
#define ROUTE_MAX 1024
#define DISPATCH_THREADS 1024
#define DISPATCH_WARPS (DISPATCH_THREADS / 32)
#define THREADS 256
/* Fast dispatch keeps i32 [32, experts] counters in the workspace; above this many experts the
 * single-thread reference dispatch (i32 [experts]) runs instead. */
#define DISPATCH_FAST_MAX_EXPERTS 65536
/* Tokens up to which the logits run 16 threads per (token, expert) rather than 16 x 16 tiles. */
#define LANES_MAX_TOKENS 8

enum {
    K_REF_GATE,
    K_REF_DISPATCH,
    K_REF_GATHER,
    K_REF_COMBINE,
    K_REF_SILU,
    K_REF_BIAS,
    K_LOGITS_LANES,
    K_LOGITS_TILED,
    K_ROUTE,
    K_DISPATCH,
    K_GATHER,
    K_COMBINE,
    K_SILU,
    K_BIAS,
    K_SILU_F32,
    K_COUNT
};
_Static_assert(K_COUNT == CUDA_MOE_KERNELS, "cuda_driver.h CUDA_MOE_KERNELS");

const char* const cuda_moe_kernel_names[CUDA_MOE_KERNELS] = {
    "dsk4j_ref_moe_gate",     "dsk4j_ref_moe_dispatch", "dsk4j_ref_moe_gather",   "dsk4j_ref_moe_combine",
    "dsk4j_ref_moe_silu_quant", "dsk4j_ref_moe_bias_update", "dsk4j_moe_logits_lanes", "dsk4j_moe_logits_tiled",
    "dsk4j_moe_route",        "dsk4j_moe_dispatch",     "dsk4j_moe_gather",       "dsk4j_moe_combine",
    "dsk4j_moe_silu_quant",   "dsk4j_moe_bias_update",  "dsk4j_moe_silu_mul_f32"};

/* ---------------- moe.gate ---------------- */

/* The router into a->indices / a->weights, the logits into lg (device, f32 [tokens, experts]). */
static int gate_into(dsk4j_context* ctx, const moe_gate_args* a, float* lg) {
    int reference, sm;
    int rc = launch_info(ctx, &reference, &sm);
    if (rc != DSK4J_OK || a->tokens <= 0) return rc;
    uint64_t idx = dptr(a->indices), w = dptr(a->weights), l = dptr(lg), x = dptr(a->x), wg = dptr(a->wg),
             bias = dptr(a->bias);
    int xd = a->x_dtype, wd = a->wg_dtype, sf = a->score_func, norm = a->norm_topk_prob != 0;
    long long T = a->tokens, H = a->hidden, E = a->experts, K = a->top_k, G = a->n_group, TG = a->topk_group;
    float scale = a->scale;
    /* b f32[E], gscore f32[G], excl u8[E], gkeep u8[G] (E, G <= MOE_MAX_EXPERTS: <= 40 KiB) */
    const unsigned smem = (unsigned)((4 * (E + G) + E + G + 15) / 16 * 16);
    const unsigned route_grid = (unsigned)(T < (int64_t)sm * BLOCKS_PER_SM ? T : (int64_t)sm * BLOCKS_PER_SM);
    if (reference) {
        int ready = 0;
        void* p[] = {&idx, &w, &l, &x, &xd, &wg, &wd, &bias, &T, &H, &E, &K, &G, &TG, &sf, &norm, &scale, &ready};
        return cuda_moe_launch(ctx, K_REF_GATE, route_grid, REF_THREADS, smem, p);
    }
    void* lp[] = {&l, &x, &xd, &wg, &wd, &T, &H, &E};
    if (T <= LANES_MAX_TOKENS)
        rc = cuda_moe_launch(ctx, K_LOGITS_LANES, grid_for(sm, T * E * 16, LANES_THREADS), LANES_THREADS, 0, lp);
    else
        rc = cuda_moe_launch(ctx, K_LOGITS_TILED, grid_for(sm, ((T + TILE_T - 1) / TILE_T) * ((E + TILE_E - 1) / TILE_E), 1),
                             TILE_THREADS, 0, lp);
    if (rc != DSK4J_OK) return rc;
    if (E <= ROUTE_MAX) {
        void* p[] = {&idx, &w, &l, &bias, &T, &E, &K, &G, &TG, &sf, &norm, &scale};
        return cuda_moe_launch(ctx, K_ROUTE, route_grid, ROUTE_THREADS, 0, p);
    }
    int ready = 1; /* more experts than the fast router's shared arrays: the reference routing */
    void* p[] = {&idx, &w, &l, &x, &xd, &wg, &wd, &bias, &T, &H, &E, &K, &G, &TG, &sf, &norm, &scale, &ready};
    return cuda_moe_launch(ctx, K_REF_GATE, route_grid, REF_THREADS, smem, p);
}

int cuda_moe_gate(dsk4j_context* ctx, const moe_gate_args* a) {
    if (a->tokens <= 0) return DSK4J_OK;
    if (a->logits) return gate_into(ctx, a, a->logits);
    void* ws = NULL; /* the logits have to live somewhere: the context's scratch */
    int rc = cuda_mla_scratch_acquire(ctx, a->tokens * a->experts * 4, &ws);
    if (rc != DSK4J_OK) return rc;
    rc = gate_into(ctx, a, (float*)ws);
    cuda_mla_scratch_release(ctx);
    return rc;
}

/* ---------------- moe.dispatch ---------------- */

/* i32 workspace elements moe.dispatch needs for `experts`. */
static int64_t dispatch_work(int reference, int64_t experts) {
    return reference || experts > DISPATCH_FAST_MAX_EXPERTS ? experts : DISPATCH_WARPS * experts;
}

static int dispatch_into(dsk4j_context* ctx, int32_t* counts, int32_t* offsets, int32_t* row_of, int32_t* src_of,
                         int64_t rows_cap, const int32_t* indices, int64_t pairs, int64_t experts, int32_t align,
                         int64_t m_max, int32_t* work) {
    int reference, sm;
    int rc = launch_info(ctx, &reference, &sm);
    if (rc != DSK4J_OK) return rc;
    (void)sm;
    uint64_t c = dptr(counts), o = dptr(offsets), ro = dptr(row_of), so = dptr(src_of), ix = dptr(indices),
             wk = dptr(work);
    long long cap = rows_cap, P = pairs, E = experts, mm = m_max;
    int al = align;
    void* p[] = {&c, &o, &ro, &so, &cap, &ix, &P, &E, &al, &mm, &wk};
    if (reference || experts > DISPATCH_FAST_MAX_EXPERTS) return cuda_moe_launch(ctx, K_REF_DISPATCH, 1, 1, 0, p);
    return cuda_moe_launch(ctx, K_DISPATCH, 1, DISPATCH_THREADS, 0, p);
}

int cuda_moe_dispatch(dsk4j_context* ctx, int32_t* counts, int32_t* offsets, int32_t* row_of, int32_t* src_of,
                      int64_t rows_cap, const int32_t* indices, int64_t pairs, int64_t experts, int32_t align,
                      int64_t m_max) {
    int reference, sm;
    int rc = launch_info(ctx, &reference, &sm);
    if (rc != DSK4J_OK) return rc;
    void* ws = NULL;
    rc = cuda_mla_scratch_acquire(ctx, dispatch_work(reference, experts) * 4, &ws);
    if (rc != DSK4J_OK) return rc;
    rc = dispatch_into(ctx, counts, offsets, row_of, src_of, rows_cap, indices, pairs, experts, align, m_max,
                       (int32_t*)ws);
    cuda_mla_scratch_release(ctx);
    return rc;
}

/* ---------------- moe.gather / moe.combine ---------------- */

int cuda_moe_gather(dsk4j_context* ctx, void* xp, const void* x, size_t elem, const int32_t* src_of, int64_t rows,
                    int64_t tokens, int64_t top_k, int64_t hidden) {
    int reference, sm;
    int rc = launch_info(ctx, &reference, &sm);
    if (rc != DSK4J_OK) return rc;
    const int64_t row_bytes = (int64_t)elem * hidden;
    if (rows <= 0 || row_bytes <= 0) return DSK4J_OK;
    uint64_t d = dptr(xp), s = dptr(x), so = dptr(src_of);
    long long rb = row_bytes, R = rows, T = tokens, K = top_k;
    if (reference) {
        void* p[] = {&d, &s, &rb, &so, &R, &T, &K};
        return cuda_moe_launch(ctx, K_REF_GATHER, grid_for(sm, rows * row_bytes, THREADS), THREADS, 0, p);
    }
    int vec = row_bytes % 16 == 0 && ((d | s) & 15u) == 0;
    void* p[] = {&d, &s, &rb, &so, &R, &T, &K, &vec};
    return cuda_moe_launch(ctx, K_GATHER, grid_for(sm, rows, 1), THREADS, 0, p);
}

int cuda_moe_combine(dsk4j_context* ctx, void* y, int32_t y_dtype, const void* e, int32_t e_dtype,
                     const float* weights, const int32_t* row_of, const void* shared, int32_t shared_dtype,
                     int64_t tokens, int64_t top_k, int64_t rows, int64_t hidden) {
    int reference, sm;
    int rc = launch_info(ctx, &reference, &sm);
    if (rc != DSK4J_OK) return rc;
    if (tokens <= 0 || hidden <= 0) return DSK4J_OK;
    uint64_t py = dptr(y), pe = dptr(e), pw = dptr(weights), pr = dptr(row_of), ps = dptr(shared);
    int yd = y_dtype, ed = e_dtype, sd = shared_dtype;
    long long T = tokens, K = top_k, R = rows, H = hidden;
    if (reference) {
        void* p[] = {&py, &yd, &pe, &ed, &pw, &pr, &ps, &sd, &T, &K, &R, &H};
        return cuda_moe_launch(ctx, K_REF_COMBINE, grid_for(sm, tokens * hidden, THREADS), THREADS, 0, p);
    }
    int vec = hidden % 4 == 0 && ((py | pe | ps) & 15u) == 0;
    void* p[] = {&py, &yd, &pe, &ed, &pw, &pr, &ps, &sd, &T, &K, &R, &H, &vec};
    return cuda_moe_launch(ctx, K_COMBINE, grid_for(sm, vec ? tokens * (hidden / 4) : tokens * hidden, THREADS),
                           THREADS, 0, p);
}

/* ---------------- moe.silu_quant / moe.bias_update ---------------- */

int cuda_moe_silu_quant(dsk4j_context* ctx, const float* h, int64_t rows, int64_t inter, uint8_t* q, float* qs,
                        uint16_t* b) {
    int reference, sm;
    int rc = launch_info(ctx, &reference, &sm);
    if (rc != DSK4J_OK) return rc;
    if (rows <= 0 || inter <= 0) return DSK4J_OK;
    uint64_t pq = dptr(q), ps = dptr(qs), pb = dptr(b), ph = dptr(h);
    long long R = rows, I = inter;
    /* e4m3: one work item per (row, 128 columns); bf16: per element */
    const int64_t items = b ? rows * inter : rows * (inter / 128);
    if (reference) {
        void* p[] = {&pq, &ps, &pb, &ph, &R, &I};
        return cuda_moe_launch(ctx, K_REF_SILU, grid_for(sm, items, REF_THREADS), REF_THREADS, 0, p);
    }
    int vec = (ph & 15u) == 0 && (pq & 3u) == 0;
    void* p[] = {&pq, &ps, &pb, &ph, &R, &I, &vec};
    return cuda_moe_launch(ctx, K_SILU, grid_for(sm, items, b ? THREADS : THREADS / 32), THREADS, 0, p);
}

/* a [rows, inter] f32 = silu(g)*u of h [rows, 2*inter], unrounded (moe.forward with f32 weights):
 * the element-wise dsk4j_moe_silu_mul_f32 in both kernel modes. */
static int silu_mul_f32(dsk4j_context* ctx, const float* h, int64_t rows, int64_t inter, float* out) {
    int reference, sm;
    int rc = launch_info(ctx, &reference, &sm);
    if (rc != DSK4J_OK) return rc;
    if (rows <= 0 || inter <= 0) return DSK4J_OK;
    uint64_t pa = dptr(out), ph = dptr(h);
    long long R = rows, I = inter;
    void* p[] = {&pa, &ph, &R, &I};
    return cuda_moe_launch(ctx, K_SILU_F32, grid_for(sm, rows * inter, THREADS), THREADS, 0, p);
}

int cuda_moe_bias_update(dsk4j_context* ctx, float* bias, const int32_t* counts, int64_t experts, float gamma) {
    int reference, sm;
    int rc = launch_info(ctx, &reference, &sm);
    if (rc != DSK4J_OK) return rc;
    if (experts <= 0) return DSK4J_OK;
    uint64_t pb = dptr(bias), pc = dptr(counts);
    long long E = experts;
    void* p[] = {&pb, &pc, &E, &gamma};
    if (reference) return cuda_moe_launch(ctx, K_REF_BIAS, 1, 1, 0, p);
    return cuda_moe_launch(ctx, K_BIAS, 1, THREADS, 0, p);
}

/* ---------------- moe.forward ---------------- */

/* d [rows, n] f32 = act [rows, k] · w[n, k]ᵀ: fp8 (gemm.fp8_block, act_s [rows, k/128]), bf16
 * (gemm.bf16, act bf16) or f32 (gemm.f32, act and w f32); act_s NULL unless fp8. */
static int expert_gemm(dsk4j_context* ctx, int32_t w_dtype, float* d, const void* act, const float* act_s,
                       const void* w, const float* ws, int64_t rows, int64_t n, int64_t k) {
    if (w_dtype == DSK4J_DTYPE_F32) {
        gemm_args g = {d, DSK4J_DTYPE_F32, act, NULL, 0, 0, w, NULL, NULL, rows, n, k, DSK4J_DTYPE_F32};
        return cuda_gemm_f32(ctx, &g);
    }
    const int fp8 = w_dtype == DSK4J_DTYPE_E4M3;
    gemm_args g = {d, DSK4J_DTYPE_F32, act, act_s, fp8 ? k / 128 : 0, 1, w, ws, NULL, rows, n, k, w_dtype};
    return fp8 ? cuda_gemm_fp8_block(ctx, &g) : cuda_gemm_bf16(ctx, &g);
}

/* The routed experts' GEMM over the rows in expert order: d [m, n] = a [m, k] · w[e]ᵀ per expert.
 * fp8: one grouped-contiguous launch with the device offsets; bf16 / f32: one gemm.bf16 / gemm.f32
 * per expert with rows, from the offsets copied to the host (host_offs, experts + 1). */
static int routed_gemm(dsk4j_context* ctx, int32_t w_dtype, float* d, const void* a, const float* a_s, const void* w,
                       const float* ws, const int32_t* offs, const int32_t* host_offs, int64_t experts, int64_t m,
                       int64_t n, int64_t k) {
    if (w_dtype == DSK4J_DTYPE_E4M3) {
        gemm_grouped_args gg = {{d, DSK4J_DTYPE_F32, a, a_s, k / 128, 1, w, ws, NULL, m, n, k, w_dtype}, experts, offs,
                                NULL, 0};
        return cuda_gemm_fp8_grouped(ctx, &gg);
    }
    const size_t es = dsk4j_dtype_size(w_dtype); /* activation and weight element size: 2 or 4 */
    const size_t per = (size_t)(n * k) * es;
    for (int64_t e = 0; e < experts; e++) {
        const int64_t r0 = host_offs[e], rows = (int64_t)host_offs[e + 1] - r0;
        if (rows <= 0) continue;
        int rc = expert_gemm(ctx, w_dtype, d + r0 * n, (const char*)a + (size_t)(r0 * k) * es, NULL,
                             (const char*)w + (size_t)e * per, NULL, rows, n, k);
        if (rc != DSK4J_OK) return rc;
    }
    return DSK4J_OK;
}

/* silu(g)*u of h [rows, 2*inter] into the next GEMM's activation act: e4m3 + acts (fp8), bf16
 * (rounded) or f32 (unrounded). */
static int expert_act(dsk4j_context* ctx, int32_t w_dtype, const float* h, int64_t rows, int64_t inter, void* act,
                      float* acts) {
    if (w_dtype == DSK4J_DTYPE_F32) return silu_mul_f32(ctx, h, rows, inter, (float*)act);
    if (w_dtype == DSK4J_DTYPE_E4M3) return cuda_moe_silu_quant(ctx, h, rows, inter, (uint8_t*)act, acts, NULL);
    return cuda_moe_silu_quant(ctx, h, rows, inter, NULL, NULL, (uint16_t*)act);
}

#define WS_PARTS 18

/* a * b * c for non-negative operands, saturated at INT64_MAX (a workspace that large fails to allocate). */
static int64_t smul(int64_t a, int64_t b, int64_t c) {
    if (a == 0 || b == 0 || c == 0) return 0;
    if (a > INT64_MAX / b) return INT64_MAX;
    a *= b;
    return a > INT64_MAX / c ? INT64_MAX : a * c;
}

int cuda_moe_forward(dsk4j_context* ctx, const moe_forward_args* a) {
    int reference, sm;
    int rc = launch_info(ctx, &reference, &sm);
    if (rc != DSK4J_OK) return rc;
    const int64_t T = a->gate.tokens, H = a->gate.hidden, I = a->inter, Is = a->shared_inter, E = a->gate.experts,
                  K = a->gate.top_k, M = T * K;
    if (T <= 0) return DSK4J_OK;
    const int32_t wd = a->w_dtype;
    const int fp8 = wd == DSK4J_DTYPE_E4M3;
    const int64_t aes = (int64_t)dsk4j_dtype_size(wd); /* activation element size: e4m3 1, bf16 2, f32 4 */
    const int64_t Hs = fp8 ? H / 128 : 0, Ismax = I > Is ? I : Is;
    const int64_t Tm = T > M ? T : M;
    /* idx, wts, offs, row_of, src_of, counts, work, logits, xq, xs, aq, as, h13, act, acts, eo, sh */
    const int64_t sz[WS_PARTS] = {smul(M, 4, 1),
                                  smul(M, 4, 1),
                                  smul(E + 1, 4, 1),
                                  smul(M, 4, 1),
                                  smul(M, 4, 1),
                                  a->counts ? 0 : smul(E, 4, 1),
                                  smul(dispatch_work(reference, E), 4, 1),
                                  smul(T, E, 4),
                                  smul(T, H, aes),
                                  smul(T, Hs, 4),
                                  smul(M, H, aes),
                                  smul(M, Hs, 4),
                                  smul(Tm, 2 * Ismax, 4),
                                  smul(Tm, Ismax, aes),
                                  fp8 ? smul(Tm, Ismax / 128, 4) : 0,
                                  smul(M, H, 4),
                                  Is > 0 ? smul(T, H, 4) : 0,
                                  0};
    int64_t off[WS_PARTS], total = 0;
    for (int i = 0; i < WS_PARTS; i++) {
        off[i] = total;
        if (sz[i] > INT64_MAX / 2 - total - 256)
            return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "dsk4j_moe_forward: the device workspace would exceed 2^62 bytes");
        total += (sz[i] + 255) / 256 * 256;
    }
    int32_t* host_offs = NULL;
    if (!fp8) {
        host_offs = (int32_t*)malloc((size_t)(E + 1) * 4);
        if (!host_offs)
            return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "dsk4j_moe_forward: cannot allocate %lld host offsets",
                              (long long)(E + 1));
    }
    void* wsp = NULL;
    rc = cuda_mla_scratch_acquire(ctx, total, &wsp);
    if (rc != DSK4J_OK) {
        free(host_offs);
        return rc;
    }
    char* ws = (char*)wsp;
    int32_t* idx = (int32_t*)(ws + off[0]);
    float* wts = (float*)(ws + off[1]);
    int32_t* offs = (int32_t*)(ws + off[2]);
    int32_t* row_of = (int32_t*)(ws + off[3]);
    int32_t* src_of = (int32_t*)(ws + off[4]);
    int32_t* counts = a->counts ? a->counts : (int32_t*)(ws + off[5]);
    int32_t* work = (int32_t*)(ws + off[6]);
    float* logits = (float*)(ws + off[7]);
    void* xq = ws + off[8];
    float* xs = (float*)(ws + off[9]);
    void* aq = ws + off[10];
    float* as = (float*)(ws + off[11]);
    float* h13 = (float*)(ws + off[12]);
    void* act = ws + off[13];
    float* acts = (float*)(ws + off[14]);
    float* eo = (float*)(ws + off[15]);
    float* sh = Is > 0 ? (float*)(ws + off[16]) : NULL;

#define STEP(call)                   \
    do {                             \
        rc = (call);                 \
        if (rc != DSK4J_OK) goto out; \
    } while (0)
    /* 1. route */
    moe_gate_args g = a->gate;
    g.indices = idx;
    g.weights = wts;
    g.logits = NULL;
    STEP(gate_into(ctx, &g, logits));
    /* 2. dispatch: contiguous, no padding (the grouped GEMM takes any offsets), M rows */
    STEP(dispatch_into(ctx, counts, offs, row_of, src_of, M, idx, M, E, 1, 0, work));
    /* 3. the activations once per token (fp8: act_quant; bf16: rounded; f32: exact), then gathered
     * into expert order */
    if (fp8) {
        STEP(cuda_fp8_act_quant(ctx, (uint8_t*)xq, xs, Hs, 1, a->gate.x, a->gate.x_dtype, T, H, 128, 0));
        STEP(cuda_moe_gather(ctx, as, xs, 4, src_of, M, T, K, Hs));
    } else if (a->gate.x_dtype == wd) {
        STEP(cuda_memcpy(ctx, xq, a->gate.x, T * H * aes, DSK4J_COPY_DEVICE_TO_DEVICE));
    } else { /* f32 -> bf16 (rounded) or bf16 -> f32 (exact) */
        STEP(cuda_fp8_cast(ctx, xq, wd, a->gate.x, a->gate.x_dtype, T * H));
    }
    STEP(cuda_moe_gather(ctx, aq, xq, (size_t)aes, src_of, M, T, K, H));
    if (!fp8) /* the per-expert bf16 / f32 GEMMs need the row ranges on the host (waits for the stream) */
        STEP(cuda_memcpy(ctx, host_offs, offs, (E + 1) * 4, DSK4J_COPY_DEVICE_TO_HOST));
    /* 4. routed experts: w13, silu*u (+ quant / rounding), w2 */
    STEP(routed_gemm(ctx, wd, h13, aq, fp8 ? as : NULL, a->w13, a->w13_scale, offs, host_offs, E, M, 2 * I, H));
    STEP(expert_act(ctx, wd, h13, M, I, act, fp8 ? acts : NULL));
    STEP(routed_gemm(ctx, wd, eo, act, fp8 ? acts : NULL, a->w2, a->w2_scale, offs, host_offs, E, M, H, I));
    /* 5. shared expert on every token */
    if (sh) {
        STEP(expert_gemm(ctx, wd, h13, xq, fp8 ? xs : NULL, a->s13, a->s13_scale, T, 2 * Is, H));
        STEP(expert_act(ctx, wd, h13, T, Is, act, fp8 ? acts : NULL));
        STEP(expert_gemm(ctx, wd, sh, act, fp8 ? acts : NULL, a->s2, a->s2_scale, T, H, Is));
    }
    /* 6. combine in token order */
    STEP(cuda_moe_combine(ctx, a->y, a->y_dtype, eo, DSK4J_DTYPE_F32, wts, row_of, sh, DSK4J_DTYPE_F32, T, K, M, H));
#undef STEP
out:
    cuda_mla_scratch_release(ctx);
    free(host_offs);
    return rc;
}
