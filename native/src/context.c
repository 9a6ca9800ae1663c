/* context.c - backends as contexts ("cpu", "cuda:N"), their memory and synchronization. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"

/* "cuda:N" -> N (0 <= N < 1<<20), else -1. */
static int parse_cuda_ordinal(const char* device) {
    if (strncmp(device, "cuda:", 5) != 0) return -1;
    const char* p = device + 5;
    if (*p < '0' || *p > '9') return -1;
    long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
        if (v >= (1L << 20)) return -1;
    }
    return (int)v;
}

DSK4J_EXPORT int dsk4j_context_open(dsk4j_context** out_ctx, const char* device, int32_t num_threads,
                                    int32_t flags) {
    static const char* fn = "dsk4j_context_open";
    if (!out_ctx) return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'out_ctx' is NULL", fn);
    *out_ctx = NULL;
    if (!device) return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'device' is NULL", fn);
    if (num_threads < 0 || num_threads > 1024)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'num_threads' must be in [0, 1024], got %d",
                          fn, num_threads);
    if (flags & ~(DSK4J_CPU_FORCE_PORTABLE | DSK4J_CPU_MAX_AVX2 | DSK4J_CPU_MAX_AVX512 | DSK4J_CUDA_REFERENCE_KERNELS))
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'flags' has unknown bits 0x%x", fn, flags);
    int is_cpu = strcmp(device, "cpu") == 0;
    int ordinal = is_cpu ? -1 : parse_cuda_ordinal(device);
    if (!is_cpu && ordinal < 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                          "%s: argument 'device' must be \"cpu\" or \"cuda:N\", got \"%.64s\"", fn, device);
    dsk4j_context* ctx = calloc(1, sizeof *ctx);
    if (!ctx) return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    ctx->flags = flags;
    ctx->ordinal = ordinal;
    ctx->num_threads = 1;
    if (is_cpu) {
        ctx->kind = CTX_CPU;
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int threads = num_threads > 0 ? num_threads : (int)(cores > 0 ? (cores > 256 ? 256 : cores) : 1);
        ctx->num_threads = threads;
        if (flags & DSK4J_CPU_FORCE_PORTABLE) ctx->simd = SIMD_PORTABLE;
        else if (!(flags & DSK4J_CPU_MAX_AVX2) && cpu_has_avx512()) ctx->simd = SIMD_AVX512;
        else ctx->simd = cpu_has_avx2_fma() ? SIMD_AVX2 : SIMD_PORTABLE;
        ctx->amx = ctx->simd == SIMD_AVX512 && !(flags & DSK4J_CPU_MAX_AVX512) && cpu_has_amx();
        if (threads > 1) {
            int rc = cpu_pool_create(&ctx->pool, threads - 1);
            if (rc != DSK4J_OK) {
                free(ctx);
                return rc;
            }
        }
    } else {
        ctx->kind = CTX_CUDA;
        int rc = cuda_open(ctx, ordinal);
        if (rc != DSK4J_OK) {
            free(ctx);
            return rc;
        }
    }
    *out_ctx = ctx;
    dsk4j_clear_error();
    return DSK4J_OK;
}

DSK4J_EXPORT int dsk4j_context_close(dsk4j_context* ctx) {
    if (!ctx) {
        dsk4j_clear_error();
        return DSK4J_OK;
    }
    if (ctx->kind == CTX_CPU) {
        if (ctx->pool) cpu_pool_destroy(ctx->pool);
    } else {
        cuda_close(ctx);
    }
    free(ctx);
    dsk4j_clear_error();
    return DSK4J_OK;
}

DSK4J_EXPORT int dsk4j_context_describe(char* buf, int64_t buf_bytes, dsk4j_context* ctx) {
    static const char* fn = "dsk4j_context_describe";
    int rc = check_ctx(fn, ctx);
    if (rc) return rc;
    if (!buf || buf_bytes < 1)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'buf' is NULL or empty", fn);
    if (ctx->kind == CTX_CPU) {
        snprintf(buf, (size_t)buf_bytes, "cpu: %d thread%s, %s", ctx->num_threads,
                 ctx->num_threads == 1 ? "" : "s", ctx->amx ? "avx512+amx" : ctx->simd == SIMD_AVX512 ? "avx512" : ctx->simd == SIMD_AVX2 ? "avx2+fma" : "portable");
    } else {
        rc = cuda_describe(buf, (size_t)buf_bytes, ctx);
        if (rc) return rc;
    }
    dsk4j_clear_error();
    return DSK4J_OK;
}

DSK4J_EXPORT int dsk4j_cuda_device_count(int32_t* out_count) {
    if (!out_count)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "dsk4j_cuda_device_count: argument 'out_count' is NULL");
    *out_count = 0;
    int rc = cuda_device_count(out_count);
    if (rc == DSK4J_OK) dsk4j_clear_error();
    return rc;
}

DSK4J_EXPORT int dsk4j_mem_alloc(void** out_ptr, dsk4j_context* ctx, int64_t bytes) {
    static const char* fn = "dsk4j_mem_alloc";
    if (!out_ptr) return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'out_ptr' is NULL", fn);
    *out_ptr = NULL;
    int rc = check_ctx(fn, ctx);
    if (rc) return rc;
    if (bytes <= 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'bytes' must be > 0, got %lld", fn,
                          (long long)bytes);
    if (ctx->kind == CTX_CPU) {
        void* p = NULL;
        if ((uint64_t)bytes > (uint64_t)SIZE_MAX - 64 || posix_memalign(&p, 64, (size_t)bytes) != 0)
            return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "%s: cannot allocate %lld bytes of host memory", fn,
                              (long long)bytes);
        *out_ptr = p;
    } else {
        rc = cuda_mem_alloc(ctx, out_ptr, bytes);
        if (rc) return rc;
    }
    dsk4j_clear_error();
    return DSK4J_OK;
}

DSK4J_EXPORT int dsk4j_mem_free(dsk4j_context* ctx, void* ptr) {
    int rc = check_ctx("dsk4j_mem_free", ctx);
    if (rc) return rc;
    if (!ptr) {
        dsk4j_clear_error();
        return DSK4J_OK;
    }
    if (ctx->kind == CTX_CPU) {
        free(ptr);
    } else {
        rc = cuda_mem_free(ctx, ptr);
        if (rc) return rc;
    }
    dsk4j_clear_error();
    return DSK4J_OK;
}

DSK4J_EXPORT int dsk4j_memcpy(dsk4j_context* ctx, void* dst, int64_t dst_bytes, const void* src,
                              int64_t src_bytes, int64_t bytes, int32_t direction) {
    static const char* fn = "dsk4j_memcpy";
    int rc = check_ctx(fn, ctx);
    if (rc) return rc;
    if ((rc = check_nonneg(fn, "bytes", bytes))) return rc;
    if (direction < DSK4J_COPY_HOST_TO_DEVICE || direction > DSK4J_COPY_DEVICE_TO_DEVICE)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'direction' is unknown (%d)", fn, direction);
    /* On a cpu context every direction is host to host. */
    int dst_dev = ctx->kind == CTX_CUDA && direction != DSK4J_COPY_DEVICE_TO_HOST;
    int src_dev = ctx->kind == CTX_CUDA && direction != DSK4J_COPY_HOST_TO_DEVICE;
    dsk4j_context host = {.kind = CTX_CPU, .ordinal = -1, .num_threads = 1};
    if ((rc = check_buf(fn, dst_dev ? ctx : &host, "dst", dst, dst_bytes, bytes, 1))) return rc;
    if ((rc = check_buf(fn, src_dev ? ctx : &host, "src", src, src_bytes, bytes, 1))) return rc;
    if (bytes == 0) {
        dsk4j_clear_error();
        return DSK4J_OK;
    }
    if (ctx->kind == CTX_CPU) {
        memmove(dst, src, (size_t)bytes);
    } else {
        rc = cuda_memcpy(ctx, dst, src, bytes, direction);
        if (rc) return rc;
    }
    dsk4j_clear_error();
    return DSK4J_OK;
}

DSK4J_EXPORT int dsk4j_memset(dsk4j_context* ctx, void* dst, int64_t dst_bytes, int32_t value, int64_t bytes) {
    static const char* fn = "dsk4j_memset";
    int rc = check_ctx(fn, ctx);
    if (rc) return rc;
    if ((rc = check_nonneg(fn, "bytes", bytes))) return rc;
    if (value < 0 || value > 255)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: argument 'value' must be a byte (0..255), got %d", fn,
                          value);
    if ((rc = check_buf(fn, ctx, "dst", dst, dst_bytes, bytes, 1))) return rc;
    if (bytes == 0) {
        dsk4j_clear_error();
        return DSK4J_OK;
    }
    if (ctx->kind == CTX_CPU) {
        memset(dst, value, (size_t)bytes);
    } else {
        rc = cuda_memset(ctx, dst, value, bytes);
        if (rc) return rc;
    }
    dsk4j_clear_error();
    return DSK4J_OK;
}

DSK4J_EXPORT int dsk4j_synchronize(dsk4j_context* ctx) {
    int rc = check_ctx("dsk4j_synchronize", ctx);
    if (rc) return rc;
    if (ctx->kind == CTX_CUDA && (rc = cuda_synchronize(ctx))) return rc;
    dsk4j_clear_error();
    return DSK4J_OK;
}
