// mla_reference.cu - the GPU reference kernels of the mla ops (DESIGN.md 4.4; dsk4j.h mla.*):
// plain, obviously correct, f32 arithmetic, 64-bit indices, grid-stride loops (any grid works).
// Arguments arrive validated (api_mla.c): every seq_id / position / page index / seq_len /
// cu_seqlens entry a kernel reads was checked on the host, so no pointer is formed from an
// unchecked value.
//
// Cache formats (dsk4j.h): token `tok` of the pool (tok = page * 64 + slot) starts at byte
// tok * token_bytes; F32 (2304 B): f32 latent[512] | f32 rope[64]; BF16 (1152 B): bf16 latent |
// bf16 rope; FP8 (656 B): e4m3 latent[512] | f32 scale[4] (one per 128 latent values) | bf16
// rope[64]; the value of FP8 latent e is float(e4m3) * scale[e / 128] (exact in f32).
//
//   dsk4j_ref_mla_cache_append: one block (DSK4J_MLA_REF_THREADS) per token.
//   dsk4j_ref_mla_decode:       one block per query row (b, s, h), online softmax over chunks of
//                               64 visible keys (logits of a chunk in shared memory), each thread
//                               owning output columns tid and tid + 256. No split-KV.
//   dsk4j_ref_mla_prefill:      one block per (t, h), the same scheme, any qk_dim / v_dim <= 256.
//   dsk4j_ref_mla_absorb:       one thread per output element (absorb_q or absorb_o).
// Block size: DSK4J_MLA_REF_THREADS (256) for all of them (cuda_mla.c: REF_THREADS).
#include "fp8_convert.cuh"

#define DSK4J_MLA_REF_THREADS 256
#define DSK4J_MLA_LAT 512
#define DSK4J_MLA_RD 64
#define DSK4J_MLA_KD 576   // 512 + 64
#define DSK4J_MLA_PAGE 64
#define DSK4J_MLA_F32 0    // dsk4j.h DSK4J_MLA_CACHE_*
#define DSK4J_MLA_BF16 1
#define DSK4J_MLA_FP8 2

__device__ __forceinline__ long long dsk4j_mla_token_bytes(int format) {
    return format == DSK4J_MLA_F32 ? 2304 : format == DSK4J_MLA_BF16 ? 1152 : 656;
}

// Value e (0..575: latent 0..511, rope 512..575) of pool token tok, as the format defines it.
__device__ __forceinline__ float dsk4j_mla_cache_val(const uint8_t* cache, int format, long long tok, int e) {
    const uint8_t* t = cache + tok * dsk4j_mla_token_bytes(format);
    if (format == DSK4J_MLA_F32) return ((const float*)t)[e];
    if (format == DSK4J_MLA_BF16) return dsk4j_bf16_to_f32(((const uint16_t*)t)[e]);
    if (e < DSK4J_MLA_LAT) return __fmul_rn(dsk4j_e4m3_to_f32(t[e]), ((const float*)(t + 512))[e >> 7]);
    return dsk4j_bf16_to_f32(((const uint16_t*)(t + 528))[e - DSK4J_MLA_LAT]);
}

// Sum of v over the block (DSK4J_MLA_REF_THREADS threads); every thread gets it. red: 8 floats.
__device__ __forceinline__ float dsk4j_mla_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// mla.cache_append. Token t -> pool token block_table[seq_ids[t] * max_pages + positions[t] / 64]
// * 64 + positions[t] % 64. kv_latent [tokens, 512], k_pe [tokens, 64] in dtype (f32 / bf16).
extern "C" __global__ void __launch_bounds__(DSK4J_MLA_REF_THREADS, 1)
dsk4j_ref_mla_cache_append(uint8_t* cache, int format, const void* kv_latent, const void* k_pe, int dtype,
                           const int* seq_ids, const int* positions, const int* block_table,
                           long long max_pages, long long tokens) {
    __shared__ float sc[4];
    const int tid = threadIdx.x;
    const long long tb = dsk4j_mla_token_bytes(format);
    for (long long t = blockIdx.x; t < tokens; t += gridDim.x) {
        const long long b = seq_ids[t], p = positions[t];
        const long long page = block_table[b * max_pages + p / DSK4J_MLA_PAGE];
        uint8_t* dst = cache + (page * DSK4J_MLA_PAGE + p % DSK4J_MLA_PAGE) * tb;
        if (format == DSK4J_MLA_F32) {
            for (int e = tid; e < DSK4J_MLA_LAT; e += blockDim.x)
                ((float*)dst)[e] = dsk4j_load_as_f32(kv_latent, dtype, t * DSK4J_MLA_LAT + e);
            for (int e = tid; e < DSK4J_MLA_RD; e += blockDim.x)
                ((float*)dst)[DSK4J_MLA_LAT + e] = dsk4j_load_as_f32(k_pe, dtype, t * DSK4J_MLA_RD + e);
        } else if (format == DSK4J_MLA_BF16) {
            // bf16 input is copied (bits kept, NaN payloads too); f32 input rounded to nearest even.
            for (int e = tid; e < DSK4J_MLA_LAT; e += blockDim.x)
                ((uint16_t*)dst)[e] = dtype == DSK4J_DT_BF16
                                          ? ((const uint16_t*)kv_latent)[t * DSK4J_MLA_LAT + e]
                                          : dsk4j_f32_to_bf16(((const float*)kv_latent)[t * DSK4J_MLA_LAT + e]);
            for (int e = tid; e < DSK4J_MLA_RD; e += blockDim.x)
                ((uint16_t*)dst)[DSK4J_MLA_LAT + e] = dtype == DSK4J_DT_BF16
                                                          ? ((const uint16_t*)k_pe)[t * DSK4J_MLA_RD + e]
                                                          : dsk4j_f32_to_bf16(((const float*)k_pe)[t * DSK4J_MLA_RD + e]);
        } else {
            // FP8: per group of 128 as fp8.act_quant with ue8m0 (amax ignores NaN, floor 1e-4).
            if (tid < 4) {
                float amax = 0.0f;
                for (int e = 0; e < 128; e++)
                    amax = fmaxf(amax, fabsf(dsk4j_load_as_f32(kv_latent, dtype, t * DSK4J_MLA_LAT + tid * 128 + e)));
                const float s = dsk4j_amax_to_scale(amax, 1);
                sc[tid] = s;
                ((float*)(dst + 512))[tid] = s;
            }
            __syncthreads();
            for (int e = tid; e < DSK4J_MLA_LAT; e += blockDim.x)
                dst[e] = dsk4j_f32_to_e4m3(
                    __fdiv_rn(dsk4j_load_as_f32(kv_latent, dtype, t * DSK4J_MLA_LAT + e), sc[e >> 7]));
            for (int e = tid; e < DSK4J_MLA_RD; e += blockDim.x)
                ((uint16_t*)(dst + 528))[e] = dtype == DSK4J_DT_BF16
                                                  ? ((const uint16_t*)k_pe)[t * DSK4J_MLA_RD + e]
                                                  : dsk4j_f32_to_bf16(((const float*)k_pe)[t * DSK4J_MLA_RD + e]);
            __syncthreads(); // sc is rewritten for the next token
        }
    }
}

// mla.decode, reference. Row r = (b * sq + s) * heads + h; visible keys [0, kv_end) with
// kv_end = causal ? L - sq + s + 1 : L (L = seq_lens[b]; 0 when L = 0): o = 0, lse = -inf.
// Online softmax over chunks of 64 keys: logits of the chunk -> lg (one warp per 8 keys, lanes
// over the 576 dims), then m_new = max(m, chunk max), rescale by exp(m - m_new), add
// exp(logit - m_new) * latent. o_latent in dtype, lse (may be NULL) f32.
extern "C" __global__ void __launch_bounds__(DSK4J_MLA_REF_THREADS, 1)
dsk4j_ref_mla_decode(void* o_latent, float* lse, const void* q_latent, const void* q_pe, int dtype,
                     const uint8_t* cache, int format, const int* block_table, const int* seq_lens,
                     long long batch, long long sq, long long heads, long long max_pages, float scale,
                     int causal) {
    __shared__ float qs[DSK4J_MLA_KD];
    __shared__ float lg[64];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const long long rows = batch * sq * heads;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const long long b = r / (sq * heads), s = (r / heads) % sq;
        const long long L = seq_lens[b];
        const long long kv_end = L <= 0 ? 0 : causal ? L - sq + s + 1 : L;
        for (int e = tid; e < DSK4J_MLA_KD; e += blockDim.x)
            qs[e] = e < DSK4J_MLA_LAT ? dsk4j_load_as_f32(q_latent, dtype, r * DSK4J_MLA_LAT + e)
                                      : dsk4j_load_as_f32(q_pe, dtype, r * DSK4J_MLA_RD + (e - DSK4J_MLA_LAT));
        __syncthreads();
        float m = -INFINITY, l = 0.0f, o0 = 0.0f, o1 = 0.0f; // o0: column tid, o1: column tid + 256
        for (long long c0 = 0; c0 < kv_end; c0 += 64) {
            const int n = (int)min(64ll, kv_end - c0);
            for (int i = 0; i < 8; i++) {
                const int j = warp * 8 + i;
                if (j >= n) break;
                const long long p = c0 + j;
                const long long tok = (long long)block_table[b * max_pages + p / DSK4J_MLA_PAGE] * DSK4J_MLA_PAGE +
                                      p % DSK4J_MLA_PAGE;
                float acc = 0.0f;
                for (int e = lane; e < DSK4J_MLA_KD; e += 32) acc += qs[e] * dsk4j_mla_cache_val(cache, format, tok, e);
                acc = dsk4j_mla_warp_sum(acc);
                if (lane == 0) lg[j] = acc * scale;
            }
            __syncthreads();
            float cm = -INFINITY;
            for (int j = 0; j < n; j++) cm = fmaxf(cm, lg[j]);
            const float m_new = fmaxf(m, cm);
            const float alpha = m == -INFINITY ? 0.0f : expf(m - m_new);
            o0 *= alpha;
            o1 *= alpha;
            l *= alpha;
            for (int j = 0; j < n; j++) {
                const long long p = c0 + j;
                const long long tok = (long long)block_table[b * max_pages + p / DSK4J_MLA_PAGE] * DSK4J_MLA_PAGE +
                                      p % DSK4J_MLA_PAGE;
                const float pj = expf(lg[j] - m_new);
                l += pj;
                o0 += pj * dsk4j_mla_cache_val(cache, format, tok, tid);
                o1 += pj * dsk4j_mla_cache_val(cache, format, tok, tid + 256);
            }
            m = m_new;
            __syncthreads(); // lg is rewritten by the next chunk
        }
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        dsk4j_store_from_f32(o_latent, dtype, r * DSK4J_MLA_LAT + tid, o0 * inv);
        dsk4j_store_from_f32(o_latent, dtype, r * DSK4J_MLA_LAT + tid + 256, o1 * inv);
        if (lse != nullptr && tid == 0) lse[r] = kv_end > 0 ? m + logf(l) : -INFINITY;
        __syncthreads(); // qs is rewritten for the next row
    }
}

// mla.prefill, reference. Row (t, h): sequence i with cu_seqlens[i] <= t < cu_seqlens[i+1]
// (binary search); keys u in [cu_seqlens[i], causal ? t + 1 : cu_seqlens[i+1]);
// logit = scale * q[t,h,:] . k[u,h,:]; o[t,h,:] = softmax . v[u,h,:]. qk_dim, v_dim <= 256.
extern "C" __global__ void __launch_bounds__(DSK4J_MLA_REF_THREADS, 1)
dsk4j_ref_mla_prefill(void* o, float* lse, const void* q, const void* k, const void* v, int dtype,
                      const int* cu_seqlens, long long nseq, long long tokens, long long heads, long long qk_dim,
                      long long v_dim, float scale, int causal) {
    __shared__ float qs[256];
    __shared__ float lg[64];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    for (long long r = blockIdx.x; r < tokens * heads; r += gridDim.x) {
        const long long t = r / heads, h = r % heads;
        long long lo = 0, hi = nseq - 1; // the last i with cu_seqlens[i] <= t
        while (lo < hi) {
            const long long mid = (lo + hi + 1) / 2;
            if (cu_seqlens[mid] <= t) lo = mid;
            else hi = mid - 1;
        }
        const long long u0 = cu_seqlens[lo], u1 = causal ? t + 1 : cu_seqlens[lo + 1];
        for (int e = tid; e < qk_dim; e += blockDim.x) qs[e] = dsk4j_load_as_f32(q, dtype, r * qk_dim + e);
        __syncthreads();
        float m = -INFINITY, l = 0.0f, acc_o = 0.0f; // acc_o: column tid (< v_dim)
        for (long long c0 = u0; c0 < u1; c0 += 64) {
            const int n = (int)min(64ll, u1 - c0);
            for (int i = 0; i < 8; i++) {
                const int j = warp * 8 + i;
                if (j >= n) break;
                const long long kr = ((c0 + j) * heads + h) * qk_dim;
                float acc = 0.0f;
                for (int e = lane; e < qk_dim; e += 32) acc += qs[e] * dsk4j_load_as_f32(k, dtype, kr + e);
                acc = dsk4j_mla_warp_sum(acc);
                if (lane == 0) lg[j] = acc * scale;
            }
            __syncthreads();
            float cm = -INFINITY;
            for (int j = 0; j < n; j++) cm = fmaxf(cm, lg[j]);
            const float m_new = fmaxf(m, cm);
            const float alpha = m == -INFINITY ? 0.0f : expf(m - m_new);
            acc_o *= alpha;
            l *= alpha;
            for (int j = 0; j < n; j++) {
                const float pj = expf(lg[j] - m_new);
                l += pj;
                if (tid < v_dim) acc_o += pj * dsk4j_load_as_f32(v, dtype, ((c0 + j) * heads + h) * v_dim + tid);
            }
            m = m_new;
            __syncthreads();
        }
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        if (tid < v_dim) dsk4j_store_from_f32(o, dtype, r * v_dim + tid, acc_o * inv);
        if (lse != nullptr && tid == 0) lse[r] = u1 > u0 ? m + logf(l) : -INFINITY;
        __syncthreads();
    }
}

// mla.absorb_q (o_side 0): y[t,h,c] = sum_{d<128} x[(t*heads+h)*x_head_stride + d] * w[h,d,c], c < 512;
// mla.absorb_o (o_side 1): y[t,h,d] = sum_{c<512} x[(t*heads+h)*512 + c] * w[h,128+d,c], d < 128.
// w = wkv_b [heads, 256, 512] in w_dtype; x, y in dtype; f32 accumulation, y rounded once.
extern "C" __global__ void __launch_bounds__(DSK4J_MLA_REF_THREADS, 1)
dsk4j_ref_mla_absorb(void* y, const void* x, int dtype, const void* w, int w_dtype, long long tokens,
                     long long heads, long long x_head_stride, int o_side) {
    const long long cols = o_side ? 128 : DSK4J_MLA_LAT, n = tokens * heads * cols;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        const long long row = i / cols, c = i % cols, h = row % heads;
        float acc = 0.0f;
        if (!o_side) {
            for (long long d = 0; d < 128; d++)
                acc += dsk4j_load_as_f32(x, dtype, row * x_head_stride + d) *
                       dsk4j_load_as_f32(w, w_dtype, (h * 256 + d) * DSK4J_MLA_LAT + c);
        } else {
            for (long long e = 0; e < DSK4J_MLA_LAT; e++)
                acc += dsk4j_load_as_f32(x, dtype, row * DSK4J_MLA_LAT + e) *
                       dsk4j_load_as_f32(w, w_dtype, (h * 256 + 128 + c) * DSK4J_MLA_LAT + e);
        }
        dsk4j_store_from_f32(y, dtype, i, acc);
    }
}
