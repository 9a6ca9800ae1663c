// sm90_gemm_fp8_wgmma.cu - gemm.fp8_block on Hopper (sm_90a only): TMA loads, wgmma, warp
// specialization, a persistent grid. Same op and tolerance as dsk4j_ref_gemm_fp8_block
// (gemm_reference.cu) and dsk4j_gemm_fp8_block_bm64 (gemm_fast.cu):
//   D[M,N] = A[M,K] * B[N,K]^T, A and B e4m3 row-major (K-major), K % 128 == 0, K >= 128;
//   for each 128-wide K block kb: part = sum_{t in kb} a[i,t]*b[j,t] (f32, tensor cores), then
//   acc[i,j] += part * (a_scale[i*rs + kb*cs] * b_scale[(j/128)*(K/128) + kb]);
//   d[i,j] (f32, or bf16 RNE) = acc (+ c[i,j] when c != NULL). M, N arbitrary (tails are never
//   written past M / N); M, N, K < 2^31 - 256 and the tile count < 2^31 (the host checks).
//
// Tiles: BM x BN = 128 x 128 outputs, BK = 128 (one promotion block) per pipeline stage.
// Threads: 384 = 3 warpgroups. WG 0 and 1 are the consumers (rows 64*wg .. 64*wg+63 of the
// tile, wgmma m64n128k32, 4 per stage); WG 2 the producer: its warp 0 (one lane) issues the TMA
// loads of A and B, its warp 1 copies the scales with cp.async, warps 2-3 exit at once.
// setmaxnreg: producer 48, consumers 224 registers (128*48 + 256*224 = 63488 <= 65536); ptxas
// fits the consumers in 158 without it, the producer spilled its 64-bit scale addressing at 40.
// Persistent: grid <= #SMs, CTA b takes tiles b, b + grid, ...; tile t -> (M tile, N tile) in
// groups of 8 M tiles (M fastest) for L2 reuse of B. Producer and consumers walk the same
// (tile, kb) sequence, so a running (stage, phase) pair indexes the ring.
//
// Shared memory (base rounded up to 1024 bytes; SMEM_BYTES includes the 1024 of slack):
//   [0, STAGES*32768)            stage s: A box [128 rows][128 B] at s*32768, B box at +16384
//   [SCALES_OFF, +STAGES*528)    stage s: f32 a_scale of the tile's 128 rows, b_scale at [128]
//   [BARS_OFF, +STAGES*16)       full[s] (8 B each), then empty[s]
//
// Barrier protocol (stage s of round r = iteration / STAGES, phase parity r & 1):
//   full[s]  init count 33: the TMA lane's arrive.expect_tx(32768) + 32 cp.async arrivals of
//            the scale warp (.noinc, so they count against the 33). Completes when the 33
//            arrivals and all 32768 bytes (two full 16384-byte boxes: TMA counts the whole box,
//            zero-filled out-of-bounds rows included) have landed. Consumers wait parity r & 1.
//   empty[s] init count 8: lane 0 of each consumer warp arrives after its warpgroup's
//            wgmma.wait_group 0 (all smem reads of the stage done, scales already in registers).
//            Producers wait parity (r & 1) ^ 1: on round 0 that is the phase "before" the
//            initial one, which counts as complete, so the ring starts empty.
//   A consumer warpgroup whose 64 rows are all >= M skips the wgmma and promotion but still
//   waits and arrives, so every barrier sees the same counts.
//
// Swizzle: the tensor maps use CU_TENSOR_MAP_SWIZZLE_128B with a 128-byte inner box, so TMA
// writes byte kb of box row r to  r*128 + (((kb>>4) ^ (r&7))<<4) + (kb&15)  of a 1024-aligned
// box (16-byte chunk bits [4:6] of the address XOR bits [7:9]). The wgmma smem descriptor
// (64 bits): start address >> 4 in bits 0-13, LBO >> 4 in bits 16-29 (unused for K-major
// swizzled layouts; 1), SBO >> 4 in bits 32-45 = 1024 >> 4 (8 rows x 128 B between 8-row core
// matrix groups along M/N), base offset bits 49-51 = 0 (boxes 1024-aligned), bits 62-63 = 1
// (128B swizzle). K-major 128B swizzle reads row r, K byte x at start + r*128 + x with the
// same address XOR, so the k32 step kk (bytes 32kk .. 32kk+31) is start + 32*kk (+2*kk in the
// >>4 field): chunk (2kk + c) ^ (r&7), exactly where TMA put it. Consumer WG w's A operand
// starts at row 64w = byte 8192w (a multiple of 1024).
//
// Accumulator fragment (PTX ISA, wgmma D for .m64nNk32 with f32, N = 128: 64 registers):
// thread 32*wq + l of the warpgroup holds d[4j + 2h + e] = D[16*wq + l/4 + 8h][8j + 2*(l%4) + e]
// for j in [0,16), h, e in {0,1}: each warp owns 16 rows; within them the m16n8 accumulator
// pattern repeats every 8 columns. So the a_scale rows of a thread are 16*wq + l/4 (h = 0)
// and + 8 (h = 1), and the epilogue writes (row, col..col+1) pairs from d[4j+2h], d[4j+2h+1].
//
// Ordering: wgmma.fence before the first wgmma of a stage (the accumulators were last written
// by ordinary instructions); the 4 wgmma of a stage are one commit group; wait_group 0 before
// the empty arrival and before the promotion reads `part`. The first wgmma of a stage has
// scale-d = 0 (part = A*B), so part needs no zeroing. Empty asm statements with "+f" operands
// keep the compiler from moving accumulator accesses across the async region.
//
// Only the sm_90a cubin has the body (__CUDA_ARCH_FEAT_SM90_ALL); elsewhere the kernel traps,
// and the host (cuda_gemm.c) launches it only from the sm_90a cubin.
#include "fp8_convert.cuh"
#include "sm90_common.cuh"

#define DSK4J_WG_THREADS 384 // must match WG_THREADS in native/src/cuda_gemm.c
#define DSK4J_WG_STAGES 6    // must match WG_STAGES in native/src/cuda_gemm.c

namespace dsk4j_wg {

constexpr int BM = 128, BN = 128, BK = 128, GROUP_M = 8;
constexpr int STAGES = DSK4J_WG_STAGES;
constexpr uint32_t A_BYTES = BM * BK, B_BYTES = BN * BK, STAGE_BYTES = A_BYTES + B_BYTES;
constexpr uint32_t SCALE_FLOATS = BM + 4; // a_scale[128], b_scale, pad (528 bytes)
constexpr uint32_t SCALES_OFF = STAGES * STAGE_BYTES;
constexpr uint32_t BARS_OFF = SCALES_OFF + STAGES * SCALE_FLOATS * 4;
constexpr uint32_t SMEM_BYTES = 1024 + BARS_OFF + 2 * STAGES * 8; // 200896 for 6 stages
constexpr uint32_t FULL_COUNT = 1 + 32, EMPTY_COUNT = 8;
static_assert(STAGE_BYTES % 1024 == 0 && A_BYTES % 1024 == 0, "1024-aligned swizzle atoms");
static_assert(BARS_OFF % 8 == 0, "mbarrier alignment");
static_assert(SMEM_BYTES <= 232448, "sm_90 opt-in shared memory per block");
static_assert(STAGES != 6 || SMEM_BYTES == 200896, "WG_SMEM in native/src/cuda_gemm.c");

// Tile t -> (tm, tn): groups of GROUP_M M tiles, M fastest inside a group.
__device__ __forceinline__ void tile_of(int t, int m_tiles, int n_tiles, int& tm, int& tn) {
    const int per_group = GROUP_M * n_tiles;
    const int first_m = (t / per_group) * GROUP_M;
    const int gsz = min(m_tiles - first_m, GROUP_M);
    const int r = t % per_group;
    tm = first_m + r % gsz;
    tn = r / gsz;
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
using namespace dsk4j_sm90; // mbarriers, TMA, wgmma fence / commit / wait (sm90_common.cuh)

// 4-byte cp.async, zero fill when src_bytes == 0.
__device__ __forceinline__ void cp_async4(uint32_t dst, const void* src, uint32_t src_bytes) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}
// Arrive on bar once this thread's prior cp.async have landed (counted in the init count).
__device__ __forceinline__ void cp_async_arrive_noinc(uint32_t bar) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}

__device__ __forceinline__ uint64_t smem_desc(uint32_t addr) {
    return (uint64_t)((addr & 0x3FFFFu) >> 4) | ((uint64_t)1 << 16) | ((uint64_t)(1024 >> 4) << 32) |
           ((uint64_t)1 << 62);
}
__device__ __forceinline__ void fence_regs(float (&d)[64]) {
#pragma unroll
    for (int i = 0; i < 64; i++) asm volatile("" : "+f"(d[i])::"memory");
}

// d (64 x 128 f32, fragment above) = A (64 x 32 e4m3, smem desc da) * B (128 x 32, desc db)^T
// (+ d when scale_d != 0).
__device__ __forceinline__ void wgmma_m64n128k32(float (&d)[64], uint64_t da, uint64_t db, uint32_t scale_d) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
        "}, %64, %65, p, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(da), "l"(db), "r"(scale_d)
        : "memory");
}

// Epilogue of one warp: rows row_base + l/4 (+8), columns col_base + 8j + 2(l%4) (+1).
__device__ __forceinline__ void store_acc(const float (&acc)[64], void* d, int d_dtype, const float* c, int m,
                                          int n, int row_base, int col_base, int lane, bool vec) {
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int row = row_base + (lane >> 2) + 8 * h;
        if (row >= m) continue;
        const long long rbase = (long long)row * n;
#pragma unroll
        for (int j = 0; j < 16; j++) {
            const int col = col_base + 8 * j + 2 * (lane & 3);
            if (col >= n) continue;
            float v0 = acc[4 * j + 2 * h], v1 = acc[4 * j + 2 * h + 1];
            const long long idx = rbase + col;
            if (vec) { // n even, col even: col + 1 < n; d (and c) aligned for the pair
                if (c != nullptr) {
                    const float2 cv = *(const float2*)(c + idx);
                    v0 += cv.x;
                    v1 += cv.y;
                }
                if (d_dtype == DSK4J_DT_BF16)
                    *(uint32_t*)((uint16_t*)d + idx) =
                        (uint32_t)dsk4j_f32_to_bf16(v0) | ((uint32_t)dsk4j_f32_to_bf16(v1) << 16);
                else
                    *(float2*)((float*)d + idx) = make_float2(v0, v1);
            } else {
                if (c != nullptr) v0 += c[idx];
                if (d_dtype == DSK4J_DT_BF16) ((uint16_t*)d)[idx] = dsk4j_f32_to_bf16(v0);
                else ((float*)d)[idx] = v0;
                if (col + 1 < n) {
                    if (c != nullptr) v1 += c[idx + 1];
                    if (d_dtype == DSK4J_DT_BF16) ((uint16_t*)d)[idx + 1] = dsk4j_f32_to_bf16(v1);
                    else ((float*)d)[idx + 1] = v1;
                }
            }
        }
    }
}
#endif // __CUDA_ARCH_FEAT_SM90_ALL

} // namespace dsk4j_wg

// gemm.fp8_block (sm_90a): launch DSK4J_WG_THREADS threads, dynamic shared memory
// dsk4j_wg::SMEM_BYTES, any 1-D grid (the host uses min(#SMs, tiles)). tmap_a: A as uint8
// dims {K, M}, row pitch K, box {128, 128}, SWIZZLE_128B; tmap_b: B the same with {K, N}.
extern "C" __global__ void __launch_bounds__(DSK4J_WG_THREADS, 1)
    dsk4j_gemm_fp8_block_sm90(const __grid_constant__ dsk4j_tensor_map tmap_a,
                              const __grid_constant__ dsk4j_tensor_map tmap_b, void* d, int d_dtype,
                              const float* a_scale, long long a_scale_rs, long long a_scale_cs,
                              const float* b_scale, const float* c, int m, int n, int k) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using namespace dsk4j_wg;
    extern __shared__ __align__(1024) uint8_t dsk4j_wg_smem[];
    const uint32_t raw = (uint32_t)__cvta_generic_to_shared(dsk4j_wg_smem);
    const uint32_t s_base = (raw + 1023u) & ~1023u;
    const float* scales = (const float*)(dsk4j_wg_smem + (s_base - raw) + SCALES_OFF);
    const uint32_t s_scales = s_base + SCALES_OFF, s_full = s_base + BARS_OFF, s_empty = s_full + STAGES * 8;

    const int m_tiles = (m + BM - 1) / BM, n_tiles = (n + BN - 1) / BN, tiles = m_tiles * n_tiles;
    const int kblocks = k / BK;
    const int wg = threadIdx.x >> 7, wq = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;

    if (threadIdx.x == 0) {
        for (int s = 0; s < STAGES; s++) {
            mbar_init(s_full + 8 * s, FULL_COUNT);
            mbar_init(s_empty + 8 * s, EMPTY_COUNT);
        }
        mbar_init_fence(); // visible to the other threads (the __syncthreads) and to TMA
    }
    __syncthreads();

    if (wg == 2) {
        // ---- producer warpgroup ----
        asm volatile("setmaxnreg.dec.sync.aligned.u32 48;\n" ::: "memory");
        if (wq == 0) {
            if (lane == 0) { // TMA: A and B boxes of each (tile, kb)
                tma_prefetch(&tmap_a);
                tma_prefetch(&tmap_b);
                uint32_t stage = 0, phase = 0;
                for (int t = blockIdx.x; t < tiles; t += gridDim.x) {
                    int tm, tn;
                    tile_of(t, m_tiles, n_tiles, tm, tn);
                    for (int kb = 0; kb < kblocks; kb++) {
                        mbar_wait(s_empty + 8 * stage, phase ^ 1u);
                        const uint32_t full = s_full + 8 * stage, sa = s_base + stage * STAGE_BYTES;
                        mbar_arrive_expect_tx(full, STAGE_BYTES);
                        tma_load_2d(sa, &tmap_a, kb * BK, tm * BM, full);
                        tma_load_2d(sa + A_BYTES, &tmap_b, kb * BK, tn * BN, full);
                        if (++stage == STAGES) stage = 0, phase ^= 1u;
                    }
                }
            }
        } else if (wq == 1) { // scales: a_scale of the tile's 128 rows (0 past m), b_scale
            uint32_t stage = 0, phase = 0;
            for (int t = blockIdx.x; t < tiles; t += gridDim.x) {
                int tm, tn;
                tile_of(t, m_tiles, n_tiles, tm, tn);
                const float* bs_row = b_scale + (long long)tn * kblocks;
                for (int kb = 0; kb < kblocks; kb++) {
                    mbar_wait(s_empty + 8 * stage, phase ^ 1u);
                    const uint32_t dst = s_scales + stage * (SCALE_FLOATS * 4);
#pragma unroll
                    for (int q = 0; q < 4; q++) {
                        const int r = lane + 32 * q, row = tm * BM + r;
                        const bool ok = row < m;
                        cp_async4(dst + 4 * r, ok ? a_scale + (long long)row * a_scale_rs + (long long)kb * a_scale_cs
                                                  : a_scale,
                                  ok ? 4u : 0u);
                    }
                    if (lane == 0) cp_async4(dst + 4 * BM, bs_row + kb, 4u);
                    cp_async_arrive_noinc(s_full + 8 * stage);
                    if (++stage == STAGES) stage = 0, phase ^= 1u;
                }
            }
            asm volatile("cp.async.wait_all;\n" ::: "memory"); // no copy in flight at exit
        }
    } else {
        // ---- consumer warpgroups 0, 1 ----
        asm volatile("setmaxnreg.inc.sync.aligned.u32 224;\n" ::: "memory");
        const uint64_t da0 = smem_desc(s_base + (uint32_t)wg * (64 * BK)), db0 = smem_desc(s_base + A_BYTES);
        const int srow = wg * 64 + wq * 16 + (lane >> 2); // this thread's first row in the tile
        const uint32_t esz = d_dtype == DSK4J_DT_BF16 ? 4u : 8u;
        const bool vec = (n & 1) == 0 && ((unsigned long long)d & (esz - 1)) == 0 &&
                         ((unsigned long long)c & 7u) == 0;
        float part[64];
#pragma unroll
        for (int i = 0; i < 64; i++) part[i] = 0.0f;
        uint32_t stage = 0, phase = 0;
        for (int t = blockIdx.x; t < tiles; t += gridDim.x) {
            int tm, tn;
            tile_of(t, m_tiles, n_tiles, tm, tn);
            const bool active = tm * BM + wg * 64 < m; // uniform per warpgroup
            float acc[64];
#pragma unroll
            for (int i = 0; i < 64; i++) acc[i] = 0.0f;
            for (int kb = 0; kb < kblocks; kb++) {
                mbar_wait(s_full + 8 * stage, phase);
                const float* sc = scales + stage * SCALE_FLOATS;
                const float sa0 = sc[srow], sa1 = sc[srow + 8], sb = sc[BM];
                if (active) {
                    const uint64_t off = stage * (STAGE_BYTES >> 4);
                    fence_regs(part);
                    wgmma_fence();
                    wgmma_m64n128k32(part, da0 + off, db0 + off, 0u);
                    wgmma_m64n128k32(part, da0 + off + 2, db0 + off + 2, 1u);
                    wgmma_m64n128k32(part, da0 + off + 4, db0 + off + 4, 1u);
                    wgmma_m64n128k32(part, da0 + off + 6, db0 + off + 6, 1u);
                    wgmma_commit();
                    fence_regs(part);
                    wgmma_wait0();
                    fence_regs(part);
                }
                __syncwarp();
                if (lane == 0) mbar_arrive(s_empty + 8 * stage);
                if (active) {
                    const float s0 = sa0 * sb, s1 = sa1 * sb;
#pragma unroll
                    for (int j = 0; j < 16; j++) {
                        acc[4 * j + 0] = fmaf(part[4 * j + 0], s0, acc[4 * j + 0]);
                        acc[4 * j + 1] = fmaf(part[4 * j + 1], s0, acc[4 * j + 1]);
                        acc[4 * j + 2] = fmaf(part[4 * j + 2], s1, acc[4 * j + 2]);
                        acc[4 * j + 3] = fmaf(part[4 * j + 3], s1, acc[4 * j + 3]);
                    }
                }
                if (++stage == STAGES) stage = 0, phase ^= 1u;
            }
            if (active) store_acc(acc, d, d_dtype, c, m, n, tm * BM + wg * 64 + wq * 16, tn * BN, lane, vec);
        }
    }
#else
    __trap(); // no sm_90a features in this image: the host never launches it here
#endif
}
