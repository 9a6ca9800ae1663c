// rope.cu - the fast rope.apply kernel: the same bits as rope_reference.cu (dsk4j_rope_pair), same
// parameters plus `vec`. Memory-bound: with vec (host-checked: x, y, cos_t, sin_t 16-byte aligned;
// dim % 8 == 0 interleaved, dim % 16 == 0 neox) each thread rotates 8 elements with 16-byte
// loads and stores (dsk4j_load8 / dsk4j_store8 of fp8_quant.cu) and float4 table reads:
//   interleaved: unit u = elements 8u .. 8u+7 (4 pairs) of x, table columns 4k .. 4k+3;
//   neox: unit u = columns 8k .. 8k+7 of a row's two halves, table columns 8k .. 8k+7.
// Without vec, one pair per thread as the reference. No __restrict__: y may be x.
#define DSK4J_ROPE_THREADS 256

__device__ __forceinline__ void dsk4j_rope_load_table(const float* t, long long i, int n, float* out) {
    const float4 a = *(const float4*)(t + i);
    out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
    if (n == 8) {
        const float4 b = *(const float4*)(t + i + 4);
        out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
    }
}

extern "C" __global__ void __launch_bounds__(DSK4J_ROPE_THREADS)
dsk4j_rope_apply(void* y, const void* x, int dtype, const int* positions, const float* cos_t, const float* sin_t,
                 long long tokens, long long heads, long long dim, long long max_seq_len, int layout, int vec) {
    const long long half = dim / 2, stride = (long long)gridDim.x * blockDim.x;
    long long u = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (!vec) {
        for (; u < tokens * heads * half; u += stride) {
            const long long row = u / half, j = u % half, t = row / heads;
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
        return;
    }
    if (layout == DSK4J_ROPE_NEOX) {
        const long long per_row = half / 8;
        for (; u < tokens * heads * per_row; u += stride) {
            const long long row = u / per_row, k = u % per_row, t = row / heads;
            const int p = positions[t];
            if (p < 0 || p >= max_seq_len) continue;
            const long long vlo = row * (dim / 8) + k, vhi = vlo + per_row;
            float lo[8], hi[8], c[8], s[8];
            dsk4j_load8(x, dtype, vlo, lo);
            dsk4j_load8(x, dtype, vhi, hi);
            dsk4j_rope_load_table(cos_t, p * half + 8 * k, 8, c);
            dsk4j_rope_load_table(sin_t, p * half + 8 * k, 8, s);
#pragma unroll
            for (int i = 0; i < 8; i++) dsk4j_rope_pair(lo[i], hi[i], c[i], s[i], lo[i], hi[i]);
            dsk4j_store8(y, dtype, vlo, lo);
            dsk4j_store8(y, dtype, vhi, hi);
        }
    } else {
        const long long per_row = dim / 8;
        for (; u < tokens * heads * per_row; u += stride) {
            const long long row = u / per_row, k = u % per_row, t = row / heads;
            const int p = positions[t];
            if (p < 0 || p >= max_seq_len) continue;
            float v[8], c[4], s[4];
            dsk4j_load8(x, dtype, u, v);
            dsk4j_rope_load_table(cos_t, p * half + 4 * k, 4, c);
            dsk4j_rope_load_table(sin_t, p * half + 4 * k, 4, s);
#pragma unroll
            for (int i = 0; i < 4; i++) dsk4j_rope_pair(v[2 * i], v[2 * i + 1], c[i], s[i], v[2 * i], v[2 * i + 1]);
            dsk4j_store8(y, dtype, u, v);
        }
    }
}
