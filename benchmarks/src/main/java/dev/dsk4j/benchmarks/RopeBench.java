package dev.dsk4j.benchmarks;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Device;
import dev.dsk4j.Rope;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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
import org.openjdk.jmh.annotations.Warmup;

/**
 * JMH benchmark of rope.apply in place on q_pe [T, 128, 64] with DeepSeek-V3's YaRN table and
 * prefill positions {@code t mod 16384}, one implementation per run ({@code impl}):
 * {@code dsk4j} (the native CPU backend through {@link Rope}, all cores), {@code dsk4j-1t} (one
 * thread), {@code java-1t}/{@code java-mt} ({@link JavaRope}, scalar), {@code vector-1t}/{@code vector-mt}
 * ({@link VectorRope}). Cases ({@code c}): {@code f32/16384} and {@code bf16/32768} (512 MiB of
 * q_pe each, read and written: much larger than a 300 MiB L3), {@code f32/128} (4 MiB, in cache).
 * Layout: {@code interleaved} (the reference's) unless {@code -p layout=neox}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
public class RopeBench {
    static final int HEADS = 128, DIM = 64;

    /** dtype and T of a case "f32/16384". */
    static DType dtype(String c) { return c.startsWith("bf16") ? DType.BF16 : DType.F32; }

    static int tokens(String c) { return Integer.parseInt(c.substring(c.indexOf('/') + 1)); }

    /** Bytes moved by one in-place call: q_pe read and written, positions, the table rows of each token (cos and sin). */
    static long bytesMoved(String c) {
        long t = tokens(c), x = t * HEADS * DIM * dtype(c).byteSize();
        return 2 * x + 4 * t + t * DIM * 4;
    }

    @State(Scope.Benchmark)
    public static class Apply extends Fp8Bench.OpState {
        @Param({"f32/16384", "bf16/32768", "f32/128"})
        public String c;

        @Param({"dsk4j", "dsk4j-1t", "java-1t", "java-mt", "vector-1t", "vector-mt"})
        public String impl;

        @Param({"interleaved"})
        public String layout;

        @Setup(Level.Trial)
        public void setup() {
            int t = tokens(c), n = t * HEADS * DIM;
            boolean bf16 = dtype(c) == DType.BF16, neox = layout.equals("neox");
            Rope.Layout lay = neox ? Rope.Layout.NEOX : Rope.Layout.INTERLEAVED;
            Rope.YarnConfig v3 = Rope.YarnConfig.deepSeekV3();
            int[] pos = new int[t];
            for (int i = 0; i < t; i++) pos[i] = (int) (i % v3.maxSeqLen());
            float[] x = Fp8Bench.activations(n);
            arena = Arena.ofShared();
            if (impl.startsWith("dsk4j")) {
                Context ctx = context(impl);
                Tensor xt;
                if (bf16) {
                    short[] s = new short[n];
                    for (int i = 0; i < n; i++) s[i] = JavaRope.bf16(x[i]);
                    xt = Tensor.allocate(arena, DType.BF16, t, HEADS, DIM);
                    MemorySegment.copy(s, 0, xt.segment(), ValueLayout.JAVA_SHORT_UNALIGNED, 0, n);
                } else {
                    xt = floats(x, t, HEADS, DIM);
                }
                Tensor pt = Tensor.ofInts(arena, pos, t);
                Rope.Table table = Rope.table(ctx, v3);
                op = () -> Rope.applyInPlace(ctx, xt, pt, table, lay);
            } else {
                float[] cos, sin;
                try (Context cpu = Context.open(Device.cpu()); Arena a = Arena.ofConfined()) {
                    Rope.Table tb = Rope.yarnTable(cpu, a, v3);
                    cos = tb.cos().toFloatArray();
                    sin = tb.sin().toFloatArray();
                }
                short[] s = bf16 ? new short[n] : null;
                if (bf16) for (int i = 0; i < n; i++) s[i] = JavaRope.bf16(x[i]);
                float[] f = bf16 ? null : x;
                op = switch (impl) {
                    case "java-1t" -> bf16 ? () -> JavaRope.apply(s, pos, HEADS, DIM, neox, cos, sin, 0, t)
                            : () -> JavaRope.apply(f, pos, HEADS, DIM, neox, cos, sin, 0, t);
                    case "java-mt" -> bf16 ? () -> JavaRope.applyParallel(s, pos, HEADS, DIM, neox, cos, sin)
                            : () -> JavaRope.applyParallel(f, pos, HEADS, DIM, neox, cos, sin);
                    case "vector-1t" -> bf16 ? () -> VectorRope.apply(s, pos, HEADS, DIM, neox, cos, sin)
                            : () -> VectorRope.apply(f, pos, HEADS, DIM, neox, cos, sin);
                    case "vector-mt" -> bf16 ? () -> VectorRope.applyParallel(s, pos, HEADS, DIM, neox, cos, sin)
                            : () -> VectorRope.applyParallel(f, pos, HEADS, DIM, neox, cos, sin);
                    default -> throw unknown(impl);
                };
            }
            op.run();
        }
    }

    @Benchmark
    public void apply(Apply s) { s.op.run(); }

}
