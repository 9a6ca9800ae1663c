package dev.dsk4j.benchmarks;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Gemm;
import dev.dsk4j.Mla;
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
import org.openjdk.jmh.annotations.Warmup;

/**
 * JMH benchmark of mla.decode (absorbed, one query token per sequence, DeepSeek-V3's softmax scale) on
 * the native CPU backend, all cores. Case {@code c} = {@code B/H/L}: B sequences of L tokens each, H
 * heads. {@code fmt}: the cache format ({@code bf16} by default, {@code fp8} or {@code f32} with
 * {@code -p fmt=...}). The cache pages are filled with random values and assigned to sequences in a
 * shuffled order.
 *
 * <p>{@code naive}: the decompressed path on the same work, measured by its first step only: the
 * decompression of every cached latent into per-head K_nope and V, one {@link Gemm#bf16}
 * {@code [B·L, 512] × [H·256, 512]ᵀ} (bf16 out) on the same backend (its best GEMM path, AMX where
 * the CPU has it). The attention over the decompressed K/V that would follow is not run, so the
 * naive time is a lower bound and the speed-up of the absorbed form an underestimate. Run for
 * {@code B = 1, L <= 4096} only: the decompressed K/V of the larger cases (up to 8·16384·128·256·2
 * bytes = 8 GiB) do not fit a 24 GB machine next to everything else.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 1, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
public class MlaBench {
    static final double SCALE = 0.1352338;

    static int[] parse(String c) {
        String[] p = c.split("/");
        return new int[] {Integer.parseInt(p[0]), Integer.parseInt(p[1]), Integer.parseInt(p[2])};
    }

    /** FLOPs of one absorbed decode call: 2·B·H·L·(576 + 512). */
    static double flops(String c) {
        int[] p = parse(c);
        return 2.0 * p[0] * p[1] * (double) p[2] * (576 + 512);
    }

    /** Bytes of cache one call reads. */
    static long cacheBytes(String c, String fmt) {
        int[] p = parse(c);
        return (long) p[0] * p[2] * format(fmt).tokenBytes();
    }

    static Mla.CacheFormat format(String fmt) {
        return switch (fmt) {
            case "bf16" -> Mla.CacheFormat.BF16;
            case "fp8" -> Mla.CacheFormat.FP8;
            case "f32" -> Mla.CacheFormat.F32;
            default -> throw new IllegalArgumentException("fmt must be bf16, fp8 or f32, got " + fmt);
        };
    }

    @State(Scope.Benchmark)
    public static class Decode extends Fp8Bench.OpState {
        @Param({"1/16/1024", "1/16/4096", "1/16/16384", "1/128/1024", "1/128/4096", "1/128/16384", "8/16/1024",
                "8/16/4096", "8/16/16384", "8/128/1024", "8/128/4096", "8/128/16384"})
        public String c;

        @Param({"bf16"})
        public String fmt;

        @Setup(Level.Trial)
        public void setup() {
            int[] p = parse(c);
            int b = p[0], h = p[1], l = p[2], pages = (l + 63) / 64;
            Mla.CacheFormat f = format(fmt);
            arena = Arena.ofShared();
            Context cx = context("dsk4j");
            Mla.LatentCache cache = Mla.LatentCache.allocate(cx, arena, f, (long) b * pages);
            fillCache(cache, new SplittableRandom(1));
            int[] bt = new int[b * pages];
            for (int i = 0; i < bt.length; i++) bt[i] = i;
            SplittableRandom r = new SplittableRandom(2);
            for (int i = bt.length - 1; i > 0; i--) {
                int j = r.nextInt(i + 1), t = bt[i];
                bt[i] = bt[j];
                bt[j] = t;
            }
            int[] lens = new int[b];
            java.util.Arrays.fill(lens, l);
            Tensor btT = Tensor.ofInts(arena, bt, b, pages), lensT = Tensor.ofInts(arena, lens, b);
            Tensor ql = bf16(arena, r, (long) b * h * 512, 1.0, b, 1, h, 512);
            Tensor qp = bf16(arena, r, (long) b * h * 64, 1.0, b, 1, h, 64);
            Tensor o = Tensor.allocate(arena, DType.BF16, b, 1, h, 512), lse = Tensor.allocate(arena, DType.F32, b, 1, h);
            op = () -> Mla.decode(cx, o, lse, ql, qp, cache, btT, lensT, SCALE, false);
            op.run();
        }
    }

    @State(Scope.Benchmark)
    public static class Naive extends Fp8Bench.OpState {
        @Param({"1/16/1024", "1/16/4096", "1/128/1024", "1/128/4096"})
        public String c;

        @Setup(Level.Trial)
        public void setup() {
            int[] p = parse(c);
            int b = p[0], h = p[1], l = p[2];
            arena = Arena.ofShared();
            Context cx = context("dsk4j");
            SplittableRandom r = new SplittableRandom(3);
            Tensor latent = bf16(arena, r, (long) b * l * 512, 1.0, (long) b * l, 512);
            Tensor wkv = bf16(arena, r, (long) h * 256 * 512, 0.05, (long) h * 256, 512);
            Tensor kv = Tensor.allocate(arena, DType.BF16, (long) b * l, (long) h * 256);
            op = () -> Gemm.bf16(cx, kv, latent, wkv, null);
            op.run();
        }
    }

    static Tensor bf16(Arena a, SplittableRandom r, long n, double scale, long... shape) {
        Tensor t = Tensor.allocate(a, DType.BF16, shape);
        MemorySegment s = t.segment();
        for (long i = 0; i < n; i++) s.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, JavaRope.bf16((float) (r.nextGaussian() * scale)));
        return t;
    }

    /** Random tokens in the cache's format (bf16 values; FP8: e4m3 codes of small magnitude and scale 2^-6). */
    static void fillCache(Mla.LatentCache cache, SplittableRandom r) {
        MemorySegment s = cache.pages().segment();
        int tb = cache.format().tokenBytes();
        long tokens = cache.numPages() * Mla.PAGE_TOKENS;
        for (long t = 0; t < tokens; t++) {
            long base = t * tb;
            switch (cache.format()) {
                case BF16 -> {
                    for (int i = 0; i < 576; i++)
                        s.set(ValueLayout.JAVA_SHORT_UNALIGNED, base + 2L * i, JavaRope.bf16((float) r.nextGaussian()));
                }
                case F32 -> {
                    for (int i = 0; i < 576; i++) s.set(ValueLayout.JAVA_FLOAT_UNALIGNED, base + 4L * i, (float) r.nextGaussian());
                }
                case FP8 -> {
                    for (int i = 0; i < 512; i++) s.set(ValueLayout.JAVA_BYTE, base + i, (byte) (r.nextInt(0x60) | (r.nextBoolean() ? 0x80 : 0)));
                    for (int g = 0; g < 4; g++) s.set(ValueLayout.JAVA_FLOAT_UNALIGNED, base + 512 + 4L * g, 0x1p-6f);
                    for (int i = 0; i < 64; i++)
                        s.set(ValueLayout.JAVA_SHORT_UNALIGNED, base + 528 + 2L * i, JavaRope.bf16((float) r.nextGaussian()));
                }
            }
        }
    }

    @Benchmark
    public void decode(Decode s) { s.op.run(); }

    @Benchmark
    public void naive(Naive s) { s.op.run(); }
}
