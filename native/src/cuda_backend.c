/* cuda_backend.c - the CUDA backend's host side (internal.h, cuda_*): contexts, memory,
 * copies and kernel launches through the driver API (cuda_driver.h). Every operation is
 * queued on the dsk4j context's own stream; dsk4j_memcpy waits for it. The CUDA context
 * (the device's primary context) is pushed around each call, so any thread may use a dsk4j
 * context. Kernels: kernels-ptx/src (names below), embedded by cmake/kernels.cmake. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_driver.h"
#include "cuda_kernels.h"
#include "internal.h"

enum { OP_CAST, OP_ACT_QUANT, OP_WEIGHT_QUANT, OP_WEIGHT_DEQUANT, OP_COUNT };
static const char* const FAST_NAMES[OP_COUNT] = {
    "dsk4j_fp8_cast", "dsk4j_fp8_act_quant", "dsk4j_fp8_weight_quant", "dsk4j_fp8_weight_dequant"};
static const char* const REF_NAMES[OP_COUNT] = {"dsk4j_ref_fp8_cast", "dsk4j_ref_fp8_act_quant",
                                                "dsk4j_ref_fp8_weight_quant",
                                                "dsk4j_ref_fp8_weight_dequant"};

/* Block sizes: must match __launch_bounds__ in kernels-ptx/src/fp8_quant.cu. */
#define THREADS 256    /* DSK4J_THREADS */
#define WQ_THREADS 512 /* DSK4J_WQ_THREADS: fast weight_quant */
#define REF_THREADS 64 /* reference kernels that run one thread per group / block */
#define BLOCKS_PER_SM 64

typedef struct {
    CUdeviceptr base;
    size_t size;
} alloc_entry;

struct cuda_state {
    const cuda_driver_api* d;
    CUdevice dev;
    CUcontext cu_ctx; /* retained primary context */
    CUstream stream;
    CUmodule module;
    CUfunction fn[OP_COUNT]; /* fast or reference, per ctx->flags */
    CUfunction gemm_fn[CUDA_GEMM_KERNELS]; /* all gemm kernels (cuda_gemm.c picks) */

    CUfunction rope_fn[CUDA_ROPE_KERNELS]; /* both rope kernels (cuda_rope.c picks) */

    CUfunction mla_fn[CUDA_MLA_KERNELS]; /* all mla kernels (cuda_mla.c picks) */
    unsigned mla_usable;                 /* bit i: mla_fn[i] got its shared memory (and may run here) */
    CUfunction moe_fn[CUDA_MOE_KERNELS]; /* all moe kernels (cuda_moe.c picks) */
    CUfunction ew_fn[CUDA_ELEMENTWISE_KERNELS]; /* all elementwise kernels (cuda_elementwise.c picks) */
    unsigned mla_sm90a_mask;             /* bit i: cuda_mla_kernel_sm90a[i] */
    pthread_mutex_t scratch_lock;        /* held from cuda_mla_scratch_acquire to _release */
    int scratch_lock_init;
    CUdeviceptr scratch;                 /* cuda_mla_scratch_acquire; freed at close */
    size_t scratch_bytes;

    int reference;
    int wgmma; /* the sm_90a gemm kernels are usable (cuda_gemm_context_info) */
    int ordinal;
    int cc_major, cc_minor, sm_count;
    char name[256];
    char module_kind[64];
    pthread_mutex_t lock; /* guards the registry */
    alloc_entry* allocs;  /* sorted by base */
    size_t n_allocs, cap_allocs;
};

/* ---- helpers ---- */

static int cu_fail(cuda_state* st, CUresult r, const char* what) {
    (void)st;
    return cuda_driver_fail(r == CUDA_ERROR_OUT_OF_MEMORY ? DSK4J_ERR_OUT_OF_MEMORY : DSK4J_ERR_DEVICE,
                            r, what);
}

static int enter(cuda_state* st) {
    CUresult r = st->d->cuCtxPushCurrent(st->cu_ctx);
    return r == CUDA_SUCCESS ? DSK4J_OK : cu_fail(st, r, "cuCtxPushCurrent");
}

/* Pops the context; keeps rc unless rc is OK and the pop fails. */
static int leave(cuda_state* st, int rc) {
    CUcontext popped = NULL;
    CUresult r = st->d->cuCtxPopCurrent(&popped);
    if (r != CUDA_SUCCESS && rc == DSK4J_OK) return cu_fail(st, r, "cuCtxPopCurrent");
    return rc;
}

static cuda_state* state(dsk4j_context* ctx) { return ctx ? ctx->cuda : NULL; }

#define NO_STATE() dsk4j_fail(DSK4J_ERR_INTERNAL, "cuda backend: context is not open")

static CUdeviceptr dptr(const void* p) { return (CUdeviceptr)(uintptr_t)p; }

/* Index of the last allocation with base <= p, or -1. Caller holds the lock. */
static long find_floor(const cuda_state* st, CUdeviceptr p) {
    size_t lo = 0, hi = st->n_allocs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->allocs[mid].base <= p) lo = mid + 1;
        else hi = mid;
    }
    return (long)lo - 1;
}

static int registry_add(cuda_state* st, CUdeviceptr base, size_t size) {
    int rc = DSK4J_OK;
    pthread_mutex_lock(&st->lock);
    if (st->n_allocs == st->cap_allocs) {
        size_t cap = st->cap_allocs ? st->cap_allocs * 2 : 64;
        alloc_entry* a = realloc(st->allocs, cap * sizeof *a);
        if (a == NULL) {
            rc = dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "cuda: out of host memory for the allocation registry");
        } else {
            st->allocs = a;
            st->cap_allocs = cap;
        }
    }
    if (rc == DSK4J_OK) {
        size_t at = (size_t)(find_floor(st, base) + 1);
        memmove(&st->allocs[at + 1], &st->allocs[at], (st->n_allocs - at) * sizeof *st->allocs);
        st->allocs[at].base = base;
        st->allocs[at].size = size;
        st->n_allocs++;
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* Removes the allocation starting exactly at base; 1 if it was there. */
static int registry_remove(cuda_state* st, CUdeviceptr base) {
    int found = 0;
    pthread_mutex_lock(&st->lock);
    long i = find_floor(st, base);
    if (i >= 0 && st->allocs[i].base == base) {
        memmove(&st->allocs[i], &st->allocs[i + 1], (st->n_allocs - (size_t)i - 1) * sizeof *st->allocs);
        st->n_allocs--;
        found = 1;
    }
    pthread_mutex_unlock(&st->lock);
    return found;
}

static const dsk4j_kernel_image* find_image(const char* name) {
    for (int i = 0; i < dsk4j_kernel_image_count; i++)
        if (strcmp(dsk4j_kernel_images[i].name, name) == 0 && dsk4j_kernel_images[i].size > 0)
            return &dsk4j_kernel_images[i];
    return NULL;
}

/* Loads one image into st->module; on failure writes the reason to err. */
static CUresult load_image(cuda_state* st, const dsk4j_kernel_image* img, char* err, size_t cap) {
    char log[4096];
    log[0] = '\0';
    CUjit_option opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void* vals[2] = {log, (void*)(uintptr_t)sizeof log};
    CUresult r = st->d->cuModuleLoadDataEx(&st->module, img->data, 2, opts, vals);
    if (r != CUDA_SUCCESS) {
        char text[384];
        cuda_driver_error_text(text, sizeof text, r);
        log[sizeof log - 1] = '\0';
        snprintf(err, cap, "cuModuleLoadDataEx(%s): %s%s%s", img->name, text, log[0] ? "; JIT log: " : "",
                 log);
        st->module = NULL;
    }
    return r;
}

/* DSK4J_CUDA_GEMM_KERNEL (internal, for tests and benchmarks): "mma" keeps the fp8 gemm on
 * the mma.sync kernels; unset, "" or "auto" (or "wgmma") lets it use the sm_90a wgmma kernel
 * where it applies. Read at context open. 1 = allow wgmma, 0 = not, -1 = unknown value. */
static int gemm_kernel_env(void) {
    const char* v = getenv("DSK4J_CUDA_GEMM_KERNEL");
    if (v == NULL || v[0] == '\0' || strcmp(v, "auto") == 0 || strcmp(v, "wgmma") == 0) return 1;
    if (strcmp(v, "mma") == 0) return 0;
    return -1;
}

/* DSK4J_CUDA_MLA_KERNEL (internal, for tests and benchmarks): "wgmma" lets mla.decode use the
 * sm_90a kernel with wgmma for Q K^T (mla_decode.cu), "flash" the FlashMLA-style sm_90a kernel
 * (mla_decode_sm90.cu: TMA pages, wgmma for both products) where they apply; unset, "", "auto"
 * or "mma" keep it on mma.sync (both sm_90a kernels are opt-in until a GPU run has verified
 * them; the flash one has never run on a GPU). Returns the cuda_mla_kernel_sm90a value of the
 * chosen sm_90a kernel (CUDA_MLA_WGMMA, CUDA_MLA_FLASH), 0 = mma.sync, -1 = unknown value. */
static int mla_kernel_env(void) {
    const char* v = getenv("DSK4J_CUDA_MLA_KERNEL");
    if (v == NULL || v[0] == '\0' || strcmp(v, "auto") == 0 || strcmp(v, "mma") == 0) return 0;
    if (strcmp(v, "wgmma") == 0) return CUDA_MLA_WGMMA;
    if (strcmp(v, "flash") == 0) return CUDA_MLA_FLASH;
    return -1;
}

/* ---- device, context ---- */

int cuda_device_count(int32_t* out_count) {
    const cuda_driver_api* d;
    *out_count = 0;
    int rc = cuda_driver_get(&d);
    if (rc != DSK4J_OK) return rc;
    int n = 0;
    CUresult r = d->cuDeviceGetCount(&n);
    if (r != CUDA_SUCCESS) return cuda_driver_fail(DSK4J_ERR_DEVICE, r, "cuDeviceGetCount");
    *out_count = n;
    return DSK4J_OK;
}

static void destroy_state(cuda_state* st) {
    if (st == NULL) return;
    const cuda_driver_api* d = st->d;
    if (st->cu_ctx != NULL && d->cuCtxPushCurrent(st->cu_ctx) == CUDA_SUCCESS) {
        if (st->stream != NULL) d->cuStreamSynchronize(st->stream);
        for (size_t i = 0; i < st->n_allocs; i++) d->cuMemFree(st->allocs[i].base);
        if (st->scratch != 0) d->cuMemFree(st->scratch);
        if (st->module != NULL) d->cuModuleUnload(st->module);
        if (st->stream != NULL) d->cuStreamDestroy(st->stream);
        CUcontext popped;
        d->cuCtxPopCurrent(&popped);
    }
    if (st->cu_ctx != NULL) d->cuDevicePrimaryCtxRelease(st->dev);
    free(st->allocs);
    if (st->scratch_lock_init) pthread_mutex_destroy(&st->scratch_lock);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

int cuda_open(dsk4j_context* ctx, int ordinal) {
    const cuda_driver_api* d;
    ctx->cuda = NULL;
    int rc = cuda_driver_get(&d);
    if (rc != DSK4J_OK) return rc;

    int count = 0;
    CUresult r = d->cuDeviceGetCount(&count);
    if (r != CUDA_SUCCESS) return cuda_driver_fail(DSK4J_ERR_UNAVAILABLE, r, "cuDeviceGetCount");
    if (count <= 0) return dsk4j_fail(DSK4J_ERR_UNAVAILABLE, "cuda:%d: no CUDA device present", ordinal);
    if (ordinal < 0 || ordinal >= count)
        return dsk4j_fail(DSK4J_ERR_UNAVAILABLE, "cuda:%d: no such device (%d CUDA device%s: cuda:0..cuda:%d)",
                          ordinal, count, count == 1 ? "" : "s", count - 1);

    int pushed = 0;
    const dsk4j_kernel_image* cubin = NULL;
    const dsk4j_kernel_image* ptx = NULL;
    char err1[1536] = "", err2[1536] = "";
    cuda_state* st = calloc(1, sizeof *st);
    if (st == NULL) return dsk4j_fail(DSK4J_ERR_OUT_OF_MEMORY, "cuda: out of host memory");
    if (pthread_mutex_init(&st->lock, NULL) != 0) {
        free(st);
        return dsk4j_fail(DSK4J_ERR_INTERNAL, "cuda: pthread_mutex_init failed");
    }
    if (pthread_mutex_init(&st->scratch_lock, NULL) != 0) {
        pthread_mutex_destroy(&st->lock);
        free(st);
        return dsk4j_fail(DSK4J_ERR_INTERNAL, "cuda: pthread_mutex_init failed");
    }
    st->scratch_lock_init = 1;
    st->d = d;
    st->ordinal = ordinal;
    st->reference = (ctx->flags & DSK4J_CUDA_REFERENCE_KERNELS) != 0;
    const int allow_wgmma = gemm_kernel_env();
    if (allow_wgmma < 0) {
        rc = dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                        "DSK4J_CUDA_GEMM_KERNEL=%s: expected mma, wgmma or auto", getenv("DSK4J_CUDA_GEMM_KERNEL"));
        pthread_mutex_destroy(&st->scratch_lock);
        pthread_mutex_destroy(&st->lock);
        free(st);
        return rc;
    }
    const int mla_sm90a = mla_kernel_env();
    if (mla_sm90a < 0) {
        rc = dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "DSK4J_CUDA_MLA_KERNEL=%s: expected mma, wgmma, flash or auto",
                        getenv("DSK4J_CUDA_MLA_KERNEL"));
        pthread_mutex_destroy(&st->scratch_lock);
        pthread_mutex_destroy(&st->lock);
        free(st);
        return rc;
    }
    int sm90a_module = 0; /* the loaded module is the sm_90a cubin */

#define CHECK(call, what)                                                                      \
    do {                                                                                       \
        CUresult r_ = (call);                                                                  \
        if (r_ != CUDA_SUCCESS) {                                                              \
            rc = cu_fail(st, r_, what);                                                        \
            goto fail;                                                                         \
        }                                                                                      \
    } while (0)
    CHECK(d->cuDeviceGet(&st->dev, ordinal), "cuDeviceGet");
    CHECK(d->cuDeviceGetName(st->name, (int)sizeof st->name - 1, st->dev), "cuDeviceGetName");
    st->name[sizeof st->name - 1] = '\0';
    CHECK(d->cuDeviceGetAttribute(&st->cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, st->dev),
          "cuDeviceGetAttribute(COMPUTE_CAPABILITY_MAJOR)");
    CHECK(d->cuDeviceGetAttribute(&st->cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, st->dev),
          "cuDeviceGetAttribute(COMPUTE_CAPABILITY_MINOR)");
    CHECK(d->cuDeviceGetAttribute(&st->sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, st->dev),
          "cuDeviceGetAttribute(MULTIPROCESSOR_COUNT)");
    if (st->sm_count < 1) st->sm_count = 1;
    if (st->cc_major < 8) {
        rc = dsk4j_fail(DSK4J_ERR_UNSUPPORTED,
                        "cuda:%d: %s has compute capability %d.%d; dsk4j's GPU kernels need 8.0 or newer",
                        ordinal, st->name, st->cc_major, st->cc_minor);
        goto fail;
    }
    if (dsk4j_kernel_image_count == 0) {
        rc = dsk4j_fail(DSK4J_ERR_UNAVAILABLE,
                        "this build has no GPU kernels (nvcc was absent when it was built)");
        goto fail;
    }
    if (st->cc_major == 9 && st->cc_minor == 0) cubin = find_image("sm_90a.cubin");
    else if (st->cc_major == 8 && st->cc_minor == 9) cubin = find_image("sm_89.cubin");
    ptx = find_image("compute_80.ptx");
    if (cubin == NULL && ptx == NULL) {
        rc = dsk4j_fail(DSK4J_ERR_UNAVAILABLE, "this build has no GPU kernels for sm_%d%d",
                        st->cc_major, st->cc_minor);
        goto fail;
    }

    CHECK(d->cuDevicePrimaryCtxRetain(&st->cu_ctx, st->dev), "cuDevicePrimaryCtxRetain");
    CHECK(d->cuCtxPushCurrent(st->cu_ctx), "cuCtxPushCurrent");
    pushed = 1;
    CHECK(d->cuStreamCreate(&st->stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");

    r = CUDA_SUCCESS + 1;
    if (cubin != NULL) {
        r = load_image(st, cubin, err1, sizeof err1);
        if (r == CUDA_SUCCESS) snprintf(st->module_kind, sizeof st->module_kind, "cubin %.*s",
                                        (int)(strlen(cubin->name) - 6), cubin->name);
        sm90a_module = r == CUDA_SUCCESS && strcmp(cubin->name, "sm_90a.cubin") == 0;
    }
    if (r != CUDA_SUCCESS && ptx != NULL) { /* no cubin for this GPU, or the driver refused it */
        r = load_image(st, ptx, err2, sizeof err2);
        if (r == CUDA_SUCCESS) snprintf(st->module_kind, sizeof st->module_kind, "ptx compute_80 (JIT)");
    }
    if (r != CUDA_SUCCESS) {
        int version = 0;
        d->cuDriverGetVersion(&version);
        rc = dsk4j_fail(DSK4J_ERR_DEVICE, "cuda:%d: cannot load the GPU kernels (driver CUDA %d.%d): %s%s%s",
                        ordinal, version / 1000, (version % 1000) / 10, err1, err1[0] && err2[0] ? "; " : "",
                        err2);
        goto fail;
    }
    for (int i = 0; i < OP_COUNT; i++) {
        CUfunction f = NULL;
        char what[128];
        snprintf(what, sizeof what, "cuModuleGetFunction(%s)", FAST_NAMES[i]);
        CHECK(d->cuModuleGetFunction(&f, st->module, FAST_NAMES[i]), what);
        if (!st->reference) st->fn[i] = f;
        snprintf(what, sizeof what, "cuModuleGetFunction(%s)", REF_NAMES[i]);
        CHECK(d->cuModuleGetFunction(&f, st->module, REF_NAMES[i]), what);
        if (st->reference) st->fn[i] = f;
    }
    /* The sm_90a kernels: only from the sm_90a cubin, and any failure only disables them. */
    st->wgmma = sm90a_module && allow_wgmma && d->cuTensorMapEncodeTiled != NULL;
    for (int i = 0; i < CUDA_GEMM_KERNELS; i++) {
        if (!cuda_gemm_kernel_sm90a[i]) continue;
        st->gemm_fn[i] = NULL;
        if (!st->wgmma) continue;
        CUfunction f = NULL;
        if (d->cuModuleGetFunction(&f, st->module, cuda_gemm_kernel_names[i]) != CUDA_SUCCESS ||
            d->cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, cuda_gemm_kernel_smem[i]) !=
                CUDA_SUCCESS) {
            st->wgmma = 0;
            continue;
        }
        st->gemm_fn[i] = f;
    }
    for (int i = 0; i < CUDA_GEMM_KERNELS; i++) {
        char what[160];
        if (cuda_gemm_kernel_sm90a[i]) continue;
        snprintf(what, sizeof what, "cuModuleGetFunction(%s)", cuda_gemm_kernel_names[i]);
        CHECK(d->cuModuleGetFunction(&st->gemm_fn[i], st->module, cuda_gemm_kernel_names[i]), what);
        if (cuda_gemm_kernel_smem[i] > 0) {
            snprintf(what, sizeof what, "cuFuncSetAttribute(%s, MAX_DYNAMIC_SHARED_SIZE_BYTES, %d)",
                     cuda_gemm_kernel_names[i], cuda_gemm_kernel_smem[i]);
            CHECK(d->cuFuncSetAttribute(st->gemm_fn[i], CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                        cuda_gemm_kernel_smem[i]),
                  what);
        }
    }

    for (int i = 0; i < CUDA_ROPE_KERNELS; i++) {
        char what[160];
        snprintf(what, sizeof what, "cuModuleGetFunction(%s)", cuda_rope_kernel_names[i]);
        CHECK(d->cuModuleGetFunction(&st->rope_fn[i], st->module, cuda_rope_kernel_names[i]), what);
    }

    for (int i = 0; i < CUDA_MOE_KERNELS; i++) {
        char what[160];
        snprintf(what, sizeof what, "cuModuleGetFunction(%s)", cuda_moe_kernel_names[i]);
        CHECK(d->cuModuleGetFunction(&st->moe_fn[i], st->module, cuda_moe_kernel_names[i]), what);
    }

    for (int i = 0; i < CUDA_ELEMENTWISE_KERNELS; i++) {
        char what[160];
        snprintf(what, sizeof what, "cuModuleGetFunction(%s)", cuda_elementwise_kernel_names[i]);
        CHECK(d->cuModuleGetFunction(&st->ew_fn[i], st->module, cuda_elementwise_kernel_names[i]), what);
    }

    /* mla kernels: all must exist; one whose shared memory the device refuses is only unusable. */
    st->mla_usable = 0;
    st->mla_sm90a_mask = 0;
    for (int i = 0; i < CUDA_MLA_KERNELS; i++) {
        if (cuda_mla_kernel_sm90a[i]) st->mla_sm90a_mask |= 1u << i;
        char what[160];
        snprintf(what, sizeof what, "cuModuleGetFunction(%s)", cuda_mla_kernel_names[i]);
        CHECK(d->cuModuleGetFunction(&st->mla_fn[i], st->module, cuda_mla_kernel_names[i]), what);
        /* an sm_90a kernel: only the one DSK4J_CUDA_MLA_KERNEL names, only from the sm_90a cubin;
         * the flash kernel also needs cuTensorMapEncodeTiled */
        if (cuda_mla_kernel_sm90a[i] && !(sm90a_module && mla_sm90a == cuda_mla_kernel_sm90a[i])) continue;
        if (cuda_mla_kernel_sm90a[i] == CUDA_MLA_FLASH && d->cuTensorMapEncodeTiled == NULL) continue;
        if (cuda_mla_kernel_smem[i] > 48 * 1024 &&
            d->cuFuncSetAttribute(st->mla_fn[i], CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                  cuda_mla_kernel_smem[i]) != CUDA_SUCCESS)
            continue;
        st->mla_usable |= 1u << i;
    }

#undef CHECK
    pushed = 0;
    rc = leave(st, DSK4J_OK);
    if (rc != DSK4J_OK) goto fail;
    ctx->cuda = st;
    return DSK4J_OK;

fail:
    if (pushed) {
        CUcontext popped;
        d->cuCtxPopCurrent(&popped);
    }
    destroy_state(st);
    return rc;
}

void cuda_close(dsk4j_context* ctx) {
    if (ctx == NULL || ctx->cuda == NULL) return;
    destroy_state(ctx->cuda);
    ctx->cuda = NULL;
}

int cuda_describe(char* buf, size_t cap, dsk4j_context* ctx) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    if (cap == 0) return DSK4J_OK;
    snprintf(buf, cap, "cuda:%d: %s, sm_%d%d, %s%s%s", st->ordinal, st->name, st->cc_major, st->cc_minor,
             st->module_kind,
             st->reference ? ", reference kernels" : st->wgmma ? ", fp8 gemm wgmma" : ", fp8 gemm mma.sync",
             st->reference ? "" : cuda_mla_sm90a_name(st->mla_usable & st->mla_sm90a_mask));
    return DSK4J_OK;
}

/* ---- memory ---- */

int cuda_mem_alloc(dsk4j_context* ctx, void** out, int64_t bytes) {
    cuda_state* st = state(ctx);
    *out = NULL;
    if (st == NULL) return NO_STATE();
    if (bytes < 0) return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "bytes: %lld is negative", (long long)bytes);
    int rc = enter(st);
    if (rc != DSK4J_OK) return rc;
    CUdeviceptr p = 0;
    CUresult r = st->d->cuMemAlloc(&p, bytes > 0 ? (size_t)bytes : 1);
    if (r != CUDA_SUCCESS) {
        char what[96];
        snprintf(what, sizeof what, "cuMemAlloc(%lld bytes)", (long long)bytes);
        rc = cu_fail(st, r, what);
    } else {
        rc = registry_add(st, p, (size_t)bytes);
        if (rc != DSK4J_OK) st->d->cuMemFree(p);
        else *out = (void*)(uintptr_t)p;
    }
    return leave(st, rc);
}

int cuda_mem_free(dsk4j_context* ctx, void* ptr) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    if (ptr == NULL) return DSK4J_OK;
    if (!registry_remove(st, dptr(ptr)))
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                          "ptr: %p is not a live buffer of this context (not from dsk4j_mem_alloc, or freed)",
                          ptr);
    int rc = enter(st);
    if (rc != DSK4J_OK) return rc;
    /* Work queued on the stream may still use the buffer. */
    CUresult r = st->d->cuStreamSynchronize(st->stream);
    if (r != CUDA_SUCCESS) rc = cu_fail(st, r, "cuStreamSynchronize (before cuMemFree)");
    r = st->d->cuMemFree(dptr(ptr));
    if (r != CUDA_SUCCESS && rc == DSK4J_OK) rc = cu_fail(st, r, "cuMemFree");
    return leave(st, rc);
}

int cuda_check_buffer(dsk4j_context* ctx, const void* ptr, int64_t bytes, const char* arg) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    if (ptr == NULL) return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: NULL device pointer", arg);
    if (bytes < 0) return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "%s: negative size %lld", arg, (long long)bytes);
    CUdeviceptr p = dptr(ptr);
    int ok = 0;
    pthread_mutex_lock(&st->lock);
    long i = find_floor(st, p);
    if (i >= 0) {
        const alloc_entry* a = &st->allocs[i];
        uint64_t off = p - a->base;
        ok = off <= a->size && (uint64_t)bytes <= a->size - off;
    }
    pthread_mutex_unlock(&st->lock);
    if (!ok)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT,
                          "%s: [%p, +%lld bytes) is not inside one live device buffer of this context",
                          arg, ptr, (long long)bytes);
    return DSK4J_OK;
}

int cuda_memcpy(dsk4j_context* ctx, void* dst, const void* src, int64_t bytes, int32_t dir) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    if (bytes <= 0) return DSK4J_OK;
    int rc = enter(st);
    if (rc != DSK4J_OK) return rc;
    const cuda_driver_api* d = st->d;
    CUresult r;
    const char* what;
    switch (dir) {
    case DSK4J_COPY_HOST_TO_DEVICE:
        r = d->cuMemcpyHtoDAsync(dptr(dst), src, (size_t)bytes, st->stream);
        what = "cuMemcpyHtoDAsync";
        break;
    case DSK4J_COPY_DEVICE_TO_HOST:
        r = d->cuMemcpyDtoHAsync(dst, dptr(src), (size_t)bytes, st->stream);
        what = "cuMemcpyDtoHAsync";
        break;
    case DSK4J_COPY_DEVICE_TO_DEVICE:
        r = d->cuMemcpyDtoDAsync(dptr(dst), dptr(src), (size_t)bytes, st->stream);
        what = "cuMemcpyDtoDAsync";
        break;
    default:
        return leave(st, dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "direction: unknown value %d", (int)dir));
    }
    if (r != CUDA_SUCCESS) rc = cu_fail(st, r, what);
    /* Synchronous for the host: wait for the copy (and the work queued before it) in any case,
     * so that no copy can still read or write host memory after we return. */
    CUresult s = d->cuStreamSynchronize(st->stream);
    if (s != CUDA_SUCCESS && rc == DSK4J_OK) rc = cu_fail(st, s, "cuStreamSynchronize (memcpy)");
    return leave(st, rc);
}

int cuda_memset(dsk4j_context* ctx, void* dst, int32_t value, int64_t bytes) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    if (bytes <= 0) return DSK4J_OK;
    int rc = enter(st);
    if (rc != DSK4J_OK) return rc;
    CUresult r = st->d->cuMemsetD8Async(dptr(dst), (unsigned char)value, (size_t)bytes, st->stream);
    if (r != CUDA_SUCCESS) rc = cu_fail(st, r, "cuMemsetD8Async");
    return leave(st, rc);
}

int cuda_synchronize(dsk4j_context* ctx) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    int rc = enter(st);
    if (rc != DSK4J_OK) return rc;
    CUresult r = st->d->cuStreamSynchronize(st->stream);
    if (r != CUDA_SUCCESS) rc = cu_fail(st, r, "cuStreamSynchronize");
    return leave(st, rc);
}

/* ---- launches ---- */

/* Blocks for `units` work items at `per_block` items per block: at least 1, at most
 * BLOCKS_PER_SM per multiprocessor (the kernels loop grid-stride over the rest). */
static unsigned grid_for(const cuda_state* st, int64_t units, int64_t per_block) {
    int64_t blocks = units / per_block + (units % per_block != 0);
    int64_t cap = (int64_t)st->sm_count * BLOCKS_PER_SM;
    if (blocks > cap) blocks = cap;
    if (blocks < 1) blocks = 1;
    return (unsigned)blocks;
}

static int launch(cuda_state* st, int op, unsigned grid, unsigned block, void** params) {
    int rc = enter(st);
    if (rc != DSK4J_OK) return rc;
    CUresult r = st->d->cuLaunchKernel(st->fn[op], grid, 1, 1, block, 1, 1, 0, st->stream, params, NULL);
    if (r != CUDA_SUCCESS) {
        char what[160];
        snprintf(what, sizeof what, "cuLaunchKernel(%s, grid %u, block %u)",
                 (st->reference ? REF_NAMES : FAST_NAMES)[op], grid, block);
        rc = cu_fail(st, r, what);
    }
    return leave(st, rc);
}

static int float_dtype(int32_t t) {
    return t == DSK4J_DTYPE_F32 || t == DSK4J_DTYPE_BF16 || t == DSK4J_DTYPE_F16 ||
           t == DSK4J_DTYPE_E4M3 || t == DSK4J_DTYPE_E5M2;
}

int cuda_fp8_cast(dsk4j_context* ctx, void* y, int32_t y_dtype, const void* x, int32_t x_dtype,
                  int64_t n) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    if (!float_dtype(y_dtype) || !float_dtype(x_dtype))
        return dsk4j_fail(DSK4J_ERR_UNSUPPORTED, "fp8.cast: dtypes %d -> %d not supported on cuda",
                          (int)x_dtype, (int)y_dtype);
    if (n <= 0) return DSK4J_OK;
    CUdeviceptr py = dptr(y), px = dptr(x);
    int yd = y_dtype, xd = x_dtype;
    long long nn = n;
    void* params[] = {&py, &yd, &px, &xd, &nn};
    unsigned grid = st->reference ? grid_for(st, n, THREADS) : grid_for(st, (n + 7) / 8, THREADS);
    return launch(st, OP_CAST, grid, THREADS, params);
}

int cuda_fp8_act_quant(dsk4j_context* ctx, uint8_t* y, float* scale, int64_t scale_rs,
                       int64_t scale_cs, const void* x, int32_t x_dtype, int64_t rows, int64_t k,
                       int32_t group, int32_t flags) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    if (x_dtype != DSK4J_DTYPE_F32 && x_dtype != DSK4J_DTYPE_BF16)
        return dsk4j_fail(DSK4J_ERR_UNSUPPORTED, "fp8.act_quant: x dtype %d not supported", (int)x_dtype);
    if (group <= 0 || k % group != 0)
        return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "fp8.act_quant: k %lld is not a multiple of group %d",
                          (long long)k, (int)group);
    if (rows <= 0 || k <= 0) return DSK4J_OK;
    CUdeviceptr py = dptr(y), ps = dptr(scale), px = dptr(x);
    long long rs = scale_rs, cs = scale_cs, r = rows, kk = k;
    int xd = x_dtype, g = group, fl = flags;
    void* params[] = {&py, &ps, &rs, &cs, &px, &xd, &r, &kk, &g, &fl};
    int64_t groups = rows * (k / group);
    if (st->reference) return launch(st, OP_ACT_QUANT, grid_for(st, groups, REF_THREADS), REF_THREADS, params);
    return launch(st, OP_ACT_QUANT, grid_for(st, groups, THREADS / 32), THREADS, params);
}

int cuda_fp8_weight_quant(dsk4j_context* ctx, uint8_t* y, float* scale_inv, const void* w,
                          int32_t w_dtype, int64_t n, int64_t k, int32_t block, int32_t flags) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    if (w_dtype != DSK4J_DTYPE_F32 && w_dtype != DSK4J_DTYPE_BF16)
        return dsk4j_fail(DSK4J_ERR_UNSUPPORTED, "fp8.weight_quant: w dtype %d not supported", (int)w_dtype);
    if (block <= 0) return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "fp8.weight_quant: block %d", (int)block);
    if (n <= 0 || k <= 0) return DSK4J_OK;
    CUdeviceptr py = dptr(y), ps = dptr(scale_inv), pw = dptr(w);
    long long nn = n, kk = k;
    int wd = w_dtype, b = block, fl = flags;
    void* params[] = {&py, &ps, &pw, &wd, &nn, &kk, &b, &fl};
    int64_t blocks = ((n + block - 1) / block) * ((k + block - 1) / block);
    if (st->reference) return launch(st, OP_WEIGHT_QUANT, grid_for(st, blocks, REF_THREADS), REF_THREADS, params);
    return launch(st, OP_WEIGHT_QUANT, grid_for(st, blocks, 1), WQ_THREADS, params);
}

int cuda_fp8_weight_dequant(dsk4j_context* ctx, void* y, int32_t y_dtype, const uint8_t* w,
                            const float* scale_inv, int64_t n, int64_t k, int32_t block) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    if (y_dtype != DSK4J_DTYPE_F32 && y_dtype != DSK4J_DTYPE_BF16)
        return dsk4j_fail(DSK4J_ERR_UNSUPPORTED, "fp8.weight_dequant: y dtype %d not supported", (int)y_dtype);
    if (block <= 0) return dsk4j_fail(DSK4J_ERR_INVALID_ARGUMENT, "fp8.weight_dequant: block %d", (int)block);
    if (n <= 0 || k <= 0) return DSK4J_OK;
    CUdeviceptr py = dptr(y), pw = dptr(w), ps = dptr(scale_inv);
    long long nn = n, kk = k;
    int yd = y_dtype, b = block;
    void* params[] = {&py, &yd, &pw, &ps, &nn, &kk, &b};
    unsigned grid = st->reference ? grid_for(st, n * k, THREADS) : grid_for(st, (n * k + 7) / 8, THREADS);
    return launch(st, OP_WEIGHT_DEQUANT, grid, THREADS, params);
}

/* ---- gemm launches (cuda_gemm.c) ---- */

int cuda_gemm_context_info(dsk4j_context* ctx, int* reference, int* sm_count, int* wgmma) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    *reference = st->reference;
    *sm_count = st->sm_count;
    *wgmma = st->wgmma;
    return DSK4J_OK;
}

int cuda_gemm_tensor_map(dsk4j_context* ctx, cuda_tensor_map* map, const void* base, long long inner,
                         long long rows, unsigned box_inner, unsigned box_rows) {
    cuda_state* st = state(ctx);
    if (st == NULL || st->d->cuTensorMapEncodeTiled == NULL) return -1;
    if (((uintptr_t)base & 15u) != 0 || inner <= 0 || rows <= 0 || inner % 16 != 0) return -1;
    memset(map, 0, sizeof *map);
    const unsigned long long dims[2] = {(unsigned long long)inner, (unsigned long long)rows};
    const unsigned long long strides[1] = {(unsigned long long)inner}; /* bytes between rows */
    const unsigned box[2] = {box_inner, box_rows};
    const unsigned elem_strides[2] = {1, 1};
    if (enter(st) != DSK4J_OK) return -1;
    CUresult r = st->d->cuTensorMapEncodeTiled(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, (void*)(uintptr_t)base, dims,
                                               strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                               CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                               CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    /* leave() may set an error only when the pop fails; then report failure too. */
    if (leave(st, DSK4J_OK) != DSK4J_OK) return -1;
    return r == CUDA_SUCCESS ? 0 : (int)r; /* the CUresult, > 0 */
}

int cuda_gemm_launch(dsk4j_context* ctx, int kernel, unsigned grid, unsigned block, void** params) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    if (kernel < 0 || kernel >= CUDA_GEMM_KERNELS)
        return dsk4j_fail(DSK4J_ERR_INTERNAL, "cuda gemm: no kernel %d", kernel);
    int rc = enter(st);
    if (rc != DSK4J_OK) return rc;
    const unsigned smem = (unsigned)cuda_gemm_kernel_smem[kernel];
    CUresult r = st->d->cuLaunchKernel(st->gemm_fn[kernel], grid, 1, 1, block, 1, 1, smem, st->stream, params, NULL);
    if (r != CUDA_SUCCESS) {
        char what[200];
        snprintf(what, sizeof what, "cuLaunchKernel(%s, grid %u, block %u, %u bytes shared)",
                 cuda_gemm_kernel_names[kernel], grid, block, smem);
        rc = cu_fail(st, r, what);
    }
    return leave(st, rc);
}


/* ---- rope launches (cuda_rope.c) ---- */

int cuda_rope_launch(dsk4j_context* ctx, int kernel, unsigned grid, unsigned block, void** params) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    if (kernel < 0 || kernel >= CUDA_ROPE_KERNELS)
        return dsk4j_fail(DSK4J_ERR_INTERNAL, "cuda rope: no kernel %d", kernel);
    int rc = enter(st);
    if (rc != DSK4J_OK) return rc;
    CUresult r = st->d->cuLaunchKernel(st->rope_fn[kernel], grid, 1, 1, block, 1, 1, 0, st->stream, params, NULL);
    if (r != CUDA_SUCCESS) {
        char what[200];
        snprintf(what, sizeof what, "cuLaunchKernel(%s, grid %u, block %u)", cuda_rope_kernel_names[kernel], grid, block);
        rc = cu_fail(st, r, what);
    }
    return leave(st, rc);
}


/* ---- mla launches and scratch (cuda_mla.c) ---- */

int cuda_mla_context_info(dsk4j_context* ctx, int* reference, int* sm_count, unsigned* usable) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    *reference = st->reference;
    *sm_count = st->sm_count < 1 ? 1 : st->sm_count;
    *usable = st->mla_usable;
    return DSK4J_OK;
}

int cuda_mla_launch(dsk4j_context* ctx, int kernel, unsigned grid, unsigned block, void** params) {
    return cuda_mla_launch2(ctx, kernel, grid, 1, block, params);
}

int cuda_mla_launch2(dsk4j_context* ctx, int kernel, unsigned grid, unsigned grid_y, unsigned block, void** params) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    if (kernel < 0 || kernel >= CUDA_MLA_KERNELS || !(st->mla_usable & (1u << kernel)))
        return dsk4j_fail(DSK4J_ERR_INTERNAL, "cuda mla: kernel %d is not usable", kernel);
    int rc = enter(st);
    if (rc != DSK4J_OK) return rc;
    const unsigned smem = (unsigned)cuda_mla_kernel_smem[kernel];
    CUresult r =
        st->d->cuLaunchKernel(st->mla_fn[kernel], grid, grid_y, 1, block, 1, 1, smem, st->stream, params, NULL);
    if (r != CUDA_SUCCESS) {
        char what[200];
        snprintf(what, sizeof what, "cuLaunchKernel(%s, grid %u x %u, block %u, %u bytes shared)",
                 cuda_mla_kernel_names[kernel], grid, grid_y, block, smem);
        rc = cu_fail(st, r, what);
    }
    return leave(st, rc);
}

int cuda_mla_scratch_acquire(dsk4j_context* ctx, int64_t bytes, void** out) {
    cuda_state* st = state(ctx);
    *out = NULL;
    if (st == NULL) return NO_STATE();
    if (bytes < 0) return dsk4j_fail(DSK4J_ERR_INTERNAL, "cuda scratch: negative size %lld", (long long)bytes);
    pthread_mutex_lock(&st->scratch_lock);
    if ((uint64_t)bytes > st->scratch_bytes) {
        int rc = enter(st);
        if (rc != DSK4J_OK) {
            pthread_mutex_unlock(&st->scratch_lock);
            return rc;
        }
        /* Queued kernels may still use the old scratch. */
        CUresult r = st->d->cuStreamSynchronize(st->stream);
        if (r != CUDA_SUCCESS) rc = cu_fail(st, r, "cuStreamSynchronize (before growing the mla scratch)");
        if (rc == DSK4J_OK && st->scratch != 0) {
            r = st->d->cuMemFree(st->scratch);
            st->scratch = 0;
            st->scratch_bytes = 0;
            if (r != CUDA_SUCCESS) rc = cu_fail(st, r, "cuMemFree (mla scratch)");
        }
        if (rc == DSK4J_OK) {
            /* Round up to 1 MiB so that slowly growing calls do not reallocate every time. */
            const size_t want = ((size_t)bytes + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
            CUdeviceptr p = 0;
            r = st->d->cuMemAlloc(&p, want);
            if (r != CUDA_SUCCESS) {
                char what[96];
                snprintf(what, sizeof what, "cuMemAlloc(%zu bytes of mla scratch)", want);
                rc = cu_fail(st, r, what);
            } else {
                st->scratch = p;
                st->scratch_bytes = want;
            }
        }
        rc = leave(st, rc);
        if (rc != DSK4J_OK) {
            pthread_mutex_unlock(&st->scratch_lock);
            return rc;
        }
    }
    *out = (void*)(uintptr_t)st->scratch;
    return DSK4J_OK;
}

void cuda_mla_scratch_release(dsk4j_context* ctx) {
    cuda_state* st = state(ctx);
    if (st != NULL) pthread_mutex_unlock(&st->scratch_lock);
}


/* ---- moe launches (cuda_moe.c) ---- */

int cuda_moe_launch(dsk4j_context* ctx, int kernel, unsigned grid, unsigned block, unsigned smem, void** params) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    if (kernel < 0 || kernel >= CUDA_MOE_KERNELS)
        return dsk4j_fail(DSK4J_ERR_INTERNAL, "cuda moe: no kernel %d", kernel);
    if (smem > 48u * 1024u)
        return dsk4j_fail(DSK4J_ERR_INTERNAL, "cuda moe: %u bytes of dynamic shared memory for %s (at most 48 KiB)", smem,
                          cuda_moe_kernel_names[kernel]);
    int rc = enter(st);
    if (rc != DSK4J_OK) return rc;
    CUresult r = st->d->cuLaunchKernel(st->moe_fn[kernel], grid, 1, 1, block, 1, 1, smem, st->stream, params, NULL);
    if (r != CUDA_SUCCESS) {
        char what[200];
        snprintf(what, sizeof what, "cuLaunchKernel(%s, grid %u, block %u, %u bytes shared)", cuda_moe_kernel_names[kernel],
                 grid, block, smem);
        rc = cu_fail(st, r, what);
    }
    return leave(st, rc);
}


/* ---- elementwise launches (cuda_elementwise.c) ---- */

int cuda_elementwise_launch(dsk4j_context* ctx, int kernel, unsigned grid, unsigned block, void** params) {
    cuda_state* st = state(ctx);
    if (st == NULL) return NO_STATE();
    if (kernel < 0 || kernel >= CUDA_ELEMENTWISE_KERNELS)
        return dsk4j_fail(DSK4J_ERR_INTERNAL, "cuda elementwise: no kernel %d", kernel);
    int rc = enter(st);
    if (rc != DSK4J_OK) return rc;
    CUresult r = st->d->cuLaunchKernel(st->ew_fn[kernel], grid, 1, 1, block, 1, 1, 0, st->stream, params, NULL);
    if (r != CUDA_SUCCESS) {
        char what[200];
        snprintf(what, sizeof what, "cuLaunchKernel(%s, grid %u, block %u)", cuda_elementwise_kernel_names[kernel], grid,
                 block);
        rc = cu_fail(st, r, what);
    }
    return leave(st, rc);
}
