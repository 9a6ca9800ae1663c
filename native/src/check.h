/* check.h - argument validation shared by the API layer (api_*.c, context.c). Each check
 * returns DSK4J_OK or sets the error message (naming the function and the argument) and
 * returns DSK4J_ERR_INVALID_ARGUMENT. */
#ifndef DSK4J_CHECK_H
#define DSK4J_CHECK_H
#include "internal.h"

/* ceil(a / b) for a >= 0, b > 0, without the overflow of (a + b - 1) / b near INT64_MAX. */
static inline int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }
/* out = a * b, failing on negative factors or int64 overflow. */
int check_mul(const char* fn, const char* what, int64_t a, int64_t b, int64_t* out);
/* *acc += b (b >= 0, *acc >= 0), failing on int64 overflow. */
int check_add(const char* fn, const char* what, int64_t* acc, int64_t b);
int check_ctx(const char* fn, dsk4j_context* ctx);
int check_nonneg(const char* fn, const char* arg, int64_t v);
/* A buffer argument: ptr may be NULL only when need == 0; capacity >= need >= 0; aligned to
 * `align`; on a cuda context inside one allocation of that context. */
int check_buf(const char* fn, dsk4j_context* ctx, const char* arg, const void* ptr, int64_t capacity,
              int64_t need, size_t align);
/* Host buffers [a, a+an) and [b, b+bn) must not overlap (outputs vs inputs, outputs vs outputs). */
int check_disjoint(const char* fn, const char* arg_a, const void* a, int64_t an, const char* arg_b,
                   const void* b, int64_t bn);
/* dtype must be f32 or bf16 (the activation dtypes). */
int check_float_dtype(const char* fn, const char* arg, int32_t dtype);
/* dtype must be a known dtype (argument 'dtype'); *es = its element size. */
int check_any_dtype(const char* fn, int32_t dtype, int64_t* es);
/* out = a * b * es bytes, failing on int64 overflow (what names the buffer). */
int check_bytes2(const char* fn, const char* what, int64_t a, int64_t b, int64_t es, int64_t* out);

/* Returns expr's status from the calling entry point when it is not DSK4J_OK. */
#define TRY(expr)                        \
    do {                                 \
        int rc_ = (expr);                \
        if (rc_ != DSK4J_OK) return rc_; \
    } while (0)

/* An entry point's last step: a success clears the thread's error message. */
static inline int finish(int rc) {
    if (rc == DSK4J_OK) dsk4j_clear_error();
    return rc;
}
#endif
