// gemm_reference.cu - the GPU reference of the gemm ops (DESIGN.md 4.2): plain, obviously
// correct kernels, one thread per output element (grid-stride, 64-bit indices), loops over K
// exactly as the formula. What DSK4J_CUDA_REFERENCE_KERNELS selects; the fast kernels
// (gemm_fast.cu) take the same parameters.
//
// gemm.fp8_block, D = A * B^T ("NT"):  a e4m3 [m,k], b e4m3 [n,k], k % 128 == 0,
//   for each 128-wide K block kb (the "promotion", f32):
//     acc[i,j] += (sum_{t in kb} a[i,t]*b[j,t]) * a_scale[i*rs + kb*cs] * b_scale[(j/128)*(k/128) + kb]
//   d[i,j] (f32 | bf16 RNE) = acc (+ c[i,j] when c != NULL).
// gemm.bf16: d[i,j] = sum_t a[i,t]*b[j,t] (+ c[i,j]), f32 accumulation, any k.
// gemm.fp8_grouped: the rows of group g use b + g*n*k and b_scale + g*ceil(n/128)*(k/128);
//   contiguous (offsets != NULL): group g = rows [clamp(off[g]), clamp(off[g+1])), clamp to
//   [0, m], a decreasing range is empty; masked (masked_m != NULL): group g = rows
//   g*m_max + [0, clamp(masked_m[g], 0, m_max)). Rows outside every group are not written.
#include "fp8_convert.cuh"

// d[idx] = v (+ c[idx]) in d_dtype (f32 or bf16).
__device__ __forceinline__ void dsk4j_gemm_store(void* d, int d_dtype, const float* c, long long idx,
                                                 float v) {
    if (c != nullptr) v += c[idx];
    if (d_dtype == DSK4J_DT_BF16) ((uint16_t*)d)[idx] = dsk4j_f32_to_bf16(v);
    else ((float*)d)[idx] = v;
}

// sum_kb (sum_{t<128} a[t] b[t]) * sa(kb) * sb(kb) for one row of a (a_row) and b (b_row).
__device__ __forceinline__ float dsk4j_ref_fp8_dot(const uint8_t* a_row, const uint8_t* b_row,
                                                   const float* a_scale, long long rs,
                                                   long long cs, long long i,
                                                   const float* b_scale_row, long long k) {
    float acc = 0.0f;
    for (long long kb = 0; kb < k / 128; kb++) {
        float s = 0.0f;
        for (int t = 0; t < 128; t++)
            s += dsk4j_e4m3_to_f32(a_row[kb * 128 + t]) * dsk4j_e4m3_to_f32(b_row[kb * 128 + t]);
        acc += s * a_scale[i * rs + kb * cs] * b_scale_row[kb];
    }
    return acc;
}

// gemm.fp8_block: one thread per d element (i, j) of d[m,n].
extern "C" __global__ void dsk4j_ref_gemm_fp8_block(void* d, int d_dtype, const uint8_t* a,
                                                    const float* a_scale, long long a_scale_rs,
                                                    long long a_scale_cs, const uint8_t* b,
                                                    const float* b_scale, const float* c,
                                                    long long m, long long n, long long k) {
    DSK4J_GRID_STRIDE(idx, m * n) {
        const long long i = idx / n, j = idx % n;
        const float v = dsk4j_ref_fp8_dot(a + i * k, b + j * k, a_scale, a_scale_rs, a_scale_cs, i,
                                          b_scale + (j / 128) * (k / 128), k);
        dsk4j_gemm_store(d, d_dtype, c, idx, v);
    }
}

// gemm.bf16: one thread per d element; a bf16 [m,k], b bf16 [n,k].
extern "C" __global__ void dsk4j_ref_gemm_bf16(void* d, int d_dtype, const uint16_t* a,
                                               const uint16_t* b, const float* c, long long m,
                                               long long n, long long k) {
    DSK4J_GRID_STRIDE(idx, m * n) {
        const long long i = idx / n, j = idx % n;
        float s = 0.0f;
        for (long long t = 0; t < k; t++)
            s += dsk4j_bf16_to_f32(a[i * k + t]) * dsk4j_bf16_to_f32(b[j * k + t]);
        dsk4j_gemm_store(d, d_dtype, c, idx, s);
    }
}

// gemm.fp8_grouped_{contiguous,masked}: one thread per element of d[rows, n], rows = m
// (contiguous) or groups * m_max (masked); a_scale is [rows, k/128] row-major. An element
// whose row lies in no group is left alone; a row in several (overlapping contiguous ranges,
// only from invalid offsets) takes the first group.
extern "C" __global__ void dsk4j_ref_gemm_fp8_grouped(void* d, int d_dtype, const uint8_t* a,
                                                      const float* a_scale, const uint8_t* b,
                                                      const float* b_scale, const int* offsets,
                                                      const int* masked_m, long long groups,
                                                      long long m, long long m_max, long long n,
                                                      long long k) {
    const long long rows = offsets != nullptr ? m : groups * m_max;
    DSK4J_GRID_STRIDE(idx, rows * n) {
        const long long i = idx / n, j = idx % n;
        long long g = -1;
        if (offsets != nullptr) {
            for (long long q = 0; q < groups && g < 0; q++) {
                const long long s = min(max((long long)offsets[q], 0ll), m);
                const long long e = min(max((long long)offsets[q + 1], 0ll), m);
                if (s <= i && i < e) g = q;
            }
        } else {
            const long long q = i / m_max;
            const long long cnt = min(max((long long)masked_m[q], 0ll), m_max);
            if (i - q * m_max < cnt) g = q;
        }
        if (g < 0) continue;
        const float v = dsk4j_ref_fp8_dot(a + i * k, b + (g * n + j) * k, a_scale, k / 128, 1, i,
                                          b_scale + (g * ((n + 127) / 128) + j / 128) * (k / 128), k);
        dsk4j_gemm_store(d, d_dtype, nullptr, idx, v);
    }
}

// gemm.f32: one thread per d element; a f32 [m,k], b [n,k] f32 or (b_bf16) bf16 widened exactly;
// d[i,j] = sum_t a[i,t]*b[j,t] (+ c[i,j]) in f32, one fmaf per term in increasing t (exact f32
// products: no tf32).
extern "C" __global__ void dsk4j_ref_gemm_f32(float* d, const float* a, const void* b, int b_bf16,
                                              const float* c, long long m, long long n, long long k) {
    DSK4J_GRID_STRIDE(idx, m * n) {
        const long long i = idx / n, j = idx % n;
        float s = 0.0f;
        for (long long t = 0; t < k; t++) {
            const float w = b_bf16 ? dsk4j_bf16_to_f32(((const uint16_t*)b)[j * k + t])
                                   : ((const float*)b)[j * k + t];
            s = fmaf(a[i * k + t], w, s);
        }
        d[idx] = c != nullptr ? s + c[idx] : s;
    }
}
