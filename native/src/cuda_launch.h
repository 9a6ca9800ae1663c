/* cuda_launch.h - launch helpers shared by the op families' CUDA host files (cuda_gemm.c,
 * cuda_rope.c, cuda_mla.c, cuda_moe.c, cuda_elementwise.c). */
#ifndef DSK4J_CUDA_LAUNCH_H
#define DSK4J_CUDA_LAUNCH_H
#include <stdint.h>

#include "cuda_driver.h"
#include "internal.h"

/* Grid-stride kernels get at most this many blocks per SM. */
#define BLOCKS_PER_SM 64

/* A device pointer as the driver's CUdeviceptr value. */
static inline uint64_t dptr(const void* p) { return (uint64_t)(uintptr_t)p; }

/* ceil(units / per) blocks, at least 1, at most sm_count * BLOCKS_PER_SM (the kernels stride). */
static inline unsigned grid_for(int sm_count, int64_t units, int64_t per) {
    int64_t blocks = units / per + (units % per != 0);
    int64_t cap = (int64_t)(sm_count < 1 ? 1 : sm_count) * BLOCKS_PER_SM;
    if (blocks > cap) blocks = cap;
    if (blocks < 1) blocks = 1;
    return (unsigned)blocks;
}

/* The context's kernel choice (*reference: the plain kernels) and its SM count (at least 1). */
static inline int launch_info(dsk4j_context* ctx, int* reference, int* sm) {
    int wgmma;
    int rc = cuda_gemm_context_info(ctx, reference, sm, &wgmma);
    if (rc == DSK4J_OK && *sm < 1) *sm = 1;
    return rc;
}
#endif
