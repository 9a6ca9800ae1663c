package dev.dsk4j.conformance;

import dev.dsk4j.internal.Json;
import dev.dsk4j.DType;
import dev.dsk4j.Fp8;
import dev.dsk4j.Mla;
import dev.dsk4j.Moe;
import dev.dsk4j.Rope;
import dev.dsk4j.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * Golden vectors (DESIGN.md 5): runs every {@code .safetensors} case of a folder on every
 * backend, one result per case and backend; an op it does not know is a FAIL. Also writes
 * cases from the Java reference ({@code ./dsk4j vectors DIR}).
 */
public final class Golden {
    private Golden() {}

    /** One case on one backend. */
    public record CaseResult(String file, String backend, boolean passed, String detail) {
        @Override public String toString() { return file + " " + backend + " " + (passed ? "PASS" : "FAIL") + (detail.isEmpty() ? "" : "  " + detail); }
    }

    /** Float tolerance of a case: |got - exp| <= maxAbs + maxRel * |exp|, or exact. */
    record Tolerance(boolean exact, double maxAbs, double maxRel) {
        static Tolerance parse(String json) {
            if (json == null) return new Tolerance(true, 0, 0);
            if (!(Json.parse(json) instanceof Map<?, ?> m)) throw new IllegalArgumentException("tolerance is not an object");
            if (Boolean.TRUE.equals(m.get("exact"))) return new Tolerance(true, 0, 0);
            return new Tolerance(false, num(m.get("max_abs")), num(m.get("max_rel")));
        }

        private static double num(Object o) { return o instanceof Number n ? n.doubleValue() : 0; }
    }

    public static List<Path> cases(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
        }
    }

    /** Runs every case of {@code dir} on every backend. */
    public static List<CaseResult> run(Path dir, List<Backend> backends) throws IOException {
        List<CaseResult> out = new ArrayList<>();
        List<Path> files = cases(dir);
        for (Backend b : backends) {
            try (Session s = new Session(b)) {
                for (Path f : files) out.add(runCase(f, s));
            }
        }
        return out;
    }

    static CaseResult runCase(Path file, Session s) {
        String name = file.getFileName().toString(), backend = s.backend().name();
        try {
            SafeTensors.File f = SafeTensors.read(file);
            String op = f.metadata().get("op");
            if (op == null) return new CaseResult(name, backend, false, "no 'op' in __metadata__");
            Map<?, ?> params = f.metadata().containsKey("params") && Json.parse(f.metadata().get("params")) instanceof Map<?, ?> m
                    ? m : Map.of();
            Tolerance tol = Tolerance.parse(f.metadata().get("tolerance"));
            Map<String, SafeTensors.Entry> got = op.equals("model.logits") ? modelLogits(file, params, f.tensors(), s)
                    : execute(op, params, f.tensors(), s);
            if (got == null) return new CaseResult(name, backend, false, "unknown op '" + op + "'");
            List<String> problems = new ArrayList<>();
            for (Map.Entry<String, SafeTensors.Entry> e : f.tensors().entrySet()) {
                if (!e.getKey().startsWith("out.")) continue;
                String out = e.getKey().substring(4);
                SafeTensors.Entry g = got.get(out);
                if (g == null) { problems.add("op produced no '" + out + "'"); continue; }
                String p = compare(out, g, e.getValue(), tol);
                if (p != null) problems.add(p);
            }
            return new CaseResult(name, backend, problems.isEmpty(), String.join("; ", problems));
        } catch (IOException | RuntimeException e) {
            return new CaseResult(name, backend, false, e.getClass().getSimpleName() + ": " + e.getMessage());
        }
    }

    /**
     * model.logits (DESIGN.md 5): loads params.model_dir (relative to the case file) with the model API on the
     * session's context in params.gemm mode (dequant|fp8) and returns out.logits [B, S, V] for in.input_ids [B, S].
     */
    static Map<String, SafeTensors.Entry> modelLogits(Path file, Map<?, ?> params, Map<String, SafeTensors.Entry> t,
                                                      Session s) throws IOException {
        Object md = params.get("model_dir");
        if (!(md instanceof String dirName)) throw new IllegalArgumentException("params.model_dir is missing");
        Path dir = file.toAbsolutePath().getParent().resolve(dirName);
        String g = params.containsKey("gemm") ? String.valueOf(params.get("gemm")) : "fp8";
        dev.dsk4j.model.Model.GemmMode mode = switch (g) {
            case "fp8" -> dev.dsk4j.model.Model.GemmMode.FP8;
            case "dequant" -> dev.dsk4j.model.Model.GemmMode.DEQUANT;
            default -> throw new IllegalArgumentException("params.gemm must be fp8 or dequant, got '" + g + "'");
        };
        SafeTensors.Entry idsE = in(t, "input_ids");
        long[] shape = idsE.shape();
        if (shape.length != 2 || idsE.dsk4jType() != DType.I32)
            throw new IllegalArgumentException("in.input_ids must be I32 [B, S], got " + idsE.dtype() + " "
                    + java.util.Arrays.toString(shape));
        int b = (int) shape[0], sq = (int) shape[1];
        int[] flat = idsE.raw();
        int[][] ids = new int[b][sq];
        for (int i = 0; i < b; i++) System.arraycopy(flat, i * sq, ids[i], 0, sq);
        try (dev.dsk4j.model.Model m = dev.dsk4j.model.Model.load(s.context(), dir,
                dev.dsk4j.model.Model.Options.defaults().withGemm(mode).withMtp(false))) {
            float[][][] lg = m.logits(ids);
            int v = m.config().vocabSize();
            float[] out = new float[b * sq * v];
            for (int i = 0; i < b; i++)
                for (int j = 0; j < sq; j++) System.arraycopy(lg[i][j], 0, out, (i * sq + j) * v, v);
            Map<String, SafeTensors.Entry> r = new LinkedHashMap<>();
            r.put("logits", SafeTensors.entry(out, b, sq, v));
            return r;
        }
    }

    private static SafeTensors.Entry in(Map<String, SafeTensors.Entry> t, String name) {
        SafeTensors.Entry e = t.get("in." + name);
        if (e == null) throw new IllegalArgumentException("missing input tensor in." + name);
        return e;
    }

    private static Tensor upload(Arena a, Session s, SafeTensors.Entry e) {
        return s.input(a, Fp8Checks.hostOfRaw(a, e.dsk4jType(), e.raw()).reshape(e.shape()));
    }

    private static SafeTensors.Entry download(Arena a, Session s, Tensor t) {
        return SafeTensors.entry(t.dtype(), Fp8Checks.rawOf(s.toHost(a, t)), t.shape());
    }

    /** Runs op on the case's inputs; null for an op this version does not know. */
    static Map<String, SafeTensors.Entry> execute(String op, Map<?, ?> params, Map<String, SafeTensors.Entry> t, Session s) {
        Map<String, SafeTensors.Entry> result = new LinkedHashMap<>();
        try (Arena a = Arena.ofConfined()) {
            switch (op) {
                case "fp8.cast" -> {
                    Tensor x = upload(a, s, in(t, "x"));
                    DType to = "e5m2".equals(params.get("format")) ? DType.E5M2 : DType.E4M3;
                    Tensor y = s.output(a, to, x.shape());
                    Fp8.cast(s.context(), y, x);
                    result.put("y", download(a, s, y));
                }
                case "fp8.act_quant" -> {
                    if (params.get("group") instanceof Number g && g.intValue() != 128)
                        throw new IllegalArgumentException("group " + g + " (only 128 is supported)");
                    Tensor x = upload(a, s, in(t, "x"));
                    boolean ue8m0 = "ue8m0".equals(params.get("scale_fmt"));
                    long k = x.dim(-1);
                    long[] ss = x.shape();
                    ss[ss.length - 1] = k / 128;
                    Tensor y = s.output(a, DType.E4M3, x.shape());
                    Tensor scale = s.output(a, DType.F32, ss);
                    Fp8.actQuant(s.context(), y, scale, x, new Fp8.ActQuantOptions(
                            ue8m0 ? Fp8.ScaleFormat.UE8M0 : Fp8.ScaleFormat.F32, Fp8.ScaleLayout.ROW_MAJOR));
                    result.put("y", download(a, s, y));
                    result.put("scale", download(a, s, scale));
                }
                case "fp8.weight_quant" -> {
                    Tensor w = upload(a, s, in(t, "w"));
                    boolean ue8m0 = "ue8m0".equals(params.get("scale_fmt"));
                    Tensor y = s.output(a, DType.E4M3, w.shape());
                    Tensor scale = s.output(a, DType.F32, Fp8.blockScaleShape(w.dim(0), w.dim(1)));
                    Fp8.weightQuant(s.context(), y, scale, w, ue8m0 ? Fp8.ScaleFormat.UE8M0 : Fp8.ScaleFormat.F32);
                    result.put("y", download(a, s, y));
                    result.put("scale_inv", download(a, s, scale));
                }
                case "fp8.weight_dequant" -> {
                    if (params.get("block") instanceof Number b && b.intValue() != 128)
                        throw new IllegalArgumentException("block " + b + " (only 128 is supported)");
                    Tensor w = upload(a, s, in(t, "w"));
                    Tensor scale = upload(a, s, in(t, "scale_inv"));
                    SafeTensors.Entry expected = t.get("out.y");
                    DType yType = expected != null && expected.dtype().equals("BF16") ? DType.BF16 : DType.F32;
                    Tensor y = s.output(a, yType, w.shape());
                    Fp8.weightDequant(s.context(), y, w, scale);
                    result.put("y", download(a, s, y));
                }
                case "gemm.fp8_block" -> {
                    if (params.get("block") instanceof Number b && b.intValue() != 128)
                        throw new IllegalArgumentException("block " + b + " (only 128 is supported)");
                    Tensor av = upload(a, s, in(t, "a")), as = upload(a, s, in(t, "a_scale"));
                    Tensor bv = upload(a, s, in(t, "b")), bs = upload(a, s, in(t, "b_scale"));
                    Tensor c = t.containsKey("in.c") ? upload(a, s, in(t, "c")) : null;
                    DType out = "bf16".equals(params.get("out_dtype")) ? DType.BF16 : DType.F32;
                    Tensor d = s.output(a, out, av.dim(0), bv.dim(0));
                    dev.dsk4j.Gemm.fp8Block(s.context(), d, av, as, Fp8.ScaleLayout.ROW_MAJOR, bv, bs, c);
                    result.put("d", download(a, s, d));
                }
                case "rope.yarn_table" -> {
                    Rope.YarnConfig c = yarnConfig(params);
                    Tensor cos = s.output(a, DType.F32, c.maxSeqLen(), c.dim() / 2);
                    Tensor sin = s.output(a, DType.F32, c.maxSeqLen(), c.dim() / 2);
                    Rope.yarnTable(s.context(), cos, sin, c);
                    result.put("cos", download(a, s, cos));
                    result.put("sin", download(a, s, sin));
                }
                case "rope.apply" -> {
                    Rope.YarnConfig c = yarnConfig(params);
                    Rope.Layout layout = switch (String.valueOf(params.get("layout"))) {
                        case "interleaved" -> Rope.Layout.INTERLEAVED;
                        case "neox" -> Rope.Layout.NEOX;
                        default -> throw new IllegalArgumentException("param 'layout' must be \"interleaved\" or \"neox\", got "
                                + params.get("layout"));
                    };
                    Tensor x = upload(a, s, in(t, "x")), positions = upload(a, s, in(t, "positions"));
                    Tensor y = s.output(a, x.dtype(), x.shape());
                    Rope.apply(s.context(), y, x, positions, Rope.table(s.context(), c), layout);
                    result.put("y", download(a, s, y));
                }
                case "mla.decode" -> mlaDecode(a, s, params, t, result);
                case "moe.gate" -> {
                    Moe.GateConfig c = gateConfig(params);
                    Tensor x = upload(a, s, in(t, "x")), wg = upload(a, s, in(t, "wg"));
                    Tensor bias = t.containsKey("in.bias") ? upload(a, s, in(t, "bias")) : null;
                    Tensor idx = s.output(a, DType.I32, x.dim(0), c.topK()), w = s.output(a, DType.F32, x.dim(0), c.topK());
                    Moe.gate(s.context(), idx, w, null, x, wg, bias, c);
                    result.put("indices", download(a, s, idx));
                    result.put("weights", download(a, s, w));
                }
                case "moe.forward" -> {
                    Moe.GateConfig c = gateConfig(params);
                    Tensor x = upload(a, s, in(t, "x"));
                    boolean shared = t.containsKey("in.s13");
                    Moe.Layer layer = new Moe.Layer(c, upload(a, s, in(t, "wg")),
                            t.containsKey("in.bias") ? upload(a, s, in(t, "bias")) : null, upload(a, s, in(t, "w13")),
                            t.containsKey("in.w13_scale") ? upload(a, s, in(t, "w13_scale")) : null, upload(a, s, in(t, "w2")),
                            t.containsKey("in.w2_scale") ? upload(a, s, in(t, "w2_scale")) : null,
                            shared ? upload(a, s, in(t, "s13")) : null,
                            shared && t.containsKey("in.s13_scale") ? upload(a, s, in(t, "s13_scale")) : null,
                            shared ? upload(a, s, in(t, "s2")) : null,
                            shared && t.containsKey("in.s2_scale") ? upload(a, s, in(t, "s2_scale")) : null);
                    Tensor y = s.output(a, DType.F32, x.shape());
                    Moe.forward(s.context(), y, x, layer, null);
                    result.put("y", download(a, s, y));
                }
                default -> {
                    return null;
                }
            }
        }
        return result;
    }

    /**
     * mla.decode from contiguous caches (DESIGN.md 5): kv_cache [B, L, 512] and pe_cache [B, L, 64] in the
     * file's dtype become a paged cache of that format (F32 or BF16, exact), sequence b on pages
     * b·ceil(L/64) ...; the first seq_lens[b] tokens of each are appended; q_latent, q_pe
     * [B, Sq, H, ...] (their dtype is the output's).
     */
    private static void mlaDecode(Arena a, Session s, Map<?, ?> params, Map<String, SafeTensors.Entry> t,
                                  Map<String, SafeTensors.Entry> result) {
        Tensor ql = upload(a, s, in(t, "q_latent")), qp = upload(a, s, in(t, "q_pe"));
        SafeTensors.Entry kvE = in(t, "kv_cache"), peE = in(t, "pe_cache");
        DType cd = kvE.dsk4jType();
        if (peE.dsk4jType() != cd) throw new IllegalArgumentException("in.kv_cache and in.pe_cache differ in dtype");
        Mla.CacheFormat format = switch (cd) {
            case F32 -> Mla.CacheFormat.F32;
            case BF16 -> Mla.CacheFormat.BF16;
            default -> throw new IllegalArgumentException("in.kv_cache must be F32 or BF16, got " + cd.label());
        };
        long[] ks = kvE.shape();
        if (ks.length != 3 || ks[2] != Mla.LATENT) throw new IllegalArgumentException("in.kv_cache must be [B, L, 512]");
        int batch = (int) ks[0], len = (int) ks[1], per = (len + Mla.PAGE_TOKENS - 1) / Mla.PAGE_TOKENS;
        int[] lens = in(t, "seq_lens").raw();
        if (lens.length != batch) throw new IllegalArgumentException("in.seq_lens must be [B]");
        int[] bt = new int[batch * Math.max(per, 1)];
        for (int i = 0; i < bt.length; i++) bt[i] = i;
        int total = 0;
        for (int l : lens) {
            if (l < 0 || l > len) throw new IllegalArgumentException("in.seq_lens entry " + l + " outside [0, " + len + "]");
            total += l;
        }
        int[] seq = new int[total], pos = new int[total], kvRaw = kvE.raw(), peRaw = peE.raw();
        int[] lat = new int[total * Mla.LATENT], pe = new int[total * Mla.ROPE];
        for (int b = 0, i = 0; b < batch; b++)
            for (int p = 0; p < lens[b]; p++, i++) {
                seq[i] = b;
                pos[i] = p;
                System.arraycopy(kvRaw, (b * len + p) * Mla.LATENT, lat, i * Mla.LATENT, Mla.LATENT);
                System.arraycopy(peRaw, (b * len + p) * Mla.ROPE, pe, i * Mla.ROPE, Mla.ROPE);
            }
        Mla.LatentCache cache = Mla.LatentCache.allocate(s.context(), a, format, (long) batch * per);
        Tensor btT = s.input(a, Tensor.ofInts(a, bt, batch, Math.max(per, 1)));
        if (total > 0)
            Mla.append(s.context(), cache, s.input(a, Fp8Checks.hostOfRaw(a, cd, lat).reshape(total, Mla.LATENT)),
                    s.input(a, Fp8Checks.hostOfRaw(a, cd, pe).reshape(total, Mla.ROPE)),
                    s.input(a, Tensor.ofInts(a, seq, total)), s.input(a, Tensor.ofInts(a, pos, total)), btT);
        boolean causal = Boolean.TRUE.equals(params.get("causal"));
        Tensor o = s.output(a, ql.dtype(), ql.shape());
        Tensor lse = s.output(a, DType.F32, ql.dim(0), ql.dim(1), ql.dim(2));
        Mla.decode(s.context(), o, lse, ql, qp, cache, btT, s.input(a, Tensor.ofInts(a, lens.clone(), batch)),
                param(params, "softmax_scale"), causal);
        result.put("o_latent", download(a, s, o));
        result.put("lse", download(a, s, lse));
    }

    /** The router of a moe.* case: experts top_k n_group topk_group score_func ("sigmoid"|"softmax") norm_topk_prob routed_scaling_factor. */
    static Moe.GateConfig gateConfig(Map<?, ?> params) {
        Moe.ScoreFunction f = switch (String.valueOf(params.get("score_func"))) {
            case "sigmoid" -> Moe.ScoreFunction.SIGMOID;
            case "softmax" -> Moe.ScoreFunction.SOFTMAX;
            default -> throw new IllegalArgumentException("param 'score_func' must be \"sigmoid\" or \"softmax\", got "
                    + params.get("score_func"));
        };
        return new Moe.GateConfig((int) param(params, "experts"), (int) param(params, "top_k"), (int) param(params, "n_group"),
                (int) param(params, "topk_group"), f, Boolean.TRUE.equals(params.get("norm_topk_prob")),
                (float) param(params, "routed_scaling_factor"));
    }

    static Map<String, Object> gateParams(Moe.GateConfig c) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("experts", c.experts());
        p.put("top_k", c.topK());
        p.put("n_group", c.nGroup());
        p.put("topk_group", c.topkGroup());
        p.put("score_func", c.scoreFunction().name().toLowerCase());
        p.put("norm_topk_prob", c.normTopkProb());
        p.put("routed_scaling_factor", (double) c.routedScalingFactor());
        return p;
    }

    /** The YaRN parameters of a rope.* case (DESIGN.md 5: dim theta factor original_seq_len max_seq_len beta_fast beta_slow). */
    static Rope.YarnConfig yarnConfig(Map<?, ?> params) {
        return new Rope.YarnConfig((int) param(params, "dim"), param(params, "theta"), param(params, "factor"),
                (long) param(params, "original_seq_len"), (long) param(params, "max_seq_len"), param(params, "beta_fast"),
                param(params, "beta_slow"));
    }

    private static double param(Map<?, ?> params, String name) {
        if (!(params.get(name) instanceof Number n)) throw new IllegalArgumentException("missing numeric param '" + name + "'");
        return n.doubleValue();
    }

    /** The params object of a rope.* case for {@code c}. */
    static Map<String, Object> yarnParams(Rope.YarnConfig c) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("dim", c.dim());
        p.put("theta", c.theta());
        p.put("factor", c.factor());
        p.put("original_seq_len", c.originalSeqLen());
        p.put("max_seq_len", c.maxSeqLen());
        p.put("beta_fast", c.betaFast());
        p.put("beta_slow", c.betaSlow());
        return p;
    }

    /** null if {@code got} matches {@code exp}, else a description. */
    static String compare(String name, SafeTensors.Entry got, SafeTensors.Entry exp, Tolerance tol) {
        if (!got.dtype().equals(exp.dtype())) return name + ": dtype " + got.dtype() + ", expected " + exp.dtype();
        if (!java.util.Arrays.equals(got.shape(), exp.shape()))
            return name + ": shape " + java.util.Arrays.toString(got.shape()) + ", expected " + java.util.Arrays.toString(exp.shape());
        int[] g = got.raw(), e = exp.raw();
        DType d = exp.dsk4jType();
        boolean floatTolerance = !tol.exact() && (d == DType.F32 || d == DType.BF16 || d == DType.F16);
        long bad = 0;
        String first = null;
        for (int i = 0; i < e.length; i++) {
            boolean ok;
            if (d == DType.I32) ok = g[i] == e[i];
            else {
                float gv = Fp8Reference.toFloat(d.label(), g[i]), ev = Fp8Reference.toFloat(d.label(), e[i]);
                if (Float.isNaN(ev) || Float.isNaN(gv)) ok = Float.isNaN(ev) && Float.isNaN(gv);
                else if (floatTolerance) ok = Math.abs((double) gv - ev) <= tol.maxAbs() + tol.maxRel() * Math.abs((double) ev)
                        || gv == ev;
                else ok = g[i] == e[i] || (gv == ev && gv != 0); // same value; zeros must agree in sign
            }
            if (!ok) {
                bad++;
                if (first == null) first = String.format("element %d: got 0x%x, expected 0x%x", i, g[i], e[i]);
            }
        }
        return bad == 0 ? null : name + ": " + bad + " of " + e.length + " differ (" + first + ")";
    }

    // ------------------------------------------------------------------ generation

    /** Writes golden cases of the fp8 ops, computed by {@link Fp8Reference}, into {@code dir}. */
    public static List<Path> generate(Path dir, long seed) throws IOException {
        Files.createDirectories(dir);
        SplittableRandom r = new SplittableRandom(seed);
        List<Path> written = new ArrayList<>();
        // fp8.cast from f32 and bf16, to both formats
        for (String fmt : new String[] {"e4m3", "e5m2"}) {
            for (DType from : new DType[] {DType.F32, DType.BF16}) {
                int n = 4096;
                int[] raw = new int[n];
                for (int i = 0; i < n; i++) {
                    float v = Values.special(r);
                    raw[i] = from == DType.F32 ? Float.floatToRawIntBits(v) : Fp8Reference.floatToBf16(v) & 0xffff;
                }
                DType to = fmt.equals("e4m3") ? DType.E4M3 : DType.E5M2;
                int[] y = new int[n];
                for (int i = 0; i < n; i++) y[i] = Fp8Checks.referenceCast(from, to, raw[i]);
                Map<String, SafeTensors.Entry> t = new LinkedHashMap<>();
                t.put("in.x", SafeTensors.entry(from, raw, n));
                t.put("out.y", SafeTensors.entry(to, y, n));
                written.add(write(dir, "fp8_cast_" + from.label() + "_to_" + fmt, "fp8.cast", Map.of("format", fmt), t));
            }
        }
        // fp8.act_quant, plain and ue8m0 scales
        for (String fmt : new String[] {"none", "ue8m0"}) {
            int rows = 5, k = 7168 / 4;
            float[] x = Values.activations(r, rows * k, 0.002);
            byte[] y = new byte[rows * k];
            float[] scale = new float[rows * k / 128];
            Fp8Reference.actQuant(x, rows, k, fmt.equals("ue8m0"), y, scale);
            Map<String, SafeTensors.Entry> t = new LinkedHashMap<>();
            t.put("in.x", SafeTensors.entry(x, rows, k));
            t.put("out.y", SafeTensors.entry(DType.E4M3, Comparison.unsigned(y), rows, k));
            t.put("out.scale", SafeTensors.entry(scale, rows, k / 128));
            Map<String, Object> params = new LinkedHashMap<>();
            params.put("group", 128);
            params.put("scale_fmt", fmt.equals("ue8m0") ? "ue8m0" : null);
            written.add(write(dir, "fp8_act_quant_" + fmt, "fp8.act_quant", params, t));
        }
        // fp8.weight_quant and fp8.weight_dequant with partial edge blocks
        {
            int n = 200, k = 300;
            float[] w = new float[n * k];
            for (int i = 0; i < w.length; i++) w[i] = (float) (Values.gaussian(r) * 0.05);
            long[] ss = Fp8.blockScaleShape(n, k);
            byte[] y = new byte[n * k];
            float[] s = new float[(int) (ss[0] * ss[1])];
            Fp8Reference.weightQuant(w, n, k, false, y, s);
            Map<String, SafeTensors.Entry> t = new LinkedHashMap<>();
            t.put("in.w", SafeTensors.entry(w, n, k));
            t.put("out.y", SafeTensors.entry(DType.E4M3, Comparison.unsigned(y), n, k));
            t.put("out.scale_inv", SafeTensors.entry(s, ss));
            written.add(write(dir, "fp8_weight_quant_200x300", "fp8.weight_quant", Map.of("block", 128), t));

            float[] back = Fp8Reference.weightDequant(y, n, k, s);
            Map<String, SafeTensors.Entry> d = new LinkedHashMap<>();
            d.put("in.w", SafeTensors.entry(DType.E4M3, Comparison.unsigned(y), n, k));
            d.put("in.scale_inv", SafeTensors.entry(s, ss));
            d.put("out.y", SafeTensors.entry(back, n, k));
            written.add(write(dir, "fp8_weight_dequant_200x300", "fp8.weight_dequant", Map.of("block", 128), d));
        }
        // gemm.fp8_block, f32 out, with the per-element bound of an f32 accumulation as tolerance
        {
            int m = 9, n = 200, k = 512;
            byte[] av = GemmChecks.codes(r, m * k), bv = GemmChecks.codes(r, n * k);
            float[] as = GemmChecks.scales(r, m * k / 128), bs = GemmChecks.scales(r, ((n + 127) / 128) * (k / 128));
            GemmReference.Result ref = GemmReference.fp8Block(av, as, bv, bs, null, m, n, k);
            float[] dv = new float[m * n];
            double maxMag = 0;
            for (int i = 0; i < dv.length; i++) {
                dv[i] = (float) ref.value()[i];
                maxMag = Math.max(maxMag, ref.mag()[i]);
            }
            Map<String, SafeTensors.Entry> t = new LinkedHashMap<>();
            t.put("in.a", SafeTensors.entry(DType.E4M3, Comparison.unsigned(av), m, k));
            t.put("in.a_scale", SafeTensors.entry(as, m, k / 128));
            t.put("in.b", SafeTensors.entry(DType.E4M3, Comparison.unsigned(bv), n, k));
            t.put("in.b_scale", SafeTensors.entry(bs, Fp8.blockScaleShape(n, k)));
            t.put("out.d", SafeTensors.entry(dv, m, n));
            Map<String, Object> params = new LinkedHashMap<>();
            params.put("out_dtype", "f32");
            params.put("block", 128);
            String tol = "{\"max_abs\":" + ((k + 8) * 0x1p-24 * maxMag) + ",\"max_rel\":1e-6}";
            written.add(write(dir, "gemm_fp8_block_9x200x512", "gemm.fp8_block", params, t, tol));
        }
        // rope.yarn_table of DeepSeek-V3 (one f32 rounding of the exact value each: 1 ulp apart at most)
        Rope.YarnConfig v3 = Rope.YarnConfig.deepSeekV3();
        {
            double[][] ref = RopeReference.table(v3);
            Map<String, SafeTensors.Entry> t = new LinkedHashMap<>();
            t.put("out.cos", SafeTensors.entry(toFloats(ref[0]), v3.maxSeqLen(), v3.dim() / 2));
            t.put("out.sin", SafeTensors.entry(toFloats(ref[1]), v3.maxSeqLen(), v3.dim() / 2));
            written.add(write(dir, "rope_yarn_table_deepseek_v3", "rope.yarn_table", yarnParams(v3), t,
                    "{\"max_abs\":1e-11,\"max_rel\":1.2e-7}"));
        }
        // rope.apply of q_pe [T, H, 64] on DeepSeek-V3's table, both layouts, positions 0 and 16383 included
        for (Rope.Layout layout : Rope.Layout.values()) {
            int tokens = 6, heads = 4, dim = v3.dim();
            float[] x = new float[tokens * heads * dim];
            for (int i = 0; i < x.length; i++) x[i] = (float) Values.gaussian(r);
            int[] pos = RopeChecks.positions(r, tokens, v3.maxSeqLen());
            double[][] ref = RopeReference.apply(x, pos, heads, dim, layout, v3);
            double maxMag = 0;
            for (double m : ref[1]) maxMag = Math.max(maxMag, m);
            Map<String, SafeTensors.Entry> t = new LinkedHashMap<>();
            t.put("in.x", SafeTensors.entry(x, tokens, heads, dim));
            t.put("in.positions", SafeTensors.entry(DType.I32, pos, tokens));
            t.put("out.y", SafeTensors.entry(toFloats(ref[0]), tokens, heads, dim));
            Map<String, Object> params = yarnParams(v3);
            params.put("layout", layout.name().toLowerCase());
            // the kernels' bound 2^-21 (|x0| + |x1|) per pair, plus the rounding of the expected value
            String tol = "{\"max_abs\":" + (0x1p-21 * maxMag) + ",\"max_rel\":1.2e-7}";
            written.add(write(dir, "rope_apply_" + layout.name().toLowerCase() + "_6x4x64", "rope.apply", params, t, tol));
        }
        // mla.decode, f32 caches, causal over the last Sq = 2 positions, one sequence shorter than the cache
        {
            int batch = 2, sq = 2, heads = 4, len = 100;
            int[] lens = {100, 70};
            float[] kv = new float[batch * len * Mla.LATENT], pe = new float[batch * len * Mla.ROPE];
            for (int i = 0; i < kv.length; i++) kv[i] = (float) Values.gaussian(r);
            for (int i = 0; i < pe.length; i++) pe[i] = (float) Values.gaussian(r);
            int rows = batch * sq * heads;
            float[] ql = new float[rows * Mla.LATENT], qp = new float[rows * Mla.ROPE];
            for (int i = 0; i < ql.length; i++) ql[i] = (float) Values.gaussian(r);
            for (int i = 0; i < qp.length; i++) qp[i] = (float) Values.gaussian(r);
            double[][][] seqs = new double[batch][][];
            for (int b = 0; b < batch; b++) {
                seqs[b] = new double[lens[b]][MlaReference.KD];
                for (int p = 0; p < lens[b]; p++) {
                    for (int c = 0; c < Mla.LATENT; c++) seqs[b][p][c] = kv[(b * len + p) * Mla.LATENT + c];
                    for (int c = 0; c < Mla.ROPE; c++) seqs[b][p][Mla.LATENT + c] = pe[(b * len + p) * Mla.ROPE + c];
                }
            }
            float scale = 0.1352338f;
            MlaReference.Decode ref = MlaReference.decode(ql, qp, seqs, lens, batch, sq, heads, scale, true);
            float[] o = new float[rows * Mla.LATENT], lse = new float[rows];
            for (int i = 0; i < rows; i++) {
                for (int c = 0; c < Mla.LATENT; c++) o[i * Mla.LATENT + c] = (float) ref.o()[i][c];
                lse[i] = (float) ref.lse()[i];
            }
            Map<String, SafeTensors.Entry> t = new LinkedHashMap<>();
            t.put("in.q_latent", SafeTensors.entry(ql, batch, sq, heads, Mla.LATENT));
            t.put("in.q_pe", SafeTensors.entry(qp, batch, sq, heads, Mla.ROPE));
            t.put("in.kv_cache", SafeTensors.entry(kv, batch, len, Mla.LATENT));
            t.put("in.pe_cache", SafeTensors.entry(pe, batch, len, Mla.ROPE));
            t.put("in.seq_lens", SafeTensors.entry(DType.I32, lens, batch));
            t.put("out.o_latent", SafeTensors.entry(o, batch, sq, heads, Mla.LATENT));
            t.put("out.lse", SafeTensors.entry(lse, batch, sq, heads));
            Map<String, Object> params = new LinkedHashMap<>();
            params.put("softmax_scale", (double) scale);
            params.put("causal", true);
            written.add(write(dir, "mla_decode_f32_2x2x4x100", "mla.decode", params, t, "{\"max_abs\":1e-4,\"max_rel\":1e-5}"));
        }
        // moe.gate: V3's router (sigmoid, bias, 8 groups keep 4, top-8 of 256) and V2-Lite's (softmax, greedy)
        for (Moe.GateConfig c : new Moe.GateConfig[] {Moe.GateConfig.deepSeekV3(), Moe.GateConfig.deepSeekV2Lite()}) {
            int tokens = 5, h = 200;
            float[] x = new float[tokens * h], wg = new float[c.experts() * h];
            for (int i = 0; i < x.length; i++) x[i] = (float) Values.gaussian(r);
            for (int i = 0; i < wg.length; i++) wg[i] = (float) (Values.gaussian(r) * 0.07);
            float[] bias = null;
            if (c.scoreFunction() == Moe.ScoreFunction.SIGMOID) {
                bias = new float[c.experts()];
                for (int i = 0; i < bias.length; i++) bias[i] = (float) (Values.gaussian(r) * 0.01);
            }
            int[] idx = new int[tokens * c.topK()];
            float[] w = new float[tokens * c.topK()];
            MoeReference.gate(x, wg, bias, tokens, h, c, idx, w);
            Map<String, SafeTensors.Entry> t = new LinkedHashMap<>();
            t.put("in.x", SafeTensors.entry(x, tokens, h));
            t.put("in.wg", SafeTensors.entry(wg, c.experts(), h));
            if (bias != null) t.put("in.bias", SafeTensors.entry(bias, c.experts()));
            t.put("out.indices", SafeTensors.entry(DType.I32, idx, tokens, c.topK()));
            t.put("out.weights", SafeTensors.entry(w, tokens, c.topK()));
            String name = c.scoreFunction() == Moe.ScoreFunction.SIGMOID ? "v3" : "v2_lite";
            written.add(write(dir, "moe_gate_" + name + "_5x200", "moe.gate", gateParams(c), t, "{\"max_abs\":1e-7,\"max_rel\":1e-6}"));
        }
        // moe.forward: fp8 experts (16 experts, 4 groups keep 2, top-4) + a shared expert; the dense per-token reference
        {
            Moe.GateConfig c = new Moe.GateConfig(16, 4, 4, 2, Moe.ScoreFunction.SIGMOID, true, 2.5f);
            int tokens = 3, h = 256, inter = 128, e = c.experts();
            float[] x = gaussians(r, tokens * h, 1), wg = gaussians(r, e * h, 0.06), bias = gaussians(r, e, 0.01);
            Map<String, SafeTensors.Entry> t = new LinkedHashMap<>();
            t.put("in.x", SafeTensors.entry(x, tokens, h));
            t.put("in.wg", SafeTensors.entry(wg, e, h));
            t.put("in.bias", SafeTensors.entry(bias, e));
            float[] w13 = quantized(t, "w13", gaussians(r, e * 2 * inter * h, 0.06), e, 2 * inter, h);
            float[] w2 = quantized(t, "w2", gaussians(r, e * h * inter, 0.09), e, h, inter);
            float[] s13 = quantized(t, "s13", gaussians(r, 2 * inter * h, 0.06), 0, 2 * inter, h);
            float[] s2 = quantized(t, "s2", gaussians(r, h * inter, 0.09), 0, h, inter);
            float[] y = MoeReference.denseLayer(x, wg, bias, w13, w2, s13, s2, tokens, h, inter, inter, c, DType.E4M3,
                    new int[tokens * c.topK()]);
            double maxMag = 0;
            for (float v : y) maxMag = Math.max(maxMag, Math.abs(v));
            t.put("out.y", SafeTensors.entry(y, tokens, h));
            // fp8 activations: a value next to an e4m3 rounding boundary may round the other way (one e4m3 step)
            written.add(write(dir, "moe_forward_fp8_3x256", "moe.forward", gateParams(c), t,
                    "{\"max_abs\":" + (0.05 * maxMag) + ",\"max_rel\":0.02}"));
        }
        written.add(generateModelLogits(dir));
        return written;
    }

    /**
     * Writes one {@code model.logits} case (DESIGN.md 5) into {@code dir}: the demo checkpoint ({@link DemoCheckpoint})
     * in {@code dir/demo-model} and {@code model_logits_demo_dequant_2x8.safetensors} with params
     * {@code {"model_dir": "demo-model", "gemm": "dequant"}}, in.input_ids I32 [2, 8] (fixed) and out.logits F32
     * [2, 8, V] from {@link ModelReference}. Part of {@link #generate}.
     */
    public static Path generateModelLogits(Path dir) throws IOException {
        Files.createDirectories(dir);
        String modelDir = "demo-model";
        DemoCheckpoint.write(dir.resolve(modelDir));
        ModelReference ref = ModelReference.load(dir.resolve(modelDir));
        int batch = 2, seq = 8, vocab = ref.config().vocabSize();
        SplittableRandom r = new SplittableRandom(20261129L);
        int[][] ids = new int[batch][seq];
        int[] flat = new int[batch * seq];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < seq; i++) flat[b * seq + i] = ids[b][i] = r.nextInt(vocab);
        float[][][] logits = ref.logits(ids, ModelReference.DEQUANT);
        float[] out = new float[batch * seq * vocab];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < seq; i++) System.arraycopy(logits[b][i], 0, out, (b * seq + i) * vocab, vocab);
        Map<String, SafeTensors.Entry> t = new LinkedHashMap<>();
        t.put("in.input_ids", SafeTensors.entry(DType.I32, flat, batch, seq));
        t.put("out.logits", SafeTensors.entry(out, batch, seq, vocab));
        Map<String, Object> params = new LinkedHashMap<>();
        params.put("model_dir", modelDir);
        params.put("gemm", ModelReference.DEQUANT);
        return write(dir, "model_logits_demo_dequant_" + batch + "x" + seq, "model.logits", params, t,
                "{\"max_abs\":1e-4,\"max_rel\":1e-4}");
    }

    private static float[] gaussians(SplittableRandom r, int n, double sd) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (Values.gaussian(r) * sd);
        return v;
    }

    /** Puts in.NAME (e4m3 [g, n, k] or [n, k] when g == 0) and in.NAME_scale; returns the dequantized values. */
    private static float[] quantized(Map<String, SafeTensors.Entry> t, String name, float[] w, int g, int n, int k) {
        int gg = Math.max(g, 1), nb = (n + 127) / 128, kb = k / 128;
        int[] q = new int[gg * n * k];
        float[] sc = new float[gg * nb * kb], dense = new float[gg * n * k];
        for (int e = 0; e < gg; e++) {
            byte[] qe = new byte[n * k];
            float[] se = new float[nb * kb];
            Fp8Reference.weightQuant(java.util.Arrays.copyOfRange(w, e * n * k, (e + 1) * n * k), n, k, false, qe, se);
            for (int i = 0; i < n * k; i++) q[e * n * k + i] = qe[i] & 0xff;
            System.arraycopy(se, 0, sc, e * nb * kb, nb * kb);
            System.arraycopy(Fp8Reference.weightDequant(qe, n, k, se), 0, dense, e * n * k, n * k);
        }
        t.put("in." + name, SafeTensors.entry(DType.E4M3, q, g == 0 ? new long[] {n, k} : new long[] {g, n, k}));
        t.put("in." + name + "_scale", SafeTensors.entry(sc, g == 0 ? new long[] {nb, kb} : new long[] {g, nb, kb}));
        return dense;
    }

    private static float[] toFloats(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        return f;
    }

    private static Path write(Path dir, String name, String op, Map<String, ?> params, Map<String, SafeTensors.Entry> t)
            throws IOException {
        return write(dir, name, op, params, t, "{\"exact\":true}");
    }

    private static Path write(Path dir, String name, String op, Map<String, ?> params, Map<String, SafeTensors.Entry> t,
                              String tolerance) throws IOException {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("op", op);
        meta.put("params", Json.write(params));
        meta.put("tolerance", tolerance);
        meta.put("generator", "dsk4j Java reference (dev.dsk4j.conformance.Fp8Reference, GemmReference, RopeReference, MlaReference, MoeReference, ModelReference)");
        Path p = dir.resolve(name + ".safetensors");
        SafeTensors.write(p, meta, t);
        return p;
    }

    /** {@code generate DIR [--seed S]}. */
    public static void main(String[] args) throws IOException {
        if (args.length < 2 || !args[0].equals("generate")) {
            System.err.println("usage: ./dsk4j vectors DIR [--seed S]");
            System.exit(2);
        }
        long seed = args.length >= 4 && args[2].equals("--seed") ? Long.parseLong(args[3]) : System.nanoTime();
        for (Path p : generate(Path.of(args[1]), seed)) System.out.println("wrote " + p);
    }
}
