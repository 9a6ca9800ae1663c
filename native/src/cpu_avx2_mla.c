/* cpu_avx2_mla.c - the mla inner loops (cpu_mla_kernel.h) for AVX2+FMA: 8 lanes; qk 4 keys x 2
 * vectors of rows, pv 4 rows x 2 vectors of columns (12-14 of the 16 ymm registers). */
#include "cpu_mla.h"
#define MK_VL 8
#define MK_NAME(x) avx2_mla_##x
#define MK_QK_RB 2
#define MK_PV_ROWS 4
#define MK_PV_CB 2
#include "cpu_mla_kernel.h"

const mla_kernels cpu_avx2_mla_kernels = {MK_VL, MK_PV_CB * MK_VL, avx2_mla_qk, avx2_mla_softmax, avx2_mla_pv, avx2_mla_widen_bf16,
    avx2_mla_dequant_e4m3};
