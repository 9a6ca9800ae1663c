package dev.dsk4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.longs;

import dev.dsk4j.Moe;
import dev.dsk4j.Rope;
import dev.dsk4j.internal.Json;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelConfigTest {
    @TempDir
    Path dir;

    static Path resource(String name) {
        try {
            return Path.of(ModelConfigTest.class.getResource(name).toURI());
        } catch (URISyntaxException e) {
            throw new AssertionError(e);
        }
    }

    static ModelConfig v3() throws Exception { return ModelConfig.read(resource("deepseek-v3-config.json")); }

    @SuppressWarnings("unchecked")
    static Map<String, Object> v3Map() throws Exception {
        return (Map<String, Object>) Json.parse(Files.readString(resource("deepseek-v3-config.json")));
    }

    @Test
    void deepSeekV3() throws Exception {
        ModelConfig c = v3();
        assertEquals(129280, c.vocabSize());
        assertEquals(7168, c.hiddenSize());
        assertEquals(18432, c.intermediateSize());
        assertEquals(2048, c.moeIntermediateSize());
        assertEquals(61, c.numHiddenLayers());
        assertEquals(128, c.numAttentionHeads());
        assertEquals(1536, c.qLoraRank());
        assertEquals(512, c.kvLoraRank());
        assertEquals(128, c.qkNopeHeadDim());
        assertEquals(64, c.qkRopeHeadDim());
        assertEquals(128, c.vHeadDim());
        assertEquals(256, c.nRoutedExperts());
        assertEquals(1, c.nSharedExperts());
        assertEquals(8, c.numExpertsPerTok());
        assertEquals(8, c.nGroup());
        assertEquals(4, c.topkGroup());
        assertEquals("sigmoid", c.scoringFunc());
        assertEquals("noaux_tc", c.topkMethod());
        assertTrue(c.normTopkProb());
        assertEquals(2.5, c.routedScalingFactor());
        assertEquals(3, c.firstKDenseReplace());
        assertEquals(1, c.moeLayerFreq());
        assertEquals(1e-6, c.rmsNormEps());
        assertEquals(10000, c.ropeTheta());
        assertEquals(163840, c.maxPositionEmbeddings());
        assertEquals(new ModelConfig.Yarn(40, 4096, 32, 1, 1.0, 1.0), c.ropeScaling());
        assertTrue(c.fp8());
        assertEquals(1, c.numNextnPredictLayers());
        assertFalse(c.tieWordEmbeddings());
        assertEquals(0, c.bosTokenId());
        assertEquals(1, c.eosTokenId());
        assertEquals(List.of(1), c.eosTokenIds());

        assertEquals(0.1352338, c.softmaxScale(), 1e-6);
        assertEquals(Rope.mlaSoftmaxScale(128, 64, Rope.YarnConfig.deepSeekV3(), 1), c.softmaxScale(), 1e-12);
        assertEquals(new Rope.YarnConfig(64, 10000, 40, 4096, 163840, 32, 1), c.yarn());
        assertArrayEquals(new double[] {10, 23}, c.yarn().correctionRange());
        assertEquals(Moe.GateConfig.deepSeekV3(), c.gate());
        for (int layer = 0; layer <= 61; layer++) assertEquals(layer >= 3, c.isMoeLayer(layer), "layer " + layer);
    }

    @Test
    void deepSeekV2Lite() throws Exception {
        ModelConfig c = ModelConfig.read(resource("deepseek-v2-lite-config.json"));
        assertEquals(102400, c.vocabSize());
        assertEquals(2048, c.hiddenSize());
        assertEquals(10944, c.intermediateSize());
        assertEquals(1408, c.moeIntermediateSize());
        assertEquals(27, c.numHiddenLayers());
        assertEquals(16, c.numAttentionHeads());
        assertEquals(0, c.qLoraRank(), "q_lora_rank null");
        assertEquals(64, c.nRoutedExperts());
        assertEquals(2, c.nSharedExperts());
        assertEquals(6, c.numExpertsPerTok());
        assertEquals("softmax", c.scoringFunc());
        assertEquals("greedy", c.topkMethod());
        assertFalse(c.normTopkProb());
        assertEquals(1.0, c.routedScalingFactor());
        assertEquals(1, c.firstKDenseReplace());
        assertEquals(new ModelConfig.Yarn(40, 4096, 32, 1, 0.707, 0.707), c.ropeScaling());
        assertFalse(c.fp8());
        assertEquals(0, c.numNextnPredictLayers(), "absent: 0");
        assertEquals(100000, c.bosTokenId());
        assertEquals(100001, c.eosTokenId());
        assertEquals(Moe.GateConfig.deepSeekV2Lite(), c.gate());
        assertFalse(c.isMoeLayer(0));
        assertTrue(c.isMoeLayer(1) && c.isMoeLayer(26));
        double m = 0.1 * 0.707 * Math.log(40) + 1;
        assertEquals(Math.pow(192, -0.5) * m * m, c.softmaxScale(), 1e-12);
        assertEquals(Rope.mlaSoftmaxScale(128, 64, c.yarn(), 0.707), c.softmaxScale(), 1e-12);
    }

    @Test
    void deepSeekV2() throws Exception {
        ModelConfig c = ModelConfig.read(resource("deepseek-v2-config.json"));
        assertEquals(5120, c.hiddenSize());
        assertEquals(60, c.numHiddenLayers());
        assertEquals(128, c.numAttentionHeads());
        assertEquals(1536, c.qLoraRank());
        assertEquals(160, c.nRoutedExperts());
        assertEquals(1536, c.moeIntermediateSize());
        assertEquals("group_limited_greedy", c.topkMethod());
        assertEquals(16.0, c.routedScalingFactor());
        assertEquals(Moe.GateConfig.deepSeekV2(), c.gate());
    }

    @Test
    void toJsonRoundTripsThePublishedConfigs() throws Exception {
        for (String name : List.of("deepseek-v3-config.json", "deepseek-v2-config.json", "deepseek-v2-lite-config.json")) {
            ModelConfig c = ModelConfig.read(resource(name));
            assertEquals(c, ModelConfig.parse(c.toJson(), name), name);
        }
    }

    /** Random valid configurations: parse(toJson()) gives the same record. */
    @Test
    void toJsonRoundTripsRandomConfigs() {
        qt().withExamples(200).forAll(longs().all()).checkAssert(seed -> {
            Random r = new Random(seed);
            int nGroup = 1 << r.nextInt(4);
            int experts = r.nextInt(4) == 0 ? 0 : nGroup * (1 + r.nextInt(32));
            int topkGroup = 1 + r.nextInt(nGroup);
            int perTok = experts == 0 ? 0 : 1 + r.nextInt(topkGroup * (experts / nGroup));
            List<Integer> eos = new ArrayList<>();
            for (int k = r.nextInt(4); k > 0; k--) eos.add(r.nextInt(200000));
            double mscale = r.nextBoolean() ? 1.0 : r.nextDouble();
            ModelConfig c = new ModelConfig(1 + r.nextInt(200000), 1 + r.nextInt(8192), 1 + r.nextInt(20000),
                    experts == 0 ? r.nextInt(3) : 1 + r.nextInt(4096), 1 + r.nextInt(80), 1 + r.nextInt(128),
                    r.nextBoolean() ? 0 : 1 + r.nextInt(2048), 512, 128, 64, 128, experts, r.nextInt(3), perTok,
                    nGroup, topkGroup, r.nextBoolean() ? "sigmoid" : "softmax",
                    List.of("noaux_tc", "greedy", "group_limited_greedy").get(r.nextInt(3)), r.nextBoolean(),
                    0.01 + r.nextDouble() * 20, r.nextInt(5), 1 + r.nextInt(3), Math.pow(10, -1 - r.nextInt(8)) * r.nextDouble() + 1e-12,
                    1.5 + r.nextDouble() * 1e6, 1 + r.nextInt(1 << 20),
                    r.nextBoolean() ? null : new ModelConfig.Yarn(1 + r.nextDouble() * 100, 1 + r.nextInt(10000),
                            0.5 + r.nextDouble() * 50, 0.1 + r.nextDouble() * 2, mscale, mscale),
                    r.nextBoolean(), r.nextInt(3), r.nextBoolean(), r.nextInt(3) - 1, eos.isEmpty() ? -1 : eos.get(0), eos);
            assertEquals(c, ModelConfig.parse(c.toJson(), "random.json"));
        });
    }

    @Test
    void defaultsOfAbsentKeys() {
        String minimal = "{\"vocab_size\":100,\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,"
                + "\"num_attention_heads\":2,\"q_lora_rank\":null,\"kv_lora_rank\":512,\"qk_nope_head_dim\":128,"
                + "\"qk_rope_head_dim\":64,\"v_head_dim\":128,\"max_position_embeddings\":4096}";
        ModelConfig c = ModelConfig.parse(minimal, "config.json");
        assertEquals(0, c.nRoutedExperts());
        assertEquals(0, c.moeIntermediateSize());
        assertEquals(1e-6, c.rmsNormEps());
        assertEquals(10000, c.ropeTheta());
        assertEquals(1, c.moeLayerFreq());
        assertEquals(0, c.firstKDenseReplace());
        assertEquals(1, c.nGroup());
        assertEquals(1, c.topkGroup());
        assertFalse(c.normTopkProb());
        assertEquals("softmax", c.scoringFunc());
        assertEquals("greedy", c.topkMethod());
        assertEquals(1.0, c.routedScalingFactor());
        assertEquals(0, c.numNextnPredictLayers());
        assertNull(c.ropeScaling());
        assertFalse(c.fp8());
        assertEquals(-1, c.bosTokenId());
        assertEquals(-1, c.eosTokenId());
        assertEquals(List.of(), c.eosTokenIds());
        assertFalse(c.isMoeLayer(1), "dense model");
        assertThrows(IllegalStateException.class, c::gate);
        assertEquals(Math.pow(192, -0.5), c.softmaxScale(), 1e-15);
        assertEquals(new Rope.YarnConfig(64, 10000, 1, 4096, 4096, 32, 1), c.yarn());
        assertFalse(c.yarn().scaled());

        ModelConfig eos = ModelConfig.parse(minimal.replace("}", ",\"eos_token_id\":[7,9],\"bos_token_id\":3}"), "x");
        assertEquals(7, eos.eosTokenId());
        assertEquals(List.of(7, 9), eos.eosTokenIds());
        assertEquals(3, eos.bosTokenId());
        assertEquals(eos, ModelConfig.parse(eos.toJson(), "x"));

        ModelConfig rs = ModelConfig.parse(minimal.replace("}", ",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4,"
                + "\"mscale\":0.5,\"mscale_all_dim\":0.5}}"), "x");
        assertEquals(new ModelConfig.Yarn(4, 4096, 32, 1, 0.5, 0.5), rs.ropeScaling());
    }

    @Test
    void moeLayerFrequency() throws Exception {
        Map<String, Object> m = v3Map();
        m.put("moe_layer_freq", 2);
        m.put("first_k_dense_replace", 1);
        ModelConfig c = ModelConfig.parse(Json.write(m), "config.json");
        assertEquals(List.of(false, false, true, false, true), List.of(c.isMoeLayer(0), c.isMoeLayer(1), c.isMoeLayer(2),
                c.isMoeLayer(3), c.isMoeLayer(4)));
    }

    // ------------------------------------------------------------------ unsupported and malformed

    private static void rejects(Consumer<Map<String, Object>> edit, String expected) throws Exception {
        Map<String, Object> m = v3Map();
        edit.accept(m);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ModelConfig.parse(Json.write(m), "config.json"));
        assertTrue(e.getMessage().startsWith("config.json: "), e.getMessage());
        assertTrue(e.getMessage().contains(expected), "'" + expected + "' not in: " + e.getMessage());
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> sub(Map<String, Object> m, String key) {
        return (Map<String, Object>) m.get(key);
    }

    @Test
    void unsupportedValuesAreNamed() throws Exception {
        rejects(m -> m.put("kv_lora_rank", 256L), "'kv_lora_rank' = 256 is not supported: the MLA kernels need 512");
        rejects(m -> m.put("qk_rope_head_dim", 32L), "'qk_rope_head_dim' = 32 is not supported: the MLA kernels need 64");
        rejects(m -> m.put("qk_nope_head_dim", 64L), "'qk_nope_head_dim' = 64 is not supported: the MLA kernels need 128");
        rejects(m -> m.put("v_head_dim", 256L), "'v_head_dim' = 256 is not supported: the MLA kernels need 128");
        rejects(m -> m.put("hidden_act", "gelu"), "'hidden_act' = \"gelu\" is not supported");
        rejects(m -> sub(m, "rope_scaling").put("type", "linear"), "'rope_scaling.type' = \"linear\" is not supported");
        rejects(m -> { sub(m, "rope_scaling").remove("type"); sub(m, "rope_scaling").put("rope_type", "dynamic"); },
                "'rope_scaling.rope_type' = \"dynamic\" is not supported");
        rejects(m -> sub(m, "rope_scaling").remove("type"), "'rope_scaling.type' is missing");
        rejects(m -> sub(m, "rope_scaling").put("mscale_all_dim", 0.707),
                "'rope_scaling.mscale' = 1 differs from 'rope_scaling.mscale_all_dim' = 0.707: not supported, cos/sin would carry an mscale");
        rejects(m -> sub(m, "rope_scaling").remove("mscale_all_dim"), "differs from 'rope_scaling.mscale_all_dim' = 0");
        rejects(m -> sub(m, "rope_scaling").put("factor", 0.5), "'rope_scaling.factor' = 0.5 is not supported");
        rejects(m -> sub(m, "rope_scaling").remove("factor"), "required key 'rope_scaling.factor' is missing");
        rejects(m -> sub(m, "quantization_config").put("quant_method", "gptq"),
                "'quantization_config.quant_method' = \"gptq\" is not supported");
        rejects(m -> sub(m, "quantization_config").put("fmt", "e5m2"), "'quantization_config.fmt' = \"e5m2\" is not supported");
        rejects(m -> sub(m, "quantization_config").put("weight_block_size", List.of(64L, 64L)),
                "'quantization_config.weight_block_size' = [64,64] is not supported");
        rejects(m -> sub(m, "quantization_config").put("activation_scheme", "static"),
                "'quantization_config.activation_scheme' = \"static\" is not supported");
        rejects(m -> m.put("scoring_func", "tanh"), "'scoring_func' = \"tanh\" is not supported");
        rejects(m -> m.put("topk_method", "random"), "'topk_method' = \"random\" is not supported");
        rejects(m -> m.put("n_routed_experts", 250L), "'n_routed_experts' = 250 is not divisible by 'n_group' = 8");
        rejects(m -> m.put("num_experts_per_tok", 129L),
                "'num_experts_per_tok' = 129 is larger than 'topk_group' * 'n_routed_experts' / 'n_group' = 128");
        rejects(m -> m.put("topk_group", 9L), "'topk_group' = 9 is larger than 'n_group' = 8");
    }

    @Test
    void missingKeysWrongTypesAndNonPositiveSizes() throws Exception {
        rejects(m -> m.remove("hidden_size"), "required key 'hidden_size' is missing");
        rejects(m -> m.remove("q_lora_rank"), "required key 'q_lora_rank' is missing");
        rejects(m -> m.remove("kv_lora_rank"), "required key 'kv_lora_rank' is missing");
        rejects(m -> m.remove("num_experts_per_tok"), "required key 'num_experts_per_tok' is missing");
        rejects(m -> m.put("hidden_size", "7168"), "'hidden_size' must be an integer, got \"7168\"");
        rejects(m -> m.put("hidden_size", 7168.5), "'hidden_size' must be an integer, got 7168.5");
        rejects(m -> m.put("hidden_size", null), "'hidden_size' must be an integer, got null");
        rejects(m -> m.put("vocab_size", 1L << 40), "'vocab_size' = 1099511627776 is out of the int range");
        rejects(m -> m.put("norm_topk_prob", "true"), "'norm_topk_prob' must be true or false, got \"true\"");
        rejects(m -> m.put("rms_norm_eps", "1e-6"), "'rms_norm_eps' must be a number");
        rejects(m -> m.put("rope_scaling", 5L), "'rope_scaling' must be an object or null, got 5");
        rejects(m -> m.put("quantization_config", List.of()), "'quantization_config' must be an object or null");
        rejects(m -> m.put("scoring_func", 1L), "'scoring_func' must be a string, got 1");
        rejects(m -> m.put("eos_token_id", List.of("a")), "'eos_token_id' must be an integer or a list of integers");
        rejects(m -> m.put("hidden_size", 0L), "'hidden_size' = 0 must be positive");
        rejects(m -> m.put("num_hidden_layers", -1L), "'num_hidden_layers' = -1 must be positive");
        rejects(m -> m.put("moe_intermediate_size", 0L), "'moe_intermediate_size' = 0 must be positive");
        rejects(m -> m.put("moe_layer_freq", 0L), "'moe_layer_freq' = 0 must be positive");
        rejects(m -> m.put("rms_norm_eps", 0L), "'rms_norm_eps' = 0 must be positive");
        rejects(m -> m.put("routed_scaling_factor", -2.5), "'routed_scaling_factor' = -2.5 must be positive");
        rejects(m -> m.put("n_group", 0L), "'n_group' = 0 must be positive");
        rejects(m -> m.put("q_lora_rank", -1L), "'q_lora_rank' = -1 must be positive or null");

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelConfig.parse("{\"a\":", "config.json"));
        assertTrue(e.getMessage().startsWith("config.json: not valid JSON"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ModelConfig.parse("[]", "config.json"));
        assertEquals("config.json: not a JSON object", e.getMessage());
        Path file = Files.writeString(dir.resolve("config.json"), "{}");
        e = assertThrows(IllegalArgumentException.class, () -> ModelConfig.read(file));
        assertTrue(e.getMessage().startsWith("config.json: required key"), e.getMessage());
    }

    @Test
    void yarnWithoutScalingCarriesNoMscaleCheck() {
        // factor 1: mscale and mscale_all_dim are irrelevant (Hugging Face's yarn_get_mscale is 1 for factor <= 1)
        ModelConfig.Yarn y = new ModelConfig.Yarn(1, 4096, 32, 1, 1, 0);
        assertEquals(1, y.attentionMscale());
        assertThrows(IllegalArgumentException.class, () -> new ModelConfig.Yarn(1.5, 4096, 32, 1, 1, 0));
    }
}
