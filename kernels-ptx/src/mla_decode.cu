// mla_decode.cu - the fast mla.decode (DESIGN.md 4.4) on every target: a FlashDecoding-style
// split-KV kernel on mma.sync m16n8k16 bf16 tensor cores (f32 accumulation), then a combine
// kernel. The formulas are those of dsk4j_ref_mla_decode (mla_reference.cu).
//
// Block (256 threads = 8 warps) = (batch b, split, row tile): BM query rows of b's sq * heads
// rows (row index s * heads + h: queries of one sequence share its KV, FlashMLA's query tile)
// against the KV tiles of the split. A KV tile is BT = 32 tokens (half a page, so inside one
// page: page block_table[b, t0 / 64], slots t0 % 64 ..), staged in shared memory as bf16 rows of
// 576 (latent | rope) with a padded pitch of 584 elements (1168 bytes: 73 16-byte chunks, so the
// 8 rows an ldmatrix reads hit 8 different bank groups). Q [BM][576] is staged once.
//
// Warps: RG = BM / 16 row groups of 16 rows, NS = 8 / RG warps per row group. Per KV tile:
//   S = Q K^T: warp (rg, j) computes rows rg*16.. x tokens j*BT/NS .. (+BT/NS) over k = 576
//       (ldmatrix A from Q, ldmatrix B from the KV rows: K stored [token][dim] is mma's "col").
//   logits = S * scale * log2(e); tokens past the row's kv_end are -inf. Row max: quad shuffles,
//       then across the NS warps of the row group through shared memory (all NS warps get the
//       same m, so their partial sums l share one scale). Online softmax: acc *= 2^(m - m_new).
//   P = 2^(logit - m_new) -> bf16 -> shared [BM][BT]; O += P V: warp (rg, j) owns output
//       columns j*512/NS .. (+512/NS) of its 16 rows; V = the latent part of the same KV rows,
//       read with ldmatrix.trans.
// At the end the NS partial l of a row are summed through shared memory. With nsplit == 1 the
// block writes o_latent (dtype) = acc / l and lse = ln2 * (m + log2 l) directly (L = 0: o = 0,
// lse = -inf); otherwise the normalized partial o (f32) and its lse go to the scratch
// o_part [nsplit][rows][512] / lse_part [nsplit][rows] and dsk4j_mla_decode_combine merges them.
//
// Loads: Q (bf16: 16-byte cp.async; f32: float4 loads rounded to bf16 - unused: cuda_mla.c sends
// f32 queries to the exact f32 reference kernel), KV tiles of a BF16 cache by 16-byte cp.async (the cache
// rows are exactly the smem rows), FP8 cache: e4m3 codes * scale -> bf16 (exact: 3 mantissa bits
// times a power of two) with plain loads and shared stores, rope by cp.async. Tokens >= L (the
// end of the sequence) are zero-filled, never read. The F32 cache is not handled here (cuda_mla.c
// runs the exact f32 reference kernel for it). The host guarantees 16-byte aligned q_latent,
// q_pe (bf16) and cache bases (cuda_mla.c checks; else it runs the reference kernel).
//
// Pipeline: STAGES KV buffers; tile i+STAGES-1 is issued after the barrier that opens tile i.
// STAGES = 1 (small shared memory GPUs) loads the next tile after the current one is consumed.
// Variants (cuda_mla.c picks the first whose shared memory the device grants):
//   dsk4j_mla_decode_mma_bm64_s3  BM 64, 3 stages: 192512 bytes (sm_90: H100 / H200)
//   dsk4j_mla_decode_mma_bm64_s2  BM 64, 2 stages: 155136 bytes (sm_80 A100, sm_90)
//   dsk4j_mla_decode_mma_bm32_s1  BM 32, 1 stage:   77824 bytes (sm_86 / sm_89, 99 KiB)
// The sm_90a cubin runs these mma.sync kernels by default. dsk4j_mla_decode_wgmma_bm64_s3
// (189952 bytes; sm_90a only, opt-in with DSK4J_CUDA_MLA_KERNEL=wgmma until verified on a GPU)
// computes S with wgmma.m64n16k16 (warpgroup wj: all 64 rows x tokens wj*16 ..) from
// chunk-major Q / KV tiles (tile_off), P V still on mma.sync. kernels-ptx/model/ holds Python
// lane-level models of this file's fragment and index math. mla_decode_sm90.cu holds the
// FlashMLA-style sm_90a kernel (TMA pages, wgmma for both products; DSK4J_CUDA_MLA_KERNEL=flash),
// which shares this file's combine kernel.
#include "fp8_convert.cuh"

#define DSK4J_MLA_THREADS 256 // must match MLA_THREADS in native/src/cuda_mla.c
#define DSK4J_MLA_COMBINE_THREADS 128

namespace dsk4j_mla {

constexpr int THREADS = DSK4J_MLA_THREADS;
constexpr int KD = 576, LAT = 512;
constexpr int PITCH = 584;   // bf16 elements per shared row (1168 bytes)
constexpr int BT = 32;       // tokens per KV tile
constexpr int PP = BT + 8;   // P pitch in bf16 (80 bytes: 5 chunks, conflict-free ldmatrix)
constexpr int CHUNKS = KD / 8; // 16-byte chunks per 576-element bf16 row (72)
constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;

template <int BM, int STAGES, bool WG = false>
struct Cfg {
    static constexpr int RG = BM / 16;     // row groups
    static constexpr int NS = 8 / RG;      // warps per row group
    static constexpr int TW = BT / NS;     // tokens per warp in S
    static constexpr int NT = TW / 8;      // S n-tiles per warp
    static constexpr int CW = LAT / NS;    // output columns per warp
    static constexpr int NO = CW / 8;      // O n-tiles per warp
    // WG: chunk-major tiles (16-byte chunk ch of row r at ch * ROWS * 16 + r * 16: the wgmma
    // no-swizzle K-major canonical layout, conflict-free for ldmatrix too); else padded rows.
    static constexpr int Q_BYTES = WG ? BM * KD * 2 : BM * PITCH * 2;
    static constexpr int KV_BYTES = WG ? BT * KD * 2 : BT * PITCH * 2;
    static constexpr int P_BYTES = BM * PP * 2;
    static constexpr int RED_BYTES = NS * BM * 4;
    static constexpr int SMEM = Q_BYTES + STAGES * KV_BYTES + P_BYTES + RED_BYTES;
    static_assert(RG * NS == 8 && TW % 8 == 0 && NT >= 1 && CW % 16 == 0, "warp layout");
    static_assert(!WG || (BM == 64 && NT == 2), "the wgmma variant: two warpgroups x m64n16 of S");
};

// Byte offset of 16-byte chunk ch (0..71) of row r in a tile of `rows` rows.
template <bool WG>
__device__ __forceinline__ unsigned tile_off(int r, int ch, int rows) {
    return WG ? (unsigned)(ch * rows * 16 + r * 16) : (unsigned)(r * PITCH * 2 + ch * 16);
}

__device__ __forceinline__ void cp_async16(unsigned dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes)
                 : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
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
// c (16x8 f32) += a (16x16 bf16, row) * b (16x8 bf16, col)
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
__device__ __forceinline__ float fast_exp2(float x) { // 2^x; -inf -> 0
    float y;
    asm("ex2.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// Stages Q rows [row0, row0 + BM) of batch b (rows_b = sq * heads rows) as bf16; rows past
// rows_b are zero. bf16 input: cp.async (caller commits); f32 input: loads rounded to bf16.
template <int BM, bool WG>
__device__ __forceinline__ void load_q(uint8_t* sq_ptr, unsigned s_q, const void* q_latent, const void* q_pe,
                                       int dtype, long long qrow0, long long valid_rows, int tid) {
    for (int idx = tid; idx < BM * CHUNKS; idx += THREADS) {
        const int r = idx / CHUNKS, ch = idx % CHUNKS;
        const unsigned off = tile_off<WG>(r, ch, BM);
        const bool v = r < valid_rows;
        const long long qr = qrow0 + (v ? r : 0);
        if (dtype == DSK4J_DT_BF16) {
            const uint16_t* src = ch < 64 ? (const uint16_t*)q_latent + qr * LAT + ch * 8
                                          : (const uint16_t*)q_pe + qr * 64 + (ch - 64) * 8;
            cp_async16(s_q + off, src, v ? 16 : 0);
        } else {
            uint4 w = make_uint4(0u, 0u, 0u, 0u);
            if (v) {
                const float* src = ch < 64 ? (const float*)q_latent + qr * LAT + ch * 8
                                           : (const float*)q_pe + qr * 64 + (ch - 64) * 8;
                const float4 a = ((const float4*)src)[0], c = ((const float4*)src)[1];
                w = make_uint4(pack_bf16(a.x, a.y), pack_bf16(a.z, a.w), pack_bf16(c.x, c.y), pack_bf16(c.z, c.w));
            }
            *(uint4*)(sq_ptr + off) = w;
        }
    }
}

// Stages KV tile tokens [t0, t0 + BT) of batch b (t0 % BT == 0, so inside page t0 / 64) into one
// buffer; tokens >= L are zero. format: DSK4J_MLA_CACHE_BF16 (1) or _FP8 (2).
template <bool WG>
__device__ __forceinline__ void load_kv(uint8_t* skv_ptr, unsigned s_kv, const uint8_t* cache, int format,
                                        const int* bt_row, long long t0, long long L, int tid) {
    const long long n_valid = L - t0; // >= 1
    const long long page = bt_row[t0 / 64];
    const long long tok0 = page * 64 + t0 % 64;
    if (format == 1) {
        for (int idx = tid; idx < BT * CHUNKS; idx += THREADS) {
            const int r = idx / CHUNKS, ch = idx % CHUNKS;
            const bool v = r < n_valid;
            const uint8_t* src = cache + (tok0 + (v ? r : 0)) * 1152 + ch * 16;
            cp_async16(s_kv + tile_off<WG>(r, ch, BT), src, v ? 16 : 0);
        }
    } else {
        // 40 items per token: 32 x 16 e4m3 codes (-> 2 bf16 chunks), 8 x 16 bytes of bf16 rope.
        for (int idx = tid; idx < BT * 40; idx += THREADS) {
            const int r = idx / 40, it = idx % 40;
            const bool v = r < n_valid;
            const uint8_t* tok = cache + (tok0 + (v ? r : 0)) * 656;
            if (it >= 32) {
                const int ch = 64 + (it - 32);
                cp_async16(s_kv + tile_off<WG>(r, ch, BT), tok + 528 + (it - 32) * 16, v ? 16 : 0);
                continue;
            }
            uint4 lo = make_uint4(0u, 0u, 0u, 0u), hi = lo;
            if (v) {
                const uint4 c = *(const uint4*)(tok + it * 16);
                const float s = ((const float*)(tok + 512))[it >> 3];
                const uint32_t w[4] = {c.x, c.y, c.z, c.w};
                uint32_t o[8];
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const float f0 = __fmul_rn(dsk4j_e4m3_to_f32(w[i] & 0xffu), s);
                    const float f1 = __fmul_rn(dsk4j_e4m3_to_f32((w[i] >> 8) & 0xffu), s);
                    const float f2 = __fmul_rn(dsk4j_e4m3_to_f32((w[i] >> 16) & 0xffu), s);
                    const float f3 = __fmul_rn(dsk4j_e4m3_to_f32(w[i] >> 24), s);
                    o[2 * i] = pack_bf16(f0, f1);
                    o[2 * i + 1] = pack_bf16(f2, f3);
                }
                lo = make_uint4(o[0], o[1], o[2], o[3]);
                hi = make_uint4(o[4], o[5], o[6], o[7]);
            }
            *(uint4*)(skv_ptr + tile_off<WG>(r, 2 * it, BT)) = lo;
            *(uint4*)(skv_ptr + tile_off<WG>(r, 2 * it + 1, BT)) = hi;
        }
    }
}

// wgmma (sm_90a): s (this warp's 16 rows x 16 tokens, two m16n8 C fragments) = Q (BM = 64 rows,
// chunk-major at s_q) x K (16 tokens, chunk-major rows of a BT-token tile starting at kv16)^T over
// k = 576: 36 x wgmma.m64n16k16 bf16, both operands K-major from shared memory, no swizzle.
// Descriptor (PTX ISA, matrix descriptor): start >> 4 (bits 0-13), leading byte offset >> 4
// (16-29) = bytes between K-adjacent 8x16-byte core matrices = rows * 16 in the chunk-major
// tile, stride byte offset >> 4 (32-45) = bytes between 8-row groups = 128; swizzle 0 (62-63).
// k step ks advances both starts by two chunks. D fragment of m64nN (f32): warp w of the
// warpgroup holds rows 16w .. 16w+15, d[4j + e] = the m16n8 C fragment e of n-tile j.
__device__ __forceinline__ uint64_t wg_desc(unsigned addr, unsigned lbo) {
    return (uint64_t)((addr & 0x3FFFFu) >> 4) | ((uint64_t)(lbo >> 4) << 16) | ((uint64_t)(128 >> 4) << 32);
}
template <int BM>
__device__ __forceinline__ void wgmma_qk(float (&s)[2][4], unsigned s_q, unsigned kv16) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#pragma unroll
    for (int j = 0; j < 2; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) asm volatile("" : "+f"(s[j][e])::"memory");
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int ks = 0; ks < KD / 16; ks++) {
        const uint64_t da = wg_desc(s_q + (unsigned)(ks * 2 * BM * 16), BM * 16);
        const uint64_t db = wg_desc(kv16 + (unsigned)(ks * 2 * BT * 16), BT * 16);
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7}, %8, %9, "
                     "p, 1, 1, 0, 0;\n}\n"
                     : "+f"(s[0][0]), "+f"(s[0][1]), "+f"(s[0][2]), "+f"(s[0][3]), "+f"(s[1][0]), "+f"(s[1][1]),
                       "+f"(s[1][2]), "+f"(s[1][3])
                     : "l"(da), "l"(db), "r"(ks > 0 ? 1u : 0u));
    }
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#pragma unroll
    for (int j = 0; j < 2; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) asm volatile("" : "+f"(s[j][e])::"memory");
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#pragma unroll
    for (int j = 0; j < 2; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) asm volatile("" : "+f"(s[j][e])::"memory");
#else
    (void)s, (void)s_q, (void)kv16;
    __trap();
#endif
}

template <int BM, int STAGES, bool WG>
__device__ __forceinline__ void decode_impl(void* o_latent, float* lse, float* o_part, float* lse_part,
                                            const void* q_latent, const void* q_pe, int dtype, const uint8_t* cache,
                                            int format, const int* block_table, const int* seq_lens, long long sq,
                                            long long heads, long long max_pages, int nsplit, int row_tiles,
                                            long long rows_total, float scale, int causal) {
    using C = Cfg<BM, STAGES, WG>;
    extern __shared__ __align__(128) uint8_t smem[];
    uint8_t* sq_ptr = smem;
    uint8_t* skv_ptr = smem + C::Q_BYTES;
    uint16_t* sp = (uint16_t*)(smem + C::Q_BYTES + STAGES * C::KV_BYTES);
    float* red = (float*)(smem + C::Q_BYTES + STAGES * C::KV_BYTES + C::P_BYTES); // [NS][BM]
    const unsigned s_base = (unsigned)__cvta_generic_to_shared(smem);
    const unsigned s_q = s_base, s_kv = s_base + C::Q_BYTES;
    const unsigned s_p = s_base + C::Q_BYTES + STAGES * C::KV_BYTES;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    // WG: warpgroup wj computes S for all BM rows (warp % 4 = its 16-row group) x tokens wj * TW ..
    const int rg = WG ? (warp & 3) : warp / C::NS, wj = WG ? (warp >> 2) : warp % C::NS;
    const int g = lane >> 2, t4 = lane & 3;

    // Block -> (b, split, row tile); the row tiles of one (b, split) are adjacent (L2 reuse of KV).
    const long long blk = blockIdx.x;
    const int rt = (int)(blk % row_tiles);
    const int split = (int)((blk / row_tiles) % nsplit);
    const long long b = blk / ((long long)row_tiles * nsplit);
    const long long rows_b = sq * heads;
    const long long row0 = (long long)rt * BM; // first row of the tile within b
    const long long valid_rows = min((long long)BM, rows_b - row0);
    const long long L = seq_lens[b];
    const long long tiles_b = (L + BT - 1) / BT;
    const long long tb = tiles_b * split / nsplit, te = tiles_b * (split + 1) / nsplit;
    const int* bt_row = block_table + b * max_pages;

    // Row groups with no valid row (heads * sq < BM, e.g. h = 16) skip the tensor-core work (a
    // warp-uniform branch with no barrier inside); their rows are masked (kv_end 0), never stored.
    const bool active = rg * 16 < valid_rows; // (the wgmma of S runs in every warp: warpgroup-wide)
    // kv_end of this thread's two rows (g, g + 8 of its row group); rows past rows_b see nothing.
    long long kv_end[2];
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const long long rr = row0 + rg * 16 + g + h * 8;
        kv_end[h] = (rr >= rows_b || L <= 0) ? 0 : causal ? L - sq + rr / heads + 1 : L;
    }

    load_q<BM, WG>(sq_ptr, s_q, q_latent, q_pe, dtype, b * rows_b + row0, valid_rows, tid);
    if constexpr (STAGES == 1) {
        if (tb < te) load_kv<WG>(skv_ptr, s_kv, cache, format, bt_row, tb * BT, L, tid);
        cp_async_commit();
    } else {
#pragma unroll
        for (int s = 0; s < STAGES - 1; s++) {
            if (tb + s < te)
                load_kv<WG>(skv_ptr + s * C::KV_BYTES, s_kv + s * C::KV_BYTES, cache, format, bt_row, (tb + s) * BT, L, tid);
            cp_async_commit();
        }
    }

    float acc[C::NO][4];
#pragma unroll
    for (int j = 0; j < C::NO; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[j][e] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const float sl2 = scale * LOG2E;

    for (long long it = tb; it < te; it++) {
        const int k = (int)(it - tb);
        const int slot = STAGES == 1 ? 0 : k % STAGES;
        if constexpr (STAGES == 1) cp_async_wait<0>();
        else cp_async_wait<STAGES - 2>();
        if constexpr (WG) asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); // smem -> wgmma
        __syncthreads(); // (A) tile it (and Q) visible; the buffer of tile it-1 is free
        if constexpr (STAGES > 1) {
            if (it + STAGES - 1 < te) {
                const int ns = (k + STAGES - 1) % STAGES;
                load_kv<WG>(skv_ptr + ns * C::KV_BYTES, s_kv + ns * C::KV_BYTES, cache, format, bt_row,
                        (it + STAGES - 1) * BT, L, tid);
            }
            cp_async_commit();
        }
        const unsigned kv = s_kv + slot * C::KV_BYTES;

        // ---- S = Q K^T for rows rg*16.., tokens wj*TW.. ----
        float s[C::NT][4];
#pragma unroll
        for (int j = 0; j < C::NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[j][e] = 0.0f;
        if constexpr (WG) {
            wgmma_qk<BM>(s, s_q, kv + (unsigned)(wj * C::TW * 16));
        } else {
        const unsigned a_addr = s_q + (unsigned)((rg * 16 + (lane & 15)) * PITCH * 2 + (lane >> 4) * 16);
#pragma unroll 4
        for (int ks = 0; ks < (active ? KD / 16 : 0); ks++) {
            uint32_t a0, a1, a2, a3;
            ldsm_x4(a_addr + ks * 32, a0, a1, a2, a3);
            if constexpr (C::NT == 1) {
                // one n-tile of 8 tokens: x4 covers k 0..31 of those tokens -> two k steps; use x2 halves
                uint32_t b0, b1, b2, b3;
                const unsigned b_addr = kv + (unsigned)((wj * C::TW + (lane & 7)) * PITCH * 2 + ((lane >> 3) & 1) * 16);
                ldsm_x4(b_addr + ks * 32, b0, b1, b2, b3); // b2, b3 repeat rows 0..7 (lanes 16..31 mirror 0..15)
                mma_bf16(s[0], a0, a1, a2, a3, b0, b1);
                (void)b2, (void)b3;
            } else {
#pragma unroll
                for (int j = 0; j < C::NT; j += 2) {
                    uint32_t b0, b1, b2, b3;
                    const int nrow = wj * C::TW + j * 8 + (lane & 7) + ((lane >> 4) << 3);
                    const unsigned b_addr = kv + (unsigned)(nrow * PITCH * 2 + ((lane >> 3) & 1) * 16);
                    ldsm_x4(b_addr + ks * 32, b0, b1, b2, b3);
                    mma_bf16(s[j], a0, a1, a2, a3, b0, b1);
                    mma_bf16(s[j + 1], a0, a1, a2, a3, b2, b3);
                }
            }
        }
        }

        // ---- masking, row max across the NS warps of the row group ----
        float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int j = 0; j < C::NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int h = e >> 1;
                const long long pos = it * BT + wj * C::TW + j * 8 + t4 * 2 + (e & 1);
                const float x = pos < kv_end[h] ? s[j][e] * sl2 : -INFINITY;
                s[j][e] = x;
                tmax[h] = fmaxf(tmax[h], x);
            }
#pragma unroll
        for (int h = 0; h < 2; h++) {
            tmax[h] = fmaxf(tmax[h], __shfl_xor_sync(0xffffffffu, tmax[h], 1));
            tmax[h] = fmaxf(tmax[h], __shfl_xor_sync(0xffffffffu, tmax[h], 2));
            if (t4 == 0) red[wj * BM + rg * 16 + g + h * 8] = tmax[h];
        }
        __syncthreads(); // (B)
        float alpha[2], m_use[2];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float mx = m[h];
#pragma unroll
            for (int w = 0; w < C::NS; w++) mx = fmaxf(mx, red[w * BM + rg * 16 + g + h * 8]);
            m_use[h] = mx == -INFINITY ? 0.0f : mx;           // nothing visible yet: p = 0, no NaN
            alpha[h] = m[h] == -INFINITY ? 0.0f : fast_exp2(m[h] - mx);
            m[h] = mx;
            l[h] *= alpha[h];
        }
#pragma unroll
        for (int j = 0; j < C::NO; j++) {
            acc[j][0] *= alpha[0];
            acc[j][1] *= alpha[0];
            acc[j][2] *= alpha[1];
            acc[j][3] *= alpha[1];
        }
        // ---- P = 2^(x - m) -> bf16 -> shared ----
#pragma unroll
        for (int j = 0; j < C::NT; j++) {
            const float p0 = fast_exp2(s[j][0] - m_use[0]), p1 = fast_exp2(s[j][1] - m_use[0]);
            const float p2 = fast_exp2(s[j][2] - m_use[1]), p3 = fast_exp2(s[j][3] - m_use[1]);
            l[0] += p0 + p1;
            l[1] += p2 + p3;
            const int col = wj * C::TW + j * 8 + t4 * 2;
            *(uint32_t*)(sp + (rg * 16 + g) * PP + col) = pack_bf16(p0, p1);
            *(uint32_t*)(sp + (rg * 16 + g + 8) * PP + col) = pack_bf16(p2, p3);
        }
        __syncthreads(); // (C) P of the whole row group visible

        // ---- O += P V: rows rg*16.., columns wj*CW.. ----
#pragma unroll
        for (int kk = 0; kk < BT / 16; kk++) {
            if (!active) break;
            uint32_t a0, a1, a2, a3;
            ldsm_x4(s_p + (unsigned)(((rg * 16 + (lane & 15)) * PP + kk * 16 + (lane >> 4) * 8) * 2), a0, a1, a2, a3);
            const unsigned v_addr =
                kv + tile_off<WG>(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, wj * C::CW / 8 + (lane >> 4), BT);
            constexpr unsigned CH = WG ? BT * 16 : 16; // bytes between adjacent 16-byte chunks of a row
#pragma unroll
            for (int j = 0; j < C::NO; j += 2) {
                uint32_t b0, b1, b2, b3;
                ldsm_x4_t(v_addr + j * CH, b0, b1, b2, b3);
                mma_bf16(acc[j], a0, a1, a2, a3, b0, b1);
                mma_bf16(acc[j + 1], a0, a1, a2, a3, b2, b3);
            }
        }
        if constexpr (STAGES == 1) {
            __syncthreads(); // (D) everyone is done with the buffer
            if (it + 1 < te) load_kv<WG>(skv_ptr, s_kv, cache, format, bt_row, (it + 1) * BT, L, tid);
            cp_async_commit();
        }
    }
    cp_async_wait<0>();

    // ---- l of a row = the sum of its NS warps' partial sums ----
    __syncthreads(); // every read of red (and of P, KV) in the loop is done
#pragma unroll
    for (int h = 0; h < 2; h++) {
        l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
        l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
        if (t4 == 0) red[wj * BM + rg * 16 + g + h * 8] = l[h];
    }
    __syncthreads();
    float inv[2], row_lse[2];
#pragma unroll
    for (int h = 0; h < 2; h++) {
        float lt = 0.0f;
#pragma unroll
        for (int w = 0; w < C::NS; w++) lt += red[w * BM + rg * 16 + g + h * 8];
        inv[h] = lt > 0.0f ? 1.0f / lt : 0.0f;
        row_lse[h] = lt > 0.0f ? (m[h] + __log2f(lt)) * LN2 : -INFINITY;
    }

    // ---- store ----
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const long long rr = row0 + rg * 16 + g + h * 8;
        if (rr >= rows_b) continue;
        const long long grow = b * rows_b + rr; // global query row
        if (nsplit == 1) {
#pragma unroll
            for (int j = 0; j < C::NO; j++) {
                const long long idx = grow * LAT + wj * C::CW + j * 8 + t4 * 2;
                const float v0 = acc[j][h * 2] * inv[h], v1 = acc[j][h * 2 + 1] * inv[h];
                if (dtype == DSK4J_DT_BF16) *(uint32_t*)((uint16_t*)o_latent + idx) = pack_bf16(v0, v1);
                else *(float2*)((float*)o_latent + idx) = make_float2(v0, v1);
            }
            if (lse != nullptr && wj == 0 && t4 == 0) lse[grow] = row_lse[h];
        } else {
            float* op = o_part + ((long long)split * rows_total + grow) * LAT;
#pragma unroll
            for (int j = 0; j < C::NO; j++) {
                const int c = wj * C::CW + j * 8 + t4 * 2;
                *(float2*)(op + c) = make_float2(acc[j][h * 2] * inv[h], acc[j][h * 2 + 1] * inv[h]);
            }
            if (wj == 0 && t4 == 0) lse_part[(long long)split * rows_total + grow] = row_lse[h];
        }
    }
}

} // namespace dsk4j_mla

#define DSK4J_MLA_DECODE_PARAMS                                                                              \
    void *o_latent, float *lse, float *o_part, float *lse_part, const void *q_latent, const void *q_pe,      \
        int dtype, const uint8_t *cache, int format, const int *block_table, const int *seq_lens, long long sq, \
        long long heads, long long max_pages, int nsplit, int row_tiles, long long rows_total, float scale,    \
        int causal
#define DSK4J_MLA_DECODE_ARGS                                                                                \
    o_latent, lse, o_part, lse_part, q_latent, q_pe, dtype, cache, format, block_table, seq_lens, sq, heads,  \
        max_pages, nsplit, row_tiles, rows_total, scale, causal

// Grid: batch * nsplit * row_tiles blocks (exactly; block -> (b, split, row tile)), 256 threads,
// dynamic shared memory Cfg<BM, STAGES>::SMEM.
extern "C" __global__ void __launch_bounds__(DSK4J_MLA_THREADS, 1) dsk4j_mla_decode_mma_bm64_s3(DSK4J_MLA_DECODE_PARAMS) {
    dsk4j_mla::decode_impl<64, 3, false>(DSK4J_MLA_DECODE_ARGS);
}
extern "C" __global__ void __launch_bounds__(DSK4J_MLA_THREADS, 1) dsk4j_mla_decode_mma_bm64_s2(DSK4J_MLA_DECODE_PARAMS) {
    dsk4j_mla::decode_impl<64, 2, false>(DSK4J_MLA_DECODE_ARGS);
}
extern "C" __global__ void __launch_bounds__(DSK4J_MLA_THREADS, 1) dsk4j_mla_decode_mma_bm32_s1(DSK4J_MLA_DECODE_PARAMS) {
    dsk4j_mla::decode_impl<32, 1, false>(DSK4J_MLA_DECODE_ARGS);
}
// The sm_90a variant: S = Q K^T by wgmma (body only in the sm_90a cubin; a trap elsewhere, where
// the host never launches it). Opt-in (DSK4J_CUDA_MLA_KERNEL=wgmma) until verified on a GPU.
extern "C" __global__ void __launch_bounds__(DSK4J_MLA_THREADS, 1) dsk4j_mla_decode_wgmma_bm64_s3(DSK4J_MLA_DECODE_PARAMS) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    dsk4j_mla::decode_impl<64, 3, true>(DSK4J_MLA_DECODE_ARGS);
#else
    __trap();
#endif
}
static_assert(dsk4j_mla::Cfg<64, 3>::SMEM == 192512, "cuda_mla.c SMEM_BM64_S3");
static_assert(dsk4j_mla::Cfg<64, 2>::SMEM == 155136, "cuda_mla.c SMEM_BM64_S2");
static_assert(dsk4j_mla::Cfg<32, 1>::SMEM == 77824, "cuda_mla.c SMEM_BM32_S1");
static_assert(dsk4j_mla::Cfg<64, 3, true>::SMEM == 189952, "cuda_mla.c SMEM_WG_BM64_S3");

// Combine of the split partials: for each row, lse = ln sum_i exp(lse_i) over the splits (all
// -inf: o = 0, lse = -inf), o = sum_i exp(lse_i - lse) o_i, written in dtype. One block
// (DSK4J_MLA_COMBINE_THREADS) per row, grid-stride; each thread 4 columns.
extern "C" __global__ void __launch_bounds__(DSK4J_MLA_COMBINE_THREADS)
dsk4j_mla_decode_combine(void* o_latent, float* lse, const float* o_part, const float* lse_part, int dtype,
                         long long rows, int nsplit) {
    const int c = threadIdx.x * 4;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        float mx = -INFINITY;
        for (int i = 0; i < nsplit; i++) mx = fmaxf(mx, lse_part[(long long)i * rows + r]);
        float sum = 0.0f;
        float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (mx != -INFINITY) {
            for (int i = 0; i < nsplit; i++) sum += expf(lse_part[(long long)i * rows + r] - mx);
            for (int i = 0; i < nsplit; i++) {
                const float li = lse_part[(long long)i * rows + r];
                if (li == -INFINITY) continue;
                const float w = expf(li - mx) / sum;
                const float4 p = *(const float4*)(o_part + ((long long)i * rows + r) * dsk4j_mla::LAT + c);
                o.x += w * p.x;
                o.y += w * p.y;
                o.z += w * p.z;
                o.w += w * p.w;
            }
        }
        const long long idx = r * dsk4j_mla::LAT + c;
        if (dtype == DSK4J_DT_BF16) {
            *(uint2*)((uint16_t*)o_latent + idx) =
                make_uint2(dsk4j_mla::pack_bf16(o.x, o.y), dsk4j_mla::pack_bf16(o.z, o.w));
        } else {
            *(float4*)((float*)o_latent + idx) = o;
        }
        if (lse != nullptr && threadIdx.x == 0) lse[r] = mx == -INFINITY ? -INFINITY : mx + logf(sum);
    }
}
