/* cpu_avx512_mla.c - the mla inner loops (cpu_mla_kernel.h) for AVX-512: 16 lanes; qk 4 keys x 4
 * vectors of rows, pv 4 rows x 4 vectors of columns (16 accumulators + 5 of the 32 zmm). */
#include "cpu_mla.h"
#define MK_VL 16
#define MK_NAME(x) avx512_mla_##x
#define MK_QK_RB 4
#define MK_PV_ROWS 4
#define MK_PV_CB 4
#include "cpu_mla_kernel.h"

const mla_kernels cpu_avx512_mla_kernels = {MK_VL, MK_PV_CB * MK_VL, avx512_mla_qk, avx512_mla_softmax,
                                            avx512_mla_pv, avx512_mla_widen_bf16,
    avx512_mla_dequant_e4m3};
