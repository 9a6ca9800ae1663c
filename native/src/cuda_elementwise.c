/* cuda_elementwise.c - the elementwise ops (dsk4j.h elementwise.*; internal.h cuda_rmsnorm ...) on the
 * CUDA backend: picks the kernel of kernels-ptx/src/elementwise.cu (rmsnorm: the reference, one
 * thread per row, or the fast one, a block per row, per DSK4J_CUDA_REFERENCE_KERNELS; the maps have
 * one kernel that serves both modes), sizes the launch and queues it through cuda_backend.c
 * (cuda_elementwise_launch). Arguments arrive validated (api_elementwise.c): every pointer a device
 * address inside a live allocation of ctx, sizes consistent, the work non-empty. ids / idx are device
 * data the host did not read: the kernels write a zero row for an entry out of range. */
#include <stdint.h>

#include "cuda_driver.h"
#include "cuda_launch.h"
#include "internal.h"

/* Must match kernels-ptx/src/elementwise.cu (DSK4J_EW_RMS_THREADS); the other kernels take any block. */
#define RMS_THREADS 256
#define REF_RMS_THREADS 64
#define THREADS 256

enum { K_REF_RMSNORM, K_RMSNORM, K_ADD, K_SILU_MUL, K_EMBED, K_COPY_COLUMNS, K_COUNT };
_Static_assert(K_COUNT == CUDA_ELEMENTWISE_KERNELS, "cuda_driver.h CUDA_ELEMENTWISE_KERNELS");

const char* const cuda_elementwise_kernel_names[CUDA_ELEMENTWISE_KERNELS] = {
    "dsk4j_ref_rmsnorm", "dsk4j_rmsnorm",        "dsk4j_ew_add",        "dsk4j_ew_silu_mul",
    "dsk4j_ew_embed",    "dsk4j_ew_copy_columns"};

int cuda_rmsnorm(dsk4j_context* ctx, const rmsnorm_args* a) {
    int reference, sm;
    int rc = launch_info(ctx, &reference, &sm);
    if (rc != DSK4J_OK) return rc;
    if (a->rows <= 0) return DSK4J_OK;
    uint64_t y = dptr(a->y), x = dptr(a->x), w = dptr(a->w);
    int dt = a->dtype;
    long long rows = a->rows, d = a->d, ldx = a->ldx;
    double eps = a->eps;
    void* p[] = {&y, &x, &w, &dt, &rows, &d, &ldx, &eps};
    if (reference)
        return cuda_elementwise_launch(ctx, K_REF_RMSNORM, grid_for(sm, a->rows, REF_RMS_THREADS), REF_RMS_THREADS, p);
    return cuda_elementwise_launch(ctx, K_RMSNORM, grid_for(sm, a->rows, 1), RMS_THREADS, p);
}

/* add / silu_mul: one kernel each (reference and fast alike). */
static int binary(dsk4j_context* ctx, int kernel, void* y, const void* p, const void* q, int32_t dtype, int64_t n) {
    int reference, sm;
    int rc = launch_info(ctx, &reference, &sm);
    if (rc != DSK4J_OK) return rc;
    if (n <= 0) return DSK4J_OK;
    uint64_t py = dptr(y), pp = dptr(p), pq = dptr(q);
    int dt = dtype;
    long long N = n;
    void* params[] = {&py, &pp, &pq, &dt, &N};
    return cuda_elementwise_launch(ctx, kernel, grid_for(sm, n, THREADS), THREADS, params);
}

int cuda_add(dsk4j_context* ctx, void* y, const void* a, const void* b, int32_t dtype, int64_t n) {
    return binary(ctx, K_ADD, y, a, b, dtype, n);
}

int cuda_silu_mul(dsk4j_context* ctx, void* y, const void* g, const void* u, int32_t dtype, int64_t n) {
    return binary(ctx, K_SILU_MUL, y, g, u, dtype, n);
}

int cuda_embed(dsk4j_context* ctx, void* y, int32_t y_dtype, const void* table, int32_t table_dtype, const int32_t* ids,
               int64_t tokens, int64_t vocab, int64_t d) {
    int reference, sm;
    int rc = launch_info(ctx, &reference, &sm);
    if (rc != DSK4J_OK) return rc;
    if (tokens <= 0 || d <= 0) return DSK4J_OK;
    uint64_t py = dptr(y), pt = dptr(table), pi = dptr(ids);
    int yd = y_dtype, td = table_dtype;
    long long T = tokens, V = vocab, D = d;
    void* p[] = {&py, &yd, &pt, &td, &pi, &T, &V, &D};
    return cuda_elementwise_launch(ctx, K_EMBED, grid_for(sm, tokens * d, THREADS), THREADS, p);
}

int cuda_copy_columns(dsk4j_context* ctx, void* dst, const void* src, size_t elem, int64_t rows, int64_t dst_cols,
                      int64_t dst_col0, int64_t src_cols, int64_t src_col0, int64_t width) {
    int reference, sm;
    int rc = launch_info(ctx, &reference, &sm);
    if (rc != DSK4J_OK) return rc;
    if (rows <= 0 || width <= 0) return DSK4J_OK;
    if (elem != 1 && elem != 2 && elem != 4)
        return dsk4j_fail(DSK4J_ERR_INTERNAL, "cuda copy_columns: element size %zu", elem);
    uint64_t pd = dptr(dst), ps = dptr(src);
    int es = (int)elem;
    long long R = rows, dc = dst_cols, d0 = dst_col0, sc = src_cols, s0 = src_col0, W = width;
    void* p[] = {&pd, &ps, &es, &R, &dc, &d0, &sc, &s0, &W};
    return cuda_elementwise_launch(ctx, K_COPY_COLUMNS, grid_for(sm, rows * width, THREADS), THREADS, p);
}
