/* fuzz_context.c - libFuzzer target of the context and memory entry points (version, last_error,
 * context_open with a device string from the input, context_close, context_describe,
 * cuda_device_count, mem_alloc, mem_free, memcpy, memset, synchronize). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fz_in in = {data, size, 0}, *f = &in;
    int op = fz_u8(f) % 6, rc = 0;
    int64_t c1, c2;
    if (op == 0) { /* open/describe/close with a fuzzed device string, threads and flags */
        char dev[24];
        size_t n = fz_u8(f) % sizeof dev;
        for (size_t k = 0; k < n; k++) dev[k] = (char)fz_u8(f);
        dev[n] = '\0';
        if (fz_bool(f, 2)) memcpy(dev, "cpu", 4);
        int32_t threads = (int32_t)(fz_u8(f) % 8) - 2, flags = (int32_t)(fz_u8(f) % 20);
        dsk4j_context* ctx = NULL;
        rc = dsk4j_context_open(fz_bool(f, 16) ? NULL : &ctx, fz_bool(f, 16) ? NULL : dev, threads, flags);
        if (rc == DSK4J_OK) {
            char* buf = (char*)fz_buf(f, fz_dim(f, 100), &c1);
            fz_check_rc(dsk4j_context_describe(buf, c1, ctx));
            fz_check_rc(dsk4j_synchronize(ctx));
            rc = dsk4j_context_close(ctx);
        } else if (ctx) {
            abort(); /* a failed open leaves no context */
        }
    } else if (op == 1) {
        dsk4j_context* ctx = fz_ctx(f);
        void* p = NULL;
        int64_t bytes = fz_dim(f, 5000);
        rc = dsk4j_mem_alloc(fz_bool(f, 16) ? NULL : &p, fz_bool(f, 16) ? NULL : ctx, bytes > FZ_MAX_BYTES ? -bytes : bytes);
        if (rc == DSK4J_OK) {
            if (((uintptr_t)p % 64) != 0) abort();
            memset(p, 0x5a, (size_t)bytes);
            fz_check_rc(dsk4j_mem_free(ctx, p));
        } else if (p) {
            abort();
        }
    } else if (op == 2 || op == 3) {
        dsk4j_context* ctx = fz_ctx(f);
        int64_t bytes = fz_dim(f, 3000);
        uint8_t* dst = (uint8_t*)fz_buf(f, bytes, &c1);
        int32_t value = (int32_t)(fz_u8(f) % 300) - 20;
        if (op == 2) {
            const uint8_t* src;
            if (fz_bool(f, 4) && dst && c1 > 1) { /* overlapping: a move */
                src = dst + 1;
                c2 = c1 - 1;
            } else {
                src = (const uint8_t*)fz_buf(f, bytes, &c2);
            }
            rc = dsk4j_memcpy(fz_bool(f, 16) ? NULL : ctx, dst, c1, src, c2, bytes, value % 5 - 1);
        } else {
            rc = dsk4j_memset(fz_bool(f, 16) ? NULL : ctx, dst, c1, value, bytes);
        }
    } else if (op == 4) {
        int32_t a, b, c, n;
        rc = dsk4j_version(fz_bool(f, 4) ? NULL : &a, &b, fz_bool(f, 4) ? NULL : &c);
        fz_check_rc(rc);
        rc = dsk4j_cuda_device_count(fz_bool(f, 4) ? NULL : &n);
    } else {
        rc = dsk4j_mem_free(fz_bool(f, 2) ? NULL : fz_ctx(f), NULL);
        fz_check_rc(rc);
        rc = dsk4j_context_describe(NULL, 0, NULL);
    }
    fz_check_rc(rc);
    if (!dsk4j_last_error()) abort();
    fz_end();
    return 0;
}
