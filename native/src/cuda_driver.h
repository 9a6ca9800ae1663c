/* cuda_driver.h - the CUDA driver API, loaded at run time with dlopen("libcuda.so.1").
 * Declares by hand the few driver types and constants dsk4j uses, so that the library
 * builds without the CUDA toolkit (values as in the toolkit's cuda.h). */
#ifndef DSK4J_CUDA_DRIVER_H
#define DSK4J_CUDA_DRIVER_H

#include <stddef.h>

typedef int CUresult; /* 0 = CUDA_SUCCESS */
typedef int CUdevice;
typedef unsigned long long CUdeviceptr; /* CUdeviceptr_v2, 64-bit */
typedef struct CUctx_st* CUcontext;
typedef struct CUmod_st* CUmodule;
typedef struct CUfunc_st* CUfunction;
typedef struct CUstream_st* CUstream;
typedef int CUjit_option;
typedef int CUdevice_attribute;
typedef int CUpointer_attribute;
typedef int CUfunction_attribute;

#define CUDA_SUCCESS 0
#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT 16
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR 75
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR 76
#define CU_POINTER_ATTRIBUTE_CONTEXT 1
#define CU_JIT_INFO_LOG_BUFFER 3
#define CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES 4
#define CU_JIT_ERROR_LOG_BUFFER 5
#define CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES 6
#define CU_STREAM_NON_BLOCKING 1
#define CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES 8

/* The resolved entry points (versioned names where the driver exports several). */
typedef struct {
    CUresult (*cuInit)(unsigned int flags);
    CUresult (*cuDriverGetVersion)(int* version);
    CUresult (*cuGetErrorName)(CUresult error, const char** str);
    CUresult (*cuGetErrorString)(CUresult error, const char** str);
    CUresult (*cuDeviceGetCount)(int* count);
    CUresult (*cuDeviceGet)(CUdevice* device, int ordinal);
    CUresult (*cuDeviceGetName)(char* name, int len, CUdevice dev);
    CUresult (*cuDeviceGetAttribute)(int* value, CUdevice_attribute attrib, CUdevice dev);
    CUresult (*cuDevicePrimaryCtxRetain)(CUcontext* ctx, CUdevice dev);      /* plain */
    CUresult (*cuDevicePrimaryCtxRelease)(CUdevice dev);                     /* _v2 */
    CUresult (*cuCtxSetCurrent)(CUcontext ctx);
    CUresult (*cuCtxPushCurrent)(CUcontext ctx);                              /* _v2 */
    CUresult (*cuCtxPopCurrent)(CUcontext* ctx);                              /* _v2 */
    CUresult (*cuMemAlloc)(CUdeviceptr* dptr, size_t bytes);                  /* _v2 */
    CUresult (*cuMemFree)(CUdeviceptr dptr);                                  /* _v2 */
    CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr dst, const void* src, size_t bytes, CUstream s); /* _v2 */
    CUresult (*cuMemcpyDtoHAsync)(void* dst, CUdeviceptr src, size_t bytes, CUstream s);       /* _v2 */
    CUresult (*cuMemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s); /* _v2 */
    CUresult (*cuMemsetD8Async)(CUdeviceptr dst, unsigned char value, size_t n, CUstream s);
    CUresult (*cuStreamCreate)(CUstream* stream, unsigned int flags);
    CUresult (*cuStreamSynchronize)(CUstream stream);
    CUresult (*cuStreamDestroy)(CUstream stream);                             /* _v2 */
    CUresult (*cuModuleLoadDataEx)(CUmodule* module, const void* image, unsigned int n_options,
                                   CUjit_option* options, void** option_values);
    CUresult (*cuModuleGetFunction)(CUfunction* fn, CUmodule module, const char* name);
    CUresult (*cuModuleUnload)(CUmodule module);
    CUresult (*cuLaunchKernel)(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                               unsigned int bx, unsigned int by, unsigned int bz,
                               unsigned int shared_bytes, CUstream stream, void** params,
                               void** extra);
    CUresult (*cuPointerGetAttribute)(void* data, CUpointer_attribute attribute, CUdeviceptr ptr);
    CUresult (*cuFuncSetAttribute)(CUfunction fn, CUfunction_attribute attrib, int value);
} cuda_driver_api;

/* Loads the driver and runs cuInit(0), once per process (thread-safe). On success sets *out
 * and returns DSK4J_OK; otherwise DSK4J_ERR_UNAVAILABLE with the dlopen / cuInit text. */
int cuda_driver_get(const cuda_driver_api** out);

/* Sets the error "<what>: <CUDA_ERROR_NAME> (<driver description>)" and returns code. */
int cuda_driver_fail(int code, CUresult result, const char* what);

/* Writes "<CUDA_ERROR_NAME>: <description>" of result into buf (never fails). */
void cuda_driver_error_text(char* buf, size_t cap, CUresult result);

/* ---- between cuda_backend.c (module, stream, launches) and cuda_gemm.c (gemm host code) ---- */
struct dsk4j_context;

/* The gemm kernels, looked up by cuda_open (all of them, whatever the flags): index -> name
 * and dynamic shared memory bytes (> 48 KiB allowed: cuda_open raises the function's limit). */
#define CUDA_GEMM_KERNELS 7
extern const char* const cuda_gemm_kernel_names[CUDA_GEMM_KERNELS];
extern const int cuda_gemm_kernel_smem[CUDA_GEMM_KERNELS];

/* *reference: 1 if the context runs the reference kernels; *sm_count: multiprocessors. */
int cuda_gemm_context_info(struct dsk4j_context* ctx, int* reference, int* sm_count);
/* Launches gemm kernel `kernel` (grid x 1 x 1, block threads, its dynamic shared memory) on
 * the context's stream; DSK4J_OK or the driver error. */
int cuda_gemm_launch(struct dsk4j_context* ctx, int kernel, unsigned grid, unsigned block, void** params);


/* ---- between cuda_backend.c (module, launches) and cuda_rope.c (rope host code) ---- */

/* The rope kernels, looked up by cuda_open (both, whatever the flags); no dynamic shared memory. */
#define CUDA_ROPE_KERNELS 2
extern const char* const cuda_rope_kernel_names[CUDA_ROPE_KERNELS];
/* Launches rope kernel `kernel` (grid x 1 x 1, block threads) on the context's stream. */
int cuda_rope_launch(struct dsk4j_context* ctx, int kernel, unsigned grid, unsigned block, void** params);

#endif
