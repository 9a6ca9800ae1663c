// mla_decode_sm90.cu - mla.decode (DESIGN.md 4.4) on Hopper in the FlashMLA style (sm_90a only):
// TMA page loads on mbarriers, wgmma bf16 for both products, two warpgroups splitting the
// 512-wide output. Same op, formulas and split-KV contract as decode_impl (mla_decode.cu) and
// dsk4j_ref_mla_decode (mla_reference.cu): per query row (s, h) of batch b with L = seq_lens[b],
//   logit[t] = scale * (q_latent . c_t + q_pe . k_pe_t) for t < kv_end (causal: L - sq + s + 1,
//   else L), o = sum_t softmax(logit)_t c_t (512), lse = ln sum_t exp(logit[t]).
// Only the BF16 cache and bf16 q / o (cuda_mla.c runs the other kernels for everything else).
// NEVER RUN ON A GPU: compiled, and its tiling / fragment / descriptor math checked by
// kernels-ptx/model/mla_flash_model.py only; opt-in (DSK4J_CUDA_MLA_KERNEL=flash).
//
// Block (256 threads = warpgroups 0 and 1, both consumers; thread 0 also issues the TMA) =
// (batch b, split, row tile): 64 query rows of b's sq * heads rows (row index s * heads + h,
// FlashMLA's query tile) against the pages [tb, te) of the split. A KV tile is one 64-token
// page (page block_table[b, it], tokens it*64 ..).
//
// Shared memory (base rounded up to 1024; SMEM includes the 1024 of slack). Every tile is 9
// TMA boxes of [64 rows][128 bytes] (64 bf16 of a 576-wide row: boxes 0-7 the latent, box 8
// the rope), 8192 bytes each, written by TMA with CU_TENSOR_MAP_SWIZZLE_128B: byte x of box row
// r lands at r*128 + (((x >> 4) ^ (r & 7)) << 4) + (x & 15) (1024-aligned boxes).
//   [0, 73728)           Q: box c = q_latent[:, 64c ..] (c < 8), box 8 = q_pe (rows past
//                        rows_total are zero-filled by TMA; rows of the next batch are loaded,
//                        masked and never stored)
//   [73728, 221184)      KV stages 0, 1: page it in stage (it - tb) & 1
//   [221184, 229376)     P: bf16 [64 rows][64 tokens] in the same swizzled K-major layout
//   [229376, 230400)     f32 row maxima [2 warpgroups][64], row sums [2][64]
//   [230400, 230424)     mbarriers q_full, full[0], full[1] (each count 1: thread 0's
//                        arrive.expect_tx of the 73728 bytes of 9 boxes)
//
// Per page it (k = it - tb, stage k & 1, parity (k >> 1) & 1), all 256 threads:
//   wait full[stage].
//   S (64 rows x 64 tokens) = Q K^T over 576: warpgroup w computes tokens 32w .. 32w+31 with
//     36 x wgmma.m64n32k16 (9 boxes x 4 k16 steps), A = Q and B = the page, both K-major SW128
//     descriptors (start + 32 kk; SBO 1024 = 8 rows x 128 bytes; LBO unused).
//   x = S * scale * log2(e), -inf for tokens >= kv_end of the row. Row max: quad shuffles, then
//     red_max[w][row]; __syncthreads (B1: maxima visible; all S wgmma done); both warpgroups
//     take m_new = max(m, red_max[0], red_max[1]) (the same value in both), rescale their O
//     half and l by 2^(m - m_new), p = 2^(x - m_new) -> bf16 -> P (swizzled). The last page of a
//     sequence (L % 64 != 0): the latent of tokens >= L is zeroed in the stage (the pool may hold
//     NaN there, and 0 * NaN = NaN in P V). fence.proxy.async, __syncthreads (B2).
//   O[:, 256w ..] += P V: 4 x wgmma.m64n256k16, A = P (K-major SW128, start + 32 kk), B = the
//     latent of the page read MN-major ("transposed", imm-trans-b 1): boxes 4w .. 4w+3 are N
//     blocks of 64 columns at LBO = 8192, 8-token groups at SBO = 1024, start + 2048 kk.
//   __syncthreads (B3: both warpgroups are done with the stage and P); thread 0 issues page
//     it + 2 into the stage (double buffering: page it + 1 was in flight during this page).
// Accumulator fragments (PTX ISA, wgmma D of m64nN, f32): thread 32*wq + l of a warpgroup holds
// d[4j + 2h + e] = D[16 wq + l/4 + 8h][8j + 2 (l%4) + e]. So each thread owns rows
// 16 wq + g, + 8 of both S and O; S columns 32w + 8j + 2 t4 + e (j < 4); O columns
// 256w + 8j + 2 t4 + e (j < 32, 128 registers).
// End: l = the sum of both warpgroups' partial sums (red_sum); nsplit == 1: o_latent (bf16) =
// acc / l, lse = ln2 * (m + log2 l) (L = 0 or nothing visible: o = 0, lse = -inf); else the
// normalized partial o (f32) and lse go to o_part [nsplit][rows][512] / lse_part [nsplit][rows]
// and dsk4j_mla_decode_combine (mla_decode.cu) merges them.
// Ordering: wgmma.fence before each batch (the accumulators were written by ordinary
// instructions); wait_group 0 before the registers are read and before B1 / B3 (so the smem
// the wgmma read is free after the barrier); empty asm statements with "+f" operands keep the
// compiler from moving accumulator accesses across the async region.
#include "fp8_convert.cuh"
#include "sm90_common.cuh"

#define DSK4J_MLA_FL_THREADS 256 // must match MLA_THREADS in native/src/cuda_mla.c

namespace dsk4j_mla_fl {

constexpr int BM = 64, PAGE = 64, KD = 576, LAT = 512, BOXES = KD / 64;
constexpr uint32_t BOX = 64 * 128;             // one [64 rows][128 bytes] TMA box
constexpr uint32_t TILE = BOXES * BOX;         // 73728: the Q tile or one page
constexpr uint32_t Q_OFF = 0, KV_OFF = TILE, P_OFF = 3 * TILE;
constexpr uint32_t RED_OFF = P_OFF + BOX;      // f32 red_max [2][64], red_sum [2][64]
constexpr uint32_t BAR_OFF = RED_OFF + 4 * 64 * 4;
constexpr uint32_t SMEM = 1024 + BAR_OFF + 3 * 8;
constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;
static_assert(SMEM == 231448, "cuda_mla.c: the flash kernel's shared memory");
static_assert(SMEM <= 232448, "sm_90 opt-in shared memory per block");
static_assert(BAR_OFF % 8 == 0 && TILE % 1024 == 0, "alignment");

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// K-major, 128-byte swizzle descriptor: start >> 4 (bits 0-13), LBO 16 >> 4 (16-29, unused for
// swizzled K-major), SBO 1024 >> 4 (32-45), swizzle mode 1 = 128B (62-63).
__device__ __forceinline__ uint64_t desc_k(uint32_t addr) {
    return (uint64_t)((addr & 0x3FFFFu) >> 4) | ((uint64_t)1 << 16) | ((uint64_t)(1024 >> 4) << 32) |
           ((uint64_t)1 << 62);
}
// MN-major, 128-byte swizzle (V of P V): LBO = 8192 between 64-column N blocks (the boxes),
// SBO = 1024 between 8-token K groups.
__device__ __forceinline__ uint64_t desc_mn(uint32_t addr) {
    return (uint64_t)((addr & 0x3FFFFu) >> 4) | ((uint64_t)(BOX >> 4) << 16) | ((uint64_t)(1024 >> 4) << 32) |
           ((uint64_t)1 << 62);
}
template <int N>
__device__ __forceinline__ void fence_regs(float (&d)[N]) {
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i])::"memory");
}
// d (64 x 32 f32) (+)= A (64 x 16, desc da) * B (32 x 16, desc db)^T; scale_d = 0: d = A B^T.
__device__ __forceinline__ void wgmma_s(float (&d)[16], uint64_t da, uint64_t db, uint32_t scale_d) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15"
        "}, %16, %17, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
          "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "l"(da), "l"(db), "r"(scale_d)
        : "memory");
}
// d (64 x 256 f32) (+)= A (64 x 16 tokens, K-major desc da) * B (16 tokens x 256, MN-major desc db).
__device__ __forceinline__ void wgmma_pv(float (&d)[128], uint64_t da, uint64_t db, uint32_t scale_d) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, "
        "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, "
        "%42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, "
        "%62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, "
        "%82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, "
        "%102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, "
        "%119, %120, %121, %122, %123, %124, %125, %126, %127"
        "}, %128, %129, p, 1, 1, 0, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
          "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),
          "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),
          "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]),
          "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]),
          "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),
          "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),
          "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]),
          "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]),
          "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]),
          "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]),
          "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]),
          "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]),
          "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]),
          "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]),
          "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
        : "l"(da), "l"(db), "r"(scale_d)
        : "memory");
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    return (uint32_t)dsk4j_f32_to_bf16(lo) | ((uint32_t)dsk4j_f32_to_bf16(hi) << 16);
}
__device__ __forceinline__ float fast_exp2(float x) { // 2^x; -inf -> 0
    float y;
    asm("ex2.approx.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}
// Page `page` (64 tokens x 1152 bytes of the BF16 cache) -> 9 boxes at dst, counted on bar.
__device__ __forceinline__ void load_page(uint32_t dst, const dsk4j_tensor_map* map, int page, uint32_t bar) {
    dsk4j_sm90::mbar_arrive_expect_tx(bar, TILE);
#pragma unroll
    for (int c = 0; c < BOXES; c++) dsk4j_sm90::tma_load_2d(dst + c * BOX, map, c * 128, page * PAGE, bar);
}
#endif // __CUDA_ARCH_FEAT_SM90_ALL

} // namespace dsk4j_mla_fl

// Grid: batch * nsplit * row_tiles blocks exactly (block -> (b, split, row tile) as in
// mla_decode.cu, row_tiles = ceil(sq * heads / 64)), DSK4J_MLA_FL_THREADS threads, dynamic
// shared memory dsk4j_mla_fl::SMEM. Tensor maps (uint8, SWIZZLE_128B, box {128 bytes, 64 rows}):
// tmap_ql = q_latent as [rows_total][1024 bytes], tmap_qpe = q_pe as [rows_total][128],
// tmap_kv = the BF16 cache as [num_pages * 64][1152]. rows_total and num_pages * 64 < 2^31.
extern "C" __global__ void __launch_bounds__(DSK4J_MLA_FL_THREADS, 1)
    dsk4j_mla_decode_flash_sm90(const __grid_constant__ dsk4j_tensor_map tmap_ql,
                                const __grid_constant__ dsk4j_tensor_map tmap_qpe,
                                const __grid_constant__ dsk4j_tensor_map tmap_kv, void* o_latent, float* lse,
                                float* o_part, float* lse_part, const int* block_table, const int* seq_lens,
                                long long sq, long long heads, long long max_pages, int nsplit, int row_tiles,
                                long long rows_total, float scale, int causal) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using namespace dsk4j_mla_fl;
    using namespace dsk4j_sm90;
    extern __shared__ __align__(1024) uint8_t dsk4j_fl_smem[];
    const uint32_t raw = (uint32_t)__cvta_generic_to_shared(dsk4j_fl_smem);
    const uint32_t s_base = (raw + 1023u) & ~1023u;
    uint8_t* const base = dsk4j_fl_smem + (s_base - raw);
    float* const red_max = (float*)(base + RED_OFF); // [2][64]
    float* const red_sum = red_max + 2 * BM;         // [2][64]
    const uint32_t s_q = s_base + Q_OFF, s_kv = s_base + KV_OFF, s_p = s_base + P_OFF;
    const uint32_t bar_q = s_base + BAR_OFF, bar_full = bar_q + 8; // full[s] at bar_full + 8 s

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wg = warp >> 2, wq = warp & 3, g = lane >> 2, t4 = lane & 3;

    const long long blk = blockIdx.x;
    const int rt = (int)(blk % row_tiles);
    const int split = (int)((blk / row_tiles) % nsplit);
    const long long b = blk / ((long long)row_tiles * nsplit);
    const long long rows_b = sq * heads;
    const long long row0 = (long long)rt * BM; // first row of the tile within b
    const long long L = seq_lens[b];
    const long long tiles_b = (L + PAGE - 1) / PAGE;
    const long long tb = tiles_b * split / nsplit, te = tiles_b * (split + 1) / nsplit;
    const int* bt_row = block_table + b * max_pages;

    // kv_end of this thread's rows 16 wq + g (+ 8); rows past rows_b see nothing.
    long long kv_end[2];
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const long long rr = row0 + wq * 16 + g + h * 8;
        kv_end[h] = (rr >= rows_b || L <= 0) ? 0 : causal ? L - sq + rr / heads + 1 : L;
    }

    if (tid == 0) {
        mbar_init(bar_q, 1);
        mbar_init(bar_full, 1);
        mbar_init(bar_full + 8, 1);
        mbar_init_fence();
    }
    __syncthreads();
    if (tid == 0) {
        tma_prefetch(&tmap_ql);
        tma_prefetch(&tmap_qpe);
        tma_prefetch(&tmap_kv);
        const int qrow = (int)(b * rows_b + row0);
        mbar_arrive_expect_tx(bar_q, TILE);
#pragma unroll
        for (int c = 0; c < 8; c++) tma_load_2d(s_q + c * BOX, &tmap_ql, c * 128, qrow, bar_q);
        tma_load_2d(s_q + 8 * BOX, &tmap_qpe, 0, qrow, bar_q);
        for (int s = 0; s < 2; s++)
            if (tb + s < te) load_page(s_kv + s * TILE, &tmap_kv, bt_row[tb + s], bar_full + 8 * s);
    }

    float acc[128];
#pragma unroll
    for (int i = 0; i < 128; i++) acc[i] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const float sl2 = scale * LOG2E;
    const int r_lo = wq * 16 + g; // this thread's first row in the tile (the second: + 8)

    mbar_wait(bar_q, 0);
    for (long long it = tb; it < te; it++) {
        const int k = (int)(it - tb), stage = k & 1;
        const uint32_t kvs = s_kv + (uint32_t)stage * TILE;
        mbar_wait(bar_full + 8 * stage, (uint32_t)(k >> 1) & 1u);

        // ---- S = Q K^T: all 64 rows x tokens 32 wg .. 32 wg + 31 of the page ----
        float s[16];
#pragma unroll
        for (int i = 0; i < 16; i++) s[i] = 0.0f;
        const uint64_t dq = desc_k(s_q), dk = desc_k(kvs + (uint32_t)wg * 4096u);
        fence_regs(s);
        wgmma_fence();
#pragma unroll
        for (int c = 0; c < BOXES; c++)
#pragma unroll
            for (int kk = 0; kk < 4; kk++) {
                const uint64_t off = (uint64_t)((c * BOX + 32 * kk) >> 4);
                wgmma_s(s, dq + off, dk + off, (c | kk) != 0 ? 1u : 0u);
            }
        wgmma_commit();
        fence_regs(s);
        wgmma_wait0();
        fence_regs(s);

        // ---- masking, row max across the two warpgroups ----
        float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int h = e >> 1;
                const long long pos = it * PAGE + wg * 32 + j * 8 + t4 * 2 + (e & 1);
                const float x = pos < kv_end[h] ? s[4 * j + e] * sl2 : -INFINITY;
                s[4 * j + e] = x;
                tmax[h] = fmaxf(tmax[h], x);
            }
#pragma unroll
        for (int h = 0; h < 2; h++) {
            tmax[h] = fmaxf(tmax[h], __shfl_xor_sync(0xffffffffu, tmax[h], 1));
            tmax[h] = fmaxf(tmax[h], __shfl_xor_sync(0xffffffffu, tmax[h], 2));
            if (t4 == 0) red_max[wg * BM + r_lo + h * 8] = tmax[h];
        }
        __syncthreads(); // (B1) maxima visible; every S wgmma of this page is done

        float alpha[2], m_use[2];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const float mx = fmaxf(m[h], fmaxf(red_max[r_lo + h * 8], red_max[BM + r_lo + h * 8]));
            m_use[h] = mx == -INFINITY ? 0.0f : mx; // nothing visible yet: p = 0, no NaN
            alpha[h] = m[h] == -INFINITY ? 0.0f : fast_exp2(m[h] - mx);
            m[h] = mx;
            l[h] *= alpha[h];
        }
#pragma unroll
        for (int j = 0; j < 32; j++) {
            acc[4 * j + 0] *= alpha[0];
            acc[4 * j + 1] *= alpha[0];
            acc[4 * j + 2] *= alpha[1];
            acc[4 * j + 3] *= alpha[1];
        }
        // ---- P = 2^(x - m) -> bf16 -> shared (K-major, 128-byte swizzle) ----
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const float p0 = fast_exp2(s[4 * j + 2 * h] - m_use[h]);
                const float p1 = fast_exp2(s[4 * j + 2 * h + 1] - m_use[h]);
                l[h] += p0 + p1;
                const int row = r_lo + h * 8, tok = wg * 32 + j * 8 + t4 * 2;
                const uint32_t off = (uint32_t)(row * 128 + ((((tok >> 3) ^ (row & 7))) << 4) + (tok & 7) * 2);
                *(uint32_t*)(base + P_OFF + off) = pack_bf16(p0, p1);
            }
        // ---- the last page of the sequence: zero the latent of tokens >= L ----
        const long long n_valid = L - it * PAGE;
        if (n_valid < PAGE) {
            uint8_t* const st = base + KV_OFF + stage * TILE;
            for (int idx = tid; idx < (PAGE - (int)n_valid) * 64; idx += DSK4J_MLA_FL_THREADS) {
                const int r = (int)n_valid + (idx >> 6), c = (idx >> 3) & 7, ch = idx & 7;
                *(uint4*)(st + c * BOX + r * 128 + ch * 16) = make_uint4(0u, 0u, 0u, 0u);
            }
        }
        fence_proxy_async(); // P (and the zeroed rows) -> the async proxy (wgmma)
        __syncthreads();     // (B2) P of both warpgroups visible

        // ---- O[:, 256 wg ..] += P V ----
        const uint64_t dp = desc_k(s_p), dv = desc_mn(kvs + (uint32_t)wg * 4u * BOX);
        fence_regs(acc);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < 4; kk++)
            wgmma_pv(acc, dp + (uint64_t)((32 * kk) >> 4), dv + (uint64_t)((2048 * kk) >> 4), 1u);
        wgmma_commit();
        fence_regs(acc);
        wgmma_wait0();
        fence_regs(acc);
        __syncthreads(); // (B3) both warpgroups are done with this stage and P
        if (tid == 0 && it + 2 < te) load_page(kvs, &tmap_kv, bt_row[it + 2], bar_full + 8 * stage);
    }

    // ---- l of a row = the sum of both warpgroups' partial sums ----
#pragma unroll
    for (int h = 0; h < 2; h++) {
        l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
        l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
        if (t4 == 0) red_sum[wg * BM + r_lo + h * 8] = l[h];
    }
    __syncthreads();
    float inv[2], row_lse[2];
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const float lt = red_sum[r_lo + h * 8] + red_sum[BM + r_lo + h * 8];
        inv[h] = lt > 0.0f ? 1.0f / lt : 0.0f;
        row_lse[h] = lt > 0.0f ? (m[h] + __log2f(lt)) * LN2 : -INFINITY;
    }

    // ---- store ----
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const long long rr = row0 + r_lo + h * 8;
        if (rr >= rows_b) continue;
        const long long grow = b * rows_b + rr; // global query row
        if (nsplit == 1) {
#pragma unroll
            for (int j = 0; j < 32; j++) {
                const long long idx = grow * LAT + wg * 256 + j * 8 + t4 * 2;
                *(uint32_t*)((uint16_t*)o_latent + idx) = pack_bf16(acc[4 * j + 2 * h] * inv[h], acc[4 * j + 2 * h + 1] * inv[h]);
            }
            if (lse != nullptr && wg == 0 && t4 == 0) lse[grow] = row_lse[h];
        } else {
            float* op = o_part + ((long long)split * rows_total + grow) * LAT + wg * 256;
#pragma unroll
            for (int j = 0; j < 32; j++)
                *(float2*)(op + j * 8 + t4 * 2) = make_float2(acc[4 * j + 2 * h] * inv[h], acc[4 * j + 2 * h + 1] * inv[h]);
            if (wg == 0 && t4 == 0) lse_part[(long long)split * rows_total + grow] = row_lse[h];
        }
    }
#else
    __trap(); // no sm_90a features in this image: the host never launches it here
#endif
}
