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
