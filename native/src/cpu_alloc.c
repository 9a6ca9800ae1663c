/* cpu_alloc.c - host workspaces of the cpu kernels (cpu_host_alloc / cpu_host_free, internal.h).
 *
 * Blocks of CPU_HOST_MAPPED_MIN bytes or more are anonymous pages of their own (mmap), returned to
 * the system when freed. From the C heap they would stay resident after free (glibc raises its
 * mmap threshold after the first large free, and freed blocks between live ones are not trimmed),
 * so the resident memory of a long-running process would creep up with every large call (a long
 * prefill's GEMM and attention workspaces). Smaller blocks come from the C heap. Every block is
 * 64-byte aligned and preceded by a 64-byte header that records which kind it is.
 *
 * Under AddressSanitizer every block comes from the heap, so that ASan and LeakSanitizer see them
 * all (native/test/run-sanitizers.sh). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define CPU_HOST_USE_MMAP 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CPU_HOST_USE_MMAP 0
#endif
#endif
#ifndef CPU_HOST_USE_MMAP
#define CPU_HOST_USE_MMAP 1
#endif

#define CPU_HOST_HEADER 64
#define CPU_HOST_MAPPED_MIN ((size_t)1 << 20)
#define CPU_HOST_PAGE ((size_t)4096)

typedef struct {
    size_t mapped; /* length of the mapping that starts at the header; 0: a C heap block */
} cpu_host_header;

void* cpu_host_alloc(size_t bytes) {
    bytes = bytes == 0 ? 64 : bytes;
    if (bytes > SIZE_MAX / 2) return NULL;
    bytes = (bytes + 63) & ~(size_t)63;
    size_t total = bytes + CPU_HOST_HEADER;
    char* base;
    if (CPU_HOST_USE_MMAP && bytes >= CPU_HOST_MAPPED_MIN) {
        size_t len = (total + CPU_HOST_PAGE - 1) & ~(CPU_HOST_PAGE - 1);
        void* m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return NULL;
        base = (char*)m;
        ((cpu_host_header*)base)->mapped = len;
    } else {
        void* q = NULL;
        if (posix_memalign(&q, 64, total) != 0) return NULL;
        base = (char*)q;
        ((cpu_host_header*)base)->mapped = 0;
    }
    return base + CPU_HOST_HEADER;
}

void cpu_host_free(void* p) {
    if (p == NULL) return;
    char* base = (char*)p - CPU_HOST_HEADER;
    size_t len = ((cpu_host_header*)base)->mapped;
    if (len != 0) munmap(base, len);
    else free(base);
}
