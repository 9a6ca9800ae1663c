/* internal.h - shared by the API layer (api_*.c) and the backends (cpu_*.c, cuda_*.c).
 * The API layer validates every argument before a backend sees it: backend functions may
 * assume non-null pointers, sizes >= 0, buffers large enough, supported dtypes. */
#ifndef DSK4J_INTERNAL_H
#define DSK4J_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "dsk4j.h"

/* Sets the calling thread's error message (printf format) and returns code. */
int dsk4j_fail(int code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clears the calling thread's error message. */
void dsk4j_clear_error(void);

#define CTX_CPU 0
#define CTX_CUDA 1
#define SIMD_PORTABLE 0
#define SIMD_AVX2 1
#define SIMD_AVX512 2

typedef struct cpu_pool cpu_pool;
typedef struct cuda_state cuda_state;

struct dsk4j_context {
    int kind;        /* CTX_CPU or CTX_CUDA */
    int ordinal;     /* cuda device ordinal, -1 for cpu */
    int num_threads; /* cpu worker count (>= 1) */
    int simd;        /* SIMD_PORTABLE, SIMD_AVX2 or SIMD_AVX512 (cpu) */
    int amx;         /* cpu: AMX-BF16 tiles usable (implies SIMD_AVX512; cpu_has_amx) */
    int flags;       /* the flags given to dsk4j_context_open */
    cpu_pool* pool;  /* cpu only; NULL when num_threads == 1 */
    cuda_state* cuda; /* cuda only */
};

size_t dsk4j_dtype_size(int32_t dtype); /* 0 for an unknown code */
const char* dsk4j_dtype_name(int32_t dtype);

/* ---------------- cpu backend (cpu_*.c) ---------------- */

/* fn(arg, begin, end) over [0, n) split into chunks of at least `grain` items, run on the
 * context's pool and the calling thread. Runs inline when the pool is busy (another thread
 * is using it), when n <= grain, or when there is no pool. Returns when all chunks are done. */
typedef void (*cpu_task_fn)(void* arg, int64_t begin, int64_t end);
void cpu_parallel_for(dsk4j_context* ctx, int64_t n, int64_t grain, cpu_task_fn fn, void* arg);
int cpu_pool_create(cpu_pool** out, int workers); /* workers = threads besides the caller */
void cpu_pool_destroy(cpu_pool* pool);
int cpu_has_avx2_fma(void); /* __builtin_cpu_supports("avx2") && ("fma") && ("f16c") */
int cpu_has_avx512(void);   /* cpu_has_avx2_fma() && avx512f, avx512bw, avx512vl, avx512dq */
/* cpu_has_avx512() && avx512vbmi, avx512bf16, amx-tile, amx-bf16, and the kernel granted this process the
 * tile data state (arch_prctl ARCH_REQ_XCOMP_PERM; asked once, the answer is cached) */
int cpu_has_amx(void);

/* Scalar conversions (exact contract of DESIGN.md 3), shared by all cpu paths. */
uint8_t cpu_f32_to_e4m3(float x);
uint8_t cpu_f32_to_e5m2(float x);
float cpu_e4m3_to_f32(uint8_t v);
float cpu_e5m2_to_f32(uint8_t v);
float cpu_bf16_to_f32(uint16_t v);
uint16_t cpu_f32_to_bf16(float x);
float cpu_f16_to_f32(uint16_t v);
uint16_t cpu_f32_to_f16(float x);

/* Kernels: arguments already validated. scale_rs / scale_cs: element strides of the scale
 * matrix along rows (tokens) and groups. */
void cpu_fp8_cast(dsk4j_context* ctx, void* y, int32_t y_dtype, const void* x, int32_t x_dtype,
                  int64_t n);
void cpu_fp8_act_quant(dsk4j_context* ctx, uint8_t* y, float* scale, int64_t scale_rs,
                       int64_t scale_cs, const void* x, int32_t x_dtype, int64_t rows, int64_t k,
                       int32_t group, int32_t flags);
void cpu_fp8_weight_quant(dsk4j_context* ctx, uint8_t* y, float* scale_inv, const void* w,
                          int32_t w_dtype, int64_t n, int64_t k, int32_t block, int32_t flags);
void cpu_fp8_weight_dequant(dsk4j_context* ctx, void* y, int32_t y_dtype, const uint8_t* w,
                            const float* scale_inv, int64_t n, int64_t k, int32_t block);

/* One GEMM problem as the backends see it (validated). d[m,n] (row stride n) = a[m,k] * b[n,k]^T
 * with the scales of gemm.fp8_block; for bf16 a and b are bf16 and the scales are NULL; for
 * gemm.f32 a and d are f32, b is b_dtype (f32 or bf16) and the scales are NULL.
 * a_scale element (i, kb) is a_scale[i*a_scale_rs + kb*a_scale_cs]; b_scale is
 * [ceil(n/128), k/128] row-major. c: NULL or f32 [m,n]. */
typedef struct gemm_args {
    void* d;
    int32_t d_dtype;    /* DSK4J_DTYPE_F32 or DSK4J_DTYPE_BF16 */
    const void* a;      /* e4m3 or bf16 */
    const float* a_scale;
    int64_t a_scale_rs, a_scale_cs;
    const void* b;      /* e4m3 or bf16 */
    const float* b_scale;
    const float* c;
    int64_t m, n, k;
    int32_t b_dtype;    /* gemm.f32 only (a f32, d f32): DSK4J_DTYPE_F32 or DSK4J_DTYPE_BF16; else unused */
} gemm_args;

/* The grouped forms: `groups` problems sharing n and k. Group g: a rows [row0[g], row0[g]+rows[g])
 * of the shared a/a_scale/d, b + g*n*k, b_scale + g*ceil(n/128)*(k/128). */
typedef struct gemm_grouped_args {
    gemm_args base;           /* a, a_scale, d of row 0; b, b_scale of group 0; m unused */
    int64_t groups;
    const int32_t* offsets;   /* contiguous: [groups+1] (row0[g] = offsets[g]); or NULL */
    const int32_t* masked_m;  /* masked: [groups] (row0[g] = g*m_max, rows = masked_m[g]); or NULL */
    int64_t m_max;            /* masked only */
} gemm_grouped_args;

/* Host workspaces of the cpu kernels (cpu_alloc.c): 64-byte aligned, at least `bytes` rounded up to
 * 64; blocks of 1 MiB or more are pages of their own, returned to the system by cpu_host_free (the
 * C heap would keep them resident). NULL when out of memory. Free only with cpu_host_free. */
void* cpu_host_alloc(size_t bytes);
void cpu_host_free(void* p);

/* cpu kernels (cpu_gemm*.c); arguments validated */
void cpu_gemm_fp8_block(dsk4j_context* ctx, const gemm_args* g);
void cpu_gemm_bf16(dsk4j_context* ctx, const gemm_args* g);
void cpu_gemm_f32(dsk4j_context* ctx, const gemm_args* g);
void cpu_gemm_fp8_grouped(dsk4j_context* ctx, const gemm_grouped_args* g);

/* rope.apply as the backends see it (validated by api_rope.c; positions in [0, max_seq_len)). */
typedef struct rope_args {
    void* y;                 /* [tokens, heads, dim], dtype; may equal x */
    const void* x;           /* [tokens, heads, dim], dtype */
    int32_t dtype;           /* DSK4J_DTYPE_F32 or DSK4J_DTYPE_BF16 */
    const int32_t* positions; /* [tokens] */
    const float* cos_table;  /* [max_seq_len, dim/2] */
    const float* sin_table;
    int64_t tokens, heads, dim, max_seq_len;
    int32_t layout;          /* DSK4J_ROPE_INTERLEAVED or DSK4J_ROPE_NEOX */
} rope_args;

/* rope (cpu_rope.c): f[dim/2] = the YaRN frequencies in double (dsk4j.h rope.yarn_table). */
void rope_yarn_freqs(double* f, int64_t dim, double theta, double factor, int64_t original_seq_len,
                     int64_t max_seq_len, double beta_fast, double beta_slow);
/* The cos/sin tables [max_seq_len, dim/2] into host memory (dim <= 1024); on a cpu ctx on its
 * threads, else (ctx NULL or cuda) on the calling thread. */
void rope_yarn_table_host(dsk4j_context* ctx, float* cos_t, float* sin_t, int64_t dim, double theta,
                          double factor, int64_t original_seq_len, int64_t max_seq_len, double beta_fast,
                          double beta_slow);
void cpu_rope_apply(dsk4j_context* ctx, const rope_args* a);


/* ---------------- mla (DESIGN.md 4.4; dsk4j.h mla.*) ---------------- */
/* Validated by api_mla.c: formats/dtypes known, buffers large enough, every seq_id / position /
 * cu_seqlens entry in range and every page index a call will touch in [0, num_pages) (checked
 * on the host, so on cuda these i32 arrays are device pointers whose contents are known good).
 * Pointers into the cache are never formed from unchecked values. */

/* Bytes of one token in a cache format (2304, 1152, 656); 0 for an unknown format. */
int64_t mla_token_bytes(int32_t format);

/* mla.cache_append: token t -> page block_table[seq_ids[t] * max_pages + positions[t] / 64],
 * slot positions[t] % 64. */
typedef struct mla_append_args {
    void* cache;               /* [num_pages, 64, token_bytes] */
    int32_t format;            /* DSK4J_MLA_CACHE_* */
    const void* kv_latent;     /* [tokens, 512] dtype */
    const void* k_pe;          /* [tokens, 64] dtype */
    int32_t dtype;             /* DSK4J_DTYPE_F32 or DSK4J_DTYPE_BF16 */
    const int32_t* seq_ids;    /* [tokens], in [0, batch) */
    const int32_t* positions;  /* [tokens], in [0, max_pages * 64) */
    const int32_t* block_table; /* [batch, max_pages] */
    int64_t batch, max_pages, num_pages, tokens; /* tokens > 0 */
} mla_append_args;

/* mla.decode. Query row r = (b * sq + s) * heads + h of q_latent [.., 512], q_pe [.., 64],
 * o_latent [.., 512], lse [..]. Visible key positions of row (b, s, h): [0, kv_end) with
 * kv_end = causal ? seq_lens[b] - sq + s + 1 : seq_lens[b] (kv_end = 0 when seq_lens[b] = 0:
 * o rows 0, lse -inf). */
typedef struct mla_decode_args {
    void* o_latent;            /* [batch, sq, heads, 512] dtype */
    float* lse;                /* [batch, sq, heads] or NULL */
    const void* q_latent;      /* [batch, sq, heads, 512] dtype */
    const void* q_pe;          /* [batch, sq, heads, 64] dtype */
    int32_t dtype;             /* DSK4J_DTYPE_F32 or DSK4J_DTYPE_BF16 */
    const void* cache;         /* [num_pages, 64, token_bytes] */
    int32_t format;            /* DSK4J_MLA_CACHE_* */
    const int32_t* block_table; /* [batch, max_pages]; entries covering [0, seq_lens[b]) valid */
    const int32_t* seq_lens;   /* [batch], 0 or (causal) >= sq, <= max_pages * 64 */
    int64_t batch, sq, heads, max_pages, num_pages; /* batch, sq, heads > 0 */
    int64_t max_seq_len;       /* max over b of seq_lens[b] (known from the host check) */
    float softmax_scale;
    int32_t causal;            /* 0 or 1 */
} mla_decode_args;

/* mla.prefill: token rows of q/k [tokens, heads, qk_dim], v/o [tokens, heads, v_dim]. */
typedef struct mla_prefill_args {
    void* o;                   /* [tokens, heads, v_dim] dtype */
    float* lse;                /* [tokens, heads] or NULL */
    const void* q;
    const void* k;
    const void* v;
    int32_t dtype;             /* DSK4J_DTYPE_F32 or DSK4J_DTYPE_BF16 */
    const int32_t* cu_seqlens; /* [nseq + 1], valid (0, non-decreasing, ends at tokens) */
    int64_t nseq, tokens, heads, qk_dim, v_dim; /* tokens, heads > 0; dims in [1, 256] */
    int64_t max_seqlen;        /* max over i of cu_seqlens[i+1] - cu_seqlens[i] */
    float softmax_scale;
    int32_t causal;
} mla_prefill_args;

/* mla.absorb_q (o_side = 0): y [tokens, heads, 512] = x[t, h, 0:128] · wkv_b[h, 0:128, :],
 *   x row stride per head x_head_stride (>= 128);
 * mla.absorb_o (o_side = 1): y [tokens, heads, 128] = x [tokens, heads, 512] · wkv_b[h, 128:256, :]^T,
 *   x_head_stride = 512. */
typedef struct mla_absorb_args {
    void* y;
    const void* x;
    int32_t dtype;             /* of x and y: f32 or bf16 */
    const void* wkv_b;         /* [heads, 256, 512] */
    int32_t w_dtype;           /* f32 or bf16 */
    int64_t tokens, heads, x_head_stride; /* tokens, heads > 0 */
    int32_t o_side;
} mla_absorb_args;

/* cpu kernels (cpu_mla.c, cpu_avx2_mla.c, cpu_avx512_mla.c); arguments validated */
void cpu_mla_cache_append(dsk4j_context* ctx, const mla_append_args* a);
/* Needs scratch; DSK4J_ERR_OUT_OF_MEMORY (message set) if it cannot get it, else DSK4J_OK. */
int cpu_mla_decode(dsk4j_context* ctx, const mla_decode_args* a);
int cpu_mla_prefill(dsk4j_context* ctx, const mla_prefill_args* a);
int cpu_mla_absorb(dsk4j_context* ctx, const mla_absorb_args* a);
/* moe.gate as the backends see it (validated by api_moe.c). */
typedef struct moe_gate_args {
    int32_t* indices;        /* [tokens, top_k] */
    float* weights;          /* [tokens, top_k] */
    float* logits;           /* [tokens, experts] or NULL */
    const void* x;           /* [tokens, hidden], x_dtype */
    const void* wg;          /* [experts, hidden], wg_dtype */
    const float* bias;       /* [experts] or NULL */
    int32_t x_dtype, wg_dtype;
    int64_t tokens, hidden, experts, top_k, n_group, topk_group;
    int32_t score_func, norm_topk_prob;
    float scale;
} moe_gate_args;

#define MOE_MAX_EXPERTS 4096
/* cpu_moe.c */
void cpu_moe_gate(dsk4j_context* ctx, const moe_gate_args* a);
/* The logits of one token against experts [e0, e1) (the 16-lane order of dsk4j.h moe.gate). */
void cpu_moe_logits_portable(float* out, const void* x, int32_t x_dtype, const void* wg, int32_t wg_dtype,
                             int64_t hidden, int64_t e0, int64_t e1);
void cpu_avx2_moe_logits(float* out, const void* x, int32_t x_dtype, const void* wg, int32_t wg_dtype,
                         int64_t hidden, int64_t e0, int64_t e1); /* cpu_avx2_moe.c */
/* The same for 4 tokens at once (rows x_ld elements apart), out row i at out + i*out_ld. */
void cpu_avx2_moe_logits4(float* out, int64_t out_ld, const void* x, int64_t x_ld, int32_t x_dtype, const void* wg,
                          int32_t wg_dtype, int64_t hidden, int64_t e0, int64_t e1);
/* One token against experts [e0, e1), four experts per pass (same bits). */
void cpu_avx2_moe_logits_x4(float* out, const void* x, int32_t x_dtype, const void* wg, int32_t wg_dtype,
                            int64_t hidden, int64_t e0, int64_t e1);
void cpu_moe_gather(dsk4j_context* ctx, void* xp, const void* x, size_t elem, const int32_t* src_of, int64_t rows,
                    int64_t top_k, int64_t hidden);
/* moe.forward as the cpu backend sees it (validated by api_moe.c). */
typedef struct moe_forward_args {
    moe_gate_args gate;      /* x, wg, bias and the router parameters; indices/weights/logits unused */
    void* y;                 /* [tokens, hidden], y_dtype */
    int32_t y_dtype;
    int32_t* counts;         /* [experts] or NULL */
    int32_t w_dtype;         /* DSK4J_DTYPE_E4M3 (with scales), DSK4J_DTYPE_BF16 or DSK4J_DTYPE_F32 (no scales) */
    const void *w13, *w2, *s13, *s2; /* s13/s2 NULL when shared_inter == 0 */
    const float *w13_scale, *w2_scale, *s13_scale, *s2_scale;
    int64_t inter, shared_inter;
} moe_forward_args;
int cpu_moe_forward(dsk4j_context* ctx, const moe_forward_args* a);
/* silu(g)*u of h [rows, 2*inter] f32 into e4m3 + 1x128 scales (q, qs) or, when q is NULL, bf16 (b). */
void cpu_moe_silu_quant(dsk4j_context* ctx, const float* h, int64_t rows, int64_t inter, uint8_t* q, float* qs,
                        uint16_t* b);
/* a [rows, inter] f32 = silu(g)*u of h [rows, 2*inter], unrounded (moe.forward with f32 weights). */
void cpu_moe_silu_mul_f32(dsk4j_context* ctx, const float* h, int64_t rows, int64_t inter, float* a);
void cpu_moe_combine(dsk4j_context* ctx, void* y, int32_t y_dtype, const void* e, int32_t e_dtype,
                     const float* weights, const int32_t* row_of, const void* shared, int32_t shared_dtype,
                     int64_t tokens, int64_t top_k, int64_t hidden);

/* ---------------- elementwise (dsk4j.h elementwise.*) ---------------- */
/* Validated by api_elementwise.c: dtypes allowed, sizes >= 0 and consistent, buffers large enough,
 * overlaps only the allowed in-place ones; on cpu every ids / idx entry in range. */
typedef struct rmsnorm_args {
    void* y;          /* [rows, d], dtype; may equal x (then ldx == d) */
    const void* x;    /* [rows, ldx], dtype; the first d columns of a row are read */
    const float* w;   /* [d] */
    int32_t dtype;    /* DSK4J_DTYPE_F32 or DSK4J_DTYPE_BF16 */
    int64_t rows, d, ldx; /* d >= 1, ldx >= d */
    double eps;
} rmsnorm_args;

/* cpu_elementwise.c */
void cpu_rmsnorm(dsk4j_context* ctx, const rmsnorm_args* a);
void cpu_add(dsk4j_context* ctx, void* y, const void* a, const void* b, int32_t dtype, int64_t n);
void cpu_silu_mul(dsk4j_context* ctx, void* y, const void* g, const void* u, int32_t dtype, int64_t n);
void cpu_embed(dsk4j_context* ctx, void* y, int32_t y_dtype, const void* table, int32_t table_dtype, const int32_t* ids,
               int64_t tokens, int64_t d);
void cpu_copy_columns(dsk4j_context* ctx, void* dst, const void* src, size_t elem, int64_t rows, int64_t dst_cols,
                      int64_t dst_col0, int64_t src_cols, int64_t src_col0, int64_t width);

/* ---------------- cuda backend (cuda_*.c) ---------------- */
/* Each returns DSK4J_OK or a code set with dsk4j_fail (driver errors carry cuGetErrorName /
 * cuGetErrorString text and the call that failed). */
int cuda_device_count(int32_t* out_count);
int cuda_open(dsk4j_context* ctx, int ordinal);   /* fills ctx->cuda */
void cuda_close(dsk4j_context* ctx);               /* frees everything; never fails loudly */
int cuda_describe(char* buf, size_t cap, dsk4j_context* ctx);
int cuda_mem_alloc(dsk4j_context* ctx, void** out, int64_t bytes);
int cuda_mem_free(dsk4j_context* ctx, void* ptr);
int cuda_memcpy(dsk4j_context* ctx, void* dst, const void* src, int64_t bytes, int32_t dir);
int cuda_memset(dsk4j_context* ctx, void* dst, int32_t value, int64_t bytes);
int cuda_synchronize(dsk4j_context* ctx);
/* DSK4J_OK iff [ptr, ptr+bytes) lies inside one live allocation of this context;
 * otherwise DSK4J_ERR_INVALID_ARGUMENT naming `arg`. */
int cuda_check_buffer(dsk4j_context* ctx, const void* ptr, int64_t bytes, const char* arg);

int cuda_fp8_cast(dsk4j_context* ctx, void* y, int32_t y_dtype, const void* x, int32_t x_dtype,
                  int64_t n);
int cuda_fp8_act_quant(dsk4j_context* ctx, uint8_t* y, float* scale, int64_t scale_rs,
                       int64_t scale_cs, const void* x, int32_t x_dtype, int64_t rows, int64_t k,
                       int32_t group, int32_t flags);
int cuda_fp8_weight_quant(dsk4j_context* ctx, uint8_t* y, float* scale_inv, const void* w,
                          int32_t w_dtype, int64_t n, int64_t k, int32_t block, int32_t flags);
int cuda_fp8_weight_dequant(dsk4j_context* ctx, void* y, int32_t y_dtype, const uint8_t* w,
                            const float* scale_inv, int64_t n, int64_t k, int32_t block);
int cuda_gemm_fp8_block(dsk4j_context* ctx, const gemm_args* g);
int cuda_gemm_bf16(dsk4j_context* ctx, const gemm_args* g);
int cuda_gemm_f32(dsk4j_context* ctx, const gemm_args* g);
int cuda_gemm_fp8_grouped(dsk4j_context* ctx, const gemm_grouped_args* g);

int cuda_rope_apply(dsk4j_context* ctx, const rope_args* a); /* cuda_rope.c */

/* cuda_mla.c (same argument structs as the cpu; every pointer a device address inside a live
 * allocation of ctx, checked; the i32 arrays' contents already checked on the host). */
int cuda_mla_cache_append(dsk4j_context* ctx, const mla_append_args* a);
int cuda_mla_decode(dsk4j_context* ctx, const mla_decode_args* a);
int cuda_mla_prefill(dsk4j_context* ctx, const mla_prefill_args* a);
int cuda_mla_absorb(dsk4j_context* ctx, const mla_absorb_args* a);

/* cuda_moe.c (same arguments as the cpu functions; every pointer a device address inside a live
 * allocation of ctx, checked). The i32 index arrays are device data the host did not read: the
 * kernels ignore entries out of range (dsk4j.h moe.* "On cuda"). moe.dispatch: rows_cap (src_of
 * rows) >= the layout's bound, pairs + experts * (align - 1) (contiguous) or experts * m_max
 * (masked), <= INT32_MAX (checked by api_moe.c). */
int cuda_moe_gate(dsk4j_context* ctx, const moe_gate_args* a);
int cuda_moe_dispatch(dsk4j_context* ctx, int32_t* counts, int32_t* offsets, int32_t* row_of, int32_t* src_of,
                      int64_t rows_cap, const int32_t* indices, int64_t pairs, int64_t experts, int32_t align,
                      int64_t m_max);
int cuda_moe_gather(dsk4j_context* ctx, void* xp, const void* x, size_t elem, const int32_t* src_of, int64_t rows,
                    int64_t tokens, int64_t top_k, int64_t hidden);
int cuda_moe_combine(dsk4j_context* ctx, void* y, int32_t y_dtype, const void* e, int32_t e_dtype,
                     const float* weights, const int32_t* row_of, const void* shared, int32_t shared_dtype,
                     int64_t tokens, int64_t top_k, int64_t rows, int64_t hidden);
int cuda_moe_silu_quant(dsk4j_context* ctx, const float* h, int64_t rows, int64_t inter, uint8_t* q, float* qs,
                        uint16_t* b);
int cuda_moe_bias_update(dsk4j_context* ctx, float* bias, const int32_t* counts, int64_t experts, float gamma);
int cuda_moe_forward(dsk4j_context* ctx, const moe_forward_args* a);

/* cuda_elementwise.c (same arguments as the cpu functions; every pointer a device address inside a
 * live allocation of ctx, checked). ids / idx are device data the host did not read: an entry
 * outside [0, vocab) gives a zero row (dsk4j.h elementwise.embed). gather_rows runs cuda_moe_gather. */
int cuda_rmsnorm(dsk4j_context* ctx, const rmsnorm_args* a);
int cuda_add(dsk4j_context* ctx, void* y, const void* a, const void* b, int32_t dtype, int64_t n);
int cuda_silu_mul(dsk4j_context* ctx, void* y, const void* g, const void* u, int32_t dtype, int64_t n);
int cuda_embed(dsk4j_context* ctx, void* y, int32_t y_dtype, const void* table, int32_t table_dtype, const int32_t* ids,
               int64_t tokens, int64_t vocab, int64_t d);
int cuda_copy_columns(dsk4j_context* ctx, void* dst, const void* src, size_t elem, int64_t rows, int64_t dst_cols,
                      int64_t dst_col0, int64_t src_cols, int64_t src_col0, int64_t width);

#endif
