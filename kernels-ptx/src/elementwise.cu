// elementwise.cu - the elementwise ops (dsk4j.h elementwise.*: rmsnorm, add, silu_mul, embed,
// copy_columns; gather_rows runs moe.gather) on the GPU. 64-bit indices; every loop strides over its
// work, so any grid is correct. Every rounding is explicit (__dmul_rn, __dadd_rn, __ddiv_rn, __fadd_rn) so that
// nvcc cannot contract or reorder it.
//
// rmsnorm has a reference and a fast kernel (chosen per DSK4J_CUDA_REFERENCE_KERNELS):
//   dsk4j_ref_rmsnorm: one thread per row, ss summed in double in ascending column order: exactly
//       the cpu's formula, so the same bits as the cpu backend.
//   dsk4j_rmsnorm: one block of DSK4J_EW_RMS_THREADS per row; each thread sums its strided columns
//       in double, then a tree reduction in double in shared memory. The order of the double sum
//       differs from the cpu's, so ss (and then a result) may differ in the last bit of a double
//       before the f32 rounding: in rare cases one f32 ulp.
// The pure maps have one plain grid-stride kernel each, which is both the reference and the fast
// kernel (one element per thread per step; they are bound by memory):
//   dsk4j_ew_add:          y = a + b (f32).
//   dsk4j_ew_silu_mul:     y = (float)((z / (1 + exp(-z))) * u), z = g, in double (CUDA's f64 exp,
//                          within 1 ulp: rarely one f32 ulp from the cpu's glibc exp).
//   dsk4j_ew_embed:        y[t, i] = convert(table[ids[t], i]); an id outside [0, vocab) writes 0.
//   dsk4j_ew_copy_columns: dst[r, dst_col0 + j] = src[r, src_col0 + j], element bits (1, 2 or 4 bytes).
// gather_rows has no kernel here: it is moe.gather with top_k = 1 (moe.cu dsk4j_moe_gather).
// In-place use (y == x for rmsnorm, y == a / b, y == g / u): every element is read before it is
// written by the same thread (rmsnorm fast: the whole row is read into the sum before any thread of
// the block writes, separated by __syncthreads), so no __restrict__ on those pointers.
#include "fp8_convert.cuh"

#define DSK4J_EW_RMS_THREADS 256

#define DSK4J_EW_STRIDE(i, n)                                                                 \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n);            \
         i += (long long)gridDim.x * blockDim.x)

__device__ __forceinline__ float dsk4j_ew_ld(const void* p, int dt, long long i) {
    return dt == DSK4J_DT_F32 ? ((const float*)p)[i] : dsk4j_bf16_to_f32(((const uint16_t*)p)[i]);
}

__device__ __forceinline__ void dsk4j_ew_st(void* p, int dt, long long i, float v) {
    if (dt == DSK4J_DT_F32) ((float*)p)[i] = v;
    else ((uint16_t*)p)[i] = dsk4j_f32_to_bf16(v);
}

// y[yo + i] = (float)(((double)x_i * inv) * (double)w_i)
__device__ __forceinline__ void dsk4j_ew_rms_store(void* y, const void* x, const float* w, int dt, long long xo,
                                                   long long yo, long long i, double inv) {
    const double v = (double)dsk4j_ew_ld(x, dt, xo + i);
    dsk4j_ew_st(y, dt, yo + i, __double2float_rn(__dmul_rn(__dmul_rn(v, inv), (double)w[i])));
}

// inv = 1.0 / sqrt(ss / d + eps)
__device__ __forceinline__ double dsk4j_ew_rms_inv(double ss, long long d, double eps) {
    return __ddiv_rn(1.0, __dsqrt_rn(__dadd_rn(__ddiv_rn(ss, (double)d), eps)));
}

// rmsnorm, reference: one thread per row r of x [rows, ldx] (first d columns) -> y [rows, d].
extern "C" __global__ void dsk4j_ref_rmsnorm(void* y, const void* x, const float* w, int dtype, long long rows,
                                             long long d, long long ldx, double eps) {
    DSK4J_EW_STRIDE(r, rows) {
        const long long xo = r * ldx, yo = r * d;
        double ss = 0.0;
        for (long long i = 0; i < d; i++) {
            const double v = (double)dsk4j_ew_ld(x, dtype, xo + i);
            ss = __dadd_rn(ss, __dmul_rn(v, v));
        }
        const double inv = dsk4j_ew_rms_inv(ss, d, eps);
        for (long long i = 0; i < d; i++) dsk4j_ew_rms_store(y, x, w, dtype, xo, yo, i, inv);
    }
}

// rmsnorm, fast: a block per row, double partial sums, tree reduction in shared memory.
extern "C" __global__ void __launch_bounds__(DSK4J_EW_RMS_THREADS)
dsk4j_rmsnorm(void* y, const void* x, const float* w, int dtype, long long rows, long long d, long long ldx,
              double eps) {
    __shared__ double part[DSK4J_EW_RMS_THREADS];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const long long xo = r * ldx, yo = r * d;
        double ss = 0.0;
        for (long long i = threadIdx.x; i < d; i += DSK4J_EW_RMS_THREADS) {
            const double v = (double)dsk4j_ew_ld(x, dtype, xo + i);
            ss = __dadd_rn(ss, __dmul_rn(v, v));
        }
        part[threadIdx.x] = ss;
        __syncthreads();
#pragma unroll
        for (int o = DSK4J_EW_RMS_THREADS / 2; o > 0; o >>= 1) {
            if ((int)threadIdx.x < o) part[threadIdx.x] = __dadd_rn(part[threadIdx.x], part[threadIdx.x + o]);
            __syncthreads();
        }
        const double inv = dsk4j_ew_rms_inv(part[0], d, eps);
        __syncthreads(); // every thread has read part[0] before the next row overwrites it
        for (long long i = threadIdx.x; i < d; i += DSK4J_EW_RMS_THREADS) dsk4j_ew_rms_store(y, x, w, dtype, xo, yo, i, inv);
    }
}

// add: y[i] = a[i] + b[i] in f32.
extern "C" __global__ void dsk4j_ew_add(void* y, const void* a, const void* b, int dtype, long long n) {
    DSK4J_EW_STRIDE(i, n) dsk4j_ew_st(y, dtype, i, __fadd_rn(dsk4j_ew_ld(a, dtype, i), dsk4j_ew_ld(b, dtype, i)));
}

// silu_mul: y[i] = (float)((z / (1 + exp(-z))) * u) in double, z = g[i], u = u[i].
extern "C" __global__ void dsk4j_ew_silu_mul(void* y, const void* g, const void* u, int dtype, long long n) {
    DSK4J_EW_STRIDE(i, n) {
        const double z = (double)dsk4j_ew_ld(g, dtype, i), v = (double)dsk4j_ew_ld(u, dtype, i);
        const double s = __ddiv_rn(z, __dadd_rn(1.0, exp(-z)));
        dsk4j_ew_st(y, dtype, i, __double2float_rn(__dmul_rn(s, v)));
    }
}

// embed: y[t, c] (y_dtype) = table[ids[t], c] (table_dtype), 0 for an id outside [0, vocab).
extern "C" __global__ void dsk4j_ew_embed(void* y, int y_dtype, const void* table, int table_dtype, const int* ids,
                                          long long tokens, long long vocab, long long d) {
    DSK4J_EW_STRIDE(q, tokens * d) {
        const long long t = q / d, c = q % d, id = ids[t];
        if (id < 0 || id >= vocab) {
            dsk4j_ew_st(y, y_dtype, q, 0.0f);
        } else if (y_dtype == table_dtype) { // bit copy (f32 NaN payloads kept)
            if (y_dtype == DSK4J_DT_F32) ((unsigned*)y)[q] = ((const unsigned*)table)[id * d + c];
            else ((uint16_t*)y)[q] = ((const uint16_t*)table)[id * d + c];
        } else {
            dsk4j_ew_st(y, y_dtype, q, dsk4j_ew_ld(table, table_dtype, id * d + c));
        }
    }
}

// One element of `elem` bytes (1, 2 or 4) from src[si] to dst[di].
__device__ __forceinline__ void dsk4j_ew_copy_elem(void* dst, long long di, const void* src, long long si, int elem) {
    if (elem == 4) ((unsigned*)dst)[di] = ((const unsigned*)src)[si];
    else if (elem == 2) ((uint16_t*)dst)[di] = ((const uint16_t*)src)[si];
    else ((unsigned char*)dst)[di] = ((const unsigned char*)src)[si];
}

// copy_columns: dst[r, dst_col0 + j] = src[r, src_col0 + j], r < rows, j < width.
extern "C" __global__ void dsk4j_ew_copy_columns(void* dst, const void* src, int elem, long long rows,
                                                 long long dst_cols, long long dst_col0, long long src_cols,
                                                 long long src_col0, long long width) {
    DSK4J_EW_STRIDE(q, rows * width) {
        const long long r = q / width, j = q % width;
        dsk4j_ew_copy_elem(dst, r * dst_cols + dst_col0 + j, src, r * src_cols + src_col0 + j, elem);
    }
}
