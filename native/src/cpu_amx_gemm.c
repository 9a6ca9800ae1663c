/* cpu_amx_gemm.c - gemm.fp8_block and gemm.bf16 (the grouped forms: one problem per group) on
 * Intel AMX: AMX-TILE + AMX-BF16 tile products, AVX-512 F/BW/VBMI for decoding and promotion.
 * Compiled with -mamx-tile -mamx-bf16 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vbmi
 * -mavx512bf16; entered only when ctx->amx (cpu_has_amx(): CPUID incl. AVX512-BF16, and the
 * kernel granted the tile state). At the end: the decode path for M <= 2 (VDPBF16PS).
 *
 *   D[M,N] = A[M,K] * B[N,K]^T                   fp8: e4m3 codes; bf16: bf16 values
 *   fp8: D[i,j] = sum_kb (sum_{t in kb} a[i,t] b[j,t]) * a_scale[i,kb] * b_scale[j/128,kb]
 *
 * Exactness. e4m3 -> bf16 is exact (3 mantissa bits into 7), the tile product of two bf16 is
 * exact in f32, and the tile sums in f32 (any order: within the contract's bound). The tile
 * unit treats denormal inputs as zero and flushes denormal results (DAZ/FTZ), which cannot
 * happen for fp8: an unscaled e4m3 product is a multiple of 2^-18, so every partial sum is
 * zero or >= 2^-18. The scales are applied in AVX-512 f32 (IEEE, no flushing) once per
 * 128-wide K block: acc = fma(part * a_scale, b_scale, acc), the contract's order. For bf16
 * the path runs only on operands whose nonzero magnitudes lie in [2^-50, 2^50] (the caller
 * checks a with cpu_amx_bf16_in_range, b is checked as it is copied and the path gives up on
 * an outlier): then every product and partial sum is zero or a normal f32 multiple of 2^-114
 * and nothing overflows, so DAZ/FTZ change nothing.
 *
 * Layout: we compute the D^T tiles C[n][m] = sum_k B[n][k] * A[m][k], with B rows as the
 * tile instruction's first operand (row n: 32 consecutive k as bf16, natural order - B is
 * only decoded, never transposed) and A as its second, "VNNI" operand, packed once per
 * problem: apack[mt][kc][r][m] = the bf16 pair (A[16mt+m][32kc+2r], A[..][32kc+2r+1]).
 *
 * Tasks: (up to 8 m tiles = 128 rows) x (32 rows of B). Per task and 128-wide K block: the
 * 32 B rows are decoded into an 8 KiB L1 buffer (bbuf[32][128] bf16), then for every pair of
 * m tiles four 16x16 f32 tiles take 4 k32 steps (16 TDPBF16PS), are stored and promoted into
 * the task's f32 accumulator acc[32][MC] (n-major, L1/L2). At the end acc is transposed into
 * D (with the addend C, f32 or bf16 RNE). B is read from memory once per m block, so small M
 * (decode) streams the e4m3 weights once.
 *
 * e4m3 -> bf16, 64 at a time: two 128-entry byte tables (VPERMI2B on the low 7 bits) give the
 * low and high bytes of the bf16 of the magnitude, the sign is or-ed into the high byte, and
 * VPUNPCK{L,H}BW interleave them into words. The in-lane interleave leaves the 64 values in a
 * fixed order pi (not the natural one); that is harmless because A and B rows are decoded by
 * the same function, so position q of a decoded A row and of a decoded B row hold the same k,
 * and the sum over k does not depend on the order. NaN codes (0x7f, 0xff) give a bf16 NaN, so
 * NaN propagates through the tile sums.
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_gemm.h"
#include "internal.h"

#define NB 32       /* B rows (D columns) per task: two 16-row tiles */
#define MT_TASK 8   /* m tiles per task (128 rows of A; acc 16 KiB) */
#define KB 128      /* promotion block */
#define PF_AHEAD 3  /* K blocks of B prefetched ahead */

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* tiles 0-3: C (16 x 16 f32); 4, 5: B rows (16 x 32 bf16); 6, 7: packed A (16 x 16 pairs) */
static void tiles_on(void) {
    tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++) {
        c.colsb[t] = 64;
        c.rows[t] = 16;
    }
    _tile_loadconfig(&c);
}

/* ---------------- e4m3 -> bf16 ---------------- */

typedef struct {
    __m512i lo0, lo1, hi0, hi1;
} e4m3_dec;

static void dec_init(e4m3_dec* d) {
    uint8_t lo[128], hi[128];
    for (int v = 0; v < 128; v++) {
        float f = cpu_e4m3_to_f32((uint8_t)v); /* exact; 0x7f: NaN */
        uint32_t bits;
        memcpy(&bits, &f, 4);
        uint16_t h = (uint16_t)(bits >> 16); /* exact: at most 3 mantissa bits */
        if (v == 0x7f) h = 0x7fc0;
        lo[v] = (uint8_t)h;
        hi[v] = (uint8_t)(h >> 8);
    }
    d->lo0 = _mm512_loadu_si512(lo);
    d->lo1 = _mm512_loadu_si512(lo + 64);
    d->hi0 = _mm512_loadu_si512(hi);
    d->hi1 = _mm512_loadu_si512(hi + 64);
}

/* w0, w1 = the bf16 of x[pi(q)] e4m3, q < 32 resp. 32..63, exactly (NaN -> NaN); pi:
 * q 0..8 <- x[0..8), 8..16 <- x[16..24), ..., 32..40 <- x[8..16), ... (the in-lane order of VPUNPCK*BW) */
static inline __attribute__((always_inline)) void dec64_words(const e4m3_dec* d, const uint8_t* x, __m512i* w0,
                                                              __m512i* w1) {
    __m512i v = _mm512_loadu_si512((const void*)x);
    __m512i lo = _mm512_permutex2var_epi8(d->lo0, v, d->lo1);
    __m512i hi = _mm512_permutex2var_epi8(d->hi0, v, d->hi1);
    hi = _mm512_ternarylogic_epi32(hi, v, _mm512_set1_epi8((char)0x80), 0xf8); /* hi | (v & 0x80) */
    *w0 = _mm512_unpacklo_epi8(lo, hi);
    *w1 = _mm512_unpackhi_epi8(lo, hi);
}

/* y[0..64) = the bf16 words of dec64_words */
static inline __attribute__((always_inline)) void dec64(const e4m3_dec* d, uint16_t* y, const uint8_t* x) {
    __m512i w0, w1;
    dec64_words(d, x, &w0, &w1);
    _mm512_storeu_si512((void*)y, w0);
    _mm512_storeu_si512((void*)(y + 32), w1);
}

/* ---------------- the job ---------------- */

typedef struct {
    const gemm_prob* p;
    e4m3_dec dec;
    int64_t nkb;     /* K blocks of 128 (K padded with zeros for bf16) */
    int64_t mtiles;  /* ceil(M / 16) */
    int64_t mblocks; /* ceil(mtiles / MT_TASK) */
    uint32_t* apack; /* [mtiles][nkb * 4][16][16] bf16 pairs */
    float* ascale;   /* [mtiles][nkb][16] (fp8; 0 for padding rows) */
    int failed;       /* a task could not allocate its buffers */
    int out_of_range; /* bf16: a value of B is outside [2^-50, 2^50] (atomic) */
} amx_job;

/* row i of A as nkb*128 bf16 (zero past K) */
static void a_row_bf16(const amx_job* J, uint16_t* row, int64_t i) {
    const gemm_prob* p = J->p;
    int64_t kp = J->nkb * KB;
    if (p->bf16) {
        memcpy(row, (const uint16_t*)p->a + i * p->k, (size_t)p->k * 2);
        memset(row + p->k, 0, (size_t)(kp - p->k) * 2);
    } else {
        const uint8_t* x = (const uint8_t*)p->a + i * p->k;
        for (int64_t t = 0; t < p->k; t += 64) dec64(&J->dec, row + t, x + t);
    }
}

static void pack_a_task(void* vp, int64_t begin, int64_t end) {
    amx_job* J = (amx_job*)vp;
    const gemm_prob* p = J->p;
    int64_t nkc = J->nkb * 4;
    uint16_t* row = (uint16_t*)cpu_gemm_alloc64((size_t)(J->nkb * KB) * 2);
    if (!row) {
        J->failed = 1;
        return;
    }
    for (int64_t mt = begin; mt < end; mt++) {
        uint32_t* pan = J->apack + mt * nkc * 256;
        for (int m = 0; m < 16; m++) {
            int64_t i = mt * 16 + m;
            if (i < p->m) a_row_bf16(J, row, i);
            else memset(row, 0, (size_t)(J->nkb * KB) * 2);
            const uint32_t* pr = (const uint32_t*)row; /* pr[16 kc + r] = pair (32kc + 2r, +1) */
            for (int64_t kc = 0; kc < nkc; kc++)
                for (int r = 0; r < 16; r++) pan[(kc * 16 + r) * 16 + m] = pr[kc * 16 + r];
            if (!p->bf16)
                for (int64_t kb = 0; kb < J->nkb; kb++)
                    J->ascale[(mt * J->nkb + kb) * 16 + m] = i < p->m ? p->a_scale[i * p->a_rs + kb * p->a_cs] : 0.0f;
        }
    }
    cpu_host_free(row);
}

/* lanes holding a nonzero bf16 of magnitude outside [2^-50, 2^50] (or Inf/NaN) */
static inline __mmask32 bf16_out_of_range(__m512i v) {
    const __m512i mag = _mm512_and_si512(v, _mm512_set1_epi16(0x7fff));
    const __m512i lo = _mm512_set1_epi16((short)((127 - 50) << 7));          /* 2^-50 */
    const __m512i hi = _mm512_set1_epi16((short)(((127 + 50) << 7) | 0x7f)); /* < 2^51 */
    return _mm512_test_epi16_mask(mag, mag) & (_mm512_cmplt_epu16_mask(mag, lo) | _mm512_cmpgt_epu16_mask(mag, hi));
}

/* bbuf[r][0..128) = B row j0 + r, K block kb, as bf16 (zero past n and past K) */
static void load_b_block(const amx_job* J, uint16_t* bbuf, int64_t j0, int64_t kb) {
    const gemm_prob* p = J->p;
    int64_t k0 = kb * KB;
    for (int r = 0; r < NB; r++) {
        uint16_t* y = bbuf + r * KB;
        int64_t j = j0 + r;
        if (j >= p->n) {
            memset(y, 0, KB * 2);
        } else if (p->bf16) {
            /* copy (zero past K) and check the range on the way (see cpu_amx_bf16_in_range) */
            const int64_t kc = p->k - k0 < KB ? p->k - k0 : KB;
            const uint16_t* x = (const uint16_t*)p->b + j * p->k + k0;
            __mmask32 bad = 0;
            for (int64_t t = 0; t < KB; t += 32) {
                __mmask32 in = t + 32 <= kc ? 0xffffffffu : t < kc ? (1u << (kc - t)) - 1 : 0;
                __m512i v = _mm512_maskz_loadu_epi16(in, (const void*)(x + t));
                bad |= bf16_out_of_range(v);
                _mm512_storeu_si512((void*)(y + t), v);
            }
            if (bad) __atomic_store_n(&((amx_job*)J)->out_of_range, 1, __ATOMIC_RELAXED);
        } else {
            const uint8_t* x = (const uint8_t*)p->b + j * p->k + k0;
            dec64(&J->dec, y, x);
            dec64(&J->dec, y + 64, x + 64);
        }
    }
    int64_t kf = kb + PF_AHEAD;
    if (kf < J->nkb) {
        size_t es = p->bf16 ? 2 : 1;
        for (int r = 0; r < NB && j0 + r < p->n; r++) {
            const char* x = (const char*)p->b + ((size_t)(j0 + r) * p->k + kf * KB) * es;
            for (size_t o = 0; o < KB * es; o += 64) _mm_prefetch(x + o, _MM_HINT_T0);
        }
    }
}

/* acc[n][m0 + 0..16) (+)= tile[n][0..16) (* as[0..16) * bs[n / 16]) for n < 16 of tile half nh */
static inline void promote(float* acc, int64_t ldacc, const float* tile, const float* as, float bs, int fp8) {
    __m512 vb = _mm512_set1_ps(bs), va = fp8 ? _mm512_loadu_ps(as) : _mm512_set1_ps(1.0f);
    for (int r = 0; r < 16; r++) {
        __m512 v = _mm512_loadu_ps(tile + r * 16);
        float* o = acc + r * ldacc;
        if (fp8) _mm512_storeu_ps(o, _mm512_fmadd_ps(_mm512_mul_ps(v, va), vb, _mm512_loadu_ps(o)));
        else _mm512_storeu_ps(o, _mm512_add_ps(v, _mm512_loadu_ps(o)));
    }
}

static void gemm_task(void* vp, int64_t begin, int64_t end) {
    amx_job* J = (amx_job*)vp;
    const gemm_prob* p = J->p;
    const int fp8 = !p->bf16;
    const int64_t nkc = J->nkb * 4;
    uint16_t* bbuf = (uint16_t*)cpu_gemm_alloc64((size_t)NB * KB * 2);
    float* cbuf = (float*)cpu_gemm_alloc64(4 * 256 * sizeof(float));
    float* acc = (float*)cpu_gemm_alloc64((size_t)NB * MT_TASK * 16 * sizeof(float));
    if (!bbuf || !cbuf || !acc) {
        cpu_host_free(bbuf), cpu_host_free(cbuf), cpu_host_free(acc);
        J->failed = 1; /* the caller redoes the whole problem on the AVX-512 path */
        return;
    }
    tiles_on();
    for (int64_t t = begin; t < end && !__atomic_load_n(&J->out_of_range, __ATOMIC_RELAXED); t++) {
        int64_t mb = t % J->mblocks, nb = t / J->mblocks;
        int64_t mt0 = mb * MT_TASK, mt1 = mt0 + MT_TASK < J->mtiles ? mt0 + MT_TASK : J->mtiles;
        int64_t ld = (mt1 - mt0) * 16; /* acc[n][ld] */
        int64_t j0 = nb * NB;
        memset(acc, 0, (size_t)(NB * ld) * sizeof(float));
        for (int64_t kb = 0; kb < J->nkb; kb++) {
            load_b_block(J, bbuf, j0, kb);
            float bs[2] = {1.0f, 1.0f};
            if (fp8)
                for (int h = 0; h < 2; h++)
                    if (j0 + 16 * h < p->n) bs[h] = p->b_scale[((j0 + 16 * h) >> 7) * J->nkb + kb];
            for (int64_t mt = mt0; mt < mt1; mt += 2) {
                int two = mt + 1 < mt1;
                const uint32_t* a0 = J->apack + (mt * nkc + kb * 4) * 256;
                const uint32_t* a1 = two ? a0 + nkc * 256 : a0;
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
                for (int kc = 0; kc < 4; kc++) {
                    _tile_loadd(4, bbuf + kc * 32, KB * 2);
                    _tile_loadd(5, bbuf + 16 * KB + kc * 32, KB * 2);
                    _tile_loadd(6, a0 + kc * 256, 64);
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_dpbf16ps(1, 5, 6);
                    if (two) {
                        _tile_loadd(7, a1 + kc * 256, 64);
                        _tile_dpbf16ps(2, 4, 7);
                        _tile_dpbf16ps(3, 5, 7);
                    }
                }
                _tile_stored(0, cbuf, 64);
                _tile_stored(1, cbuf + 256, 64);
                const float* as0 = J->ascale + (mt * J->nkb + kb) * 16;
                float* o = acc + (mt - mt0) * 16;
                promote(o, ld, cbuf, as0, bs[0], fp8);
                promote(o + 16 * ld, ld, cbuf + 256, as0, bs[1], fp8);
                if (two) {
                    _tile_stored(2, cbuf + 512, 64);
                    _tile_stored(3, cbuf + 768, 64);
                    const float* as1 = as0 + J->nkb * 16;
                    promote(o + 16, ld, cbuf + 512, as1, bs[0], fp8);
                    promote(o + 16 * ld + 16, ld, cbuf + 768, as1, bs[1], fp8);
                }
            }
        }
        int64_t ie = mt1 * 16 < p->m ? mt1 * 16 : p->m, je = j0 + NB < p->n ? j0 + NB : p->n;
        for (int64_t i = mt0 * 16; i < ie; i++)
            for (int64_t j = j0; j < je; j++) cpu_gemm_store_d(p, i, j, acc[(j - j0) * ld + (i - mt0 * 16)]);
    }
    _tile_release();
    cpu_host_free(bbuf), cpu_host_free(cbuf), cpu_host_free(acc);
}

int cpu_amx_gemm(const gemm_prob* p) {
    amx_job J;
    memset(&J, 0, sizeof J);
    J.p = p;
    dec_init(&J.dec);
    J.nkb = (p->k + KB - 1) / KB;
    J.mtiles = (p->m + 15) / 16;
    J.mblocks = (J.mtiles + MT_TASK - 1) / MT_TASK;
    J.apack = (uint32_t*)cpu_gemm_alloc64((size_t)(J.mtiles * J.nkb * 4 * 256) * 4);
    J.ascale = (float*)cpu_gemm_alloc64((size_t)(J.mtiles * J.nkb * 16) * sizeof(float));
    int ok = 0;
    if (J.apack && J.ascale) {
        cpu_parallel_for(p->ctx, J.mtiles, 1, pack_a_task, &J);
        if (!J.failed) {
            int64_t nblocks = (p->n + NB - 1) / NB;
            cpu_parallel_for(p->ctx, nblocks * J.mblocks, 1, gemm_task, &J);
            ok = !J.failed && !J.out_of_range;
        }
    }
    cpu_host_free(J.apack);
    cpu_host_free(J.ascale);
    return ok;
}

/* ---------------- decode path: fp8, M <= 2, AVX512-BF16 dot products ----------------
 * Memory-bound on the e4m3 weights: each B row is read once, decoded in registers (dec64) and
 * dotted with the few A rows (decoded once, same order pi) by VDPBF16PS, exact products summed
 * in f32 per 128-wide K block (part), then acc += (part * a_scale) * b_scale. NaN codes decode
 * to NaN and propagate; no subnormal can arise (products are multiples of 2^-18). */

/* M = 3, 4 stay on the tiles: in JMH (cold weights) the tiles beat the AVX-512 f32 dot path at
 * M = 4, and this path measured no faster than that one there (one-thread C harness). */
#define DOT_MAX_M 2

typedef struct {
    const gemm_prob* p;
    e4m3_dec dec;
    uint16_t* a;   /* [m][k] bf16, order pi per 64 */
    float* out;    /* [m][n] f32 before the epilogue */
} dot_job;

#define DOTK(MI, NJ)                                                                                      \
static void dot_##MI##_##NJ(const dot_job* D, int64_t j) {                                                \
    const gemm_prob* p = D->p;                                                                            \
    const int64_t k = p->k, nkb = k / KB;                                                                 \
    __m512 acc[MI][NJ];                                                                                   \
    _Pragma("GCC unroll 8") for (int i = 0; i < MI; i++)                                                 \
        _Pragma("GCC unroll 8") for (int jj = 0; jj < NJ; jj++) acc[i][jj] = _mm512_setzero_ps();        \
    const uint8_t* b = (const uint8_t*)p->b + j * k;                                                      \
    const float* bs = p->b_scale + (j >> 7) * nkb; /* NJ rows never cross a 128-row block */             \
    for (int64_t kb = 0; kb < nkb; kb++) {                                                                \
        __m512 part[MI][NJ];                                                                              \
        _Pragma("GCC unroll 8") for (int i = 0; i < MI; i++)                                             \
            _Pragma("GCC unroll 8") for (int jj = 0; jj < NJ; jj++) part[i][jj] = _mm512_setzero_ps();   \
        _Pragma("GCC unroll 8") for (int jj = 0; jj < NJ; jj++) {                                        \
            const uint8_t* x = b + jj * k + kb * KB;                                                      \
            _mm_prefetch((const char*)x + 4 * KB, _MM_HINT_T0);                                           \
            _mm_prefetch((const char*)x + 4 * KB + 64, _MM_HINT_T0);                                      \
            _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {                                        \
                __m512i u0, u1;                                                                           \
                dec64_words(&D->dec, x + 64 * h, &u0, &u1);                                               \
                const __m512bh w0 = (__m512bh)u0, w1 = (__m512bh)u1;                                      \
                _Pragma("GCC unroll 8") for (int i = 0; i < MI; i++) {                                   \
                    const uint16_t* a = D->a + i * k + kb * KB + 64 * h;                                  \
                    part[i][jj] = _mm512_dpbf16_ps(part[i][jj], (__m512bh)_mm512_loadu_si512((const void*)a), w0); \
                    part[i][jj] = _mm512_dpbf16_ps(part[i][jj], (__m512bh)_mm512_loadu_si512((const void*)(a + 32)), w1); \
                }                                                                                         \
            }                                                                                             \
        }                                                                                                 \
        const __m512 vb = _mm512_set1_ps(bs[kb]);                                                         \
        _Pragma("GCC unroll 8") for (int i = 0; i < MI; i++) {                                           \
            const __m512 va = _mm512_set1_ps(p->a_scale[i * p->a_rs + kb * p->a_cs]);                     \
            _Pragma("GCC unroll 8") for (int jj = 0; jj < NJ; jj++)                                       \
                acc[i][jj] = _mm512_fmadd_ps(_mm512_mul_ps(part[i][jj], va), vb, acc[i][jj]);             \
        }                                                                                                 \
    }                                                                                                     \
    _Pragma("GCC unroll 8") for (int i = 0; i < MI; i++)                                                 \
        _Pragma("GCC unroll 8") for (int jj = 0; jj < NJ; jj++)                                          \
            D->out[i * p->n + j + jj] = _mm512_reduce_add_ps(acc[i][jj]);                                 \
}

DOTK(1, 8)
DOTK(1, 1)
DOTK(2, 4)
DOTK(2, 1)

/* rows j .. j + nj of B, nj = 8 (mi = 1) or 4 (mi = 2) when wide, else 1 */
static void dot_rows(const dot_job* D, int mi, int64_t j, int wide) {
    if (mi == 1) wide ? dot_1_8(D, j) : dot_1_1(D, j);
    else wide ? dot_2_4(D, j) : dot_2_1(D, j);
}

static void dot_task(void* vp, int64_t begin, int64_t end) {
    const dot_job* D = (const dot_job*)vp;
    const gemm_prob* p = D->p;
    const int mi = (int)p->m, nj = mi == 1 ? 8 : 4;
    const int64_t j0 = begin * 16, j1 = end * 16 < p->n ? end * 16 : p->n;
    int64_t j = j0;
    for (; j + nj <= j1; j += nj) dot_rows(D, mi, j, 1); /* 16-row units: nj rows stay in one 128-block */
    for (; j < j1; j++) dot_rows(D, mi, j, 0);
    for (int64_t i = 0; i < p->m; i++)
        for (int64_t jj = j0; jj < j1; jj++) cpu_gemm_store_d(p, i, jj, D->out[i * p->n + jj]);
}

int cpu_amx_gemm_dot(const gemm_prob* p) {
    if (p->bf16 || p->m < 1 || p->m > DOT_MAX_M) return 0;
    dot_job D;
    D.p = p;
    dec_init(&D.dec);
    D.a = (uint16_t*)cpu_gemm_alloc64((size_t)(p->m * p->k) * 2);
    D.out = (float*)cpu_gemm_alloc64((size_t)(p->m * p->n) * sizeof(float));
    if (!D.a || !D.out) {
        cpu_host_free(D.a);
        cpu_host_free(D.out);
        return 0;
    }
    for (int64_t i = 0; i < p->m; i++)
        for (int64_t t = 0; t < p->k; t += 64)
            dec64(&D.dec, D.a + i * p->k + t, (const uint8_t*)p->a + i * p->k + t);
    cpu_parallel_for(p->ctx, (p->n + 15) / 16, 1, dot_task, &D);
    cpu_host_free(D.a);
    cpu_host_free(D.out);
    return 1;
}

/* nonzero iff every nonzero element of x[0..n) has magnitude in [2^-50, 2^50] (not Inf/NaN) */
int cpu_amx_bf16_in_range(const uint16_t* x, int64_t n) {
    for (int64_t t = 0; t < n; t += 32) {
        __mmask32 in = t + 32 <= n ? 0xffffffffu : (1u << (n - t)) - 1;
        if (bf16_out_of_range(_mm512_maskz_loadu_epi16(in, (const void*)(x + t)))) return 0;
    }
    return 1;
}
