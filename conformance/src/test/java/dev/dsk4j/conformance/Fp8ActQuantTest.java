package dev.dsk4j.conformance;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.longs;

import dev.dsk4j.DType;
import dev.dsk4j.Fp8;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import dev.dsk4j.Fp8.ScaleFormat;
import dev.dsk4j.Fp8.ScaleLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** fp8.act_quant on every backend against {@link Fp8Reference}: codes and scales bit-exact. */
@ExtendWith(Backends.SkipUnavailable.class)
class Fp8ActQuantTest {
    static java.util.stream.Stream<Backend> backends() { return Backends.withMissing(); }

    @ParameterizedTest
    @MethodSource("backends")
    void randomShapesValuesAndOptions(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(80).forAll(longs().all(), integers().between(0, 40), integers().between(1, 12),
                    integers().between(0, 15)).checkAssert((seed, rows, groups, opts) -> {
                        SplittableRandom r = new SplittableRandom(seed);
                        int k = groups * 128;
                        double specialRate = r.nextInt(3) == 0 ? 0 : r.nextDouble(0.05);
                        float[] x = Values.activations(r, rows * k, specialRate);
                        DType xType = (opts & 1) == 0 ? DType.F32 : DType.BF16;
                        ScaleFormat fmt = (opts & 2) == 0 ? ScaleFormat.F32 : ScaleFormat.UE8M0;
                        ScaleLayout layout = (opts & 4) == 0 ? ScaleLayout.ROW_MAJOR : ScaleLayout.COLUMN_MAJOR;
                        int pad = (opts & 8) == 0 ? 0 : 1 + r.nextInt(4);
                        for (Comparison c : Fp8Checks.actQuant(s, x, rows, k, xType, fmt, layout, pad))
                            assertTrue(c.passed(), () -> backend + " rows=" + rows + " k=" + k + " " + xType + " " + fmt
                                    + " " + layout + ": " + c);
                    });
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void kNotAMultipleOf128IsAnErrorNamingX(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(30).forAll(integers().between(0, 5), integers().between(1, 2000))
                    .assuming((rows, k) -> k % 128 != 0).checkAssert((rows, k) -> {
                        try (Arena a = Arena.ofConfined()) {
                            Tensor x = s.input(a, Tensor.allocate(a, DType.F32, rows, k));
                            var e = assertThrows(IllegalArgumentException.class,
                                    () -> Fp8.actQuant(s.context(), a, x, Fp8.ActQuantOptions.defaults()));
                            assertTrue(e.getMessage().contains("'x'"), e.getMessage());
                        }
                    });
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void deepSeekV3HiddenSize(Backend backend) {
        SplittableRandom r = new SplittableRandom();
        int rows = 33, k = 7168;
        float[] x = Values.activations(r, rows * k, 0.001);
        try (Session s = new Session(backend)) {
            for (ScaleFormat fmt : ScaleFormat.values())
                for (Comparison c : Fp8Checks.actQuant(s, x, rows, k, DType.BF16, fmt, ScaleLayout.ROW_MAJOR, 0))
                    assertTrue(c.passed(), () -> backend + ": " + c);
        }
    }
}
