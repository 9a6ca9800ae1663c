/* cuda_gemm.c - the gemm ops on the CUDA backend (DESIGN.md 4.2; internal.h cuda_gemm_*):
 * picks the reference (kernels-ptx/src/gemm_reference.cu) or fast kernels
 * (kernels-ptx/src/gemm_fast.cu) per DSK4J_CUDA_REFERENCE_KERNELS, sizes the launch and queues
 * it through cuda_backend.c (cuda_gemm_launch). Arguments arrive validated (api_gemm.c);
 * m, n > 0 here, k % 128 == 0 for fp8. The kernels stride over their work, so any grid
 * (1 .. 2^31-1 blocks) is correct; the grids below are sized, then capped. */
#include <stdint.h>

#include "cuda_driver.h"
#include "internal.h"

/* Must match kernels-ptx/src/gemm_fast.cu (DSK4J_GEMM_THREADS, DSK4J_GEMM_STAGES, 64-byte rows,
 * BN 128) and gemm_reference.cu (any block size). */
#define GEMM_THREADS 256
#define GEMM_STAGES 4
#define GEMM_BN 128
#define REF_THREADS 256
#define BLOCKS_PER_SM 64
#define SMEM_BF16(bm) (GEMM_STAGES * ((bm) + GEMM_BN) * 64)
#define SMEM_FP8(bm) (SMEM_BF16(bm) + 4 * ((bm) + 4) * 4)

enum {
    K_REF_FP8_BLOCK,
    K_REF_BF16,
    K_REF_FP8_GROUPED,
    K_FP8_BLOCK_BM64,
    K_FP8_GROUPED_BM64,
    K_BF16_BM128,
    K_BF16_BM64,
    K_COUNT
};
_Static_assert(K_COUNT == CUDA_GEMM_KERNELS, "cuda_driver.h CUDA_GEMM_KERNELS");

const char* const cuda_gemm_kernel_names[CUDA_GEMM_KERNELS] = {
    "dsk4j_ref_gemm_fp8_block", "dsk4j_ref_gemm_bf16",  "dsk4j_ref_gemm_fp8_grouped",
    "dsk4j_gemm_fp8_block_bm64", "dsk4j_gemm_fp8_grouped_bm64", "dsk4j_gemm_bf16_bm128",
    "dsk4j_gemm_bf16_bm64"};
const int cuda_gemm_kernel_smem[CUDA_GEMM_KERNELS] = {0, 0, 0, SMEM_FP8(64), SMEM_FP8(64), SMEM_BF16(128),
                                                      SMEM_BF16(64)};

static uint64_t dptr(const void* p) { return (uint64_t)(uintptr_t)p; }

/* ceil(units / per) blocks, at least 1, at most sm_count * BLOCKS_PER_SM. */
static unsigned grid_for(int sm_count, int64_t units, int64_t per) {
    int64_t blocks = units / per + (units % per != 0);
    int64_t cap = (int64_t)sm_count * BLOCKS_PER_SM;
    if (blocks > cap) blocks = cap;
    if (blocks < 1) blocks = 1;
    return (unsigned)blocks;
}

/* a * b for non-negative operands, saturated at INT64_MAX. */
static int64_t sat_mul(int64_t a, int64_t b) {
    if (a == 0 || b == 0) return 0;
    return a > INT64_MAX / b ? INT64_MAX : a * b;
}

static int info(dsk4j_context* ctx, int* reference, int* sm_count) {
    int rc = cuda_gemm_context_info(ctx, reference, sm_count);
    if (rc == DSK4J_OK && *sm_count < 1) *sm_count = 1;
    return rc;
}

int cuda_gemm_fp8_block(dsk4j_context* ctx, const gemm_args* g) {
    int reference, sm;
    int rc = info(ctx, &reference, &sm);
    if (rc != DSK4J_OK) return rc;
    if (g->m <= 0 || g->n <= 0) return DSK4J_OK;
    uint64_t d = dptr(g->d), a = dptr(g->a), as = dptr(g->a_scale), b = dptr(g->b), bs = dptr(g->b_scale),
             c = dptr(g->c);
    int dt = g->d_dtype;
    long long rs = g->a_scale_rs, cs = g->a_scale_cs, m = g->m, n = g->n, k = g->k;
    if (reference) {
        void* params[] = {&d, &dt, &a, &as, &rs, &cs, &b, &bs, &c, &m, &n, &k};
        return cuda_gemm_launch(ctx, K_REF_FP8_BLOCK, grid_for(sm, sat_mul(m, n), REF_THREADS), REF_THREADS,
                                params);
    }
    /* Rows of a / b start 16-byte aligned iff the bases are (pitch k is a multiple of 128). */
    int aligned = ((a | b) & 15u) == 0;
    void* params[] = {&d, &dt, &a, &as, &rs, &cs, &b, &bs, &c, &m, &n, &k, &aligned};
    int64_t tiles = sat_mul((m + 63) / 64, (n + GEMM_BN - 1) / GEMM_BN);
    return cuda_gemm_launch(ctx, K_FP8_BLOCK_BM64, grid_for(sm, tiles, 1), GEMM_THREADS, params);
}

int cuda_gemm_bf16(dsk4j_context* ctx, const gemm_args* g) {
    int reference, sm;
    int rc = info(ctx, &reference, &sm);
    if (rc != DSK4J_OK) return rc;
    if (g->m <= 0 || g->n <= 0) return DSK4J_OK;
    uint64_t d = dptr(g->d), a = dptr(g->a), b = dptr(g->b), c = dptr(g->c);
    int dt = g->d_dtype;
    long long m = g->m, n = g->n, k = g->k;
    if (reference) {
        void* params[] = {&d, &dt, &a, &b, &c, &m, &n, &k};
        return cuda_gemm_launch(ctx, K_REF_BF16, grid_for(sm, sat_mul(m, n), REF_THREADS), REF_THREADS, params);
    }
    /* cp.async needs every row start 16-byte aligned: aligned bases and a pitch of 8k elements. */
    int aligned = ((a | b) & 15u) == 0 && k % 8 == 0;
    void* params[] = {&d, &dt, &a, &b, &c, &m, &n, &k, &aligned};
    int64_t n_tiles = (n + GEMM_BN - 1) / GEMM_BN;
    int64_t tiles128 = sat_mul((m + 127) / 128, n_tiles);
    /* 128-row tiles when they still fill the machine, else 64-row tiles (small m). */
    if (m > 64 && tiles128 >= sm)
        return cuda_gemm_launch(ctx, K_BF16_BM128, grid_for(sm, tiles128, 1), GEMM_THREADS, params);
    return cuda_gemm_launch(ctx, K_BF16_BM64, grid_for(sm, sat_mul((m + 63) / 64, n_tiles), 1), GEMM_THREADS,
                            params);
}

int cuda_gemm_fp8_grouped(dsk4j_context* ctx, const gemm_grouped_args* g) {
    int reference, sm;
    int rc = info(ctx, &reference, &sm);
    if (rc != DSK4J_OK) return rc;
    const gemm_args* p = &g->base;
    if (g->groups <= 0 || p->n <= 0) return DSK4J_OK;
    const int contiguous = g->offsets != NULL;
    /* Rows of d: m (contiguous) or groups * m_max (masked, api_gemm.c puts it in base.m). */
    const int64_t rows = contiguous ? p->m : sat_mul(g->groups, g->m_max);
    if (rows <= 0) return DSK4J_OK;
    uint64_t d = dptr(p->d), a = dptr(p->a), as = dptr(p->a_scale), b = dptr(p->b), bs = dptr(p->b_scale),
             off = dptr(g->offsets), mm = dptr(g->masked_m);
    int dt = p->d_dtype;
    long long groups = g->groups, m = contiguous ? p->m : rows, m_max = contiguous ? 0 : g->m_max, n = p->n,
              k = p->k;
    if (reference) {
        void* params[] = {&d, &dt, &a, &as, &b, &bs, &off, &mm, &groups, &m, &m_max, &n, &k};
        return cuda_gemm_launch(ctx, K_REF_FP8_GROUPED, grid_for(sm, sat_mul(rows, n), REF_THREADS),
                                REF_THREADS, params);
    }
    int aligned = ((a | b) & 15u) == 0;
    void* params[] = {&d, &dt, &a, &as, &b, &bs, &off, &mm, &groups, &m, &m_max, &n, &k, &aligned};
    /* Tiles: at most ceil(m/64) + groups M tiles (contiguous, valid offsets) or
     * groups * ceil(m_max/64) (masked), times the N tiles; with invalid offsets there may be more,
     * which the blocks' tile loop still covers. */
    int64_t m_tiles = contiguous ? (p->m + 63) / 64 + groups : sat_mul(groups, (g->m_max + 63) / 64);
    int64_t tiles = sat_mul(m_tiles, (n + GEMM_BN - 1) / GEMM_BN);
    return cuda_gemm_launch(ctx, K_FP8_GROUPED_BM64, grid_for(sm, tiles, 1), GEMM_THREADS, params);
}
