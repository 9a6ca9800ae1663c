package dev.dsk4j.conformance;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Device;
import dev.dsk4j.Dsk4jException;
import dev.dsk4j.Mla;
import dev.dsk4j.model.Generation;
import dev.dsk4j.model.GenerationConfig;
import dev.dsk4j.model.Generator;
import dev.dsk4j.model.Model;
import dev.dsk4j.model.Session;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The model on a CUDA context (weights uploaded, every step a CUDA kernel) against the plain-Java
 * reference and against the same model on the CPU: logits in both GEMM modes, bf16 activations,
 * greedy generation with and without MTP. Skipped, with the reason, where no CUDA device can be opened
 * (benchmarks/gpu/check.sh runs it on a GPU machine).
 */
class ModelCudaTest {
    static Path dir;
    static ModelReference ref;
    static Context cpu, cuda;
    static String noDevice;
    static final SplittableRandom RANDOM = new SplittableRandom();

    @BeforeAll
    static void setUp() throws IOException {
        try {
            cuda = Context.open(Device.cuda(0));
        } catch (Dsk4jException e) {
            noDevice = "no CUDA device here: " + e.getMessage();
            System.out.println("[conformance] ModelCudaTest SKIPPED: " + noDevice);
            return;
        }
        dir = Path.of("target", "test-demo-checkpoint-cuda");
        DemoCheckpoint.write(dir);
        ref = ModelReference.load(dir);
        cpu = Context.open(Device.cpu());
    }

    @AfterAll
    static void tearDown() {
        if (cuda != null) cuda.close();
        if (cpu != null) cpu.close();
    }

    static void needDevice() { Assumptions.assumeTrue(noDevice == null, noDevice); }

    static int[] randomIds(int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = RANDOM.nextInt(ref.config().vocabSize());
        return p;
    }

    @Test
    void dequantLogitsOnCudaMatchTheReference() throws IOException {
        needDevice();
        int[][] ids = {randomIds(1 + RANDOM.nextInt(20)), randomIds(1 + RANDOM.nextInt(40)), randomIds(1)};
        try (Model m = Model.load(cuda, dir, Model.Options.defaults().withGemm(Model.GemmMode.DEQUANT))) {
            double e = ModelTest.relError(m.logits(ids), ref.logits(ids, ModelReference.DEQUANT));
            System.out.printf("cuda model.logits dequant: relative error %.3g%n", e);
            assertTrue(e <= 1e-4, "relative error " + e);
        }
    }

    @Test
    void fp8LogitsOnCudaMatchTheReferenceWithinTheFp8Budget() throws IOException {
        needDevice();
        int[][] ids = {randomIds(1 + RANDOM.nextInt(8)), randomIds(1 + RANDOM.nextInt(8))};
        try (Model m = Model.load(cuda, dir, Model.Options.defaults())) {
            float[][][] exp = ref.logits(ids, ModelReference.FP8);
            double e = ModelTest.relError(m.logits(ids), exp);
            double budget = ModelTest.relError(exp, ref.logits(ids, ModelReference.DEQUANT));
            System.out.printf("cuda model.logits fp8: relative error %.3g (FP8 itself vs dequant: %.3g)%n", e, budget);
            assertTrue(e <= Math.max(1e-4, budget), "relative error " + e + " > the FP8 budget " + budget);
        }
    }

    @Test
    void bf16ActivationsOnCudaAgreeWithTheCpuModel() throws IOException {
        needDevice();
        int[][] ids = {randomIds(1 + RANDOM.nextInt(16))};
        Model.Options o = Model.Options.defaults().withGemm(Model.GemmMode.DEQUANT).withActivations(DType.BF16);
        try (Model g = Model.load(cuda, dir, o); Model c = Model.load(cpu, dir, o)) {
            float[][][] lg = g.logits(ids), lc = c.logits(ids);
            double e = ModelTest.relError(lg, lc);
            int agree = 0;
            for (int j = 0; j < lc[0].length; j++)
                if (argmax(lg[0][j]) == argmax(lc[0][j])) agree++;
            System.out.printf("cuda vs cpu, bf16 activations: relative error %.3g, argmax agrees on %d/%d%n", e, agree,
                    lc[0].length);
            assertTrue(e <= 5e-2, "relative error " + e);
            assertTrue(agree == lc[0].length, "the predicted token differs at " + (lc[0].length - agree) + " positions");
        }
    }

    @Test
    void greedyGenerationOnCudaEqualsTheCpuWithAndWithoutMtp() throws IOException {
        needDevice();
        List<int[]> prompts = List.of(randomIds(3), randomIds(17), randomIds(1 + RANDOM.nextInt(30)));
        GenerationConfig gc = GenerationConfig.greedy(16);
        Model.Options o = Model.Options.defaults().withGemm(Model.GemmMode.DEQUANT);
        try (Model g = Model.load(cuda, dir, o); Model c = Model.load(cpu, dir, o);
             Session sg = g.newSession(3, 64, Mla.CacheFormat.BF16); Session sc = c.newSession(3, 64, Mla.CacheFormat.BF16)) {
            Generation onCpu = new Generator(c).generate(sc, prompts, gc);
            Generation plain = new Generator(g).generate(sg, prompts, gc);
            Generation spec = new Generator(g).generate(sg, prompts, gc.withMtp(true));
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(onCpu.tokens().get(i), plain.tokens().get(i), "cuda vs cpu, sequence " + i);
                assertArrayEquals(plain.tokens().get(i), spec.tokens().get(i), "cuda MTP on vs off, sequence " + i);
            }
            System.out.printf("cuda generation: decode %.1f tokens/s, MTP acceptance %.3f%n", plain.decodeTokensPerSecond(),
                    spec.acceptanceRate());
        }
    }

    static int argmax(float[] v) {
        int b = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[b]) b = i;
        return b;
    }
}
