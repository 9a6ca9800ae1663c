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
 *
 * <p>Resident weights (always on CUDA, on the CPU with {@link Model.Options#withResidentWeights}): every
 * tensor is copied into memory the context owns (device memory on CUDA), packed or dequantized there,
 * and the file pages it came from are released; nothing of the checkpoint is read after loading.
 */
final class Weights {
    /**
     * A linear layer {@code y[T, n] = x[T, k] · Wᵀ}: {@code w} e4m3 with {@code scale} (block
     * scale_inv) or bf16/f32 with a null scale; {@code deq} the bf16/f32 weight used by gemm.f32.
     */
    record Linear(String name, Tensor w, Tensor scale, Tensor deq, long n, long k) {
        boolean isFp8() { return scale != null; }
    }

    record Attention(Linear qA, Tensor qANorm, Linear qB, Linear kvA, Tensor kvANorm, Linear kvB, Tensor wkvB,
                     Linear o) {}

    /** A SwiGLU MLP: down(silu(gate(x)) · up(x)). */
    record Mlp(Linear gate, Linear up, Linear down) {}

    /** A MoE layer: router, experts (per expert, or packed for moe.forward), shared experts. */
    record MoeLayer(Tensor router, Tensor bias, Moe.GateConfig gateConfig, Mlp[] experts, Mlp shared, Moe.Layer packed) {}

    /** One transformer block: attention, then either a dense MLP or a MoE layer. */
    record Block(int index, Tensor inputNorm, Attention attn, Tensor postNorm, Mlp mlp, MoeLayer moe) {}

    /** The MTP module: eh_proj over [enorm(embedding); hnorm(hidden)], one block, its head. */
    record Mtp(Tensor embed, Tensor enorm, Tensor hnorm, Linear ehProj, Block block, Tensor headNorm, Linear head) {}

    final Tensor embed;
    final Block[] blocks;
    final Tensor finalNorm; // norm weights: f32 [d] in the context's memory
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
    private final boolean resident; // copy every tensor into the context's memory (device memory on CUDA)
    private final java.util.Set<String> counted = new java.util.HashSet<>();
    private final java.util.Set<Long> owned = new java.util.HashSet<>(); // addresses of the tensors this class allocated

    Weights(Context ctx, Checkpoint ckpt, ModelConfig cfg, Model.GemmMode mode, boolean loadMtp, DType act, boolean resident,
            Arena arena, Progress progress) {
        this.resident = resident || ctx.isCuda();
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
        Tensor qANorm = null;
        if (cfg.qLoraRank() > 0) {
            qA = linear(p + "self_attn.q_a_proj.weight", cfg.qLoraRank(), d);
            qANorm = norm(p + "self_attn.q_a_layernorm.weight", cfg.qLoraRank());
            qB = linear(p + "self_attn.q_b_proj.weight", (long) h * qk, cfg.qLoraRank());
        } else {
            qB = linear(p + "self_attn.q_proj.weight", (long) h * qk, d);
        }
        Linear kvA = linear(p + "self_attn.kv_a_proj_with_mqa.weight", cfg.kvLoraRank() + cfg.qkRopeHeadDim(), d);
        Tensor kvANorm = norm(p + "self_attn.kv_a_layernorm.weight", cfg.kvLoraRank());
        Linear kvB = linear(p + "self_attn.kv_b_proj.weight", (long) h * (cfg.qkNopeHeadDim() + cfg.vHeadDim()),
                cfg.kvLoraRank());
        // the absorbed form reads W_UK / W_UV from the dequantized kv_b_proj (bf16, like the reference)
        Tensor wkvB = kvB.deq() != null ? kvB.deq() : dequant(kvB.w(), kvB.scale());
        Linear o = linear(p + "self_attn.o_proj.weight", d, (long) h * cfg.vHeadDim());
        Attention attn = new Attention(qA, qANorm, qB, kvA, kvANorm, kvB, wkvB, o);
        Tensor in = norm(p + "input_layernorm.weight", d), post = norm(p + "post_attention_layernorm.weight", d);
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
        router = place(floatOrBf16(p + "gate.weight", router));
        count(p + "gate.weight");
        Tensor bias = null;
        if (ckpt.contains(p + "gate.e_score_correction_bias")) {
            bias = ckpt.tensor(p + "gate.e_score_correction_bias");
            checkShape(p + "gate.e_score_correction_bias", bias, e);
            bias = place(bias.dtype() != DType.F32 ? copyToF32(bias) : bias);
            count(p + "gate.e_score_correction_bias");
        }
        boolean hasShared = cfg.nSharedExperts() > 0;
        String first = p + "experts.0.gate_proj.weight", sharedGate = p + "shared_experts.gate_proj.weight";
        boolean packFp8 = mode == Model.GemmMode.FP8 && ckpt.info(first).dsk4jType() == DType.E4M3
                && inter % 128 == 0 && (!hasShared || ckpt.contains(sharedGate)
                && ckpt.info(sharedGate).dsk4jType() == DType.E4M3);
        if (!packFp8) {
            Mlp shared = hasShared ? mlp(p + "shared_experts.", (long) inter * cfg.nSharedExperts()) : null;
            Mlp[] experts = new Mlp[e];
            for (int i = 0; i < e; i++) experts[i] = mlp(p + "experts." + i + ".", inter);
            return new MoeLayer(router, bias, cfg.gate(), experts, shared, null);
        }
        // moe.forward layout: w13 [E, 2I, D] (gate rows then up rows), w2 [E, D, I], 128x128 block scales.
        // Packed in host memory (the model's own on the CPU; a staging arena uploaded and freed on CUDA).
        long kb = d / 128, ib = inter / 128, db = (d + 127) / 128;
        try (Arena tmp = ctx.isCuda() ? Arena.ofConfined() : null) {
            Tensor w13 = staging(tmp, DType.E4M3, e, 2L * inter, d), w13s = staging(tmp, DType.F32, e, 2 * ib, kb);
            Tensor w2 = staging(tmp, DType.E4M3, e, d, inter), w2s = staging(tmp, DType.F32, e, db, ib);
            for (int i = 0; i < e; i++) {
                String q = p + "experts." + i + ".";
                packInto(w13, w13s, i, 0, q + "gate_proj.weight", inter, d);
                packInto(w13, w13s, i, inter, q + "up_proj.weight", inter, d);
                packInto(w2, w2s, i, 0, q + "down_proj.weight", d, inter);
            }
            Tensor sw13 = null, sw13s = null, sw2 = null, sw2s = null;
            if (hasShared) { // gate and up packed into one [2·si, D] weight; down used as it is
                long si = (long) inter * cfg.nSharedExperts();
                Linear down = linear(p + "shared_experts.down_proj.weight", d, si);
                sw13 = staging(tmp, DType.E4M3, 1, 2 * si, d);
                sw13s = staging(tmp, DType.F32, 1, 2 * si / 128, kb);
                packInto(sw13, sw13s, 0, 0, p + "shared_experts.gate_proj.weight", si, d);
                packInto(sw13, sw13s, 0, si, p + "shared_experts.up_proj.weight", si, d);
                sw13 = place(sw13.reshape(2 * si, d));
                sw13s = place(sw13s.reshape(2 * si / 128, kb));
                if (!down.isFp8())
                    throw new IllegalArgumentException(ckpt.info(down.name()).file().getFileName() + ": tensor '"
                            + down.name() + "' is " + down.deq().dtype().label() + ", expected e4m3 like the gate");
                sw2 = down.w();
                sw2s = down.scale();
            }
            Moe.Layer packed = new Moe.Layer(cfg.gate(), router, bias, place(w13), place(w13s), place(w2), place(w2s),
                    sw13, sw13s, sw2, sw2s);
            return new MoeLayer(router, bias, cfg.gate(), null, null, packed);
        }
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
            if (mode == Model.GemmMode.DEQUANT) {
                Tensor deq = dequant(w, s);
                release(w);
                lin = new Linear(name, w, s, deq, n, k); // w, s: only for isFp8(); the GEMMs use deq
            } else {
                lin = new Linear(name, place(w), place(s), null, n, k);
            }
        } else {
            Tensor deq = floatOrBf16(name, w);
            if (act == DType.BF16 && deq.dtype() == DType.F32) deq = copyToBf16(deq);
            lin = new Linear(name, null, null, place(deq), n, k);
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

    /** The bf16 dequantization of e4m3 {@code w} with block scales {@code s}, computed by the context into its memory. */
    private Tensor dequant(Tensor w, Tensor s) {
        Tensor y = own(DType.BF16, w.dim(0), w.dim(1));
        if (!ctx.isCuda() || (w.isDevice() && s.isDevice())) {
            Fp8.weightDequant(ctx, y, w, s);
            return y;
        }
        try (Arena tmp = Arena.ofConfined()) { // the fp8 source goes up only for the dequantization
            Fp8.weightDequant(ctx, y, upload(tmp, w), upload(tmp, s));
        }
        return y;
    }

    /** {@code t} in the context's memory: itself unless resident, else a copy the model owns (file pages released). */
    private Tensor place(Tensor t) {
        if (!resident || owned.contains(t.segment().address()) || t.isDevice()) return t;
        Tensor o = own(t.dtype(), t.shape());
        ctx.copy(o, t);
        release(t);
        return o;
    }

    private Tensor upload(Arena tmp, Tensor t) {
        Tensor o = ctx.allocate(tmp, t.dtype(), t.shape());
        ctx.copy(o, t);
        return o;
    }

    /** Host memory for a tensor built in Java: the model's own (CPU), or {@code tmp}'s to be uploaded (CUDA). */
    private Tensor staging(Arena tmp, DType dt, long... shape) {
        return tmp != null ? Tensor.allocate(tmp, dt, shape) : own(dt, shape); // own: host memory on the CPU
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
        Tensor t = converted(DType.F32, w.shape());
        MemorySegment.copy(w.toFloatArray(), 0, t.segment(), java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, 0,
                (int) w.numel());
        return t;
    }

    private Tensor copyToBf16(Tensor w) {
        Tensor t = converted(DType.BF16, w.shape());
        float[] v = w.toFloatArray();
        for (int i = 0; i < v.length; i++)
            t.segment().set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 2L * i, HostOps.bf16(v[i]));
        return t;
    }

    private Tensor table(String name, long v, long d) {
        Tensor t = ckpt.tensor(name);
        checkShape(name, t, v, d);
        count(name);
        return place(floatOrBf16(name, t));
    }

    /** A norm weight as f32 [d] in the context's memory (always a copy: small, and aligned for the ops). */
    private Tensor norm(String name, long d) {
        Tensor t = ckpt.tensor(name);
        checkShape(name, t, d);
        count(name);
        Tensor f = converted(DType.F32, d);
        MemorySegment.copy(floatOrBf16(name, t).toFloatArray(), 0, f.segment(),
                java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, 0, (int) d);
        return place(f);
    }

    /** Advances the progress bar by the bytes of tensor {@code name}, once per name. */
    private void count(String name) {
        if (counted.add(name)) progress.advance(ckpt.info(name).end() - ckpt.info(name).begin());
    }

    /** A tensor the model owns in the context's memory (device memory on CUDA). */
    private Tensor own(DType dt, long... shape) {
        Tensor t = ctx.allocate(arena, dt, shape);
        ownedBytes += t.byteSize();
        owned.add(t.segment().address());
        return t;
    }

    /** Host memory for a conversion written in Java: the model's own (CPU), or garbage-collected staging (CUDA). */
    private Tensor converted(DType dt, long... shape) {
        return ctx.isCuda() ? Tensor.allocate(Arena.ofAuto(), dt, shape) : own(dt, shape); // own: host memory on the CPU
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
