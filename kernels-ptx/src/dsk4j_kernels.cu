// dsk4j_kernels.cu - the one translation unit that build.sh compiles: every kernel of dsk4j
// in one module per target (compute_80 PTX, sm_89 and sm_90a cubins).
// Kernels (extern "C", looked up by name in native/src/cuda_backend.c):
//   fp8_reference.cu: dsk4j_ref_fp8_cast, dsk4j_ref_fp8_act_quant, dsk4j_ref_fp8_weight_quant,
//                     dsk4j_ref_fp8_weight_dequant
//   fp8_quant.cu:     dsk4j_fp8_cast, dsk4j_fp8_act_quant, dsk4j_fp8_weight_quant,
//                     dsk4j_fp8_weight_dequant
//   gemm_reference.cu: dsk4j_ref_gemm_fp8_block, dsk4j_ref_gemm_bf16, dsk4j_ref_gemm_fp8_grouped,
//                     dsk4j_ref_gemm_f32
//   gemm_f32.cu:      dsk4j_gemm_f32_tiled, dsk4j_gemm_f32_gemv (exact f32 fmaf, no tensor cores)
//   gemm_fast.cu:     dsk4j_gemm_fp8_block_bm64, dsk4j_gemm_fp8_grouped_bm64,
//                     dsk4j_gemm_bf16_bm{128,64}
//   sm90_gemm_fp8_wgmma.cu: dsk4j_gemm_fp8_block_sm90 (TMA + wgmma; a body only in the sm_90a
//                     cubin, a trap elsewhere)
//   rope_reference.cu: dsk4j_ref_rope_apply
//   rope.cu:          dsk4j_rope_apply
//   mla_reference.cu: dsk4j_ref_mla_cache_append, dsk4j_ref_mla_decode, dsk4j_ref_mla_prefill,
//                     dsk4j_ref_mla_absorb
//   mla_decode.cu:    dsk4j_mla_decode_mma_{bm64_s3,bm64_s2,bm32_s1} (split-KV, mma.sync bf16),
//                     dsk4j_mla_decode_combine, dsk4j_mla_decode_wgmma_bm64_s3 (S by wgmma; a body
//                     only in the sm_90a cubin, a trap elsewhere)
//   mla_prefill.cu:   dsk4j_mla_prefill_mma (qk 192 / v 128, mma.sync bf16, FlashAttention-2 style)
//   moe_reference.cu: dsk4j_ref_moe_gate, dsk4j_ref_moe_dispatch, dsk4j_ref_moe_gather,
//                     dsk4j_ref_moe_combine, dsk4j_ref_moe_silu_quant, dsk4j_ref_moe_bias_update
//   moe.cu:           dsk4j_moe_logits_lanes, dsk4j_moe_logits_tiled, dsk4j_moe_route,
//                     dsk4j_moe_dispatch, dsk4j_moe_gather, dsk4j_moe_combine, dsk4j_moe_silu_quant,
//                     dsk4j_moe_bias_update
//   elementwise.cu:   dsk4j_ref_rmsnorm, dsk4j_rmsnorm, dsk4j_ew_add, dsk4j_ew_silu_mul, dsk4j_ew_embed,
//                     dsk4j_ew_copy_columns (the maps: reference and fast alike; gather_rows runs dsk4j_moe_gather)
#include "fp8_reference.cu"
#include "fp8_quant.cu"
#include "gemm_reference.cu"
#include "gemm_fast.cu"
#include "gemm_f32.cu"
#include "sm90_gemm_fp8_wgmma.cu"
#include "rope_reference.cu"
#include "rope.cu"
#include "mla_reference.cu"
#include "mla_decode.cu"
#include "mla_decode_sm90.cu"
#include "mla_prefill.cu"
#include "moe_reference.cu"
#include "moe.cu"
#include "elementwise.cu"
