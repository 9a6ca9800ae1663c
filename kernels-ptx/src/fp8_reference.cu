// fp8_reference.cu - the GPU reference of the fp8 ops: plain, obviously correct kernels.
// One thread per element (cast, dequant) or per group / block (act_quant, weight_quant),
// grid-stride loops, 64-bit indices. FP8 encoding always goes through the exact software
// conversion (fp8_convert.cuh), so on sm_89+ these also cross-check the hardware cvt that
// the fast kernels (fp8_quant.cu) use. Parameter order equals the fast kernels'.
#include "fp8_convert.cuh"

#define DSK4J_GRID_STRIDE(i, n)                                                               \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n);            \
         i += (long long)gridDim.x * blockDim.x)

__device__ __forceinline__ void dsk4j_ref_store(void* p, int dtype, long long i, float v) {
    if (dtype == DSK4J_DT_E4M3) ((uint8_t*)p)[i] = dsk4j_f32_to_e4m3_sw(v);
    else if (dtype == DSK4J_DT_E5M2) ((uint8_t*)p)[i] = dsk4j_f32_to_e5m2_sw(v);
    else dsk4j_store_from_f32(p, dtype, i, v);
}

// fp8.cast: x[n] (x_dtype) -> y[n] (y_dtype), y = convert(f32(x)).
extern "C" __global__ void dsk4j_ref_fp8_cast(void* y, int y_dtype, const void* x, int x_dtype,
                                              long long n) {
    DSK4J_GRID_STRIDE(i, n) dsk4j_ref_store(y, y_dtype, i, dsk4j_load_as_f32(x, x_dtype, i));
}

// fp8.act_quant: x[rows,k] f32|bf16 -> y[rows,k] e4m3, scale[row*scale_rs + g*scale_cs] f32,
// g < k/group. One thread per (row, group): amax = max|x| (NaN ignored), s = scale(amax),
// y = e4m3(x / s).
extern "C" __global__ void dsk4j_ref_fp8_act_quant(uint8_t* y, float* scale, long long scale_rs,
                                                   long long scale_cs, const void* x, int x_dtype,
                                                   long long rows, long long k, int group,
                                                   int flags) {
    const long long gpr = k / group;
    DSK4J_GRID_STRIDE(t, rows * gpr) {
        const long long row = t / gpr, g = t % gpr, base = row * k + g * group;
        float amax = 0.0f;
        for (int j = 0; j < group; j++) amax = fmaxf(amax, fabsf(dsk4j_load_as_f32(x, x_dtype, base + j)));
        const float s = dsk4j_amax_to_scale(amax, flags & DSK4J_FLAG_UE8M0);
        for (int j = 0; j < group; j++)
            y[base + j] = dsk4j_f32_to_e4m3_sw(__fdiv_rn(dsk4j_load_as_f32(x, x_dtype, base + j), s));
        scale[row * scale_rs + g * scale_cs] = s;
    }
}

// fp8.weight_quant: w[n,k] f32|bf16 -> y[n,k] e4m3, scale_inv[ceil(n/block), ceil(k/block)]
// f32. One thread per (partial) block: amax, s = scale(amax), y = e4m3(w / s).
extern "C" __global__ void dsk4j_ref_fp8_weight_quant(uint8_t* y, float* scale_inv, const void* w,
                                                      int w_dtype, long long n, long long k,
                                                      int block, int flags) {
    const long long nbn = (n + block - 1) / block, nbk = (k + block - 1) / block;
    DSK4J_GRID_STRIDE(t, nbn * nbk) {
        const long long bi = t / nbk, bj = t % nbk;
        const long long r0 = bi * block, r1 = min(n, r0 + block);
        const long long c0 = bj * block, c1 = min(k, c0 + block);
        float amax = 0.0f;
        for (long long r = r0; r < r1; r++)
            for (long long c = c0; c < c1; c++)
                amax = fmaxf(amax, fabsf(dsk4j_load_as_f32(w, w_dtype, r * k + c)));
        const float s = dsk4j_amax_to_scale(amax, flags & DSK4J_FLAG_UE8M0);
        for (long long r = r0; r < r1; r++)
            for (long long c = c0; c < c1; c++)
                y[r * k + c] = dsk4j_f32_to_e4m3_sw(__fdiv_rn(dsk4j_load_as_f32(w, w_dtype, r * k + c), s));
        scale_inv[t] = s;
    }
}

// fp8.weight_dequant: w[n,k] e4m3, scale_inv[ceil(n/block), ceil(k/block)] f32 ->
// y[n,k] f32|bf16 = f32(w) * scale_inv[i/block, j/block] (one f32 multiply, then rounded).
extern "C" __global__ void dsk4j_ref_fp8_weight_dequant(void* y, int y_dtype, const uint8_t* w,
                                                        const float* scale_inv, long long n,
                                                        long long k, int block) {
    const long long nbk = (k + block - 1) / block;
    DSK4J_GRID_STRIDE(i, n * k) {
        const long long r = i / k, c = i % k;
        const float v = __fmul_rn(dsk4j_e4m3_to_f32(w[i]), scale_inv[(r / block) * nbk + c / block]);
        dsk4j_store_from_f32(y, y_dtype, i, v);
    }
}
