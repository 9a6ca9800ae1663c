/* cpu_moe.c - moe.gate, moe.gather and moe.combine on the cpu backend (DESIGN.md 4.5; dsk4j.h has
 * the exact contract). Arguments arrive validated (api_moe.c). moe.dispatch and moe.bias_update are
 * sequential host loops in api_moe.c. The logits use the 16-lane order of dsk4j.h on every path
 * (portable here, AVX2+FMA in cpu_avx2_moe.c), so every path chooses the same experts. */
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

static void gate_tokens(void* arg, int64_t t0, int64_t t1) {
    const gate_job* j = (const gate_job*)arg;
    const moe_gate_args* a = j->a;
    const int64_t E = a->experts, K = a->top_k, G = a->n_group, per = E / G;
    const size_t xes = dsk4j_dtype_size(a->x_dtype);
    float lg[MOE_MAX_EXPERTS], s[MOE_MAX_EXPERTS], b[MOE_MAX_EXPERTS];
    unsigned char excl[MOE_MAX_EXPERTS], gkeep[MOE_MAX_EXPERTS];
    float gscore[MOE_MAX_EXPERTS];
    for (int64_t t = t0; t < t1; t++) {
        const void* xt = (const char*)a->x + (size_t)(t * a->hidden) * xes;
        if (j->simd != SIMD_PORTABLE)
            cpu_avx2_moe_logits(lg, xt, a->x_dtype, a->wg, a->wg_dtype, a->hidden, 0, E);
        else
            cpu_moe_logits_portable(lg, xt, a->x_dtype, a->wg, a->wg_dtype, a->hidden, 0, E);
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
}

void cpu_moe_gate(dsk4j_context* ctx, const moe_gate_args* a) {
    gate_job j = {a, ctx->simd};
    int64_t work = a->experts * a->hidden;
    int64_t grain = work >= (1 << 18) ? 1 : (1 << 18) / (work > 0 ? work : 1);
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
