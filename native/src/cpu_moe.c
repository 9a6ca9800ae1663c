/* cpu_moe.c - moe.gate, moe.gather and moe.combine on the cpu backend (DESIGN.md 4.5; dsk4j.h has
 * the exact contract). Arguments arrive validated (api_moe.c). moe.dispatch and moe.bias_update are
 * sequential host loops in api_moe.c. The logits use the 16-lane order of dsk4j.h on every path
 * (portable here, AVX2+FMA in cpu_avx2_moe.c), so every path chooses the same experts. */
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "internal.h"

static inline float ld(const void* p, int32_t dt, int64_t i) {
    return dt == DSK4J_DTYPE_F32 ? ((const float*)p)[i] : cpu_bf16_to_f32(((const uint16_t*)p)[i]);
}

void cpu_moe_logits_portable(float* out, const void* x, int32_t x_dtype, const void* wg, int32_t wg_dtype,
                             int64_t hidden, int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; e++) {
        float acc[16] = {0};
        const int64_t base = e * hidden;
        for (int64_t j = 0; j < hidden; j++)
            acc[j & 15] = fmaf(ld(x, x_dtype, j), ld(wg, wg_dtype, base + j), acc[j & 15]);
        for (int l = 0; l < 8; l++) acc[l] += acc[l + 8];
        for (int l = 0; l < 4; l++) acc[l] += acc[l + 4];
        for (int l = 0; l < 2; l++) acc[l] += acc[l + 2];
        out[e - e0] = acc[0] + acc[1];
    }
}

/* a better than b: larger value, ties to the lower id */
static inline int better(float va, int64_t a, float vb, int64_t b) { return va > vb || (va == vb && a < b); }

typedef struct {
    const moe_gate_args* a;
    int simd;
} gate_job;

/* Scores, group selection, top-k and weights of token t from its logits lg[experts]. */
static void route_token(const moe_gate_args* a, const float* lg, int64_t t) {
    const int64_t E = a->experts, K = a->top_k, G = a->n_group, per = E / G;
    float s[MOE_MAX_EXPERTS], b[MOE_MAX_EXPERTS], gscore[MOE_MAX_EXPERTS];
    unsigned char excl[MOE_MAX_EXPERTS], gkeep[MOE_MAX_EXPERTS];
    if (a->logits) memcpy(a->logits + t * E, lg, (size_t)E * 4);
    if (a->score_func == DSK4J_MOE_SIGMOID) {
        for (int64_t e = 0; e < E; e++) s[e] = (float)(1.0 / (1.0 + exp(-(double)lg[e])));
    } else {
        float m = lg[0];
        for (int64_t e = 1; e < E; e++)
            if (lg[e] > m) m = lg[e];
        double sum = 0;
        for (int64_t e = 0; e < E; e++) sum += exp((double)lg[e] - (double)m);
        for (int64_t e = 0; e < E; e++) s[e] = (float)(exp((double)lg[e] - (double)m) / sum);
    }
    for (int64_t e = 0; e < E; e++) b[e] = a->bias ? s[e] + a->bias[e] : s[e];
    memset(excl, 0, (size_t)E);
    if (G > 1) {
        for (int64_t g = 0; g < G; g++) {
            const float* bg = b + g * per;
            int64_t i1 = 0;
            for (int64_t i = 1; i < per; i++)
                if (better(bg[i], i, bg[i1], i1)) i1 = i;
            if (a->bias) {
                int64_t i2 = -1;
                for (int64_t i = 0; i < per; i++)
                    if (i != i1 && (i2 < 0 || better(bg[i], i, bg[i2], i2))) i2 = i;
                gscore[g] = bg[i1] + bg[i2];
            } else {
                gscore[g] = bg[i1];
            }
            gkeep[g] = 0;
        }
        for (int64_t r = 0; r < a->topk_group; r++) {
            int64_t best = -1;
            for (int64_t g = 0; g < G; g++)
                if (!gkeep[g] && (best < 0 || better(gscore[g], g, gscore[best], best))) best = g;
            gkeep[best] = 1;
        }
        for (int64_t e = 0; e < E; e++) excl[e] = !gkeep[e / per];
    }
    int32_t* idx = a->indices + t * K;
    float* w = a->weights + t * K;
    for (int64_t r = 0; r < K; r++) {
        int64_t best = -1;
        for (int64_t e = 0; e < E; e++)
            if (!excl[e] && (best < 0 || better(b[e], e, b[best], best))) best = e;
        excl[best] = 1;
        idx[r] = (int32_t)best;
        w[r] = s[best];
    }
    if (a->norm_topk_prob) {
        float sum = 0;
        for (int64_t r = 0; r < K; r++) sum += w[r];
        if (sum > 0)
            for (int64_t r = 0; r < K; r++) w[r] /= sum;
    }
    for (int64_t r = 0; r < K; r++) w[r] *= a->scale;
}

#define GATE_BLOCK 4
#define GATE_TOKENS 32 /* tokens whose logits are computed together (a [32, experts] f32 buffer) */
#define GATE_EXPERTS 16 /* gate rows per L2-resident panel (16 x 7168 f32 = 448 KiB) */

static void gate_tokens(void* arg, int64_t t0, int64_t t1) {
    const gate_job* j = (const gate_job*)arg;
    const moe_gate_args* a = j->a;
    const int64_t E = a->experts, H = a->hidden;
    const size_t xes = dsk4j_dtype_size(a->x_dtype);
    static _Thread_local float lg[GATE_TOKENS * MOE_MAX_EXPERTS];
    for (int64_t tc = t0; tc < t1; tc += GATE_TOKENS) {
        const int64_t nt = t1 - tc < GATE_TOKENS ? t1 - tc : GATE_TOKENS;
        const char* xc = (const char*)a->x + (size_t)(tc * H) * xes;
        if (j->simd == SIMD_PORTABLE) {
            for (int64_t i = 0; i < nt; i++)
                cpu_moe_logits_portable(lg + i * E, xc + (size_t)(i * H) * xes, a->x_dtype, a->wg, a->wg_dtype, H, 0, E);
        } else {
            /* expert panels outside, token blocks inside: each panel of gate rows is read from memory
             * once per GATE_TOKENS tokens and from cache for the rest */
            for (int64_t e0 = 0; e0 < E; e0 += GATE_EXPERTS) {
                const int64_t e1 = E - e0 < GATE_EXPERTS ? E : e0 + GATE_EXPERTS;
                int64_t i = 0;
                for (; i + GATE_BLOCK <= nt; i += GATE_BLOCK)
                    cpu_avx2_moe_logits4(lg + i * E + e0, E, xc + (size_t)(i * H) * xes, H, a->x_dtype, a->wg,
                                         a->wg_dtype, H, e0, e1);
                for (; i < nt; i++)
                    cpu_avx2_moe_logits_x4(lg + i * E + e0, xc + (size_t)(i * H) * xes, a->x_dtype, a->wg, a->wg_dtype,
                                           H, e0, e1);
            }
        }
        for (int64_t i = 0; i < nt; i++) route_token(a, lg + i * E, tc + i);
    }
}

void cpu_moe_gate(dsk4j_context* ctx, const moe_gate_args* a) {
    gate_job j = {a, ctx->simd};
    int64_t work = a->experts * a->hidden;
    int64_t grain = work >= (1 << 18) ? GATE_BLOCK : (1 << 18) / (work > 0 ? work : 1);
    if (grain < GATE_BLOCK) grain = GATE_BLOCK;
    cpu_parallel_for(ctx, a->tokens, grain, gate_tokens, &j);
}

/* ---------------- gather ---------------- */

typedef struct {
    void* xp;
    const void* x;
    size_t row_bytes;
    const int32_t* src_of;
    int64_t top_k;
} gather_job;

static void gather_rows(void* arg, int64_t r0, int64_t r1) {
    const gather_job* j = (const gather_job*)arg;
    for (int64_t r = r0; r < r1; r++) {
        char* dst = (char*)j->xp + (size_t)r * j->row_bytes;
        int32_t p = j->src_of[r];
        if (p < 0) memset(dst, 0, j->row_bytes);
        else memcpy(dst, (const char*)j->x + (size_t)(p / j->top_k) * j->row_bytes, j->row_bytes);
    }
}

void cpu_moe_gather(dsk4j_context* ctx, void* xp, const void* x, size_t elem, const int32_t* src_of, int64_t rows,
                    int64_t top_k, int64_t hidden) {
    gather_job j = {xp, x, elem * (size_t)hidden, src_of, top_k};
    int64_t grain = (int64_t)(j.row_bytes >= 65536 ? 1 : 65536 / (j.row_bytes ? j.row_bytes : 1));
    cpu_parallel_for(ctx, rows, grain, gather_rows, &j);
}

/* ---------------- combine ---------------- */

typedef struct {
    void* y;
    int32_t y_dtype;
    const void* e;
    int32_t e_dtype;
    const float* weights;
    const int32_t* row_of;
    const void* shared;
    int32_t shared_dtype;
    int64_t top_k, hidden;
} combine_job;

static void combine_tokens(void* arg, int64_t t0, int64_t t1) {
    const combine_job* j = (const combine_job*)arg;
    const int64_t H = j->hidden, K = j->top_k;
    for (int64_t t = t0; t < t1; t++) {
        for (int64_t h = 0; h < H; h++) {
            float acc = 0;
            for (int64_t i = 0; i < K; i++) {
                int64_t row = j->row_of[t * K + i];
                acc = fmaf(j->weights[t * K + i], ld(j->e, j->e_dtype, row * H + h), acc);
            }
            if (j->shared) acc += ld(j->shared, j->shared_dtype, t * H + h);
            if (j->y_dtype == DSK4J_DTYPE_F32) ((float*)j->y)[t * H + h] = acc;
            else ((uint16_t*)j->y)[t * H + h] = cpu_f32_to_bf16(acc);
        }
    }
}

void cpu_moe_combine(dsk4j_context* ctx, void* y, int32_t y_dtype, const void* e, int32_t e_dtype,
                     const float* weights, const int32_t* row_of, const void* shared, int32_t shared_dtype,
                     int64_t tokens, int64_t top_k, int64_t hidden) {
    combine_job j = {y, y_dtype, e, e_dtype, weights, row_of, shared, shared_dtype, top_k, hidden};
    int64_t per = top_k * hidden;
    int64_t grain = per >= 16384 ? 1 : 16384 / (per > 0 ? per : 1);
    cpu_parallel_for(ctx, tokens, grain, combine_tokens, &j);
}

/* ---------------- forward (one MoE layer, composed of the cpu kernels) ---------------- */

typedef struct {
    const float* h; /* [rows, 2*inter] f32: gate (w1) columns then up (w3) columns */
    int64_t inter;
    uint8_t* q;     /* fp8: [rows, inter] e4m3 */
    float* qs;      /* fp8: [rows, inter/128] */
    uint16_t* b;    /* bf16: [rows, inter] */
    float* f;       /* f32: [rows, inter] (no rounding) */
} silu_job;

static inline float silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

static void silu_rows(void* arg, int64_t r0, int64_t r1) {
    const silu_job* j = (const silu_job*)arg;
    const int64_t I = j->inter;
    float a[128];
    for (int64_t r = r0; r < r1; r++) {
        const float* g = j->h + r * 2 * I;
        const float* u = g + I;
        if (j->f) {
            for (int64_t c = 0; c < I; c++) j->f[r * I + c] = silu_mul(g[c], u[c]);
            continue;
        }
        if (j->b) {
            for (int64_t c = 0; c < I; c++) j->b[r * I + c] = cpu_f32_to_bf16(silu_mul(g[c], u[c]));
            continue;
        }
        for (int64_t c0 = 0; c0 < I; c0 += 128) {
            float amax = 0;
            for (int c = 0; c < 128; c++) {
                a[c] = silu_mul(g[c0 + c], u[c0 + c]);
                float m = fabsf(a[c]);
                if (m > amax) amax = m; /* NaN ignored */
            }
            if (amax < 1e-4f) amax = 1e-4f;
            const float s = amax / 448.0f;
            for (int c = 0; c < 128; c++) j->q[r * I + c0 + c] = cpu_f32_to_e4m3(a[c] / s);
            j->qs[r * (I / 128) + c0 / 128] = s;
        }
    }
}

static void silu_run(dsk4j_context* ctx, const silu_job* j, int64_t rows) {
    int64_t grain = j->inter >= 4096 ? 1 : 4096 / j->inter;
    cpu_parallel_for(ctx, rows, grain, silu_rows, (void*)j);
}

/* silu(g)*u of h [rows, 2*inter] into e4m3 + 1x128 scales (q, qs) or bf16 (b) */
void cpu_moe_silu_quant(dsk4j_context* ctx, const float* h, int64_t rows, int64_t inter, uint8_t* q, float* qs,
                        uint16_t* b) {
    silu_job j = {h, inter, q, qs, b, NULL};
    silu_run(ctx, &j, rows);
}

/* a [rows, inter] f32 = silu(g)*u of h [rows, 2*inter] in f32, unrounded (the f32-weight layer) */
void cpu_moe_silu_mul_f32(dsk4j_context* ctx, const float* h, int64_t rows, int64_t inter, float* a) {
    silu_job j = {h, inter, NULL, NULL, NULL, a};
    silu_run(ctx, &j, rows);
}

/* d [rows, n] f32 = act [rows, k] · w[n, k]ᵀ: fp8 (gemm.fp8_block, act_s [rows, k/128]), bf16
 * (gemm.bf16, bf16 act) or f32 (gemm.f32, f32 act and weights). */
static void expert_gemm(dsk4j_context* ctx, const moe_forward_args* a, float* d, const void* act, const float* act_s,
                        const void* w, const float* ws, int64_t rows, int64_t n, int64_t k) {
    if (a->w_dtype == DSK4J_DTYPE_F32) {
        gemm_args g = {d, DSK4J_DTYPE_F32, act, NULL, 0, 0, w, NULL, NULL, rows, n, k, DSK4J_DTYPE_F32};
        cpu_gemm_f32(ctx, &g);
        return;
    }
    gemm_args g = {d, DSK4J_DTYPE_F32, act, act_s, k / 128, 1, w, ws, NULL, rows, n, k, a->w_dtype};
    if (a->w_dtype == DSK4J_DTYPE_E4M3) cpu_gemm_fp8_block(ctx, &g);
    else cpu_gemm_bf16(ctx, &g);
}

/* silu(g)*u of h [rows, 2*inter] into the next GEMM's activation act (e4m3 + acts, bf16 or f32). */
static void expert_act(dsk4j_context* ctx, int32_t w_dtype, const float* h, int64_t rows, int64_t inter, void* act,
                       float* acts) {
    if (w_dtype == DSK4J_DTYPE_F32) cpu_moe_silu_mul_f32(ctx, h, rows, inter, (float*)act);
    else if (w_dtype == DSK4J_DTYPE_E4M3) cpu_moe_silu_quant(ctx, h, rows, inter, (uint8_t*)act, acts, NULL);
    else cpu_moe_silu_quant(ctx, h, rows, inter, NULL, NULL, (uint16_t*)act);
}

int cpu_moe_forward(dsk4j_context* ctx, const moe_forward_args* a) {
    const int64_t T = a->gate.tokens, H = a->gate.hidden, I = a->inter, Is = a->shared_inter, E = a->gate.experts,
                  K = a->gate.top_k, M = T * K;
    const int fp8 = a->w_dtype == DSK4J_DTYPE_E4M3;
    /* activation (and weight) element size: e4m3 1, bf16 2, f32 4 */
    const size_t aes = dsk4j_dtype_size(a->w_dtype);
    const int64_t Hs = fp8 ? H / 128 : 0, Ismax = I > Is ? I : Is;
    const int64_t Tm = T > M ? T : M;
    /* one workspace: idx, w, offsets, row_of, src_of, xq, xs, as, act, acts, sh, then a region U that
     * holds aq and h13 (the routed w13 GEMM's input and output) and later eo (the w2 GEMM's output): eo
     * is written only after aq and h13 are dead (the shared expert, which reuses h13, runs first), so
     * they share memory and the workspace is about half of what separate buffers would take. */
    size_t sz[14] = {(size_t)M * 4, (size_t)M * 4, (size_t)(E + 1) * 4, (size_t)M * 4, (size_t)M * 4,
                     (size_t)(T * H) * aes, (size_t)(T * Hs) * 4, (size_t)(M * Hs) * 4,
                     (size_t)(Tm * Ismax) * aes, (size_t)(fp8 ? Tm * (Ismax / 128) : 0) * 4,
                     (size_t)(Is > 0 ? T * H : 0) * 4,
                     (size_t)(M * H) * aes, (size_t)(Tm * 2 * Ismax) * 4, /* aq, h13: in U */
                     (size_t)(M * H) * 4 /* eo: in U */};
    size_t total = 0, off[14];
    for (int i = 0; i < 11; i++) {
        off[i] = total;
        total += (sz[i] + 63) & ~(size_t)63;
    }
    const size_t u0 = total, aq_bytes = (sz[11] + 63) & ~(size_t)63, h13_bytes = (sz[12] + 63) & ~(size_t)63,
                 eo_bytes = (sz[13] + 63) & ~(size_t)63;
    off[11] = u0;
    off[12] = u0 + aq_bytes;
    off[13] = u0;
    total = u0 + (aq_bytes + h13_bytes > eo_bytes ? aq_bytes + h13_bytes : eo_bytes);
    char* ws = (char*)cpu_host_alloc(total);
    if (!ws)
        return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "dsk4j_moe_forward: cannot allocate a %zu-byte workspace", total);
    int32_t* idx = (int32_t*)(ws + off[0]);
    float* wts = (float*)(ws + off[1]);
    int32_t* offs = (int32_t*)(ws + off[2]);
    int32_t* row_of = (int32_t*)(ws + off[3]);
    int32_t* src_of = (int32_t*)(ws + off[4]);
    void* xq = ws + off[5];
    float* xs = (float*)(ws + off[6]);
    float* as = (float*)(ws + off[7]);
    void* act = ws + off[8];
    float* acts = (float*)(ws + off[9]);
    float* sh = Is > 0 ? (float*)(ws + off[10]) : NULL;
    void* aq = ws + off[11];
    float* h13 = (float*)(ws + off[12]);
    float* eo = (float*)(ws + off[13]); /* over aq and h13: written after both are dead */

    /* 1. route */
    moe_gate_args g = a->gate;
    g.indices = idx;
    g.weights = wts;
    g.logits = NULL;
    cpu_moe_gate(ctx, &g);
    /* 2. dispatch (contiguous, no padding: the cpu GEMMs take any row offsets) */
    int64_t* cur = (int64_t*)calloc((size_t)E + 1, sizeof(int64_t));
    if (!cur) {
        cpu_host_free(ws);
        return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "dsk4j_moe_forward: cannot allocate the expert counters");
    }
    for (int64_t p = 0; p < M; p++) cur[idx[p]]++;
    if (a->counts)
        for (int64_t e = 0; e < E; e++) a->counts[e] = (int32_t)cur[e];
    int64_t acc = 0;
    for (int64_t e = 0; e < E; e++) {
        int64_t c = cur[e];
        offs[e] = (int32_t)acc;
        cur[e] = acc;
        acc += c;
    }
    offs[E] = (int32_t)acc;
    for (int64_t p = 0; p < M; p++) {
        int64_t r = cur[idx[p]]++;
        row_of[p] = (int32_t)r;
        src_of[r] = (int32_t)p;
    }
    free(cur);
    /* 3. the activations once per token (fp8: act_quant; bf16: rounded; f32: exact), then gathered
     * into expert order */
    if (fp8) {
        cpu_fp8_act_quant(ctx, (uint8_t*)xq, xs, Hs, 1, a->gate.x, a->gate.x_dtype, T, H, 128, 0);
        cpu_moe_gather(ctx, as, xs, 4, src_of, M, K, Hs);
    } else if (a->w_dtype == DSK4J_DTYPE_F32) {
        for (int64_t i = 0; i < T * H; i++)
            ((float*)xq)[i] = a->gate.x_dtype == DSK4J_DTYPE_BF16 ? cpu_bf16_to_f32(((const uint16_t*)a->gate.x)[i])
                                                                  : ((const float*)a->gate.x)[i];
    } else {
        for (int64_t i = 0; i < T * H; i++)
            ((uint16_t*)xq)[i] = a->gate.x_dtype == DSK4J_DTYPE_BF16 ? ((const uint16_t*)a->gate.x)[i]
                                                                    : cpu_f32_to_bf16(((const float*)a->gate.x)[i]);
    }
    /* 4. the shared expert on every token (first: it uses h13 and act, which eo later overlays in part) */
    if (sh) {
        expert_gemm(ctx, a, h13, xq, fp8 ? xs : NULL, a->s13, a->s13_scale, T, 2 * Is, H);
        expert_act(ctx, a->w_dtype, h13, T, Is, act, fp8 ? acts : NULL);
        expert_gemm(ctx, a, sh, act, fp8 ? acts : NULL, a->s2, a->s2_scale, T, H, Is);
    }
    cpu_moe_gather(ctx, aq, xq, aes, src_of, M, K, H);
    /* 5. routed experts: w13, silu*u (+ quant / rounding), w2; fp8 one grouped GEMM, else one GEMM
     * per expert with rows, in expert order */
    const size_t w13e = (size_t)(2 * I * H) * aes, w2e = (size_t)(H * I) * aes;
    if (fp8) {
        gemm_grouped_args gg = {{h13, DSK4J_DTYPE_F32, aq, as, Hs, 1, a->w13, a->w13_scale, NULL, M, 2 * I, H, a->w_dtype},
                                E, offs, NULL, 0};
        cpu_gemm_fp8_grouped(ctx, &gg);
    } else {
        for (int64_t e = 0; e < E; e++)
            if (offs[e + 1] > offs[e])
                expert_gemm(ctx, a, h13 + (size_t)offs[e] * 2 * I, (const char*)aq + (size_t)offs[e] * H * aes, NULL,
                            (const char*)a->w13 + e * w13e, NULL, offs[e + 1] - offs[e], 2 * I, H);
    }
    expert_act(ctx, a->w_dtype, h13, M, I, act, fp8 ? acts : NULL);
    if (fp8) {
        gemm_grouped_args gg = {{eo, DSK4J_DTYPE_F32, act, acts, I / 128, 1, a->w2, a->w2_scale, NULL, M, H, I, a->w_dtype},
                                E, offs, NULL, 0};
        cpu_gemm_fp8_grouped(ctx, &gg);
    } else {
        for (int64_t e = 0; e < E; e++)
            if (offs[e + 1] > offs[e])
                expert_gemm(ctx, a, eo + (size_t)offs[e] * H, (const char*)act + (size_t)offs[e] * I * aes, NULL,
                            (const char*)a->w2 + e * w2e, NULL, offs[e + 1] - offs[e], H, I);
    }
    /* 6. combine in token order */
    cpu_moe_combine(ctx, a->y, a->y_dtype, eo, DSK4J_DTYPE_F32, wts, row_of, sh, DSK4J_DTYPE_F32, T, K, H);
    cpu_host_free(ws);
    return DSK4J_OK;
}
