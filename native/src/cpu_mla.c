/* cpu_mla.c - mla (DESIGN.md 4.4) on the cpu backend: latent cache append, absorbed decode,
 * prefill and the absorption helpers. The inner loops live in cpu_mla_kernel.h, instantiated
 * here (portable) and in cpu_avx2_mla.c / cpu_avx512_mla.c; this file holds the drivers:
 * conversions into f32 tiles, the work split over the context's threads and the split-KV combine.
 *
 * decode: work items (sequence b, head group, KV split). A head group is up to 128 query rows
 *   (sq * heads_in_group) that share every key tile: per 64-token page the cache rows are
 *   widened once into an f32 tile K [64][576], scores S^T = K·Qt for all rows (Qt holds
 *   softmax_scale * [q_latent | q_pe] transposed), an online-softmax step, then O += P·K[:, :512]
 *   (V is the latent part of the same tile). When there are fewer (b, group) items than four times
 *   the threads, the pages of each sequence are split into ranges processed independently; each
 *   writes its normalized o and lse, and a combine pass merges them:
 *   lse = ln sum_i exp(lse_i), o = sum_i exp(lse_i - lse) o_i.
 * prefill: work items (sequence, head, block of 64 queries), key tiles of 64 with the same three
 *   kernels; causal blocks stop at their last query. No [T, T] matrix is ever formed.
 * absorb: per (head, block of 64 tokens): absorb_q = pv (x · W_UK[h]), absorb_o = qk (x · W_UV[h]^T).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_mla.h"
#include "internal.h"

#define MK_VL 4
#define MK_NAME(x) port_mla_##x
#define MK_QK_RB 2
#define MK_PV_ROWS 4
#define MK_PV_CB 2
#include "cpu_mla_kernel.h"

const mla_kernels cpu_mla_kernels_portable = {MK_VL, MK_PV_CB * MK_VL, port_mla_qk, port_mla_softmax, port_mla_pv, port_mla_widen_bf16,
    port_mla_dequant_e4m3};

#define LAT DSK4J_MLA_LATENT
#define ROPE DSK4J_MLA_ROPE
#define KD (LAT + ROPE)
#define PAGE DSK4J_MLA_PAGE_TOKENS
#define TILE 64
#define MAX_ROWS 128 /* decode rows per item (sq * heads of a group) */

static const mla_kernels* pick(dsk4j_context* ctx) {
    if (ctx->simd == SIMD_AVX512) return &cpu_avx512_mla_kernels;
    if (ctx->simd == SIMD_AVX2) return &cpu_avx2_mla_kernels;
    return &cpu_mla_kernels_portable;
}

static inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* free with cpu_host_free */
static void* scratch(size_t bytes) { return cpu_host_alloc(bytes); }

static inline float ld1(const void* x, int32_t dt, int64_t i) {
    return dt == DSK4J_DTYPE_F32 ? ((const float*)x)[i] : cpu_bf16_to_f32(((const uint16_t*)x)[i]);
}

static inline void st1(void* y, int32_t dt, int64_t i, float v) {
    if (dt == DSK4J_DTYPE_F32) ((float*)y)[i] = v;
    else ((uint16_t*)y)[i] = cpu_f32_to_bf16(v);
}

static void widen(const mla_kernels* kn, float* dst, const void* src, int32_t dt, int64_t n) {
    if (dt == DSK4J_DTYPE_F32) memcpy(dst, src, (size_t)n * 4);
    else kn->widen_bf16(dst, (const uint16_t*)src, n);
}

/* ---------------- cache_append ---------------- */

typedef struct {
    const mla_append_args* a;
    int64_t tb;
} append_job;

static void append_tokens(void* arg, int64_t t0, int64_t t1) {
    const append_job* j = (const append_job*)arg;
    const mla_append_args* a = j->a;
    for (int64_t t = t0; t < t1; t++) {
        int64_t p = a->positions[t];
        int64_t page = a->block_table[(int64_t)a->seq_ids[t] * a->max_pages + p / PAGE];
        uint8_t* dst = (uint8_t*)a->cache + (page * PAGE + p % PAGE) * j->tb;
        float lat[LAT], pe[ROPE];
        widen(&cpu_mla_kernels_portable, lat, (const uint8_t*)a->kv_latent + t * LAT * dsk4j_dtype_size(a->dtype), a->dtype, LAT);
        widen(&cpu_mla_kernels_portable, pe, (const uint8_t*)a->k_pe + t * ROPE * dsk4j_dtype_size(a->dtype), a->dtype, ROPE);
        if (a->format == DSK4J_MLA_CACHE_F32) {
            memcpy(dst, lat, sizeof lat);
            memcpy(dst + sizeof lat, pe, sizeof pe);
        } else if (a->format == DSK4J_MLA_CACHE_BF16) {
            uint16_t* d = (uint16_t*)(void*)dst;
            for (int i = 0; i < LAT; i++) d[i] = cpu_f32_to_bf16(lat[i]);
            for (int i = 0; i < ROPE; i++) d[LAT + i] = cpu_f32_to_bf16(pe[i]);
        } else {
            float sc[4];
            for (int g = 0; g < 4; g++) {
                float amax = 0.0f;
                for (int i = 0; i < 128; i++) {
                    float v = fabsf(lat[g * 128 + i]);
                    if (v > amax) amax = v; /* NaN ignored */
                }
                if (!(amax >= 1e-4f)) amax = 1e-4f;
                float s = amax / 448.0f;
                uint32_t b;
                memcpy(&b, &s, 4);
                if (b & 0x007fffffu) b = (b & 0x7f800000u) + 0x00800000u;
                memcpy(&s, &b, 4);
                sc[g] = s;
                for (int i = 0; i < 128; i++) dst[g * 128 + i] = cpu_f32_to_e4m3(lat[g * 128 + i] / s);
            }
            memcpy(dst + LAT, sc, sizeof sc);
            uint16_t pb[ROPE];
            for (int i = 0; i < ROPE; i++) pb[i] = cpu_f32_to_bf16(pe[i]);
            memcpy(dst + LAT + sizeof sc, pb, sizeof pb);
        }
    }
}

void cpu_mla_cache_append(dsk4j_context* ctx, const mla_append_args* a) {
    append_job j = {a, mla_token_bytes(a->format)};
    cpu_parallel_for(ctx, a->tokens, 16, append_tokens, &j);
}

/* ---------------- decode ---------------- */

/* Rows [0, nt) of the f32 tile K [TILE][KD] from page `page` of the cache; rows [nt, ntpad) zero. */
static void load_tile(const mla_kernels* kn, float* K, const uint8_t* cache, int32_t format, int64_t tb, int64_t page, int64_t nt,
                      int64_t ntpad) {
    const uint8_t* src = cache + page * PAGE * tb;
    for (int64_t n = 0; n < nt; n++, src += tb) {
        float* k = K + n * KD;
        if (format == DSK4J_MLA_CACHE_F32) {
            memcpy(k, src, KD * 4);
        } else if (format == DSK4J_MLA_CACHE_BF16) {
            widen(kn, k, src, DSK4J_DTYPE_BF16, KD);
        } else {
            float sc[4];
            memcpy(sc, src + LAT, sizeof sc);
            for (int g = 0; g < 4; g++) kn->dequant_e4m3(k + g * 128, src + g * 128, 128, sc[g]);
            widen(kn, k + LAT, src + LAT + 16, DSK4J_DTYPE_BF16, ROPE);
        }
    }
    if (ntpad > nt) memset(K + nt * KD, 0, (size_t)(ntpad - nt) * KD * 4);
}

typedef struct {
    const mla_decode_args* a;
    const mla_kernels* k;
    int64_t hg, nhg, nsplit, pps, tb, rmax;
    float* part_o;   /* [batch, nsplit, sq, heads, 512] when nsplit > 1 */
    float* part_lse; /* [batch, nsplit, sq, heads] */
    int failed;
} dec_job;

static void decode_items(void* arg, int64_t i0, int64_t i1) {
    dec_job* j = (dec_job*)arg;
    const mla_decode_args* a = j->a;
    const mla_kernels* kn = j->k;
    const int64_t rpad_max = round_up(j->rmax, 16);
    float* buf = (float*)scratch(((size_t)KD * rpad_max + (size_t)rpad_max * LAT + (size_t)TILE * rpad_max +
                                  (size_t)TILE * KD + 4 * (size_t)rpad_max) * 4);
    if (!buf) {
        __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    float* Qt = buf;
    float* O = Qt + KD * rpad_max;
    float* St = O + rpad_max * LAT;
    float* K = St + TILE * rpad_max;
    float* m = K + TILE * KD;
    float* l = m + rpad_max;
    float* alpha = l + rpad_max;
    int32_t* vis = (int32_t*)(alpha + rpad_max);
    const int64_t es = (int64_t)dsk4j_dtype_size(a->dtype), H = a->heads, sq = a->sq;
    for (int64_t it = i0; it < i1; it++) {
        const int64_t b = it / (j->nhg * j->nsplit), g = (it / j->nsplit) % j->nhg, sp = it % j->nsplit;
        const int64_t h0 = g * j->hg, nh = H - h0 < j->hg ? H - h0 : j->hg, R = sq * nh;
        const int64_t Rpad = round_up(R, 16);
        const int64_t L = a->seq_lens[b];
        const int64_t pages = (L + PAGE - 1) / PAGE;
        int64_t pg0 = sp * j->pps, pg1 = pg0 + j->pps;
        if (pg1 > pages) pg1 = pages;
        /* queries, scaled, transposed */
        for (int64_t r = 0; r < Rpad; r++) {
            if (r < R) {
                const int64_t s = r / nh, h = h0 + r % nh, row = (b * sq + s) * H + h;
                float ql[KD];
                widen(kn, ql, (const uint8_t*)a->q_latent + row * LAT * es, a->dtype, LAT);
                widen(kn, ql + LAT, (const uint8_t*)a->q_pe + row * ROPE * es, a->dtype, ROPE);
                for (int64_t i = 0; i < KD; i++) Qt[i * Rpad + r] = ql[i] * a->softmax_scale;
            } else {
                for (int64_t i = 0; i < KD; i++) Qt[i * Rpad + r] = 0.0f;
            }
            m[r] = -INFINITY;
            l[r] = 0.0f;
        }
        memset(O, 0, (size_t)R * LAT * 4);
        for (int64_t pg = pg0; pg < pg1; pg++) {
            const int64_t pos0 = pg * PAGE, nt = L - pos0 < TILE ? L - pos0 : TILE, ntpad = round_up(nt, 8);
            const int64_t page = a->block_table[b * a->max_pages + pg];
            load_tile(kn, K, (const uint8_t*)a->cache, a->format, j->tb, page, nt, ntpad);
            for (int64_t r = 0; r < Rpad; r++) {
                int64_t v = 0;
                if (r < R) {
                    const int64_t s = r / nh, end = a->causal ? L - sq + s + 1 : L;
                    v = end - pos0;
                    if (v < 0) v = 0;
                    if (v > nt) v = nt;
                }
                vis[r] = (int32_t)v;
            }
            kn->qk(St, Qt, Rpad, K, KD, ntpad, KD);
            kn->softmax(St, Rpad, ntpad, vis, m, l, alpha);
            kn->pv(O, LAT, St, Rpad, R, K, KD, ntpad, LAT, alpha);
        }
        for (int64_t r = 0; r < R; r++) {
            const int64_t s = r / nh, h = h0 + r % nh, row = (b * sq + s) * H + h;
            const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
            const float lse = l[r] > 0.0f ? m[r] + logf(l[r]) : -INFINITY;
            const float* o = O + r * LAT;
            if (j->nsplit == 1) {
                void* dst = (uint8_t*)a->o_latent + row * LAT * es;
                for (int64_t c = 0; c < LAT; c++) st1(dst, a->dtype, c, o[c] * inv);
                if (a->lse) a->lse[row] = lse;
            } else {
                const int64_t prow = ((b * j->nsplit + sp) * sq + s) * H + h;
                float* dst = j->part_o + prow * LAT;
                for (int64_t c = 0; c < LAT; c++) dst[c] = o[c] * inv;
                j->part_lse[prow] = lse;
            }
        }
    }
    cpu_host_free(buf);
}

typedef struct {
    const mla_decode_args* a;
    const dec_job* d;
} combine_job;

static void combine_rows(void* arg, int64_t r0, int64_t r1) {
    const combine_job* cj = (const combine_job*)arg;
    const mla_decode_args* a = cj->a;
    const int64_t ns = cj->d->nsplit, per_b = a->sq * a->heads, es = (int64_t)dsk4j_dtype_size(a->dtype);
    float acc[LAT];
    for (int64_t row = r0; row < r1; row++) {
        const int64_t b = row / per_b, rest = row % per_b;
        float mx = -INFINITY;
        for (int64_t sp = 0; sp < ns; sp++) {
            float v = cj->d->part_lse[(b * ns + sp) * per_b + rest];
            if (v > mx) mx = v;
        }
        memset(acc, 0, sizeof acc);
        float lse = -INFINITY;
        if (mx != -INFINITY) {
            float sum = 0.0f;
            for (int64_t sp = 0; sp < ns; sp++) sum += expf(cj->d->part_lse[(b * ns + sp) * per_b + rest] - mx);
            lse = mx + logf(sum);
            for (int64_t sp = 0; sp < ns; sp++) {
                const int64_t prow = (b * ns + sp) * per_b + rest;
                const float w = expf(cj->d->part_lse[prow] - lse);
                if (w == 0.0f) continue;
                const float* o = cj->d->part_o + prow * LAT;
                for (int64_t c = 0; c < LAT; c++) acc[c] += w * o[c];
            }
        }
        void* dst = (uint8_t*)a->o_latent + row * LAT * es;
        for (int64_t c = 0; c < LAT; c++) st1(dst, a->dtype, c, acc[c]);
        if (a->lse) a->lse[row] = lse;
    }
}

int cpu_mla_decode(dsk4j_context* ctx, const mla_decode_args* a) {
    dec_job j;
    memset(&j, 0, sizeof j);
    j.a = a;
    j.k = pick(ctx);
    j.tb = mla_token_bytes(a->format);
    j.hg = a->sq >= MAX_ROWS ? 1 : MAX_ROWS / a->sq;
    if (j.hg > a->heads) j.hg = a->heads;
    j.nhg = (a->heads + j.hg - 1) / j.hg;
    j.rmax = a->sq * j.hg;
    const int64_t max_pages_used = (a->max_seq_len + PAGE - 1) / PAGE;
    /* at least 4 items per thread when the pages allow (the pool hands chunks out dynamically, so
     * several per thread even out a core that is busy with something else) */
    const int64_t base = a->batch * j.nhg, want = 4 * (int64_t)ctx->num_threads;
    j.nsplit = 1;
    j.pps = max_pages_used > 0 ? max_pages_used : 1;
    if (base < want && max_pages_used > 1) {
        int64_t ns = (want + base - 1) / base;
        int64_t pps = (max_pages_used + ns - 1) / ns;
        if (pps < 4) pps = 4; /* at least 256 tokens per split */
        j.pps = pps;
        j.nsplit = (max_pages_used + pps - 1) / pps;
    }
    if (j.nsplit > 1) {
        const int64_t prow = a->batch * j.nsplit * a->sq * a->heads;
        j.part_o = (float*)scratch((size_t)prow * LAT * 4);
        j.part_lse = (float*)scratch((size_t)prow * 4);
        if (!j.part_o || !j.part_lse) {
            cpu_host_free(j.part_o);
            cpu_host_free(j.part_lse);
            return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "dsk4j_mla_decode: cannot allocate %lld bytes of split-KV scratch",
                              (long long)prow * (LAT + 1) * 4);
        }
    }
    cpu_parallel_for(ctx, a->batch * j.nhg * j.nsplit, 1, decode_items, &j);
    int rc = DSK4J_OK;
    if (j.failed) {
        rc = dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "dsk4j_mla_decode: cannot allocate the per-thread scratch");
    } else if (j.nsplit > 1) {
        combine_job cj = {a, &j};
        cpu_parallel_for(ctx, a->batch * a->sq * a->heads, 16, combine_rows, &cj);
    }
    cpu_host_free(j.part_o);
    cpu_host_free(j.part_lse);
    return rc;
}

/* ---------------- prefill ---------------- */

typedef struct {
    const mla_prefill_args* a;
    const mla_kernels* k;
    int64_t* blocks; /* [nblocks][2]: sequence, first query of the block (relative) */
    int64_t nblocks, dvpad;
    int failed;
} pre_job;

static void prefill_items(void* arg, int64_t i0, int64_t i1) {
    pre_job* j = (pre_job*)arg;
    const mla_prefill_args* a = j->a;
    const mla_kernels* kn = j->k;
    const int64_t D = a->qk_dim, DV = a->v_dim, dvp = j->dvpad, H = a->heads, RP = TILE;
    const int64_t es = (int64_t)dsk4j_dtype_size(a->dtype);
    float* buf = (float*)scratch(((size_t)D * RP + (size_t)RP * dvp + (size_t)TILE * RP + (size_t)TILE * D +
                                  (size_t)TILE * dvp + 4 * (size_t)RP) * 4);
    if (!buf) {
        __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    float* Qt = buf;
    float* O = Qt + D * RP;
    float* St = O + RP * dvp;
    float* K = St + TILE * RP;
    float* V = K + TILE * D;
    float* m = V + TILE * dvp;
    float* l = m + RP;
    float* alpha = l + RP;
    int32_t* vis = (int32_t*)(alpha + RP);
    float row[256];
    for (int64_t it = i0; it < i1; it++) {
        const int64_t blk = it / H, h = it % H;
        const int64_t seq = j->blocks[2 * blk], qs = j->blocks[2 * blk + 1];
        const int64_t t0 = a->cu_seqlens[seq], len = a->cu_seqlens[seq + 1] - t0;
        const int64_t R = len - qs < TILE ? len - qs : TILE, Rpad = round_up(R, 16);
        for (int64_t r = 0; r < Rpad; r++) {
            if (r < R) {
                widen(kn, row, (const uint8_t*)a->q + ((t0 + qs + r) * H + h) * D * es, a->dtype, D);
                for (int64_t i = 0; i < D; i++) Qt[i * Rpad + r] = row[i] * a->softmax_scale;
            } else {
                for (int64_t i = 0; i < D; i++) Qt[i * Rpad + r] = 0.0f;
            }
            m[r] = -INFINITY;
            l[r] = 0.0f;
        }
        memset(O, 0, (size_t)R * dvp * 4);
        const int64_t kend = a->causal ? qs + R : len;
        for (int64_t k0 = 0; k0 < kend; k0 += TILE) {
            const int64_t nt = kend - k0 < TILE ? kend - k0 : TILE, ntpad = round_up(nt, 8);
            for (int64_t n = 0; n < ntpad; n++) {
                if (n < nt) {
                    const int64_t u = t0 + k0 + n;
                    widen(kn, K + n * D, (const uint8_t*)a->k + (u * H + h) * D * es, a->dtype, D);
                    widen(kn, V + n * dvp, (const uint8_t*)a->v + (u * H + h) * DV * es, a->dtype, DV);
                    if (dvp > DV) memset(V + n * dvp + DV, 0, (size_t)(dvp - DV) * 4);
                } else {
                    memset(K + n * D, 0, (size_t)D * 4);
                    memset(V + n * dvp, 0, (size_t)dvp * 4);
                }
            }
            for (int64_t r = 0; r < Rpad; r++) {
                int64_t v = 0;
                if (r < R) {
                    v = a->causal ? qs + r + 1 - k0 : nt;
                    if (v < 0) v = 0;
                    if (v > nt) v = nt;
                }
                vis[r] = (int32_t)v;
            }
            kn->qk(St, Qt, Rpad, K, D, ntpad, D);
            kn->softmax(St, Rpad, ntpad, vis, m, l, alpha);
            kn->pv(O, dvp, St, Rpad, R, V, dvp, ntpad, dvp, alpha);
        }
        for (int64_t r = 0; r < R; r++) {
            const int64_t t = t0 + qs + r;
            const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
            void* dst = (uint8_t*)a->o + (t * H + h) * DV * es;
            for (int64_t c = 0; c < DV; c++) st1(dst, a->dtype, c, O[r * dvp + c] * inv);
            if (a->lse) a->lse[t * H + h] = l[r] > 0.0f ? m[r] + logf(l[r]) : -INFINITY;
        }
    }
    cpu_host_free(buf);
}

int cpu_mla_prefill(dsk4j_context* ctx, const mla_prefill_args* a) {
    pre_job j;
    memset(&j, 0, sizeof j);
    j.a = a;
    j.k = pick(ctx);
    j.dvpad = round_up(a->v_dim, 64);
    int64_t nb = 0;
    for (int64_t s = 0; s < a->nseq; s++) nb += (a->cu_seqlens[s + 1] - a->cu_seqlens[s] + TILE - 1) / TILE;
    j.blocks = (int64_t*)malloc((size_t)(nb ? nb : 1) * 2 * sizeof(int64_t));
    if (!j.blocks) return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "dsk4j_mla_prefill: cannot allocate the block list");
    nb = 0;
    /* longest (causal: latest) blocks first so that the threads end together */
    for (int64_t s = 0; s < a->nseq; s++)
        for (int64_t q = 0; q < a->cu_seqlens[s + 1] - a->cu_seqlens[s]; q += TILE) {
            j.blocks[2 * nb] = s;
            j.blocks[2 * nb + 1] = q;
            nb++;
        }
    j.nblocks = nb;
    cpu_parallel_for(ctx, nb * a->heads, 1, prefill_items, &j);
    free(j.blocks);
    if (j.failed) return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "dsk4j_mla_prefill: cannot allocate the per-thread scratch");
    return DSK4J_OK;
}

/* ---------------- absorption ---------------- */

typedef struct {
    const mla_absorb_args* a;
    const mla_kernels* k;
    int64_t tblocks;
    int failed;
} abs_job;

static void absorb_items(void* arg, int64_t i0, int64_t i1) {
    abs_job* j = (abs_job*)arg;
    const mla_absorb_args* a = j->a;
    const mla_kernels* kn = j->k;
    const int64_t H = a->heads, es = (int64_t)dsk4j_dtype_size(a->dtype), ws = (int64_t)dsk4j_dtype_size(a->w_dtype);
    /* W [128][512] f32, X^T [512][64], Y [64][512] (absorb_q) or S^T [128][64] (absorb_o) */
    float* W = (float*)malloc((size_t)(128 * LAT + LAT * TILE + TILE * LAT) * 4);
    if (!W) {
        __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    float* Xt = W + 128 * LAT;
    float* Y = Xt + LAT * TILE;
    int64_t cur_h = -1;
    for (int64_t it = i0; it < i1; it++) {
        const int64_t h = it / j->tblocks, tq = (it % j->tblocks) * TILE;
        const int64_t R = a->tokens - tq < TILE ? a->tokens - tq : TILE, Rpad = round_up(R, 16);
        if (h != cur_h) {
            const uint8_t* w = (const uint8_t*)a->wkv_b + (h * 256 + (a->o_side ? 128 : 0)) * LAT * ws;
            widen(kn, W, w, a->w_dtype, 128 * LAT);
            cur_h = h;
        }
        const int64_t din = a->o_side ? LAT : 128;
        for (int64_t r = 0; r < Rpad; r++) {
            if (r < R) {
                float row[LAT];
                widen(kn, row, (const uint8_t*)a->x + ((tq + r) * H + h) * a->x_head_stride * es, a->dtype, din);
                for (int64_t i = 0; i < din; i++) Xt[i * Rpad + r] = row[i];
            } else {
                for (int64_t i = 0; i < din; i++) Xt[i * Rpad + r] = 0.0f;
            }
        }
        if (!a->o_side) {
            memset(Y, 0, (size_t)R * LAT * 4);
            kn->pv(Y, LAT, Xt, Rpad, R, W, LAT, 128, LAT, NULL);
            for (int64_t r = 0; r < R; r++) {
                void* dst = (uint8_t*)a->y + ((tq + r) * H + h) * LAT * es;
                for (int64_t c = 0; c < LAT; c++) st1(dst, a->dtype, c, Y[r * LAT + c]);
            }
        } else {
            kn->qk(Y, Xt, Rpad, W, LAT, 128, LAT);
            for (int64_t r = 0; r < R; r++) {
                void* dst = (uint8_t*)a->y + ((tq + r) * H + h) * 128 * es;
                for (int64_t d = 0; d < 128; d++) st1(dst, a->dtype, d, Y[d * Rpad + r]);
            }
        }
    }
    free(W);
}

int cpu_mla_absorb(dsk4j_context* ctx, const mla_absorb_args* a) {
    abs_job j = {a, pick(ctx), (a->tokens + TILE - 1) / TILE, 0};
    cpu_parallel_for(ctx, a->heads * j.tblocks, 1, absorb_items, &j);
    if (j.failed)
        return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "%s: cannot allocate the per-thread scratch",
                          a->o_side ? "dsk4j_mla_absorb_o" : "dsk4j_mla_absorb_q");
    return DSK4J_OK;
}
