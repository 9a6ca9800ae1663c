// mla_prefill.cu - the fast mla.prefill (DESIGN.md 4.4) for DeepSeek-V3's head dims (qk 192, v 128):
// a FlashAttention-2-style kernel on mma.sync m16n8k16 bf16 (f32 accumulation). The formulas are
// those of dsk4j_ref_mla_prefill (mla_reference.cu); cuda_mla.c runs the reference for other dims.
//
// Block (128 threads = 4 warps) = (sequence, 64-query tile, head): grid x = nseq * q_tiles
// (q_tiles = ceil(max_seqlen / 64); a tile past its sequence's end exits at once), grid y = heads.
// Warp w owns query rows w*16 .. w*16+15 of the tile and every key of a KV tile, so the online
// softmax needs only quad shuffles. Q (64 x 192) is staged once and kept as A fragments in registers
// (12 k steps x 4); KV tiles of 32 keys (K [32][192], V [32][128], bf16, padded pitches of 200 /
// 136 elements: an odd number of 16-byte chunks, conflict-free ldmatrix) are double-buffered with
// cp.async (bf16 input) or loaded and rounded to bf16 (f32 input; unused: cuda_mla.c runs the
// exact reference for f32). Per KV tile:
//   S = Q K^T (K as mma's "col" operand straight from [key][dim]), logits * scale * log2(e), masked
//   to -inf for keys past the sequence or (causal) past the query; m_new, rescale, P = 2^(x - m)
//   rounded to bf16 and reused in registers as the A fragments of O += P V (V by ldmatrix.trans).
// Keys: [seq start, causal ? min(tile end, seq end) : seq end); rows past the sequence are neither
// computed into the output nor stored. o = acc / l in dtype, lse = ln2 * (m + log2 l).
// Requires 16-byte aligned q, k, v, o (cuda_mla.c checks; else the reference kernel).
#include "fp8_convert.cuh"

#define DSK4J_MLA_PF_THREADS 128 // must match PF_THREADS in native/src/cuda_mla.c

namespace dsk4j_mla_pf {

constexpr int BM = 64, BN = 32, DQK = 192, DV = 128, STAGES = 2;
constexpr int QP = DQK + 8, VP = DV + 8; // pitches in bf16 elements (25 and 17 chunks)
constexpr int Q_BYTES = BM * QP * 2, K_BYTES = BN * QP * 2, V_BYTES = BN * VP * 2;
constexpr int SMEM = Q_BYTES + STAGES * (K_BYTES + V_BYTES);
constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;

__device__ __forceinline__ void cp_async16(unsigned dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes)
                 : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait0() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }
__device__ __forceinline__ void ldsm_x4(unsigned addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(unsigned addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}
__device__ __forceinline__ void mma_bf16(float* c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                         uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                 "{%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    return (uint32_t)dsk4j_f32_to_bf16(lo) | ((uint32_t)dsk4j_f32_to_bf16(hi) << 16);
}
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// Stages ROWS rows of `dim` values (tokens tok0 .. tok0 + ROWS - 1 of head h, row (tok*heads+h)*dim)
// as bf16 with a pitch of `pitch` elements; rows >= n_valid are zero. bf16 input: cp.async.
template <int ROWS>
__device__ __forceinline__ void load_rows(uint8_t* dst, unsigned s_dst, int pitch, const void* src, int dtype,
                                          long long tok0, long long n_valid, long long heads, long long h, int dim,
                                          int tid) {
    const int chunks = dim / 8;
    for (int idx = tid; idx < ROWS * chunks; idx += DSK4J_MLA_PF_THREADS) {
        const int r = idx / chunks, ch = idx % chunks;
        const bool v = r < n_valid;
        const long long e = ((tok0 + (v ? r : 0)) * heads + h) * dim + ch * 8;
        const unsigned off = (unsigned)(r * pitch * 2 + ch * 16);
        if (dtype == DSK4J_DT_BF16) {
            cp_async16(s_dst + off, (const uint16_t*)src + e, v ? 16 : 0);
        } else {
            uint4 w = make_uint4(0u, 0u, 0u, 0u);
            if (v) {
                const float4 a = *(const float4*)((const float*)src + e), b = *(const float4*)((const float*)src + e + 4);
                w = make_uint4(pack_bf16(a.x, a.y), pack_bf16(a.z, a.w), pack_bf16(b.x, b.y), pack_bf16(b.z, b.w));
            }
            *(uint4*)(dst + off) = w;
        }
    }
}

} // namespace dsk4j_mla_pf

extern "C" __global__ void __launch_bounds__(DSK4J_MLA_PF_THREADS)
dsk4j_mla_prefill_mma(void* o, float* lse, const void* q, const void* k, const void* v, int dtype,
                      const int* cu_seqlens, long long heads, long long q_tiles, float scale, int causal) {
    using namespace dsk4j_mla_pf;
    extern __shared__ __align__(128) uint8_t smem[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t4 = lane & 3;
    const long long seq = blockIdx.x / q_tiles, qt = blockIdx.x % q_tiles, h = blockIdx.y;
    const long long s0 = cu_seqlens[seq], s1 = cu_seqlens[seq + 1];
    const long long q0 = s0 + qt * BM;
    if (q0 >= s1) return; // the whole block: this tile is past the sequence
    const long long q_valid = min((long long)BM, s1 - q0);
    const long long kv_end = causal ? min(q0 + BM, s1) : s1;
    const int n_tiles = (int)((kv_end - s0 + BN - 1) / BN);
    const unsigned s_base = (unsigned)__cvta_generic_to_shared(smem);
    auto k_ptr = [&](int slot) { return smem + Q_BYTES + slot * (K_BYTES + V_BYTES); };
    auto k_s = [&](int slot) { return s_base + (unsigned)(Q_BYTES + slot * (K_BYTES + V_BYTES)); };
    auto load_kv = [&](int tile, int slot) {
        const long long key0 = s0 + (long long)tile * BN, nv = min((long long)BN, kv_end - key0);
        load_rows<BN>(k_ptr(slot), k_s(slot), QP, k, dtype, key0, nv, heads, h, DQK, tid);
        load_rows<BN>(k_ptr(slot) + K_BYTES, k_s(slot) + K_BYTES, VP, v, dtype, key0, nv, heads, h, DV, tid);
    };

    load_rows<BM>(smem, s_base, QP, q, dtype, q0, q_valid, heads, h, DQK, tid);
    load_kv(0, 0);
    cp_async_commit();

    long long qa[2]; // absolute token of this thread's rows g, g + 8 (>= s1: not a row)
    qa[0] = q0 + warp * 16 + g;
    qa[1] = qa[0] + 8;
    uint32_t qf[DQK / 16][4];
    float acc[DV / 8][4];
#pragma unroll
    for (int j = 0; j < DV / 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[j][e] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const float sl2 = scale * LOG2E;

    for (int it = 0; it < n_tiles; it++) {
        cp_async_wait0();
        __syncthreads(); // (A) tile it (and, at it = 0, Q) visible; the other buffer is free
        if (it == 0) {
#pragma unroll
            for (int ks = 0; ks < DQK / 16; ks++)
                ldsm_x4(s_base + (unsigned)((warp * 16 + (lane & 15)) * QP * 2 + (ks * 2 + (lane >> 4)) * 16), qf[ks][0],
                        qf[ks][1], qf[ks][2], qf[ks][3]);
        }
        if (it + 1 < n_tiles) load_kv(it + 1, (it + 1) & 1);
        cp_async_commit();
        const unsigned ks_base = k_s(it & 1), vs_base = ks_base + K_BYTES;

        // ---- S = Q K^T: 16 rows x 32 keys ----
        float s[BN / 8][4];
#pragma unroll
        for (int j = 0; j < BN / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[j][e] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < DQK / 16; ks++) {
#pragma unroll
            for (int j = 0; j < BN / 8; j += 2) {
                uint32_t b0, b1, b2, b3;
                const int nrow = j * 8 + (lane & 7) + ((lane >> 4) << 3);
                ldsm_x4(ks_base + (unsigned)(nrow * QP * 2 + (ks * 2 + ((lane >> 3) & 1)) * 16), b0, b1, b2, b3);
                mma_bf16(s[j], qf[ks][0], qf[ks][1], qf[ks][2], qf[ks][3], b0, b1);
                mma_bf16(s[j + 1], qf[ks][0], qf[ks][1], qf[ks][2], qf[ks][3], b2, b3);
            }
        }
        // ---- mask, online softmax (rows are the warp's own: quad shuffles) ----
        const long long key0 = s0 + (long long)it * BN;
        float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int j = 0; j < BN / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int hh = e >> 1;
                const long long key = key0 + j * 8 + t4 * 2 + (e & 1);
                const bool ok = qa[hh] < s1 && key < kv_end && (!causal || key <= qa[hh]);
                const float x = ok ? s[j][e] * sl2 : -INFINITY;
                s[j][e] = x;
                tmax[hh] = fmaxf(tmax[hh], x);
            }
        float alpha[2], m_use[2];
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            tmax[hh] = fmaxf(tmax[hh], __shfl_xor_sync(0xffffffffu, tmax[hh], 1));
            tmax[hh] = fmaxf(tmax[hh], __shfl_xor_sync(0xffffffffu, tmax[hh], 2));
            const float mx = fmaxf(m[hh], tmax[hh]);
            m_use[hh] = mx == -INFINITY ? 0.0f : mx;
            alpha[hh] = m[hh] == -INFINITY ? 0.0f : fast_exp2(m[hh] - mx);
            m[hh] = mx;
            l[hh] *= alpha[hh];
        }
#pragma unroll
        for (int j = 0; j < DV / 8; j++) {
            acc[j][0] *= alpha[0];
            acc[j][1] *= alpha[0];
            acc[j][2] *= alpha[1];
            acc[j][3] *= alpha[1];
        }
        uint32_t pa[BN / 8][2]; // P as bf16 pairs: [n-tile][row g / row g + 8]
#pragma unroll
        for (int j = 0; j < BN / 8; j++) {
            const float p0 = fast_exp2(s[j][0] - m_use[0]), p1 = fast_exp2(s[j][1] - m_use[0]);
            const float p2 = fast_exp2(s[j][2] - m_use[1]), p3 = fast_exp2(s[j][3] - m_use[1]);
            l[0] += p0 + p1;
            l[1] += p2 + p3;
            pa[j][0] = pack_bf16(p0, p1);
            pa[j][1] = pack_bf16(p2, p3);
        }
        // ---- O += P V: P's C fragments are the A fragments of keys 16 kk .. 16 kk + 15 ----
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            const unsigned v_addr =
                vs_base + (unsigned)((kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * VP * 2 + (lane >> 4) * 16);
#pragma unroll
            for (int j = 0; j < DV / 8; j += 2) {
                uint32_t b0, b1, b2, b3;
                ldsm_x4_t(v_addr + j * 16, b0, b1, b2, b3);
                mma_bf16(acc[j], pa[2 * kk][0], pa[2 * kk][1], pa[2 * kk + 1][0], pa[2 * kk + 1][1], b0, b1);
                mma_bf16(acc[j + 1], pa[2 * kk][0], pa[2 * kk][1], pa[2 * kk + 1][0], pa[2 * kk + 1][1], b2, b3);
            }
        }
    }
    cp_async_wait0();

    // ---- store ----
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
        l[hh] += __shfl_xor_sync(0xffffffffu, l[hh], 1);
        l[hh] += __shfl_xor_sync(0xffffffffu, l[hh], 2);
        if (qa[hh] >= s1) continue;
        const float inv = l[hh] > 0.0f ? 1.0f / l[hh] : 0.0f;
        const long long row = qa[hh] * heads + h;
#pragma unroll
        for (int j = 0; j < DV / 8; j++) {
            const long long idx = row * DV + j * 8 + t4 * 2;
            const float v0 = acc[j][hh * 2] * inv, v1 = acc[j][hh * 2 + 1] * inv;
            if (dtype == DSK4J_DT_BF16) *(uint32_t*)((uint16_t*)o + idx) = pack_bf16(v0, v1);
            else *(float2*)((float*)o + idx) = make_float2(v0, v1);
        }
        if (lse != nullptr && t4 == 0) lse[row] = l[hh] > 0.0f ? (m[hh] + __log2f(l[hh])) * LN2 : -INFINITY;
    }
}
static_assert(dsk4j_mla_pf::SMEM == 68608, "cuda_mla.c PF_SMEM");
