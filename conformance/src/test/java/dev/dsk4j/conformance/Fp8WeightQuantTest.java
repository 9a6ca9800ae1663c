package dev.dsk4j.conformance;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.longs;

import dev.dsk4j.DType;
import dev.dsk4j.Fp8;
import dev.dsk4j.Fp8.ScaleFormat;
import java.util.SplittableRandom;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** fp8.weight_quant and fp8.weight_dequant on every backend (partial edge blocks included). */
@ExtendWith(Backends.SkipUnavailable.class)
class Fp8WeightQuantTest {
    static java.util.stream.Stream<Backend> backends() { return Backends.withMissing(); }

    @ParameterizedTest
    @MethodSource("backends")
    void weightQuantRandomShapes(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(40).forAll(longs().all(), integers().between(0, 300), integers().between(0, 300),
                    integers().between(0, 3)).checkAssert((seed, n, k, opts) -> {
                        SplittableRandom r = new SplittableRandom(seed);
                        float[] w = Values.activations(r, n * k, r.nextInt(3) == 0 ? 0 : 0.01);
                        DType wType = (opts & 1) == 0 ? DType.F32 : DType.BF16;
                        ScaleFormat fmt = (opts & 2) == 0 ? ScaleFormat.F32 : ScaleFormat.UE8M0;
                        for (Comparison c : Fp8Checks.weightQuant(s, w, n, k, wType, fmt))
                            assertTrue(c.passed(), () -> backend + " n=" + n + " k=" + k + " " + wType + " " + fmt + ": " + c);
                    });
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void weightDequantRandomShapes(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(40).forAll(longs().all(), integers().between(0, 300), integers().between(0, 300),
                    integers().between(0, 1)).checkAssert((seed, n, k, bf16) -> {
                        SplittableRandom r = new SplittableRandom(seed);
                        byte[] w = new byte[n * k];
                        for (int i = 0; i < w.length; i++) w[i] = (byte) r.nextInt(256); // NaN codes included
                        long[] ss = Fp8.blockScaleShape(n, k);
                        float[] scale = new float[(int) (ss[0] * ss[1])];
                        for (int i = 0; i < scale.length; i++)
                            scale[i] = r.nextInt(20) == 0 ? Values.special(r) : (float) Math.pow(2, r.nextDouble(-30, 30));
                        DType yType = bf16 == 0 ? DType.F32 : DType.BF16;
                        Comparison c = Fp8Checks.weightDequant(s, w, n, k, scale, yType);
                        assertTrue(c.passed(), () -> backend + " n=" + n + " k=" + k + " " + yType + ": " + c);
                    });
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void roundTripOfADeepSeekShapedWeight(Backend backend) {
        // [576, 7168]: the kv_a_proj_with_mqa weight; partial blocks in n (576 = 4.5 x 128).
        SplittableRandom r = new SplittableRandom();
        int n = 576, k = 7168;
        float[] w = new float[n * k];
        for (int i = 0; i < w.length; i++) w[i] = (float) (Values.gaussian(r) * 0.02);
        try (Session s = new Session(backend)) {
            for (Comparison c : Fp8Checks.weightQuant(s, w, n, k, DType.BF16, ScaleFormat.F32))
                assertTrue(c.passed(), () -> backend + ": " + c);
        }
    }
}
