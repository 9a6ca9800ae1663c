// gemm_fast.cu - the fast gemm kernels on every target: a tiled, cp.async-pipelined
// shared-memory kernel with mma.sync tensor-core instructions (DESIGN.md 4.2; the exact
// formulas are at the top of gemm_reference.cu, whose parameter lists these kernels share).
//
//   fp8 (gemm.fp8_block, gemm.fp8_grouped_*): on sm_89+ (sm_89 / sm_90a cubins)
//       mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32; in the compute_80 PTX (no fp8
//       mma) the e4m3 fragments are converted exactly to bf16 in registers and run through
//       mma.sync m16n8k16 bf16 (two per k32 step). Promotion: each 128-wide K block is
//       accumulated in fresh f32 registers ("part"), then acc += part * (a_scale * b_scale).
//   bf16 (gemm.bf16): mma.sync m16n8k16 bf16, f32 accumulation, any k.
//
// Tiles: BM x 128 outputs per block (BM = 128 or 64 for bf16; 64 for fp8, whose two
// accumulator sets (acc, part) at BM = 128 need more than 255 registers; BN = 128 is aligned to the 128-row
// blocks of b_scale, so one b_scale per tile and K block), 256 threads = 8 warps in a 2 x 4
// grid, each warp (BM/2) x 32. K is staged 64 bytes at a time (64 e4m3 or 32 bf16 values)
// in STAGES shared-memory buffers [rows][64 bytes], 16-byte chunks XOR-swizzled
// (chunk ^ ((row >> 1) & 3)) so that ldmatrix and the cp.async stores are conflict-free.
// Dynamic shared memory: STAGES * (BM + 128) * 64 bytes (+ 4 * (BM + 4) * 4 for the fp8
// scales: 50240 bytes for fp8 with BM = 64, 65536 for bf16 with BM = 128), so the host raises CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES at context open.
//
// Loads: 16-byte cp.async.cg with zero fill (src-size 0) past m / n / k when `aligned`
// (base pointers 16-byte aligned and the row pitch k*elem a multiple of 16; the host
// decides); otherwise byte loads with the same guards (misaligned views, bf16 with k % 8 != 0).
// Every output element is written by exactly one thread; rows outside [0, m) or outside
// every group, and columns >= n, are never touched. All indices into global memory are 64-bit.
//
// Grid: 1-D, blocks stride over the tiles (any grid size is correct). Plain kernels visit
// the (m/BM) x (n/128) tiles in groups of 8 M tiles (L2 reuse of b); grouped kernels map
// tile t -> (group, M tile in the group, N tile) by scanning the group sizes, read from device
// memory and clamped, with a cursor that only moves forward (t grows in a block).
#include "fp8_convert.cuh"

#define DSK4J_GEMM_THREADS 256 // must match GEMM_THREADS in native/src/cuda_gemm.c
#define DSK4J_GEMM_BN 128
#define DSK4J_GEMM_STAGES 4    // must match GEMM_STAGES in native/src/cuda_gemm.c
#define DSK4J_GEMM_ROWB 64     // bytes of K per stage row

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 890)
#define DSK4J_MMA_FP8 1
#else
#define DSK4J_MMA_FP8 0
#endif

namespace dsk4j_gemm {

constexpr int THREADS = DSK4J_GEMM_THREADS;
constexpr int BN = DSK4J_GEMM_BN;
constexpr int STAGES = DSK4J_GEMM_STAGES;
constexpr int ROWB = DSK4J_GEMM_ROWB;
constexpr int GROUP_M = 8;

// Byte offset of 16-byte chunk ch (0..3) of row r in a [rows][64 bytes] swizzled buffer.
__device__ __forceinline__ unsigned swz(int r, int ch) {
    return (unsigned)(r * ROWB + ((ch ^ ((r >> 1) & 3)) << 4));
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

// d (16x8 f32) += a (16x16 bf16, row) * b (16x8 bf16, col)
__device__ __forceinline__ void mma_bf16(float* c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                 "{%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

#if DSK4J_MMA_FP8
// d (16x8 f32) += a (16x32 e4m3, row) * b (32x8 e4m3, col)
__device__ __forceinline__ void mma_e4m3(float* c, const uint32_t* a, const uint32_t* b) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                 "{%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#else
// Two e4m3 codes (bits 0..7, 8..15 of w) -> bf16x2 (first code in the low half), exact: every
// e4m3 value is a bf16 value. f32 bits (s << 31) | (eeeemmm << 20) times 2^120 rebias 7 -> 127
// (denormals too, as -ftz=false); 0x7f / 0xff -> NaN.
__device__ __forceinline__ uint32_t e4m3x2_to_bf16x2(uint32_t w) {
    float f0 = __uint_as_float(((w & 0x80u) << 24) | ((w & 0x7fu) << 20)) * 0x1p120f;
    float f1 = __uint_as_float(((w & 0x8000u) << 16) | ((w & 0x7f00u) << 12)) * 0x1p120f;
    if ((w & 0x7fu) == 0x7fu) f0 = __uint_as_float(0x7fc00000u);
    if ((w & 0x7f00u) == 0x7f00u) f1 = __uint_as_float(0x7fc00000u);
    return (__float_as_uint(f0) >> 16) | (__float_as_uint(f1) & 0xffff0000u);
}
#endif

// One A fragment of a 16 x 32-byte slice: 4 registers (ldmatrix x4 of the 16 rows).
__device__ __forceinline__ void load_a_frag(unsigned s_a, int row, int ks, int lane, uint32_t* f) {
    const int r = row + (lane & 15), ch = ks * 2 + (lane >> 4);
    ldsm_x4(s_a + swz(r, ch), f[0], f[1], f[2], f[3]);
}
// B fragments of two 8-column n tiles (16 rows of b) x 32 bytes: f0 = tile 0, f1 = tile 1.
__device__ __forceinline__ void load_b_frag2(unsigned s_b, int nrow, int ks, int lane, uint32_t* f0,
                                             uint32_t* f1) {
    const int r = nrow + (lane & 7) + ((lane >> 4) << 3), ch = ks * 2 + ((lane >> 3) & 1);
    ldsm_x4(s_b + swz(r, ch), f0[0], f0[1], f1[0], f1[1]);
}

// Stages one [ROWS][64 bytes] slice: rows row0 .. row0+ROWS-1 of g (row pitch `pitch` bytes),
// bytes kbyte0 .. kbyte0+63 of each row; rows >= row_end and bytes >= kbytes are zero.
template <int ROWS>
__device__ __forceinline__ void load_slice(unsigned s_dst, uint8_t* s_dst_ptr, const uint8_t* g,
                                           long long row0, long long row_end, long long pitch,
                                           long long kbyte0, long long kbytes, bool aligned, int tid) {
    static_assert((ROWS * 4) % THREADS == 0, "slice chunks per thread");
#pragma unroll
    for (int it = 0; it < ROWS * 4 / THREADS; it++) {
        const int idx = tid + it * THREADS, r = idx >> 2, ch = idx & 3;
        const long long grow = row0 + r, kb = kbyte0 + ch * 16;
        const bool rv = grow < row_end;
        if (aligned) {
            const bool v = rv && kb < kbytes; // aligned: kbytes % 16 == 0, a chunk is all in or out
            cp_async16(s_dst + swz(r, ch), v ? (const void*)(g + grow * pitch + kb) : (const void*)g, v ? 16 : 0);
        } else {
            uint32_t w[4] = {0u, 0u, 0u, 0u};
            if (rv) {
                const uint8_t* src = g + grow * pitch;
#pragma unroll
                for (int j = 0; j < 16; j++)
                    if (kb + j < kbytes) w[j >> 2] |= (uint32_t)src[kb + j] << ((j & 3) * 8);
            }
            *(uint4*)(s_dst_ptr + swz(r, ch)) = make_uint4(w[0], w[1], w[2], w[3]);
        }
    }
}

// Epilogue: d[row, col] = acc (+ c) for the warp's (BM/2) x 32 piece; rows < row_end, cols < n.
template <int WM>
__device__ __forceinline__ void store_tile(const float (&acc)[WM][4][4], void* d, int d_dtype, const float* c,
                                           long long row_base, long long row_end, long long col_base,
                                           long long n, int lane) {
    const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
    for (int i = 0; i < WM; i++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const long long row = row_base + i * 16 + g + h * 8;
            if (row >= row_end) continue;
#pragma unroll
            for (int j = 0; j < 4; j++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const long long col = col_base + j * 8 + t4 * 2 + e;
                    if (col >= n) continue;
                    const long long idx = row * n + col;
                    float v = acc[i][j][h * 2 + e];
                    if (c != nullptr) v += c[idx];
                    if (d_dtype == DSK4J_DT_BF16) ((uint16_t*)d)[idx] = dsk4j_f32_to_bf16(v);
                    else ((float*)d)[idx] = v;
                }
        }
}

// One BM x 128 tile of an fp8 problem: rows [row0, row_end) of a / a_scale / d (row_end <=
// row0 + BM), columns [col0, min(col0+128, n)) of b (b already offset to the group), b_scale_row
// = b_scale of this tile's 128-row block of b ([k/128]). k % 128 == 0.
template <int BM>
__device__ __forceinline__ void fp8_tile(uint8_t* smem, void* d, int d_dtype, const uint8_t* a,
                                         const float* a_scale, long long rs, long long cs,
                                         const uint8_t* b, const float* b_scale_row, const float* c,
                                         long long row0, long long row_end, long long col0, long long n,
                                         long long k, bool aligned) {
    constexpr int WM = BM / 32; // m16 tiles per warp (warp rows = BM / 2)
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp >> 2, wn = warp & 3;
    const unsigned s_base = (unsigned)__cvta_generic_to_shared(smem);
    constexpr unsigned A_BYTES = BM * ROWB, STAGE_BYTES = (BM + BN) * ROWB;

    float acc[WM][4][4], part[WM][4][4];
#pragma unroll
    for (int i = 0; i < WM; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) acc[i][j][r] = 0.0f, part[i][j][r] = 0.0f;

    // Scales of K block kb: a_scale of the tile's rows and b_scale, staged by cp.async with the
    // first stage of kb into scale buffer kb % 4 (after the stage buffers): [BM + 4] f32, b_scale
    // at BM. Buffer kb % 4 is rewritten for kb + 4, issued 7 stages after its last read.
    const unsigned s_scale = s_base + STAGES * STAGE_BYTES;
    const float* scale_ptr = (const float*)(smem + STAGES * STAGE_BYTES);
    const long long kt_total = k / ROWB; // stages; two per 128-wide K block
    auto load_stage = [&](long long kt) {
        const int slot = (int)(kt % STAGES);
        const unsigned sa = s_base + slot * STAGE_BYTES;
        uint8_t* pa = smem + slot * STAGE_BYTES;
        load_slice<BM>(sa, pa, a, row0, row_end, k, kt * ROWB, k, aligned, tid);
        load_slice<BN>(sa + A_BYTES, pa + A_BYTES, b, col0, n, k, kt * ROWB, k, aligned, tid);
        if ((kt & 1) == 0) {
            const long long kb = kt >> 1;
            const unsigned dst = s_scale + (unsigned)((kb & 3) * (BM + 4) + tid) * 4u;
            if (tid < BM) {
                const long long row = row0 + tid;
                const bool v = row < row_end;
                asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst),
                             "l"(v ? a_scale + row * rs + kb * cs : a_scale), "r"(v ? 4 : 0)
                             : "memory");
            } else if (tid == BM) {
                asm volatile("cp.async.ca.shared.global [%0], [%1], 4, 4;\n" ::"r"(dst), "l"(b_scale_row + kb)
                             : "memory");
            }
        }
    };
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < kt_total) load_stage(s);
        cp_async_commit();
    }
    const int g = lane >> 2;
    for (long long kt = 0; kt < kt_total; kt++) {
        cp_async_wait<STAGES - 2>();
        __syncthreads(); // stage kt (and its scales) visible to all; slot (kt-1) % STAGES free
        if (kt + STAGES - 1 < kt_total) load_stage(kt + STAGES - 1);
        cp_async_commit();
        const unsigned sa_s = s_base + (unsigned)(kt % STAGES) * STAGE_BYTES, sb_s = sa_s + A_BYTES;
#pragma unroll
        for (int ks = 0; ks < 2; ks++) { // two k32 steps of 32 bytes
            uint32_t af[WM][4], bf[4][2];
#pragma unroll
            for (int i = 0; i < WM; i++) load_a_frag(sa_s, wm * (BM / 2) + i * 16, ks, lane, af[i]);
            load_b_frag2(sb_s, wn * 32, ks, lane, bf[0], bf[1]);
            load_b_frag2(sb_s, wn * 32 + 16, ks, lane, bf[2], bf[3]);
#if DSK4J_MMA_FP8
#pragma unroll
            for (int i = 0; i < WM; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) mma_e4m3(part[i][j], af[i], bf[j]);
#else
            // k permutation (the same for a and b): bf16 mma #0 takes bytes 0,1 of the fp8
            // registers as its k slots 2t,2t+1 and bytes 2,3 as 8+2t,8+2t+1 from a0/a1 (b0);
            // mma #1 the same from a2/a3 (b1).
            uint32_t bl[4][4];
#pragma unroll
            for (int j = 0; j < 4; j++) {
                bl[j][0] = e4m3x2_to_bf16x2(bf[j][0]);
                bl[j][1] = e4m3x2_to_bf16x2(bf[j][0] >> 16);
                bl[j][2] = e4m3x2_to_bf16x2(bf[j][1]);
                bl[j][3] = e4m3x2_to_bf16x2(bf[j][1] >> 16);
            }
#pragma unroll
            for (int i = 0; i < WM; i++) {
                const uint32_t x0 = e4m3x2_to_bf16x2(af[i][0]), x1 = e4m3x2_to_bf16x2(af[i][1]);
                const uint32_t x2 = e4m3x2_to_bf16x2(af[i][0] >> 16), x3 = e4m3x2_to_bf16x2(af[i][1] >> 16);
                const uint32_t y0 = e4m3x2_to_bf16x2(af[i][2]), y1 = e4m3x2_to_bf16x2(af[i][3]);
                const uint32_t y2 = e4m3x2_to_bf16x2(af[i][2] >> 16), y3 = e4m3x2_to_bf16x2(af[i][3] >> 16);
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    mma_bf16(part[i][j], x0, x1, x2, x3, bl[j][0], bl[j][1]);
                    mma_bf16(part[i][j], y0, y1, y2, y3, bl[j][2], bl[j][3]);
                }
            }
#endif
        }
        if (kt & 1) {
            // Promotion: acc += part * a_scale[row, kb] * b_scale[col/128, kb]; fresh part.
            const float* sc = scale_ptr + ((kt >> 1) & 3) * (BM + 4);
            const float sb = sc[BM];
#pragma unroll
            for (int i = 0; i < WM; i++)
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const float s = sc[wm * (BM / 2) + i * 16 + g + h * 8] * sb;
#pragma unroll
                    for (int j = 0; j < 4; j++)
#pragma unroll
                        for (int e = 0; e < 2; e++) {
                            acc[i][j][h * 2 + e] = fmaf(part[i][j][h * 2 + e], s, acc[i][j][h * 2 + e]);
                            part[i][j][h * 2 + e] = 0.0f;
                        }
                }
        }
    }
    cp_async_wait<0>();
    __syncthreads(); // every warp is done with the buffers before the next tile's prologue
    store_tile<WM>(acc, d, d_dtype, c, row0 + wm * (BM / 2), row_end, col0 + wn * 32, n, lane);
}

// One BM x 128 tile of a bf16 problem (any k): rows [row0, row_end), columns [col0, ...).
template <int BM>
__device__ __forceinline__ void bf16_tile(uint8_t* smem, void* d, int d_dtype, const uint16_t* a,
                                          const uint16_t* b, const float* c, long long row0,
                                          long long row_end, long long col0, long long n, long long k,
                                          bool aligned) {
    constexpr int WM = BM / 32;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp >> 2, wn = warp & 3;
    const unsigned s_base = (unsigned)__cvta_generic_to_shared(smem);
    constexpr unsigned A_BYTES = BM * ROWB, STAGE_BYTES = (BM + BN) * ROWB;
    float acc[WM][4][4];
#pragma unroll
    for (int i = 0; i < WM; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) acc[i][j][r] = 0.0f;

    const long long kbytes = k * 2, kt_total = (kbytes + ROWB - 1) / ROWB;
    auto load_stage = [&](long long kt) {
        const int slot = (int)(kt % STAGES);
        const unsigned sa = s_base + slot * STAGE_BYTES;
        uint8_t* pa = smem + slot * STAGE_BYTES;
        load_slice<BM>(sa, pa, (const uint8_t*)a, row0, row_end, kbytes, kt * ROWB, kbytes, aligned, tid);
        load_slice<BN>(sa + A_BYTES, pa + A_BYTES, (const uint8_t*)b, col0, n, kbytes, kt * ROWB, kbytes,
                       aligned, tid);
    };
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < kt_total) load_stage(s);
        cp_async_commit();
    }
    for (long long kt = 0; kt < kt_total; kt++) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        if (kt + STAGES - 1 < kt_total) load_stage(kt + STAGES - 1);
        cp_async_commit();
        const unsigned sa_s = s_base + (unsigned)(kt % STAGES) * STAGE_BYTES, sb_s = sa_s + A_BYTES;
#pragma unroll
        for (int ks = 0; ks < 2; ks++) { // two k16 steps of 32 bytes
            uint32_t af[WM][4], bf[4][2];
#pragma unroll
            for (int i = 0; i < WM; i++) load_a_frag(sa_s, wm * (BM / 2) + i * 16, ks, lane, af[i]);
            load_b_frag2(sb_s, wn * 32, ks, lane, bf[0], bf[1]);
            load_b_frag2(sb_s, wn * 32 + 16, ks, lane, bf[2], bf[3]);
#pragma unroll
            for (int i = 0; i < WM; i++)
#pragma unroll
                for (int j = 0; j < 4; j++)
                    mma_bf16(acc[i][j], af[i][0], af[i][1], af[i][2], af[i][3], bf[j][0], bf[j][1]);
        }
    }
    cp_async_wait<0>();
    __syncthreads();
    store_tile<WM>(acc, d, d_dtype, c, row0 + wm * (BM / 2), row_end, col0 + wn * 32, n, lane);
}

// Plain tile t -> (M tile, N tile), grouped by GROUP_M M tiles for L2 reuse.
__device__ __forceinline__ void plain_tile(long long t, long long m_tiles, long long n_tiles, long long* tm,
                                           long long* tn) {
    const long long per_group = (long long)GROUP_M * n_tiles;
    const long long first_m = (t / per_group) * GROUP_M;
    const long long gsz = min(m_tiles - first_m, (long long)GROUP_M);
    const long long r = t % per_group;
    *tm = first_m + r % gsz;
    *tn = r / gsz;
}

// Group g's rows [*row0, *row0 + *rows) (clamped, see gemm_reference.cu).
__device__ __forceinline__ void group_rows(const int* offsets, const int* masked_m, long long g, long long m,
                                           long long m_max, long long* row0, long long* rows) {
    if (offsets != nullptr) {
        const long long s = min(max((long long)offsets[g], 0ll), m);
        const long long e = min(max((long long)offsets[g + 1], 0ll), m);
        *row0 = s;
        *rows = e > s ? e - s : 0;
    } else {
        *row0 = g * m_max;
        *rows = min(max((long long)masked_m[g], 0ll), m_max);
    }
}

} // namespace dsk4j_gemm

// Kernels. Launch: DSK4J_GEMM_THREADS threads, dynamic shared memory
// DSK4J_GEMM_STAGES * (BM + 128) * 64 bytes (bf16) or that + 4 * (BM + 4) * 4 (fp8), any 1-D grid.
#define DSK4J_GEMM_SMEM_DECL extern __shared__ __align__(128) uint8_t dsk4j_gemm_smem[];

// gemm.fp8_block (parameters as dsk4j_ref_gemm_fp8_block, plus `aligned`).
template <int BM>
__device__ __forceinline__ void dsk4j_gemm_fp8_block_impl(void* d, int d_dtype, const uint8_t* a,
                                                          const float* a_scale, long long rs, long long cs,
                                                          const uint8_t* b, const float* b_scale,
                                                          const float* c, long long m, long long n,
                                                          long long k, int aligned) {
    DSK4J_GEMM_SMEM_DECL
    const long long m_tiles = (m + BM - 1) / BM, n_tiles = (n + DSK4J_GEMM_BN - 1) / DSK4J_GEMM_BN;
    for (long long t = blockIdx.x; t < m_tiles * n_tiles; t += gridDim.x) {
        long long tm, tn;
        dsk4j_gemm::plain_tile(t, m_tiles, n_tiles, &tm, &tn);
        const long long row0 = tm * BM;
        dsk4j_gemm::fp8_tile<BM>(dsk4j_gemm_smem, d, d_dtype, a, a_scale, rs, cs, b,
                                 b_scale + tn * (k / 128), c, row0, min(row0 + BM, m),
                                 tn * DSK4J_GEMM_BN, n, k, aligned != 0);
    }
}

// gemm.fp8_grouped_{contiguous,masked} (parameters as dsk4j_ref_gemm_fp8_grouped, plus
// `aligned`). Tile order: groups, then M tiles of the group, then N tiles.
template <int BM>
__device__ __forceinline__ void dsk4j_gemm_fp8_grouped_impl(void* d, int d_dtype, const uint8_t* a,
                                                            const float* a_scale, const uint8_t* b,
                                                            const float* b_scale, const int* offsets,
                                                            const int* masked_m, long long groups,
                                                            long long m, long long m_max, long long n,
                                                            long long k, int aligned) {
    DSK4J_GEMM_SMEM_DECL
    const long long n_tiles = (n + DSK4J_GEMM_BN - 1) / DSK4J_GEMM_BN;
    if (n_tiles <= 0) return;
    long long cg = 0, cbase = 0; // cursor: group cg starts at M tile index cbase
    long long g_row0 = 0, g_rows = 0;
    if (groups > 0) dsk4j_gemm::group_rows(offsets, masked_m, 0, m, m_max, &g_row0, &g_rows);
    for (long long t = blockIdx.x;; t += gridDim.x) {
        const long long mt = t / n_tiles, tn = t % n_tiles;
        while (cg < groups && mt >= cbase + (g_rows + BM - 1) / BM) {
            cbase += (g_rows + BM - 1) / BM;
            if (++cg < groups) dsk4j_gemm::group_rows(offsets, masked_m, cg, m, m_max, &g_row0, &g_rows);
        }
        if (cg >= groups) break;
        const long long row0 = g_row0 + (mt - cbase) * BM;
        const long long row_end = min(row0 + BM, g_row0 + g_rows);
        const long long kb = k / 128;
        dsk4j_gemm::fp8_tile<BM>(dsk4j_gemm_smem, d, d_dtype, a, a_scale, kb, 1, b + cg * n * k,
                                 b_scale + (cg * n_tiles + tn) * kb, nullptr, row0, row_end,
                                 tn * DSK4J_GEMM_BN, n, k, aligned != 0);
    }
}

// gemm.bf16 (parameters as dsk4j_ref_gemm_bf16, plus `aligned`).
template <int BM>
__device__ __forceinline__ void dsk4j_gemm_bf16_impl(void* d, int d_dtype, const uint16_t* a,
                                                     const uint16_t* b, const float* c, long long m,
                                                     long long n, long long k, int aligned) {
    DSK4J_GEMM_SMEM_DECL
    const long long m_tiles = (m + BM - 1) / BM, n_tiles = (n + DSK4J_GEMM_BN - 1) / DSK4J_GEMM_BN;
    for (long long t = blockIdx.x; t < m_tiles * n_tiles; t += gridDim.x) {
        long long tm, tn;
        dsk4j_gemm::plain_tile(t, m_tiles, n_tiles, &tm, &tn);
        const long long row0 = tm * BM;
        dsk4j_gemm::bf16_tile<BM>(dsk4j_gemm_smem, d, d_dtype, a, b, c, row0, min(row0 + BM, m),
                                  tn * DSK4J_GEMM_BN, n, k, aligned != 0);
    }
}

#define DSK4J_GEMM_FP8_BLOCK_PARAMS                                                                    \
    void *d, int d_dtype, const uint8_t *a, const float *a_scale, long long a_scale_rs,                \
        long long a_scale_cs, const uint8_t *b, const float *b_scale, const float *c, long long m,     \
        long long n, long long k, int aligned
#define DSK4J_GEMM_FP8_GROUPED_PARAMS                                                                  \
    void *d, int d_dtype, const uint8_t *a, const float *a_scale, const uint8_t *b,                    \
        const float *b_scale, const int *offsets, const int *masked_m, long long groups, long long m,  \
        long long m_max, long long n, long long k, int aligned
#define DSK4J_GEMM_BF16_PARAMS                                                                         \
    void *d, int d_dtype, const uint16_t *a, const uint16_t *b, const float *c, long long m,           \
        long long n, long long k, int aligned

extern "C" __global__ void __launch_bounds__(DSK4J_GEMM_THREADS, 1)
    dsk4j_gemm_fp8_block_bm64(DSK4J_GEMM_FP8_BLOCK_PARAMS) {
    dsk4j_gemm_fp8_block_impl<64>(d, d_dtype, a, a_scale, a_scale_rs, a_scale_cs, b, b_scale, c, m, n, k,
                                  aligned);
}
extern "C" __global__ void __launch_bounds__(DSK4J_GEMM_THREADS, 1)
    dsk4j_gemm_fp8_grouped_bm64(DSK4J_GEMM_FP8_GROUPED_PARAMS) {
    dsk4j_gemm_fp8_grouped_impl<64>(d, d_dtype, a, a_scale, b, b_scale, offsets, masked_m, groups, m, m_max,
                                    n, k, aligned);
}
extern "C" __global__ void __launch_bounds__(DSK4J_GEMM_THREADS, 1)
    dsk4j_gemm_bf16_bm128(DSK4J_GEMM_BF16_PARAMS) {
    dsk4j_gemm_bf16_impl<128>(d, d_dtype, a, b, c, m, n, k, aligned);
}
extern "C" __global__ void __launch_bounds__(DSK4J_GEMM_THREADS, 1)
    dsk4j_gemm_bf16_bm64(DSK4J_GEMM_BF16_PARAMS) {
    dsk4j_gemm_bf16_impl<64>(d, d_dtype, a, b, c, m, n, k, aligned);
}
