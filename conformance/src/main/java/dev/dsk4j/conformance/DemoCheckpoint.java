package dev.dsk4j.conformance;

import dev.dsk4j.internal.Json;
import dev.dsk4j.DType;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * A small, synthetic DeepSeek-V3-shaped checkpoint in the Hugging Face layout (DESIGN.md 4.6), written
 * byte for byte the same on every run and JVM (fixed seed, {@link SplittableRandom}, {@link StrictMath},
 * insertion-ordered maps): {@code config.json}, {@code model-00001-of-00002.safetensors},
 * {@code model-00002-of-00002.safetensors} and {@code model.safetensors.index.json}.
 *
 * <p>Shape ({@link Spec#demo()}): vocab 1024, hidden 256, 3 layers (layer 0 dense, intermediate 512; layers 1-2
 * MoE with 16 experts of intermediate 128 in 4 groups, top-2 groups, top-4 experts, one shared expert, sigmoid
 * scores with {@code e_score_correction_bias}, {@code noaux_tc}, scaling 2.5), 4 heads of MLA (q_lora 128,
 * kv_lora 512, qk_nope 128, qk_rope 64, v 128), YaRN (factor 4, original 512, max 2048), one MTP layer (index 3).
 * Every {@code *_proj.weight} is F8_E4M3 with a {@code *_proj.weight_scale_inv} F32 [ceil(N/128), ceil(K/128)]
 * ({@link Fp8Reference#weightQuant}, 128x128 blocks, {@code s = max(amax, 1e-4)/448}); norms, embeddings,
 * router, {@code eh_proj} and the heads are BF16, the router bias F32.
 *
 * <p>It is not trained; its weights are built so that it behaves like a model trained on one simple pattern,
 * which makes greedy generation and MTP speculation meaningful:
 * <ul>
 *   <li>a random permutation σ of the vocabulary; embedding rows {@code E[t]} are N(0, 1) (so |E[t]| ≈ sqrt(D))
 *       and {@code lm_head[σ(t)] = E[t] / 16}: a residual stream ≈ E[t] has its largest logit at σ(t);</li>
 *   <li>norm weights are 1 + N(0, 0.05²); every residual branch (attention, dense MLP, MoE) has small random
 *       weights, scaled by 1/sqrt(fan-in) so that its output is roughly 0.2-0.4 × the residual stream's rms:
 *       the layers change the logits numerically but the argmax mostly stays σ(t);</li>
 *   <li>router weights N(0, (1.5/sqrt(D))²) and bias N(0, 0.05²): the routing varies from token to token;</li>
 *   <li>MTP: {@code eh_proj = [I_D | N(0, (0.3/sqrt(D))²)]} (identity on the embedding half, small on the hidden
 *       half), its {@code embed_tokens} a copy of the main one, {@code shared_head.head = lm_head}: fed token
 *       i+1 it mostly predicts σ(token i+1).</li>
 * </ul>
 * So greedy decoding mostly walks t → σ(t) → σ(σ(t)), and the MTP layer mostly agrees with it.
 */
public final class DemoCheckpoint {
    private DemoCheckpoint() {}

    /** The files of a checkpoint, in the order they are written. */
    static final String CONFIG = "config.json", INDEX = "model.safetensors.index.json", SINGLE = "model.safetensors";

    /**
     * The shape of a synthetic checkpoint. {@code qLoraRank} 0: no q compression ({@code q_proj}); {@code fp8}
     * false: BF16 linear weights without scales; {@code yarn} false: no rope_scaling; {@code topkMethod} "noaux_tc"
     * writes an {@code e_score_correction_bias}; {@code split}: two safetensors files and an index, else one
     * {@code model.safetensors}; {@code mtp}: one MTP layer.
     */
    record Spec(int vocab, int hidden, int intermediate, int moeIntermediate, int layers, int heads, int qLoraRank,
                int kvLoraRank, int qkNope, int qkRope, int vHead, int experts, int sharedExperts, int topK, int nGroup,
                int topkGroup, String scoring, String topkMethod, boolean normTopkProb, double routedScaling,
                int firstKDense, boolean yarn, boolean fp8, boolean mtp, boolean split, long seed) {
        /** The demo checkpoint of the class comment. */
        static Spec demo() {
            return new Spec(1024, 256, 512, 128, 3, 4, 128, 512, 128, 64, 128, 16, 1, 4, 4, 2, "sigmoid", "noaux_tc",
                    true, 2.5, 1, true, true, true, true, 0x5eed_d5c4_1a2bL);
        }
    }

    /** Writes the demo checkpoint into {@code dir} (see the class comment); a no-op if an identical one is there. */
    public static void write(Path dir) throws IOException {
        write(dir, Spec.demo());
    }

    /**
     * Writes the checkpoint of {@code spec} into {@code dir}: into a fresh temporary sibling folder first, which is
     * then moved into place; where {@code dir} already exists, each file that differs is replaced atomically and
     * identical files are left alone.
     */
    static void write(Path dir, Spec spec) throws IOException {
        Path abs = dir.toAbsolutePath();
        Path parent = abs.getParent();
        if (parent == null) throw new IllegalArgumentException("argument 'dir' must not be a file system root, got " + dir);
        Files.createDirectories(parent);
        // a fresh sibling (created like any folder, with the umask's permissions, unlike createTempDirectory's 0700)
        Path tmp = parent.resolve("." + abs.getFileName() + ".tmp-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
        Files.createDirectory(tmp);
        try {
            writeInto(tmp, spec);
            if (!Files.exists(abs)) {
                try {
                    Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE);
                    return;
                } catch (FileAlreadyExistsException | DirectoryNotEmptyException | AtomicMoveNotSupportedException e) {
                    // someone else created it meanwhile (or the file system cannot): fall back to file by file
                }
            }
            Files.createDirectories(abs);
            List<Path> files;
            try (Stream<Path> s = Files.list(tmp)) {
                files = s.sorted().toList();
            }
            for (Path f : files) {
                Path target = abs.resolve(f.getFileName().toString());
                if (Files.isRegularFile(target) && Files.mismatch(f, target) == -1) continue;
                try {
                    Files.move(f, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(f, target, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        } finally {
            if (Files.exists(tmp)) {
                try (Stream<Path> s = Files.list(tmp)) {
                    for (Path f : s.toList()) Files.deleteIfExists(f);
                }
                Files.deleteIfExists(tmp);
            }
        }
    }

    /** Writes the files of {@code spec} into the existing folder {@code dir}. */
    private static void writeInto(Path dir, Spec spec) throws IOException {
        Map<String, Map<String, SafeTensors.Entry>> files = tensors(spec);
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt");
        long total = 0;
        Map<String, String> weightMap = new TreeMap<>();
        for (Map.Entry<String, Map<String, SafeTensors.Entry>> f : files.entrySet()) {
            SafeTensors.write(dir.resolve(f.getKey()), meta, f.getValue());
            for (Map.Entry<String, SafeTensors.Entry> t : f.getValue().entrySet()) {
                weightMap.put(t.getKey(), f.getKey());
                total += t.getValue().data().length;
            }
        }
        if (spec.split()) {
            Map<String, Object> index = new LinkedHashMap<>();
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("total_size", total);
            index.put("metadata", m);
            index.put("weight_map", new LinkedHashMap<>(weightMap));
            Files.writeString(dir.resolve(INDEX), Json.write(index) + "\n", StandardCharsets.UTF_8);
        }
        Files.writeString(dir.resolve(CONFIG), Json.write(config(spec)) + "\n", StandardCharsets.UTF_8);
        Files.writeString(dir.resolve("tokenizer.json"), Json.write(tokenizer(spec.vocab())) + "\n", StandardCharsets.UTF_8);
    }

    /**
     * A word-level Hugging Face {@code tokenizer.json} for the demo vocabulary: 0 {@code <s>}, 1 {@code </s>},
     * 2 {@code <unk>}, then two-syllable pseudo-words ("baba", "babe", ...), split on whitespace, decoded with
     * spaces. Token ids mean nothing beyond the demo model's pattern; it lets {@code ./dsk4j generate --prompt} run
     * on the demo checkpoint.
     */
    static Map<String, Object> tokenizer(int vocab) {
        Map<String, Object> v = new LinkedHashMap<>();
        List<Object> added = new java.util.ArrayList<>();
        String[] special = {"<s>", "</s>", "<unk>"};
        for (int i = 0; i < vocab; i++) {
            String w = i < special.length ? special[i] : word(i - special.length);
            v.put(w, i);
            if (i < special.length) {
                Map<String, Object> a = new LinkedHashMap<>();
                a.put("id", i);
                a.put("content", w);
                a.put("single_word", false);
                a.put("lstrip", false);
                a.put("rstrip", false);
                a.put("normalized", false);
                a.put("special", true);
                added.add(a);
            }
        }
        Map<String, Object> model = new LinkedHashMap<>();
        model.put("type", "WordLevel");
        model.put("vocab", v);
        model.put("unk_token", "<unk>");
        Map<String, Object> t = new LinkedHashMap<>();
        t.put("version", "1.0");
        t.put("truncation", null);
        t.put("padding", null);
        t.put("added_tokens", added);
        t.put("normalizer", null);
        t.put("pre_tokenizer", Map.of("type", "Whitespace"));
        t.put("post_processor", null);
        t.put("decoder", null);
        t.put("model", model);
        return t;
    }

    /** Pseudo-word number {@code i}: two syllables of consonant + vowel (70 x 70 distinct words). */
    static String word(int i) {
        String c = "bdfgklmnprstvz", v = "aeiou";
        int a = i / 70 % 70, b = i % 70;
        return "" + c.charAt(a / 5) + v.charAt(a % 5) + c.charAt(b / 5) + v.charAt(b % 5);
    }

    /** config.json of {@code s} with the Hugging Face DeepSeek-V3 key names. */
    static Map<String, Object> config(Spec s) {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("architectures", List.of("DeepseekV3ForCausalLM"));
        c.put("model_type", "deepseek_v3");
        c.put("vocab_size", s.vocab());
        c.put("hidden_size", s.hidden());
        c.put("intermediate_size", s.intermediate());
        c.put("moe_intermediate_size", s.moeIntermediate());
        c.put("num_hidden_layers", s.layers());
        c.put("num_attention_heads", s.heads());
        c.put("num_key_value_heads", s.heads());
        c.put("q_lora_rank", s.qLoraRank() > 0 ? s.qLoraRank() : null);
        c.put("kv_lora_rank", s.kvLoraRank());
        c.put("qk_nope_head_dim", s.qkNope());
        c.put("qk_rope_head_dim", s.qkRope());
        c.put("v_head_dim", s.vHead());
        c.put("n_routed_experts", s.experts());
        c.put("n_shared_experts", s.sharedExperts());
        c.put("num_experts_per_tok", s.topK());
        c.put("n_group", s.nGroup());
        c.put("topk_group", s.topkGroup());
        c.put("scoring_func", s.scoring());
        c.put("topk_method", s.topkMethod());
        c.put("norm_topk_prob", s.normTopkProb());
        c.put("routed_scaling_factor", s.routedScaling());
        c.put("first_k_dense_replace", s.firstKDense());
        c.put("moe_layer_freq", 1);
        c.put("hidden_act", "silu");
        c.put("rms_norm_eps", 1e-6);
        c.put("rope_theta", 10000);
        c.put("max_position_embeddings", 2048);
        if (s.yarn()) {
            Map<String, Object> y = new LinkedHashMap<>();
            y.put("type", "yarn");
            y.put("factor", 4.0);
            y.put("original_max_position_embeddings", 512);
            y.put("beta_fast", 32);
            y.put("beta_slow", 1);
            y.put("mscale", 1.0);
            y.put("mscale_all_dim", 1.0);
            c.put("rope_scaling", y);
        } else {
            c.put("rope_scaling", null);
        }
        if (s.fp8()) {
            Map<String, Object> q = new LinkedHashMap<>();
            q.put("quant_method", "fp8");
            q.put("fmt", "e4m3");
            q.put("activation_scheme", "dynamic");
            q.put("weight_block_size", List.of(128, 128));
            c.put("quantization_config", q);
        }
        c.put("num_nextn_predict_layers", s.mtp() ? 1 : 0);
        c.put("tie_word_embeddings", false);
        c.put("bos_token_id", 0);
        c.put("eos_token_id", 1);
        c.put("torch_dtype", "bfloat16");
        return c;
    }

    /** The tensors of {@code s} by file name, each file's tensors in writing order. */
    static Map<String, Map<String, SafeTensors.Entry>> tensors(Spec s) {
        SplittableRandom r = new SplittableRandom(s.seed());
        int v = s.vocab(), d = s.hidden();
        List<Map<String, SafeTensors.Entry>> parts = new ArrayList<>();
        Map<String, SafeTensors.Entry> part = new LinkedHashMap<>();
        parts.add(part);
        int[] sigma = permutation(r, v);
        short[] emb = bf16(gaussians(r, v * d, 1.0));
        part.put("model.embed_tokens.weight", bf16Entry(emb, v, d));
        int totalLayers = s.layers() + (s.mtp() ? 1 : 0);
        int firstHalf = (s.layers() + 1) / 2;
        for (int layer = 0; layer < totalLayers; layer++) {
            if (s.split() && layer == firstHalf) {
                part = new LinkedHashMap<>();
                parts.add(part);
            }
            String p = "model.layers." + layer + ".";
            part.put(p + "input_layernorm.weight", norm(r, d));
            part.put(p + "post_attention_layernorm.weight", norm(r, d));
            attention(r, s, p + "self_attn.", part);
            if (layer < s.firstKDense()) {
                ffn(r, s, p + "mlp.", s.intermediate(), 0.5, part);
            } else {
                int e = s.experts();
                part.put(p + "mlp.gate.weight", bf16Entry(bf16(gaussians(r, e * d, 1.5 / Math.sqrt(d))), e, d));
                if (s.topkMethod().equals("noaux_tc"))
                    part.put(p + "mlp.gate.e_score_correction_bias", SafeTensors.entry(floats(gaussians(r, e, 0.05)), e));
                for (int x = 0; x < e; x++) ffn(r, s, p + "mlp.experts." + x + ".", s.moeIntermediate(), 0.3, part);
                if (s.sharedExperts() > 0)
                    ffn(r, s, p + "mlp.shared_experts.", s.moeIntermediate() * s.sharedExperts(), 0.3, part);
            }
            if (layer == s.layers()) { // the MTP layer
                part.put(p + "enorm.weight", norm(r, d));
                part.put(p + "hnorm.weight", norm(r, d));
                double[] small = gaussians(r, d * d, 0.3 / Math.sqrt(d));
                float[] eh = new float[d * 2 * d];
                for (int i = 0; i < d; i++) {
                    eh[i * 2 * d + i] = 1f;
                    for (int j = 0; j < d; j++) eh[i * 2 * d + d + j] = (float) small[i * d + j];
                }
                part.put(p + "eh_proj.weight", bf16Entry(bf16(eh), d, 2 * d));
                part.put(p + "embed_tokens.weight", bf16Entry(emb, v, d));
                part.put(p + "shared_head.norm.weight", norm(r, d));
                part.put(p + "shared_head.head.weight", bf16Entry(head(emb, sigma, v, d), v, d));
            }
        }
        part.put("model.norm.weight", norm(r, d));
        part.put("lm_head.weight", bf16Entry(head(emb, sigma, v, d), v, d));
        Map<String, Map<String, SafeTensors.Entry>> files = new LinkedHashMap<>();
        if (!s.split()) files.put(SINGLE, parts.get(0));
        else for (int i = 0; i < parts.size(); i++)
            files.put(String.format("model-%05d-of-%05d.safetensors", i + 1, parts.size()), parts.get(i));
        return files;
    }

    /** lm_head rows: row σ(t) = E[t] / 16 (exact in bf16). */
    private static short[] head(short[] emb, int[] sigma, int v, int d) {
        short[] h = new short[v * d];
        for (int t = 0; t < v; t++)
            for (int j = 0; j < d; j++)
                h[sigma[t] * d + j] = Fp8Reference.floatToBf16(Fp8Reference.bf16ToFloat(emb[t * d + j]) / 16f);
        return h;
    }

    /** MLA weights: branch output ≈ 0.2-0.4 × the residual's rms (scores of std ≈ 1.3 with the YaRN scale). */
    private static void attention(SplittableRandom r, Spec s, String p, Map<String, SafeTensors.Entry> t) {
        int d = s.hidden(), h = s.heads(), qk = s.qkNope() + s.qkRope(), kvl = s.kvLoraRank();
        if (s.qLoraRank() > 0) {
            int q = s.qLoraRank();
            linear(r, s, p + "q_a_proj.weight", q, d, 1.0, t);
            t.put(p + "q_a_layernorm.weight", norm(r, q));
            linear(r, s, p + "q_b_proj.weight", h * qk, q, 1.0, t);
        } else {
            linear(r, s, p + "q_proj.weight", h * qk, d, 1.0, t);
        }
        linear(r, s, p + "kv_a_proj_with_mqa.weight", kvl + s.qkRope(), d, 1.0, t);
        t.put(p + "kv_a_layernorm.weight", norm(r, kvl));
        linear(r, s, p + "kv_b_proj.weight", h * (s.qkNope() + s.vHead()), kvl, 1.0, t);
        linear(r, s, p + "o_proj.weight", d, h * s.vHead(), 0.4, t);
    }

    /** A SwiGLU FFN {gate,up,down}_proj with intermediate size {@code inter}; {@code down} scales its output. */
    private static void ffn(SplittableRandom r, Spec s, String p, int inter, double down, Map<String, SafeTensors.Entry> t) {
        int d = s.hidden();
        linear(r, s, p + "gate_proj.weight", inter, d, 1.0, t);
        linear(r, s, p + "up_proj.weight", inter, d, 1.0, t);
        linear(r, s, p + "down_proj.weight", d, inter, down, t);
    }

    /** A linear weight [n, k] of N(0, (gain/sqrt(k))²): F8_E4M3 + weight_scale_inv, or BF16. */
    private static void linear(SplittableRandom r, Spec s, String name, int n, int k, double gain,
                               Map<String, SafeTensors.Entry> t) {
        float[] w = floats(gaussians(r, n * k, gain / Math.sqrt(k)));
        if (!s.fp8()) {
            t.put(name, bf16Entry(bf16(w), n, k));
            return;
        }
        int nb = (n + 127) / 128, kb = (k + 127) / 128;
        byte[] q = new byte[n * k];
        float[] scale = new float[nb * kb];
        Fp8Reference.weightQuant(w, n, k, false, q, scale);
        t.put(name, new SafeTensors.Entry("F8_E4M3", new long[] {n, k}, q));
        t.put(name + "_scale_inv", SafeTensors.entry(scale, nb, kb));
    }

    private static SafeTensors.Entry norm(SplittableRandom r, int n) {
        double[] g = gaussians(r, n, 0.05);
        float[] w = new float[n];
        for (int i = 0; i < n; i++) w[i] = (float) (1 + g[i]);
        return bf16Entry(bf16(w), n);
    }

    /** n samples of N(0, sd²) (Box-Muller with StrictMath: the same bits on every JVM). */
    private static double[] gaussians(SplittableRandom r, int n, double sd) {
        double[] g = new double[n];
        for (int i = 0; i < n; i++) {
            double u = r.nextDouble(), w = r.nextDouble();
            g[i] = StrictMath.sqrt(-2 * StrictMath.log(1 - u)) * StrictMath.cos(2 * Math.PI * w) * sd;
        }
        return g;
    }

    private static float[] floats(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        return f;
    }

    private static short[] bf16(double[] d) { return bf16(floats(d)); }

    private static short[] bf16(float[] f) {
        short[] b = new short[f.length];
        for (int i = 0; i < f.length; i++) b[i] = Fp8Reference.floatToBf16(f[i]);
        return b;
    }

    private static SafeTensors.Entry bf16Entry(short[] b, long... shape) {
        int[] raw = new int[b.length];
        for (int i = 0; i < b.length; i++) raw[i] = b[i] & 0xffff;
        return SafeTensors.entry(DType.BF16, raw, shape);
    }

    /** The permutation σ of {@code spec}'s vocabulary: lm_head row σ(t) is E[t] / 16. */
    static int[] sigma(Spec spec) {
        return permutation(new SplittableRandom(spec.seed()), spec.vocab());
    }

    /** A random permutation of 0..v-1 (Fisher-Yates); the first draws of a checkpoint's random stream. */
    private static int[] permutation(SplittableRandom r, int v) {
        int[] sigma = new int[v];
        for (int i = 0; i < v; i++) sigma[i] = i;
        for (int i = v - 1; i > 0; i--) {
            int j = r.nextInt(i + 1), t = sigma[i];
            sigma[i] = sigma[j];
            sigma[j] = t;
        }
        return sigma;
    }
}
