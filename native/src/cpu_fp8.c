/* cpu_fp8.c - the fp8 ops of the cpu backend (DESIGN.md 3 and 4.1): fp8.cast,
 * fp8.act_quant, fp8.weight_quant, fp8.weight_dequant.
 *
 * Each op splits its work with cpu_parallel_for and runs, per chunk, the portable inner
 * loops below (plain C over the scalar conversions of cpu_convert.c), the AVX2 ones of
 * cpu_avx2_fp8.c or the AVX-512 ones of cpu_avx512_fp8.c, by ctx->simd (SIMD_AVX512 runs
 * the AVX2 loop where there is no AVX-512 one). All paths give the same bits. Arguments
 * were validated by the API layer (shapes, dtypes, buffer sizes).
 */
#include "cpu_avx2.h"
#include "cpu_avx512.h"
#include "internal.h"

/* Items per chunk, at least: enough that a chunk costs far more than a thread handoff. */
#define CAST_GRAIN ((int64_t)1 << 16)  /* elements */
#define QUANT_GRAIN_ELEMS ((int64_t)1 << 15)
/* weight_dequant writes its output with non-temporal stores when it is at least this big
 * (an output that large will not be read back from the cache anyway). */
#define DEQUANT_STREAM_BYTES ((int64_t)32 << 20)

static inline size_t elem_size(int32_t dt) {
    return dt == DSK4J_DTYPE_F32 ? 4 : (dt == DSK4J_DTYPE_BF16 || dt == DSK4J_DTYPE_F16) ? 2 : 1;
}

/* ---------------- portable inner loops ---------------- */

static inline float port_load(const void* x, int32_t dt, int64_t i) {
    if (dt == DSK4J_DTYPE_F32) return ((const float*)x)[i];
    if (dt == DSK4J_DTYPE_BF16) return cpu_bf16_to_f32(((const uint16_t*)x)[i]);
    return cpu_f16_to_f32(((const uint16_t*)x)[i]);
}

// x[n] f32|bf16|f16 -> y[n] e4m3|e5m2
static void port_encode(uint8_t* y, int32_t ydt, const void* x, int32_t xdt, int64_t n) {
    if (ydt == DSK4J_DTYPE_E5M2) {
        for (int64_t i = 0; i < n; i++) y[i] = cpu_f32_to_e5m2(port_load(x, xdt, i));
    } else {
        for (int64_t i = 0; i < n; i++) y[i] = cpu_f32_to_e4m3(port_load(x, xdt, i));
    }
}

// x[n] e4m3|e5m2 -> y[n] f32|bf16|f16 (through a 256-entry table)
static void port_decode(void* y, int32_t ydt, const uint8_t* x, int32_t xdt, int64_t n) {
    float f[256];
    for (int v = 0; v < 256; v++)
        f[v] = xdt == DSK4J_DTYPE_E5M2 ? cpu_e5m2_to_f32((uint8_t)v) : cpu_e4m3_to_f32((uint8_t)v);
    if (ydt == DSK4J_DTYPE_F32) {
        float* yf = (float*)y;
        for (int64_t i = 0; i < n; i++) yf[i] = f[x[i]];
        return;
    }
    uint16_t h[256];
    for (int v = 0; v < 256; v++)
        h[v] = ydt == DSK4J_DTYPE_BF16 ? cpu_f32_to_bf16(f[v]) : cpu_f32_to_f16(f[v]);
    uint16_t* yh = (uint16_t*)y;
    for (int64_t i = 0; i < n; i++) yh[i] = h[x[i]];
}

// max_i |x[i]|, x[n] f32|bf16, NaN ignored (fmaxf from 0)
static float port_amax(const void* x, int32_t dt, int64_t n) {
    float amax = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float a = __builtin_fabsf(port_load(x, dt, i));
        if (a > amax) amax = a; /* false for NaN */
    }
    return amax;
}

// x[n] f32|bf16 -> y[n] e4m3 = e4m3(x / s) (true division)
static void port_quant(uint8_t* y, const void* x, int32_t dt, int64_t n, float s) {
    for (int64_t i = 0; i < n; i++) y[i] = cpu_f32_to_e4m3(port_load(x, dt, i) / s);
}

static inline int is_pow2_or_inf(float s) {
    uint32_t b;
    memcpy(&b, &s, sizeof b);
    return (b & 0x007fffffu) == 0 && (b & 0x7f800000u) != 0;
}

/* ---------------- fp8.cast ---------------- */

typedef struct {
    int simd;
    void* y;
    int32_t ydt;
    const void* x;
    int32_t xdt;
} cast_args;

static void cast_task(void* vp, int64_t begin, int64_t end) {
    const cast_args* a = (const cast_args*)vp;
    int64_t n = end - begin;
    size_t xs = elem_size(a->xdt), ys = elem_size(a->ydt);
    const void* x = (const char*)a->x + (size_t)begin * xs;
    void* y = (char*)a->y + (size_t)begin * ys;
    int encode = a->ydt == DSK4J_DTYPE_E4M3 || a->ydt == DSK4J_DTYPE_E5M2;
    if (a->simd == SIMD_AVX512) {
        if (encode) cpu_avx512_fp8_encode((uint8_t*)y, a->ydt, x, a->xdt, n);
        else cpu_avx512_fp8_decode(y, a->ydt, (const uint8_t*)x, a->xdt, n);
    } else if (a->simd == SIMD_AVX2) {
        if (encode) cpu_avx2_fp8_encode((uint8_t*)y, a->ydt, x, a->xdt, n);
        else cpu_avx2_fp8_decode(y, a->ydt, (const uint8_t*)x, a->xdt, n);
    } else {
        if (encode) port_encode((uint8_t*)y, a->ydt, x, a->xdt, n);
        else port_decode(y, a->ydt, (const uint8_t*)x, a->xdt, n);
    }
}

// fp8.cast: x[n] {f32,bf16,f16} -> y[n] {e4m3,e5m2} (RNE, saturate, NaN -> 0x7f)
//           x[n] {e4m3,e5m2} -> y[n] {f32,bf16,f16} (exact)
void cpu_fp8_cast(dsk4j_context* ctx, void* y, int32_t y_dtype, const void* x, int32_t x_dtype,
                  int64_t n) {
    cast_args a = {ctx->simd, y, y_dtype, x, x_dtype};
    cpu_parallel_for(ctx, n, CAST_GRAIN, cast_task, &a);
}

/* ---------------- fp8.act_quant ---------------- */

typedef struct {
    int simd;
    uint8_t* y;
    float* scale;
    int64_t scale_rs, scale_cs;
    const void* x;
    int32_t xdt;
    int64_t k;
    int64_t groups; /* groups per row = k / group */
    int32_t group;
    int ue8m0;
    int stream;
} aq_args;

/* items are groups, numbered row-major: item = r * groups + g */
static void aq_task(void* vp, int64_t begin, int64_t end) {
    const aq_args* a = (const aq_args*)vp;
    size_t xs = elem_size(a->xdt);
    int64_t r = begin / a->groups, g = begin % a->groups;
    if (a->simd == SIMD_AVX512 && a->group == 128 && !a->stream) {
        /* groups are contiguous (item it starts at element it * 128): runs of up to 64 groups
         * in one call, their scales scattered from sb (no non-temporal variant) */
        float sb[64];
        for (int64_t it = begin; it < end;) {
            int64_t m = end - it < 64 ? end - it : 64;
            cpu_avx512_act_quant_128(a->y + it * 128, sb, (const char*)a->x + (size_t)(it * 128) * xs,
                                     a->xdt, m, a->ue8m0);
            for (int64_t j = 0; j < m; j++) {
                a->scale[r * a->scale_rs + g * a->scale_cs] = sb[j];
                if (++g == a->groups) {
                    g = 0;
                    r++;
                }
            }
            it += m;
        }
        return;
    }
    for (int64_t it = begin; it < end; it++) {
        int64_t off = r * a->k + g * a->group;
        const void* x = (const char*)a->x + (size_t)off * xs;
        uint8_t* y = a->y + off;
        float s;
        if (a->simd == SIMD_AVX512) {
            s = cpu_fp8_scale_from_amax(cpu_avx512_amax(x, a->xdt, a->group), a->ue8m0);
            if (a->stream) cpu_avx2_quant_e4m3(y, x, a->xdt, a->group, s, a->ue8m0, 1);
            else cpu_avx512_quant_e4m3(y, x, a->xdt, a->group, s, a->ue8m0);
        } else if (a->simd == SIMD_AVX2) {
            s = cpu_fp8_scale_from_amax(cpu_avx2_amax(x, a->xdt, a->group), a->ue8m0);
            cpu_avx2_quant_e4m3(y, x, a->xdt, a->group, s, a->ue8m0, a->stream);
        } else {
            s = cpu_fp8_scale_from_amax(port_amax(x, a->xdt, a->group), a->ue8m0);
            port_quant(y, x, a->xdt, a->group, s);
        }
        a->scale[r * a->scale_rs + g * a->scale_cs] = s;
        if (++g == a->groups) {
            g = 0;
            r++;
        }
    }
    if (a->stream) cpu_avx2_sfence();
}

// fp8.act_quant: x[rows,k] f32|bf16 -> y[rows,k] e4m3, scale[rows,k/group] f32 at
// scale[r*scale_rs + g*scale_cs]; per group of `group` contiguous elements of a row:
//   amax = max(max|x| (NaN ignored), 1e-4), s = amax/448 (ue8m0: next power of two >= s),
//   y = e4m3(x / s)
void cpu_fp8_act_quant(dsk4j_context* ctx, uint8_t* y, float* scale, int64_t scale_rs,
                       int64_t scale_cs, const void* x, int32_t x_dtype, int64_t rows, int64_t k,
                       int32_t group, int32_t flags) {
    if (rows <= 0 || k <= 0 || group <= 0) return;
    aq_args a = {ctx->simd, y, scale, scale_rs, scale_cs, x, x_dtype, k, k / group, group,
                 (flags & DSK4J_SCALE_UE8M0) != 0, 0};
    /* non-temporal stores of y measured no faster here ([4096,7168] f32 on 2 cores) */
    a.stream = 0;
    if (a.groups == 0) return;
    int64_t grain = QUANT_GRAIN_ELEMS / group;
    cpu_parallel_for(ctx, rows * a.groups, grain < 1 ? 1 : grain, aq_task, &a);
}

/* ---------------- fp8.weight_quant ---------------- */

typedef struct {
    int simd;
    uint8_t* y;
    float* scale_inv;
    const void* w;
    int32_t wdt;
    int64_t n, k;
    int64_t bc; /* blocks per row of blocks = ceil(k / block) */
    int32_t block;
    int ue8m0;
} wq_args;

/* items are blocks, row-major: item = bi * bc + bj */
static void wq_task(void* vp, int64_t begin, int64_t end) {
    const wq_args* a = (const wq_args*)vp;
    size_t ws = elem_size(a->wdt);
    int simd = a->simd;
    for (int64_t it = begin; it < end; it++) {
        int64_t bi = it / a->bc, bj = it % a->bc;
        int64_t i0 = bi * a->block, j0 = bj * a->block;
        int64_t i1 = i0 + a->block < a->n ? i0 + a->block : a->n;
        int64_t cols = j0 + a->block < a->k ? a->block : a->k - j0;
        float amax = 0.0f;
        for (int64_t i = i0; i < i1; i++) {
            const void* w = (const char*)a->w + (size_t)(i * a->k + j0) * ws;
            float m = simd == SIMD_AVX512 ? cpu_avx512_amax(w, a->wdt, cols)
                      : simd == SIMD_AVX2 ? cpu_avx2_amax(w, a->wdt, cols)
                                          : port_amax(w, a->wdt, cols);
            if (m > amax) amax = m;
        }
        float s = cpu_fp8_scale_from_amax(amax, a->ue8m0);
        int pow2 = is_pow2_or_inf(s);
        for (int64_t i = i0; i < i1; i++) {
            const void* w = (const char*)a->w + (size_t)(i * a->k + j0) * ws;
            uint8_t* y = a->y + i * a->k + j0;
            if (simd == SIMD_AVX512) cpu_avx512_quant_e4m3(y, w, a->wdt, cols, s, pow2);
            else if (simd == SIMD_AVX2) cpu_avx2_quant_e4m3(y, w, a->wdt, cols, s, pow2, 0);
            else port_quant(y, w, a->wdt, cols, s);
        }
        a->scale_inv[it] = s;
    }
}

// fp8.weight_quant: w[n,k] f32|bf16 -> y[n,k] e4m3, scale_inv[ceil(n/b),ceil(k/b)] f32;
// per block (partial at the edges): amax = max(max|w| (NaN ignored), 1e-4),
//   scale_inv = amax/448 (ue8m0: next power of two >= it), y = e4m3(w / scale_inv)
void cpu_fp8_weight_quant(dsk4j_context* ctx, uint8_t* y, float* scale_inv, const void* w,
                          int32_t w_dtype, int64_t n, int64_t k, int32_t block, int32_t flags) {
    if (n <= 0 || k <= 0 || block <= 0) return;
    wq_args a = {ctx->simd, y, scale_inv, w, w_dtype, n, k, (k + block - 1) / block, block,
                 (flags & DSK4J_SCALE_UE8M0) != 0};
    int64_t br = (n + block - 1) / block;
    int64_t grain = QUANT_GRAIN_ELEMS / ((int64_t)block * block);
    cpu_parallel_for(ctx, br * a.bc, grain < 1 ? 1 : grain, wq_task, &a);
}

/* ---------------- fp8.weight_dequant ---------------- */

typedef struct {
    int simd;
    int stream;
    void* y;
    int32_t ydt;
    const uint8_t* w;
    const float* scale_inv;
    int64_t k;
    int64_t bc;
    int32_t block;
} wd_args;

/* items are rows */
static void wd_task(void* vp, int64_t begin, int64_t end) {
    const wd_args* a = (const wd_args*)vp;
    size_t ys = elem_size(a->ydt);
    if (a->simd != SIMD_PORTABLE) {
        for (int64_t i = begin; i < end; i++) {
            const float* srow = a->scale_inv + (i / a->block) * a->bc;
            for (int64_t bj = 0; bj < a->bc; bj++) {
                int64_t j0 = bj * a->block;
                int64_t cols = j0 + a->block < a->k ? a->block : a->k - j0;
                void* y = (char*)a->y + (size_t)(i * a->k + j0) * ys;
                if (a->simd == SIMD_AVX512)
                    cpu_avx512_dequant_e4m3(y, a->ydt, a->w + i * a->k + j0, cols, srow[bj], a->stream);
                else
                    cpu_avx2_dequant_e4m3(y, a->ydt, a->w + i * a->k + j0, cols, srow[bj], a->stream);
            }
        }
        if (a->stream) cpu_avx2_sfence();
        return;
    }
    float f[256];
    for (int v = 0; v < 256; v++) f[v] = cpu_e4m3_to_f32((uint8_t)v);
    for (int64_t i = begin; i < end; i++) {
        const float* srow = a->scale_inv + (i / a->block) * a->bc;
        for (int64_t bj = 0; bj < a->bc; bj++) {
            int64_t j0 = bj * a->block;
            int64_t cols = j0 + a->block < a->k ? a->block : a->k - j0;
            const uint8_t* w = a->w + i * a->k + j0;
            float s = srow[bj];
            /* a NaN w gives its own NaN (sign|0x7fc00000), whatever s is, as the AVX2 path */
            if (a->ydt == DSK4J_DTYPE_F32) {
                float* y = (float*)a->y + i * a->k + j0;
                for (int64_t j = 0; j < cols; j++) {
                    float d = f[w[j]];
                    y[j] = d != d ? d : d * s;
                }
            } else {
                uint16_t* y = (uint16_t*)a->y + i * a->k + j0;
                for (int64_t j = 0; j < cols; j++) {
                    float d = f[w[j]];
                    y[j] = cpu_f32_to_bf16(d != d ? d : d * s);
                }
            }
        }
    }
}

// fp8.weight_dequant: w[n,k] e4m3, scale_inv[ceil(n/b),ceil(k/b)] f32 -> y[n,k] f32|bf16,
//   y[i,j] = e4m3_to_f32(w[i,j]) * scale_inv[i/b, j/b] (one f32 multiply; bf16: then RNE)
void cpu_fp8_weight_dequant(dsk4j_context* ctx, void* y, int32_t y_dtype, const uint8_t* w,
                            const float* scale_inv, int64_t n, int64_t k, int32_t block) {
    if (n <= 0 || k <= 0 || block <= 0) return;
    int64_t out_bytes = n * k * (int64_t)elem_size(y_dtype);
    wd_args a = {ctx->simd, out_bytes >= DEQUANT_STREAM_BYTES, y, y_dtype, w, scale_inv, k,
                 (k + block - 1) / block, block};
    int64_t grain = QUANT_GRAIN_ELEMS / k;
    cpu_parallel_for(ctx, n, grain < 1 ? 1 : grain, wd_task, &a);
}
