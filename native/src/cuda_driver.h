/* cuda_driver.h - the CUDA driver API, loaded at run time with dlopen("libcuda.so.1").
 * Declares by hand the few driver types and constants dsk4j uses, so that the library
 * builds without the CUDA toolkit (values as in the toolkit's cuda.h). */
#ifndef DSK4J_CUDA_DRIVER_H
#define DSK4J_CUDA_DRIVER_H

#include <stddef.h>
#include <stdint.h>

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

/* CUtensorMap (CUDA 12+): 128 opaque bytes, 64-byte aligned; the CUtensorMap* enums as ints. */
typedef struct {
    _Alignas(64) unsigned long long opaque[16];
} cuda_tensor_map;
_Static_assert(sizeof(cuda_tensor_map) == 128, "CUtensorMap is 128 bytes");
#define CU_TENSOR_MAP_DATA_TYPE_UINT8 0
#define CU_TENSOR_MAP_INTERLEAVE_NONE 0
#define CU_TENSOR_MAP_SWIZZLE_128B 3
#define CU_TENSOR_MAP_L2_PROMOTION_L2_256B 3
#define CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE 0

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
    /* Optional (NULL when the driver lacks it, before CUDA 12): the sm_90a gemm needs it. */
    CUresult (*cuTensorMapEncodeTiled)(cuda_tensor_map* map, int data_type, unsigned rank, void* global_address,
                                       const unsigned long long* global_dim,
                                       const unsigned long long* global_strides, const unsigned* box_dim,
                                       const unsigned* element_strides, int interleave, int swizzle,
                                       int l2_promotion, int oob_fill);
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
 * and dynamic shared memory bytes (> 48 KiB allowed: cuda_open raises the function's limit).
 * The kernels with cuda_gemm_kernel_sm90a[i] set are looked up only when the sm_90a cubin is
 * the loaded module (elsewhere they are traps); a failure there only disables them. */
#define CUDA_GEMM_KERNELS 11
extern const char* const cuda_gemm_kernel_names[CUDA_GEMM_KERNELS];
extern const int cuda_gemm_kernel_smem[CUDA_GEMM_KERNELS];
extern const int cuda_gemm_kernel_sm90a[CUDA_GEMM_KERNELS];

/* *reference: 1 if the context runs the reference kernels; *sm_count: multiprocessors;
 * *wgmma: 1 if the sm_90a kernels are usable (sm_90a cubin loaded, the driver has
 * cuTensorMapEncodeTiled, their shared memory limit raised, DSK4J_CUDA_GEMM_KERNEL != mma). */
int cuda_gemm_context_info(struct dsk4j_context* ctx, int* reference, int* sm_count, int* wgmma);
/* (Used by cuda_gemm.c and by cuda_mla.c for the flash mla decode kernel.)
 * Encodes a 2-D uint8 tensor map of a row-major [rows][inner] byte matrix at base (16-byte
 * aligned, inner % 16 == 0), box [box_rows][box_inner] with 128-byte swizzle, zero fill out of
 * bounds. Returns 0 on success, the CUresult (> 0) when the driver refuses, -1 when the entry
 * point is missing, the arguments break those rules or popping the CUDA context fails (the
 * error state is untouched unless the pop fails). */
int cuda_gemm_tensor_map(struct dsk4j_context* ctx, cuda_tensor_map* map, const void* base, long long inner,
                         long long rows, unsigned box_inner, unsigned box_rows);
/* Launches gemm kernel `kernel` (grid x 1 x 1, block threads, its dynamic shared memory) on
 * the context's stream; DSK4J_OK or the driver error. */
int cuda_gemm_launch(struct dsk4j_context* ctx, int kernel, unsigned grid, unsigned block, void** params);


/* ---- between cuda_backend.c (module, launches) and cuda_rope.c (rope host code) ---- */

/* The rope kernels, looked up by cuda_open (both, whatever the flags); no dynamic shared memory. */
#define CUDA_ROPE_KERNELS 2
extern const char* const cuda_rope_kernel_names[CUDA_ROPE_KERNELS];
/* Launches rope kernel `kernel` (grid x 1 x 1, block threads) on the context's stream. */
int cuda_rope_launch(struct dsk4j_context* ctx, int kernel, unsigned grid, unsigned block, void** params);


/* ---- between cuda_backend.c (module, launches, scratch) and cuda_mla.c (mla host code) ---- */

/* The mla kernels, looked up by cuda_open (all of them, whatever the flags): index -> name and
 * dynamic shared memory bytes. A kernel needing more than 48 KiB gets its limit raised at open;
 * where the device refuses (less shared memory per block), that kernel is marked unusable
 * (cuda_mla_context_info) rather than failing the open. */
#define CUDA_MLA_KERNELS 11
extern const char* const cuda_mla_kernel_names[CUDA_MLA_KERNELS];
extern const int cuda_mla_kernel_smem[CUDA_MLA_KERNELS];
/* Kernels with a body only in the sm_90a cubin (traps elsewhere): cuda_mla_kernel_sm90a[i] is 0
 * for the others, else the DSK4J_CUDA_MLA_KERNEL value that selects kernel i: CUDA_MLA_WGMMA
 * ("wgmma") or CUDA_MLA_FLASH ("flash"; it also needs cuTensorMapEncodeTiled). Kernel i is usable
 * only when the sm_90a cubin is the loaded module and the variable names it (read at context
 * open; unset, "", "auto" or "mma" keep the mla decode on mma.sync; another value fails the
 * open). */
#define CUDA_MLA_WGMMA 1
#define CUDA_MLA_FLASH 2
extern const int cuda_mla_kernel_sm90a[CUDA_MLA_KERNELS];
/* For cuda_describe: ", mla decode wgmma" / ", mla decode flash" when `usable_sm90a` (the usable
 * mask restricted to the sm_90a kernels) holds that kernel, else "". */
const char* cuda_mla_sm90a_name(unsigned usable_sm90a);
/* *reference, *sm_count as cuda_gemm_context_info; *usable: bit i set when mla kernel i may be
 * launched (its shared memory was granted). */
int cuda_mla_context_info(struct dsk4j_context* ctx, int* reference, int* sm_count, unsigned* usable);
/* Launches mla kernel `kernel` (grid x 1 x 1, block threads, its dynamic shared memory) on the
 * context's stream; DSK4J_OK or the driver error. */
int cuda_mla_launch(struct dsk4j_context* ctx, int kernel, unsigned grid, unsigned block, void** params);
/* The same with a grid_x x grid_y x 1 grid. */
int cuda_mla_launch2(struct dsk4j_context* ctx, int kernel, unsigned grid_x, unsigned grid_y, unsigned block,
                     void** params);
/* The context's device scratch (grown on demand, freed at close): *out gets >= bytes of device
 * memory. On DSK4J_OK the scratch lock is held until cuda_mla_scratch_release (call it after
 * queueing the kernels that use the scratch: work on the context's one stream is ordered, so the
 * next user may reuse it at once; growing it first waits for the stream). On an error the lock
 * is not held. */
int cuda_mla_scratch_acquire(struct dsk4j_context* ctx, int64_t bytes, void** out);
void cuda_mla_scratch_release(struct dsk4j_context* ctx);


/* ---- between cuda_backend.c (module, launches) and cuda_moe.c (moe host code) ---- */

/* The moe kernels, looked up by cuda_open (all of them, whatever the flags); dynamic shared
 * memory <= 48 KiB, given per launch. */
#define CUDA_MOE_KERNELS 15
extern const char* const cuda_moe_kernel_names[CUDA_MOE_KERNELS];
/* Launches moe kernel `kernel` (grid x 1 x 1, block threads, smem bytes of dynamic shared
 * memory) on the context's stream; DSK4J_OK or the driver error. */
int cuda_moe_launch(struct dsk4j_context* ctx, int kernel, unsigned grid, unsigned block, unsigned smem,
                    void** params);

/* ---- between cuda_backend.c (module, launches) and cuda_elementwise.c (elementwise host code) ---- */

/* The elementwise kernels, looked up by cuda_open (all of them, whatever the flags); no dynamic
 * shared memory. */
#define CUDA_ELEMENTWISE_KERNELS 6
extern const char* const cuda_elementwise_kernel_names[CUDA_ELEMENTWISE_KERNELS];
/* Launches elementwise kernel `kernel` (grid x 1 x 1, block threads) on the context's stream;
 * DSK4J_OK or the driver error. */
int cuda_elementwise_launch(struct dsk4j_context* ctx, int kernel, unsigned grid, unsigned block, void** params);

#endif
