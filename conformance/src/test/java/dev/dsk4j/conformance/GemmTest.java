package dev.dsk4j.conformance;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.longs;

import dev.dsk4j.DType;
import dev.dsk4j.Dsk4jException;
import dev.dsk4j.Fp8;
import dev.dsk4j.Gemm;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.util.SplittableRandom;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The gemm.* ops on every backend against {@link GemmReference} (tolerances: {@link GemmChecks}). */
@ExtendWith(Backends.SkipUnavailable.class)
class GemmTest {
    static java.util.stream.Stream<Backend> backends() { return Backends.withMissing(); }

    private static final int[] MS = {0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 33, 127, 128, 129};

    @ParameterizedTest
    @MethodSource("backends")
    void fp8BlockRandomShapes(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(40).forAll(longs().all(), integers().between(0, MS.length - 1), integers().between(1, 300),
                    integers().between(0, 63)).checkAssert((seed, mi, n, opts) -> {
                        SplittableRandom r = new SplittableRandom(seed);
                        int m = MS[mi], k = 128 * r.nextInt(0, 5);
                        DType d = (opts & 1) == 0 ? DType.F32 : DType.BF16;
                        Fp8.ScaleLayout layout = (opts & 2) == 0 ? Fp8.ScaleLayout.ROW_MAJOR : Fp8.ScaleLayout.COLUMN_MAJOR;
                        Comparison c = GemmChecks.fp8Block(s, r, m, n, k, (opts & 4) != 0, d, layout, (opts >> 3) & 3);
                        assertTrue(c.passed(), () -> backend + " m=" + m + " n=" + n + " k=" + k + " " + d + " " + layout + ": " + c);
                    });
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void fp8BlockDeepSeekShapes(Backend backend) {
        SplittableRandom r = new SplittableRandom();
        try (Session s = new Session(backend)) {
            for (int m : new int[] {1, 4, 16, 129}) {
                Comparison c = GemmChecks.fp8Block(s, r, m, 576, 7168, false, DType.F32, Fp8.ScaleLayout.ROW_MAJOR, 0);
                assertTrue(c.passed(), () -> backend + " m=" + m + " [576, 7168]: " + c);
            }
            Comparison c = GemmChecks.fp8Block(s, r, 33, 300, 2048, true, DType.BF16, Fp8.ScaleLayout.COLUMN_MAJOR, 3);
            assertTrue(c.passed(), () -> backend + " [33, 300, 2048]: " + c);
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void bf16RandomShapes(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(30).forAll(longs().all(), integers().between(0, MS.length - 1), integers().between(1, 200),
                    integers().between(0, 300)).checkAssert((seed, mi, n, k) -> {
                        SplittableRandom r = new SplittableRandom(seed);
                        int m = MS[mi];
                        DType d = r.nextBoolean() ? DType.F32 : DType.BF16;
                        Comparison c = GemmChecks.bf16(s, r, m, n, k, r.nextBoolean(), d);
                        assertTrue(c.passed(), () -> backend + " m=" + m + " n=" + n + " k=" + k + " " + d + ": " + c);
                    });
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void fp8BlockNaNCodesPropagate(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(25).forAll(longs().all(), integers().between(0, MS.length - 1), integers().between(1, 200),
                    integers().between(1, 4)).checkAssert((seed, mi, n, nans) -> {
                        SplittableRandom r = new SplittableRandom(seed);
                        int m = MS[mi], k = 128 * r.nextInt(1, 4);
                        DType d = r.nextBoolean() ? DType.F32 : DType.BF16;
                        Comparison c = GemmChecks.fp8Block(s, r, m, n, k, r.nextBoolean(), d, Fp8.ScaleLayout.ROW_MAJOR, 0, nans);
                        assertTrue(c.passed(), () -> backend + " m=" + m + " n=" + n + " k=" + k + " " + d + " nan codes=" + nans
                                + ": " + c);
                    });
        }
    }

    /** Row counts around the AMX path's blocks (16-row tiles, 256 rows per task) and N tails of its 32-row B panels. */
    @ParameterizedTest
    @MethodSource("backends")
    void fp8BlockAcrossTileAndTaskEdges(Backend backend) {
        SplittableRandom r = new SplittableRandom();
        try (Session s = new Session(backend)) {
            for (int m : new int[] {17, 255, 256, 257, 300})
                for (int n : new int[] {1, 31, 33, 130}) {
                    int k = m % 2 == 0 ? 128 : 384;
                    Comparison c = GemmChecks.fp8Block(s, r, m, n, k, m == 257, DType.F32, Fp8.ScaleLayout.ROW_MAJOR, 0);
                    assertTrue(c.passed(), () -> backend + " m=" + m + " n=" + n + " k=" + k + ": " + c);
                }
        }
    }

    /**
     * gemm.bf16 with values the AMX path must not take (subnormals, magnitudes outside [2^-50, 2^50],
     * Inf/NaN: the native code sends those to its AVX-512 fallback) and ordinary ones (the tiles), odd K.
     */
    @ParameterizedTest
    @MethodSource("backends")
    void bf16SubnormalHugeAndSpecialValues(Backend backend) {
        GemmChecks.Bf16Values[] kinds = GemmChecks.Bf16Values.values();
        try (Session s = new Session(backend)) {
            qt().withExamples(40).forAll(longs().all(), integers().between(0, MS.length - 1), integers().between(1, 150),
                    integers().between(0, 4 * kinds.length - 1)).checkAssert((seed, mi, n, opts) -> {
                        SplittableRandom r = new SplittableRandom(seed);
                        int m = MS[mi];
                        int k = new int[] {1, 33, 130, r.nextInt(1, 300)}[opts / kinds.length];
                        GemmChecks.Bf16Values kind = kinds[opts % kinds.length];
                        DType d = r.nextBoolean() ? DType.F32 : DType.BF16;
                        Comparison c = GemmChecks.bf16(s, r, m, n, k, r.nextBoolean(), d, kind);
                        assertTrue(c.passed(), () -> backend + " m=" + m + " n=" + n + " k=" + k + " " + d + " " + kind + ": " + c);
                    });
        }
    }

    /**
     * gemm.bf16 on ordinary values (on cpu/amx: the tile path) at every kind of tail of its blocking:
     * K not a multiple of 32 (a tile's K step) nor 128 (a block), M around 16-row tiles and the
     * 256-row task, N around the 16-row halves of its 32-row B panels.
     */
    @ParameterizedTest
    @MethodSource("backends")
    void bf16TileTailsAndOddK(Backend backend) {
        SplittableRandom r = new SplittableRandom();
        try (Session s = new Session(backend)) {
            for (int m : new int[] {1, 15, 17, 127, 129, 257})
                for (int n : new int[] {1, 17, 31, 33, 130})
                    for (int k : new int[] {1, 31, 33, 130, 255}) {
                        DType d = (m + n + k) % 2 == 0 ? DType.F32 : DType.BF16;
                        Comparison c = GemmChecks.bf16(s, r, m, n, k, k == 33, d);
                        assertTrue(c.passed(), () -> backend + " m=" + m + " n=" + n + " k=" + k + " " + d + ": " + c);
                    }
        }
    }

    // ------------------------------------------------------------------ gemm.f32

    /** M: 0, the decode path's 1..8 and its edge, the outer path's panel and block edges, a larger one. */
    private static final int[] F32_MS = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 63, 64, 65, 200};

    /** N: 0, 1, odd ones around the decode tiles (3, 6, 8 rows) and task units (48 rows), 130, random. */
    private static int f32N(SplittableRandom r) {
        return switch (r.nextInt(6)) {
            case 0 -> 0;
            case 1 -> 1;
            case 2 -> new int[] {3, 7, 47, 49, 97}[r.nextInt(5)];
            case 3 -> 130;
            default -> r.nextInt(1, 160);
        };
    }

    /** K: 0, 1, odd ones (lane tails of 8 and 16), 255, 1024, random up to 600. */
    private static int f32K(SplittableRandom r) {
        return switch (r.nextInt(7)) {
            case 0 -> 0;
            case 1 -> 1;
            case 2 -> new int[] {7, 15, 17, 31, 129}[r.nextInt(5)];
            case 3 -> 255;
            case 4 -> 1024;
            default -> r.nextInt(1, 600);
        };
    }

    @ParameterizedTest
    @MethodSource("backends")
    void f32RandomShapesBothWeightDtypes(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(60).forAll(longs().all(), integers().between(0, F32_MS.length - 1), integers().between(0, 3))
                    .checkAssert((seed, mi, opts) -> {
                        SplittableRandom r = new SplittableRandom(seed);
                        int m = F32_MS[mi], n = f32N(r), k = f32K(r);
                        if ((long) m * n * k > 30_000_000L) k = 255; // keep the double reference quick
                        boolean bf16 = (opts & 1) != 0, withC = (opts & 2) != 0;
                        int kk = k;
                        Comparison c = GemmChecks.f32(s, r, m, n, k, bf16, withC);
                        assertTrue(c.passed(), () -> backend + " m=" + m + " n=" + n + " k=" + kk + " b=" + (bf16 ? "bf16" : "f32")
                                + " c=" + withC + ": " + c);
                    });
        }
    }

    /** NaN/Inf (NaN propagates), f32 subnormals (never flushed), huge terms: on every path, both weight dtypes. */
    @ParameterizedTest
    @MethodSource("backends")
    void f32SubnormalHugeAndSpecialValues(Backend backend) {
        GemmChecks.F32Values[] kinds = GemmChecks.F32Values.values();
        try (Session s = new Session(backend)) {
            qt().withExamples(50).forAll(longs().all(), integers().between(0, F32_MS.length - 1),
                    integers().between(0, 4 * kinds.length - 1)).checkAssert((seed, mi, opts) -> {
                        SplittableRandom r = new SplittableRandom(seed);
                        int m = F32_MS[mi], n = r.nextInt(1, 100);
                        int k = new int[] {1, 17, 255, r.nextInt(1, 400)}[opts / kinds.length];
                        GemmChecks.F32Values kind = kinds[opts % kinds.length];
                        boolean bf16 = r.nextBoolean(), withC = r.nextBoolean();
                        Comparison c = GemmChecks.f32(s, r, m, n, k, bf16, withC, kind);
                        assertTrue(c.passed(), () -> backend + " m=" + m + " n=" + n + " k=" + k + " b=" + (bf16 ? "bf16" : "f32")
                                + " c=" + withC + " " + kind + ": " + c);
                    });
        }
    }

    /** The model's shapes (q_a + kv_a projection, an expert's w2) at decode and prefill sizes. */
    @ParameterizedTest
    @MethodSource("backends")
    void f32DeepSeekShapes(Backend backend) {
        SplittableRandom r = new SplittableRandom();
        try (Session s = new Session(backend)) {
            for (int m : new int[] {1, 8, 65}) {
                boolean bf16 = m != 8;
                Comparison c = GemmChecks.f32(s, r, m, 97, 7168, bf16, m == 65);
                assertTrue(c.passed(), () -> backend + " m=" + m + " [97, 7168]: " + c);
            }
            Comparison c = GemmChecks.f32(s, r, 4, 300, 2048, true, true);
            assertTrue(c.passed(), () -> backend + " [4, 300, 2048]: " + c);
        }
    }

    /**
     * The cpu backends sum each element in a fixed order: the same bits with 1, 2 or 3 worker
     * threads (the tasks split N differently), on the decode (M <= 8) and the outer path.
     */
    @ParameterizedTest
    @MethodSource("backends")
    void f32SameBitsOnEveryThreadCount(Backend backend) {
        org.junit.jupiter.api.Assumptions.assumeFalse(backend.device() instanceof dev.dsk4j.Device.Cuda,
                "thread counts are a cpu matter (the CUDA kernels are checked for repeatability in every f32 case)");
        SplittableRandom r = new SplittableRandom();
        for (int[] shape : new int[][] {{1, 301, 777}, {3, 200, 1024}, {8, 97, 255}, {65, 130, 300}}) {
            int m = shape[0], n = shape[1], k = shape[2];
            boolean bf16 = r.nextBoolean();
            GemmChecks.F32Operands o = GemmChecks.f32Operands(r, m, n, k, bf16, true, GemmChecks.F32Values.ORDINARY);
            int[] first = null;
            for (int threads : new int[] {1, 2, 3}) {
                Backend b = new Backend(backend.name() + "/" + threads + "t", backend.device(), backend.options().withThreads(threads));
                try (Session s = new Session(b); Arena ar = Arena.ofConfined()) {
                    Tensor d = s.output(ar, DType.F32, m, n);
                    Tensor bt = bf16 ? Tensor.ofShorts(ar, DType.BF16, o.bBits(), n, k) : Tensor.ofFloats(ar, o.b(), n, k);
                    Gemm.f32(s.context(), d, Tensor.ofFloats(ar, o.a(), m, k), bt, Tensor.ofFloats(ar, o.c(), m, n));
                    int[] got = Fp8Checks.rawOf(d);
                    if (first == null) first = got;
                    String diff = GemmChecks.firstDifference(threads + " threads", first, got, n);
                    assertTrue(diff == null, () -> backend + " m=" + m + " n=" + n + " k=" + k + ": " + diff);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void f32BadArgumentsNameTheArgument(Backend backend) {
        try (Session s = new Session(backend); Arena a = Arena.ofConfined()) {
            var ctx = s.context();
            Tensor x = ctx.allocate(a, DType.F32, 4, 33), w = ctx.allocate(a, DType.BF16, 8, 33);
            Tensor d = ctx.allocate(a, DType.F32, 4, 8);
            var e = assertThrows(IllegalArgumentException.class, () -> Gemm.f32(ctx, d, ctx.allocate(a, DType.BF16, 4, 33), w, null));
            assertTrue(e.getMessage().contains("'a'"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> Gemm.f32(ctx, d, x, ctx.allocate(a, DType.F32, 8, 32), null));
            assertTrue(e.getMessage().contains("'b'"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> Gemm.f32(ctx, d, x, ctx.allocate(a, DType.E4M3, 8, 33), null));
            assertTrue(e.getMessage().contains("'b'"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> Gemm.f32(ctx, ctx.allocate(a, DType.F32, 8, 4), x, w, null));
            assertTrue(e.getMessage().contains("'d'"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> Gemm.f32(ctx, d, x, w, ctx.allocate(a, DType.F32, 4, 9)));
            assertTrue(e.getMessage().contains("'c'"), e.getMessage());
            Tensor out = Gemm.f32(ctx, a, x, w); // the allocating form: f32 [4, 8] on the context
            assertTrue(out.dtype() == DType.F32 && out.dim(0) == 4 && out.dim(1) == 8, out::toString);
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void groupedContiguousWithEmptyAndAlignedGroups(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(25).forAll(longs().all(), integers().between(1, 6), integers().between(1, 200),
                    integers().between(0, 3)).checkAssert((seed, groups, n, opts) -> {
                        SplittableRandom r = new SplittableRandom(seed);
                        int[] sizes = new int[groups];
                        for (int g = 0; g < groups; g++) sizes[g] = r.nextInt(4) == 0 ? 0 : r.nextInt(1, 40);
                        int k = 128 * r.nextInt(1, 4);
                        DType d = (opts & 1) == 0 ? DType.F32 : DType.BF16;
                        Comparison c = GemmChecks.groupedContiguous(s, r, sizes, (opts & 2) != 0, n, k, d);
                        assertTrue(c.passed(), () -> backend + " sizes=" + java.util.Arrays.toString(sizes) + " n=" + n + " k=" + k
                                + " " + d + ": " + c);
                    });
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void groupedMaskedSkipsRowsPastTheCount(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(25).forAll(longs().all(), integers().between(1, 5), integers().between(0, 20),
                    integers().between(1, 200)).checkAssert((seed, groups, mMax, n) -> {
                        SplittableRandom r = new SplittableRandom(seed);
                        int[] masked = new int[groups];
                        for (int g = 0; g < groups; g++) masked[g] = r.nextInt(3) == 0 ? (r.nextBoolean() ? 0 : mMax) : r.nextInt(mMax + 1);
                        int k = 128 * r.nextInt(1, 4);
                        DType d = r.nextBoolean() ? DType.F32 : DType.BF16;
                        Comparison c = GemmChecks.groupedMasked(s, r, masked, mMax, n, k, d);
                        assertTrue(c.passed(), () -> backend + " masked=" + java.util.Arrays.toString(masked) + " mMax=" + mMax
                                + " n=" + n + " k=" + k + ": " + c);
                    });
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void badArgumentsNameTheArgument(Backend backend) {
        try (Session s = new Session(backend); Arena a = Arena.ofConfined()) {
            var ctx = s.context();
            Tensor x = ctx.allocate(a, DType.E4M3, 4, 200), xs = ctx.allocate(a, DType.F32, 4, 2);
            Tensor w = ctx.allocate(a, DType.E4M3, 8, 200), ws = ctx.allocate(a, DType.F32, 1, 2);
            Tensor d = ctx.allocate(a, DType.F32, 4, 8);
            var e = assertThrows(IllegalArgumentException.class, () -> Gemm.fp8Block(ctx, d, x, xs, w, ws));
            assertTrue(e.getMessage().contains("'a'"), e.getMessage());
            Tensor x2 = ctx.allocate(a, DType.E4M3, 4, 256), w2 = ctx.allocate(a, DType.E4M3, 8, 128);
            e = assertThrows(IllegalArgumentException.class, () -> Gemm.fp8Block(ctx, d, x2, xs, w2, ws));
            assertTrue(e.getMessage().contains("'b'"), e.getMessage());
            if (!ctx.isCuda()) { // the cpu backend checks offsets (on CUDA they live in device memory and are clamped)
                Tensor b3 = ctx.allocate(a, DType.E4M3, 2, 8, 256), b3s = ctx.allocate(a, DType.F32, 2, 1, 2);
                Tensor offs = Tensor.ofInts(a, new int[] {0, 3, 2}, 3);
                var ne = assertThrows(Dsk4jException.class, () -> Gemm.fp8GroupedContiguous(ctx, d, x2, xs, b3, b3s, offs));
                assertTrue(ne.getMessage().contains("group_offsets"), ne.getMessage());
            }
        }
    }
}
