/* cuda_driver.c - loads libcuda.so.1 at run time (no link-time CUDA dependency). */
#include "cuda_driver.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static cuda_driver_api g_api;
static int g_status = DSK4J_ERR_INTERNAL; /* result of the one load attempt */
static char g_message[768];               /* its error text when g_status != DSK4J_OK */

static void copy_text(char* dst, size_t cap, const char* src) {
    snprintf(dst, cap, "%s", src ? src : "(no message)");
}

void cuda_driver_error_text(char* buf, size_t cap, CUresult result) {
    const char* name = NULL;
    const char* text = NULL;
    if (g_api.cuGetErrorName == NULL || g_api.cuGetErrorName(result, &name) != CUDA_SUCCESS)
        name = NULL;
    if (g_api.cuGetErrorString == NULL || g_api.cuGetErrorString(result, &text) != CUDA_SUCCESS)
        text = NULL;
    snprintf(buf, cap, "%s (%s)", name ? name : "CUDA_ERROR_UNKNOWN_CODE",
             text ? text : "no description from the driver");
    if (name == NULL) {
        size_t len = strlen(buf);
        if (len < cap) snprintf(buf + len, cap - len, " [code %d]", (int)result);
    }
}

int cuda_driver_fail(int code, CUresult result, const char* what) {
    char text[384];
    cuda_driver_error_text(text, sizeof text, result);
    return dsk4j_fail(code, "%s: %s", what, text);
}

/* Resolves one symbol; on failure records the message and returns 0. */
static int resolve(void* lib, const char* name, void** slot) {
    dlerror();
    void* p = dlsym(lib, name);
    if (p == NULL) {
        const char* err = dlerror();
        snprintf(g_message, sizeof g_message,
                 "CUDA driver too old or broken: libcuda.so.1 lacks %s (%s)", name,
                 err ? err : "symbol is NULL");
        return 0;
    }
    *slot = p;
    return 1;
}

static void load_once(void) {
    dlerror();
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char* err = dlerror();
        snprintf(g_message, sizeof g_message, "CUDA driver not available: %s",
                 err ? err : "dlopen(\"libcuda.so.1\") failed");
        g_status = DSK4J_ERR_UNAVAILABLE;
        return;
    }
    cuda_driver_api api;
    memset(&api, 0, sizeof api);
    /* Function pointers are stored through void** slots (POSIX guarantees the round trip). */
#define RESOLVE(field, sym)                                                                    \
    if (!resolve(lib, sym, (void**)&api.field)) {                                              \
        g_status = DSK4J_ERR_UNAVAILABLE;                                                      \
        return; /* the library stays loaded: harmless, and never unloaded while in use */      \
    }
    RESOLVE(cuInit, "cuInit");
    RESOLVE(cuDriverGetVersion, "cuDriverGetVersion");
    RESOLVE(cuGetErrorName, "cuGetErrorName");
    RESOLVE(cuGetErrorString, "cuGetErrorString");
    RESOLVE(cuDeviceGetCount, "cuDeviceGetCount");
    RESOLVE(cuDeviceGet, "cuDeviceGet");
    RESOLVE(cuDeviceGetName, "cuDeviceGetName");
    RESOLVE(cuDeviceGetAttribute, "cuDeviceGetAttribute");
    RESOLVE(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    RESOLVE(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    RESOLVE(cuCtxSetCurrent, "cuCtxSetCurrent");
    RESOLVE(cuCtxPushCurrent, "cuCtxPushCurrent_v2");
    RESOLVE(cuCtxPopCurrent, "cuCtxPopCurrent_v2");
    RESOLVE(cuMemAlloc, "cuMemAlloc_v2");
    RESOLVE(cuMemFree, "cuMemFree_v2");
    RESOLVE(cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
    RESOLVE(cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
    RESOLVE(cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2");
    RESOLVE(cuMemsetD8Async, "cuMemsetD8Async");
    RESOLVE(cuStreamCreate, "cuStreamCreate");
    RESOLVE(cuStreamSynchronize, "cuStreamSynchronize");
    RESOLVE(cuStreamDestroy, "cuStreamDestroy_v2");
    RESOLVE(cuModuleLoadDataEx, "cuModuleLoadDataEx");
    RESOLVE(cuModuleGetFunction, "cuModuleGetFunction");
    RESOLVE(cuModuleUnload, "cuModuleUnload");
    RESOLVE(cuLaunchKernel, "cuLaunchKernel");
    RESOLVE(cuPointerGetAttribute, "cuPointerGetAttribute");
    RESOLVE(cuFuncSetAttribute, "cuFuncSetAttribute");
#undef RESOLVE
    /* Optional: without it the sm_90a gemm is not used (dlsym NULL leaves the slot NULL). */
    dlerror();
    *(void**)&api.cuTensorMapEncodeTiled = dlsym(lib, "cuTensorMapEncodeTiled");
    dlerror();
    /* Error names are needed for the cuInit message below. */
    g_api.cuGetErrorName = api.cuGetErrorName;
    g_api.cuGetErrorString = api.cuGetErrorString;
    CUresult r = api.cuInit(0);
    if (r != CUDA_SUCCESS) {
        char text[384];
        cuda_driver_error_text(text, sizeof text, r);
        snprintf(g_message, sizeof g_message, "CUDA driver not usable: cuInit failed: %s", text);
        g_status = DSK4J_ERR_UNAVAILABLE;
        return;
    }
    g_api = api;
    g_status = DSK4J_OK;
}

int cuda_driver_get(const cuda_driver_api** out) {
    *out = NULL;
    int rc = pthread_once(&g_once, load_once);
    if (rc != 0) return dsk4j_fail(DSK4J_ERR_INTERNAL, "pthread_once failed (%d)", rc);
    if (g_status != DSK4J_OK) {
        char msg[sizeof g_message];
        copy_text(msg, sizeof msg, g_message);
        return dsk4j_fail(g_status, "%s", msg);
    }
    *out = &g_api;
    return DSK4J_OK;
}
