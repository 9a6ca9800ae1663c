package dev.dsk4j.conformance;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.longs;

import dev.dsk4j.DType;
import java.util.SplittableRandom;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** fp8.cast on every backend against {@link Fp8Reference}: bit-exact. */
@ExtendWith(Backends.SkipUnavailable.class)
class Fp8CastTest {
    static java.util.stream.Stream<Backend> backends() { return Backends.withMissing(); }

    private static final DType[] FLOATS = {DType.F32, DType.BF16, DType.F16};
    private static final DType[] FP8S = {DType.E4M3, DType.E5M2};

    /** Random raw elements of {@code from}: specials, midpoints and arbitrary bit patterns. */
    static int[] rawInputs(SplittableRandom r, DType from, int n) {
        int[] raw = new int[n];
        for (int i = 0; i < n; i++) {
            float v = r.nextInt(3) == 0 ? Float.intBitsToFloat(r.nextInt()) : Values.special(r);
            raw[i] = switch (from) {
                case F32 -> Float.floatToRawIntBits(v);
                case BF16 -> r.nextBoolean() ? r.nextInt(0x10000) : Fp8Reference.floatToBf16(v) & 0xffff;
                case F16 -> r.nextBoolean() ? r.nextInt(0x10000) : Fp8Reference.floatToF16(v) & 0xffff;
                default -> r.nextInt(0x100);
            };
        }
        return raw;
    }

    @ParameterizedTest
    @MethodSource("backends")
    void floatToFp8RandomInputs(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(60).forAll(longs().all(), integers().between(0, 3000), integers().between(0, 5))
                    .checkAssert((seed, n, pair) -> {
                        DType from = FLOATS[pair % 3], to = FP8S[pair / 3];
                        Comparison c = Fp8Checks.cast(s, from, to, rawInputs(new SplittableRandom(seed), from, n));
                        assertTrue(c.passed(), () -> backend + ": " + c);
                    });
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void every16BitInputToFp8(Backend backend) {
        int[] all = new int[1 << 16];
        for (int i = 0; i < all.length; i++) all[i] = i;
        try (Session s = new Session(backend)) {
            for (DType from : new DType[] {DType.BF16, DType.F16})
                for (DType to : FP8S) {
                    Comparison c = Fp8Checks.cast(s, from, to, all);
                    assertTrue(c.passed(), () -> backend + ": " + c);
                }
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void everyFp8CodeToFloat(Backend backend) {
        int[] all = new int[256];
        for (int i = 0; i < all.length; i++) all[i] = i;
        try (Session s = new Session(backend)) {
            for (DType from : FP8S)
                for (DType to : FLOATS) {
                    Comparison c = Fp8Checks.cast(s, from, to, all);
                    assertTrue(c.passed(), () -> backend + ": " + c);
                }
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void everyF32ExponentAndSignWithRandomMantissas(Backend backend) {
        // 512 sign/exponent combinations x 64 mantissas each, incl. the two extremes.
        int[] raw = new int[512 * 64];
        SplittableRandom r = new SplittableRandom();
        for (int se = 0; se < 512; se++)
            for (int j = 0; j < 64; j++)
                raw[se * 64 + j] = (se << 23) | (j == 0 ? 0 : j == 1 ? 0x7fffff : r.nextInt(0x800000));
        try (Session s = new Session(backend)) {
            for (DType to : FP8S) {
                Comparison c = Fp8Checks.cast(s, DType.F32, to, raw);
                assertTrue(c.passed(), () -> backend + ": " + c);
            }
        }
    }
}
