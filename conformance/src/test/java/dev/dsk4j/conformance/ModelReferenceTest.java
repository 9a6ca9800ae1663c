package dev.dsk4j.conformance;

import dev.dsk4j.internal.Json;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The demo checkpoint and the reference forward: determinism, causality, fp8 vs dequant, the synthetic model's
 * σ pattern (next token and MTP), attention for one token against a direct computation, and the family's variants
 * (no q compression, BF16 weights, V2-style softmax routing without rope scaling).
 */
class ModelReferenceTest {
    @TempDir static Path shared;
    static Path demo;
    static ModelReference ref;
    static int[] sigma;
    static final long SEED = System.nanoTime();

    @BeforeAll
    static void writeDemo() throws Exception {
        System.out.println("ModelReferenceTest seed " + SEED);
        demo = shared.resolve("demo");
        DemoCheckpoint.write(demo);
        ref = ModelReference.load(demo);
        sigma = DemoCheckpoint.sigma(DemoCheckpoint.Spec.demo());
    }

    static int[][] randomIds(SplittableRandom r, int batch, int seq, int vocab) {
        int[][] ids = new int[batch][seq];
        for (int[] row : ids) for (int i = 0; i < seq; i++) row[i] = r.nextInt(vocab);
        return ids;
    }

    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    static void assertFinite(float[][][] t, String what) {
        for (float[][] a : t) for (float[] b : a) for (float v : b) assertTrue(Float.isFinite(v), what + " has " + v);
    }

    @Test
    void theDemoCheckpointIsDeterministicAndComplete() throws Exception {
        Path a = shared.resolve("a"), b = shared.resolve("b");
        DemoCheckpoint.write(a);
        DemoCheckpoint.write(b);
        List<String> names;
        try (Stream<Path> s = Files.list(a)) {
            names = s.map(p -> p.getFileName().toString()).sorted().toList();
        }
        assertEquals(List.of("config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                "model.safetensors.index.json", "tokenizer.json"), names);
        for (String n : names) assertEquals(-1, Files.mismatch(a.resolve(n), b.resolve(n)), n + " differs between two writes");
        for (String n : names) assertEquals(-1, Files.mismatch(a.resolve(n), demo.resolve(n)), n + " differs from the first write");
        // a damaged file is restored by the next write, the others are left alone
        Path f2 = a.resolve("model-00002-of-00002.safetensors");
        long before = Files.getLastModifiedTime(a.resolve("config.json")).toMillis();
        Files.write(f2, new byte[] {1, 2, 3});
        DemoCheckpoint.write(a);
        assertEquals(-1, Files.mismatch(f2, b.resolve("model-00002-of-00002.safetensors")));
        assertEquals(before, Files.getLastModifiedTime(a.resolve("config.json")).toMillis());
        try (Stream<Path> s = Files.list(shared)) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().contains(".tmp-")), "a temporary folder was left behind");
        }

        // index: every tensor mapped to a file, total_size = the sum of the tensors' bytes
        Map<?, ?> index = (Map<?, ?>) Json.parse(Files.readString(a.resolve("model.safetensors.index.json")));
        Map<?, ?> wm = (Map<?, ?>) index.get("weight_map");
        long total = 0;
        for (String f : List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"))
            for (Map.Entry<String, SafeTensors.Entry> e : SafeTensors.read(a.resolve(f)).tensors().entrySet()) {
                assertEquals(f, wm.get(e.getKey()), e.getKey());
                total += e.getValue().data().length;
            }
        assertEquals(total, ((Map<?, ?>) index.get("metadata")).get("total_size"));
        assertEquals(wm.size(), ref.tensorNames().size());

        ModelReference.Config c = ref.config();
        assertEquals(1024, c.vocabSize());
        assertEquals(3, c.numHiddenLayers());
        assertEquals(new dev.dsk4j.Moe.GateConfig(16, 4, 4, 2, dev.dsk4j.Moe.ScoreFunction.SIGMOID, true, 2.5f), c.gate());
        double mscale = 0.1 * Math.log(4) + 1;
        assertEquals(mscale * mscale / Math.sqrt(192), c.softmaxScale(), 1e-15);
        assertEquals("F8_E4M3", ref.tensor("model.layers.1.mlp.experts.15.down_proj.weight").dtype());
        assertArrayEquals(new long[] {2, 1}, ref.tensor("model.layers.1.mlp.experts.15.down_proj.weight_scale_inv").shape());
        assertArrayEquals(new long[] {8, 4}, ref.tensor("model.layers.3.self_attn.kv_b_proj.weight_scale_inv").shape());
        assertArrayEquals(new long[] {256, 512}, ref.tensor("model.layers.3.eh_proj.weight").shape());
        assertEquals("BF16", ref.tensor("model.layers.3.shared_head.head.weight").dtype());
        assertEquals("F32", ref.tensor("model.layers.2.mlp.gate.e_score_correction_bias").dtype());
        assertTrue(ref.tensorNames().contains("model.layers.0.mlp.down_proj.weight"));
        assertFalse(ref.tensorNames().contains("model.layers.0.mlp.gate.weight"));
        assertTrue(Arrays.equals(ref.tensor("lm_head.weight").data(), ref.tensor("model.layers.3.shared_head.head.weight").data()));
    }

    @Test
    void logitsAreFiniteCausalAndPerSequence() {
        SplittableRandom r = new SplittableRandom(SEED);
        int[][] ids = randomIds(r, 2, 11, 1024);
        for (String gemm : List.of("dequant", "fp8")) {
            float[][][] full = ref.logits(ids, gemm);
            assertFinite(full, gemm + " logits");
            assertEquals(2, full.length);
            assertEquals(11, full[0].length);
            assertEquals(1024, full[0][0].length);
            int cut = 1 + r.nextInt(10);
            float[][][] prefix = ref.logits(new int[][] {Arrays.copyOf(ids[1], cut)}, gemm);
            for (int i = 0; i < cut; i++) assertArrayEquals(full[1][i], prefix[0][i], gemm + " position " + i + " of a prefix of " + cut);
            float[][][] alone = ref.logits(new int[][] {ids[0]}, gemm);
            for (int i = 0; i < 11; i++) assertArrayEquals(full[0][i], alone[0][i], gemm + " sequence 0 alone, position " + i);
            // a later token changes only later positions
            int[][] changed = {ids[1].clone()};
            changed[0][cut - 1] = (changed[0][cut - 1] + 1) % 1024;
            float[][][] other = ref.logits(changed, gemm);
            for (int i = 0; i < cut - 1; i++) assertArrayEquals(full[1][i], other[0][i]);
            assertFalse(Arrays.equals(full[1][cut - 1], other[0][cut - 1]));
        }
    }

    @Test
    void fp8IsCloseToDequant() {
        int[][] ids = randomIds(new SplittableRandom(SEED + 1), 1, 12, 1024);
        float[] d = flat(ref.logits(ids, "dequant")), f = flat(ref.logits(ids, "fp8"));
        double num = 0, den = 0;
        for (int i = 0; i < d.length; i++) {
            num += (double) (d[i] - f[i]) * (d[i] - f[i]);
            den += (double) d[i] * d[i];
        }
        double rel = Math.sqrt(num / den);
        System.out.printf("ModelReferenceTest: fp8 vs dequant logits, relative Frobenius error %.4g%n", rel);
        assertTrue(rel > 0, "fp8 and dequant logits are identical: the fp8 path is not taken");
        assertTrue(rel < 0.1, "fp8 vs dequant relative error " + rel);
    }

    static float[] flat(float[][][] t) {
        return Arrays.stream(t).flatMap(Arrays::stream).reduce(new float[0], (a, b) -> {
            float[] c = Arrays.copyOf(a, a.length + b.length);
            System.arraycopy(b, 0, c, a.length, b.length);
            return c;
        });
    }

    @Test
    void theNextTokenAndTheMtpFollowSigma() {
        SplittableRandom r = new SplittableRandom(SEED + 2);
        int[][] ids = randomIds(r, 2, 16, 1024);
        float[][][] logits = ref.logits(ids, "dequant"), mtp = ref.mtpLogits(ids, "dequant");
        assertFinite(mtp, "mtp logits");
        assertEquals(15, mtp[0].length);
        int next = 0, ahead = 0, n = 0, m = 0;
        for (int b = 0; b < 2; b++) {
            for (int i = 0; i < 16; i++, n++) if (argmax(logits[b][i]) == sigma[ids[b][i]]) next++;
            for (int i = 0; i < 15; i++, m++) if (argmax(mtp[b][i]) == sigma[ids[b][i + 1]]) ahead++;
        }
        // greedy decoding from a random token
        int[] seq = {r.nextInt(1024)};
        int walks = 0, steps = 8;
        for (int s = 0; s < steps; s++) {
            float[][] l = ref.logits(new int[][] {seq}, "fp8")[0];
            int t = argmax(l[seq.length - 1]);
            if (t == sigma[seq[seq.length - 1]]) walks++;
            seq = Arrays.copyOf(seq, seq.length + 1);
            seq[seq.length - 1] = t;
        }
        System.out.printf("ModelReferenceTest: argmax = σ(token) at %d of %d positions; MTP argmax = σ(next token) at %d of %d;"
                + " greedy (fp8) steps t -> σ(t): %d of %d%n", next, n, ahead, m, walks, steps);
        assertTrue(next >= 0.8 * n, next + " of " + n);
        assertTrue(ahead >= 0.8 * m, ahead + " of " + m);
        assertTrue(walks >= 0.8 * steps, walks + " of " + steps);
    }

    @Test
    void attentionOfOneTokenIsItsValue() {
        SplittableRandom r = new SplittableRandom(SEED + 3);
        float[][] x = new float[1][256];
        for (int i = 0; i < 256; i++) x[0][i] = (float) Values.gaussian(r);
        for (boolean fp8 : new boolean[] {false, true}) {
            int layer = r.nextInt(4);
            String p = "model.layers." + layer + ".self_attn.";
            float[][] kv = ref.linear(p + "kv_a_proj_with_mqa.weight", x, fp8);
            float[][] c = ref.rmsnorm(new float[][] {Arrays.copyOf(kv[0], 512)}, ref.values(p + "kv_a_layernorm.weight"));
            float[][] kvb = ref.linear(p + "kv_b_proj.weight", c, fp8);
            float[][] o = new float[1][4 * 128];
            for (int h = 0; h < 4; h++) System.arraycopy(kvb[0], h * 256 + 128, o[0], h * 128, 128);
            float[][] expected = ref.linear(p + "o_proj.weight", o, fp8);
            assertArrayEquals(expected[0], ref.attention(layer, x, fp8)[0], "layer " + layer + (fp8 ? " fp8" : " dequant"));
        }
    }

    @Test
    void theRoutingVariesFromTokenToToken() {
        int[][] ids = randomIds(new SplittableRandom(SEED + 6), 1, 16, 1024);
        float[][] h = ref.hiddenStates(ids[0], false);
        for (int layer = 1; layer <= 3; layer++) {
            int[] idx = new int[16 * 4];
            float[] w = new float[16 * 4];
            ref.route("model.layers." + layer + ".mlp.", ref.rmsnorm(h, ref.values("model.layers." + layer + ".post_attention_layernorm.weight")), idx, w);
            java.util.Set<String> sets = new java.util.HashSet<>();
            int[] used = new int[16];
            for (int i = 0; i < 16; i++) {
                int[] e = Arrays.copyOfRange(idx, i * 4, i * 4 + 4);
                Arrays.sort(e);
                sets.add(Arrays.toString(e));
                double sum = 0;
                for (int q = 0; q < 4; q++) {
                    used[idx[i * 4 + q]]++;
                    sum += w[i * 4 + q];
                }
                assertEquals(2.5, sum, 1e-5, "weights are renormalized and scaled by 2.5");
            }
            long experts = Arrays.stream(used).filter(c -> c > 0).count();
            System.out.println("ModelReferenceTest: layer " + layer + " routes 16 tokens to " + sets.size()
                    + " different expert sets, " + experts + " of 16 experts used");
            assertTrue(sets.size() >= 4, "layer " + layer + ": only " + sets.size() + " different expert sets");
        }
    }

    @Test
    void linearFollowsTheContract() {
        // dequant: W_eff = bf16(e4m3 · scale_inv), double sum; fp8: act_quant then the fp8 block gemm reference
        SplittableRandom r = new SplittableRandom(SEED + 4);
        String name = "model.layers.1.mlp.experts." + r.nextInt(16) + ".down_proj.weight"; // [256, 128]
        SafeTensors.Entry w = ref.tensor(name);
        float[] s = ref.tensor(name + "_scale_inv").floats();
        float[][] x = new float[2][128];
        for (float[] row : x) for (int i = 0; i < 128; i++) row[i] = (float) Values.gaussian(r);
        int n = 1 + 128 + r.nextInt(127);
        double acc = 0;
        for (int k = 0; k < 128; k++) {
            float we = Fp8Reference.bf16ToFloat(Fp8Reference.floatToBf16(Fp8Reference.e4m3ToFloat(w.data()[n * 128 + k]) * s[1]));
            acc += (double) x[1][k] * we;
        }
        assertEquals((float) acc, ref.linear(name, x, false)[1][n]);
        byte[] q = new byte[128];
        float[] qs = new float[1];
        Fp8Reference.actQuant(x[1], 1, 128, false, q, qs);
        double d = 0;
        for (int k = 0; k < 128; k++) d += (double) Fp8Reference.e4m3ToFloat(q[k]) * Fp8Reference.e4m3ToFloat(w.data()[n * 128 + k]);
        assertEquals((float) (d * ((double) qs[0] * s[1])), ref.linear(name, x, true)[1][n]);
    }

    @Test
    void theFamilysVariantsRun() throws Exception {
        // no q compression (q_proj), fp8 weights, one file, an MTP layer without its own embedding
        DemoCheckpoint.Spec noQLora = new DemoCheckpoint.Spec(96, 128, 256, 128, 2, 2, 0, 128, 64, 32, 128, 8, 1, 2, 2, 1,
                "sigmoid", "noaux_tc", true, 2.5, 1, true, true, true, false, SEED);
        // V2-style: BF16 weights (no scales), softmax routing with plain top-k and no bias, no rope scaling, two files
        DemoCheckpoint.Spec bf16 = new DemoCheckpoint.Spec(80, 64, 96, 32, 3, 3, 48, 64, 32, 16, 48, 6, 2, 2, 1, 1,
                "softmax", "greedy", false, 1.0, 1, false, false, false, true, SEED + 1);
        SplittableRandom r = new SplittableRandom(SEED + 5);
        for (DemoCheckpoint.Spec spec : List.of(noQLora, bf16)) {
            Path dir = shared.resolve("variant-" + spec.vocab());
            DemoCheckpoint.write(dir, spec);
            if (spec == noQLora) { // the MTP falls back to model.embed_tokens
                Path f = dir.resolve("model.safetensors");
                SafeTensors.File file = SafeTensors.read(f);
                Map<String, SafeTensors.Entry> t = new java.util.LinkedHashMap<>(file.tensors());
                assertTrue(t.remove("model.layers.2.embed_tokens.weight") != null);
                SafeTensors.write(f, file.metadata(), t);
            }
            ModelReference m = ModelReference.load(dir);
            assertEquals(spec.qLoraRank() == 0, m.tensorNames().contains("model.layers.0.self_attn.q_proj.weight"));
            assertEquals(spec.fp8(), m.tensorNames().contains("model.layers.0.self_attn.o_proj.weight_scale_inv"));
            int[][] ids = randomIds(r, 2, 7, spec.vocab());
            float[][][] d = m.logits(ids, "dequant"), f = m.logits(ids, "fp8");
            assertFinite(d, "dequant");
            assertFinite(f, "fp8");
            float[][][] prefix = m.logits(new int[][] {Arrays.copyOf(ids[0], 4)}, "fp8");
            for (int i = 0; i < 4; i++) assertArrayEquals(f[0][i], prefix[0][i]);
            if (spec.fp8()) assertFalse(Arrays.equals(flat(d), flat(f)));
            else assertArrayEquals(flat(d), flat(f), "without fp8 weights both modes are the dequant formula");
            if (spec.mtp()) {
                float[][][] mtp = m.mtpLogits(ids, "fp8");
                assertEquals(6, mtp[0].length);
                assertFinite(mtp, "mtp");
                int[] s = DemoCheckpoint.sigma(spec);
                int hits = 0;
                for (int b = 0; b < 2; b++) for (int i = 0; i < 6; i++) if (argmax(mtp[b][i]) == s[ids[b][i + 1]]) hits++;
                System.out.println("ModelReferenceTest: variant without q_lora, MTP argmax = σ(next) at " + hits + " of 12");
            } else {
                assertThrows(IllegalArgumentException.class, () -> m.mtpLogits(ids, "dequant"));
            }
        }
    }

    @Test
    void badArgumentsAreRejected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ref.logits(new int[][] {{1}}, "bf16"));
        assertTrue(e.getMessage().contains("'gemm'"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ref.logits(new int[][] {{1, 1024}}, "dequant"));
        assertTrue(e.getMessage().contains("'inputIds'"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ref.mtpLogits(new int[][] {{-1, 2}}, "fp8"));
        e = assertThrows(IllegalArgumentException.class, () -> ModelReference.load(shared.resolve("missing")));
        assertTrue(e.getMessage().contains("config.json"), e.getMessage());
        assertEquals(0, ref.mtpLogits(new int[][] {{5}}, "dequant")[0].length);
    }

    @Test
    void theModelLogitsGoldenCase() throws Exception {
        Path dir = shared.resolve("golden");
        Path file = Golden.generateModelLogits(dir);
        SafeTensors.File f = SafeTensors.read(file);
        assertEquals("model.logits", f.metadata().get("op"));
        Map<?, ?> params = (Map<?, ?>) Json.parse(f.metadata().get("params"));
        assertEquals("dequant", params.get("gemm"));
        Path model = dir.resolve((String) params.get("model_dir"));
        for (String n : List.of("config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                "model.safetensors.index.json"))
            assertEquals(-1, Files.mismatch(model.resolve(n), demo.resolve(n)), n);
        SafeTensors.Entry in = f.tensors().get("in.input_ids"), out = f.tensors().get("out.logits");
        assertEquals("I32", in.dtype());
        assertArrayEquals(new long[] {2, 8}, in.shape());
        assertEquals("F32", out.dtype());
        assertArrayEquals(new long[] {2, 8, 1024}, out.shape());
        int[] raw = in.raw();
        int[][] ids = {Arrays.copyOfRange(raw, 0, 8), Arrays.copyOfRange(raw, 8, 16)};
        assertArrayEquals(flat(ref.logits(ids, "dequant")), out.floats());
        assertEquals(Map.of("max_abs", 1e-4, "max_rel", 1e-4), Json.parse(f.metadata().get("tolerance")));
    }
}
