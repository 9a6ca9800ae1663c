// moe.cu - the fast moe kernels: the same results as moe_reference.cu bit for bit (the same f32 /
// f64 operations in the same order; only the work is spread differently), same index policy
// (out-of-range device indices ignored, never dereferenced).
//
//   dsk4j_moe_logits_lanes: logits, 16 threads per (token, expert): thread l of the 16 owns lane l
//       of the contract's 16-lane dot product (j = l, l+16, ...), then the lanes are summed with
//       width-16 shuffles in the contract's order (l += l+8, l += l+4, l += l+2, 0 + 1). Small T.
//   dsk4j_moe_logits_tiled: logits of a 16-token x 16-expert tile per block of 256 threads:
//       thread (lane l = tid % 16, group tid / 16) keeps lane l of 4 tokens x 4 experts; x and
//       wg are staged through shared memory 64 hidden columns at a time (lane l uses columns
//       c0 + l + 16 i, i < 4, ascending: the lane's fma chain is the contract's). Large T.
//   dsk4j_moe_route: routing of one token per block (DSK4J_MOE_ROUTE_THREADS) from its logits,
//       experts <= DSK4J_MOE_ROUTE_MAX: scores in parallel, group top-2 scores one group per
//       thread (the cpu's scan within a group), then every selection round a block-wide arg-best
//       under the strict order of dsk4j_moe_better (value descending, ties to the lower id:
//       a total order without NaN, so the reduction's result equals the sequential scan's; with
//       NaN the answer is unspecified but always a not-yet-chosen id). The softmax max, the f64
//       softmax sum (ascending e) and the weights are sequential in thread 0 as in the cpu.
//   dsk4j_moe_dispatch: one block of DSK4J_MOE_DISPATCH_THREADS (32 warps); warp w owns the pairs
//       [w*S, (w+1)*S): pass 1 counts per (warp, expert) in `work` (i32 [32, experts]) with
//       __match_any_sync per 32 pairs, pass 2 turns those into per-expert exclusive prefixes over
//       the warps and scans the experts' padded sizes into offsets, pass 3 walks the pairs again
//       in order: row = offsets[e] + (pairs of e in earlier warps) + (in earlier steps of this
//       warp) + (in lower lanes of this step): ascending p inside each expert, as the cpu.
//   dsk4j_moe_gather: one block per row, 16-byte copies when row_bytes % 16 == 0 and both bases
//       are 16-byte aligned (vec, host-checked), else byte copies.
//   dsk4j_moe_combine: one thread per 4 columns of a token (vec: hidden % 4 == 0, y / e / shared
//       16-byte aligned), the reference's per-element fma order; else one per element.
//   dsk4j_moe_silu_quant: e4m3: one warp per (row, 128-column group), 4 columns per lane with
//       float4 loads (vec: h 16-byte and q 4-byte aligned) and a warp max; bf16: as the reference.
//   dsk4j_moe_silu_mul_f32: silu(g) * u unrounded into f32 (moe.forward, f32 weights; used by both
//       kernel modes), one thread per element.
//   dsk4j_moe_bias_update: one block of 256: an exact i64 sum of counts (equal to the reference's
//       f64 sum of integers, every partial sum < 2^53), then one thread per expert.
#define DSK4J_MOE_LANES_THREADS 128
#define DSK4J_MOE_TILE_THREADS 256
#define DSK4J_MOE_ROUTE_THREADS 128
#define DSK4J_MOE_ROUTE_MAX 1024
#define DSK4J_MOE_DISPATCH_THREADS 1024
#define DSK4J_MOE_THREADS 256

extern "C" __global__ void __launch_bounds__(DSK4J_MOE_LANES_THREADS)
dsk4j_moe_logits_lanes(float* logits, const void* x, int x_dtype, const void* wg, int wg_dtype, long long tokens,
                       long long hidden, long long experts) {
    const int lane = threadIdx.x & 15;
    const long long total = tokens * experts;
    const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const long long nwarps = ((long long)gridDim.x * blockDim.x) >> 5;
    // warp-uniform loop: each warp takes pairs 2w, 2w+1 (half-warps), all 32 lanes shuffle
    for (long long q0 = 2 * warp; q0 < total; q0 += 2 * nwarps) {
        const long long q = q0 + ((threadIdx.x >> 4) & 1);
        const bool valid = q < total;
        float a = 0.0f;
        if (valid) {
            const long long t = q / experts, e = q % experts, xo = t * hidden, wo = e * hidden;
            for (long long j = lane; j < hidden; j += 16)
                a = __fmaf_rn(dsk4j_moe_ld(x, x_dtype, xo + j), dsk4j_moe_ld(wg, wg_dtype, wo + j), a);
        }
#pragma unroll
        for (int o = 8; o > 0; o >>= 1) {
            const float other = __shfl_down_sync(0xffffffffu, a, o, 16);
            a = __fadd_rn(a, other); // meaningful in lanes < o: lane l = l + (l + o)
        }
        if (valid && lane == 0) logits[q] = a;
    }
}

#define DSK4J_MOE_TT 16 // tokens per tile
#define DSK4J_MOE_TE 16 // experts per tile
#define DSK4J_MOE_KC 64 // hidden columns per stage

extern "C" __global__ void __launch_bounds__(DSK4J_MOE_TILE_THREADS)
dsk4j_moe_logits_tiled(float* logits, const void* x, int x_dtype, const void* wg, int wg_dtype, long long tokens,
                       long long hidden, long long experts) {
    __shared__ float xs[DSK4J_MOE_TT][DSK4J_MOE_KC + 1];
    __shared__ float ws[DSK4J_MOE_TE][DSK4J_MOE_KC + 1];
    const int tid = threadIdx.x, lane = tid & 15, grp = tid >> 4;
    const int tb = (grp >> 2) * 4, eb = (grp & 3) * 4;
    const long long ttiles = (tokens + DSK4J_MOE_TT - 1) / DSK4J_MOE_TT;
    const long long etiles = (experts + DSK4J_MOE_TE - 1) / DSK4J_MOE_TE;
    for (long long tile = blockIdx.x; tile < ttiles * etiles; tile += gridDim.x) {
        const long long t0 = (tile / etiles) * DSK4J_MOE_TT, e0 = (tile % etiles) * DSK4J_MOE_TE;
        float acc[4][4];
#pragma unroll
        for (int a = 0; a < 4; a++)
#pragma unroll
            for (int c = 0; c < 4; c++) acc[a][c] = 0.0f;
        for (long long c0 = 0; c0 < hidden; c0 += DSK4J_MOE_KC) {
            __syncthreads(); // the previous stage has been read
#pragma unroll
            for (int i = 0; i < (DSK4J_MOE_TT * DSK4J_MOE_KC) / DSK4J_MOE_TILE_THREADS; i++) {
                const int v = tid + i * DSK4J_MOE_TILE_THREADS, r = v / DSK4J_MOE_KC, c = v % DSK4J_MOE_KC;
                const long long t = t0 + r, e = e0 + r, j = c0 + c;
                xs[r][c] = (t < tokens && j < hidden) ? dsk4j_moe_ld(x, x_dtype, t * hidden + j) : 0.0f;
                ws[r][c] = (e < experts && j < hidden) ? dsk4j_moe_ld(wg, wg_dtype, e * hidden + j) : 0.0f;
            }
            __syncthreads();
#pragma unroll
            for (int i = 0; i < DSK4J_MOE_KC / 16; i++) {
                const int c = lane + 16 * i;
                if (c0 + c < hidden) { // no extra fma past the end: fma(0, 0, -0) would be +0
                    float xv[4], wv[4];
#pragma unroll
                    for (int a = 0; a < 4; a++) xv[a] = xs[tb + a][c];
#pragma unroll
                    for (int b = 0; b < 4; b++) wv[b] = ws[eb + b][c];
#pragma unroll
                    for (int a = 0; a < 4; a++)
#pragma unroll
                        for (int b = 0; b < 4; b++) acc[a][b] = __fmaf_rn(xv[a], wv[b], acc[a][b]);
                }
            }
        }
#pragma unroll
        for (int a = 0; a < 4; a++)
#pragma unroll
            for (int b = 0; b < 4; b++) {
                float v = acc[a][b];
#pragma unroll
                for (int o = 8; o > 0; o >>= 1) v = __fadd_rn(v, __shfl_down_sync(0xffffffffu, v, o, 16));
                const long long t = t0 + tb + a, e = e0 + eb + b;
                if (lane == 0 && t < tokens && e < experts) logits[t * experts + e] = v;
            }
    }
}

// Block-wide arg-best of v[0..n) over the ids with skip[i] == 0 (DSK4J_MOE_ROUTE_THREADS threads,
// all must call it); -1 when every id is skipped. red_v / red_i: one slot per warp, res: 1 slot.
__device__ __forceinline__ long long dsk4j_moe_block_best(const float* v, const unsigned char* skip, long long n,
                                                          float* red_v, int* red_i, int* res) {
    int bi = -1;
    float bv = 0.0f;
    for (long long i = threadIdx.x; i < n; i += blockDim.x)
        if (!skip[i] && (bi < 0 || dsk4j_moe_better(v[i], i, bv, bi))) {
            bi = (int)i;
            bv = v[i];
        }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (oi >= 0 && (bi < 0 || dsk4j_moe_better(ov, oi, bv, bi))) {
            bi = oi;
            bv = ov;
        }
    }
    const int warp = threadIdx.x >> 5;
    if ((threadIdx.x & 31) == 0) {
        red_v[warp] = bv;
        red_i[warp] = bi;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        int b = -1;
        float best = 0.0f;
        for (int w = 0; w < (int)(blockDim.x >> 5); w++)
            if (red_i[w] >= 0 && (b < 0 || dsk4j_moe_better(red_v[w], red_i[w], best, b))) {
                b = red_i[w];
                best = red_v[w];
            }
        *res = b;
    }
    __syncthreads();
    const int r = *res;
    __syncthreads(); // res / red may be reused by the next call
    return r;
}

extern "C" __global__ void __launch_bounds__(DSK4J_MOE_ROUTE_THREADS)
dsk4j_moe_route(int* indices, float* weights, const float* logits, const float* bias, long long tokens,
                long long experts, long long top_k, long long n_group, long long topk_group, int score_func,
                int norm_topk_prob, float scale) {
    __shared__ float b[DSK4J_MOE_ROUTE_MAX];
    __shared__ double ex[DSK4J_MOE_ROUTE_MAX];
    __shared__ float gscore[DSK4J_MOE_ROUTE_MAX];
    __shared__ unsigned char excl[DSK4J_MOE_ROUTE_MAX];
    __shared__ unsigned char gkeep[DSK4J_MOE_ROUTE_MAX];
    __shared__ float red_v[DSK4J_MOE_ROUTE_THREADS / 32];
    __shared__ int red_i[DSK4J_MOE_ROUTE_THREADS / 32];
    __shared__ int res;
    __shared__ float sm_m;
    __shared__ double sm_sum;
    const long long E = experts, G = n_group, per = E / G;
    for (long long t = blockIdx.x; t < tokens; t += gridDim.x) {
        const float* lg = logits + t * E;
        if (score_func != DSK4J_MOE_SIGMOID) {
            if (threadIdx.x == 0) {
                float m = lg[0];
                for (long long e = 1; e < E; e++)
                    if (lg[e] > m) m = lg[e];
                sm_m = m;
            }
            __syncthreads();
            for (long long e = threadIdx.x; e < E; e += blockDim.x) ex[e] = exp(__dsub_rn((double)lg[e], (double)sm_m));
            __syncthreads();
            if (threadIdx.x == 0) {
                double sum = 0.0;
                for (long long e = 0; e < E; e++) sum = __dadd_rn(sum, ex[e]);
                sm_sum = sum;
            }
            __syncthreads();
        }
        const double sum = score_func != DSK4J_MOE_SIGMOID ? sm_sum : 0.0;
        for (long long e = threadIdx.x; e < E; e += blockDim.x) {
            const float s = score_func == DSK4J_MOE_SIGMOID ? dsk4j_moe_sigmoid(lg[e])
                                                            : __double2float_rn(__ddiv_rn(ex[e], sum));
            b[e] = bias != nullptr ? __fadd_rn(s, bias[e]) : s;
            excl[e] = 0;
        }
        __syncthreads();
        if (G > 1) {
            for (long long g = threadIdx.x; g < G; g += blockDim.x) {
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
            __syncthreads();
            for (long long r = 0; r < topk_group; r++) {
                const long long best = dsk4j_moe_block_best(gscore, gkeep, G, red_v, red_i, &res);
                if (threadIdx.x == 0 && best >= 0) gkeep[best] = 1;
                __syncthreads();
            }
            for (long long e = threadIdx.x; e < E; e += blockDim.x) excl[e] = !gkeep[e / per];
            __syncthreads();
        }
        int* idx = indices + t * top_k;
        float* w = weights + t * top_k;
        for (long long r = 0; r < top_k; r++) {
            const long long best = dsk4j_moe_block_best(b, excl, E, red_v, red_i, &res);
            if (threadIdx.x == 0) {
                // best >= 0: top_k <= topk_group * per (validated) ids are never all excluded
                const long long e = best >= 0 ? best : 0;
                excl[e] = 1;
                idx[r] = (int)e;
                w[r] = score_func == DSK4J_MOE_SIGMOID ? dsk4j_moe_sigmoid(lg[e]) : __double2float_rn(__ddiv_rn(ex[e], sum));
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) dsk4j_moe_weights(w, top_k, norm_topk_prob, scale);
        __syncthreads(); // shared arrays are reused by the next token
    }
}

extern "C" __global__ void __launch_bounds__(DSK4J_MOE_DISPATCH_THREADS)
dsk4j_moe_dispatch(int* counts, int* offsets, int* row_of, int* src_of, long long rows_cap, const int* indices,
                   long long pairs, long long experts, int align, long long m_max, int* work) {
    __shared__ long long wsum[DSK4J_MOE_DISPATCH_THREADS / 32];
    if (blockIdx.x != 0) return;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int nw = DSK4J_MOE_DISPATCH_THREADS / 32;
    const long long E = experts;
    for (long long i = tid; i < (long long)nw * E; i += DSK4J_MOE_DISPATCH_THREADS) work[i] = 0;
    for (long long r = tid; r < rows_cap; r += DSK4J_MOE_DISPATCH_THREADS) src_of[r] = -1;
    __syncthreads();
    const long long seg = (pairs + nw - 1) / nw;
    const long long p_begin = (long long)warp * seg, p_end = min(pairs, p_begin + seg);
    int* mine = work + (long long)warp * E;
    // pass 1: per (warp, expert) counts
    for (long long p0 = p_begin; p0 < p_end; p0 += 32) {
        const long long p = p0 + lane;
        const int e = p < p_end ? indices[p] : -1;
        const bool in = p < p_end && e >= 0 && e < E;
        const unsigned mask = __match_any_sync(0xffffffffu, in ? e : -1);
        if (in && (__ffs(mask) - 1) == lane) mine[e] += __popc(mask);
        __syncwarp();
    }
    __syncthreads();
    // pass 2: experts [tid*C, (tid+1)*C): prefixes over the warps, counts, padded sizes, scan
    const long long C = (E + DSK4J_MOE_DISPATCH_THREADS - 1) / DSK4J_MOE_DISPATCH_THREADS;
    const long long e_begin = min(E, (long long)tid * C), e_end = min(E, e_begin + C);
    long long local = 0;
    for (long long e = e_begin; e < e_end; e++) {
        long long run = 0;
        for (int w = 0; w < nw; w++) {
            const long long c = work[(long long)w * E + e];
            work[(long long)w * E + e] = (int)run;
            run += c;
        }
        counts[e] = (int)run;
        local += m_max > 0 ? m_max : (run + align - 1) / align * align;
    }
    // exclusive scan of `local` over the threads (integers: any order is exact)
    long long incl = local;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        const long long v = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += v;
    }
    if (lane == 31) wsum[warp] = incl;
    __syncthreads();
    long long before = 0;
    for (int w = 0; w < warp; w++) before += wsum[w];
    long long start = before + incl - local;
    for (long long e = e_begin; e < e_end; e++) {
        const long long c = counts[e];
        offsets[e] = (int)(m_max > 0 ? e * m_max : start);
        start += m_max > 0 ? m_max : (c + align - 1) / align * align;
    }
    if (tid == DSK4J_MOE_DISPATCH_THREADS - 1) offsets[E] = (int)(m_max > 0 ? E * m_max : before + incl);
    __syncthreads();
    // pass 3: rows in pair order
    for (long long p0 = p_begin; p0 < p_end; p0 += 32) {
        const long long p = p0 + lane;
        const int e = p < p_end ? indices[p] : -1;
        const bool in = p < p_end && e >= 0 && e < E;
        const unsigned mask = __match_any_sync(0xffffffffu, in ? e : -1);
        const long long base = in ? (long long)mine[e] : 0;
        __syncwarp();
        if (in && (__ffs(mask) - 1) == lane) mine[e] = (int)(base + __popc(mask));
        __syncwarp();
        if (p < p_end) {
            long long row = -1;
            if (in) {
                const long long loc = base + __popc(mask & ((1u << lane) - 1u));
                if (m_max <= 0 || loc < m_max) row = (long long)offsets[e] + loc;
            }
            if (row >= rows_cap) row = -1; // cannot happen with rows_cap >= offsets[experts]
            row_of[p] = (int)row;
            if (row >= 0) src_of[row] = (int)p;
        }
    }
}

extern "C" __global__ void __launch_bounds__(DSK4J_MOE_THREADS)
dsk4j_moe_gather(unsigned char* xp, const unsigned char* x, long long row_bytes, const int* src_of, long long rows,
                 long long tokens, long long top_k, int vec) {
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const long long p = src_of[r];
        const long long t = p >= 0 ? p / top_k : -1;
        const bool ok = t >= 0 && t < tokens;
        if (vec) {
            uint4* d = (uint4*)(xp + r * row_bytes);
            const uint4* s = (const uint4*)(x + (ok ? t : 0) * row_bytes);
            for (long long i = threadIdx.x; i < row_bytes / 16; i += blockDim.x) d[i] = ok ? s[i] : make_uint4(0, 0, 0, 0);
        } else {
            for (long long i = threadIdx.x; i < row_bytes; i += blockDim.x)
                xp[r * row_bytes + i] = ok ? x[t * row_bytes + i] : (unsigned char)0;
        }
    }
}

__device__ __forceinline__ void dsk4j_moe_ld4(const void* p, int dt, long long i, float f[4]) {
    if (dt == DSK4J_DT_F32) {
        const float4 a = *(const float4*)((const float*)p + i);
        f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w;
    } else {
        const uint2 a = *(const uint2*)((const uint16_t*)p + i);
        f[0] = dsk4j_bf16_to_f32(a.x & 0xffffu); f[1] = dsk4j_bf16_to_f32(a.x >> 16);
        f[2] = dsk4j_bf16_to_f32(a.y & 0xffffu); f[3] = dsk4j_bf16_to_f32(a.y >> 16);
    }
}

extern "C" __global__ void __launch_bounds__(DSK4J_MOE_THREADS)
dsk4j_moe_combine(void* y, int y_dtype, const void* e, int e_dtype, const float* weights, const int* row_of,
                  const void* shared, int shared_dtype, long long tokens, long long top_k, long long rows,
                  long long hidden, int vec) {
    if (!vec) {
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
        return;
    }
    const long long per_row = hidden / 4;
    DSK4J_GRID_STRIDE(u, tokens * per_row) {
        const long long t = u / per_row, h = (u % per_row) * 4, q = t * hidden + h;
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (long long i = 0; i < top_k; i++) {
            const long long row = row_of[t * top_k + i];
            if (row < 0 || row >= rows) continue;
            const float w = weights[t * top_k + i];
            float v[4];
            dsk4j_moe_ld4(e, e_dtype, row * hidden + h, v);
#pragma unroll
            for (int c = 0; c < 4; c++) acc[c] = __fmaf_rn(w, v[c], acc[c]);
        }
        if (shared != nullptr) {
            float v[4];
            dsk4j_moe_ld4(shared, shared_dtype, q, v);
#pragma unroll
            for (int c = 0; c < 4; c++) acc[c] = __fadd_rn(acc[c], v[c]);
        }
        if (y_dtype == DSK4J_DT_F32) {
            *(float4*)((float*)y + q) = make_float4(acc[0], acc[1], acc[2], acc[3]);
        } else {
            const uint32_t lo = (uint32_t)dsk4j_f32_to_bf16(acc[0]) | ((uint32_t)dsk4j_f32_to_bf16(acc[1]) << 16);
            const uint32_t hi = (uint32_t)dsk4j_f32_to_bf16(acc[2]) | ((uint32_t)dsk4j_f32_to_bf16(acc[3]) << 16);
            *(uint2*)((uint16_t*)y + q) = make_uint2(lo, hi);
        }
    }
}

extern "C" __global__ void __launch_bounds__(DSK4J_MOE_THREADS)
dsk4j_moe_silu_quant(uint8_t* q, float* qs, uint16_t* b, const float* h, long long rows, long long inter, int vec) {
    if (b != nullptr) {
        DSK4J_GRID_STRIDE(i, rows * inter) {
            const long long r = i / inter, c = i % inter;
            b[i] = dsk4j_f32_to_bf16(dsk4j_moe_silu_mul(h[r * 2 * inter + c], h[r * 2 * inter + inter + c]));
        }
        return;
    }
    const int lane = threadIdx.x & 31, wpb = DSK4J_MOE_THREADS / 32;
    const long long gpr = inter / 128, total = rows * gpr;
    for (long long i = (long long)blockIdx.x * wpb + (threadIdx.x >> 5); i < total; i += (long long)gridDim.x * wpb) {
        const long long r = i / gpr, c0 = (i % gpr) * 128;
        const float* g = h + r * 2 * inter + c0;
        const float* u = g + inter;
        float a[4];
        if (vec) {
            const float4 gv = *(const float4*)(g + 4 * lane), uv = *(const float4*)(u + 4 * lane);
            a[0] = dsk4j_moe_silu_mul(gv.x, uv.x);
            a[1] = dsk4j_moe_silu_mul(gv.y, uv.y);
            a[2] = dsk4j_moe_silu_mul(gv.z, uv.z);
            a[3] = dsk4j_moe_silu_mul(gv.w, uv.w);
        } else {
#pragma unroll
            for (int c = 0; c < 4; c++) a[c] = dsk4j_moe_silu_mul(g[4 * lane + c], u[4 * lane + c]);
        }
        // fmaxf ignores NaN as the reference's `m > amax` does; the max is order-free
        float m = fmaxf(fmaxf(fabsf(a[0]), fabsf(a[1])), fmaxf(fabsf(a[2]), fabsf(a[3])));
        m = fmaxf(0.0f, m);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
        if (m < 1e-4f) m = 1e-4f;
        const float s = __fdiv_rn(m, 448.0f);
        const uint32_t lo = dsk4j_f32x2_to_e4m3x2(__fdiv_rn(a[0], s), __fdiv_rn(a[1], s));
        const uint32_t hi = dsk4j_f32x2_to_e4m3x2(__fdiv_rn(a[2], s), __fdiv_rn(a[3], s));
        uint8_t* qr = q + r * inter + c0 + 4 * lane;
        if (vec) {
            *(uint32_t*)qr = lo | (hi << 16);
        } else {
            qr[0] = (uint8_t)lo; qr[1] = (uint8_t)(lo >> 8); qr[2] = (uint8_t)hi; qr[3] = (uint8_t)(hi >> 8);
        }
        if (lane == 0) qs[r * gpr + c0 / 128] = s;
    }
}

// a [rows, inter] f32 = silu(g) * u of h [rows, 2*inter] (g columns 0..inter-1, u inter..2*inter-1),
// unrounded: moe.forward with f32 weights, in both kernel modes (element-wise, the reference's
// dsk4j_moe_silu_mul). One thread per element, grid-stride.
extern "C" __global__ void __launch_bounds__(DSK4J_MOE_THREADS)
dsk4j_moe_silu_mul_f32(float* a, const float* h, long long rows, long long inter) {
    DSK4J_GRID_STRIDE(i, rows * inter) {
        const long long r = i / inter, c = i % inter;
        a[i] = dsk4j_moe_silu_mul(h[r * 2 * inter + c], h[r * 2 * inter + inter + c]);
    }
}

extern "C" __global__ void __launch_bounds__(DSK4J_MOE_THREADS)
dsk4j_moe_bias_update(float* bias, const int* counts, long long experts, float gamma) {
    __shared__ long long part[DSK4J_MOE_THREADS / 32];
    if (blockIdx.x != 0 || experts <= 0) return;
    long long s = 0;
    for (long long e = threadIdx.x; e < experts; e += blockDim.x) s += counts[e];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = s;
    __syncthreads();
    long long total = 0;
    for (int w = 0; w < DSK4J_MOE_THREADS / 32; w++) total += part[w];
    const double mean = __ddiv_rn((double)total, (double)experts);
    for (long long e = threadIdx.x; e < experts; e += blockDim.x) {
        if ((double)counts[e] < mean) bias[e] = __fadd_rn(bias[e], gamma);
        else if ((double)counts[e] > mean) bias[e] = __fsub_rn(bias[e], gamma);
    }
}
