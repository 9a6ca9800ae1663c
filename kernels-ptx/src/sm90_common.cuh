// sm90_common.cuh - the Hopper (sm_90a) helpers shared by sm90_gemm_fp8_wgmma.cu and
// mla_decode_sm90.cu: the CUtensorMap kernel parameter, mbarriers with a bounded wait that
// traps, TMA 2-D tile loads completing on an mbarrier, and the wgmma fence / commit / wait.
// The device helpers exist only in the sm_90a pass (__CUDA_ARCH_FEAT_SM90_ALL); the kernels
// that use them are traps in every other image, and the host launches them only from the
// sm_90a cubin.
#ifndef DSK4J_SM90_COMMON_CUH
#define DSK4J_SM90_COMMON_CUH
#include <stdint.h>

// CUtensorMap: 128 opaque bytes, 64-byte aligned (built by cuTensorMapEncodeTiled on the host).
struct alignas(64) dsk4j_tensor_map {
    unsigned long long opaque[16];
};

namespace dsk4j_sm90 {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) {
    uint32_t ok;
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(ok)
                 : "r"(bar), "r"(parity)
                 : "memory");
    return ok != 0;
}
// Waits for the phase; a wait of 2^35 cycles (~17 s at 2 GHz) is a protocol bug, not a slow
// load: trap (the launch fails with an error) rather than hang the device.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
    if (mbar_try_wait(bar, parity)) return;
    const long long t0 = clock64();
    while (!mbar_try_wait(bar, parity))
        if (clock64() - t0 > (1ll << 35)) __trap();
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
// The initialized barriers: visible to the other threads (after a block barrier) and to the
// async proxy (TMA complete_tx). Called by the initializing thread.
__device__ __forceinline__ void mbar_init_fence() {
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
// Box at coordinates (c0 = inner element, c1 = row) of the map -> smem dst, bytes counted on bar.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const dsk4j_tensor_map* map, int c0, int c1,
                                           uint32_t bar) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
                 "l"((unsigned long long)map), "r"(c0), "r"(c1), "r"(bar)
                 : "memory");
}
__device__ __forceinline__ void tma_prefetch(const dsk4j_tensor_map* map) {
    asm volatile("prefetch.tensormap [%0];\n" ::"l"((unsigned long long)map) : "memory");
}
// Ordinary shared-memory stores of this thread -> visible to the async proxy (wgmma, TMA)
// after the next barrier.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
#endif // __CUDA_ARCH_FEAT_SM90_ALL
} // namespace dsk4j_sm90

#endif
