package dev.dsk4j.conformance;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.longs;

import dev.dsk4j.DType;
import dev.dsk4j.Dsk4jException;
import dev.dsk4j.Rope;
import dev.dsk4j.Status;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** rope.yarn_table and rope.apply on every backend against {@link RopeReference} (tolerances: {@link RopeChecks}). */
@ExtendWith(Backends.SkipUnavailable.class)
class RopeTest {
    static java.util.stream.Stream<Backend> backends() { return Backends.withMissing(); }

    private static final Rope.YarnConfig V3 = Rope.YarnConfig.deepSeekV3();

    @Test
    void deepSeekV3Constants() {
        assertArrayEquals(new double[] {10, 23}, V3.correctionRange());
        assertArrayEquals(new double[] {10, 23}, RopeReference.correctionRange(64, 1e4, 4096, 32, 1));
        double scale = Rope.mlaSoftmaxScale(128, 64, V3, 1.0);
        assertEquals(0.1352338, scale, 5e-8);
        assertEquals(RopeReference.mlaSoftmaxScale(128, 64, 40, 1, true), scale, 1e-15);
        assertTrue(Math.abs(scale - Math.pow(576, -0.5)) > 0.09, "not 576^-0.5");
        // without YaRN (max <= original) the scale is the plain 1/sqrt(d)
        assertEquals(Math.pow(192, -0.5), Rope.mlaSoftmaxScale(128, 64, V3.withMaxSeqLen(4096), 1.0), 1e-15);
        // the frequencies: i < 10 unscaled, i > 23 divided by the factor, a linear ramp between
        double[] f = RopeReference.freqs(V3);
        assertEquals(Math.pow(1e4, -2.0 * 3 / 64), f[3], 1e-15);
        assertEquals(Math.pow(1e4, -2.0 * 30 / 64) / 40, f[30], 1e-18);
        double ramp = (15 - 10) / 13.0, f15 = Math.pow(1e4, -30.0 / 64);
        assertEquals(f15 / 40 * ramp + f15 * (1 - ramp), f[15], 1e-16);
    }

    @ParameterizedTest
    @MethodSource("backends")
    void deepSeekV3Table(Backend backend) {
        try (Session s = new Session(backend)) {
            Comparison c = RopeChecks.table(s, V3);
            assertTrue(c.passed(), () -> backend + ": " + c);
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void tableRandomConfigs(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(30).forAll(longs().all()).checkAssert(seed -> {
                Rope.YarnConfig c = RopeChecks.randomConfig(new SplittableRandom(seed));
                Comparison cmp = RopeChecks.table(s, c);
                assertTrue(cmp.passed(), () -> backend + " " + c + ": " + cmp);
            });
        }
    }

    /** q_pe [T, H, 64] and k_pe [T, 64] on DeepSeek-V3's table: random T (0 and 1 included), H, both layouts and dtypes. */
    @ParameterizedTest
    @MethodSource("backends")
    void applyDeepSeekV3(Backend backend) {
        int[] ts = {0, 1, 2, 3, 7, 16, 33};
        try (Session s = new Session(backend)) {
            qt().withExamples(60).forAll(longs().all(), integers().between(0, ts.length - 1), integers().between(0, 20),
                    integers().between(0, 7)).checkAssert((seed, ti, heads, opts) -> {
                        SplittableRandom r = new SplittableRandom(seed);
                        int t = ts[ti];
                        Rope.Layout layout = (opts & 1) == 0 ? Rope.Layout.INTERLEAVED : Rope.Layout.NEOX;
                        DType d = (opts & 2) == 0 ? DType.F32 : DType.BF16;
                        boolean inPlace = (opts & 4) != 0;
                        for (Comparison c : RopeChecks.apply(s, r, V3, t, heads, layout, d, inPlace))
                            assertTrue(c.passed(), () -> backend + " T=" + t + " H=" + heads + " " + layout + " " + d
                                    + (inPlace ? " in place" : "") + ": " + c);
                    });
        }
    }

    /** Random configurations: dims with SIMD tails (2, 6, 18, ...), small tables, YaRN on and off. */
    @ParameterizedTest
    @MethodSource("backends")
    void applyRandomConfigs(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(50).forAll(longs().all(), integers().between(0, 40), integers().between(0, 5),
                    integers().between(0, 7)).checkAssert((seed, t, heads, opts) -> {
                        SplittableRandom r = new SplittableRandom(seed);
                        Rope.YarnConfig c = RopeChecks.randomConfig(r);
                        Rope.Layout layout = (opts & 1) == 0 ? Rope.Layout.INTERLEAVED : Rope.Layout.NEOX;
                        DType d = (opts & 2) == 0 ? DType.F32 : DType.BF16;
                        boolean inPlace = (opts & 4) != 0;
                        for (Comparison cmp : RopeChecks.apply(s, r, c, t, heads, layout, d, inPlace))
                            assertTrue(cmp.passed(), () -> backend + " " + c + " T=" + t + " H=" + heads + " " + layout + " " + d
                                    + (inPlace ? " in place" : "") + ": " + cmp);
                    });
        }
    }

    /** In place and out of place give the same bits (both are also checked against the f32 formula above). */
    @ParameterizedTest
    @MethodSource("backends")
    void inPlaceEqualsOutOfPlace(Backend backend) {
        SplittableRandom r = new SplittableRandom();
        try (Session s = new Session(backend); Arena a = Arena.ofConfined()) {
            var ctx = s.context();
            Rope.Table table = Rope.table(ctx, V3);
            for (DType d : new DType[] {DType.F32, DType.BF16})
                for (Rope.Layout layout : Rope.Layout.values()) {
                    int t = 37, h = 128;
                    float[] x = RopeChecks.values(r, t * h * 64);
                    int[] pos = RopeChecks.positions(r, t, V3.maxSeqLen());
                    Tensor x1 = s.input(a, Fp8Checks.hostInput(a, x, d, t, h, 64));
                    Tensor x2 = s.input(a, Fp8Checks.hostInput(a, x, d, t, h, 64));
                    Tensor p = s.input(a, Tensor.ofInts(a, pos, t));
                    Tensor y = Rope.apply(ctx, a, x1, p, table, layout);
                    Rope.applyInPlace(ctx, x2, p, table, layout);
                    assertArrayEquals(Fp8Checks.rawOf(s.toHost(a, y)), Fp8Checks.rawOf(s.toHost(a, x2)), backend + " " + d + " " + layout);
                }
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void tableIsCachedPerConfiguration(Backend backend) {
        try (Session s = new Session(backend)) {
            Rope.Table a = Rope.table(s.context(), V3), b = Rope.table(s.context(), Rope.YarnConfig.deepSeekV3());
            assertSame(a, b);
            Rope.Table c = Rope.table(s.context(), V3.withMaxSeqLen(100));
            assertEquals(100, c.cos().dim(0));
            assertTrue(a != c);
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void positionsOutOfRangeAreAnError(Backend backend) {
        Rope.YarnConfig c = V3.withMaxSeqLen(300);
        try (Session s = new Session(backend); Arena a = Arena.ofConfined()) {
            var ctx = s.context();
            Rope.Table table = Rope.table(ctx, c);
            for (int bad : new int[] {300, 301, Integer.MAX_VALUE, -1, Integer.MIN_VALUE})
                for (boolean inPlace : new boolean[] {false, true}) {
                    Tensor x = s.input(a, Fp8Checks.hostInput(a, RopeChecks.values(new SplittableRandom(1), 4 * 2 * 64), DType.F32, 4, 2, 64));
                    int[] before = Fp8Checks.rawOf(s.toHost(a, x));
                    Tensor y = s.output(a, DType.F32, 4, 2, 64);
                    Tensor p = s.input(a, Tensor.ofInts(a, new int[] {0, 299, bad, 5}, 4));
                    var e = assertThrows(Dsk4jException.class,
                            () -> Rope.apply(ctx, inPlace ? x : y, x, p, table, Rope.Layout.INTERLEAVED));
                    assertEquals(Status.INVALID_ARGUMENT, e.status());
                    assertTrue(e.getMessage().contains("'positions'") && e.getMessage().contains("entry 2"), e.getMessage());
                    // nothing was written
                    assertArrayEquals(before, Fp8Checks.rawOf(s.toHost(a, x)));
                    if (!inPlace) assertTrue(java.util.Arrays.stream(Fp8Checks.rawOf(s.toHost(a, y))).allMatch(v -> v == 0xffffffff));
                }
            // the largest valid position works
            Tensor x = s.input(a, Fp8Checks.hostInput(a, new float[64], DType.F32, 1, 64));
            Rope.applyInPlace(ctx, x, s.input(a, Tensor.ofInts(a, new int[] {299}, 1)), table, Rope.Layout.NEOX);
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void badArgumentsNameTheArgument(Backend backend) {
        try (Session s = new Session(backend); Arena a = Arena.ofConfined()) {
            var ctx = s.context();
            Rope.Table table = Rope.table(ctx, V3.withMaxSeqLen(16));
            Tensor x = ctx.allocate(a, DType.F32, 3, 4, 64), p = ctx.allocate(a, DType.I32, 3);
            ctx.fill(p, 0);
            List<Runnable> calls = List.of(
                    () -> Rope.apply(ctx, ctx.allocate(a, DType.BF16, 3, 4, 64), x, p, table, Rope.Layout.NEOX),
                    () -> Rope.apply(ctx, ctx.allocate(a, DType.F32, 3, 4, 32), ctx.allocate(a, DType.F32, 3, 4, 32), p, table,
                            Rope.Layout.NEOX),
                    () -> Rope.applyInPlace(ctx, x, ctx.allocate(a, DType.I32, 4), table, Rope.Layout.NEOX),
                    () -> Rope.applyInPlace(ctx, x, ctx.allocate(a, DType.F32, 3), table, Rope.Layout.NEOX),
                    () -> Rope.applyInPlace(ctx, ctx.allocate(a, DType.E4M3, 3, 4, 64), p, table, Rope.Layout.NEOX),
                    () -> Rope.yarnTable(ctx, ctx.allocate(a, DType.F32, 16, 31), ctx.allocate(a, DType.F32, 16, 32), V3.withMaxSeqLen(16)));
            String[] names = {"'y'", "'x'", "'positions'", "'positions'", "'x'", "'cos'"};
            for (int i = 0; i < calls.size(); i++) {
                Runnable call = calls.get(i);
                var e = assertThrows(IllegalArgumentException.class, call::run);
                assertTrue(e.getMessage().contains(names[i]), i + ": " + e.getMessage());
            }
            var e = assertThrows(IllegalArgumentException.class, () -> new Rope.YarnConfig(63, 1e4, 40, 4096, 16384, 32, 1));
            assertTrue(e.getMessage().contains("'dim'"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> new Rope.YarnConfig(64, 1, 40, 4096, 16384, 32, 1));
            assertTrue(e.getMessage().contains("'theta'"), e.getMessage());
            // an output overlapping the input (but not equal to it) is refused by the native checks
            Tensor big = ctx.allocate(a, DType.F32, 2 * 3 * 4 * 64);
            var ne = assertThrows(Dsk4jException.class, () -> Rope.apply(ctx, big.slice(64, 64 + 3 * 4 * 64).reshape(3, 4, 64),
                    big.slice(0, 3 * 4 * 64).reshape(3, 4, 64), p, table, Rope.Layout.INTERLEAVED));
            assertTrue(ne.getMessage().contains("overlap"), ne.getMessage());
        }
    }
}
