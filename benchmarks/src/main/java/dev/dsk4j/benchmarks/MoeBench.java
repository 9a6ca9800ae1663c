package dev.dsk4j.benchmarks;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Device;
import dev.dsk4j.Moe;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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
 * JMH benchmark of a DeepSeek-V3 MoE layer on the CPU backend (all cores): hidden 7168,
 * moe_intermediate 2048, top-8 of 8 groups keep 4, one shared expert, FP8 weights (e4m3 + 128x128
 * scales), x bf16, y f32, T in {1, 16, 128} ({@code c = layer/T}).
 *
 * <p>Resident experts: {@value #RESIDENT}, not 256 (256 x 44 MB = 11 GB does not fit next to the
 * other tenants of a 23 GB machine): the layer's router is restricted to {@value #RESIDENT} experts
 * (8 groups of 4, keep 4, top-8), so each token still runs 8 routed experts + the shared one with
 * V3's shapes; only the expert-cache footprint is smaller. {@code c = router/T} times moe.gate alone
 * with V3's full router (256 experts, wg f32 [256, 7168], bias).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class MoeBench {
    static final int HIDDEN = 7168, INTER = 2048, RESIDENT = 32;
    static final Moe.GateConfig LAYER_GATE = new Moe.GateConfig(RESIDENT, 8, 8, 4, Moe.ScoreFunction.SIGMOID, true, 2.5f);

    static int tokens(String c) { return Integer.parseInt(c.substring(c.indexOf('/') + 1)); }

    /** Bytes of one expert's fp8 weights and scales (w13 + w2). */
    static long expertBytes() {
        long w = 3L * INTER * HIDDEN;
        long s = 4L * ((2L * INTER / 128) * (HIDDEN / 128) + (HIDDEN / 128) * (INTER / 128));
        return w + s;
    }

    /** FLOPs of one layer call on T tokens: (T*8 routed + T shared) x 2 x 3 x inter x hidden, plus the router. */
    static double flops(String c) {
        long t = tokens(c);
        double router = 2.0 * t * (c.startsWith("router") ? 256 : RESIDENT) * HIDDEN;
        if (c.startsWith("router")) return router;
        return t * 9.0 * 6.0 * INTER * HIDDEN + router;
    }

    @State(Scope.Benchmark)
    public static class Layer {
        @Param({"router/1", "router/128", "layer/1", "layer/16", "layer/128"})
        public String c;

        Arena arena;
        Context ctx;
        Runnable op;
        /** Bytes of weights one call reads (the experts the routing touched + shared + router), set by setup. */
        public long touchedBytes;

        static Tensor random(Arena a, DType d, long seed, long... shape) {
            Tensor t = Tensor.allocate(a, d, shape);
            MemorySegment s = t.segment();
            long x = seed * 0x9E3779B97F4A7C15L + 1;
            long n = s.byteSize() / 8;
            for (long i = 0; i < n; i++) {
                x ^= x << 13;
                x ^= x >>> 7;
                x ^= x << 17;
                // e4m3 codes without NaN (0x7f/0xff) and small magnitudes: clear bit 6 and bit 3 of every byte
                s.setAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i, x & 0xB7B7B7B7B7B7B7B7L);
            }
            return t;
        }

        static Tensor floats(Arena a, SplittableRandom r, double sd, long... shape) {
            Tensor t = Tensor.allocate(a, DType.F32, shape);
            for (long i = 0; i < t.numel(); i++)
                t.segment().setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) (r.nextGaussian() * sd));
            return t;
        }

        static Tensor fill(Arena a, float v, long... shape) {
            Tensor t = Tensor.allocate(a, DType.F32, shape);
            for (long i = 0; i < t.numel(); i++) t.segment().setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, v);
            return t;
        }

        @Setup(Level.Trial)
        public void setup() {
            arena = Arena.ofShared();
            ctx = Context.open(Device.cpu());
            int t = tokens(c);
            SplittableRandom r = new SplittableRandom(5);
            Tensor x = Tensor.allocate(arena, DType.BF16, t, HIDDEN);
            for (long i = 0; i < x.numel(); i++)
                x.segment().setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) (Float.floatToIntBits((float) r.nextGaussian()) >>> 16));
            if (c.startsWith("router")) {
                Moe.GateConfig v3 = Moe.GateConfig.deepSeekV3();
                Tensor wg = floats(arena, r, 0.02, 256, HIDDEN), bias = floats(arena, r, 0.01, 256);
                Tensor idx = Tensor.allocate(arena, DType.I32, t, 8), w = Tensor.allocate(arena, DType.F32, t, 8);
                op = () -> Moe.gate(ctx, idx, w, null, x, wg, bias, v3);
                touchedBytes = wg.byteSize();
            } else {
                long kb = HIDDEN / 128, ib = INTER / 128;
                Tensor wg = floats(arena, r, 0.02, RESIDENT, HIDDEN), bias = floats(arena, r, 0.01, RESIDENT);
                Moe.Layer layer = new Moe.Layer(LAYER_GATE, wg, bias,
                        random(arena, DType.E4M3, 1, RESIDENT, 2L * INTER, HIDDEN), fill(arena, 1e-3f, RESIDENT, 2 * ib, kb),
                        random(arena, DType.E4M3, 2, RESIDENT, HIDDEN, INTER), fill(arena, 1e-3f, RESIDENT, kb, ib),
                        random(arena, DType.E4M3, 3, 2L * INTER, HIDDEN), fill(arena, 1e-3f, 2 * ib, kb),
                        random(arena, DType.E4M3, 4, HIDDEN, INTER), fill(arena, 1e-3f, kb, ib));
                Tensor y = Tensor.allocate(arena, DType.F32, t, HIDDEN), counts = Tensor.allocate(arena, DType.I32, RESIDENT);
                op = () -> Moe.forward(ctx, y, x, layer, counts);
                op.run();
                int used = 0;
                for (int n : counts.toIntArray()) if (n > 0) used++;
                touchedBytes = (used + 1L) * expertBytes() + wg.byteSize();
            }
            op.run();
        }

        @TearDown(Level.Trial)
        public void close() {
            if (ctx != null) ctx.close();
            if (arena != null) arena.close();
            ctx = null;
            arena = null;
            op = null;
        }
    }

    @Benchmark
    public void forward(Layer s) { s.op.run(); }
}
