/* fuzz_common.h - shared by the libFuzzer targets of native/fuzz (one per op family).
 *
 * A target reads its whole call from the fuzz input: which entry point, which cpu path, shapes
 * (small, or now and then an extreme value: negative, 2^31, 2^40, INT64_MAX/2, INT64_MAX ...),
 * dtypes, flags, and for every buffer a claimed byte capacity (usually the exact need, sometimes
 * one byte less or a little more), an offset of the pointer inside its allocation (0..7: also
 * misaligned pointers) or NULL. Every buffer is malloc'ed with exactly offset + capacity bytes, so
 * that AddressSanitizer reports any access past what the call was told it may touch. Contents come
 * from the input too (floats with NaN/Inf, out-of-range indices).
 *
 * The harness never lies about a capacity: a buffer whose claimed size exceeds FZ_MAX_BYTES is
 * given as a small real allocation with its real size, which the library must refuse. */
#ifndef DSK4J_FUZZ_COMMON_H
#define DSK4J_FUZZ_COMMON_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsk4j.h"

#define FZ_MAX_BYTES (1 << 20)

/* size arithmetic of the harness: -1 for a negative operand or an overflow (never UB) */
static inline int64_t mul(int64_t a, int64_t b) {
    if (a < 0 || b < 0 || (a && b > INT64_MAX / a)) return -1;
    return a * b;
}
static inline int64_t add(int64_t a, int64_t b) {
    if (a < 0 || b < 0 || a > INT64_MAX - b) return -1;
    return a + b;
}
static inline int64_t dec(int64_t a) { return a == INT64_MIN ? INT64_MIN : a - 1; }
static inline int64_t cdiv128(int64_t a) { return a < 0 ? -1 : a / 128 + (a % 128 != 0); }

typedef struct {
    const uint8_t* p;
    size_t n, i;
} fz_in;

static inline uint8_t fz_u8(fz_in* f) { return f->i < f->n ? f->p[f->i++] : 0; }
static inline uint32_t fz_u32(fz_in* f) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) v |= (uint32_t)fz_u8(f) << (8 * k);
    return v;
}
static inline int fz_bool(fz_in* f, int one_in) { return fz_u8(f) % one_in == 0; }

/* a size in [0, max] mostly; one input byte in 16 picks an extreme value */
static inline int64_t fz_dim(fz_in* f, int64_t max) {
    static const int64_t special[] = {-1, -128, INT64_MIN, INT64_MAX, INT64_MAX / 2, INT64_MAX / 128 * 128,
                                      (int64_t)1 << 31, ((int64_t)1 << 31) - 1, (int64_t)1 << 40, (int64_t)1 << 62,
                                      0, 1, 128, 129, 4096, 65536};
    uint8_t b = fz_u8(f);
    if (b >= 240) return special[b - 240];
    uint16_t v = (uint16_t)(b | fz_u8(f) << 8);
    return (int64_t)(v % (uint64_t)(max + 1));
}

/* a multiple of 128 in [0, 128 * max_blocks] mostly, extremes now and then */
static inline int64_t fz_dim128(fz_in* f, int64_t max_blocks) {
    if (fz_bool(f, 12)) return fz_dim(f, 300);
    return 128 * (int64_t)(fz_u8(f) % (max_blocks + 1));
}

static inline int32_t fz_dtype(fz_in* f, int32_t likely_a, int32_t likely_b) {
    uint8_t b = fz_u8(f);
    if (b < 110) return likely_a;
    if (b < 220) return likely_b;
    return (int32_t)(b % 9) - 1; /* -1 .. 7: every code and some unknown ones */
}

/* ---- buffers (freed by fz_end) ---- */
#define FZ_MAX_ALLOCS 64
static void* fz_allocs[FZ_MAX_ALLOCS];
static int fz_nallocs;

/* Fills n bytes from the input (cycled) or with a pattern. */
static inline void fz_fill(fz_in* f, uint8_t* p, int64_t n) {
    size_t rest = f->n > f->i ? f->n - f->i : 0;
    for (int64_t k = 0; k < n; k++) p[k] = rest ? f->p[f->i + (size_t)k % rest] : (uint8_t)(k * 131 + 7);
}

/* Floats that keep the kernels in their usual range: mostly small finite values, a few specials. */
static inline void fz_fill_f32(fz_in* f, float* p, int64_t n) {
    size_t rest = f->n > f->i ? f->n - f->i : 0;
    for (int64_t k = 0; k < n; k++) {
        uint8_t b = rest ? f->p[f->i + (size_t)k % rest] : (uint8_t)k;
        p[k] = b == 255 ? __builtin_nanf("") : b == 254 ? __builtin_inff() : b == 253 ? 1e30f : ((float)b - 128.0f) / 32.0f;
    }
}

/* A buffer argument of `need` bytes (need < 0 or absurd: a small real one). Sets *cap to the
 * capacity passed. Returns NULL sometimes. */
static inline void* fz_buf(fz_in* f, int64_t need, int64_t* cap) {
    uint8_t mode = fz_u8(f);
    int64_t c = need;
    if (need < 0 || need > FZ_MAX_BYTES) c = 64;
    else if (mode % 16 == 1 && c > 0) c = need - 1;
    else if (mode % 16 == 2) c = need + (fz_u8(f) % 9);
    size_t off = mode % 16 == 3 ? fz_u8(f) % 8 : 0;
    *cap = c;
    if (mode == 255) return NULL;
    if (mode == 254) {
        *cap = -1 - (int64_t)(fz_u8(f) % 3);
        c = 0;
    }
    if (fz_nallocs == FZ_MAX_ALLOCS) return NULL;
    uint8_t* p = (uint8_t*)malloc(off + (size_t)c + (c == 0 && off == 0 ? 1 : 0));
    if (!p) return NULL;
    fz_allocs[fz_nallocs++] = p;
    fz_fill(f, p + off, c);
    if (c == 0 && off == 0) return p + 1; /* a zero-byte buffer: one past its 1-byte allocation */
    return p + off;
}

/* the same, with f32 contents */
static inline void* fz_fbuf(fz_in* f, int64_t need, int64_t* cap) {
    uint8_t* p = (uint8_t*)fz_buf(f, need, cap);
    if (p && ((uintptr_t)p % 4) == 0 && *cap > 0) fz_fill_f32(f, (float*)p, *cap / 4);
    return p;
}

/* an i32 array of `count` entries with values mostly in [lo, hi] (sometimes just outside) */
static inline int32_t* fz_ibuf(fz_in* f, int64_t count, int64_t lo, int64_t hi, int64_t* cap) {
    int64_t need = count >= 0 && count <= FZ_MAX_BYTES / 4 ? count * 4 : -1;
    int32_t* p = (int32_t*)fz_buf(f, need, cap);
    if (lo < INT32_MIN + 1) lo = INT32_MIN + 1;
    if (hi > INT32_MAX - 1) hi = INT32_MAX - 1;
    if (p && ((uintptr_t)p % 4) == 0 && *cap > 0) {
        int64_t span = hi >= lo ? hi - lo + 1 : 1;
        for (int64_t k = 0; k < *cap / 4; k++) {
            uint8_t b = fz_u8(f);
            p[k] = b == 255 ? (int32_t)(lo - 1) : b == 254 ? (int32_t)(hi + 1) : b == 253 ? INT32_MIN
                                                                                          : (int32_t)(lo + (int64_t)b % span);
        }
    }
    return p;
}

/* non-decreasing i32 offsets 0 .. total over count+1 entries (mostly), for group_offsets / cu_seqlens */
static inline int32_t* fz_offsets(fz_in* f, int64_t count, int64_t total, int64_t* cap) {
    int64_t need = count >= 0 && count < FZ_MAX_BYTES / 4 ? (count + 1) * 4 : -1;
    int32_t* p = (int32_t*)fz_buf(f, need, cap);
    if (p && ((uintptr_t)p % 4) == 0 && *cap >= 4) {
        int64_t n = *cap / 4, cur = 0;
        if (total > INT32_MAX) total = INT32_MAX;
        for (int64_t k = 0; k < n; k++) {
            if (k == n - 1 && total >= 0 && total <= INT32_MAX) cur = total;
            p[k] = (int32_t)cur;
            if (total > 0) cur += fz_u8(f) % (total / (n > 1 ? n - 1 : 1) + 2);
            if (cur > total) cur = total;
        }
        if (fz_bool(f, 16)) p[fz_u8(f) % n] = (int32_t)fz_u32(f);
    }
    return p;
}

static inline void fz_end(void) {
    for (int k = 0; k < fz_nallocs; k++) free(fz_allocs[k]);
    fz_nallocs = 0;
}

/* ---- contexts: one per cpu path (1 thread), and one with 2 threads; kept for the process ---- */
static dsk4j_context* fz_ctxs[5];
static inline dsk4j_context* fz_ctx(fz_in* f) {
    static const int32_t flags[5] = {DSK4J_CPU_FORCE_PORTABLE, DSK4J_CPU_MAX_AVX2, DSK4J_CPU_MAX_AVX512, 0, 0};
    int k = fz_u8(f) % 5;
    if (!fz_ctxs[k] && dsk4j_context_open(&fz_ctxs[k], "cpu", k == 4 ? 2 : 1, flags[k]) != DSK4J_OK) abort();
    return fz_ctxs[k];
}

/* calls that returned 0 (reached the kernels) and calls refused; printed at exit when the
 * environment has DSK4J_FUZZ_STATS (run-sanitizers.sh sets it) */
static long fz_ok, fz_err;
static void fz_print_stats(void) { fprintf(stderr, "fuzz calls: %ld ok, %ld refused\n", fz_ok, fz_err); }
/* The contract on every return: 0, or a known negative code with a non-empty message. */
static inline void fz_check_rc(int rc) {
    static int registered;
    if (!registered) {
        registered = 1;
        if (getenv("DSK4J_FUZZ_STATS")) atexit(fz_print_stats);
    }
    if (rc == DSK4J_OK) {
        fz_ok++;
        return;
    }
    fz_err++;
    if (rc < DSK4J_ERR_INTERNAL || rc > DSK4J_ERR_INVALID_ARGUMENT) abort();
    const char* m = dsk4j_last_error();
    if (!m || !m[0]) abort();
}

#endif
