// rope_reference.cu - the GPU reference of rope.apply (DESIGN.md 4.3): a plain, obviously correct
// kernel. One thread per rotated pair, grid-stride loop, 64-bit indices. For pair (x0, x1) of the
// layout (interleaved: x[2j], x[2j+1]; neox: x[j], x[j + dim/2]) of token t, p = positions[t],
// c = cos_t[p, j], s = sin_t[p, j], in f32 with exactly the roundings of every backend:
//   y0 = fma(x0, c, -(x1 * s)),  y1 = fma(x1, c, x0 * s)
// y may be x (in place: each pair is read, then written, by one thread). The host checked every
// position; one outside [0, max_seq_len) would leave its token unwritten, never read outside
// the table. Parameter order equals the fast kernel's (rope.cu) but for its `vec`.
#include "fp8_convert.cuh"

#define DSK4J_ROPE_NEOX 1

__device__ __forceinline__ void dsk4j_rope_pair(float x0, float x1, float c, float s, float& y0, float& y1) {
    y0 = __fmaf_rn(x0, c, -__fmul_rn(x1, s));
    y1 = __fmaf_rn(x1, c, __fmul_rn(x0, s));
}

extern "C" __global__ void dsk4j_ref_rope_apply(void* y, const void* x, int dtype, const int* positions,
                                                const float* cos_t, const float* sin_t, long long tokens,
                                                long long heads, long long dim, long long max_seq_len,
                                                int layout) {
    const long long half = dim / 2;
    for (long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x; q < tokens * heads * half;
         q += (long long)gridDim.x * blockDim.x) {
        const long long row = q / half, j = q % half, t = row / heads;
        const int p = positions[t];
        if (p < 0 || p >= max_seq_len) continue;
        const long long i0 = layout == DSK4J_ROPE_NEOX ? row * dim + j : row * dim + 2 * j;
        const long long i1 = layout == DSK4J_ROPE_NEOX ? i0 + half : i0 + 1;
        float y0, y1;
        dsk4j_rope_pair(dsk4j_load_as_f32(x, dtype, i0), dsk4j_load_as_f32(x, dtype, i1), cos_t[p * half + j],
                        sin_t[p * half + j], y0, y1);
        dsk4j_store_from_f32(y, dtype, i0, y0);
        dsk4j_store_from_f32(y, dtype, i1, y1);
    }
}
