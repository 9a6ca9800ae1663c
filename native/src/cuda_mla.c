/* cuda_mla.c - the mla ops on the CUDA backend (DESIGN.md 4.4; internal.h cuda_mla_*).
 *
 * PLACEHOLDER: the CUDA MLA kernels (FlashMLA-style sm_90a decode, sm_80/sm_89 mma.sync path,
 * prefill, append, absorption) are being written separately and will replace this file. Until
 * then every entry point answers DSK4J_ERR_UNSUPPORTED with a message saying so; the api layer
 * (api_mla.c) has validated the arguments before any of these is called. */
#include "internal.h"

static int not_yet(const char* op) {
    return dsk4j_fail(DSK4J_ERR_UNSUPPORTED,
                      "%s: not implemented on the cuda backend in this build (the CUDA MLA kernels are not "
                      "merged yet); use a cpu context",
                      op);
}

int cuda_mla_cache_append(dsk4j_context* ctx, const mla_append_args* a) {
    (void)ctx, (void)a;
    return not_yet("dsk4j_mla_cache_append");
}

int cuda_mla_decode(dsk4j_context* ctx, const mla_decode_args* a) {
    (void)ctx, (void)a;
    return not_yet("dsk4j_mla_decode");
}

int cuda_mla_prefill(dsk4j_context* ctx, const mla_prefill_args* a) {
    (void)ctx, (void)a;
    return not_yet("dsk4j_mla_prefill");
}

int cuda_mla_absorb(dsk4j_context* ctx, const mla_absorb_args* a) {
    (void)ctx, (void)a;
    return not_yet(a->o_side ? "dsk4j_mla_absorb_o" : "dsk4j_mla_absorb_q");
}
