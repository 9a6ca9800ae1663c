package dev.dsk4j.model;

import java.util.EnumMap;
import java.util.Map;

/** Wall time per op family, summed over the calls of a model (nanoseconds). Not thread-safe: one per model use. */
public final class Profile {
    /** The op families the model's time is split into. */
    public enum Family {
        /** Embedding gather, RMSNorm, residual adds, SwiGLU and copies (Java, host). */
        ELEMENTWISE,
        /** fp8.act_quant of activations before FP8 GEMMs. */
        ACT_QUANT,
        /** Linear layers of attention and dense MLPs (gemm.fp8_block / gemm.f32). */
        GEMM,
        /** rope.apply on q_pe and k_pe. */
        ROPE,
        /** mla.cache_append, mla.prefill, mla.decode, mla.absorb_q/o. */
        ATTENTION,
        /** MoE layers: router, experts, shared expert, combine. */
        MOE,
        /** Final norm and LM head (and the MTP head). */
        LM_HEAD,
        /** Sampling on the host. */
        SAMPLING
    }

    private final EnumMap<Family, Long> nanos = new EnumMap<>(Family.class);

    void add(Family f, long ns) { nanos.merge(f, ns, Long::sum); }

    /** Nanoseconds per family (families never used are absent). */
    public Map<Family, Long> nanos() { return new EnumMap<>(nanos); }

    /** The total over all families. */
    public long totalNanos() {
        long s = 0;
        for (long v : nanos.values()) s += v;
        return s;
    }

    /** Clears the counters. */
    public void reset() { nanos.clear(); }

    /** "GEMM 41.2% (1.23 s), MOE ..." sorted by time. */
    @Override
    public String toString() {
        long total = Math.max(1, totalNanos());
        StringBuilder sb = new StringBuilder();
        nanos.entrySet().stream().sorted(Map.Entry.<Family, Long>comparingByValue().reversed()).forEach(e -> {
            if (!sb.isEmpty()) sb.append(", ");
            sb.append(String.format(java.util.Locale.ROOT, "%s %.1f%% (%.3f s)", e.getKey().name().toLowerCase(
                    java.util.Locale.ROOT), 100.0 * e.getValue() / total, e.getValue() / 1e9));
        });
        return sb.toString();
    }
}
