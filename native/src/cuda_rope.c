/* cuda_rope.c - rope.apply on the CUDA backend (DESIGN.md 4.3; internal.h cuda_rope_apply): picks
 * the reference (kernels-ptx/src/rope_reference.cu) or the fast kernel (kernels-ptx/src/rope.cu) per
 * DSK4J_CUDA_REFERENCE_KERNELS, sizes the launch and queues it through cuda_backend.c
 * (cuda_rope_launch). Arguments arrive validated (api_rope.c), positions checked on the host;
 * tokens, heads > 0 here. The kernels stride over their work, so any grid is correct.
 * rope.yarn_table needs no kernel: api_rope.c computes it on the host and copies it. */
#include <stdint.h>

#include "cuda_driver.h"
#include "cuda_launch.h"
#include "internal.h"

/* Must match kernels-ptx/src/rope.cu (DSK4J_ROPE_THREADS); the reference takes any block size. */
#define ROPE_THREADS 256

enum { K_REF_ROPE, K_ROPE, K_COUNT };
_Static_assert(K_COUNT == CUDA_ROPE_KERNELS, "cuda_driver.h CUDA_ROPE_KERNELS");

const char* const cuda_rope_kernel_names[CUDA_ROPE_KERNELS] = {"dsk4j_ref_rope_apply", "dsk4j_rope_apply"};

int cuda_rope_apply(dsk4j_context* ctx, const rope_args* a) {
    int reference, sm, wgmma;
    int rc = cuda_gemm_context_info(ctx, &reference, &sm, &wgmma);
    if (rc != DSK4J_OK) return rc;
    if (a->tokens <= 0 || a->heads <= 0) return DSK4J_OK;
    uint64_t y = (uint64_t)(uintptr_t)a->y, x = (uint64_t)(uintptr_t)a->x, pos = (uint64_t)(uintptr_t)a->positions,
             ct = (uint64_t)(uintptr_t)a->cos_table, st = (uint64_t)(uintptr_t)a->sin_table;
    int dt = a->dtype, layout = a->layout;
    long long tokens = a->tokens, heads = a->heads, dim = a->dim, rows = a->max_seq_len;
    const int64_t pairs = a->tokens * a->heads * (a->dim / 2);
    if (reference) {
        void* params[] = {&y, &x, &dt, &pos, &ct, &st, &tokens, &heads, &dim, &rows, &layout};
        return cuda_rope_launch(ctx, K_REF_ROPE, grid_for(sm, pairs, ROPE_THREADS), ROPE_THREADS, params);
    }
    int vec = ((x | y | ct | st) & 15u) == 0 && (layout == DSK4J_ROPE_NEOX ? dim % 16 == 0 : dim % 8 == 0);
    void* params[] = {&y, &x, &dt, &pos, &ct, &st, &tokens, &heads, &dim, &rows, &layout, &vec};
    return cuda_rope_launch(ctx, K_ROPE, grid_for(sm, vec ? pairs / 4 : pairs, ROPE_THREADS), ROPE_THREADS, params);
}
