/* check.c - argument validation (see check.h). */
#include <inttypes.h>
#include <stdio.h>
#include "check.h"

int check_mul(const char* fn, const char* what, int64_t a, int64_t b, int64_t* out) {
    if (a < 0 || b < 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: %s is negative", fn, what);
    if (a != 0 && b > INT64_MAX / a)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: %s overflows 64 bits (%" PRId64 " x %" PRId64 ")",
                          fn, what, a, b);
    *out = a * b;
    return DSK4J_OK;
}

int check_add(const char* fn, const char* what, int64_t* acc, int64_t b) {
    if (*acc < 0 || b < 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: %s is negative", fn, what);
    if (*acc > INT64_MAX - b)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: %s overflows 64 bits", fn, what);
    *acc += b;
    return DSK4J_OK;
}

int check_ctx(const char* fn, dsk4j_context* ctx) {
    if (!ctx) return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'ctx' is NULL", fn);
    return DSK4J_OK;
}

int check_nonneg(const char* fn, const char* arg, int64_t v) {
    if (v < 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument '%s' is negative (%" PRId64 ")", fn, arg, v);
    return DSK4J_OK;
}

int check_buf(const char* fn, dsk4j_context* ctx, const char* arg, const void* ptr, int64_t capacity,
              int64_t need, size_t align) {
    if (capacity < 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument '%s': negative byte size %" PRId64, fn,
                          arg, capacity);
    if (need > capacity)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                          "%s: argument '%s' is too small: %" PRId64 " bytes given, %" PRId64 " needed", fn,
                          arg, capacity, need);
    if (need == 0) return DSK4J_OK;
    if (!ptr) return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument '%s' is NULL", fn, arg);
    if (align > 1 && ((uintptr_t)ptr % align) != 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument '%s' is not aligned to %zu bytes", fn,
                          arg, align);
    if (ctx->kind == CTX_CUDA) {
        int rc = cuda_check_buffer(ctx, ptr, need, arg);
        if (rc != DSK4J_OK) {
            /* prefix the function name to the backend's message */
            char msg[900];
            snprintf(msg, sizeof msg, "%s", dsk4j_last_error());
            return dsk4j_fail(rc, "%s: %s", fn, msg);
        }
    }
    return DSK4J_OK;
}

int check_disjoint(const char* fn, const char* arg_a, const void* a, int64_t an, const char* arg_b,
                   const void* b, int64_t bn) {
    if (an <= 0 || bn <= 0) return DSK4J_OK;
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    if (a0 < b0 + (uintptr_t)bn && b0 < a0 + (uintptr_t)an)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: arguments '%s' and '%s' overlap in memory", fn,
                          arg_a, arg_b);
    return DSK4J_OK;
}

int check_float_dtype(const char* fn, const char* arg, int32_t dtype) {
    if (dtype != DSK4J_DTYPE_F32 && dtype != DSK4J_DTYPE_BF16)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument '%s' must be f32 or bf16, got %s", fn, arg,
                          dsk4j_dtype_name(dtype));
    return DSK4J_OK;
}

int check_any_dtype(const char* fn, int32_t dtype, int64_t* es) {
    *es = (int64_t)dsk4j_dtype_size(dtype);
    if (*es == 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'dtype' is not a known dtype (%d)", fn, dtype);
    return DSK4J_OK;
}

int check_bytes2(const char* fn, const char* what, int64_t a, int64_t b, int64_t es, int64_t* out) {
    int64_t n = 0;
    int rc = check_mul(fn, what, a, b, &n);
    if (rc != DSK4J_OK) return rc;
    return check_mul(fn, what, n, es, out);
}
