/*
 * dsk4j.h - the C ABI of dsk4j (DESIGN.md section 2: contract).
 *
 * Rules
 *  - Every function returns int: DSK4J_OK (0) or a negative DSK4J_ERR_* code, and leaves a
 *    thread-local message readable with dsk4j_last_error(). The one exception is
 *    dsk4j_last_error itself, which returns that message.
 *  - Native code validates everything it is given and never aborts, prints or exits.
 *  - Argument order: the context, then outputs, then inputs, then parameters.
 *  - Every buffer is passed as (pointer, capacity in bytes) so that the library can prove
 *    each access in bounds. Tensors are dense, row-major and contiguous.
 *  - On a "cpu" context pointers are host memory. On a "cuda:N" context they are device
 *    addresses inside buffers returned by dsk4j_mem_alloc on that same context.
 *  - The library keeps no pointer past the call that received it, except device buffers it
 *    allocated itself and hands back.
 */
#ifndef DSK4J_H
#define DSK4J_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the exported entry points when the library itself is compiled. */
#if defined(DSK4J_BUILDING)
#define DSK4J_EXPORT __attribute__((visibility("default")))
#else
#define DSK4J_EXPORT
#endif

#define DSK4J_VERSION_MAJOR 0
#define DSK4J_VERSION_MINOR 1
#define DSK4J_VERSION_PATCH 0

/* ---- status codes ---- */
#define DSK4J_OK                    0
#define DSK4J_ERR_INVALID_ARGUMENT (-1) /* a null, negative, inconsistent or too small argument */
#define DSK4J_ERR_UNSUPPORTED      (-2) /* a valid request this build or backend does not do */
#define DSK4J_ERR_UNAVAILABLE      (-3) /* backend absent: no driver, no device, no kernels */
#define DSK4J_ERR_OUT_OF_MEMORY    (-4)
#define DSK4J_ERR_DEVICE           (-5) /* a CUDA driver call failed; the message has its text */
#define DSK4J_ERR_INTERNAL         (-6)

/* ---- element types (codes are contract) ---- */
#define DSK4J_DTYPE_F32  0
#define DSK4J_DTYPE_BF16 1
#define DSK4J_DTYPE_F16  2
#define DSK4J_DTYPE_E4M3 3 /* float8 e4m3fn: no inf, max 448, NaN 0x7f/0xff */
#define DSK4J_DTYPE_E5M2 4 /* float8 e5m2: IEEE-like, max 57344 */
#define DSK4J_DTYPE_I32  5

/* ---- context options (dsk4j_context_open flags) ---- */
#define DSK4J_CPU_FORCE_PORTABLE 1 /* cpu: use the portable C path even where AVX2+FMA exist */
#define DSK4J_CUDA_REFERENCE_KERNELS 2 /* cuda: run the plain reference kernels, not the fast ones */
#define DSK4J_CPU_MAX_AVX2 4 /* cpu: use at most the AVX2+FMA path even where AVX-512 exists */
#define DSK4J_CPU_MAX_AVX512 8 /* cpu: use at most AVX-512, no AMX tiles even where they exist */

/* ---- memcpy directions ---- */
#define DSK4J_COPY_HOST_TO_DEVICE   0
#define DSK4J_COPY_DEVICE_TO_HOST   1
#define DSK4J_COPY_DEVICE_TO_DEVICE 2

/* ---- fp8 quantization options (flags of act_quant / weight_quant) ---- */
#define DSK4J_SCALE_UE8M0    1 /* round each scale up to a power of two (exact, from the bits) */
#define DSK4J_SCALE_COL_MAJOR 2 /* act_quant: scale stored [K/group, scale_ld], token-major */

typedef struct dsk4j_context dsk4j_context;

/* The calling thread's message for the last failed call ("" if none). Never NULL. */
DSK4J_EXPORT const char* dsk4j_last_error(void);

/* Library version. */
DSK4J_EXPORT int dsk4j_version(int32_t* out_major, int32_t* out_minor, int32_t* out_patch);

/* Opens a backend: device "cpu" or "cuda:N". num_threads: cpu worker threads, 0 = one per
 * online core (ignored by cuda). flags: DSK4J_CPU_FORCE_PORTABLE, DSK4J_CPU_MAX_AVX2,
 * DSK4J_CPU_MAX_AVX512, DSK4J_CUDA_REFERENCE_KERNELS. The cpu path is the best the CPU has
 * (AVX-512 with AMX-BF16 tiles for the GEMMs, AVX-512, AVX2+FMA, portable C) unless a flag
 * caps it. A missing CUDA driver or
 * device gives DSK4J_ERR_UNAVAILABLE with the driver's own message. */
DSK4J_EXPORT int dsk4j_context_open(dsk4j_context** out_ctx, const char* device, int32_t num_threads,
                       int32_t flags);
/* Closes a context (waits for its work; frees the device buffers it still owns). NULL is ok. */
DSK4J_EXPORT int dsk4j_context_close(dsk4j_context* ctx);
/* A one-line description, e.g. "cpu: 2 threads, avx2+fma" or "cuda:0: NVIDIA H200, sm_90,
 * cubin sm_90a". Writes at most buf_bytes bytes including the terminating NUL. */
DSK4J_EXPORT int dsk4j_context_describe(char* buf, int64_t buf_bytes, dsk4j_context* ctx);

/* Number of CUDA devices; DSK4J_ERR_UNAVAILABLE with the driver's message if there is no
 * usable driver. */
DSK4J_EXPORT int dsk4j_cuda_device_count(int32_t* out_count);

/* Memory of a context: device memory on cuda, 64-byte aligned host memory on cpu. */
DSK4J_EXPORT int dsk4j_mem_alloc(void** out_ptr, dsk4j_context* ctx, int64_t bytes);
DSK4J_EXPORT int dsk4j_mem_free(dsk4j_context* ctx, void* ptr);
/* Copies bytes; direction DSK4J_COPY_*. Synchronous with respect to the host. */
DSK4J_EXPORT int dsk4j_memcpy(dsk4j_context* ctx, void* dst, int64_t dst_bytes, const void* src,
                 int64_t src_bytes, int64_t bytes, int32_t direction);
/* Sets bytes of a context buffer to value (used to poison outputs in tests). */
DSK4J_EXPORT int dsk4j_memset(dsk4j_context* ctx, void* dst, int64_t dst_bytes, int32_t value, int64_t bytes);
/* Waits for all work queued on the context. */
DSK4J_EXPORT int dsk4j_synchronize(dsk4j_context* ctx);

/* ---- fp8 (DESIGN.md 3 and 4.1) ---- */

/* fp8.cast: y[n] = convert(x[n]).
 * {f32,bf16,f16} -> {e4m3,e5m2}: round to nearest even, saturate to +-max (Inf too), NaN -> 0x7f.
 * {e4m3,e5m2} -> {f32,bf16,f16}: exact (bf16 output rounds to nearest even; NaN stays NaN). */
DSK4J_EXPORT int dsk4j_fp8_cast(dsk4j_context* ctx, void* y, int64_t y_bytes, int32_t y_dtype,
                   const void* x, int64_t x_bytes, int32_t x_dtype, int64_t n);

/* fp8.act_quant: x[rows,k] f32|bf16 -> y[rows,k] e4m3, scale f32.
 * Per group g of group_size (128) contiguous elements of a row:
 *   amax = max(max|x| (NaN ignored), 1e-4); s = amax/448 (ue8m0: next power of two >= s);
 *   y = e4m3(x / s) (true division).
 * scale layout: row-major [rows, k/group] with row stride scale_ld (0 = k/group), or with
 * DSK4J_SCALE_COL_MAJOR [k/group, scale_ld] (0 = rows; scale_ld >= rows allows padding). */
DSK4J_EXPORT int dsk4j_fp8_act_quant(dsk4j_context* ctx, void* y, int64_t y_bytes, float* scale,
                        int64_t scale_bytes, const void* x, int64_t x_bytes, int32_t x_dtype,
                        int64_t rows, int64_t k, int32_t group_size, int32_t flags,
                        int64_t scale_ld);

/* fp8.weight_quant: w[n,k] f32|bf16 -> y[n,k] e4m3, scale_inv[ceil(n/block), ceil(k/block)]
 * f32, per block (partial edge blocks): amax = max(max|w| (NaN ignored), 1e-4),
 * scale_inv = amax/448 (ue8m0 flag: next power of two), y = e4m3(w / scale_inv). */
DSK4J_EXPORT int dsk4j_fp8_weight_quant(dsk4j_context* ctx, void* y, int64_t y_bytes, float* scale_inv,
                           int64_t scale_inv_bytes, const void* w, int64_t w_bytes,
                           int32_t w_dtype, int64_t n, int64_t k, int32_t block, int32_t flags);

/* fp8.weight_dequant: w[n,k] e4m3, scale_inv[ceil(n/block), ceil(k/block)] f32 ->
 * y[n,k] f32|bf16 = float(w) * scale_inv[i/block, j/block] (f32 product, then rounded). */
DSK4J_EXPORT int dsk4j_fp8_weight_dequant(dsk4j_context* ctx, void* y, int64_t y_bytes, int32_t y_dtype,
                             const void* w, int64_t w_bytes, const float* scale_inv,
                             int64_t scale_inv_bytes, int64_t n, int64_t k, int32_t block);

/* ---- gemm (DESIGN.md 4.2): D = A * B^T ("NT"), f32 accumulation ---- */

/* gemm.fp8_block: a e4m3 [m,k] with a_scale f32 [m, k/128] (row stride a_scale_ld, 0 = k/128;
 * or with DSK4J_SCALE_COL_MAJOR [k/128, a_scale_ld], 0 = m), b e4m3 [n,k] with b_scale f32
 * [ceil(n/128), k/128]; k % 128 == 0. For each 128-wide K block kb (the "promotion"):
 *   acc[i,j] += (sum_{t in kb} a[i,t] * b[j,t]) * a_scale[i,kb] * b_scale[j/128,kb]
 * d[m,n] f32|bf16 = acc (+ c[m,n] f32 when c is not NULL). */
DSK4J_EXPORT int dsk4j_gemm_fp8_block(dsk4j_context* ctx, void* d, int64_t d_bytes, int32_t d_dtype,
                                      const void* a, int64_t a_bytes, const float* a_scale,
                                      int64_t a_scale_bytes, const void* b, int64_t b_bytes,
                                      const float* b_scale, int64_t b_scale_bytes, const float* c,
                                      int64_t c_bytes, int64_t m, int64_t n, int64_t k, int32_t flags,
                                      int64_t a_scale_ld);

/* gemm.bf16: a bf16 [m,k], b bf16 [n,k]; d[m,n] f32|bf16 = sum_t a[i,t] * b[j,t] (+ c[m,n] f32
 * when c is not NULL), f32 accumulation. */
DSK4J_EXPORT int dsk4j_gemm_bf16(dsk4j_context* ctx, void* d, int64_t d_bytes, int32_t d_dtype,
                                 const void* a, int64_t a_bytes, const void* b, int64_t b_bytes,
                                 const float* c, int64_t c_bytes, int64_t m, int64_t n, int64_t k);

/* gemm.f32 (the model's dequant mode and the LM head): a f32 [m,k], b [n,k] f32 or bf16 (b_dtype
 * DSK4J_DTYPE_F32 | DSK4J_DTYPE_BF16: weights dequantized to bf16), d f32 [m,n]:
 *   d[i,j] = sum_{t<k} a[i,t] * b[j,t] (+ c[i,j] when c is not NULL),
 * exact f32 products (bf16 widened exactly; no tf32), f32 accumulation, any m, n, k >= 0 (k = 0:
 * d = c or 0). c f32 [m,n] may be d itself (in place); d must not overlap a or b. The cpu
 * backend sums K in a fixed order per element: the same bits on every call and thread count. */
DSK4J_EXPORT int dsk4j_gemm_f32(dsk4j_context* ctx, float* d, int64_t d_bytes, const float* a, int64_t a_bytes,
                                const void* b, int64_t b_bytes, int32_t b_dtype, const float* c, int64_t c_bytes,
                                int64_t m, int64_t n, int64_t k);

/* gemm.fp8_grouped_contiguous (MoE prefill): rows group_offsets[g] .. group_offsets[g+1]-1 of a
 * belong to expert g (group_offsets i32 [groups+1], non-decreasing, from >= 0 to <= m; rows
 * outside every group are not written; 128-row aligned, padded groups are just offsets).
 * a e4m3 [m,k] + a_scale f32 [m, k/128]; b e4m3 [groups,n,k] + b_scale f32
 * [groups, ceil(n/128), k/128]; d[m,n] f32|bf16 as gemm.fp8_block with expert g's b.
 * The cpu backend rejects bad offsets; on cuda (offsets in device memory) they are clamped. */
DSK4J_EXPORT int dsk4j_gemm_fp8_grouped_contiguous(
    dsk4j_context* ctx, void* d, int64_t d_bytes, int32_t d_dtype, const void* a, int64_t a_bytes,
    const float* a_scale, int64_t a_scale_bytes, const void* b, int64_t b_bytes, const float* b_scale,
    int64_t b_scale_bytes, const int32_t* group_offsets, int64_t group_offsets_bytes, int64_t groups,
    int64_t m, int64_t n, int64_t k);

/* gemm.fp8_grouped_masked (MoE decode): a e4m3 [groups, m_max, k] + a_scale f32
 * [groups, m_max, k/128]; b, b_scale as in grouped_contiguous; masked_m i32 [groups]
 * (0 <= masked_m[g] <= m_max): d[g, i, :] for i < masked_m[g] as gemm.fp8_block, rows at and past
 * masked_m[g] are not written. d f32|bf16 [groups, m_max, n]. The cpu backend rejects bad
 * counts; on cuda they are clamped to [0, m_max]. */
DSK4J_EXPORT int dsk4j_gemm_fp8_grouped_masked(
    dsk4j_context* ctx, void* d, int64_t d_bytes, int32_t d_dtype, const void* a, int64_t a_bytes,
    const float* a_scale, int64_t a_scale_bytes, const void* b, int64_t b_bytes, const float* b_scale,
    int64_t b_scale_bytes, const int32_t* masked_m, int64_t masked_m_bytes, int64_t groups,
    int64_t m_max, int64_t n, int64_t k);

/* ---- rope (DESIGN.md 4.3): rotary position embedding with YaRN scaling ---- */

/* rope.apply layouts (codes are contract) */
#define DSK4J_ROPE_INTERLEAVED 0 /* pairs (x[2j], x[2j+1]): the DeepSeek-V3 reference's layout */
#define DSK4J_ROPE_NEOX        1 /* pairs (x[j], x[j + dim/2]) */

/* rope.yarn_table: cos_table, sin_table f32 [max_seq_len, dim/2] (row t, column i), computed in
 * double and rounded once to f32:
 *   f_i = theta^(-2i/dim), i < dim/2; if max_seq_len > original_seq_len (YaRN):
 *     cd(r) = dim * ln(original_seq_len / (2 pi r)) / (2 ln theta),
 *     low = max(floor(cd(beta_fast)), 0), high = min(ceil(cd(beta_slow)), dim - 1)
 *     (high += 0.001 when equal), ramp_i = clamp((i - low) / (high - low), 0, 1),
 *     f_i = f_i / factor * ramp_i + f_i * (1 - ramp_i);
 *   cos_table[t, i] = (float)cos(t * f_i), sin_table[t, i] = (float)sin(t * f_i) (no mscale).
 * dim even in [2, 1024]; theta > 1; factor >= 1; original_seq_len >= 1; 0 <= max_seq_len <= 2^31;
 * beta_fast, beta_slow > 0. On a cuda context the tables are device buffers: they are computed
 * on the host (the same bits as on the cpu) and copied. No state is kept: callers cache tables. */
DSK4J_EXPORT int dsk4j_rope_yarn_table(dsk4j_context* ctx, float* cos_table, int64_t cos_bytes,
                                       float* sin_table, int64_t sin_bytes, int64_t dim, double theta,
                                       double factor, int64_t original_seq_len, int64_t max_seq_len,
                                       double beta_fast, double beta_slow);

/* rope.apply: x[tokens, heads, dim] f32|bf16 (dtype; k_pe is heads = 1) -> y, same dtype and
 * shape. Token t is rotated by row p = positions[t] (i32 [tokens]; 0 <= p < max_seq_len, else an
 * error naming 'positions'; on cuda they are copied to the host and checked first) of the tables
 * cos_table, sin_table f32 [max_seq_len, dim/2] (as rope.yarn_table writes them). For each pair
 * (x0, x1) of the layout, j < dim/2, c = cos_table[p, j], s = sin_table[p, j], in f32 (bf16
 * inputs widened exactly, outputs rounded to nearest even), with exactly these roundings on
 * every backend:
 *   y0 = fma(x0, c, -(x1 * s)),  y1 = fma(x1, c, x0 * s)
 * In place when y == x (exactly); otherwise y must not overlap x. layout: DSK4J_ROPE_*. */
DSK4J_EXPORT int dsk4j_rope_apply(dsk4j_context* ctx, void* y, int64_t y_bytes, const void* x,
                                  int64_t x_bytes, int32_t dtype, const int32_t* positions,
                                  int64_t positions_bytes, const float* cos_table, int64_t cos_bytes,
                                  const float* sin_table, int64_t sin_bytes, int64_t tokens,
                                  int64_t heads, int64_t dim, int64_t max_seq_len, int32_t layout);

/* ---- mla (DESIGN.md 4.4): Multi-head Latent Attention ---- */

/* Dimensions fixed by the cache format (DeepSeek-V2/V3: kv_lora_rank 512, qk_rope_head_dim 64). */
#define DSK4J_MLA_LATENT      512 /* latent values per token (kv_norm(c_kv)) */
#define DSK4J_MLA_ROPE        64  /* roped key values per token (k_pe) */
#define DSK4J_MLA_PAGE_TOKENS 64  /* tokens per cache page */

/* Latent cache formats (codes are contract). One token is `token_bytes` bytes; a page is
 * DSK4J_MLA_PAGE_TOKENS tokens back to back (page bytes = 64 * token_bytes), slot s of page g
 * at byte offset (g * 64 + s) * token_bytes of the pool; every field little-endian.
 *  F32  (2304 B): f32 latent[512], then f32 rope[64].                      Exact.
 *  BF16 (1152 B): bf16 latent[512], then bf16 rope[64] (rounded to nearest even from f32
 *                 input, copied from bf16 input).
 *  FP8  (656 B):  e4m3 latent[512], then f32 scale[4] (scale j covers latent values
 *                 128j .. 128j+127), then bf16 rope[64]. Per group of 128 exactly as
 *                 fp8.act_quant with DSK4J_SCALE_UE8M0: amax = max(max|x| (NaN ignored), 1e-4),
 *                 scale = the smallest power of two >= amax / 448, e4m3 = cast(x / scale) (true
 *                 division, round to nearest even, saturating). The value read back is
 *                 float(e4m3) * scale (exact in f32). */
#define DSK4J_MLA_CACHE_F32  0
#define DSK4J_MLA_CACHE_BF16 1
#define DSK4J_MLA_CACHE_FP8  2

/* mla.* flags */
#define DSK4J_MLA_CAUSAL 1 /* decode: causal within the last Sq positions; prefill: causal */

/* Bytes per token of a cache format (2304, 1152, 656); DSK4J_ERR_INVALID_ARGUMENT for an unknown
 * format. Needs no context. */
DSK4J_EXPORT int dsk4j_mla_cache_token_bytes(int64_t* out_bytes, int32_t format);

/* mla.cache_append: writes `tokens` tokens into the paged cache.
 *  cache       pool of num_pages pages in `format` (cache_bytes >= num_pages * 64 * token_bytes).
 *  kv_latent   [tokens, 512] in dtype (f32|bf16): kv_norm(c_kv), already normalized.
 *  k_pe        [tokens, 64] in dtype: the roped k_pe.
 *  seq_ids     i32 [tokens]: the sequence (row of block_table) of each token, in [0, batch).
 *  positions   i32 [tokens]: the position of each token in its sequence, in
 *              [0, max_pages * 64).
 *  block_table i32 [batch, max_pages]: page index of a sequence's page; token at position p of
 *              sequence b goes to page block_table[b, p / 64], slot p % 64. The page index used
 *              must be in [0, num_pages) (entries no token uses are not read).
 * Every seq_id, position and used page index is checked before anything is written: a bad one is
 * DSK4J_ERR_INVALID_ARGUMENT naming the argument and the token, and nothing is written (on cuda
 * seq_ids, positions and block_table are copied to the host for this check). Two tokens of one
 * call that land in the same slot leave that slot holding one of them, unspecified which.
 * Sequences may share pages (prefix sharing); only the written slots change. */
DSK4J_EXPORT int dsk4j_mla_cache_append(dsk4j_context* ctx, void* cache, int64_t cache_bytes, int32_t format,
                                        const void* kv_latent, int64_t kv_latent_bytes, const void* k_pe,
                                        int64_t k_pe_bytes, int32_t dtype, const int32_t* seq_ids,
                                        int64_t seq_ids_bytes, const int32_t* positions, int64_t positions_bytes,
                                        const int32_t* block_table, int64_t block_table_bytes, int64_t batch,
                                        int64_t max_pages, int64_t num_pages, int64_t tokens);

/* mla.decode (absorbed, MQA form: one KV head of 576 = latent 512 | rope 64 shared by all heads,
 * V = the latent 512):
 *  o_latent    [batch, sq, heads, 512] in dtype (f32|bf16; bf16 rounded to nearest even once).
 *  lse         f32 [batch, sq, heads] natural-log sum of exp(logits); may be NULL (lse_bytes 0).
 *  q_latent    [batch, sq, heads, 512] in dtype (= q_nope · W_UK per head, mla_absorb_q).
 *  q_pe        [batch, sq, heads, 64] in dtype (roped).
 *  cache, format, block_table [batch, max_pages], num_pages: as in mla.cache_append; the token
 *              at position p of sequence b is read from page block_table[b, p / 64], slot p % 64.
 *  seq_lens    i32 [batch]: tokens of each sequence in the cache, in [0, max_pages * 64].
 * For query row s < sq of sequence b (L = seq_lens[b]) the visible key positions are
 * [0, L) without DSK4J_MLA_CAUSAL, and [0, L - sq + s] with it (the sq queries are the last sq
 * tokens: speculative / MTP verification); with DSK4J_MLA_CAUSAL every L must be 0 or >= sq.
 *   logit[p] = softmax_scale * (q_latent · latent[p] + q_pe · rope[p])   (f32 accumulation)
 *   o_latent = sum_p softmax(logit)[p] * latent[p],  lse = ln sum_p exp(logit[p])
 * A sequence with L = 0 has no visible key: its o_latent rows are 0 and its lse is -inf.
 * Every page index the visible positions use must be in [0, num_pages): checked first (on cuda
 * block_table and seq_lens are copied to the host for it); a bad one is an error naming
 * 'block_table' and nothing is written. softmax_scale finite and > 0. flags: DSK4J_MLA_CAUSAL.
 * The cache values are read as the format defines them (FP8: float(e4m3) * scale, bf16 widened). */
DSK4J_EXPORT int dsk4j_mla_decode(dsk4j_context* ctx, void* o_latent, int64_t o_latent_bytes, float* lse,
                                  int64_t lse_bytes, const void* q_latent, int64_t q_latent_bytes, const void* q_pe,
                                  int64_t q_pe_bytes, int32_t dtype, const void* cache, int64_t cache_bytes,
                                  int32_t format, const int32_t* block_table, int64_t block_table_bytes,
                                  const int32_t* seq_lens, int64_t seq_lens_bytes, int64_t batch, int64_t sq,
                                  int64_t heads, int64_t max_pages, int64_t num_pages, float softmax_scale,
                                  int32_t flags);

/* mla.prefill (up-projected compute form, variable-length packed sequences):
 *  o       [tokens, heads, v_dim] in dtype (f32|bf16).
 *  lse     f32 [tokens, heads] (natural log); may be NULL (lse_bytes 0).
 *  q, k    [tokens, heads, qk_dim] in dtype (DeepSeek-V3: qk_dim 192 = nope 128 | rope 64).
 *  v       [tokens, heads, v_dim] in dtype (DeepSeek-V3: 128).
 *  cu_seqlens i32 [nseq + 1]: cu_seqlens[0] = 0, non-decreasing, cu_seqlens[nseq] = tokens;
 *          sequence i is tokens [cu_seqlens[i], cu_seqlens[i+1]).
 * Token t of sequence i attends to the tokens u of the same sequence with u <= t under
 * DSK4J_MLA_CAUSAL (every u of the sequence without it), per head h:
 *   logit[u] = softmax_scale * (q[t,h,:] · k[u,h,:]),  o[t,h,:] = sum_u softmax(logit)[u] v[u,h,:]
 * f32 accumulation, online softmax over key tiles (no [T, T] score matrix is ever formed).
 * qk_dim, v_dim in [1, 256] (cuda may answer DSK4J_ERR_UNSUPPORTED for other than 192 / 128);
 * softmax_scale finite and > 0. On cuda cu_seqlens is copied to the host and checked. */
DSK4J_EXPORT int dsk4j_mla_prefill(dsk4j_context* ctx, void* o, int64_t o_bytes, float* lse, int64_t lse_bytes,
                                   const void* q, int64_t q_bytes, const void* k, int64_t k_bytes, const void* v,
                                   int64_t v_bytes, int32_t dtype, const int32_t* cu_seqlens,
                                   int64_t cu_seqlens_bytes, int64_t nseq, int64_t tokens, int64_t heads,
                                   int64_t qk_dim, int64_t v_dim, float softmax_scale, int32_t flags);

/* Absorption helpers. wkv_b is kv_b_proj's weight [heads * 256, 512] viewed [heads, 256, 512]
 * (w_dtype f32|bf16): W_UK[h] = rows 0..127 of head h, W_UV[h] = rows 128..255.
 *
 * mla.absorb_q: q_latent[t, h, c] = sum_{d<128} q_nope[t, h, d] * wkv_b[h, d, c]
 *  q_latent [tokens, heads, 512] in dtype (f32|bf16); q_nope [tokens, heads, q_head_stride] in
 *  dtype, of which the first 128 values per head are read (q_head_stride >= 128; 192 reads
 *  q_nope straight out of q [T, H, 192]). f32 accumulation. */
DSK4J_EXPORT int dsk4j_mla_absorb_q(dsk4j_context* ctx, void* q_latent, int64_t q_latent_bytes, const void* q_nope,
                                    int64_t q_nope_bytes, int32_t dtype, const void* wkv_b, int64_t wkv_b_bytes,
                                    int32_t w_dtype, int64_t tokens, int64_t heads, int64_t q_head_stride);

/* mla.absorb_o: o[t, h, d] = sum_{c<512} o_latent[t, h, c] * wkv_b[h, 128 + d, c], d < 128
 *  o [tokens, heads, 128] in dtype (f32|bf16); o_latent [tokens, heads, 512] in dtype (as
 *  mla.decode writes it with batch * sq = tokens). f32 accumulation. */
DSK4J_EXPORT int dsk4j_mla_absorb_o(dsk4j_context* ctx, void* o, int64_t o_bytes, const void* o_latent,
                                    int64_t o_latent_bytes, int32_t dtype, const void* wkv_b, int64_t wkv_b_bytes,
                                    int32_t w_dtype, int64_t tokens, int64_t heads);
/* ---- moe (DESIGN.md 4.5): router, dispatch, combine ---- */

/* moe.gate score functions (codes are contract) */
#define DSK4J_MOE_SIGMOID 0 /* DeepSeek-V3 */
#define DSK4J_MOE_SOFTMAX 1 /* DeepSeek-V2 / V2-Lite */

/* moe.gate: x[tokens, hidden] f32|bf16 (x_dtype), wg[experts, hidden] f32|bf16 (wg_dtype).
 *  logits[t, e] = f32 dot of x[t] and wg[e] in exactly this order on every backend: 16 lanes,
 *    lane l = fmaf(x[j], w[j], lane l) for j = l, l+16, ... ascending (bf16 widened exactly), then
 *    the lanes summed pairwise: l += l+8 (l < 8), l += l+4, l += l+2, lane0 + lane1.
 *  s = sigmoid(logit) = (float)(1 / (1 + exp(-(double)logit))), or softmax over the experts of
 *    a token: m = max logit, s_e = (float)(exp(l_e - m) / sum_e' exp(l_e' - m)) (double, sum ascending e).
 *  b = s + bias[e] (f32; bias f32 [experts] or NULL = 0): used ONLY to choose.
 *  n_group > 1: experts split into n_group groups of experts/n_group consecutive ids; group score
 *    = sum of the top-2 b of the group (f32, larger first) when bias is given, else the max b;
 *    the topk_group best groups are kept (descending score, ties to the lower group id), the
 *    experts of the others are excluded.
 *  indices[t, 0..top_k) i32 = the top_k kept experts by descending b, ties to the lower expert id
 *    (also the output order).
 *  weights[t, i] f32 = s[indices[t,i]]; when norm_topk_prob != 0 divided by their f32 sum (taken in
 *    output order; skipped when it is not > 0); then multiplied by routed_scaling_factor.
 *  logits: NULL, or f32 [tokens, experts] receiving the logits.
 * Requires experts % n_group == 0, 1 <= topk_group <= n_group, 1 <= top_k <= topk_group *
 * experts/n_group, experts/n_group >= 2 when n_group > 1 and bias != NULL, hidden >= 1,
 * routed_scaling_factor finite. NaN logits or bias: the result is unspecified but in range.
 * On cuda the same operations in the same order (logits bit for bit); exp is CUDA's f64 exp, within
 * 1 ulp but not always the same double as glibc's, so a score may in rare cases (a double result next
 * to an f32 rounding boundary) differ by one f32 ulp from the cpu's. */
DSK4J_EXPORT int dsk4j_moe_gate(dsk4j_context* ctx, int32_t* indices, int64_t indices_bytes, float* weights,
                                int64_t weights_bytes, float* logits, int64_t logits_bytes, const void* x,
                                int64_t x_bytes, int32_t x_dtype, const void* wg, int64_t wg_bytes, int32_t wg_dtype,
                                const float* bias, int64_t bias_bytes, int64_t tokens, int64_t hidden,
                                int64_t experts, int64_t top_k, int64_t n_group, int64_t topk_group,
                                int32_t score_func, int32_t norm_topk_prob, float routed_scaling_factor);

/* moe.dispatch: indices i32 [tokens, top_k] (each in [0, experts), as moe.gate writes them) ->
 *  counts i32 [experts]: the (token, slot) pairs routed to each expert;
 *  offsets i32 [experts + 1]: contiguous layout (m_max == 0): offsets[0] = 0, offsets[e+1] =
 *    offsets[e] + counts[e] rounded up to a multiple of align (align >= 1; 128 = DeepGEMM's M
 *    alignment); masked layout (m_max > 0): offsets[e] = e * m_max (counts[e] <= m_max is
 *    required, m_max >= tokens always suffices), offsets[experts] = experts * m_max;
 *  row_of i32 [tokens * top_k]: the row of pair p = t*top_k + i in that layout; inside an expert
 *    rows follow ascending p;
 *  src_of i32 [rows]: the pair each row holds, -1 for padding rows; rows >= offsets[experts] only
 *    when the buffer is larger: those are set to -1 too. rows = src_of_bytes / 4 must be >=
 *    offsets[experts] (tokens*top_k + experts*(align-1) always suffices; masked: experts*m_max).
 * On a cuda context every buffer is device memory and the same layout is written (the same rows), but
 * the host cannot read indices: src_of must have that bound's rows (tokens*top_k + experts*(align-1),
 * or experts*m_max; <= 2^31 - 1), an entry of indices outside [0, experts) is not counted and gets
 * row_of -1, and in the masked layout the pairs of an expert past m_max get row_of -1 (counts[e] still
 * counts them) where the cpu backend fails with an error naming the argument. */
DSK4J_EXPORT int dsk4j_moe_dispatch(dsk4j_context* ctx, int32_t* counts, int64_t counts_bytes, int32_t* offsets,
                                    int64_t offsets_bytes, int32_t* row_of, int64_t row_of_bytes, int32_t* src_of,
                                    int64_t src_of_bytes, const int32_t* indices, int64_t indices_bytes,
                                    int64_t tokens, int64_t top_k, int64_t experts, int32_t align, int64_t m_max);

/* moe.gather: xp[rows, hidden] = x[src_of[r] / top_k] for src_of[r] >= 0, zero for src_of[r] < 0;
 * x, xp of dtype (f32, bf16 or e4m3: any element size is copied bit for bit). The cpu backend rejects
 * src_of[r] / top_k >= tokens; on cuda (src_of in device memory) such a row is zero. */
DSK4J_EXPORT int dsk4j_moe_gather(dsk4j_context* ctx, void* xp, int64_t xp_bytes, const void* x, int64_t x_bytes,
                                  int32_t dtype, const int32_t* src_of, int64_t src_of_bytes, int64_t rows,
                                  int64_t tokens, int64_t top_k, int64_t hidden);

/* moe.combine: y[t] = sum over i = 0..top_k-1 in that order of weights[t, i] * e[row_of[t*top_k+i]]
 * (acc = fmaf(w, e, acc) from acc = 0, f32), then acc + shared[t] when shared is not NULL, rounded
 * once to y_dtype (f32|bf16). e f32|bf16 [rows, hidden] (e_dtype); shared NULL or f32|bf16
 * [tokens, hidden] (shared_dtype); weights f32 [tokens, top_k]; row_of i32 [tokens, top_k] (as
 * moe.dispatch writes it), entries in [0, rows) (the cpu backend checks them; on cuda an entry
 * outside [0, rows) adds nothing). */
DSK4J_EXPORT int dsk4j_moe_combine(dsk4j_context* ctx, void* y, int64_t y_bytes, int32_t y_dtype, const void* e,
                                   int64_t e_bytes, int32_t e_dtype, const float* weights, int64_t weights_bytes,
                                   const int32_t* row_of, int64_t row_of_bytes, const void* shared,
                                   int64_t shared_bytes, int32_t shared_dtype, int64_t tokens, int64_t top_k,
                                   int64_t rows, int64_t hidden);

/* moe.bias_update (aux-loss-free balancing): with mean = sum(counts) / experts (double), for each
 * expert bias[e] += gamma if counts[e] < mean, -= gamma if counts[e] > mean (f32 add), unchanged
 * when equal. counts i32 [experts] (as moe.dispatch writes them). */
DSK4J_EXPORT int dsk4j_moe_bias_update(dsk4j_context* ctx, float* bias, int64_t bias_bytes, const int32_t* counts,
                                       int64_t counts_bytes, int64_t experts, float gamma);

/* moe.silu_quant (the expert activation, fused with fp8.act_quant): h f32 [rows, 2*inter] (columns
 * 0..inter-1 = g = x.w1, inter..2*inter-1 = u = x.w3, as a fused w13 GEMM writes them) ->
 * a = silu(g) * u in f32 (silu(g) = g / (1 + expf(-g))), quantized per 128 columns of a row as
 * fp8.act_quant does: amax = max(max|a| (NaN ignored), 1e-4), s = amax/448, y = e4m3(a / s).
 * y e4m3 [rows, inter], scale f32 [rows, inter/128] (row-major); inter % 128 == 0. On cuda expf is
 * the f64 exp rounded to f32 (glibc's expf is within 0.502 ulp): a may differ by one ulp from the
 * cpu's, and then a code by one step at an e4m3 rounding boundary; the quantization itself (true
 * division, saturating RNE e4m3) is the same. */
DSK4J_EXPORT int dsk4j_moe_silu_quant(dsk4j_context* ctx, void* y, int64_t y_bytes, float* scale, int64_t scale_bytes,
                                      const float* h, int64_t h_bytes, int64_t rows, int64_t inter);

/* moe.forward: one whole MoE layer, composed in C (cpu_moe.c, cuda_moe.c) of the kernels above:
 *   moe.gate(x, wg, bias) -> moe.dispatch (contiguous, no padding) -> per token activations
 *   (fp8: fp8.act_quant 1x128; bf16: rounded to bf16; f32: exact) gathered into expert order ->
 *   GEMM with w13 (fp8: one grouped GEMM; bf16: gemm.bf16 per expert; f32: gemm.f32 per expert)
 *   -> a = silu(g)*u (f32, silu(g) = g / (1 + expf(-g)); fp8: quantized 1x128 as fp8.act_quant
 *   does; bf16: rounded; f32: unrounded) -> GEMM with w2 (likewise) -> moe.combine in token order,
 *   plus the shared expert (the same SwiGLU with s13/s2 on every token) when shared_inter > 0.
 * w_dtype DSK4J_DTYPE_E4M3: w13 e4m3 [experts, 2*inter, hidden] (rows 0..inter-1 = w1 "gate_proj",
 *   inter..2*inter-1 = w3 "up_proj") with w13_scale f32 [experts, ceil(2*inter/128), hidden/128];
 *   w2 e4m3 [experts, hidden, inter] with w2_scale f32 [experts, ceil(hidden/128), inter/128];
 *   s13 e4m3 [2*shared_inter, hidden] + scale, s2 e4m3 [hidden, shared_inter] + scale (same
 *   block layout); hidden, inter and shared_inter multiples of 128.
 * w_dtype DSK4J_DTYPE_BF16 or DSK4J_DTYPE_F32: the same tensors in bf16 / f32, every scale NULL
 *   (0 bytes); hidden, inter and shared_inter any size >= 1 (shared_inter >= 0).
 * y f32|bf16 [tokens, hidden]; counts NULL or i32 [experts]: the rows each expert received (the
 * load statistics of moe.bias_update). x, wg, bias and the router parameters as moe.gate.
 * The workspace (about tokens*top_k*(2*inter + 2*hidden) * 4 bytes) is allocated per call (cpu) or
 * is the context's device scratch, kept until the context closes (cuda; bf16 and f32 weights: the
 * call waits for the device once, to read the experts' row ranges). */
DSK4J_EXPORT int dsk4j_moe_forward(dsk4j_context* ctx, void* y, int64_t y_bytes, int32_t y_dtype, int32_t* counts,
                                   int64_t counts_bytes, const void* x, int64_t x_bytes, int32_t x_dtype,
                                   const void* wg, int64_t wg_bytes, int32_t wg_dtype, const float* bias,
                                   int64_t bias_bytes, int32_t w_dtype, const void* w13, int64_t w13_bytes,
                                   const float* w13_scale, int64_t w13_scale_bytes, const void* w2, int64_t w2_bytes,
                                   const float* w2_scale, int64_t w2_scale_bytes, const void* s13, int64_t s13_bytes,
                                   const float* s13_scale, int64_t s13_scale_bytes, const void* s2, int64_t s2_bytes,
                                   const float* s2_scale, int64_t s2_scale_bytes, int64_t tokens, int64_t hidden,
                                   int64_t inter, int64_t shared_inter, int64_t experts, int64_t top_k,
                                   int64_t n_group, int64_t topk_group, int32_t score_func, int32_t norm_topk_prob,
                                   float routed_scaling_factor);

/* ---- elementwise: the model's small steps (RMSNorm, residual add, SwiGLU, embedding, copies) ----
 * On a cpu context every buffer is host memory, on cuda device memory of that context. Sizes are
 * element counts (int64 >= 0); dtype codes as DSK4J_DTYPE_*. Outputs may not overlap inputs except
 * where a function allows it (exactly identical pointers for in-place use). */

/* elementwise.rmsnorm: x [rows, ldx] (the first d columns of each row are read; ldx >= d >= 1),
 * y [rows, d], both dtype (f32|bf16), w f32 [d], eps finite and >= 0. Per row r, in double:
 *   ss = sum over i = 0..d-1 in order of (double)x_i * x_i,  inv = 1.0 / sqrt(ss / d + eps),
 *   y[r, i] = (float)(((double)x_i * inv) * (double)w_i), then rounded once to dtype (bf16: RNE).
 * x is read as rows * ldx elements but needs only (rows - 1) * ldx + d of them. In place: y == x
 * exactly (with ldx == d); any other overlap of y with x or w is an error. The cpu backend computes
 * exactly this (the bits of the Java model's former host RMSNorm); on cuda the reference kernel too
 * (one thread per row), the fast kernel sums ss in double in another order (a block per row, tree
 * reduction), so its result may differ in the last bit of a double before the f32 rounding. */
DSK4J_EXPORT int dsk4j_rmsnorm(dsk4j_context* ctx, void* y, int64_t y_bytes, const void* x, int64_t x_bytes,
                               const float* w, int64_t w_bytes, int32_t dtype, int64_t rows, int64_t d, int64_t ldx,
                               double eps);

/* elementwise.add: y[n] = a[n] + b[n] in f32 (bf16 inputs widened exactly), rounded once to dtype
 * (f32|bf16; one dtype for y, a and b). y may be a or b exactly (in place); any other overlap of y
 * with a or b is an error. */
DSK4J_EXPORT int dsk4j_add(dsk4j_context* ctx, void* y, int64_t y_bytes, const void* a, int64_t a_bytes, const void* b,
                           int64_t b_bytes, int32_t dtype, int64_t n);

/* elementwise.silu_mul (SwiGLU): y[n] = (float)((z / (1.0 + exp(-z))) * (double)u_i) with z = (double)g_i,
 * in double, rounded once to dtype (f32|bf16; one dtype for y, g and u). y may be g or u exactly (in
 * place); any other overlap is an error. exp: the platform's double exp (glibc on cpu, CUDA's f64 exp,
 * within 1 ulp, on cuda), so backends may differ by one ulp of the f32 result in rare cases. */
DSK4J_EXPORT int dsk4j_silu_mul(dsk4j_context* ctx, void* y, int64_t y_bytes, const void* g, int64_t g_bytes,
                                const void* u, int64_t u_bytes, int32_t dtype, int64_t n);

/* elementwise.embed: y[t, :] = table[ids[t], :] converted to y_dtype, t < tokens. y [tokens, d]
 * y_dtype, table [vocab, d] table_dtype (each f32|bf16: bf16 -> f32 exact, f32 -> bf16 RNE, equal
 * dtypes copied bit for bit), ids i32 [tokens]. The cpu backend rejects an id outside [0, vocab)
 * (an error naming 'ids' and the position; nothing written); on cuda (ids in device memory, not
 * read by the host) such a row of y is written as zeros. y must not overlap table or ids. */
DSK4J_EXPORT int dsk4j_embed(dsk4j_context* ctx, void* y, int64_t y_bytes, int32_t y_dtype, const void* table,
                             int64_t table_bytes, int32_t table_dtype, const int32_t* ids, int64_t ids_bytes,
                             int64_t tokens, int64_t vocab, int64_t d);

/* elementwise.copy_columns: dst[r, dst_col0 + j] = src[r, src_col0 + j] for r < rows, j < width,
 * bit for bit (any dtype: its element size). dst [rows, dst_cols], src [rows, src_cols];
 * dst_col0 + width <= dst_cols, src_col0 + width <= src_cols. dst must not overlap src. */
DSK4J_EXPORT int dsk4j_copy_columns(dsk4j_context* ctx, void* dst, int64_t dst_bytes, const void* src,
                                    int64_t src_bytes, int32_t dtype, int64_t rows, int64_t dst_cols,
                                    int64_t dst_col0, int64_t src_cols, int64_t src_col0, int64_t width);

/* elementwise.gather_rows: dst[i, :] = src[idx[i], :] for i < rows, bit for bit (any dtype). dst
 * [rows, cols], src [src_rows, cols], idx i32 [rows]. The cpu backend rejects an idx entry outside
 * [0, src_rows) (an error naming 'idx'; nothing written); on cuda (idx in device memory) such a row
 * is written as zeros. dst must not overlap src or idx. */
DSK4J_EXPORT int dsk4j_gather_rows(dsk4j_context* ctx, void* dst, int64_t dst_bytes, const void* src,
                                   int64_t src_bytes, int32_t dtype, const int32_t* idx, int64_t idx_bytes,
                                   int64_t rows, int64_t src_rows, int64_t cols);

#ifdef __cplusplus
}
#endif
#endif /* DSK4J_H */
