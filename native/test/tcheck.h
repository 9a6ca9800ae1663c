/* tcheck.h - the native test suite's assert helper and guarded buffers.
 *
 * CHECK(cond, fmt, ...) counts a check and prints a failure with file:line without stopping.
 * Guarded buffers (gb_alloc) are 64-byte aligned with GUARD bytes of a known pattern on both
 * sides; every live one is registered, so a test can snapshot the contents of all of them before a
 * call that must fail and verify afterwards that the call changed no byte of any buffer (inputs
 * and outputs) and no guard byte (gb_expect_untouched), and after a valid call that no guard byte
 * changed (gb_check_guards). */
#ifndef DSK4J_TCHECK_H
#define DSK4J_TCHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsk4j.h"

extern long t_checks, t_failures;

#define CHECK(cond, ...)                                                           \
    do {                                                                           \
        t_checks++;                                                                \
        if (!(cond)) {                                                             \
            t_failures++;                                                          \
            fprintf(stderr, "FAIL %s:%d: (%s) ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                   \
        }                                                                          \
    } while (0)

#define GUARD 64
#define GUARD_BYTE 0xA5

/* A buffer of `bytes` bytes (filled with 0xCD), guard bytes before and after; freed by gb_free_all. */
void* gb_alloc(size_t bytes);
/* Frees every guarded buffer (checking its guards first). */
void gb_free_all(void);
/* Checks every guard byte of every live buffer; `what` names the call in a failure. */
void gb_check_guards(const char* what, int line);
/* Copies the contents of every live buffer aside. */
void gb_snapshot(void);
/* Checks that no byte of any live buffer (nor any guard) changed since gb_snapshot. */
void gb_expect_untouched(const char* what, int line);

/* A call that must fail with `code`: non-empty dsk4j_last_error() naming a dsk4j_ function, and no
 * byte of any guarded buffer written. */
void t_expect_fail(const char* what, int line, int expected, int rc);

#define EXPECT_FAILC(code, call)                      \
    do {                                              \
        int32_t v1_, v2_, v3_;                        \
        dsk4j_version(&v1_, &v2_, &v3_); /* clears */ \
        gb_snapshot();                                \
        int rc_ = (call);                             \
        t_expect_fail(#call, __LINE__, (code), rc_);  \
    } while (0)

/* BAD(var, value): repeats the op's CALL() with `var` replaced by `value` (a shadowing local of
 * the same type) and expects DSK4J_ERR_INVALID_ARGUMENT; BADC names another code. */
#define BADC(code, var, val)                                                               \
    do {                                                                                   \
        __typeof__(var) bad_v_ = (val);                                                    \
        {                                                                                  \
            __typeof__(var) var = bad_v_;                                                  \
            int32_t v1_, v2_, v3_;                                                         \
            dsk4j_version(&v1_, &v2_, &v3_);                                               \
            gb_snapshot();                                                                 \
            int rc_ = CALL();                                                              \
            t_expect_fail(#var " = " #val, __LINE__, (code), rc_);                         \
        }                                                                                  \
    } while (0)
#define BAD(var, val) BADC(DSK4J_ERR_INVALID_ARGUMENT, var, val)

/* A call that must succeed, with an empty dsk4j_last_error() and intact guards. */
#define EXPECT_OK(call)                                                                    \
    do {                                                                                   \
        int rc_ = (call);                                                                  \
        CHECK(rc_ == DSK4J_OK, "%s -> %d: %s", #call, rc_, dsk4j_last_error());           \
        CHECK(dsk4j_last_error()[0] == '\0', "%s: message left after success: %s", #call, \
              dsk4j_last_error());                                                         \
        gb_check_guards(#call, __LINE__);                                                  \
    } while (0)

/* ---- random inputs (xorshift64*) ---- */
uint64_t t_rand(void);
void t_seed(uint64_t s);
float t_uniform(float lo, float hi);
int64_t t_range(int64_t lo, int64_t hi); /* [lo, hi] */
void t_fill_f32(float* p, int64_t n, float lo, float hi);
void t_fill_bytes(void* p, int64_t n);

/* ---- scalar references of the number formats (DESIGN.md 3) ---- */
float ref_e4m3_to_f32(uint8_t v);
float ref_e5m2_to_f32(uint8_t v);
/* nearest code of the same sign, ties to the even code, saturating, NaN -> 0x7f */
uint8_t ref_f32_to_fp8(float x, int e5m2);
uint16_t ref_f32_to_bf16(float x);
float ref_bf16_to_f32(uint16_t v);
float ref_f16_to_f32(uint16_t v);
/* the smallest power of two >= s (s > 0 normal), from the bits */
float ref_ue8m0(float s);
/* 1 when both are NaN or both have the same bits */
int same_f32(float a, float b);

#endif
