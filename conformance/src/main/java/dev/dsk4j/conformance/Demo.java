package dev.dsk4j.conformance;

import dev.dsk4j.Context;
import dev.dsk4j.Device;
import dev.dsk4j.Dsk4j;
import dev.dsk4j.Mla;
import dev.dsk4j.model.Generation;
import dev.dsk4j.model.GenerationConfig;
import dev.dsk4j.model.Generator;
import dev.dsk4j.model.Model;
import dev.dsk4j.model.ModelConfig;
import dev.dsk4j.model.Session;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * {@code ./dsk4j demo}, the main job: writes (once, deterministically) a small DeepSeek-V3-shaped
 * checkpoint in the Hugging Face layout with FP8 block-scaled weights ({@link DemoCheckpoint}),
 * loads it as a real one would be loaded, checks the model's logits against the plain-Java
 * reference forward, then generates for a batch of prompts of different lengths, without and with
 * MTP speculative decoding, and prints prefill and decode tokens/s, the time per op family, memory
 * and the MTP acceptance rate. {@code ./dsk4j demo kernels} runs the kernel demo instead.
 */
public final class Demo {
    private Demo() {}

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("kernels")) {
            KernelDemo.main(Arrays.copyOfRange(args, 1, args.length));
            return;
        }
        Path dir = Path.of(System.getProperty("dsk4j.demo.dir", "target/demo-checkpoint"));
        System.out.println("dsk4j " + Dsk4j.version() + " (native library " + Dsk4j.libraryPath() + ")");
        long t0 = System.nanoTime();
        DemoCheckpoint.write(dir);
        System.out.printf(Locale.ROOT, "demo checkpoint: %s (%.2f s)%n", dir.toAbsolutePath(), (System.nanoTime() - t0) / 1e9);
        ModelConfig cfg = ModelConfig.read(dir.resolve("config.json"));
        System.out.printf(Locale.ROOT, "  %d layers (first %d dense) + %d MTP, hidden %d, %d heads, q_lora %d, kv_lora %d, "
                        + "%d experts (top-%d, %d groups keep %d) + %d shared, vocab %d, fp8 %s%n", cfg.numHiddenLayers(),
                cfg.firstKDenseReplace(), cfg.numNextnPredictLayers(), cfg.hiddenSize(), cfg.numAttentionHeads(),
                cfg.qLoraRank(), cfg.kvLoraRank(), cfg.nRoutedExperts(), cfg.numExpertsPerTok(), cfg.nGroup(),
                cfg.topkGroup(), cfg.nSharedExperts(), cfg.vocabSize(), cfg.fp8());

        try (Context ctx = Context.open(Device.cpu())) {
            System.out.println("backend: " + ctx.describe());
            conformance(ctx, dir);
            t0 = System.nanoTime();
            try (Model m = Model.load(ctx, dir, Model.Options.defaults().withProgress(true))) {
                System.out.printf(Locale.ROOT, "%nloaded (gemm fp8) in %.2f s%n", (System.nanoTime() - t0) / 1e9);
                SplittableRandom r = new SplittableRandom(7);
                List<int[]> prompts = new ArrayList<>();
                for (int len : new int[] {5, 16, 33, 64}) {
                    int[] p = new int[len];
                    for (int i = 0; i < len; i++) p[i] = r.nextInt(cfg.vocabSize());
                    prompts.add(p);
                }
                int maxTokens = 48;
                try (Session s = m.newSession(prompts.size(), 64 + maxTokens + 2, Mla.CacheFormat.BF16)) {
                    Generator gen = new Generator(m);
                    GenerationConfig gc = GenerationConfig.greedy(maxTokens);
                    gen.generate(s, prompts, gc); // warm-up: JIT, first-touch of the weights
                    Generation plain = gen.generate(s, prompts, gc);
                    System.out.printf(Locale.ROOT, "%ngreedy, %d prompts of %s tokens, %d new tokens each, no MTP%n",
                            prompts.size(), "5/16/33/64", maxTokens);
                    for (int i = 0; i < prompts.size(); i++)
                        System.out.println("  seq " + i + ": " + GenerateCommand.join(Arrays.copyOf(plain.tokens().get(i), 16))
                                + ",...");
                    GenerateCommand.report(plain, m, s);
                    Generation spec = gen.generate(s, prompts, gc.withMtp(true));
                    System.out.printf(Locale.ROOT, "%nthe same with MTP speculative decoding%n");
                    GenerateCommand.report(spec, m, s);
                    boolean same = true;
                    for (int i = 0; i < prompts.size(); i++)
                        same &= Arrays.equals(plain.tokens().get(i), spec.tokens().get(i));
                    System.out.printf(Locale.ROOT, "MTP output equals the output without MTP: %s; decode speed-up %.2fx%n",
                            same ? "yes" : "NO", spec.decodeTokensPerSecond() / plain.decodeTokensPerSecond());
                    System.out.flush();
                    System.err.flush();
                    if (!same) System.exit(1);
                }
            }
        }
    }

    /** The model's logits against the plain-Java reference forward, both GEMM modes. */
    private static void conformance(Context ctx, Path dir) throws Exception {
        int[][] ids = {{3, 17, 250, 9, 77, 1000, 12}, {42, 5, 900}};
        ModelReference ref = ModelReference.load(dir);
        for (Model.GemmMode mode : Model.GemmMode.values()) {
            String g = mode == Model.GemmMode.FP8 ? "fp8" : "dequant";
            float[][][] exp = ref.logits(ids, g);
            try (Model m = Model.load(ctx, dir, Model.Options.defaults().withGemm(mode).withMtp(false))) {
                float[][][] got = m.logits(ids);
                double num = 0, den = 0, maxAbs = 0;
                for (int b = 0; b < ids.length; b++)
                    for (int s = 0; s < ids[b].length; s++)
                        for (int v = 0; v < exp[b][s].length; v++) {
                            double d = got[b][s][v] - exp[b][s][v];
                            num += d * d;
                            den += (double) exp[b][s][v] * exp[b][s][v];
                            maxAbs = Math.max(maxAbs, Math.abs(d));
                        }
                System.out.printf(Locale.ROOT, "logits vs the Java reference (gemm %s, 2 sequences): relative error %.2e, "
                        + "max abs %.2e%n", g, Math.sqrt(num / den), maxAbs);
            }
        }
    }
}
