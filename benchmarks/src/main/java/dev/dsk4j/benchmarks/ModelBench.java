package dev.dsk4j.benchmarks;

import dev.dsk4j.Context;
import dev.dsk4j.Device;
import dev.dsk4j.Mla;
import dev.dsk4j.Tensor;
import dev.dsk4j.conformance.DemoCheckpoint;
import dev.dsk4j.model.Model;
import dev.dsk4j.model.Profile;
import dev.dsk4j.model.Session;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * JMH benchmark of the model API on the CPU backend: {@code decode} = one decode step of B
 * sequences at context length {@value #CONTEXT} (absorbed MLA over a bf16 latent cache, then the LM
 * head), {@code prefill} = one prompt of {@value #PROMPT} tokens (compute-form MLA, LM head on the
 * last token). Models: {@code demo} (the demo checkpoint: 3 layers + MTP, hidden 256) and
 * {@code v3layer} ({@link V3LayerCheckpoint}: one DeepSeek-V3 layer with real shapes, 32 experts,
 * vocabulary 1024). The tear-down prints the share of time per op family and peak RSS against the
 * checkpoint + model-owned + cache bytes (the target of issue 6 is <= 1.2x).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class ModelBench {
    static final int CONTEXT = 256, PROMPT = 128;

    static Path checkpoint(String model) throws IOException {
        Path dir = Path.of(System.getProperty("dsk4j.bench.dir", "target")).resolve("bench-" + model);
        if (model.equals("demo")) DemoCheckpoint.write(dir);
        else if (model.equals("v3layer")) V3LayerCheckpoint.write(dir);
        else throw new IllegalArgumentException("unknown model '" + model + "'");
        return dir;
    }

    @State(Scope.Benchmark)
    public static class Loaded {
        @Param({"demo", "v3layer"})
        public String model;

        @Param({"fp8"})
        public String gemm;

        @Param({"1", "8"})
        public int batch;

        Context ctx;
        Model m;
        Session decode;
        int[] next;
        long rssBefore;

        @Setup(Level.Trial)
        public void setUp() throws IOException {
            Path dir = checkpoint(model);
            rssBefore = rss("VmRSS");
            ctx = Context.open(Device.cpu());
            m = Model.load(ctx, dir, Model.Options.defaults().withMtp(false)
                    .withGemm(gemm.equals("fp8") ? Model.GemmMode.FP8 : Model.GemmMode.DEQUANT));
            int vocab = m.config().vocabSize();
            SplittableRandom r = new SplittableRandom(1);
            decode = m.newSession(batch, CONTEXT + 1, Mla.CacheFormat.BF16);
            for (int b = 0; b < batch; b++) { // one sequence per call: the activations of one 256-token prefill
                try (Arena a = Arena.ofConfined()) {
                    m.forward(decode, List.of(new Model.Segment(b, 0, r.ints(CONTEXT, 0, vocab).toArray())), a);
                }
            }
            next = r.ints(batch, 0, vocab).toArray();
            m.profile().reset();
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            Map<Profile.Family, Long> p = m.profile().nanos();
            System.out.println();
            System.out.println("[model " + model + " batch " + batch + "] time per op family: " + m.profile());
            long hwm = rss("VmHWM");
            long cache = decode.cacheBytes();
            long base = m.checkpointBytes() + cache;
            System.out.printf(Locale.ROOT, "[model %s batch %d] peak RSS %.1f MiB vs weights %.1f + cache %.1f MiB = %.2fx "
                            + "(model-owned copies %.1f MiB: dequantized / packed weights, their file pages released; "
                            + "RSS of the JVM before loading %.1f MiB, Java heap committed now %.1f MiB)%n", model, batch,
                    hwm / 1048576.0, m.checkpointBytes() / 1048576.0, cache / 1048576.0, (double) hwm / base,
                    m.ownedBytes() / 1048576.0, rssBefore / 1048576.0, Runtime.getRuntime().totalMemory() / 1048576.0);
            decode.close();
            m.close();
            ctx.close();
        }
    }

    static long rss(String field) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status")))
                if (line.startsWith(field + ":")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        } catch (IOException e) {
            return -1;
        }
        return -1;
    }

    /** One decode step of every sequence at position CONTEXT (rewound each call, so the work stays the same). */
    @Benchmark
    public Tensor decode(Loaded s) {
        List<Model.Segment> segs = new ArrayList<>(s.batch);
        for (int b = 0; b < s.batch; b++) segs.add(new Model.Segment(b, CONTEXT, new int[] {s.next[b]}));
        try (Arena a = Arena.ofConfined()) {
            Tensor h = s.m.forward(s.decode, segs, a);
            return s.m.logits(h, a);
        }
    }

    /** A prompt of PROMPT tokens through every layer, logits of its last token (batch 1; B of the table is 1). */
    @Benchmark
    public Tensor prefill(Prompt s) {
        try (Arena a = Arena.ofConfined()) {
            Tensor h = s.m.forward(s.session, List.of(new Model.Segment(0, 0, s.prompt)), a);
            return s.m.logits(h.slice(PROMPT - 1, PROMPT), a);
        }
    }

    /** The model and a one-slot session for {@link #prefill}. */
    @State(Scope.Benchmark)
    public static class Prompt {
        @Param({"demo", "v3layer"})
        public String model;

        @Param({"fp8"})
        public String gemm;

        Context ctx;
        Model m;
        Session session;
        int[] prompt;

        @Setup(Level.Trial)
        public void setUp() throws IOException {
            Path dir = checkpoint(model);
            ctx = Context.open(Device.cpu());
            m = Model.load(ctx, dir, Model.Options.defaults().withMtp(false)
                    .withGemm(gemm.equals("fp8") ? Model.GemmMode.FP8 : Model.GemmMode.DEQUANT));
            prompt = new SplittableRandom(2).ints(PROMPT, 0, m.config().vocabSize()).toArray();
            session = m.newSession(1, PROMPT, Mla.CacheFormat.BF16);
            m.profile().reset();
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            System.out.println();
            System.out.println("[model " + model + " prefill] time per op family: " + m.profile());
            session.close();
            m.close();
            ctx.close();
        }
    }
}
