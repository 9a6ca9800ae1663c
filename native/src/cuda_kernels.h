/* cuda_kernels.h - the GPU kernel images embedded in libdsk4j.so (built by kernels-ptx/build.sh,
 * embedded by cmake/kernels.cmake, which generates the definitions). Names: "sm_90a.cubin",
 * "sm_89.cubin", "compute_80.ptx"; a PTX image is followed by a NUL byte (not counted in
 * size). dsk4j_kernel_image_count is 0 when the library was built without nvcc. */
#ifndef DSK4J_CUDA_KERNELS_H
#define DSK4J_CUDA_KERNELS_H

#include <stddef.h>

typedef struct {
    const char* name;
    const unsigned char* data;
    size_t size;
} dsk4j_kernel_image;

extern const dsk4j_kernel_image dsk4j_kernel_images[] __attribute__((visibility("hidden")));
extern const int dsk4j_kernel_image_count __attribute__((visibility("hidden")));

#endif
