/* tcheck.c - see tcheck.h. */
#include "tcheck.h"

#include <math.h>

long t_checks, t_failures;

typedef struct {
    unsigned char* base; /* GUARD | data | GUARD */
    size_t bytes;
    unsigned char* snap;
} gbuf;

#define MAX_GB 512
static gbuf gbs[MAX_GB];
static int ngb;

void* gb_alloc(size_t bytes) {
    if (ngb == MAX_GB) {
        fprintf(stderr, "tcheck: too many guarded buffers\n");
        abort();
    }
    void* p = NULL;
    if (posix_memalign(&p, 64, GUARD + bytes + GUARD) != 0) {
        fprintf(stderr, "tcheck: out of memory\n");
        abort();
    }
    gbuf* g = &gbs[ngb++];
    g->base = (unsigned char*)p;
    g->bytes = bytes;
    g->snap = (unsigned char*)malloc(bytes ? bytes : 1);
    memset(g->base, GUARD_BYTE, GUARD);
    memset(g->base + GUARD, 0xCD, bytes);
    memset(g->base + GUARD + bytes, GUARD_BYTE, GUARD);
    return g->base + GUARD;
}

static int guards_ok(const gbuf* g) {
    for (size_t i = 0; i < GUARD; i++)
        if (g->base[i] != GUARD_BYTE || g->base[GUARD + g->bytes + i] != GUARD_BYTE) return 0;
    return 1;
}

void gb_check_guards(const char* what, int line) {
    for (int i = 0; i < ngb; i++) CHECK(guards_ok(&gbs[i]), "line %d: %s wrote a guard byte of buffer %d (%zu bytes)", line, what, i, gbs[i].bytes);
}

void gb_free_all(void) {
    gb_check_guards("(free)", 0);
    for (int i = 0; i < ngb; i++) {
        free(gbs[i].base);
        free(gbs[i].snap);
    }
    ngb = 0;
}

void gb_snapshot(void) {
    for (int i = 0; i < ngb; i++) memcpy(gbs[i].snap, gbs[i].base + GUARD, gbs[i].bytes);
}

void gb_expect_untouched(const char* what, int line) {
    for (int i = 0; i < ngb; i++) {
        CHECK(memcmp(gbs[i].snap, gbs[i].base + GUARD, gbs[i].bytes) == 0,
              "line %d: failing call %s changed buffer %d (%zu bytes)", line, what, i, gbs[i].bytes);
        CHECK(guards_ok(&gbs[i]), "line %d: failing call %s wrote a guard byte of buffer %d", line, what, i);
    }
}

void t_expect_fail(const char* what, int line, int expected, int rc) {
    const char* msg = dsk4j_last_error();
    CHECK(msg != NULL, "line %d: %s: dsk4j_last_error() is NULL", line, what);
    if (!msg) return;
    CHECK(rc == expected, "line %d: %s returned %d, expected %d (message: %s)", line, what, rc, expected, msg);
    CHECK(msg[0] != '\0', "line %d: %s failed with an empty message", line, what);
    CHECK(strstr(msg, "dsk4j_") != NULL, "line %d: %s: the message does not name the function: %s", line, what, msg);
    gb_expect_untouched(what, line);
}

/* ---- random ---- */
static uint64_t rs = 0x9E3779B97F4A7C15ull;
void t_seed(uint64_t s) { rs = s ? s : 0x9E3779B97F4A7C15ull; }
uint64_t t_rand(void) {
    rs ^= rs >> 12;
    rs ^= rs << 25;
    rs ^= rs >> 27;
    return rs * 0x2545F4914F6CDD1Dull;
}
float t_uniform(float lo, float hi) { return lo + (hi - lo) * (float)((t_rand() >> 40) / 16777216.0); }
int64_t t_range(int64_t lo, int64_t hi) { return lo + (int64_t)(t_rand() % (uint64_t)(hi - lo + 1)); }
void t_fill_f32(float* p, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) p[i] = t_uniform(lo, hi);
}
void t_fill_bytes(void* p, int64_t n) {
    for (int64_t i = 0; i < n; i++) ((unsigned char*)p)[i] = (unsigned char)(t_rand() >> 56);
}

/* ---- formats ---- */
float ref_e4m3_to_f32(uint8_t v) {
    if ((v & 0x7f) == 0x7f) return NAN;
    int e = (v >> 3) & 15, m = v & 7;
    float r = e ? ldexpf(1.0f + (float)m / 8.0f, e - 7) : ldexpf((float)m, -9);
    return (v & 0x80) ? -r : r;
}

float ref_e5m2_to_f32(uint8_t v) {
    int e = (v >> 2) & 31, m = v & 3;
    float r;
    if (e == 31) r = m ? NAN : INFINITY;
    else r = e ? ldexpf(1.0f + (float)m / 4.0f, e - 15) : ldexpf((float)m, -16);
    return (v & 0x80) ? -r : r;
}

uint8_t ref_f32_to_fp8(float x, int e5m2) {
    if (isnan(x)) return 0x7f;
    uint8_t sign = signbit(x) ? 0x80 : 0;
    if (isinf(x)) return sign | (e5m2 ? 0x7b : 0x7e);
    uint8_t best = sign;
    double bd = INFINITY;
    for (int c = 0; c < 128; c++) {
        uint8_t code = (uint8_t)(sign | c);
        float v = e5m2 ? ref_e5m2_to_f32(code) : ref_e4m3_to_f32(code);
        if (isnan(v) || isinf(v)) continue;
        double d = fabs((double)v - (double)x);
        if (d < bd || (d == bd && !(code & 1))) {
            bd = d;
            best = code;
        }
    }
    return best;
}

uint16_t ref_f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if (isnan(x)) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float ref_bf16_to_f32(uint16_t v) {
    uint32_t u = (uint32_t)v << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float ref_f16_to_f32(uint16_t v) {
    int e = (v >> 10) & 31, m = v & 1023;
    float r;
    if (e == 31) r = m ? NAN : INFINITY;
    else r = e ? ldexpf(1.0f + (float)m / 1024.0f, e - 15) : ldexpf((float)m, -24);
    return (v & 0x8000) ? -r : r;
}

float ref_ue8m0(float s) {
    uint32_t u;
    memcpy(&u, &s, 4);
    if (u & 0x7fffff) u = (u & 0xff800000u) + 0x800000u;
    memcpy(&s, &u, 4);
    return s;
}

int same_f32(float a, float b) {
    if (isnan(a) && isnan(b)) return 1;
    return memcmp(&a, &b, 4) == 0;
}
