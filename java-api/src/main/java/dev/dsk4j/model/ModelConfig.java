package dev.dsk4j.model;

import dev.dsk4j.Moe;
import dev.dsk4j.Rope;
import dev.dsk4j.internal.Json;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The {@code config.json} of a DeepSeek-V2 / V2-Lite / V3 / R1 checkpoint (Hugging Face key
 * names, given with each component), restricted to what the dsk4j kernels compute: MLA with
 * {@code kv_lora_rank} 512, {@code qk_nope_head_dim} 128, {@code qk_rope_head_dim} 64,
 * {@code v_head_dim} 128; SiLU experts; YaRN RoPE scaling whose cos/sin carry no mscale; FP8 e4m3
 * weights in 128×128 blocks with dynamic activation scales. Anything else is an
 * {@link IllegalArgumentException} that names the key and why, e.g.
 * {@code "config.json: 'kv_lora_rank' = 256 is not supported: the MLA kernels need 512"}.
 *
 * <p>Keys the kernels do not need ({@code num_key_value_heads}, {@code attention_bias},
 * {@code torch_dtype}, {@code aux_loss_alpha}, ...) are ignored. Absent optional keys take the
 * Hugging Face defaults: {@code rms_norm_eps} 1e-6, {@code rope_theta} 10000, {@code moe_layer_freq} 1,
 * {@code first_k_dense_replace} 0, {@code n_group} 1, {@code topk_group} 1, {@code norm_topk_prob}
 * false, {@code scoring_func} "softmax", {@code topk_method} "greedy", {@code routed_scaling_factor}
 * 1.0, {@code num_nextn_predict_layers} 0, {@code n_shared_experts} 0, {@code hidden_act} "silu",
 * {@code tie_word_embeddings} false, token ids -1; in {@code rope_scaling}
 * {@code original_max_position_embeddings} 4096, {@code beta_fast} 32, {@code beta_slow} 1,
 * {@code mscale} 1, {@code mscale_all_dim} 0. Required: {@code vocab_size}, {@code hidden_size},
 * {@code intermediate_size}, {@code num_hidden_layers}, {@code num_attention_heads},
 * {@code q_lora_rank} (may be null), {@code kv_lora_rank}, {@code qk_nope_head_dim},
 * {@code qk_rope_head_dim}, {@code v_head_dim}, {@code max_position_embeddings}, and with routed
 * experts {@code moe_intermediate_size} and {@code num_experts_per_tok}.
 *
 * @param vocabSize             {@code vocab_size}
 * @param hiddenSize            {@code hidden_size}
 * @param intermediateSize      {@code intermediate_size}: the dense FFN's width
 * @param moeIntermediateSize   {@code moe_intermediate_size}: one expert's width (0 in a dense model)
 * @param numHiddenLayers       {@code num_hidden_layers}
 * @param numAttentionHeads     {@code num_attention_heads}
 * @param qLoraRank             {@code q_lora_rank}; 0 when null (q projected directly, as in V2-Lite)
 * @param kvLoraRank            {@code kv_lora_rank} (512)
 * @param qkNopeHeadDim         {@code qk_nope_head_dim} (128)
 * @param qkRopeHeadDim         {@code qk_rope_head_dim} (64)
 * @param vHeadDim              {@code v_head_dim} (128)
 * @param nRoutedExperts        {@code n_routed_experts}; 0 when null or absent: every layer dense
 * @param nSharedExperts        {@code n_shared_experts}
 * @param numExpertsPerTok      {@code num_experts_per_tok}
 * @param nGroup                {@code n_group}
 * @param topkGroup             {@code topk_group}
 * @param scoringFunc           {@code scoring_func}: "sigmoid" or "softmax"
 * @param topkMethod            {@code topk_method}: "noaux_tc", "greedy" or "group_limited_greedy"
 * @param normTopkProb          {@code norm_topk_prob}
 * @param routedScalingFactor   {@code routed_scaling_factor}
 * @param firstKDenseReplace    {@code first_k_dense_replace}
 * @param moeLayerFreq          {@code moe_layer_freq}
 * @param rmsNormEps            {@code rms_norm_eps}
 * @param ropeTheta             {@code rope_theta}
 * @param maxPositionEmbeddings {@code max_position_embeddings}
 * @param ropeScaling           {@code rope_scaling} (YaRN), null when null or absent
 * @param fp8                   true when {@code quantization_config.quant_method} is "fp8" (weights e4m3
 *                              with {@code weight_scale_inv} per 128×128 block)
 * @param numNextnPredictLayers {@code num_nextn_predict_layers}: MTP layers after the last block
 * @param tieWordEmbeddings     {@code tie_word_embeddings}
 * @param bosTokenId            {@code bos_token_id}, -1 when null or absent
 * @param eosTokenId            {@code eos_token_id} (the first one when it is a list), -1 when null or absent
 * @param eosTokenIds           every {@code eos_token_id} (empty when absent)
 */
public record ModelConfig(int vocabSize, int hiddenSize, int intermediateSize, int moeIntermediateSize,
                          int numHiddenLayers, int numAttentionHeads, int qLoraRank, int kvLoraRank, int qkNopeHeadDim,
                          int qkRopeHeadDim, int vHeadDim, int nRoutedExperts, int nSharedExperts, int numExpertsPerTok,
                          int nGroup, int topkGroup, String scoringFunc, String topkMethod, boolean normTopkProb,
                          double routedScalingFactor, int firstKDenseReplace, int moeLayerFreq, double rmsNormEps,
                          double ropeTheta, int maxPositionEmbeddings, Yarn ropeScaling, boolean fp8,
                          int numNextnPredictLayers, boolean tieWordEmbeddings, int bosTokenId, int eosTokenId,
                          List<Integer> eosTokenIds) {

    /** The scoring functions the router supports. */
    public static final Set<String> SCORING_FUNCS = Set.of("sigmoid", "softmax");
    /** The top-k methods the router supports. */
    public static final Set<String> TOPK_METHODS = Set.of("noaux_tc", "greedy", "group_limited_greedy");

    /**
     * {@code rope_scaling} of type "yarn" (Hugging Face names: {@code factor},
     * {@code original_max_position_embeddings}, {@code beta_fast}, {@code beta_slow}, {@code mscale},
     * {@code mscale_all_dim}). The kernels build cos/sin without a magnitude factor, which is what
     * Hugging Face computes only when {@code mscale == mscale_all_dim} (their ratio scales cos/sin):
     * anything else is rejected.
     */
    public record Yarn(double factor, int originalMaxPositionEmbeddings, double betaFast, double betaSlow, double mscale,
                       double mscaleAllDim) {
        public Yarn {
            if (!Double.isFinite(factor) || !(factor >= 1))
                throw new IllegalArgumentException("'rope_scaling.factor' = " + num(factor) + " is not supported: it must be >= 1");
            if (originalMaxPositionEmbeddings < 1)
                throw new IllegalArgumentException("'rope_scaling.original_max_position_embeddings' = "
                        + originalMaxPositionEmbeddings + " must be positive");
            if (!Double.isFinite(betaFast) || !(betaFast > 0))
                throw new IllegalArgumentException("'rope_scaling.beta_fast' = " + num(betaFast) + " must be positive");
            if (!Double.isFinite(betaSlow) || !(betaSlow > 0))
                throw new IllegalArgumentException("'rope_scaling.beta_slow' = " + num(betaSlow) + " must be positive");
            if (!Double.isFinite(mscale) || !Double.isFinite(mscaleAllDim))
                throw new IllegalArgumentException("'rope_scaling.mscale' = " + num(mscale) + " and 'mscale_all_dim' = "
                        + num(mscaleAllDim) + " must be finite");
            if (factor > 1 && mscale != mscaleAllDim)
                throw new IllegalArgumentException("'rope_scaling.mscale' = " + num(mscale)
                        + " differs from 'rope_scaling.mscale_all_dim' = " + num(mscaleAllDim)
                        + ": not supported, cos/sin would carry an mscale the kernels do not apply");
        }

        /** YaRN's attention magnitude factor {@code 0.1·mscaleAllDim·ln(factor) + 1} (1 when factor <= 1). */
        public double attentionMscale() {
            return factor > 1 ? 0.1 * mscaleAllDim * Math.log(factor) + 1 : 1;
        }
    }

    public ModelConfig {
        positive("vocab_size", vocabSize);
        positive("hidden_size", hiddenSize);
        positive("intermediate_size", intermediateSize);
        positive("num_hidden_layers", numHiddenLayers);
        positive("num_attention_heads", numAttentionHeads);
        positive("max_position_embeddings", maxPositionEmbeddings);
        if (qLoraRank < 0) throw new IllegalArgumentException("'q_lora_rank' = " + qLoraRank + " must be positive or null");
        exactly("kv_lora_rank", kvLoraRank, 512, "the MLA kernels need 512");
        exactly("qk_nope_head_dim", qkNopeHeadDim, 128, "the MLA kernels need 128");
        exactly("qk_rope_head_dim", qkRopeHeadDim, 64, "the MLA kernels need 64");
        exactly("v_head_dim", vHeadDim, 128, "the MLA kernels need 128");
        if (nRoutedExperts < 0 || nRoutedExperts > 4096)
            throw new IllegalArgumentException("'n_routed_experts' = " + nRoutedExperts + " must be in [1, 4096] or null");
        if (nSharedExperts < 0)
            throw new IllegalArgumentException("'n_shared_experts' = " + nSharedExperts + " must not be negative");
        if (moeIntermediateSize < 0)
            throw new IllegalArgumentException("'moe_intermediate_size' = " + moeIntermediateSize + " must be positive");
        if (numExpertsPerTok < 0)
            throw new IllegalArgumentException("'num_experts_per_tok' = " + numExpertsPerTok + " must be positive");
        Objects.requireNonNull(scoringFunc, "'scoring_func' is null");
        Objects.requireNonNull(topkMethod, "'topk_method' is null");
        if (!SCORING_FUNCS.contains(scoringFunc))
            throw new IllegalArgumentException("'scoring_func' = \"" + scoringFunc
                    + "\" is not supported: the router computes \"sigmoid\" or \"softmax\"");
        if (!TOPK_METHODS.contains(topkMethod))
            throw new IllegalArgumentException("'topk_method' = \"" + topkMethod
                    + "\" is not supported: the router computes \"noaux_tc\", \"greedy\" or \"group_limited_greedy\"");
        if (nGroup < 1) throw new IllegalArgumentException("'n_group' = " + nGroup + " must be positive");
        if (topkGroup < 1) throw new IllegalArgumentException("'topk_group' = " + topkGroup + " must be positive");
        if (nRoutedExperts > 0) {
            positive("moe_intermediate_size", moeIntermediateSize);
            positive("num_experts_per_tok", numExpertsPerTok);
            if (nRoutedExperts % nGroup != 0)
                throw new IllegalArgumentException("'n_routed_experts' = " + nRoutedExperts
                        + " is not divisible by 'n_group' = " + nGroup);
            if (topkGroup > nGroup)
                throw new IllegalArgumentException("'topk_group' = " + topkGroup + " is larger than 'n_group' = " + nGroup);
            long reachable = (long) topkGroup * (nRoutedExperts / nGroup);
            if (numExpertsPerTok > reachable)
                throw new IllegalArgumentException("'num_experts_per_tok' = " + numExpertsPerTok
                        + " is larger than 'topk_group' * 'n_routed_experts' / 'n_group' = " + reachable);
        }
        if (!Double.isFinite(routedScalingFactor) || !(routedScalingFactor > 0))
            throw new IllegalArgumentException("'routed_scaling_factor' = " + num(routedScalingFactor) + " must be positive");
        if (firstKDenseReplace < 0)
            throw new IllegalArgumentException("'first_k_dense_replace' = " + firstKDenseReplace + " must not be negative");
        positive("moe_layer_freq", moeLayerFreq);
        if (!Double.isFinite(rmsNormEps) || !(rmsNormEps > 0))
            throw new IllegalArgumentException("'rms_norm_eps' = " + num(rmsNormEps) + " must be positive");
        if (!Double.isFinite(ropeTheta) || !(ropeTheta > 1))
            throw new IllegalArgumentException("'rope_theta' = " + num(ropeTheta) + " must be larger than 1");
        if (numNextnPredictLayers < 0)
            throw new IllegalArgumentException("'num_nextn_predict_layers' = " + numNextnPredictLayers
                    + " must not be negative");
        eosTokenIds = List.copyOf(Objects.requireNonNull(eosTokenIds, "'eosTokenIds' is null"));
        int first = eosTokenIds.isEmpty() ? -1 : eosTokenIds.get(0);
        if (eosTokenId != first)
            throw new IllegalArgumentException("'eos_token_id' = " + eosTokenId + " is not the first of " + eosTokenIds);
        if (bosTokenId < -1) throw new IllegalArgumentException("'bos_token_id' = " + bosTokenId + " must not be negative");
        for (int id : eosTokenIds)
            if (id < 0) throw new IllegalArgumentException("'eos_token_id' " + eosTokenIds + " holds a negative id");
    }

    private static void positive(String key, int v) {
        if (v <= 0) throw new IllegalArgumentException("'" + key + "' = " + v + " must be positive");
    }

    private static void exactly(String key, int v, int need, String why) {
        if (v != need) throw new IllegalArgumentException("'" + key + "' = " + v + " is not supported: " + why);
    }

    private static String num(double d) {
        return d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString((long) d) : Double.toString(d);
    }

    // ------------------------------------------------------------------ derived

    /** True when layer {@code layer} has a routed-expert FFN: {@code nRoutedExperts > 0 && layer >= firstKDenseReplace && layer % moeLayerFreq == 0}. */
    public boolean isMoeLayer(int layer) {
        if (layer < 0) throw new IllegalArgumentException("argument 'layer' must not be negative, got " + layer);
        return nRoutedExperts > 0 && layer >= firstKDenseReplace && layer % moeLayerFreq == 0;
    }

    /**
     * The softmax scale of MLA: {@code (qkNopeHeadDim + qkRopeHeadDim)^-0.5 · mscale²} with
     * {@code mscale = 0.1·mscaleAllDim·ln(factor) + 1} when {@code rope_scaling} is set and
     * {@code factor > 1}, else 1 (Hugging Face {@code DeepseekV2Attention}). DeepSeek-V3: 0.1352338.
     */
    public double softmaxScale() {
        double m = ropeScaling != null ? ropeScaling.attentionMscale() : 1;
        return Math.pow(qkNopeHeadDim + qkRopeHeadDim, -0.5) * m * m;
    }

    /**
     * The RoPE table configuration: dim {@code qkRopeHeadDim}, theta {@code ropeTheta}, the YaRN
     * factor, original length and betas, {@code maxSeqLen = maxPositionEmbeddings} (use
     * {@link Rope.YarnConfig#withMaxSeqLen} for a shorter table: the frequencies do not depend on
     * it as long as it stays above the original length). Without {@code rope_scaling}: factor 1 and
     * original length = {@code maxPositionEmbeddings} (plain RoPE).
     */
    public Rope.YarnConfig yarn() {
        if (ropeScaling == null)
            return new Rope.YarnConfig(qkRopeHeadDim, ropeTheta, 1, maxPositionEmbeddings, maxPositionEmbeddings, 32, 1);
        return new Rope.YarnConfig(qkRopeHeadDim, ropeTheta, ropeScaling.factor(),
                ropeScaling.originalMaxPositionEmbeddings(), maxPositionEmbeddings, ropeScaling.betaFast(),
                ropeScaling.betaSlow());
    }

    /**
     * The router configuration: {@code n_routed_experts}, {@code num_experts_per_tok}, {@code n_group}
     * and {@code topk_group} (both 1 for "greedy"), the scoring function, {@code norm_topk_prob},
     * {@code routed_scaling_factor}. "noaux_tc" routes with the {@code e_score_correction_bias}
     * (group score: sum of the top-2), "group_limited_greedy" without it (group score: the max).
     * The router always multiplies by {@code routed_scaling_factor}, as DeepSeek-V3 does; Hugging
     * Face's DeepSeek-V2 code skips that factor when {@code norm_topk_prob} is true (no published V2
     * checkpoint sets it). A dense model (no routed experts) has no router: IllegalStateException.
     */
    public Moe.GateConfig gate() {
        if (nRoutedExperts == 0) throw new IllegalStateException("a dense model ('n_routed_experts' null) has no router");
        boolean greedy = topkMethod.equals("greedy");
        return new Moe.GateConfig(nRoutedExperts, numExpertsPerTok, greedy ? 1 : nGroup, greedy ? 1 : topkGroup,
                scoringFunc.equals("sigmoid") ? Moe.ScoreFunction.SIGMOID : Moe.ScoreFunction.SOFTMAX, normTopkProb,
                (float) routedScalingFactor);
    }

    /** Query/key head width: {@code qkNopeHeadDim + qkRopeHeadDim} (192). */
    public int qkHeadDim() { return qkNopeHeadDim + qkRopeHeadDim; }

    // ------------------------------------------------------------------ reading

    /** Reads and validates {@code configJson}; messages start with its file name. */
    public static ModelConfig read(Path configJson) throws IOException {
        Objects.requireNonNull(configJson, "argument 'configJson' is null");
        String source = SafeTensors.fileName(configJson);
        String text;
        try {
            text = Files.readString(configJson);
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException(source + ": not valid UTF-8", e);
        }
        return parse(text, source);
    }

    /** Parses and validates {@code json}; messages start with {@code source} (e.g. "config.json"). */
    public static ModelConfig parse(String json, String source) {
        Objects.requireNonNull(json, "argument 'json' is null");
        String src = source == null ? "config.json" : source;
        Object parsed;
        try {
            parsed = Json.parse(json);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(src + ": not valid JSON (" + e.getMessage() + ")", e);
        }
        if (!(parsed instanceof Map<?, ?> root)) throw new IllegalArgumentException(src + ": not a JSON object");
        Keys k = new Keys(src, "", root);

        String act = k.string("hidden_act", "silu");
        if (!act.equals("silu"))
            throw k.error("'hidden_act' = \"" + act + "\" is not supported: the expert kernels compute silu");

        int experts = k.intOrNull("n_routed_experts", 0);
        boolean moe = experts > 0;
        Yarn yarn = yarn(k);
        boolean fp8 = quantization(k);
        List<Integer> eos = k.eos();
        try {
            return new ModelConfig(
                    k.reqInt("vocab_size"), k.reqInt("hidden_size"), k.reqInt("intermediate_size"),
                    moe ? k.reqInt("moe_intermediate_size") : k.intOrNull("moe_intermediate_size", 0),
                    k.reqInt("num_hidden_layers"), k.reqInt("num_attention_heads"),
                    k.reqIntOrNull("q_lora_rank", 0), k.reqInt("kv_lora_rank"), k.reqInt("qk_nope_head_dim"),
                    k.reqInt("qk_rope_head_dim"), k.reqInt("v_head_dim"), experts,
                    k.intOrNull("n_shared_experts", 0),
                    moe ? k.reqInt("num_experts_per_tok") : k.intOrNull("num_experts_per_tok", 0),
                    k.intOrNull("n_group", 1), k.intOrNull("topk_group", 1),
                    k.string("scoring_func", "softmax"), k.string("topk_method", "greedy"),
                    k.bool("norm_topk_prob", false), k.dbl("routed_scaling_factor", 1.0),
                    k.intOrNull("first_k_dense_replace", 0), k.intOrNull("moe_layer_freq", 1),
                    k.dbl("rms_norm_eps", 1e-6), k.dbl("rope_theta", 10000), k.reqInt("max_position_embeddings"),
                    yarn, fp8, k.intOrNull("num_nextn_predict_layers", 0), k.bool("tie_word_embeddings", false),
                    k.intOrNull("bos_token_id", -1), eos.isEmpty() ? -1 : eos.get(0), eos);
        } catch (IllegalArgumentException e) {
            if (e.getMessage() != null && e.getMessage().startsWith(src + ": ")) throw e;
            throw new IllegalArgumentException(src + ": " + e.getMessage(), e);
        }
    }

    private static Yarn yarn(Keys root) {
        Object v = root.map.get("rope_scaling");
        if (v == null) return null;
        if (!(v instanceof Map<?, ?> m)) throw root.type("rope_scaling", "an object or null", v);
        Keys k = new Keys(root.source, "rope_scaling.", m);
        boolean any = false;
        for (String key : List.of("type", "rope_type")) {
            if (!m.containsKey(key)) continue;
            any = true;
            String t = k.string(key, null);
            if (!"yarn".equals(t))
                throw k.error("'rope_scaling." + key + "' = " + Json.write(t)
                        + " is not supported: the RoPE kernels compute \"yarn\"");
        }
        if (!any) throw k.error("'rope_scaling.type' is missing (expected \"yarn\")");
        try {
            return new Yarn(k.reqDbl("factor"), k.intOrNull("original_max_position_embeddings", 4096),
                    k.dbl("beta_fast", 32), k.dbl("beta_slow", 1), k.dbl("mscale", 1), k.dbl("mscale_all_dim", 0));
        } catch (IllegalArgumentException e) {
            if (e.getMessage() != null && e.getMessage().startsWith(root.source + ": ")) throw e;
            throw k.error(e.getMessage());
        }
    }

    private static boolean quantization(Keys root) {
        Object v = root.map.get("quantization_config");
        if (v == null) return false;
        if (!(v instanceof Map<?, ?> m)) throw root.type("quantization_config", "an object or null", v);
        Keys k = new Keys(root.source, "quantization_config.", m);
        String method = k.string("quant_method", null);
        if (method == null) throw k.error("'quantization_config.quant_method' is missing");
        if (!method.equals("fp8"))
            throw k.error("'quantization_config.quant_method' = \"" + method
                    + "\" is not supported: the kernels read \"fp8\" (e4m3, 128x128 blocks) or unquantized weights");
        String fmt = k.string("fmt", "e4m3");
        if (!fmt.equals("e4m3"))
            throw k.error("'quantization_config.fmt' = \"" + fmt + "\" is not supported: the fp8 weights must be e4m3");
        String scheme = k.string("activation_scheme", "dynamic");
        if (!scheme.equals("dynamic"))
            throw k.error("'quantization_config.activation_scheme' = \"" + scheme
                    + "\" is not supported: activations are quantized dynamically (per 128-wide group)");
        Object block = m.containsKey("weight_block_size") ? m.get("weight_block_size") : List.of(128L, 128L);
        if (!(block instanceof List<?> l) || l.size() != 2 || !Long.valueOf(128).equals(l.get(0))
                || !Long.valueOf(128).equals(l.get(1)))
            throw k.error("'quantization_config.weight_block_size' = " + Json.write(block)
                    + " is not supported: the fp8 kernels need [128, 128]");
        return true;
    }

    /** Typed access to the keys of one JSON object, with messages "source: 'prefix.key' ...". */
    private record Keys(String source, String prefix, Map<?, ?> map) {
        IllegalArgumentException error(String what) {
            return new IllegalArgumentException(source + ": " + what);
        }

        IllegalArgumentException type(String key, String expected, Object got) {
            return error("'" + prefix + key + "' must be " + expected + ", got " + Json.write(got));
        }

        IllegalArgumentException missing(String key) {
            return error("required key '" + prefix + key + "' is missing");
        }

        int reqInt(String key) {
            if (!map.containsKey(key)) throw missing(key);
            Object v = map.get(key);
            if (v == null) throw type(key, "an integer", null);
            return toInt(key, v);
        }

        /** Required key that may be null (then {@code ifNull}). */
        int reqIntOrNull(String key, int ifNull) {
            if (!map.containsKey(key)) throw missing(key);
            return intOrNull(key, ifNull);
        }

        /** Optional key: absent or null gives {@code otherwise}. */
        int intOrNull(String key, int otherwise) {
            Object v = map.get(key);
            return v == null ? otherwise : toInt(key, v);
        }

        private int toInt(String key, Object v) {
            if (v instanceof Long l && l >= Integer.MIN_VALUE && l <= Integer.MAX_VALUE) return (int) (long) l;
            if (v instanceof Long) throw error("'" + prefix + key + "' = " + v + " is out of the int range");
            throw type(key, "an integer", v);
        }

        double reqDbl(String key) {
            if (!map.containsKey(key)) throw missing(key);
            Object v = map.get(key);
            if (v == null) throw type(key, "a number", null);
            return dbl(key, 0);
        }

        double dbl(String key, double otherwise) {
            Object v = map.get(key);
            if (v == null) return otherwise;
            if (v instanceof Long l) return l;
            if (v instanceof Double d) return d;
            throw type(key, "a number", v);
        }

        String string(String key, String otherwise) {
            Object v = map.get(key);
            if (v == null) return otherwise;
            if (v instanceof String s) return s;
            throw type(key, "a string", v);
        }

        boolean bool(String key, boolean otherwise) {
            Object v = map.get(key);
            if (v == null) return otherwise;
            if (v instanceof Boolean b) return b;
            throw type(key, "true or false", v);
        }

        List<Integer> eos() {
            Object v = map.get("eos_token_id");
            if (v == null) return List.of();
            if (v instanceof List<?> l) {
                List<Integer> out = new ArrayList<>();
                for (Object o : l) {
                    if (!(o instanceof Long)) throw type("eos_token_id", "an integer or a list of integers", v);
                    out.add(toInt("eos_token_id", o));
                }
                return out;
            }
            return List.of(toInt("eos_token_id", v));
        }
    }

    // ------------------------------------------------------------------ writing

    /**
     * This configuration as {@code config.json} text with Hugging Face key names ({@code model_type}
     * "deepseek_v3" for "noaux_tc" routing, else "deepseek_v2"); {@link #parse} of it gives back an
     * equal record.
     */
    public String toJson() {
        boolean v3 = topkMethod.equals("noaux_tc");
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("architectures", List.of(v3 ? "DeepseekV3ForCausalLM" : "DeepseekV2ForCausalLM"));
        m.put("model_type", v3 ? "deepseek_v3" : "deepseek_v2");
        m.put("vocab_size", vocabSize);
        m.put("hidden_size", hiddenSize);
        m.put("intermediate_size", intermediateSize);
        m.put("moe_intermediate_size", moeIntermediateSize);
        m.put("num_hidden_layers", numHiddenLayers);
        m.put("num_attention_heads", numAttentionHeads);
        m.put("num_key_value_heads", numAttentionHeads);
        m.put("q_lora_rank", qLoraRank == 0 ? null : qLoraRank);
        m.put("kv_lora_rank", kvLoraRank);
        m.put("qk_nope_head_dim", qkNopeHeadDim);
        m.put("qk_rope_head_dim", qkRopeHeadDim);
        m.put("v_head_dim", vHeadDim);
        m.put("n_routed_experts", nRoutedExperts == 0 ? null : nRoutedExperts);
        m.put("n_shared_experts", nSharedExperts);
        m.put("num_experts_per_tok", numExpertsPerTok);
        m.put("n_group", nGroup);
        m.put("topk_group", topkGroup);
        m.put("scoring_func", scoringFunc);
        m.put("topk_method", topkMethod);
        m.put("norm_topk_prob", normTopkProb);
        m.put("routed_scaling_factor", routedScalingFactor);
        m.put("first_k_dense_replace", firstKDenseReplace);
        m.put("moe_layer_freq", moeLayerFreq);
        m.put("hidden_act", "silu");
        m.put("rms_norm_eps", rmsNormEps);
        m.put("rope_theta", ropeTheta);
        m.put("max_position_embeddings", maxPositionEmbeddings);
        if (ropeScaling == null) m.put("rope_scaling", null);
        else {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("type", "yarn");
            r.put("factor", ropeScaling.factor());
            r.put("original_max_position_embeddings", ropeScaling.originalMaxPositionEmbeddings());
            r.put("beta_fast", ropeScaling.betaFast());
            r.put("beta_slow", ropeScaling.betaSlow());
            r.put("mscale", ropeScaling.mscale());
            r.put("mscale_all_dim", ropeScaling.mscaleAllDim());
            m.put("rope_scaling", r);
        }
        if (fp8) {
            Map<String, Object> q = new LinkedHashMap<>();
            q.put("quant_method", "fp8");
            q.put("fmt", "e4m3");
            q.put("activation_scheme", "dynamic");
            q.put("weight_block_size", List.of(128, 128));
            m.put("quantization_config", q);
        }
        m.put("num_nextn_predict_layers", numNextnPredictLayers);
        m.put("tie_word_embeddings", tieWordEmbeddings);
        m.put("bos_token_id", bosTokenId < 0 ? null : bosTokenId);
        m.put("eos_token_id", eosTokenIds.size() > 1 ? eosTokenIds : eosTokenIds.isEmpty() ? null : eosTokenIds.get(0));
        return Json.write(m);
    }
}
