package dev.dsk4j.benchmarks;

import dev.dsk4j.DType;
import dev.dsk4j.Fp8;
import dev.dsk4j.model.SafeTensorsWriter;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A one-layer checkpoint with DeepSeek-V3's real layer shapes (hidden 7168, 128 heads, q_lora 1536,
 * kv_lora 512, moe_intermediate 2048, 1 shared expert, top-8 of 8 groups keep 4, FP8 128x128
 * block-scaled weights, YaRN) for benchmarks, scaled down where 2 cores and 24 GB demand it:
 * {@value #EXPERTS} routed experts instead of 256 (11 GB of experts would not fit next to the other
 * tenants) and a vocabulary of {@value #VOCAB} instead of 129280 (the 1.85 GB LM head is not part of
 * a layer). Weights are random e4m3 codes of moderate size with scales around 2^-9: the values are
 * meaningless, the work is V3's. Written once (a marker file records the format version).
 */
public final class V3LayerCheckpoint {
    private V3LayerCheckpoint() {}

    static final int HIDDEN = 7168, HEADS = 128, Q_LORA = 1536, KV_LORA = 512, ROPE = 64, NOPE = 128, V = 128;
    static final int MOE_INTER = 2048, EXPERTS = 32, VOCAB = 1024;
    static final String VERSION = "v3layer-1";

    static String config() {
        return """
                {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
                 "vocab_size": %d, "hidden_size": %d, "intermediate_size": 18432, "moe_intermediate_size": %d,
                 "num_hidden_layers": 1, "num_attention_heads": %d, "num_key_value_heads": %d,
                 "q_lora_rank": %d, "kv_lora_rank": %d, "qk_nope_head_dim": %d, "qk_rope_head_dim": %d, "v_head_dim": %d,
                 "n_routed_experts": %d, "n_shared_experts": 1, "num_experts_per_tok": 8, "n_group": 8, "topk_group": 4,
                 "scoring_func": "sigmoid", "topk_method": "noaux_tc", "norm_topk_prob": true, "routed_scaling_factor": 2.5,
                 "first_k_dense_replace": 0, "moe_layer_freq": 1, "hidden_act": "silu", "rms_norm_eps": 1e-6,
                 "rope_theta": 10000, "max_position_embeddings": 163840,
                 "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                                  "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
                 "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                         "weight_block_size": [128, 128]},
                 "num_nextn_predict_layers": 0, "tie_word_embeddings": false, "bos_token_id": 0, "eos_token_id": 1}
                """.formatted(VOCAB, HIDDEN, MOE_INTER, HEADS, HEADS, Q_LORA, KV_LORA, NOPE, ROPE, V, EXPERTS);
    }

    /** Writes the checkpoint into {@code dir} unless it is already there. */
    public static void write(Path dir) throws IOException {
        Path marker = dir.resolve("dsk4j-bench-version");
        if (Files.isRegularFile(marker) && Files.readString(marker).equals(VERSION)) return;
        Files.createDirectories(dir);
        try (Arena a = Arena.ofShared()) {
            List<SafeTensorsWriter.Entry> t = new ArrayList<>();
            long[] seed = {1};
            t.add(bf16(a, "model.embed_tokens.weight", 0.02f, seed, VOCAB, HIDDEN));
            String p = "model.layers.0.";
            t.add(bf16(a, p + "input_layernorm.weight", 0, seed, HIDDEN));
            t.add(bf16(a, p + "post_attention_layernorm.weight", 0, seed, HIDDEN));
            fp8(a, t, p + "self_attn.q_a_proj.weight", seed, Q_LORA, HIDDEN);
            t.add(bf16(a, p + "self_attn.q_a_layernorm.weight", 0, seed, Q_LORA));
            fp8(a, t, p + "self_attn.q_b_proj.weight", seed, (long) HEADS * (NOPE + ROPE), Q_LORA);
            fp8(a, t, p + "self_attn.kv_a_proj_with_mqa.weight", seed, KV_LORA + ROPE, HIDDEN);
            t.add(bf16(a, p + "self_attn.kv_a_layernorm.weight", 0, seed, KV_LORA));
            fp8(a, t, p + "self_attn.kv_b_proj.weight", seed, (long) HEADS * (NOPE + V), KV_LORA);
            fp8(a, t, p + "self_attn.o_proj.weight", seed, HIDDEN, (long) HEADS * V);
            t.add(bf16(a, p + "mlp.gate.weight", 0.02f, seed, EXPERTS, HIDDEN));
            MemorySegment bias = a.allocate(4L * EXPERTS);
            t.add(new SafeTensorsWriter.Entry(p + "mlp.gate.e_score_correction_bias", DType.F32, new long[] {EXPERTS}, bias));
            for (int e = 0; e < EXPERTS; e++) {
                String q = p + "mlp.experts." + e + ".";
                fp8(a, t, q + "gate_proj.weight", seed, MOE_INTER, HIDDEN);
                fp8(a, t, q + "up_proj.weight", seed, MOE_INTER, HIDDEN);
                fp8(a, t, q + "down_proj.weight", seed, HIDDEN, MOE_INTER);
            }
            fp8(a, t, p + "mlp.shared_experts.gate_proj.weight", seed, MOE_INTER, HIDDEN);
            fp8(a, t, p + "mlp.shared_experts.up_proj.weight", seed, MOE_INTER, HIDDEN);
            fp8(a, t, p + "mlp.shared_experts.down_proj.weight", seed, HIDDEN, MOE_INTER);
            t.add(bf16(a, "model.norm.weight", 0, seed, HIDDEN));
            t.add(bf16(a, "lm_head.weight", 0.02f, seed, VOCAB, HIDDEN));
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), Map.of("format", "pt"), t);
        }
        Files.writeString(dir.resolve("config.json"), config());
        Files.writeString(marker, VERSION);
    }

    /** bf16 values: 1 + noise when {@code sd} is 0 (norm weights), else gaussian-ish noise of std {@code sd}. */
    private static SafeTensorsWriter.Entry bf16(Arena a, String name, float sd, long[] seed, long... shape) {
        long n = 1;
        for (long s : shape) n *= s;
        MemorySegment m = a.allocate(2 * n);
        long x = ++seed[0] * 0x9E3779B97F4A7C15L;
        for (long i = 0; i < n; i++) {
            x ^= x << 13; x ^= x >>> 7; x ^= x << 17;
            float u = ((x >>> 40) / (float) (1 << 24)) - 0.5f; // uniform in [-0.5, 0.5)
            float v = sd == 0 ? 1 + 0.05f * u : sd * 3.46f * u;
            m.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2 * i, (short) (Float.floatToRawIntBits(v) >>> 16));
        }
        return new SafeTensorsWriter.Entry(name, DType.BF16, shape, m);
    }

    /** Random e4m3 codes with |x| in [2^-6, 2^2] (exponent field 1..9, any sign and mantissa), scales 2^-9. */
    private static void fp8(Arena a, List<SafeTensorsWriter.Entry> out, String name, long[] seed, long n, long k) {
        MemorySegment w = a.allocate(n * k);
        long x = ++seed[0] * 0x9E3779B97F4A7C15L;
        for (long i = 0; i < n * k; i++) {
            x ^= x << 13; x ^= x >>> 7; x ^= x << 17;
            int exp = 1 + (int) ((x >>> 33) % 9), man = (int) (x >>> 50) & 7, sign = (int) (x >>> 60) & 1;
            w.set(ValueLayout.JAVA_BYTE, i, (byte) (sign << 7 | exp << 3 | man));
        }
        long[] ss = Fp8.blockScaleShape(n, k);
        MemorySegment s = a.allocate(4 * ss[0] * ss[1]);
        for (long i = 0; i < ss[0] * ss[1]; i++) s.set(ValueLayout.JAVA_FLOAT_UNALIGNED, 4 * i, 0x1p-9f);
        out.add(new SafeTensorsWriter.Entry(name, DType.E4M3, new long[] {n, k}, w));
        out.add(new SafeTensorsWriter.Entry(name + "_scale_inv", DType.F32, ss, s));
    }
}
