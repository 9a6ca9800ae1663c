package dev.dsk4j.model;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Fp8;
import dev.dsk4j.Moe;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * The weights of a model as the forward pass uses them, read from a {@link Checkpoint} with the
 * Hugging Face names of DESIGN.md §4.6. FP8 weights stay zero-copy views of the mapped files in
 * {@code fp8} mode; in {@code dequant} mode they are dequantized once to bf16 (the reference's bf16
 * path). MoE experts in {@code fp8} mode are packed into the [E, 2·I, D] / [E, D, I] layout of
 * {@link Moe#forward} (the source pages are released after the copy).
 */
final class Weights {
    /**
     * A linear layer {@code y[T, n] = x[T, k] · Wᵀ}: {@code w} e4m3 with {@code scale} (block
     * scale_inv) or bf16/f32 with a null scale; {@code deq} the bf16/f32 weight used by gemm.f32.
     */
    record Linear(String name, Tensor w, Tensor scale, Tensor deq, long n, long k) {
        boolean isFp8() { return scale != null; }
    }

    record Attention(Linear qA, float[] qANorm, Linear qB, Linear kvA, float[] kvANorm, Linear kvB, Tensor wkvB,
                     Linear o) {}

    /** A SwiGLU MLP: down(silu(gate(x)) · up(x)). */
    record Mlp(Linear gate, Linear up, Linear down) {}

    /** A MoE layer: router, experts (per expert, or packed for moe.forward), shared experts. */
    record MoeLayer(Tensor router, Tensor bias, Moe.GateConfig gateConfig, Mlp[] experts, Mlp shared, Moe.Layer packed) {}

    /** One transformer block: attention, then either a dense MLP or a MoE layer. */
    record Block(int index, float[] inputNorm, Attention attn, float[] postNorm, Mlp mlp, MoeLayer moe) {}

    /** The MTP module: eh_proj over [enorm(embedding); hnorm(hidden)], one block, its head. */
    record Mtp(Tensor embed, float[] enorm, float[] hnorm, Linear ehProj, Block block, float[] headNorm, Linear head) {}

    final Tensor embed;
    final Block[] blocks;
    final float[] finalNorm;
    final Linear lmHead;
    final Mtp mtp; // null when the checkpoint has none or it was not asked for
    long ownedBytes; // bytes this class allocated (dequantized / packed copies)

    private final Context ctx;
    private final Checkpoint ckpt;
    private final Arena arena;
    private final Model.GemmMode mode;
    private final DType act; // activations: f32 (gemm.f32 takes f32 or bf16 weights) or bf16 (gemm.bf16: bf16 weights)
    private final ModelConfig cfg;
    private final Progress progress;
    private final java.util.Set<String> counted = new java.util.HashSet<>();

    Weights(Context ctx, Checkpoint ckpt, ModelConfig cfg, Model.GemmMode mode, boolean loadMtp, DType act, Arena arena,
            Progress progress) {
        this.act = act;
        this.ctx = ctx;
        this.ckpt = ckpt;
        this.cfg = cfg;
        this.mode = mode;
        this.arena = arena;
        this.progress = progress;
        int d = cfg.hiddenSize();
        embed = table("model.embed_tokens.weight", cfg.vocabSize(), d);
        blocks = new Block[cfg.numHiddenLayers()];
        for (int l = 0; l < blocks.length; l++) blocks[l] = block(l);
        finalNorm = norm("model.norm.weight", d);
        lmHead = linear("lm_head.weight", cfg.vocabSize(), d);
        Mtp m = null;
        if (loadMtp && cfg.numNextnPredictLayers() > 0) {
            int n = cfg.numHiddenLayers();
            String p = "model.layers." + n + ".";
            Tensor e = ckpt.contains(p + "embed_tokens.weight") ? table(p + "embed_tokens.weight", cfg.vocabSize(), d) : embed;
            Linear head = ckpt.contains(p + "shared_head.head.weight")
                    ? linear(p + "shared_head.head.weight", cfg.vocabSize(), d) : lmHead;
            m = new Mtp(e, norm(p + "enorm.weight", d), norm(p + "hnorm.weight", d), linear(p + "eh_proj.weight", d, 2L * d),
                    block(n), norm(p + "shared_head.norm.weight", d), head);
        }
        mtp = m;
    }

    private Block block(int l) {
        String p = "model.layers." + l + ".";
        int d = cfg.hiddenSize(), h = cfg.numAttentionHeads();
        int qk = cfg.qkNopeHeadDim() + cfg.qkRopeHeadDim();
        Linear qA = null, qB;
        float[] qANorm = null;
        if (cfg.qLoraRank() > 0) {
            qA = linear(p + "self_attn.q_a_proj.weight", cfg.qLoraRank(), d);
            qANorm = norm(p + "self_attn.q_a_layernorm.weight", cfg.qLoraRank());
            qB = linear(p + "self_attn.q_b_proj.weight", (long) h * qk, cfg.qLoraRank());
        } else {
            qB = linear(p + "self_attn.q_proj.weight", (long) h * qk, d);
        }
        Linear kvA = linear(p + "self_attn.kv_a_proj_with_mqa.weight", cfg.kvLoraRank() + cfg.qkRopeHeadDim(), d);
        float[] kvANorm = norm(p + "self_attn.kv_a_layernorm.weight", cfg.kvLoraRank());
        Linear kvB = linear(p + "self_attn.kv_b_proj.weight", (long) h * (cfg.qkNopeHeadDim() + cfg.vHeadDim()),
                cfg.kvLoraRank());
        // the absorbed form reads W_UK / W_UV from the dequantized kv_b_proj (bf16, like the reference)
        Tensor wkvB = kvB.deq() != null ? kvB.deq() : dequant(kvB.w(), kvB.scale());
        Linear o = linear(p + "self_attn.o_proj.weight", d, (long) h * cfg.vHeadDim());
        Attention attn = new Attention(qA, qANorm, qB, kvA, kvANorm, kvB, wkvB, o);
        float[] in = norm(p + "input_layernorm.weight", d), post = norm(p + "post_attention_layernorm.weight", d);
        if (!cfg.isMoeLayer(l)) {
            Mlp mlp = mlp(p + "mlp.", cfg.intermediateSize());
            return new Block(l, in, attn, post, mlp, null);
        }
        return new Block(l, in, attn, post, null, moe(p + "mlp."));
    }

    private MoeLayer moe(String p) {
        int d = cfg.hiddenSize(), e = cfg.nRoutedExperts(), inter = cfg.moeIntermediateSize();
        Tensor router = ckpt.tensor(p + "gate.weight");
        checkShape(p + "gate.weight", router, e, d);
        router = floatOrBf16(p + "gate.weight", router);
        count(p + "gate.weight");
        Tensor bias = null;
        if (ckpt.contains(p + "gate.e_score_correction_bias")) {
            bias = ckpt.tensor(p + "gate.e_score_correction_bias");
            checkShape(p + "gate.e_score_correction_bias", bias, e);
            if (bias.dtype() != DType.F32) bias = copyToF32(bias);
            count(p + "gate.e_score_correction_bias");
        }
        Mlp shared = cfg.nSharedExperts() > 0 ? mlp(p + "shared_experts.", (long) inter * cfg.nSharedExperts()) : null;
        String first = p + "experts.0.gate_proj.weight";
        boolean packFp8 = mode == Model.GemmMode.FP8 && ckpt.info(first).dsk4jType() == DType.E4M3
                && inter % 128 == 0 && (shared == null || shared.gate().isFp8());
        if (!packFp8) {
            Mlp[] experts = new Mlp[e];
            for (int i = 0; i < e; i++) experts[i] = mlp(p + "experts." + i + ".", inter);
            return new MoeLayer(router, bias, cfg.gate(), experts, shared, null);
        }
        // moe.forward layout: w13 [E, 2I, D] (gate rows then up rows), w2 [E, D, I], 128x128 block scales
        long kb = d / 128, ib = inter / 128, db = (d + 127) / 128;
        Tensor w13 = own(DType.E4M3, e, 2L * inter, d), w13s = own(DType.F32, e, 2 * ib, kb);
        Tensor w2 = own(DType.E4M3, e, d, inter), w2s = own(DType.F32, e, db, ib);
        for (int i = 0; i < e; i++) {
            String q = p + "experts." + i + ".";
            packInto(w13, w13s, i, 0, q + "gate_proj.weight", inter, d);
            packInto(w13, w13s, i, inter, q + "up_proj.weight", inter, d);
            packInto(w2, w2s, i, 0, q + "down_proj.weight", d, inter);
        }
        Tensor sw13 = null, sw13s = null, sw2 = null, sw2s = null;
        if (shared != null) {
            long si = (long) inter * cfg.nSharedExperts();
            sw13 = own(DType.E4M3, 1, 2 * si, d);
            sw13s = own(DType.F32, 1, 2 * si / 128, kb);
            packInto(sw13, sw13s, 0, 0, p + "shared_experts.gate_proj.weight", si, d);
            packInto(sw13, sw13s, 0, si, p + "shared_experts.up_proj.weight", si, d);
            sw13 = sw13.reshape(2 * si, d);
            sw13s = sw13s.reshape(2 * si / 128, kb);
            sw2 = shared.down().w();
            sw2s = shared.down().scale();
        }
        Moe.Layer packed = new Moe.Layer(cfg.gate(), router, bias, w13, w13s, w2, w2s, sw13, sw13s, sw2, sw2s);
        return new MoeLayer(router, bias, cfg.gate(), null, shared, packed);
    }

    /** Copies fp8 weight {@code name} [n, k] and its scales into expert {@code e}, starting at row {@code row0}. */
    private void packInto(Tensor w, Tensor s, int e, long row0, String name, long n, long k) {
        Tensor src = ckpt.tensor(name);
        checkShape(name, src, n, k);
        if (src.dtype() != DType.E4M3)
            throw new IllegalArgumentException(ckpt.info(name).file().getFileName() + ": tensor '" + name + "' is "
                    + src.dtype().label() + ", expected e4m3 like the other experts");
        Tensor sc = scaleOf(name, n, k);
        long rows = w.dim(1), cols = w.dim(2);
        MemorySegment.copy(src.segment(), 0, w.segment(), ((long) e * rows + row0) * cols, n * k);
        long srows = s.dim(1), scols = s.dim(2);
        MemorySegment.copy(sc.segment(), 0, s.segment(), ((long) e * srows + row0 / 128) * scols * 4, sc.byteSize());
        release(src);
        count(name);
        count(name + "_scale_inv");
    }

    private static void release(Tensor t) {
        try {
            if (t.segment().isMapped()) t.segment().unload();
        } catch (UnsupportedOperationException | IllegalStateException ignored) {
            // not a mapping of a file (a copy): nothing to release
        }
    }

    private Mlp mlp(String p, long inter) {
        int d = cfg.hiddenSize();
        return new Mlp(linear(p + "gate_proj.weight", inter, d), linear(p + "up_proj.weight", inter, d),
                linear(p + "down_proj.weight", d, inter));
    }

    /** Weight {@code name} [n, k]: e4m3 (+ scale_inv) or bf16/f16/f32. */
    Linear linear(String name, long n, long k) {
        Tensor w = ckpt.tensor(name);
        checkShape(name, w, n, k);
        Linear lin;
        if (w.dtype() == DType.E4M3) {
            Tensor s = scaleOf(name, n, k);
            Tensor deq = mode == Model.GemmMode.DEQUANT ? dequant(w, s) : null;
            if (deq != null) release(w);
            lin = new Linear(name, w, s, deq, n, k);
        } else {
            Tensor deq = floatOrBf16(name, w);
            if (act == DType.BF16 && deq.dtype() == DType.F32) deq = copyToBf16(deq);
            lin = new Linear(name, null, null, deq, n, k);
        }
        count(name);
        if (lin.isFp8()) count(name + "_scale_inv");
        return lin;
    }

    private Tensor scaleOf(String name, long n, long k) {
        String sn = name + "_scale_inv";
        if (!ckpt.contains(sn))
            throw new IllegalArgumentException(ckpt.info(name).file().getFileName() + ": tensor '" + name
                    + "' is e4m3 but '" + sn + "' is missing");
        if (k % 128 != 0)
            throw new IllegalArgumentException("tensor '" + name + "' is e4m3 with " + k
                    + " columns; the FP8 kernels need a multiple of 128");
        long[] shape = Fp8.blockScaleShape(n, k);
        return ckpt.tensor(sn, DType.F32, shape);
    }

    private Tensor dequant(Tensor w, Tensor s) {
        Tensor y = own(DType.BF16, w.dim(0), w.dim(1));
        Fp8.weightDequant(ctx, y, w, s);
        return y;
    }

    private Tensor floatOrBf16(String name, Tensor w) {
        return switch (w.dtype()) {
            case F32, BF16 -> w;
            case F16 -> copyToF32(w);
            default -> throw new IllegalArgumentException(ckpt.info(name).file().getFileName() + ": tensor '" + name
                    + "' has dtype " + w.dtype().label() + "; expected e4m3, bf16, f16 or f32");
        };
    }

    private Tensor copyToF32(Tensor w) {
        Tensor t = own(DType.F32, w.shape());
        MemorySegment.copy(w.toFloatArray(), 0, t.segment(), java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, 0,
                (int) w.numel());
        return t;
    }

    private Tensor copyToBf16(Tensor w) {
        Tensor t = own(DType.BF16, w.shape());
        float[] v = w.toFloatArray();
        for (int i = 0; i < v.length; i++)
            t.segment().set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 2L * i, HostOps.bf16(v[i]));
        return t;
    }

    private Tensor table(String name, long v, long d) {
        Tensor t = ckpt.tensor(name);
        checkShape(name, t, v, d);
        count(name);
        return floatOrBf16(name, t);
    }

    private float[] norm(String name, long d) {
        Tensor t = ckpt.tensor(name);
        checkShape(name, t, d);
        count(name);
        return floatOrBf16(name, t).toFloatArray();
    }

    /** Advances the progress bar by the bytes of tensor {@code name}, once per name. */
    private void count(String name) {
        if (counted.add(name)) progress.advance(ckpt.info(name).end() - ckpt.info(name).begin());
    }

    private Tensor own(DType dt, long... shape) {
        Tensor t = Tensor.allocate(arena, dt, shape);
        ownedBytes += t.byteSize();
        return t;
    }

    private void checkShape(String name, Tensor t, long... shape) {
        if (!java.util.Arrays.equals(t.shape(), shape))
            throw new IllegalArgumentException(ckpt.info(name).file().getFileName() + ": tensor '" + name
                    + "' has shape " + java.util.Arrays.toString(t.shape()) + ", expected "
                    + java.util.Arrays.toString(shape) + " from config.json");
    }

    /** Every block in order, the MTP block last when present. */
    List<Block> allBlocks() {
        List<Block> out = new ArrayList<>(List.of(blocks));
        if (mtp != null) out.add(mtp.block());
        return out;
    }
}
