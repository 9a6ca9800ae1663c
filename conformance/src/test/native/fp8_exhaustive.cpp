// fp8_exhaustive.cpp - every one of the 2^32 f32 bit patterns through dsk4j_fp8_cast (f32 ->
// e4m3 and f32 -> e5m2) on a cpu context, compared with NVIDIA's host conversion
// __nv_cvt_float_to_fp8(x, __NV_SATFINITE, ...) from cuda_fp8.h (DESIGN.md 3).
// Built and run by Fp8ExhaustiveTest: fp8_exhaustive LIBDSK4J FLAGS (0 = default path,
// 4 = DSK4J_CPU_MAX_AVX2, 1 = DSK4J_CPU_FORCE_PORTABLE). Prints one line per format:
//   format=e4m3 checked=4294967296 mismatches=0 [first=0x... got=0x.. want=0x..]
#include <cuda_fp8.h>
#include <dlfcn.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>
#include "dsk4j.h"

typedef int (*open_fn)(dsk4j_context**, const char*, int32_t, int32_t);
typedef int (*close_fn)(dsk4j_context*);
typedef int (*cast_fn)(dsk4j_context*, void*, int64_t, int32_t, const void*, int64_t, int32_t, int64_t);
typedef const char* (*err_fn)(void);

int main(int argc, char** argv) {
    if (argc != 3) { std::fprintf(stderr, "usage: %s LIBDSK4J FLAGS\n", argv[0]); return 2; }
    void* lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) { std::fprintf(stderr, "dlopen: %s\n", dlerror()); return 2; }
    auto open = (open_fn)dlsym(lib, "dsk4j_context_open");
    auto close = (close_fn)dlsym(lib, "dsk4j_context_close");
    auto cast = (cast_fn)dlsym(lib, "dsk4j_fp8_cast");
    auto err = (err_fn)dlsym(lib, "dsk4j_last_error");
    if (!open || !close || !cast || !err) { std::fprintf(stderr, "missing symbols\n"); return 2; }
    dsk4j_context* ctx = nullptr;
    if (open(&ctx, "cpu", 0, std::atoi(argv[2])) != 0) { std::fprintf(stderr, "open: %s\n", err()); return 2; }

    const int64_t chunk = 1 << 24;
    std::vector<uint32_t> x(chunk);
    std::vector<uint8_t> got(chunk), want(chunk);
    const int formats[2] = {DSK4J_DTYPE_E4M3, DSK4J_DTYPE_E5M2};
    const char* names[2] = {"e4m3", "e5m2"};
    unsigned nthreads = std::thread::hardware_concurrency();
    if (nthreads == 0) nthreads = 1;
    for (int f = 0; f < 2; f++) {
        __nv_fp8_interpretation_t interp = f == 0 ? __NV_E4M3 : __NV_E5M2;
        uint64_t checked = 0, mismatches = 0;
        uint32_t first = 0; uint8_t first_got = 0, first_want = 0;
        for (uint64_t base = 0; base < (1ull << 32); base += chunk) {
            for (int64_t i = 0; i < chunk; i++) x[i] = (uint32_t)(base + i);
            if (cast(ctx, got.data(), chunk, formats[f], x.data(), chunk * 4, DSK4J_DTYPE_F32, chunk) != 0) {
                std::fprintf(stderr, "dsk4j_fp8_cast: %s\n", err());
                return 2;
            }
            std::vector<std::thread> ts;
            for (unsigned t = 0; t < nthreads; t++)
                ts.emplace_back([&, t] {
                    for (int64_t i = t; i < chunk; i += nthreads) {
                        float v;
                        std::memcpy(&v, &x[i], 4);
                        want[i] = (uint8_t)__nv_cvt_float_to_fp8(v, __NV_SATFINITE, interp);
                    }
                });
            for (auto& t : ts) t.join();
            for (int64_t i = 0; i < chunk; i++) {
                if (got[i] != want[i]) {
                    if (mismatches == 0) { first = x[i]; first_got = got[i]; first_want = want[i]; }
                    mismatches++;
                }
            }
            checked += chunk;
        }
        std::printf("format=%s checked=%llu mismatches=%llu", names[f], (unsigned long long)checked,
                    (unsigned long long)mismatches);
        if (mismatches) std::printf(" first=0x%08x got=0x%02x want=0x%02x", first, first_got, first_want);
        std::printf("\n");
        std::fflush(stdout);
    }
    close(ctx);
    return 0;
}
