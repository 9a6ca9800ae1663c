package dev.dsk4j.model;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Dsk4jException;
import dev.dsk4j.Elementwise;
import dev.dsk4j.Fp8;
import dev.dsk4j.Gemm;
import dev.dsk4j.Mla;
import dev.dsk4j.Moe;
import dev.dsk4j.Rope;
import dev.dsk4j.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * A DeepSeek-V2/V3-family model (DESIGN.md §4.6) over a Hugging Face checkpoint directory:
 * embedding, blocks {@code x += attn(rmsnorm(x)); x += ffn(rmsnorm(x))} with MLA attention (the
 * compute form for fresh sequences, the absorbed form over the paged latent cache otherwise), dense
 * or MoE feed-forward layers, final norm and LM head, and the MTP module. Activations are f32 (or bf16,
 * {@link Options#withActivations}). Every step is a native op of the model's context, so the same
 * model runs on the CPU and on CUDA: on a CUDA context the weights are uploaded once at load, the
 * activations and caches live in device memory, and only token ids go up and logits come back.
 *
 * <pre>{@code
 * try (Context ctx = Context.open(Device.cpu());
 *      Model model = Model.load(ctx, Path.of("DeepSeek-V3"), Model.Options.defaults());
 *      Session s = model.newSession(1, 4096, Mla.CacheFormat.BF16)) {
 *     Generation g = new Generator(model).generate(s, List.of(promptIds), GenerationConfig.greedy(64));
 * }
 * }</pre>
 *
 * <p>The model holds the checkpoint's files mapped (on the CPU, FP8 weights are used in place in
 * {@code fp8} mode unless {@link Options#withResidentWeights}); close it to unmap them. A model may be used by one thread at a time (the op profile is
 * per model); load it once per thread for parallel use.
 */
public final class Model implements AutoCloseable {
    /** How linear layers run. */
    public enum GemmMode {
        /** act_quant of the activations (1x128 groups) and gemm.fp8_block with the FP8 weights. */
        FP8,
        /** Weights dequantized once to bf16 (the reference's bf16 path), gemm.f32 on f32 activations. */
        DEQUANT
    }

    /**
     * Loading options: the GEMM mode, whether to load the MTP module, a progress bar on stderr, and the
     * activation dtype: f32 (default; {@code dequant} mode is then exact to f32 rounding) or bf16 (the
     * DeepSeek reference's default dtype: activations rounded to bf16 between ops, half the activation memory,
     * {@code dequant} mode through gemm.bf16). Accumulation is f32 either way; logits are f32.
     */
    public record Options(GemmMode gemm, boolean mtp, boolean progress, DType activations, boolean residentWeights) {
        public Options {
            Objects.requireNonNull(gemm, "argument 'gemm' is null");
            Objects.requireNonNull(activations, "argument 'activations' is null");
            if (activations != DType.F32 && activations != DType.BF16)
                throw new IllegalArgumentException("argument 'activations' must be f32 or bf16, got " + activations.label());
        }

        public Options(GemmMode gemm, boolean mtp, boolean progress) { this(gemm, mtp, progress, DType.F32, false); }

        public Options(GemmMode gemm, boolean mtp, boolean progress, DType activations) {
            this(gemm, mtp, progress, activations, false);
        }

        /** fp8 GEMMs, MTP loaded when the checkpoint has it, no progress output, f32 activations, weights mapped. */
        public static Options defaults() { return new Options(GemmMode.FP8, true, false, DType.F32, false); }

        public Options withGemm(GemmMode g) { return new Options(g, mtp, progress, activations, residentWeights); }

        public Options withMtp(boolean m) { return new Options(gemm, m, progress, activations, residentWeights); }

        public Options withProgress(boolean p) { return new Options(gemm, mtp, p, activations, residentWeights); }

        public Options withActivations(DType d) { return new Options(gemm, mtp, progress, d, residentWeights); }

        /**
         * Copy every weight into memory the context owns at load time and release the file pages (on CUDA this
         * is always so: the weights go to device memory). On the CPU the default maps them: FP8 weights are read
         * in place from the page cache.
         */
        public Options withResidentWeights(boolean r) { return new Options(gemm, mtp, progress, activations, r); }
    }

    /**
     * New tokens of one sequence: {@code tokens} go to positions {@code start, start+1, ...} of
     * session slot {@code slot} ({@code start} at most the tokens the slot holds: a smaller start
     * rewinds the sequence, e.g. after a rejected draft).
     */
    public record Segment(int slot, int start, int[] tokens) {
        public Segment {
            Objects.requireNonNull(tokens, "argument 'tokens' is null");
            if (tokens.length == 0) throw new IllegalArgumentException("argument 'tokens' is empty");
            if (start < 0) throw new IllegalArgumentException("argument 'start' must be >= 0, got " + start);
        }
    }

    private final Context ctx;
    private final ModelConfig cfg;
    private final Checkpoint ckpt;
    private final Arena arena;
    private final Weights w;
    private final GemmMode mode;
    private final DType act;
    private final Rope.Table rope;
    private final double scale;
    private final Profile profile = new Profile();

    private Model(Context ctx, ModelConfig cfg, Checkpoint ckpt, Arena arena, Weights w, GemmMode mode, DType act) {
        this.act = act;
        this.ctx = ctx;
        this.cfg = cfg;
        this.ckpt = ckpt;
        this.arena = arena;
        this.w = w;
        this.mode = mode;
        this.rope = Rope.table(ctx, cfg.yarn());
        this.scale = cfg.softmaxScale();
    }

    /**
     * Loads {@code dir} ({@code config.json}, {@code *.safetensors}, optional
     * {@code model.safetensors.index.json}) for {@code ctx}.
     *
     * @throws IOException when a file cannot be read
     * @throws IllegalArgumentException naming the file, tensor or config key when something does not fit
     * @throws Dsk4jException when the context fails (e.g. out of device memory while uploading the weights)
     */
    public static Model load(Context ctx, Path dir, Options options) throws IOException {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Objects.requireNonNull(dir, "argument 'dir' is null");
        Objects.requireNonNull(options, "argument 'options' is null");
        ModelConfig cfg = ModelConfig.read(dir.resolve("config.json"));
        Checkpoint ckpt = Checkpoint.open(dir);
        Arena arena = Arena.ofShared();
        try {
            Weights w;
            long total = ckpt.totalBytes();
            if (!options.mtp() || cfg.numNextnPredictLayers() == 0) { // the MTP layer's tensors are not read
                String mtpPrefix = "model.layers." + cfg.numHiddenLayers() + ".";
                for (String n : ckpt.names())
                    if (n.startsWith(mtpPrefix)) total -= ckpt.info(n).end() - ckpt.info(n).begin();
            }
            try (Progress t = options.progress() ? Progress.start("loading " + dir.getFileName(), total, "B")
                    : Progress.quiet()) {
                w = new Weights(ctx, ckpt, cfg, options.gemm(), options.mtp(), options.activations(),
                        options.residentWeights(), arena, t);
            }
            return new Model(ctx, cfg, ckpt, arena, w, options.gemm(), options.activations());
        } catch (RuntimeException | Error e) {
            arena.close();
            ckpt.close();
            throw e;
        }
    }

    public ModelConfig config() { return cfg; }

    public Context context() { return ctx; }

    public GemmMode gemmMode() { return mode; }

    /** The activation dtype (f32 or bf16). */
    public DType activations() { return act; }

    /** Time per op family since loading (or the last {@link Profile#reset()}). */
    public Profile profile() { return profile; }

    /** True when the MTP module was loaded. */
    public boolean hasMtp() { return w.mtp != null; }

    /** Bytes of the checkpoint's tensors. */
    public long checkpointBytes() { return ckpt.totalBytes(); }

    /**
     * Bytes the model allocated in its context's memory beyond the mapped checkpoint (dequantized, packed or
     * resident weights; device memory on CUDA).
     */
    public long ownedBytes() { return w.ownedBytes; }

    Weights weights() { return w; }

    /** A session of {@code maxBatch} slots of up to {@code maxSeqLen} tokens with caches of {@code format}. */
    public Session newSession(int maxBatch, int maxSeqLen, Mla.CacheFormat format) {
        Objects.requireNonNull(format, "argument 'format' is null");
        return new Session(this, maxBatch, maxSeqLen, format);
    }

    // ------------------------------------------------------------------ forward

    private record Group(int row0, int[] slots, int[] starts, int len) {}

    /** The token layout of one forward call. */
    private record Step(int tokens, boolean prefill, int[] cu, List<Group> groups, Tensor idsT, Tensor posT, Tensor slotT) {}

    private Step step(Session s, List<Segment> segs, int[] lengths, Arena a) {
        Objects.requireNonNull(s, "argument 'session' is null");
        Objects.requireNonNull(segs, "argument 'segments' is null");
        if (s.model != this) throw new IllegalArgumentException("argument 'session' belongs to another model");
        boolean[] seen = new boolean[s.maxBatch];
        int t = 0;
        boolean prefill = true;
        for (Segment g : segs) {
            if (g.slot() < 0 || g.slot() >= s.maxBatch)
                throw new IllegalArgumentException("segment slot " + g.slot() + " is outside [0, " + s.maxBatch + ")");
            if (seen[g.slot()]) throw new IllegalArgumentException("slot " + g.slot() + " appears twice in one call");
            seen[g.slot()] = true;
            if (g.start() > lengths[g.slot()])
                throw new IllegalArgumentException("segment of slot " + g.slot() + " starts at " + g.start()
                        + " but the slot holds only " + lengths[g.slot()] + " tokens");
            if ((long) g.start() + g.tokens().length > s.maxSeqLen)
                throw new IllegalArgumentException("slot " + g.slot() + " would hold " + (g.start() + g.tokens().length)
                        + " tokens, more than the session's maxSeqLen " + s.maxSeqLen);
            if (g.start() != 0) prefill = false;
            t += g.tokens().length;
        }
        int[] ids = new int[t], pos = new int[t], slots = new int[t], cu = new int[segs.size() + 1];
        List<Group> groups = new ArrayList<>();
        int r = 0;
        for (int i = 0; i < segs.size(); i++) {
            Segment g = segs.get(i);
            int n = g.tokens().length;
            for (int j = 0; j < n; j++) {
                int id = g.tokens()[j];
                if (id < 0 || id >= cfg.vocabSize())
                    throw new IllegalArgumentException("token id " + id + " at position " + j + " of the segment of slot "
                            + g.slot() + " is outside the vocabulary [0, " + cfg.vocabSize() + ")");
                ids[r + j] = id;
                pos[r + j] = g.start() + j;
                slots[r + j] = g.slot();
            }
            cu[i + 1] = r + n;
            // consecutive segments of one length share an mla.decode call
            if (groups.isEmpty() || groups.getLast().len() != n || groups.getLast().row0()
                    + groups.getLast().slots().length * n != r) {
                groups.add(new Group(r, new int[] {g.slot()}, new int[] {g.start()}, n));
            } else {
                Group last = groups.removeLast();
                int[] sl = Arrays.copyOf(last.slots(), last.slots().length + 1);
                int[] st = Arrays.copyOf(last.starts(), last.starts().length + 1);
                sl[sl.length - 1] = g.slot();
                st[st.length - 1] = g.start();
                groups.add(new Group(last.row0(), sl, st, n));
            }
            r += n;
        }
        return new Step(t, prefill, cu, groups, ints(a, ids), ints(a, pos), ints(a, slots));
    }

    /**
     * Runs the main blocks on {@code segments} (appending their latents to the session's caches)
     * and returns the last hidden states (before the final norm) [T, D] of the activation dtype, rows in
     * segment order, allocated from {@code arena} in the context's memory (device memory on CUDA). When every segment starts at 0 attention runs in the compute form
     * (mla.prefill), otherwise in the absorbed form over the cache (mla.decode).
     */
    public Tensor forward(Session s, List<Segment> segments, Arena arena) {
        Step st = step(s, segments, s.length, arena);
        long t0 = System.nanoTime();
        Tensor h = act(arena, st.tokens(), cfg.hiddenSize());
        Elementwise.embed(ctx, h, w.embed, st.idsT());
        profile.add(Profile.Family.ELEMENTWISE, System.nanoTime() - t0);
        for (Weights.Block b : w.blocks) block(s, b, b.index(), h, st, arena);
        for (Segment g : segments) s.length[g.slot()] = g.start() + g.tokens().length;
        return h;
    }

    /** Logits f32 [R, V] in host memory of {@code arena}, of hidden states {@code hidden} [R, D] (final norm, LM head). */
    public Tensor logits(Tensor hidden, Arena arena) {
        return head(hidden, w.finalNorm, w.lmHead, arena);
    }

    /**
     * The MTP module on {@code segments} whose tokens are the NEXT tokens (entry i of a segment pairs
     * token {@code ids[start + i + 1]} with the main model's hidden state at position
     * {@code start + i}, given as row i of {@code hidden} [T, D]); returns its hidden states [T, D].
     * Entry positions are those of the hidden states; the MTP block has its own cache.
     */
    public Tensor mtpForward(Session s, List<Segment> segments, Tensor hidden, Arena arena) {
        if (w.mtp == null) throw new IllegalStateException("the model has no MTP module loaded");
        Step st = step(s, segments, s.mtpLength, arena);
        int d = cfg.hiddenSize();
        if (hidden.rank() != 2 || hidden.dim(0) != st.tokens() || hidden.dim(1) != d || hidden.dtype() != act)
            throw new IllegalArgumentException("argument 'hidden' must be " + act.label() + " [" + st.tokens() + ", " + d
                    + "], got " + hidden);
        long t0 = System.nanoTime();
        Tensor cat = act(arena, st.tokens(), 2L * d);
        try (Arena tmp = Arena.ofConfined()) {
            Tensor e = act(tmp, st.tokens(), d), en = act(tmp, st.tokens(), d), hn = act(tmp, st.tokens(), d);
            Elementwise.embed(ctx, e, w.mtp.embed(), st.idsT());
            Elementwise.rmsnorm(ctx, en, e, w.mtp.enorm(), cfg.rmsNormEps());
            Elementwise.rmsnorm(ctx, hn, hidden, w.mtp.hnorm(), cfg.rmsNormEps());
            Elementwise.copyColumns(ctx, cat, 0, en, 0, d);
            Elementwise.copyColumns(ctx, cat, d, hn, 0, d);
        }
        profile.add(Profile.Family.ELEMENTWISE, System.nanoTime() - t0);
        Tensor x = linear(w.mtp.ehProj(), cat, arena);
        block(s, w.mtp.block(), w.blocks.length, x, st, arena);
        for (Segment g : segments) s.mtpLength[g.slot()] = g.start() + g.tokens().length;
        return x;
    }

    /** Logits f32 [R, V] in host memory of {@code arena}, of MTP hidden states (shared_head.norm, shared head). */
    public Tensor mtpLogits(Tensor hidden, Arena arena) {
        if (w.mtp == null) throw new IllegalStateException("the model has no MTP module loaded");
        return head(hidden, w.mtp.headNorm(), w.mtp.head(), arena);
    }

    /**
     * Logits [B][S][V] of {@code inputIds} (B sequences, positions 0..S-1 each) in one prefill,
     * for conformance and tests. Uses a temporary session.
     */
    public float[][][] logits(int[][] inputIds) {
        int b = inputIds.length, maxLen = 1;
        for (int[] ids : inputIds) maxLen = Math.max(maxLen, ids.length);
        try (Session s = newSession(Math.max(1, b), maxLen, Mla.CacheFormat.F32); Arena a = Arena.ofConfined()) {
            List<Segment> segs = new ArrayList<>();
            for (int i = 0; i < b; i++) if (inputIds[i].length > 0) segs.add(new Segment(i, 0, inputIds[i]));
            Tensor h = forward(s, segs, a);
            Tensor lg = logits(h, a);
            float[][][] out = new float[b][][];
            int r = 0;
            for (int i = 0; i < b; i++) {
                out[i] = new float[inputIds[i].length][];
                for (int j = 0; j < inputIds[i].length; j++) out[i][j] = HostOps.row(lg, r++);
            }
            return out;
        }
    }

    private Tensor head(Tensor hidden, Tensor norm, Weights.Linear head, Arena a) {
        long t0 = System.nanoTime();
        Tensor out = Tensor.allocate(a, DType.F32, hidden.dim(0), head.n());
        try (Arena tmp = Arena.ofConfined()) {
            Tensor xn = act(tmp, hidden.dim(0), cfg.hiddenSize());
            Elementwise.rmsnorm(ctx, xn, hidden, norm, cfg.rmsNormEps());
            Tensor y = ctx.isCuda() ? f32(tmp, hidden.dim(0), head.n()) : out;
            if (hidden.dim(0) > 0) dense(y, xn, head.deq());
            if (y != out) ctx.copy(out, y);
        }
        profile.add(Profile.Family.LM_HEAD, System.nanoTime() - t0);
        return out;
    }

    /** h += attn(rmsnorm(h)); h += ffn(rmsnorm(h)). The temporaries live in an arena of their own, freed at the end. */
    private void block(Session s, Weights.Block b, int cacheIndex, Tensor h, Step st, Arena outer) {
        if (st.tokens() == 0) return;
        int d = cfg.hiddenSize();
        try (Arena a = Arena.ofConfined()) {
            long t0 = System.nanoTime();
            Tensor xn = act(a, st.tokens(), d);
            Elementwise.rmsnorm(ctx, xn, h, b.inputNorm(), cfg.rmsNormEps());
            profile.add(Profile.Family.ELEMENTWISE, System.nanoTime() - t0);
            try (Arena ao = Arena.ofConfined()) { // the attention output dies once added
                Tensor attn = attention(s, b.attn(), cacheIndex, xn, st, ao);
                t0 = System.nanoTime();
                Elementwise.add(ctx, h, h, attn);
            }
            Elementwise.rmsnorm(ctx, xn, h, b.postNorm(), cfg.rmsNormEps());
            profile.add(Profile.Family.ELEMENTWISE, System.nanoTime() - t0);
            Tensor f = b.mlp() != null ? mlp(b.mlp(), xn, a) : moe(b.moe(), xn, a);
            t0 = System.nanoTime();
            Elementwise.add(ctx, h, h, f);
            profile.add(Profile.Family.ELEMENTWISE, System.nanoTime() - t0);
        }
    }

    /** The attention output [T, D] in {@code out}; its temporaries live (and die) in an arena of their own. */
    private Tensor attention(Session s, Weights.Attention at, int cacheIndex, Tensor xn, Step st, Arena out) {
        try (Arena a = Arena.ofConfined()) {
            int t = st.tokens(), heads = cfg.numAttentionHeads(), nope = cfg.qkNopeHeadDim(), pe = cfg.qkRopeHeadDim();
            int qk = nope + pe, vd = cfg.vHeadDim(), lat = cfg.kvLoraRank();
            double eps = cfg.rmsNormEps();
            Tensor q;
            if (at.qA() != null) {
                Tensor qa = linear(at.qA(), xn, a);
                long t0 = System.nanoTime();
                Tensor qan = act(a, t, cfg.qLoraRank());
                Elementwise.rmsnorm(ctx, qan, qa, at.qANorm(), eps);
                profile.add(Profile.Family.ELEMENTWISE, System.nanoTime() - t0);
                q = linear(at.qB(), qan, a);
            } else {
                q = linear(at.qB(), xn, a);
            }
            Tensor kv = linear(at.kvA(), xn, a); // [T, 512 + 64]
            long t0 = System.nanoTime();
            Tensor c = act(a, t, lat), kpe = act(a, t, pe), qpe = act(a, t, heads, pe);
            Elementwise.rmsnorm(ctx, c, kv, at.kvANorm(), eps); // the first 512 columns of [T, 512 + 64]
            Elementwise.copyColumns(ctx, kpe, 0, kv, lat, pe);
            Tensor qRows = q.reshape((long) t * heads, qk); // one row per (token, head)
            Elementwise.copyColumns(ctx, qpe.reshape((long) t * heads, pe), 0, qRows, nope, pe);
            long t1 = System.nanoTime();
            profile.add(Profile.Family.ELEMENTWISE, t1 - t0);
            Rope.applyInPlace(ctx, qpe, st.posT(), rope, Rope.Layout.INTERLEAVED);
            Rope.applyInPlace(ctx, kpe, st.posT(), rope, Rope.Layout.INTERLEAVED);
            long t2 = System.nanoTime();
            profile.add(Profile.Family.ROPE, t2 - t1);
            Mla.LatentCache cache = s.caches[cacheIndex];
            Mla.append(ctx, cache, c, kpe, st.slotT(), st.posT(), s.blockTable);
            Tensor o;
            if (st.prefill()) {
                profile.add(Profile.Family.ATTENTION, System.nanoTime() - t2);
                long th = (long) t * heads;
                Tensor k = act(a, t, heads, qk), v = act(a, t, heads, vd), kRows = k.reshape(th, qk);
                long t3;
                try (Arena kvArena = Arena.ofConfined()) { // kv_b's output and the k_pe rows die before mla.prefill
                    Tensor kvb = linear(at.kvB(), c, kvArena); // [T, H·(128 + 128)]
                    t3 = System.nanoTime();
                    Tensor kvbRows = kvb.reshape(th, nope + vd);
                    Elementwise.copyColumns(ctx, kRows, 0, kvbRows, 0, nope);
                    Elementwise.copyColumns(ctx, v.reshape(th, vd), 0, kvbRows, nope, vd);
                    // the shared rope key k_pe[t] goes to every head of token t: rows t·H + h of [T·H, 64] gather row t
                    int[] tokOf = new int[(int) th];
                    for (int i = 0; i < th; i++) tokOf[i] = i / heads;
                    Tensor kpeRows = act(kvArena, th, pe);
                    Elementwise.gatherRows(ctx, kpeRows, kpe, ints(kvArena, tokOf));
                    Elementwise.copyColumns(ctx, kRows, nope, kpeRows, 0, pe);
                }
                // q [T, H, 128 + 64] becomes the full query in place: its rope part replaced by the rotated q_pe
                Elementwise.copyColumns(ctx, qRows, nope, qpe.reshape(th, pe), 0, pe);
                Tensor qf = q.reshape(t, heads, qk);
                o = act(a, t, heads, vd);
                long t4 = System.nanoTime();
                profile.add(Profile.Family.ELEMENTWISE, t4 - t3);
                Mla.prefill(ctx, o, null, qf, k, v, ints(a, st.cu()), scale, true);
                profile.add(Profile.Family.ATTENTION, System.nanoTime() - t4);
            } else {
                Tensor qLat = act(a, t, heads, lat), oLat = act(a, t, heads, lat);
                o = act(a, t, heads, vd);
                Mla.absorbQ(ctx, qLat, q.reshape(t, heads, qk), at.wkvB());
                for (Group g : st.groups()) {
                    int b = g.slots().length, n = g.len();
                    long r0 = g.row0(), r1 = r0 + (long) b * n;
                    int[] bt = new int[b * s.pagesPerSeq], lens = new int[b];
                    for (int i = 0; i < b; i++) {
                        for (int p = 0; p < s.pagesPerSeq; p++) bt[i * s.pagesPerSeq + p] = g.slots()[i] * s.pagesPerSeq + p;
                        lens[i] = g.starts()[i] + n;
                    }
                    Mla.decode(ctx, oLat.slice(r0, r1).reshape(b, n, heads, lat), null,
                            qLat.slice(r0, r1).reshape(b, n, heads, lat), qpe.slice(r0, r1).reshape(b, n, heads, pe), cache,
                            ints(a, bt).reshape(b, s.pagesPerSeq), ints(a, lens), scale, n > 1);
                }
                Mla.absorbO(ctx, o, oLat, at.wkvB());
                profile.add(Profile.Family.ATTENTION, System.nanoTime() - t2);
            }
            return linear(at.o(), o.reshape(t, (long) heads * vd), out);
        }
    }

    private Tensor mlp(Weights.Mlp m, Tensor x, Arena a) {
        Tensor g = linear(m.gate(), x, a), u = linear(m.up(), x, a);
        long t0 = System.nanoTime();
        Elementwise.siluMul(ctx, g, g, u); // in place: g becomes silu(g)·u
        profile.add(Profile.Family.ELEMENTWISE, System.nanoTime() - t0);
        return linear(m.down(), g, a);
    }

    private Tensor moe(Weights.MoeLayer m, Tensor x, Arena a) {
        long t0 = System.nanoTime();
        long t = x.dim(0);
        int d = cfg.hiddenSize();
        Tensor y = act(a, t, d);
        if (m.packed() != null) {
            Moe.forward(ctx, y, x, m.packed(), null);
            profile.add(Profile.Family.MOE, System.nanoTime() - t0);
            return y;
        }
        // the composed layer (dequant mode): router, rows regrouped by expert, each expert's SwiGLU through
        // gemm.f32 (gemm.bf16 on bf16 activations) on its row range, then combined in token order with the
        // shared expert. The expert row ranges are read back once (a wait on CUDA).
        Moe.Routing r = Moe.gate(ctx, a, x, m.router(), m.bias(), m.gateConfig());
        int e = m.gateConfig().experts();
        Moe.Dispatch dsp = Moe.dispatch(ctx, a, r.indices(), e, 1);
        Tensor xp = act(a, dsp.rows(), d);
        Moe.gather(ctx, xp, x, dsp);
        int[] off = hostInts(dsp.offsets());
        long inter = m.experts()[0].gate().n();
        Tensor g = act(a, dsp.rows(), inter), u = act(a, dsp.rows(), inter), ye = act(a, dsp.rows(), d);
        for (int ex = 0; ex < e; ex++) {
            if (off[ex + 1] == off[ex]) continue;
            Weights.Mlp mx = m.experts()[ex];
            Tensor xr = xp.slice(off[ex], off[ex + 1]);
            dense(g.slice(off[ex], off[ex + 1]), xr, mx.gate().deq());
            dense(u.slice(off[ex], off[ex + 1]), xr, mx.up().deq());
        }
        Elementwise.siluMul(ctx, g, g, u);
        for (int ex = 0; ex < e; ex++)
            if (off[ex + 1] != off[ex])
                dense(ye.slice(off[ex], off[ex + 1]), g.slice(off[ex], off[ex + 1]), m.experts()[ex].down().deq());
        Tensor sh = m.shared() != null ? mlpNoProfile(m.shared(), x, a) : null;
        Moe.combine(ctx, y, ye, r.weights(), dsp.rowOf(), sh);
        profile.add(Profile.Family.MOE, System.nanoTime() - t0);
        return y;
    }

    private Tensor mlpNoProfile(Weights.Mlp m, Tensor x, Arena a) {
        Tensor g = linearRaw(m.gate(), x, a), u = linearRaw(m.up(), x, a);
        Elementwise.siluMul(ctx, g, g, u);
        return linearRaw(m.down(), g, a);
    }

    /** y[T, n] = x[T, k] · Wᵀ: fp8 (act_quant + gemm.fp8_block) or gemm.f32 on the bf16/f32 weight. */
    private Tensor linear(Weights.Linear l, Tensor x, Arena a) {
        long t0 = System.nanoTime();
        Tensor y = linearRaw(l, x, a);
        profile.add(Profile.Family.GEMM, System.nanoTime() - t0);
        return y;
    }

    private Tensor linearRaw(Weights.Linear l, Tensor x, Arena a) {
        long t = x.dim(0);
        Tensor y = act(a, t, l.n());
        if (t == 0) return y;
        if (mode == GemmMode.FP8 && l.isFp8()) {
            try (Arena q = Arena.ofConfined()) { // the quantized input dies with the call
                Fp8.Quantized xq = Fp8.actQuant(ctx, q, x, Fp8.ActQuantOptions.defaults());
                Gemm.fp8Block(ctx, y, xq.values(), xq.scales(), l.w(), l.scale());
            }
        } else {
            dense(y, x, l.deq());
        }
        return y;
    }

    /** y = x · wᵀ with a dequantized weight: gemm.f32 on f32 activations, gemm.bf16 on bf16 ones. */
    private void dense(Tensor y, Tensor x, Tensor w) {
        if (x.dtype() == DType.F32) Gemm.f32(ctx, y, x, w, null);
        else Gemm.bf16(ctx, y, x, w, null);
    }

    private Tensor f32(Arena a, long... shape) { return ctx.allocate(a, DType.F32, shape); }

    /** An activation tensor in the context's memory: f32, or bf16 with {@code Options.activations(BF16)}. */
    Tensor act(Arena a, long... shape) { return ctx.allocate(a, act, shape); }

    /** {@code v} as an i32 tensor [v.length] in the context's memory (uploaded on CUDA). */
    Tensor ints(Arena a, int[] v) {
        Tensor h = Tensor.ofInts(a, v);
        if (!ctx.isCuda()) return h;
        Tensor d = ctx.allocate(a, DType.I32, v.length);
        ctx.copy(d, h);
        return d;
    }

    /** An i32 tensor of the context's memory as a Java array (a download on CUDA). */
    private int[] hostInts(Tensor t) {
        if (!t.isDevice()) return t.toIntArray();
        try (Arena tmp = Arena.ofConfined()) {
            Tensor h = Tensor.allocate(tmp, DType.I32, t.shape());
            ctx.copy(h, t);
            return h.toIntArray();
        }
    }

    /** Rows {@code idx} of [R, D] {@code t} (the context's memory) as a new tensor [idx.length, D] of {@code a}. */
    Tensor rows(Arena a, Tensor t, int[] idx) {
        Tensor o = ctx.allocate(a, t.dtype(), idx.length, t.dim(1));
        if (idx.length > 0) Elementwise.gatherRows(ctx, o, t, ints(a, idx));
        return o;
    }

    /** Unmaps the checkpoint and frees the model's own memory. Sessions must be closed first. */
    @Override
    public void close() {
        arena.close();
        ckpt.close();
    }
}
