/* amx_peak.c - this machine's AMX-BF16 tile ceiling, for the GEMM benchmarks (DESIGN.md 7).
 *
 *   int dsk4jbench_amx_bf16_peak(int threads, double* gflops)
 *
 * runs `threads` threads (one per core: the caller passes the core count), started together from a
 * barrier; each configures 16x16 f32 accumulator tiles 0-3 and 16x32 bf16 operand tiles 4 and 6,
 * then runs ITERS iterations of 4 independent TDPBF16PS chains (tile i += tile 4 * tile 6, i = 0..3),
 * so the loop is bound by the tile unit's throughput, not by one chain's latency, and touches no
 * memory. Time: from the barrier that releases the threads to the last join.
 * GFLOP/s = threads * ITERS * 4 * (16 * 16 * 32 * 2) / time / 1e9 (one TDPBF16PS: 16x16 outputs,
 * 32 bf16 products each, a multiply and an add per product).
 *
 * Returns 0 and writes *gflops, or nonzero (nothing written) where AMX cannot run:
 *   1 the CPU has no AMX-TILE/AMX-BF16 (CPUID), 2 Linux refused the tile state
 *   (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)), 3 threads could not be started,
 *   4 bad arguments. The library never prints and never exits.
 *
 * Built by benchmarks/native/build.sh (gcc -O2 -mamx-tile -mamx-bf16 -pthread -shared -fPIC) into
 * benchmarks/target/libdsk4jbench.so; loaded by dev.dsk4j.benchmarks.AmxPeak through FFM.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
#define ITERS (1L << 21)
#define MAX_THREADS 1024

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

static pthread_barrier_t start;
static volatile float sink;

static void* worker(void* arg) {
    (void)arg;
    tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++) {
        c.colsb[t] = 64; /* 16 f32 or 32 bf16 per row */
        c.rows[t] = 16;
    }
    _tile_loadconfig(&c);
    /* operands: 1/256 in bf16 (0x3b80): products 2^-16, sums stay far from overflow and denormals */
    static __thread uint16_t ab[16 * 32] __attribute__((aligned(64)));
    static __thread float acc[16 * 16] __attribute__((aligned(64)));
    for (int i = 0; i < 16 * 32; i++) ab[i] = 0x3b80;
    _tile_loadd(4, ab, 64);
    _tile_loadd(6, ab, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    pthread_barrier_wait(&start);
    for (long i = 0; i < ITERS; i++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 6);
        _tile_dpbf16ps(2, 4, 6);
        _tile_dpbf16ps(3, 4, 6);
    }
    float s = 0;
    _tile_stored(0, acc, 64);
    s += acc[0];
    _tile_stored(1, acc, 64);
    s += acc[1];
    _tile_stored(2, acc, 64);
    s += acc[2];
    _tile_stored(3, acc, 64);
    s += acc[3];
    sink = s; /* keeps the chains live */
    _tile_release();
    return NULL;
}

static int has_amx(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (d >> 24 & 1) && (d >> 22 & 1); /* EDX bit 24: AMX-TILE, bit 22: AMX-BF16 */
}

int dsk4jbench_amx_bf16_peak(int threads, double* gflops) {
    if (threads < 1 || threads > MAX_THREADS || !gflops) return 4;
    if (!has_amx()) return 1;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return 2;
    pthread_t tid[MAX_THREADS];
    if (pthread_barrier_init(&start, NULL, (unsigned)threads + 1) != 0) return 3;
    int started = 0;
    for (; started < threads; started++)
        if (pthread_create(&tid[started], NULL, worker, NULL) != 0) break;
    if (started < threads) {
        /* the threads that did start wait at the barrier forever: cannot happen on a sane system;
         * report the failure without joining them */
        return 3;
    }
    pthread_barrier_wait(&start);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_barrier_destroy(&start);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    *gflops = (double)threads * ITERS * 4 * (16.0 * 16 * 32 * 2) / sec / 1e9;
    return 0;
}
