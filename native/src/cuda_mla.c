/* cuda_mla.c - the mla ops on the CUDA backend (DESIGN.md 4.4; internal.h cuda_mla_*): picks the
 * kernels, sizes the launches and queues them through cuda_backend.c (cuda_mla_launch). Arguments
 * arrive validated (api_mla.c): every i32 array's contents were checked on the host, every pointer
 * lies inside a live buffer of the context.
 *
 *   mla.cache_append  kernels-ptx/src/mla_reference.cu dsk4j_ref_mla_cache_append (both modes: one
 *                     block per token; the op is a small scatter).
 *   mla.decode        fast: kernels-ptx/src/mla_decode.cu, the split-KV mma.sync bf16 kernel (the
 *                     largest variant whose shared memory the device grants: bm64_s3 on sm_90,
 *                     bm64_s2 on sm_80, bm32_s1 on 99 KiB parts) + dsk4j_mla_decode_combine when
 *                     split; bf16 q / o with BF16 and FP8 caches, 16-byte aligned q_latent, q_pe,
 *                     o_latent and cache. f32 q / o and the F32 cache (exact f32 wanted: the tensor
 *                     cores would round them to bf16), misaligned views and
 *                     DSK4J_CUDA_REFERENCE_KERNELS run dsk4j_ref_mla_decode (f32, one block per
 *                     query row). On the sm_90a cubin with DSK4J_CUDA_MLA_KERNEL=wgmma (opt-in,
 *                     unverified) dsk4j_mla_decode_wgmma_bm64_s3 replaces the mma.sync kernel;
 *                     with DSK4J_CUDA_MLA_KERNEL=flash (opt-in, NEVER RUN ON A GPU: compiled only)
 *                     mla_decode_sm90.cu dsk4j_mla_decode_flash_sm90 (TMA pages, wgmma for Q K^T
 *                     and P V) takes the bf16 cache with bf16 q / o (decode_flash), everything
 *                     else runs as above. "auto" stays on mma.sync on sm_90 until a GPU run has
 *                     verified the sm_90a kernels.
 *   mla.prefill       fast: kernels-ptx/src/mla_prefill.cu dsk4j_mla_prefill_mma (bf16, qk_dim 192,
 *                     v_dim 128, 16-byte aligned q, k, v, o; grid nseq * ceil(max_seqlen / 64) x
 *                     heads); f32, other dims, misaligned views and DSK4J_CUDA_REFERENCE_KERNELS run
 *                     dsk4j_ref_mla_prefill (one block per (token, head)).
 *   mla.absorb_q / _o dsk4j_ref_mla_absorb in both modes (one thread per output element).
 * The kernels with grid-stride loops take any grid; the split-KV decode kernel needs exactly
 * batch * nsplit * row_tiles blocks. */
#include <stdint.h>

#include "cuda_driver.h"
#include "cuda_launch.h"
#include "internal.h"

/* Must match kernels-ptx/src/mla_reference.cu (DSK4J_MLA_REF_THREADS: the decode reference needs
 * exactly 256) and mla_decode.cu (DSK4J_MLA_THREADS, DSK4J_MLA_COMBINE_THREADS, Cfg::SMEM, BT). */
#define REF_THREADS 256
#define MLA_THREADS 256
#define COMBINE_THREADS 128
#define PF_THREADS 128 /* mla_prefill.cu DSK4J_MLA_PF_THREADS; 64-query tiles */
#define MLA_BT 32 /* tokens per KV tile (mla_decode.cu) */
#define FLASH_BT 64 /* tokens per KV tile of the flash kernel (one page) */
#define MAX_SPLITS 64

enum {
    K_REF_APPEND,
    K_REF_DECODE,
    K_REF_PREFILL,
    K_REF_ABSORB,
    K_DEC_BM64_S3,
    K_DEC_BM64_S2,
    K_DEC_BM32_S1,
    K_COMBINE,
    K_DEC_WG_BM64_S3,
    K_PF_MMA,
    K_DEC_FLASH,
    K_COUNT
};
_Static_assert(K_COUNT == CUDA_MLA_KERNELS, "cuda_driver.h CUDA_MLA_KERNELS");

const char* const cuda_mla_kernel_names[CUDA_MLA_KERNELS] = {
    "dsk4j_ref_mla_cache_append",   "dsk4j_ref_mla_decode",         "dsk4j_ref_mla_prefill",
    "dsk4j_ref_mla_absorb",         "dsk4j_mla_decode_mma_bm64_s3", "dsk4j_mla_decode_mma_bm64_s2",
    "dsk4j_mla_decode_mma_bm32_s1", "dsk4j_mla_decode_combine",     "dsk4j_mla_decode_wgmma_bm64_s3",
    "dsk4j_mla_prefill_mma",        "dsk4j_mla_decode_flash_sm90"};
/* mla_decode.cu static_asserts the same numbers (Q + STAGES KV tiles + P + row reductions);
 * mla_decode_sm90.cu its 231448 (1024 slack + Q + 2 pages + P + reductions + mbarriers). */
const int cuda_mla_kernel_smem[CUDA_MLA_KERNELS] = {0, 0, 0, 0, 192512, 155136, 77824, 0, 189952, 68608, 231448};
const int cuda_mla_kernel_sm90a[CUDA_MLA_KERNELS] = {0, 0, 0, 0, 0, 0, 0, 0, CUDA_MLA_WGMMA, 0, CUDA_MLA_FLASH};

const char* cuda_mla_sm90a_name(unsigned usable_sm90a) {
    if (usable_sm90a & (1u << K_DEC_FLASH)) return ", mla decode flash";
    if (usable_sm90a & (1u << K_DEC_WG_BM64_S3)) return ", mla decode wgmma";
    return "";
}

int cuda_mla_cache_append(dsk4j_context* ctx, const mla_append_args* a) {
    int reference, sm;
    unsigned usable;
    int rc = cuda_mla_context_info(ctx, &reference, &sm, &usable);
    if (rc != DSK4J_OK) return rc;
    if (a->tokens <= 0) return DSK4J_OK;
    uint64_t cache = dptr(a->cache), kv = dptr(a->kv_latent), pe = dptr(a->k_pe), ids = dptr(a->seq_ids),
             pos = dptr(a->positions), bt = dptr(a->block_table);
    int format = a->format, dt = a->dtype;
    long long max_pages = a->max_pages, tokens = a->tokens;
    void* params[] = {&cache, &format, &kv, &pe, &dt, &ids, &pos, &bt, &max_pages, &tokens};
    return cuda_mla_launch(ctx, K_REF_APPEND, grid_for(sm, a->tokens, 1), REF_THREADS, params);
}

static int decode_reference(dsk4j_context* ctx, const mla_decode_args* a, int sm) {
    uint64_t o = dptr(a->o_latent), lse = dptr(a->lse), q = dptr(a->q_latent), qpe = dptr(a->q_pe),
             cache = dptr(a->cache), bt = dptr(a->block_table), sl = dptr(a->seq_lens);
    int dt = a->dtype, format = a->format, causal = a->causal;
    long long batch = a->batch, sq = a->sq, heads = a->heads, max_pages = a->max_pages;
    float scale = a->softmax_scale;
    void* params[] = {&o, &lse, &q, &qpe, &dt, &cache, &format, &bt, &sl, &batch, &sq, &heads, &max_pages, &scale,
                      &causal};
    return cuda_mla_launch(ctx, K_REF_DECODE, grid_for(sm, a->batch * a->sq * a->heads, 1), REF_THREADS, params);
}

/* Splits per (batch, row tile): the count in [1, cap] that minimizes the waves per unit of work,
 * ceil(base * n / sm) / n, plus 3% per extra split for the partial writes and the combine
 * (the kernels hold one block per multiprocessor). Each split keeps >= 4 KV tiles of tile_tokens
 * (128 tokens for the mma.sync / wgmma kernels, 256 for the flash kernel). */
static int choose_splits(int64_t base, int64_t max_seq_len, int sm, int64_t tile_tokens) {
    int64_t tiles = (max_seq_len + tile_tokens - 1) / tile_tokens;
    int64_t cap = tiles / 4;
    if (cap > MAX_SPLITS) cap = MAX_SPLITS;
    if (cap < 1) cap = 1;
    int best = 1;
    double best_cost = 0.0;
    for (int n = 1; n <= cap; n++) {
        const double waves = (double)((base * n + sm - 1) / sm);
        const double cost = waves / (double)n * (1.0 + 0.03 * (double)(n - 1));
        if (n == 1 || cost < best_cost - 1e-9) {
            best = n;
            best_cost = cost;
        }
    }
    return best;
}

/* The split scratch: o_part [nsplit][rows][512] f32, then lse_part [nsplit][rows]. On DSK4J_OK
 * with nsplit > 1 the scratch lock is held (release after queueing the combine). */
static int split_scratch(dsk4j_context* ctx, int nsplit, int64_t rows_total, uint64_t* o_part, uint64_t* lse_part) {
    *o_part = *lse_part = 0;
    if (nsplit <= 1) return DSK4J_OK;
    void* scratch = NULL;
    const int64_t bytes = (int64_t)nsplit * rows_total * (512 + 1) * 4;
    int rc = cuda_mla_scratch_acquire(ctx, bytes, &scratch);
    if (rc != DSK4J_OK) return rc;
    *o_part = dptr(scratch);
    *lse_part = *o_part + (uint64_t)nsplit * (uint64_t)rows_total * 512u * 4u;
    return DSK4J_OK;
}

/* After a split decode launch (rc): the combine when split, then the scratch released. */
static int combine_and_release(dsk4j_context* ctx, const mla_decode_args* a, int sm, int rc, int nsplit,
                               uint64_t o_part, uint64_t lse_part) {
    if (nsplit <= 1) return rc;
    if (rc == DSK4J_OK) {
        uint64_t o = dptr(a->o_latent), lse = dptr(a->lse);
        int dt = a->dtype, ns = nsplit;
        long long rows = a->batch * a->sq * a->heads;
        void* cparams[] = {&o, &lse, &o_part, &lse_part, &dt, &rows, &ns};
        rc = cuda_mla_launch(ctx, K_COMBINE, grid_for(sm, rows, 1), COMBINE_THREADS, cparams);
    }
    cuda_mla_scratch_release(ctx);
    return rc;
}

/* mla.decode on the FlashMLA-style sm_90a kernel (mla_decode_sm90.cu; usable only with
 * DSK4J_CUDA_MLA_KERNEL=flash on the sm_90a cubin): 1 = taken (its status in *rc), 0 = not
 * applicable here (the caller runs the other kernels). It takes the BF16 cache with bf16 q / o,
 * 16-byte aligned q_latent, q_pe, o_latent and cache (TMA bases), rows_total and num_pages * 64
 * below 2^31 - 64 (the kernel's int TMA coordinates). The tensor maps (cuda_gemm_tensor_map:
 * uint8, 128-byte swizzle, boxes of 128 bytes x 64 rows): q_latent [rows][1024 bytes], q_pe
 * [rows][128], cache [num_pages * 64][1152]. Splits as the mma.sync kernel, over 64-token pages. */
static int decode_flash(dsk4j_context* ctx, const mla_decode_args* a, int sm, int* rc) {
    const int64_t rows_b = a->sq * a->heads, rows_total = a->batch * rows_b;
    if (a->format != DSK4J_MLA_CACHE_BF16 || a->dtype != DSK4J_DTYPE_BF16) return 0;
    if (((dptr(a->q_latent) | dptr(a->q_pe) | dptr(a->o_latent) | dptr(a->cache)) & 15u) != 0) return 0;
    if (a->num_pages <= 0 || a->num_pages > (INT32_MAX - 64) / 64 || rows_total > INT32_MAX - 64) return 0;
    const int64_t row_tiles = (rows_b + 63) / 64, base = a->batch * row_tiles;
    if (row_tiles > INT32_MAX || base > INT32_MAX) return 0;
    cuda_tensor_map tql, tqpe, tkv;
    int er = cuda_gemm_tensor_map(ctx, &tql, a->q_latent, 1024, rows_total, 128, 64);
    if (er == 0) er = cuda_gemm_tensor_map(ctx, &tqpe, a->q_pe, 128, rows_total, 128, 64);
    if (er == 0) er = cuda_gemm_tensor_map(ctx, &tkv, a->cache, 1152, a->num_pages * 64, 128, 64);
    if (er != 0) { /* every documented encode rule was checked above: a failure is a bug, report it */
        *rc = er > 0 ? cuda_driver_fail(DSK4J_ERR_DEVICE, (CUresult)er, "mla.decode (flash): cuTensorMapEncodeTiled")
                     : dsk4j_fail(DSK4J_ERR_DEVICE, "mla.decode (flash): cuTensorMapEncodeTiled unavailable or context error");
        return 1;
    }
    int nsplit = choose_splits(base, a->max_seq_len, sm, FLASH_BT);
    while (nsplit > 1 && base * nsplit > INT32_MAX) nsplit--;
    uint64_t o_part, lse_part;
    *rc = split_scratch(ctx, nsplit, rows_total, &o_part, &lse_part);
    if (*rc != DSK4J_OK) return 1;
    uint64_t o = dptr(a->o_latent), lse = dptr(a->lse), bt = dptr(a->block_table), sl = dptr(a->seq_lens);
    int causal = a->causal, ns = nsplit, rt = (int)row_tiles;
    long long sq = a->sq, heads = a->heads, max_pages = a->max_pages, rows = rows_total;
    float scale = a->softmax_scale;
    void* params[] = {&tql, &tqpe, &tkv, &o, &lse, &o_part, &lse_part, &bt, &sl, &sq, &heads, &max_pages, &ns, &rt,
                      &rows, &scale, &causal};
    *rc = cuda_mla_launch(ctx, K_DEC_FLASH, (unsigned)(base * nsplit), MLA_THREADS, params);
    *rc = combine_and_release(ctx, a, sm, *rc, nsplit, o_part, lse_part);
    return 1;
}

int cuda_mla_decode(dsk4j_context* ctx, const mla_decode_args* a) {
    int reference, sm;
    unsigned usable;
    int rc = cuda_mla_context_info(ctx, &reference, &sm, &usable);
    if (rc != DSK4J_OK) return rc;
    if (a->batch <= 0 || a->sq <= 0 || a->heads <= 0) return DSK4J_OK;
    if (!reference && (usable & (1u << K_DEC_FLASH)) && (usable & (1u << K_COMBINE)) && decode_flash(ctx, a, sm, &rc))
        return rc;
    /* The wgmma kernel is usable only on the sm_90a cubin with DSK4J_CUDA_MLA_KERNEL=wgmma. */
    const int kinds[4] = {K_DEC_WG_BM64_S3, K_DEC_BM64_S3, K_DEC_BM64_S2, K_DEC_BM32_S1};
    const int bms[4] = {64, 64, 64, 32};
    int kernel = -1, bm = 0;
    for (int i = 0; i < 4 && kernel < 0; i++)
        if (usable & (1u << kinds[i])) kernel = kinds[i], bm = bms[i];
    const int aligned = ((dptr(a->q_latent) | dptr(a->q_pe) | dptr(a->o_latent) | dptr(a->cache)) & 15u) == 0;
    const int64_t rows_b = a->sq * a->heads, rows_total = a->batch * rows_b;
    /* The tensor-core kernels take bf16 operands: f32 queries (or an f32 cache) would be rounded to
     * bf16 (~2e-3 relative error, beyond the f32 contract), so they run the exact f32 reference. */
    if (reference || kernel < 0 || !(usable & (1u << K_COMBINE)) || !aligned || a->format == DSK4J_MLA_CACHE_F32 ||
        a->dtype != DSK4J_DTYPE_BF16)
        return decode_reference(ctx, a, sm);
    const int64_t row_tiles = (rows_b + bm - 1) / bm;
    const int64_t base = a->batch * row_tiles;
    if (row_tiles > INT32_MAX || base > INT32_MAX) return decode_reference(ctx, a, sm);
    int nsplit = choose_splits(base, a->max_seq_len, sm, MLA_BT);
    while (nsplit > 1 && base * nsplit > INT32_MAX) nsplit--;

    uint64_t o_part, lse_part;
    rc = split_scratch(ctx, nsplit, rows_total, &o_part, &lse_part);
    if (rc != DSK4J_OK) return rc;
    uint64_t o = dptr(a->o_latent), lse = dptr(a->lse), q = dptr(a->q_latent), qpe = dptr(a->q_pe),
             cache = dptr(a->cache), bt = dptr(a->block_table), sl = dptr(a->seq_lens);
    int dt = a->dtype, format = a->format, causal = a->causal, ns = nsplit, rt = (int)row_tiles;
    long long sq = a->sq, heads = a->heads, max_pages = a->max_pages, rows = rows_total;
    float scale = a->softmax_scale;
    void* params[] = {&o,  &lse,   &o_part, &lse_part,  &q,  &qpe,  &dt,     &cache, &format, &bt,
                      &sl, &sq,    &heads,  &max_pages, &ns, &rt,   &rows,   &scale, &causal};
    rc = cuda_mla_launch(ctx, kernel, (unsigned)(base * nsplit), MLA_THREADS, params);
    return combine_and_release(ctx, a, sm, rc, nsplit, o_part, lse_part);
}

int cuda_mla_prefill(dsk4j_context* ctx, const mla_prefill_args* a) {
    int reference, sm;
    unsigned usable;
    int rc = cuda_mla_context_info(ctx, &reference, &sm, &usable);
    if (rc != DSK4J_OK) return rc;
    if (a->tokens <= 0 || a->heads <= 0) return DSK4J_OK;
    if (a->qk_dim < 1 || a->qk_dim > 256 || a->v_dim < 1 || a->v_dim > 256 || a->nseq < 1)
        return dsk4j_fail(DSK4J_ERR_UNSUPPORTED, "mla.prefill: cuda takes qk_dim and v_dim in [1, 256] (got %lld, %lld)",
                          (long long)a->qk_dim, (long long)a->v_dim);
    uint64_t o = dptr(a->o), lse = dptr(a->lse), q = dptr(a->q), k = dptr(a->k), v = dptr(a->v),
             cu = dptr(a->cu_seqlens);
    int dt = a->dtype, causal = a->causal;
    long long nseq = a->nseq, tokens = a->tokens, heads = a->heads, qk = a->qk_dim, vd = a->v_dim;
    float scale = a->softmax_scale;
    const int aligned = ((o | q | k | v) & 15u) == 0;
    const int64_t q_tiles = (a->max_seqlen + 63) / 64;
    /* bf16 inputs only: f32 ones would be rounded to bf16 for the tensor cores (see decode) */
    if (!reference && (usable & (1u << K_PF_MMA)) && aligned && a->dtype == DSK4J_DTYPE_BF16 && a->qk_dim == 192 &&
        a->v_dim == 128 &&
        a->heads <= 65535 && q_tiles > 0 && a->nseq <= INT32_MAX / q_tiles) {
        long long qt = q_tiles;
        void* fparams[] = {&o, &lse, &q, &k, &v, &dt, &cu, &heads, &qt, &scale, &causal};
        return cuda_mla_launch2(ctx, K_PF_MMA, (unsigned)(a->nseq * q_tiles), (unsigned)a->heads, PF_THREADS,
                                fparams);
    }
    void* params[] = {&o, &lse, &q, &k, &v, &dt, &cu, &nseq, &tokens, &heads, &qk, &vd, &scale, &causal};
    return cuda_mla_launch(ctx, K_REF_PREFILL, grid_for(sm, a->tokens * a->heads, 1), REF_THREADS, params);
}

int cuda_mla_absorb(dsk4j_context* ctx, const mla_absorb_args* a) {
    int reference, sm;
    unsigned usable;
    int rc = cuda_mla_context_info(ctx, &reference, &sm, &usable);
    if (rc != DSK4J_OK) return rc;
    if (a->tokens <= 0 || a->heads <= 0) return DSK4J_OK;
    uint64_t y = dptr(a->y), x = dptr(a->x), w = dptr(a->wkv_b);
    int dt = a->dtype, wd = a->w_dtype, o_side = a->o_side;
    long long tokens = a->tokens, heads = a->heads, xs = a->o_side ? 512 : a->x_head_stride;
    void* params[] = {&y, &x, &dt, &w, &wd, &tokens, &heads, &xs, &o_side};
    const int64_t n = a->tokens * a->heads * (a->o_side ? 128 : 512);
    return cuda_mla_launch(ctx, K_REF_ABSORB, grid_for(sm, n, REF_THREADS), REF_THREADS, params);
}
