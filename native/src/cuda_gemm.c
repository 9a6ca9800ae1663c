/* cuda_gemm.c - the gemm ops on the CUDA backend (DESIGN.md 4.2; internal.h cuda_gemm_*):
 * picks the reference (kernels-ptx/src/gemm_reference.cu) or fast kernels
 * (kernels-ptx/src/gemm_fast.cu; gemm_f32.cu for gemm.f32) per DSK4J_CUDA_REFERENCE_KERNELS, sizes the launch and queues
 * it through cuda_backend.c (cuda_gemm_launch). gemm.fp8_block runs the sm_90a TMA + wgmma
 * kernel (kernels-ptx/src/sm90_gemm_fp8_wgmma.cu) when the context has it (cuda_backend.c:
 * sm_90a cubin, DSK4J_CUDA_GEMM_KERNEL != mma) and the operands suit TMA (see wgmma_fits);
 * otherwise the mma.sync kernel. Arguments arrive validated (api_gemm.c);
 * m, n > 0 here, k % 128 == 0 for fp8. The kernels stride over their work, so any grid
 * (1 .. 2^31-1 blocks) is correct; the grids below are sized, then capped. */
#include <stdint.h>

#include "cuda_driver.h"
#include "cuda_launch.h"
#include "internal.h"

/* Must match kernels-ptx/src/gemm_fast.cu (DSK4J_GEMM_THREADS, DSK4J_GEMM_STAGES, 64-byte rows,
 * BN 128) and gemm_reference.cu (any block size). */
#define GEMM_THREADS 256
#define GEMM_STAGES 4
#define GEMM_BN 128
#define REF_THREADS 256
/* Must match kernels-ptx/src/gemm_f32.cu (DSK4J_GEMM_F32_THREADS, 128 x 128 tiles, 8 warps). */
#define F32_THREADS 256
#define F32_TILE 128
#define F32_GEMV_MAX_M 8
#define SMEM_BF16(bm) (GEMM_STAGES * ((bm) + GEMM_BN) * 64)
#define SMEM_FP8(bm) (SMEM_BF16(bm) + 4 * ((bm) + 4) * 4)
/* Must match kernels-ptx/src/sm90_gemm_fp8_wgmma.cu (DSK4J_WG_THREADS, DSK4J_WG_STAGES, 128 x 128
 * tiles, BK 128; SMEM_BYTES = 1024 alignment slack + per stage 32768 bytes of A/B boxes and
 * 528 of scales + two 8-byte mbarriers per stage = 200896). */
#define WG_THREADS 384
#define WG_STAGES 6
#define WG_TILE 128
#define WG_SMEM (1024 + WG_STAGES * (2 * WG_TILE * WG_TILE + (WG_TILE + 4) * 4) + 2 * WG_STAGES * 8)
_Static_assert(WG_SMEM == 200896, "sm90_gemm_fp8_wgmma.cu SMEM_BYTES");

enum {
    K_REF_FP8_BLOCK,
    K_REF_BF16,
    K_REF_FP8_GROUPED,
    K_FP8_BLOCK_BM64,
    K_FP8_GROUPED_BM64,
    K_BF16_BM128,
    K_BF16_BM64,
    K_FP8_BLOCK_SM90,
    K_REF_F32,
    K_F32_TILED,
    K_F32_GEMV,
    K_COUNT
};
_Static_assert(K_COUNT == CUDA_GEMM_KERNELS, "cuda_driver.h CUDA_GEMM_KERNELS");

const char* const cuda_gemm_kernel_names[CUDA_GEMM_KERNELS] = {
    "dsk4j_ref_gemm_fp8_block", "dsk4j_ref_gemm_bf16",  "dsk4j_ref_gemm_fp8_grouped",
    "dsk4j_gemm_fp8_block_bm64", "dsk4j_gemm_fp8_grouped_bm64", "dsk4j_gemm_bf16_bm128",
    "dsk4j_gemm_bf16_bm64", "dsk4j_gemm_fp8_block_sm90", "dsk4j_ref_gemm_f32", "dsk4j_gemm_f32_tiled",
    "dsk4j_gemm_f32_gemv"};
/* (the gemm.f32 kernels use static shared memory only: 8448 bytes for the tiled one) */
const int cuda_gemm_kernel_smem[CUDA_GEMM_KERNELS] = {0, 0, 0, SMEM_FP8(64), SMEM_FP8(64), SMEM_BF16(128),
                                                      SMEM_BF16(64), WG_SMEM, 0, 0, 0};
const int cuda_gemm_kernel_sm90a[CUDA_GEMM_KERNELS] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};

/* a * b for non-negative operands, saturated at INT64_MAX. */
static int64_t sat_mul(int64_t a, int64_t b) {
    if (a == 0 || b == 0) return 0;
    return a > INT64_MAX / b ? INT64_MAX : a * b;
}

/* The sm_90a kernel takes the problem: TMA needs 16-byte aligned bases (the row pitch k is a
 * multiple of 128), k >= 128 (a tensor map dimension must be > 0), and the kernel's 32-bit
 * indices need m, n, k <= 2^31 - 257 and at most 2^31 - 1025 tiles (t + gridDim.x, grid <= #SMs,
 * must not overflow). */
static int wgmma_fits(const gemm_args* g) {
    const int64_t lim = (int64_t)INT32_MAX - 256;
    if ((((uintptr_t)g->a | (uintptr_t)g->b) & 15u) != 0) return 0;
    if (g->k < 128 || g->k > lim || g->m > lim || g->n > lim) return 0;
    return sat_mul((g->m + WG_TILE - 1) / WG_TILE, (g->n + WG_TILE - 1) / WG_TILE) <= (int64_t)INT32_MAX - 1024;
}

/* gemm.fp8_block on the sm_90a kernel: 1 launched (rc in *rc), 0 not applicable (fall back). */
static int fp8_block_wgmma(dsk4j_context* ctx, const gemm_args* g, int sm, int* rc) {
    cuda_tensor_map ta, tb;
    if (!wgmma_fits(g)) return 0;
    /* wgmma_fits checked every documented encode rule, so a failure here is a bug: report it
     * rather than fall back silently (that would hide the wgmma kernel from gpu_check). */
    int er = cuda_gemm_tensor_map(ctx, &ta, g->a, g->k, g->m, WG_TILE, WG_TILE);
    if (er == 0) er = cuda_gemm_tensor_map(ctx, &tb, g->b, g->k, g->n, WG_TILE, WG_TILE);
    if (er != 0) {
        *rc = er > 0 ? cuda_driver_fail(DSK4J_ERR_DEVICE, (CUresult)er, "gemm.fp8_block: cuTensorMapEncodeTiled")
                     : dsk4j_fail(DSK4J_ERR_DEVICE, "gemm.fp8_block: cuTensorMapEncodeTiled unavailable or context error");
        return 1;
    }
    uint64_t d = dptr(g->d), as = dptr(g->a_scale), bs = dptr(g->b_scale), c = dptr(g->c);
    int dt = g->d_dtype, m = (int)g->m, n = (int)g->n, k = (int)g->k;
    long long rs = g->a_scale_rs, cs = g->a_scale_cs;
    void* params[] = {&ta, &tb, &d, &dt, &as, &rs, &cs, &bs, &c, &m, &n, &k};
    int64_t tiles = sat_mul((g->m + WG_TILE - 1) / WG_TILE, (g->n + WG_TILE - 1) / WG_TILE);
    /* persistent: at most one CTA per SM, and <= 1024 as wgmma_fits assumes */
    const int64_t cap = sm < 1024 ? sm : 1024;
    unsigned grid = (unsigned)(tiles < cap ? tiles : cap);
    *rc = cuda_gemm_launch(ctx, K_FP8_BLOCK_SM90, grid, WG_THREADS, params);
    return 1;
}

int cuda_gemm_fp8_block(dsk4j_context* ctx, const gemm_args* g) {
    int reference, sm, wgmma;
    int rc = cuda_gemm_context_info(ctx, &reference, &sm, &wgmma);
    if (rc != DSK4J_OK) return rc;
    if (sm < 1) sm = 1;
    if (g->m <= 0 || g->n <= 0) return DSK4J_OK;
    if (!reference && wgmma && fp8_block_wgmma(ctx, g, sm, &rc)) return rc;
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
    int rc = launch_info(ctx, &reference, &sm);
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
    int rc = launch_info(ctx, &reference, &sm);
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

/* gemm.f32: the reference kernel, else the warp-per-row GEMV for m <= 8 (decode: streams b once),
 * else the 128 x 128 tiled kernel. Exact f32 products everywhere (fmaf; never tf32). */
int cuda_gemm_f32(dsk4j_context* ctx, const gemm_args* g) {
    int reference, sm;
    int rc = launch_info(ctx, &reference, &sm);
    if (rc != DSK4J_OK) return rc;
    if (g->m <= 0 || g->n <= 0) return DSK4J_OK;
    uint64_t d = dptr(g->d), a = dptr(g->a), b = dptr(g->b), c = dptr(g->c);
    int bf16 = g->b_dtype == DSK4J_DTYPE_BF16;
    long long m = g->m, n = g->n, k = g->k;
    void* params[] = {&d, &a, &b, &bf16, &c, &m, &n, &k};
    if (reference)
        return cuda_gemm_launch(ctx, K_REF_F32, grid_for(sm, sat_mul(m, n), REF_THREADS), REF_THREADS, params);
    if (m <= F32_GEMV_MAX_M)
        return cuda_gemm_launch(ctx, K_F32_GEMV, grid_for(sm, n, F32_THREADS / 32), F32_THREADS, params);
    int64_t tiles = sat_mul((m + F32_TILE - 1) / F32_TILE, (n + F32_TILE - 1) / F32_TILE);
    return cuda_gemm_launch(ctx, K_F32_TILED, grid_for(sm, tiles, 1), F32_THREADS, params);
}
