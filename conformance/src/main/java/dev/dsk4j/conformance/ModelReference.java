package dev.dsk4j.conformance;

import dev.dsk4j.internal.Json;
import dev.dsk4j.Moe;
import dev.dsk4j.Rope;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The plain-Java reference forward of a DeepSeek-V2/V3 checkpoint in the Hugging Face layout (DESIGN.md 4.6):
 * every dot product and norm in double, every tensor between ops rounded to f32. Each sequence of a batch is
 * independent, at positions 0..S-1; each position's result depends only on the tokens up to it (and on nothing
 * else: no batching effect), so the logits of a prefix equal the first positions of the full sequence's.
 *
 * <p>Formulas (the contract the native model is tested against):
 * <ul>
 *   <li>{@code linear(x, W)}, "dequant": {@code W_eff = bf16(e4m3(W8) · scale_inv[n/128, k/128])} (f32 product, RNE
 *       to bf16) for F8_E4M3 weights, the stored values otherwise; {@code y[n] = Σ_k x[k]·W_eff[n,k]} in double,
 *       rounded to f32. "fp8": for F8_E4M3 weights {@code (xq, xs) = act_quant(x)} (groups of 128, f32 scales)
 *       then {@link GemmReference#fp8Block} with the weight's codes and scale_inv, rounded to f32; other weights
 *       (embedding, router, eh_proj, heads, BF16 checkpoints) as in "dequant".</li>
 *   <li>{@code rmsnorm(x, w) = x / sqrt(mean(x²) + eps) · w} in double, rounded to f32.</li>
 *   <li>block: {@code h = x + attn(rmsnorm(x)); out = h + ffn(rmsnorm(h))} (f32 adds).</li>
 *   <li>attn (MLA, up-projected): {@code q = q_b(rmsnorm(q_a(x)))} or {@code q_proj(x)}, viewed [S, H, nope+rope];
 *       {@code kv = kv_a_proj_with_mqa(x)}: {@code c = rmsnorm(kv[:kv_lora])}, {@code k_pe = kv[kv_lora:]} (shared by
 *       the heads); interleaved RoPE (pairs (x[2j], x[2j+1]), angle pos·f_j, {@link RopeReference#apply}, YaRN
 *       frequencies of DESIGN.md 4.3 with max_seq_len = max_position_embeddings) on q_pe and k_pe, rounded to f32;
 *       {@code kv_b(c)} viewed [S, H, nope+v]; {@code score = scale·(q_nope·k_nope + q_pe·k_pe)} for j ≤ i, softmax
 *       over j, {@code o = Σ_j p·v} (double, rounded to f32); {@code o_proj(o)}. {@code scale = (nope+rope)^-0.5 ·
 *       mscale²}, {@code mscale = 0.1·mscale_all_dim·ln(factor) + 1} under YaRN with factor > 1, else 1.</li>
 *   <li>dense ffn: {@code down(f32(silu(g)·u))}, {@code g = gate(x)}, {@code u = up(x)}, {@code silu(z) = z/(1+e^-z)}
 *       in double; in "fp8" the down projection's input is act_quant'ed like any fp8 linear input.</li>
 *   <li>MoE (layer ≥ first_k_dense_replace, layer % moe_layer_freq == 0): router logits {@code f32(Σ x·gate)} (double
 *       dot), {@link MoeReference#route} (sigmoid/softmax, groups, bias only to choose, norm_topk_prob, scaling;
 *       topk_method "greedy" = one group); {@code y = f32(Σ_k w_k·expert_k(x) + shared(x))} summed in double in slot
 *       order, the shared expert last.</li>
 *   <li>logits = {@code lm_head(rmsnorm(h, model.norm))}.</li>
 *   <li>MTP (layer N = num_hidden_layers), i in 0..S-2: {@code x_i = eh_proj([rmsnorm(E_mtp[ids[i+1]], enorm) ;
 *       rmsnorm(h_i, hnorm)])} (embedding first; h the main model's last hidden state), one block over positions
 *       0..S-2, {@code shared_head.head(rmsnorm(out_i, shared_head.norm))}: predicts token i+2. E_mtp is
 *       {@code model.layers.N.embed_tokens.weight} if present, else {@code model.embed_tokens.weight}.</li>
 * </ul>
 * Slow and simple; meant for checkpoints of a few million parameters (the whole checkpoint is held in memory).
 */
public final class ModelReference {
    /** The "gemm" modes. */
    public static final String DEQUANT = "dequant", FP8 = "fp8";

    /** The parsed config.json (Hugging Face key names); {@code qLoraRank} 0 when null; {@code yarn} null without rope_scaling. */
    public record Config(int vocabSize, int hiddenSize, int intermediateSize, int moeIntermediateSize, int numHiddenLayers,
                         int numHeads, int qLoraRank, int kvLoraRank, int qkNopeHeadDim, int qkRopeHeadDim, int vHeadDim,
                         int nRoutedExperts, int numExpertsPerTok, int nGroup, int topkGroup, Moe.ScoreFunction scoring,
                         boolean normTopkProb, float routedScalingFactor, int firstKDenseReplace, int moeLayerFreq,
                         double rmsNormEps, Rope.YarnConfig rope, double softmaxScale, int numNextnPredictLayers,
                         boolean tieWordEmbeddings) {
        /** True if layer {@code l} has a MoE feed-forward. */
        public boolean isMoe(int l) {
            return nRoutedExperts > 0 && l >= firstKDenseReplace && l % moeLayerFreq == 0;
        }

        /** The router of the MoE layers. */
        public Moe.GateConfig gate() {
            return new Moe.GateConfig(nRoutedExperts, numExpertsPerTok, nGroup, topkGroup, scoring, normTopkProb,
                    routedScalingFactor);
        }

        /** Parses a config.json object. */
        public static Config parse(Map<?, ?> j) {
            int v = req(j, "vocab_size"), d = req(j, "hidden_size"), heads = req(j, "num_attention_heads");
            int rope = req(j, "qk_rope_head_dim"), nope = req(j, "qk_nope_head_dim");
            int experts = opt(j, "n_routed_experts", 0);
            boolean greedy = "greedy".equals(j.get("topk_method")); // V2's plain top-k: one group
            int nGroup = greedy ? 1 : opt(j, "n_group", 1);
            int topkGroup = greedy ? 1 : opt(j, "topk_group", 1);
            Moe.ScoreFunction scoring = switch (j.get("scoring_func") instanceof String s ? s : "softmax") {
                case "sigmoid" -> Moe.ScoreFunction.SIGMOID;
                case "softmax" -> Moe.ScoreFunction.SOFTMAX;
                default -> throw new IllegalArgumentException("config 'scoring_func' must be \"sigmoid\" or \"softmax\", got "
                        + j.get("scoring_func"));
            };
            if (j.get("hidden_act") instanceof String act && !act.equals("silu"))
                throw new IllegalArgumentException("config 'hidden_act' must be \"silu\", got " + act);
            double theta = j.get("rope_theta") instanceof Number n ? n.doubleValue() : 10000;
            long maxPos = opt(j, "max_position_embeddings", 4096);
            Rope.YarnConfig yarn;
            double mscale = 1;
            if (j.get("rope_scaling") instanceof Map<?, ?> rs) {
                Object type = rs.containsKey("type") ? rs.get("type") : rs.get("rope_type");
                if (!"yarn".equals(type))
                    throw new IllegalArgumentException("config 'rope_scaling.type' must be \"yarn\", got " + type);
                double factor = num(rs, "factor", 1);
                long orig = (long) num(rs, "original_max_position_embeddings", maxPos);
                double m = num(rs, "mscale", 1), mAll = num(rs, "mscale_all_dim", 0);
                if (factor > 1 && m != mAll) // HF scales cos/sin by mscale(m)/mscale(mAll): 1 only when equal
                    throw new IllegalArgumentException("config 'rope_scaling': mscale " + m + " != mscale_all_dim " + mAll
                            + " (a cos/sin mscale is not supported)");
                yarn = new Rope.YarnConfig(rope, theta, factor, orig, maxPos, num(rs, "beta_fast", 32), num(rs, "beta_slow", 1));
                mscale = factor > 1 ? 0.1 * mAll * Math.log(factor) + 1 : 1;
            } else {
                yarn = new Rope.YarnConfig(rope, theta, 1, maxPos, maxPos, 32, 1); // plain f_j (no ramp)
            }
            return new Config(v, d, opt(j, "intermediate_size", 0), opt(j, "moe_intermediate_size", 0),
                    req(j, "num_hidden_layers"), heads, opt(j, "q_lora_rank", 0), req(j, "kv_lora_rank"), nope, rope,
                    req(j, "v_head_dim"), experts, opt(j, "num_experts_per_tok", 1), nGroup, topkGroup, scoring,
                    Boolean.TRUE.equals(j.get("norm_topk_prob")),
                    j.get("routed_scaling_factor") instanceof Number n ? n.floatValue() : 1f,
                    opt(j, "first_k_dense_replace", 0), Math.max(1, opt(j, "moe_layer_freq", 1)),
                    j.get("rms_norm_eps") instanceof Number n ? n.doubleValue() : 1e-6, yarn,
                    mscale * mscale / Math.sqrt(nope + rope), opt(j, "num_nextn_predict_layers", 0),
                    Boolean.TRUE.equals(j.get("tie_word_embeddings")));
        }

        private static int req(Map<?, ?> j, String key) {
            if (!(j.get(key) instanceof Long n) || n < 0 || n > Integer.MAX_VALUE)
                throw new IllegalArgumentException("config '" + key + "' must be a non-negative integer, got " + j.get(key));
            return (int) (long) n;
        }

        private static int opt(Map<?, ?> j, String key, int dflt) {
            return j.get(key) == null ? dflt : req(j, key);
        }

        private static double num(Map<?, ?> m, String key, double dflt) {
            return m.get(key) instanceof Number n ? n.doubleValue() : dflt;
        }
    }

    private final Config config;
    private final Map<String, SafeTensors.Entry> tensors;
    private final Map<String, float[]> values = new HashMap<>(); // cache: f32 (dequantized) values by tensor name

    private ModelReference(Config config, Map<String, SafeTensors.Entry> tensors) {
        this.config = config;
        this.tensors = tensors;
    }

    public Config config() { return config; }

    /** Loads {@code dir}: config.json and model.safetensors.index.json (or a single model.safetensors). */
    public static ModelReference load(Path dir) throws IOException {
        Path cfg = dir.resolve(DemoCheckpoint.CONFIG);
        if (!Files.isRegularFile(cfg)) throw new IllegalArgumentException("argument 'dir': no config.json in " + dir);
        if (!(Json.parse(Files.readString(cfg)) instanceof Map<?, ?> cj))
            throw new IllegalArgumentException(cfg + ": not a JSON object");
        Config config = Config.parse(cj);
        Set<String> files = new LinkedHashSet<>();
        Path index = dir.resolve(DemoCheckpoint.INDEX);
        if (Files.isRegularFile(index)) {
            if (!(Json.parse(Files.readString(index)) instanceof Map<?, ?> ij) || !(ij.get("weight_map") instanceof Map<?, ?> wm))
                throw new IllegalArgumentException(index + ": no \"weight_map\" object");
            for (Object f : wm.values()) files.add(String.valueOf(f));
        } else if (Files.isRegularFile(dir.resolve(DemoCheckpoint.SINGLE))) {
            files.add(DemoCheckpoint.SINGLE);
        } else {
            throw new IllegalArgumentException("argument 'dir': neither " + DemoCheckpoint.INDEX + " nor "
                    + DemoCheckpoint.SINGLE + " in " + dir);
        }
        Map<String, SafeTensors.Entry> tensors = new HashMap<>();
        for (String f : files) tensors.putAll(SafeTensors.read(dir.resolve(f)).tensors());
        return new ModelReference(config, tensors);
    }

    // ------------------------------------------------------------------ public forward

    /** logits [B][S][V] of each sequence (positions 0..S-1); gemm "dequant" or "fp8". */
    public float[][][] logits(int[][] inputIds, String gemm) {
        boolean fp8 = mode(gemm);
        float[][][] out = new float[check(inputIds).length][][];
        for (int b = 0; b < inputIds.length; b++) out[b] = head(hiddenStates(inputIds[b], fp8), "model.norm.weight", headName(), fp8);
        return out;
    }

    /** The last hidden states before the final norm, [B][S][D]. */
    public float[][][] hidden(int[][] inputIds, String gemm) {
        boolean fp8 = mode(gemm);
        float[][][] out = new float[check(inputIds).length][][];
        for (int b = 0; b < inputIds.length; b++) out[b] = hiddenStates(inputIds[b], fp8);
        return out;
    }

    /** MTP logits [B][S-1][V]: row i predicts token i+2 from the hidden state at i and token i+1. */
    public float[][][] mtpLogits(int[][] inputIds, String gemm) {
        boolean fp8 = mode(gemm);
        int n = config.numHiddenLayers();
        String p = "model.layers." + n + ".";
        if (config.numNextnPredictLayers() < 1 || !tensors.containsKey(p + "eh_proj.weight"))
            throw new IllegalArgumentException("the checkpoint has no MTP layer (num_nextn_predict_layers "
                    + config.numNextnPredictLayers() + ", no " + p + "eh_proj.weight)");
        String emb = tensors.containsKey(p + "embed_tokens.weight") ? p + "embed_tokens.weight" : "model.embed_tokens.weight";
        float[][][] out = new float[check(inputIds).length][][];
        int d = config.hiddenSize();
        for (int b = 0; b < inputIds.length; b++) {
            int[] ids = inputIds[b];
            float[][] h = hiddenStates(ids, fp8);
            int s = Math.max(ids.length - 1, 0);
            float[][] x = new float[s][2 * d];
            float[] table = values(emb), enorm = values(p + "enorm.weight"), hnorm = values(p + "hnorm.weight");
            for (int i = 0; i < s; i++) {
                float[] e = rmsnorm(java.util.Arrays.copyOfRange(table, ids[i + 1] * d, (ids[i + 1] + 1) * d), enorm);
                float[] g = rmsnorm(h[i], hnorm);
                System.arraycopy(e, 0, x[i], 0, d);
                System.arraycopy(g, 0, x[i], d, d);
            }
            float[][] y = block(n, linear(p + "eh_proj.weight", x, fp8), fp8);
            out[b] = head(y, p + "shared_head.norm.weight", p + "shared_head.head.weight", fp8);
        }
        return out;
    }

    private static boolean mode(String gemm) {
        if (DEQUANT.equals(gemm)) return false;
        if (FP8.equals(gemm)) return true;
        throw new IllegalArgumentException("argument 'gemm' must be \"dequant\" or \"fp8\", got " + gemm);
    }

    private int[][] check(int[][] ids) {
        if (ids == null) throw new IllegalArgumentException("argument 'inputIds' is null");
        for (int b = 0; b < ids.length; b++) {
            if (ids[b] == null) throw new IllegalArgumentException("argument 'inputIds' row " + b + " is null");
            for (int id : ids[b])
                if (id < 0 || id >= config.vocabSize())
                    throw new IllegalArgumentException("argument 'inputIds' has token " + id + " outside [0, "
                            + config.vocabSize() + ")");
        }
        return ids;
    }

    private String headName() {
        return !tensors.containsKey("lm_head.weight") && config.tieWordEmbeddings() ? "model.embed_tokens.weight" : "lm_head.weight";
    }

    // ------------------------------------------------------------------ the model

    /** The main model's last hidden states [S][D] of one sequence. */
    float[][] hiddenStates(int[] ids, boolean fp8) {
        int d = config.hiddenSize();
        float[] table = values("model.embed_tokens.weight");
        float[][] x = new float[ids.length][];
        for (int i = 0; i < ids.length; i++) x[i] = java.util.Arrays.copyOfRange(table, ids[i] * d, (ids[i] + 1) * d);
        for (int l = 0; l < config.numHiddenLayers(); l++) x = block(l, x, fp8);
        return x;
    }

    private float[][] head(float[][] h, String norm, String head, boolean fp8) {
        return linear(head, rmsnorm(h, values(norm)), fp8);
    }

    /** One decoder block of layer l over positions 0..S-1. */
    float[][] block(int l, float[][] x, boolean fp8) {
        String p = "model.layers." + l + ".";
        float[][] h = add(x, attention(l, rmsnorm(x, values(p + "input_layernorm.weight")), fp8));
        float[][] n = rmsnorm(h, values(p + "post_attention_layernorm.weight"));
        return add(h, config.isMoe(l) ? moe(p + "mlp.", n, fp8) : ffn(p + "mlp.", n, fp8));
    }

    /** MLA of layer l on the normed input x [S][D], positions 0..S-1, causal. */
    float[][] attention(int l, float[][] x, boolean fp8) {
        String p = "model.layers." + l + ".self_attn.";
        int s = x.length, heads = config.numHeads(), nope = config.qkNopeHeadDim(), rope = config.qkRopeHeadDim();
        int qk = nope + rope, vd = config.vHeadDim(), kvl = config.kvLoraRank();
        float[][] q = config.qLoraRank() > 0
                ? linear(p + "q_b_proj.weight", rmsnorm(linear(p + "q_a_proj.weight", x, fp8), values(p + "q_a_layernorm.weight")), fp8)
                : linear(p + "q_proj.weight", x, fp8);
        float[][] kv = linear(p + "kv_a_proj_with_mqa.weight", x, fp8);
        float[][] c = new float[s][];
        float[] qPe = new float[s * heads * rope], kPe = new float[s * rope];
        int[] pos = new int[s];
        for (int i = 0; i < s; i++) {
            pos[i] = i;
            c[i] = java.util.Arrays.copyOf(kv[i], kvl);
            System.arraycopy(kv[i], kvl, kPe, i * rope, rope);
            for (int h = 0; h < heads; h++) System.arraycopy(q[i], h * qk + nope, qPe, (i * heads + h) * rope, rope);
        }
        c = rmsnorm(c, values(p + "kv_a_layernorm.weight"));
        float[] qr = toFloats(RopeReference.apply(qPe, pos, heads, rope, Rope.Layout.INTERLEAVED, config.rope())[0]);
        float[] kr = toFloats(RopeReference.apply(kPe, pos, 1, rope, Rope.Layout.INTERLEAVED, config.rope())[0]);
        float[][] kvb = linear(p + "kv_b_proj.weight", c, fp8);
        float[][] o = new float[s][heads * vd];
        double scale = config.softmaxScale();
        for (int i = 0; i < s; i++)
            for (int h = 0; h < heads; h++) {
                double[] score = new double[i + 1];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j <= i; j++) {
                    double acc = 0;
                    for (int t = 0; t < nope; t++) acc += (double) q[i][h * qk + t] * kvb[j][h * (nope + vd) + t];
                    for (int t = 0; t < rope; t++) acc += (double) qr[(i * heads + h) * rope + t] * kr[j * rope + t];
                    score[j] = scale * acc;
                    max = Math.max(max, score[j]);
                }
                double sum = 0;
                for (int j = 0; j <= i; j++) {
                    score[j] = Math.exp(score[j] - max);
                    sum += score[j];
                }
                double[] acc = new double[vd];
                for (int j = 0; j <= i; j++) {
                    double w = score[j] / sum;
                    for (int t = 0; t < vd; t++) acc[t] += w * kvb[j][h * (nope + vd) + nope + t];
                }
                for (int t = 0; t < vd; t++) o[i][h * vd + t] = (float) acc[t];
            }
        return linear(p + "o_proj.weight", o, fp8);
    }

    /** The SwiGLU FFN with weights {@code p}{gate,up,down}_proj.weight: down(f32(silu(gate(x))·up(x))). */
    float[][] ffn(String p, float[][] x, boolean fp8) {
        float[][] g = linear(p + "gate_proj.weight", x, fp8), u = linear(p + "up_proj.weight", x, fp8);
        float[][] a = new float[x.length][];
        for (int i = 0; i < x.length; i++) {
            a[i] = new float[g[i].length];
            for (int n = 0; n < a[i].length; n++) {
                double z = g[i][n];
                a[i][n] = (float) (z / (1 + Math.exp(-z)) * u[i][n]);
            }
        }
        return linear(p + "down_proj.weight", a, fp8);
    }

    /** The MoE feed-forward with weights under {@code p} ("model.layers.L.mlp."). */
    float[][] moe(String p, float[][] x, boolean fp8) {
        int s = x.length, k = config.numExpertsPerTok(), e = config.nRoutedExperts(), d = config.hiddenSize();
        int[] idx = new int[s * k];
        float[] w = new float[s * k];
        route(p, x, idx, w);
        float[][][] slot = new float[s][k][]; // expert outputs per token and slot
        for (int ex = 0; ex < e; ex++) {
            int rows = 0;
            for (int v : idx) if (v == ex) rows++;
            if (rows == 0) continue;
            float[][] xe = new float[rows][];
            int[] at = new int[rows];
            for (int r = 0, q = 0; q < idx.length; q++)
                if (idx[q] == ex) {
                    at[r] = q;
                    xe[r++] = x[q / k];
                }
            float[][] ye = ffn(p + "experts." + ex + ".", xe, fp8);
            for (int r = 0; r < rows; r++) slot[at[r] / k][at[r] % k] = ye[r];
        }
        float[][] shared = tensors.containsKey(p + "shared_experts.down_proj.weight") ? ffn(p + "shared_experts.", x, fp8) : null;
        float[][] y = new float[s][d];
        for (int i = 0; i < s; i++)
            for (int t = 0; t < d; t++) {
                double acc = 0;
                for (int r = 0; r < k; r++) acc += (double) w[i * k + r] * slot[i][r][t];
                if (shared != null) acc += shared[i][t];
                y[i][t] = (float) acc;
            }
        return y;
    }

    /**
     * The router under {@code p} on x [S][D]: logits {@code f32(Σ x·gate)} (double dot), then
     * {@link MoeReference#route}; fills idx and w [S·top_k] (descending biased score).
     */
    void route(String p, float[][] x, int[] idx, float[] w) {
        Moe.GateConfig gc = config.gate();
        int k = gc.topK(), e = gc.experts(), d = config.hiddenSize();
        float[] wg = values(p + "gate.weight");
        float[] bias = tensors.containsKey(p + "gate.e_score_correction_bias") ? values(p + "gate.e_score_correction_bias") : null;
        for (int i = 0; i < x.length; i++) {
            float[] logits = new float[e];
            for (int j = 0; j < e; j++) {
                double acc = 0;
                for (int t = 0; t < d; t++) acc += (double) x[i][t] * wg[j * d + t];
                logits[j] = (float) acc;
            }
            MoeReference.route(logits, bias, gc, idx, w, i * k);
        }
    }

    // ------------------------------------------------------------------ ops

    /** linear(x, W) of the class comment: x [M][K] → [M][N]. */
    float[][] linear(String name, float[][] x, boolean fp8) {
        SafeTensors.Entry w = tensor(name);
        if (w.shape().length != 2) throw new IllegalArgumentException(name + ": expected 2 dimensions, got " + w.shape().length);
        int n = (int) w.shape()[0], k = (int) w.shape()[1], m = x.length;
        for (float[] row : x)
            if (row.length != k) throw new IllegalArgumentException(name + ": input has " + row.length + " columns, weight has " + k);
        float[][] y = new float[m][n];
        if (fp8 && w.dtype().equals("F8_E4M3")) {
            if (k % 128 != 0) throw new IllegalArgumentException(name + ": K = " + k + " is not a multiple of 128 (fp8 gemm)");
            float[] a = new float[m * k];
            for (int i = 0; i < m; i++) System.arraycopy(x[i], 0, a, i * k, k);
            byte[] aq = new byte[m * k];
            float[] as = new float[m * (k / 128)];
            Fp8Reference.actQuant(a, m, k, false, aq, as);
            double[] r = GemmReference.fp8Block(aq, as, w.data(), scaleInv(name, n, k), null, m, n, k).value();
            for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) y[i][j] = (float) r[i * n + j];
            return y;
        }
        float[] wv = values(name);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double acc = 0;
                for (int t = 0; t < k; t++) acc += (double) x[i][t] * wv[j * k + t];
                y[i][j] = (float) acc;
            }
        return y;
    }

    /** rmsnorm of each row. */
    float[][] rmsnorm(float[][] x, float[] w) {
        float[][] y = new float[x.length][];
        for (int i = 0; i < x.length; i++) y[i] = rmsnorm(x[i], w);
        return y;
    }

    /** x / sqrt(mean(x²) + eps) · w in double, rounded to f32. */
    float[] rmsnorm(float[] x, float[] w) {
        if (x.length != w.length) throw new IllegalArgumentException("rmsnorm: " + x.length + " values, " + w.length + " weights");
        double ss = 0;
        for (float v : x) ss += (double) v * v;
        double r = 1 / Math.sqrt(ss / x.length + config.rmsNormEps());
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i++) y[i] = (float) (x[i] * r * w[i]);
        return y;
    }

    private static float[][] add(float[][] a, float[][] b) {
        float[][] y = new float[a.length][];
        for (int i = 0; i < a.length; i++) {
            y[i] = new float[a[i].length];
            for (int j = 0; j < a[i].length; j++) y[i][j] = a[i][j] + b[i][j];
        }
        return y;
    }

    private static float[] toFloats(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        return f;
    }

    SafeTensors.Entry tensor(String name) {
        SafeTensors.Entry e = tensors.get(name);
        if (e == null) throw new IllegalArgumentException("the checkpoint has no tensor " + name);
        return e;
    }

    private float[] scaleInv(String name, int n, int k) {
        String sn = name + "_scale_inv";
        SafeTensors.Entry s = tensor(sn);
        long nb = (n + 127) / 128, kb = (k + 127) / 128;
        if (s.shape().length != 2 || s.shape()[0] != nb || s.shape()[1] != kb)
            throw new IllegalArgumentException(sn + ": shape " + java.util.Arrays.toString(s.shape()) + ", expected [" + nb + ", " + kb + "]");
        return s.floats();
    }

    /**
     * The f32 values of a tensor (cached): F8_E4M3 weights dequantized as {@code bf16(e4m3 · scale_inv)}, BF16/F16
     * widened exactly, F32 as stored.
     */
    synchronized float[] values(String name) {
        float[] v = values.get(name);
        if (v != null) return v;
        SafeTensors.Entry e = tensor(name);
        int[] raw = e.raw();
        v = new float[raw.length];
        switch (e.dtype()) {
            case "F32" -> { for (int i = 0; i < raw.length; i++) v[i] = Float.intBitsToFloat(raw[i]); }
            case "BF16" -> { for (int i = 0; i < raw.length; i++) v[i] = Fp8Reference.bf16ToFloat((short) raw[i]); }
            case "F16" -> { for (int i = 0; i < raw.length; i++) v[i] = Fp8Reference.f16ToFloat((short) raw[i]); }
            case "F8_E4M3" -> {
                if (e.shape().length != 2) throw new IllegalArgumentException(name + ": an F8_E4M3 weight must be 2-dimensional");
                int n = (int) e.shape()[0], k = (int) e.shape()[1], kb = (k + 127) / 128;
                float[] s = scaleInv(name, n, k);
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < k; j++)
                        v[i * k + j] = Fp8Reference.bf16ToFloat(Fp8Reference.floatToBf16(
                                Fp8Reference.e4m3ToFloat((byte) raw[i * k + j]) * s[(i / 128) * kb + j / 128]));
            }
            default -> throw new IllegalArgumentException(name + ": unsupported dtype " + e.dtype());
        }
        values.put(name, v);
        return v;
    }

    /** The names of the tensors (for tests). */
    List<String> tensorNames() { return tensors.keySet().stream().sorted().toList(); }
}
