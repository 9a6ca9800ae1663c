/* errors.c - the thread-local error message of DESIGN.md section 2, and dtype facts. */
#include <stdarg.h>
#include <stdio.h>
#include "internal.h"

static _Thread_local char last_error[1024];

int dsk4j_fail(int code, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

void dsk4j_clear_error(void) { last_error[0] = '\0'; }

DSK4J_EXPORT const char* dsk4j_last_error(void) { return last_error; }

DSK4J_EXPORT int dsk4j_version(int32_t* out_major, int32_t* out_minor, int32_t* out_patch) {
    if (!out_major || !out_minor || !out_patch)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "dsk4j_version: an output pointer is NULL");
    *out_major = DSK4J_VERSION_MAJOR;
    *out_minor = DSK4J_VERSION_MINOR;
    *out_patch = DSK4J_VERSION_PATCH;
    dsk4j_clear_error();
    return DSK4J_OK;
}

size_t dsk4j_dtype_size(int32_t dtype) {
    switch (dtype) {
    case DSK4J_DTYPE_F32: case DSK4J_DTYPE_I32: return 4;
    case DSK4J_DTYPE_BF16: case DSK4J_DTYPE_F16: return 2;
    case DSK4J_DTYPE_E4M3: case DSK4J_DTYPE_E5M2: return 1;
    default: return 0;
    }
}

const char* dsk4j_dtype_name(int32_t dtype) {
    switch (dtype) {
    case DSK4J_DTYPE_F32: return "f32";
    case DSK4J_DTYPE_BF16: return "bf16";
    case DSK4J_DTYPE_F16: return "f16";
    case DSK4J_DTYPE_E4M3: return "e4m3";
    case DSK4J_DTYPE_E5M2: return "e5m2";
    case DSK4J_DTYPE_I32: return "i32";
    default: return "unknown";
    }
}
