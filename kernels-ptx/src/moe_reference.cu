// moe_reference.cu - the GPU reference kernels of the moe ops (DESIGN.md 4.5; dsk4j.h moe.*):
// plain, obviously correct, each a transcription of the cpu backend's loop (native/src/cpu_moe.c,
// api_moe.c) with every f32 / f64 operation spelled out (__fmaf_rn, __fadd_rn, __fdiv_rn, ...) so
// that nvcc cannot contract or reorder it. 64-bit indices, grid-stride loops (any grid works).
//
// Device data is not trusted (the host cannot read it): an expert id outside [0, experts) is
// ignored by dispatch (row_of -1, not counted), a src_of entry outside [0, tokens*top_k) gathers a
// zero row, a row_of entry outside [0, rows) adds nothing in combine. No index read on the device
// ever addresses memory outside its buffer.
//
//   dsk4j_ref_moe_gate:        one block per token (DSK4J_MOE_REF_THREADS): the threads compute the
//                              token's logits (one expert each, the 16-lane order) into `logits`
//                              (unless logits_ready), then thread 0 routes exactly as route_token.
//   dsk4j_ref_moe_dispatch:    one thread does the whole sequential dispatch (as api_moe.c).
//   dsk4j_ref_moe_gather:      one thread per byte of xp.
//   dsk4j_ref_moe_combine:     one thread per element of y.
//   dsk4j_ref_moe_silu_quant:  one thread per (row, 128-column group) (e4m3 + scale), or per element
//                              (bf16 out, the moe.forward bf16-weight path).
//   dsk4j_ref_moe_bias_update: one thread, the cpu loop.
// Exponentials: exp() in f64 as the cpu (glibc) does; CUDA's f64 exp is within 1 ulp (not always
// correctly rounded), so an f32 result rounded from it may in rare cases differ by one f32 ulp
// from the cpu's (see dsk4j.h moe.gate / moe.silu_quant on cuda).
#include "fp8_convert.cuh"

#define DSK4J_MOE_REF_THREADS 128
#define DSK4J_MOE_SIGMOID 0
#define DSK4J_MOE_SOFTMAX 1
#define DSK4J_MOE_MAX_EXPERTS 4096

// a better than b: larger value, ties to the lower id (cpu_moe.c better()).
__device__ __forceinline__ bool dsk4j_moe_better(float va, long long a, float vb, long long b) {
    return va > vb || (va == vb && a < b);
}

__device__ __forceinline__ float dsk4j_moe_ld(const void* p, int dt, long long i) {
    return dt == DSK4J_DT_F32 ? ((const float*)p)[i] : dsk4j_bf16_to_f32(((const uint16_t*)p)[i]);
}

// sigmoid(l) = (float)(1 / (1 + exp(-(double)l)))
__device__ __forceinline__ float dsk4j_moe_sigmoid(float l) {
    return __double2float_rn(__ddiv_rn(1.0, __dadd_rn(1.0, exp(-(double)l))));
}

// silu(g) * u = g / (1 + expf(-g)) * u in f32, expf as the f64 exp rounded once.
__device__ __forceinline__ float dsk4j_moe_silu_mul(float g, float u) {
    const float e = __double2float_rn(exp(-(double)g));
    return __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, e)), u);
}

// The logit of x row xr (hidden elements) and gate row wr: 16 lanes, lane l = fma chain over
// j = l, l+16, ... ascending, then l += l+8 (l < 8), l += l+4, l += l+2, lane0 + lane1.
__device__ __forceinline__ float dsk4j_moe_logit(const void* x, int x_dtype, long long xo, const void* wg,
                                                 int wg_dtype, long long wo, long long hidden) {
    float acc[16];
#pragma unroll
    for (int l = 0; l < 16; l++) {
        float a = 0.0f;
        for (long long j = l; j < hidden; j += 16)
            a = __fmaf_rn(dsk4j_moe_ld(x, x_dtype, xo + j), dsk4j_moe_ld(wg, wg_dtype, wo + j), a);
        acc[l] = a;
    }
#pragma unroll
    for (int l = 0; l < 8; l++) acc[l] = __fadd_rn(acc[l], acc[l + 8]);
#pragma unroll
    for (int l = 0; l < 4; l++) acc[l] = __fadd_rn(acc[l], acc[l + 4]);
#pragma unroll
    for (int l = 0; l < 2; l++) acc[l] = __fadd_rn(acc[l], acc[l + 2]);
    return __fadd_rn(acc[0], acc[1]);
}

// The score of expert e from its logit: sigmoid, or softmax with the token's max m and f64 sum.
__device__ __forceinline__ float dsk4j_moe_score(float l, int score_func, float m, double sum) {
    if (score_func == DSK4J_MOE_SIGMOID) return dsk4j_moe_sigmoid(l);
    return __double2float_rn(__ddiv_rn(exp(__dsub_rn((double)l, (double)m)), sum));
}

// Weights of the chosen experts in place (w[r] holds the score of the r-th chosen expert): divided by
// their f32 sum (taken in output order) when norm and the sum > 0, then times scale.
__device__ __forceinline__ void dsk4j_moe_weights(float* w, long long top_k, int norm, float scale) {
    if (norm) {
        float sum = 0.0f;
        for (long long r = 0; r < top_k; r++) sum = __fadd_rn(sum, w[r]);
        if (sum > 0.0f)
            for (long long r = 0; r < top_k; r++) w[r] = __fdiv_rn(w[r], sum);
    }
    for (long long r = 0; r < top_k; r++) w[r] = __fmul_rn(w[r], scale);
}

// moe.gate, reference. Dynamic shared memory (host: 4*(experts + n_group) + experts + n_group
// bytes, rounded up to 16): b f32[experts], gscore f32[n_group], excl u8[experts], gkeep u8[n_group].
// logits f32 [tokens, experts] is always given (the caller's buffer or a workspace); with
// logits_ready != 0 it already holds the logits (written by a fast logits kernel) and is only read.
extern "C" __global__ void __launch_bounds__(DSK4J_MOE_REF_THREADS)
dsk4j_ref_moe_gate(int* indices, float* weights, float* logits, const void* x, int x_dtype, const void* wg,
                   int wg_dtype, const float* bias, long long tokens, long long hidden, long long experts,
                   long long top_k, long long n_group, long long topk_group, int score_func, int norm_topk_prob,
                   float scale, int logits_ready) {
    extern __shared__ __align__(16) unsigned char dsk4j_moe_smem[];
    const long long E = experts, G = n_group, per = E / G;
    float* b = (float*)dsk4j_moe_smem;
    float* gscore = b + E;
    unsigned char* excl = (unsigned char*)(gscore + G);
    unsigned char* gkeep = excl + E;
    for (long long t = blockIdx.x; t < tokens; t += gridDim.x) {
        float* lg = logits + t * E;
        if (!logits_ready)
            for (long long e = threadIdx.x; e < E; e += blockDim.x)
                lg[e] = dsk4j_moe_logit(x, x_dtype, t * hidden, wg, wg_dtype, e * hidden, hidden);
        __syncthreads(); // the block's global writes of lg are visible to thread 0
        if (threadIdx.x == 0) {
            float m = lg[0];
            double sum = 0.0;
            if (score_func != DSK4J_MOE_SIGMOID) {
                for (long long e = 1; e < E; e++)
                    if (lg[e] > m) m = lg[e];
                for (long long e = 0; e < E; e++) sum = __dadd_rn(sum, exp(__dsub_rn((double)lg[e], (double)m)));
            }
            for (long long e = 0; e < E; e++) {
                const float s = dsk4j_moe_score(lg[e], score_func, m, sum);
                b[e] = bias != nullptr ? __fadd_rn(s, bias[e]) : s;
                excl[e] = 0;
            }
            if (G > 1) {
                for (long long g = 0; g < G; g++) {
                    const float* bg = b + g * per;
                    long long i1 = 0;
                    for (long long i = 1; i < per; i++)
                        if (dsk4j_moe_better(bg[i], i, bg[i1], i1)) i1 = i;
                    if (bias != nullptr) {
                        long long i2 = -1;
                        for (long long i = 0; i < per; i++)
                            if (i != i1 && (i2 < 0 || dsk4j_moe_better(bg[i], i, bg[i2], i2))) i2 = i;
                        gscore[g] = __fadd_rn(bg[i1], bg[i2]);
                    } else {
                        gscore[g] = bg[i1];
                    }
                    gkeep[g] = 0;
                }
                for (long long r = 0; r < topk_group; r++) {
                    long long best = -1;
                    for (long long g = 0; g < G; g++)
                        if (!gkeep[g] && (best < 0 || dsk4j_moe_better(gscore[g], g, gscore[best], best))) best = g;
                    gkeep[best] = 1;
                }
                for (long long e = 0; e < E; e++) excl[e] = !gkeep[e / per];
            }
            int* idx = indices + t * top_k;
            float* w = weights + t * top_k;
            for (long long r = 0; r < top_k; r++) {
                long long best = -1;
                for (long long e = 0; e < E; e++)
                    if (!excl[e] && (best < 0 || dsk4j_moe_better(b[e], e, b[best], best))) best = e;
                excl[best] = 1;
                idx[r] = (int)best;
                w[r] = dsk4j_moe_score(lg[best], score_func, m, sum);
            }
            dsk4j_moe_weights(w, top_k, norm_topk_prob, scale);
        }
        __syncthreads(); // b / excl are reused by the next token
    }
}

// moe.dispatch, reference: one thread. work: i32 [experts] scratch (the cursors). Entries of
// indices outside [0, experts) are not counted and get row_of -1; in the masked layout the pairs
// of an expert past m_max get row_of -1 (counts still counts them). rows_cap >= offsets[experts]
// (host-checked bound).
extern "C" __global__ void dsk4j_ref_moe_dispatch(int* counts, int* offsets, int* row_of, int* src_of,
                                                  long long rows_cap, const int* indices, long long pairs,
                                                  long long experts, int align, long long m_max, int* work) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    for (long long e = 0; e < experts; e++) work[e] = 0;
    for (long long p = 0; p < pairs; p++) {
        const int e = indices[p];
        if (e >= 0 && e < experts) work[e]++;
    }
    long long total = 0;
    for (long long e = 0; e < experts; e++) {
        counts[e] = work[e];
        const long long start = m_max > 0 ? e * m_max : total;
        offsets[e] = (int)start;
        if (m_max <= 0) total += ((long long)work[e] + align - 1) / align * align;
        work[e] = 0; // now: rows given so far
    }
    if (m_max > 0) total = experts * m_max;
    offsets[experts] = (int)total;
    for (long long r = 0; r < rows_cap; r++) src_of[r] = -1;
    for (long long p = 0; p < pairs; p++) {
        const int e = indices[p];
        long long row = -1;
        if (e >= 0 && e < experts) {
            const long long local = work[e]++;
            if (m_max <= 0 || local < m_max) row = (long long)offsets[e] + local;
        }
        if (row >= rows_cap) row = -1; // cannot happen with rows_cap >= offsets[experts]
        row_of[p] = (int)row;
        if (row >= 0) src_of[row] = (int)p;
    }
}

// moe.gather, reference: xp[r] = x[src_of[r] / top_k] (row_bytes bytes per row), zero when
// src_of[r] < 0 or src_of[r] / top_k >= tokens.
extern "C" __global__ void dsk4j_ref_moe_gather(unsigned char* xp, const unsigned char* x, long long row_bytes,
                                                const int* src_of, long long rows, long long tokens,
                                                long long top_k) {
    DSK4J_GRID_STRIDE(q, rows * row_bytes) {
        const long long r = q / row_bytes, c = q % row_bytes;
        const long long p = src_of[r];
        const long long t = p >= 0 ? p / top_k : -1;
        xp[q] = (t >= 0 && t < tokens) ? x[t * row_bytes + c] : (unsigned char)0;
    }
}

// moe.combine, reference: y[t, h] = (sum_i fma(weights[t,i], e[row_of[t,i], h]) (+ shared[t, h]))
// rounded once to y_dtype; a row_of entry outside [0, rows) adds nothing. shared may be NULL.
extern "C" __global__ void dsk4j_ref_moe_combine(void* y, int y_dtype, const void* e, int e_dtype,
                                                 const float* weights, const int* row_of, const void* shared,
                                                 int shared_dtype, long long tokens, long long top_k, long long rows,
                                                 long long hidden) {
    DSK4J_GRID_STRIDE(q, tokens * hidden) {
        const long long t = q / hidden, h = q % hidden;
        float acc = 0.0f;
        for (long long i = 0; i < top_k; i++) {
            const long long row = row_of[t * top_k + i];
            if (row < 0 || row >= rows) continue;
            acc = __fmaf_rn(weights[t * top_k + i], dsk4j_moe_ld(e, e_dtype, row * hidden + h), acc);
        }
        if (shared != nullptr) acc = __fadd_rn(acc, dsk4j_moe_ld(shared, shared_dtype, q));
        if (y_dtype == DSK4J_DT_F32) ((float*)y)[q] = acc;
        else ((uint16_t*)y)[q] = dsk4j_f32_to_bf16(acc);
    }
}

// moe.silu_quant, reference: h f32 [rows, 2*inter] -> a = silu(g) * u; b == NULL: per 128 columns
// amax (NaN ignored) floored at 1e-4, s = amax / 448, q = e4m3(a / s) (inter % 128 == 0); b != NULL:
// b bf16 [rows, inter] = bf16(a) (any inter; q, qs unused).
extern "C" __global__ void __launch_bounds__(DSK4J_MOE_REF_THREADS)
dsk4j_ref_moe_silu_quant(uint8_t* q, float* qs, uint16_t* b, const float* h, long long rows, long long inter) {
    if (b != nullptr) {
        DSK4J_GRID_STRIDE(i, rows * inter) {
            const long long r = i / inter, c = i % inter;
            b[i] = dsk4j_f32_to_bf16(dsk4j_moe_silu_mul(h[r * 2 * inter + c], h[r * 2 * inter + inter + c]));
        }
        return;
    }
    const long long gpr = inter / 128;
    DSK4J_GRID_STRIDE(i, rows * gpr) {
        const long long r = i / gpr, c0 = (i % gpr) * 128;
        const float* g = h + r * 2 * inter + c0;
        const float* u = g + inter;
        float amax = 0.0f;
        for (int c = 0; c < 128; c++) {
            const float m = fabsf(dsk4j_moe_silu_mul(g[c], u[c]));
            if (m > amax) amax = m; // NaN ignored
        }
        if (amax < 1e-4f) amax = 1e-4f;
        const float s = __fdiv_rn(amax, 448.0f);
        for (int c = 0; c < 128; c++) q[r * inter + c0 + c] = dsk4j_f32_to_e4m3(__fdiv_rn(dsk4j_moe_silu_mul(g[c], u[c]), s));
        qs[r * gpr + c0 / 128] = s;
    }
}

// moe.bias_update, reference: mean = (sum of counts as f64, ascending) / experts; bias[e] += gamma
// if counts[e] < mean, -= gamma if counts[e] > mean (f32).
extern "C" __global__ void dsk4j_ref_moe_bias_update(float* bias, const int* counts, long long experts, float gamma) {
    if (blockIdx.x != 0 || threadIdx.x != 0 || experts <= 0) return;
    double total = 0.0;
    for (long long e = 0; e < experts; e++) total = __dadd_rn(total, (double)counts[e]);
    const double mean = __ddiv_rn(total, (double)experts);
    for (long long e = 0; e < experts; e++) {
        if ((double)counts[e] < mean) bias[e] = __fadd_rn(bias[e], gamma);
        else if ((double)counts[e] > mean) bias[e] = __fsub_rn(bias[e], gamma);
    }
}
