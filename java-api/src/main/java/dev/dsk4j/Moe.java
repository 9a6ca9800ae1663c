package dev.dsk4j;

import dev.dsk4j.bindings.Dsk4jH;
import dev.dsk4j.internal.Native;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * Mixture-of-Experts pieces of DESIGN.md 4.5: the router ({@code moe.gate}), the token dispatch
 * ({@code moe.dispatch}, {@code moe.gather}), the weighted combine ({@code moe.combine}) and the
 * aux-loss-free bias update ({@code moe.bias_update}). dsk4j.h states the exact arithmetic.
 *
 * <p>The router computes {@code logits = x·Wgᵀ} in f32 in a fixed 16-lane order (the same bits on
 * every CPU path and on CUDA), scores {@code s} by sigmoid or softmax, chooses with {@code b = s + bias}
 * (group-limited when {@code nGroup > 1}: group score = sum of the top-2 {@code b} with a bias, the
 * max without), outputs the top-k by descending {@code b} with ties to the lower expert id, and
 * weights from the unbiased {@code s} (renormalized when {@code normTopkProb}) times
 * {@code routedScalingFactor}.
 *
 * <p>Backends: every op runs on the cpu backend and on CUDA (reference and fast kernels, the same
 * routing bits and layouts as the cpu; moe.forward composed on the device). The CUDA moe kernels are
 * compiled and reviewed but have not yet run on a GPU (see the README's support table). On CUDA the
 * index tensors live in device memory, which the library does not read back to check: an expert id
 * outside {@code [0, E)} is ignored by dispatch (its {@code rowOf} entry is -1), a {@code srcOf} /
 * {@code rowOf} entry out of range gathers a zero row / adds nothing, and in the masked layout the
 * pairs an expert receives past {@code mMax} are dropped ({@code rowOf} -1, {@code counts} still
 * counts them); the cpu backend rejects all of these with an error instead.
 */
public final class Moe {
    private Moe() {}

    /** How router logits become scores. */
    public enum ScoreFunction {
        /** {@code 1 / (1 + exp(-logit))} per expert: DeepSeek-V3. */
        SIGMOID,
        /** softmax over the experts of a token: DeepSeek-V2 / V2-Lite. */
        SOFTMAX;

        int code() { return this == SIGMOID ? Dsk4jH.DSK4J_MOE_SIGMOID() : Dsk4jH.DSK4J_MOE_SOFTMAX(); }
    }

    /**
     * A router configuration (Hugging Face {@code config.json} names: {@code n_routed_experts},
     * {@code num_experts_per_tok}, {@code n_group}, {@code topk_group}, {@code scoring_func},
     * {@code norm_topk_prob}, {@code routed_scaling_factor}). {@code nGroup == 1} is plain greedy top-k.
     */
    public record GateConfig(int experts, int topK, int nGroup, int topkGroup, ScoreFunction scoreFunction,
                             boolean normTopkProb, float routedScalingFactor) {
        public GateConfig {
            Objects.requireNonNull(scoreFunction, "argument 'scoreFunction' is null");
            if (experts < 1 || experts > 4096)
                throw new IllegalArgumentException("argument 'experts' must be in [1, 4096], got " + experts);
            if (nGroup < 1 || experts % nGroup != 0)
                throw new IllegalArgumentException("argument 'nGroup' must be >= 1 and divide experts = " + experts
                        + ", got " + nGroup);
            if (topkGroup < 1 || topkGroup > nGroup)
                throw new IllegalArgumentException("argument 'topkGroup' must be in [1, nGroup = " + nGroup + "], got "
                        + topkGroup);
            if (topK < 1 || topK > (long) topkGroup * (experts / nGroup))
                throw new IllegalArgumentException("argument 'topK' must be in [1, topkGroup * experts/nGroup = "
                        + (long) topkGroup * (experts / nGroup) + "], got " + topK);
            if (!Float.isFinite(routedScalingFactor))
                throw new IllegalArgumentException("argument 'routedScalingFactor' must be finite, got "
                        + routedScalingFactor);
        }

        /** DeepSeek-V3: sigmoid, noaux_tc, 256 experts, top-8, 8 groups keep 4, renormalized, x2.5. */
        public static GateConfig deepSeekV3() { return new GateConfig(256, 8, 8, 4, ScoreFunction.SIGMOID, true, 2.5f); }

        /** DeepSeek-V2: softmax, group_limited_greedy, 160 experts, top-6, 8 groups keep 3, not renormalized, x16. */
        public static GateConfig deepSeekV2() { return new GateConfig(160, 6, 8, 3, ScoreFunction.SOFTMAX, false, 16f); }

        /** DeepSeek-V2-Lite: softmax, greedy, 64 experts, top-6, not renormalized, x1. */
        public static GateConfig deepSeekV2Lite() { return new GateConfig(64, 6, 1, 1, ScoreFunction.SOFTMAX, false, 1f); }

        /** Experts per group. */
        public int groupSize() { return experts / nGroup; }
    }

    /** The router's output: {@code indices} i32 [T, topK] (descending biased score) and {@code weights} f32 [T, topK]. */
    public record Routing(Tensor indices, Tensor weights) {}

    /**
     * A dispatch layout: {@code counts} i32 [E], {@code offsets} i32 [E+1] (the row where each expert
     * starts; {@code offsets[E]} rows are used), {@code rowOf} i32 [T, topK] (the row of each (token,
     * slot) pair), {@code srcOf} i32 [rows] (the pair {@code t*topK + slot} each row holds, -1 for
     * padding), and {@code mMax} (> 0: the masked [E, mMax] layout, {@code offsets[e] = e*mMax}).
     */
    public record Dispatch(Tensor counts, Tensor offsets, Tensor rowOf, Tensor srcOf, long rows, long mMax) {}

    // ------------------------------------------------------------------ moe.gate

    /**
     * moe.gate: {@code x} f32|bf16 [T, H], {@code wg} f32|bf16 [E, H], {@code bias} f32 [E] or null
     * (selection only), into {@code indices} i32 [T, topK], {@code weights} f32 [T, topK] and, when
     * not null, {@code logits} f32 [T, E].
     */
    public static void gate(Context ctx, Tensor indices, Tensor weights, Tensor logits, Tensor x, Tensor wg,
                            Tensor bias, GateConfig config) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Objects.requireNonNull(config, "argument 'config' is null");
        Ops.checkTensor(ctx, "x", x);
        Ops.checkTensor(ctx, "wg", wg);
        Ops.checkOutput(ctx, "indices", indices);
        Ops.checkOutput(ctx, "weights", weights);
        Ops.checkDType("x", x, DType.F32, DType.BF16);
        Ops.checkDType("wg", wg, DType.F32, DType.BF16);
        Ops.checkDType("indices", indices, DType.I32);
        Ops.checkDType("weights", weights, DType.F32);
        Ops.checkRank("x", x, 2);
        long t = x.dim(0), h = x.dim(1);
        Ops.checkShape("wg", wg, config.experts(), h);
        Ops.checkShape("indices", indices, t, config.topK());
        Ops.checkShape("weights", weights, t, config.topK());
        if (logits != null) {
            Ops.checkOutput(ctx, "logits", logits);
            Ops.checkDType("logits", logits, DType.F32);
            Ops.checkShape("logits", logits, t, config.experts());
        }
        if (bias != null) {
            Ops.checkTensor(ctx, "bias", bias);
            Ops.checkDType("bias", bias, DType.F32);
            Ops.checkShape("bias", bias, config.experts());
        }
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_moe_gate(ctx.handle(), indices.segment(), indices.byteSize(), weights.segment(),
                    weights.byteSize(), seg(logits), size(logits), x.segment(), x.byteSize(), x.dtype().code(),
                    wg.segment(), wg.byteSize(), wg.dtype().code(), seg(bias), size(bias), t, h, config.experts(),
                    config.topK(), config.nGroup(), config.topkGroup(), config.scoreFunction().code(),
                    config.normTopkProb() ? 1 : 0, config.routedScalingFactor()));
        } finally {
            ctx.release();
        }
    }

    /** moe.gate into new tensors from {@code arena}. */
    public static Routing gate(Context ctx, Arena arena, Tensor x, Tensor wg, Tensor bias, GateConfig config) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Objects.requireNonNull(x, "argument 'x' is null");
        Objects.requireNonNull(config, "argument 'config' is null");
        Tensor idx = ctx.allocate(arena, DType.I32, x.dim(0), config.topK());
        Tensor w = ctx.allocate(arena, DType.F32, x.dim(0), config.topK());
        gate(ctx, idx, w, null, x, wg, bias, config);
        return new Routing(idx, w);
    }

    // ------------------------------------------------------------------ moe.dispatch / gather

    /**
     * moe.dispatch into the contiguous layout: experts' rows one after the other, each expert's block
     * padded to a multiple of {@code align} (1: none; 128: DeepGEMM's grouped-contiguous M alignment).
     * {@code srcOf} has {@code T·topK + E·(align-1)} rows (the bound); {@code offsets[E]} of them are used.
     */
    public static Dispatch dispatch(Context ctx, Arena arena, Tensor indices, int experts, int align) {
        if (align < 1) throw new IllegalArgumentException("argument 'align' must be >= 1, got " + align);
        Ops.checkTensor(ctx, "indices", indices);
        Ops.checkRank("indices", indices, 2);
        long rows = indices.numel() + (long) experts * (align - 1);
        return dispatch(ctx, arena, indices, experts, align, 0, rows);
    }

    /** moe.dispatch into the masked layout [E, mMax] of gemm.fp8_grouped_masked ({@code mMax >= T} always fits). */
    public static Dispatch dispatchMasked(Context ctx, Arena arena, Tensor indices, int experts, long mMax) {
        if (mMax < 1) throw new IllegalArgumentException("argument 'mMax' must be >= 1, got " + mMax);
        return dispatch(ctx, arena, indices, experts, 1, mMax, experts * mMax);
    }

    private static Dispatch dispatch(Context ctx, Arena arena, Tensor indices, int experts, int align, long mMax,
                                     long rows) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Ops.checkTensor(ctx, "indices", indices);
        Ops.checkDType("indices", indices, DType.I32);
        Ops.checkRank("indices", indices, 2);
        if (experts < 1) throw new IllegalArgumentException("argument 'experts' must be >= 1, got " + experts);
        long t = indices.dim(0), k = indices.dim(1);
        Tensor counts = ctx.allocate(arena, DType.I32, experts);
        Tensor offsets = ctx.allocate(arena, DType.I32, experts + 1L);
        Tensor rowOf = ctx.allocate(arena, DType.I32, t, k);
        Tensor srcOf = ctx.allocate(arena, DType.I32, rows);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_moe_dispatch(ctx.handle(), counts.segment(), counts.byteSize(), offsets.segment(),
                    offsets.byteSize(), rowOf.segment(), rowOf.byteSize(), srcOf.segment(), srcOf.byteSize(),
                    indices.segment(), indices.byteSize(), t, k, experts, align, mMax));
        } finally {
            ctx.release();
        }
        return new Dispatch(counts, offsets, rowOf, srcOf, rows, mMax);
    }

    /**
     * moe.gather: {@code xp[r] = x[srcOf[r] / topK]} (zero rows for padding), any dtype, bit for bit.
     * {@code x} [T, H], {@code xp} [rows, H] of the same dtype.
     */
    public static void gather(Context ctx, Tensor xp, Tensor x, Dispatch d) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Objects.requireNonNull(d, "argument 'd' is null");
        Ops.checkTensor(ctx, "x", x);
        Ops.checkOutput(ctx, "xp", xp);
        Ops.checkRank("x", x, 2);
        Ops.checkDType("xp", xp, x.dtype());
        Ops.checkShape("xp", xp, d.rows(), x.dim(1));
        if (x.dim(0) != d.rowOf().dim(0))
            throw new IllegalArgumentException("argument 'x' must have one row per token of the dispatch 'd' ("
                    + d.rowOf().dim(0) + "), got shape " + java.util.Arrays.toString(x.shape()));
        long k = d.rowOf().dim(1);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_moe_gather(ctx.handle(), xp.segment(), xp.byteSize(), x.segment(), x.byteSize(),
                    x.dtype().code(), d.srcOf().segment(), d.srcOf().byteSize(), d.rows(), x.dim(0), k, x.dim(1)));
        } finally {
            ctx.release();
        }
    }

    // ------------------------------------------------------------------ moe.combine

    /**
     * moe.combine: {@code y[t] = Σ_i weights[t,i] · e[rowOf[t,i]]} (slot order, f32 fma) {@code + shared[t]}
     * (null for none). {@code e} f32|bf16 [rows, H]; {@code y}, {@code shared} f32|bf16 [T, H];
     * {@code weights} f32 [T, topK]; {@code rowOf} i32 [T, topK].
     */
    public static void combine(Context ctx, Tensor y, Tensor e, Tensor weights, Tensor rowOf, Tensor shared) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Ops.checkOutput(ctx, "y", y);
        Ops.checkTensor(ctx, "e", e);
        Ops.checkTensor(ctx, "weights", weights);
        Ops.checkTensor(ctx, "rowOf", rowOf);
        Ops.checkDType("y", y, DType.F32, DType.BF16);
        Ops.checkDType("e", e, DType.F32, DType.BF16);
        Ops.checkDType("weights", weights, DType.F32);
        Ops.checkDType("rowOf", rowOf, DType.I32);
        Ops.checkRank("y", y, 2);
        Ops.checkRank("e", e, 2);
        Ops.checkRank("weights", weights, 2);
        long t = y.dim(0), h = y.dim(1), k = weights.dim(1);
        Ops.checkShape("weights", weights, t, k);
        Ops.checkShape("rowOf", rowOf, t, k);
        if (e.dim(1) != h)
            throw new IllegalArgumentException("argument 'e' must have " + h + " columns like 'y', got " + e.dim(1));
        if (shared != null) {
            Ops.checkTensor(ctx, "shared", shared);
            Ops.checkDType("shared", shared, DType.F32, DType.BF16);
            Ops.checkShape("shared", shared, t, h);
        }
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_moe_combine(ctx.handle(), y.segment(), y.byteSize(), y.dtype().code(),
                    e.segment(), e.byteSize(), e.dtype().code(), weights.segment(), weights.byteSize(),
                    rowOf.segment(), rowOf.byteSize(), seg(shared), size(shared),
                    shared == null ? 0 : shared.dtype().code(), t, k, e.dim(0), h));
        } finally {
            ctx.release();
        }
    }

    // ------------------------------------------------------------------ moe.bias_update

    /**
     * moe.bias_update (aux-loss-free balancing): {@code bias[e] += gamma} when expert e's count is
     * under the mean load, {@code -= gamma} when over (V3 training: gamma = 0.001). {@code bias}
     * f32 [E] (updated in place), {@code counts} i32 [E] (e.g. {@link Dispatch#counts()}).
     */
    public static void biasUpdate(Context ctx, Tensor bias, Tensor counts, float gamma) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Ops.checkOutput(ctx, "bias", bias);
        Ops.checkOutput(ctx, "counts", counts);
        Ops.checkDType("bias", bias, DType.F32);
        Ops.checkDType("counts", counts, DType.I32);
        Ops.checkRank("bias", bias, 1);
        Ops.checkShape("counts", counts, bias.dim(0));
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_moe_bias_update(ctx.handle(), bias.segment(), bias.byteSize(), counts.segment(),
                    counts.byteSize(), bias.dim(0), gamma));
        } finally {
            ctx.release();
        }
    }


    // ------------------------------------------------------------------ moe.silu_quant

    /**
     * moe.silu_quant, the expert activation fused with the fp8 1x128 quantization: {@code h} f32
     * [rows, 2·inter] (gate columns, then up columns, as a fused w13 GEMM writes them) into
     * {@code y} e4m3 [rows, inter] and {@code scale} f32 [rows, inter/128] with
     * {@code a = silu(g)·u} quantized as {@link Fp8#actQuant} does; inter % 128 == 0.
     */
    public static void siluQuant(Context ctx, Tensor y, Tensor scale, Tensor h) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Ops.checkOutput(ctx, "y", y);
        Ops.checkOutput(ctx, "scale", scale);
        Ops.checkTensor(ctx, "h", h);
        Ops.checkDType("y", y, DType.E4M3);
        Ops.checkDType("scale", scale, DType.F32);
        Ops.checkDType("h", h, DType.F32);
        Ops.checkRank("h", h, 2);
        long rows = h.dim(0), inter = h.dim(1) / 2;
        if (h.dim(1) % 256 != 0)
            throw new IllegalArgumentException("argument 'h' must have 2*inter columns with inter % 128 == 0, got "
                    + h.dim(1));
        Ops.checkShape("y", y, rows, inter);
        Ops.checkShape("scale", scale, rows, inter / 128);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_moe_silu_quant(ctx.handle(), y.segment(), y.byteSize(), scale.segment(),
                    scale.byteSize(), h.segment(), h.byteSize(), rows, inter));
        } finally {
            ctx.release();
        }
    }

    // ------------------------------------------------------------------ moe.forward

    /**
     * The weights of one MoE layer. Routed experts: {@code w13} [E, 2·inter, H] (rows
     * {@code 0..inter-1} = gate_proj (w1), {@code inter..2·inter-1} = up_proj (w3)) and {@code w2}
     * [E, H, inter]; shared expert (null for none): {@code sharedW13} [2·sharedInter, H],
     * {@code sharedW2} [H, sharedInter]. FP8 weights are e4m3 with f32 128x128 block scales
     * ({@code [.., ceil(n/128), k/128]}, as {@link Fp8#weightQuant} writes them); bf16 and f32
     * weights have null scales. All four weight tensors have the same dtype. {@code wg} f32|bf16 [E, H] and {@code bias} f32 [E] (or null) are the router's.
     */
    public record Layer(GateConfig gate, Tensor wg, Tensor bias, Tensor w13, Tensor w13Scale, Tensor w2, Tensor w2Scale,
                        Tensor sharedW13, Tensor sharedW13Scale, Tensor sharedW2, Tensor sharedW2Scale) {
        public Layer {
            Objects.requireNonNull(gate, "argument 'gate' is null");
            Objects.requireNonNull(wg, "argument 'wg' is null");
            Objects.requireNonNull(w13, "argument 'w13' is null");
            Objects.requireNonNull(w2, "argument 'w2' is null");
            if ((sharedW13 == null) != (sharedW2 == null))
                throw new IllegalArgumentException("arguments 'sharedW13' and 'sharedW2' must be both null or both given");
        }

        public long hidden() { return wg.dim(1); }

        public long inter() { return w2.dim(2); }

        public long sharedInter() { return sharedW2 == null ? 0 : sharedW2.dim(1); }

        public DType weightType() { return w13.dtype(); }
    }

    /**
     * moe.forward: one whole layer in one native call (composed in C of moe.gate, moe.dispatch,
     * the expert GEMMs, {@code silu(g)·u} and moe.combine plus the shared expert). The weight dtype
     * picks the expert arithmetic: e4m3 weights take fp8.act_quant 1x128 activations through
     * gemm.fp8_grouped_contiguous, with {@code silu(g)·u} quantized 1x128 in the same pass; bf16
     * weights take bf16-rounded activations through gemm.bf16 per expert ({@code silu(g)·u}
     * rounded to bf16); f32 weights take the exact f32 activations through gemm.f32 per expert
     * ({@code silu(g)·u} kept in f32, nothing rounded but the f32 arithmetic itself). {@code x}
     * f32|bf16 [T, H], {@code y} f32|bf16 [T, H]; {@code counts} i32 [E] (or null) receives the
     * rows each expert got, for {@link #biasUpdate}. On CUDA with bf16 or f32 weights the call waits
     * once for the device (the per-expert GEMMs need the row ranges on the host).
     */
    public static void forward(Context ctx, Tensor y, Tensor x, Layer layer, Tensor counts) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Objects.requireNonNull(layer, "argument 'layer' is null");
        GateConfig c = layer.gate();
        Ops.checkTensor(ctx, "x", x);
        Ops.checkOutput(ctx, "y", y);
        Ops.checkDType("x", x, DType.F32, DType.BF16);
        Ops.checkDType("y", y, DType.F32, DType.BF16);
        Ops.checkRank("x", x, 2);
        long t = x.dim(0), h = x.dim(1), inter = layer.inter(), si = layer.sharedInter(), e = c.experts();
        Ops.checkShape("y", y, t, h);
        Ops.checkShape("wg", layer.wg(), e, h);
        DType wt = layer.weightType();
        if (wt != DType.E4M3 && wt != DType.BF16 && wt != DType.F32)
            throw new IllegalArgumentException("argument 'w13' must be e4m3, bf16 or f32, got " + wt.label());
        checkWeight(ctx, "w13", layer.w13(), layer.w13Scale(), wt, e, 2 * inter, h);
        checkWeight(ctx, "w2", layer.w2(), layer.w2Scale(), wt, e, h, inter);
        if (si > 0) {
            checkWeight(ctx, "sharedW13", layer.sharedW13(), layer.sharedW13Scale(), wt, 0, 2 * si, h);
            checkWeight(ctx, "sharedW2", layer.sharedW2(), layer.sharedW2Scale(), wt, 0, h, si);
        }
        if (counts != null) {
            Ops.checkOutput(ctx, "counts", counts);
            Ops.checkDType("counts", counts, DType.I32);
            Ops.checkShape("counts", counts, e);
        }
        if (layer.bias() != null) {
            Ops.checkTensor(ctx, "bias", layer.bias());
            Ops.checkShape("bias", layer.bias(), e);
        }
        Ops.checkTensor(ctx, "wg", layer.wg());
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_moe_forward(ctx.handle(), y.segment(), y.byteSize(), y.dtype().code(), seg(counts),
                    size(counts), x.segment(), x.byteSize(), x.dtype().code(), layer.wg().segment(),
                    layer.wg().byteSize(), layer.wg().dtype().code(), seg(layer.bias()), size(layer.bias()), wt.code(),
                    layer.w13().segment(), layer.w13().byteSize(), seg(layer.w13Scale()), size(layer.w13Scale()),
                    layer.w2().segment(), layer.w2().byteSize(), seg(layer.w2Scale()), size(layer.w2Scale()),
                    seg(layer.sharedW13()), size(layer.sharedW13()), seg(layer.sharedW13Scale()),
                    size(layer.sharedW13Scale()), seg(layer.sharedW2()), size(layer.sharedW2()),
                    seg(layer.sharedW2Scale()), size(layer.sharedW2Scale()), t, h, inter, si, e, c.topK(), c.nGroup(),
                    c.topkGroup(), c.scoreFunction().code(), c.normTopkProb() ? 1 : 0, c.routedScalingFactor()));
        } finally {
            ctx.release();
        }
    }

    /** w [groups, n, k] (groups == 0: [n, k]) of dtype wt, fp8 scales [groups, ceil(n/128), k/128], else no scales. */
    private static void checkWeight(Context ctx, String arg, Tensor w, Tensor scale, DType wt, long groups, long n, long k) {
        Ops.checkTensor(ctx, arg, w);
        Ops.checkDType(arg, w, wt);
        if (groups > 0) Ops.checkShape(arg, w, groups, n, k);
        else Ops.checkShape(arg, w, n, k);
        if (wt == DType.E4M3) {
            Objects.requireNonNull(scale, "argument '" + arg + "Scale' is null (fp8 weights need scales)");
            Ops.checkTensor(ctx, arg + "Scale", scale);
            Ops.checkDType(arg + "Scale", scale, DType.F32);
            long nb = (n + 127) / 128, kb = k / 128;
            if (groups > 0) Ops.checkShape(arg + "Scale", scale, groups, nb, kb);
            else Ops.checkShape(arg + "Scale", scale, nb, kb);
        } else if (scale != null) {
            throw new IllegalArgumentException("argument '" + arg + "Scale' must be null for " + wt.label() + " weights");
        }
    }

    private static MemorySegment seg(Tensor t) { return t == null ? MemorySegment.NULL : t.segment(); }

    private static long size(Tensor t) { return t == null ? 0 : t.byteSize(); }
}
