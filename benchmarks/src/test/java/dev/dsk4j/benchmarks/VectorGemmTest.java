package dev.dsk4j.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsk4j.conformance.GemmReference;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * VectorGemm (the Vector API peer of the GEMM benchmarks) agrees with GemmReference (double
 * precision) within 1e-5 relative Frobenius error, on both of its paths (small m fused decode,
 * larger m decoded panels), with partial tiles in m and n, partial 128-row scale blocks, K
 * spanning several KC panels, and an expert offset into a grouped weight.
 */
class VectorGemmTest {

    static final double TOL = 1e-5;

    /** Random finite e4m3 codes (no NaN: 0x7f/0xff become 0x7e/0xfe), zeros and subnormals included. */
    static byte[] codes(SplittableRandom r, int n) {
        byte[] c = new byte[n];
        for (int i = 0; i < n; i++) {
            int v = r.nextInt(256);
            if ((v & 0x7f) == 0x7f) v &= 0xfe;
            c[i] = (byte) v;
        }
        return c;
    }

    static float[] scales(SplittableRandom r, int n) {
        float[] s = new float[n];
        for (int i = 0; i < n; i++) s[i] = (float) (Math.pow(2, r.nextDouble(-12, 2)) * (1 + r.nextDouble()));
        return s;
    }

    static double relFrobenius(float[] got, double[] ref) {
        double num = 0, den = 0;
        for (int i = 0; i < ref.length; i++) {
            assertTrue(Float.isFinite(got[i]), "element " + i + " is " + got[i]);
            double e = got[i] - ref[i];
            num += e * e;
            den += ref[i] * ref[i];
        }
        return den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
    }

    static void check(int m, int n, int k, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int kb = k / 128, nb = (n + 127) / 128;
        byte[] a = codes(r, m * k), b = codes(r, n * k);
        float[] as = scales(r, m * kb), bs = scales(r, nb * kb);
        float[] d = new float[m * n];
        Arrays.fill(d, Float.NaN); // an unwritten element fails
        VectorGemm.fp8Block(a, as, b, bs, d, m, n, k);
        GemmReference.Result ref = GemmReference.fp8Block(a, as, b, bs, null, m, n, k);
        double err = relFrobenius(d, ref.value());
        assertTrue(err <= TOL, "m=" + m + " n=" + n + " k=" + k + ": relative Frobenius error " + err + " > " + TOL);
    }

    @Test
    void smallM() {
        long seed = 1;
        for (int m : new int[] {1, 2, 3, 4, 5, 8})
            for (int n : new int[] {1, 7, 130})
                for (int k : new int[] {128, 384}) check(m, n, k, seed++);
    }

    @Test
    void panels() {
        long seed = 100;
        for (int m : new int[] {9, 16, 19})
            for (int n : new int[] {3, 64, 131})
                for (int k : new int[] {128, 1024 + 256}) check(m, n, k, seed++);
    }

    @Test
    void deepSeekLikeK() {
        check(1, 256, 7168, 7);
        check(16, 192, 2048, 8);
        check(33, 70, 7168, 9);
    }

    @Test
    void expertOffset() {
        SplittableRandom r = new SplittableRandom(11);
        int g = 3, m = 5, n = 200, k = 256, kb = k / 128, nb = (n + 127) / 128;
        byte[] a = codes(r, m * k), b = codes(r, g * n * k);
        float[] as = scales(r, m * kb), bs = scales(r, g * nb * kb);
        for (int e = 0; e < g; e++) {
            float[] d = new float[m * n];
            VectorGemm.fp8Block(a, as, b, e * n * k, bs, e * nb * kb, d, m, n, k);
            double[] out = new double[m * n], mag = new double[m * n];
            GemmReference.expert(a, as, b, bs, e, 0, m, n, k, out, mag);
            double err = relFrobenius(d, out);
            assertTrue(err <= TOL, "expert " + e + ": relative Frobenius error " + err);
        }
    }

    @Test
    void nanCodesPropagate() {
        int m = 2, n = 3, k = 128;
        byte[] a = new byte[m * k], b = new byte[n * k];
        Arrays.fill(a, (byte) 0x38); // 1.0
        Arrays.fill(b, (byte) 0x38);
        b[k + 5] = 0x7f; // NaN in row 1 of b
        float[] as = {1f, 1f}, bs = {1f};
        float[] d = new float[m * n];
        VectorGemm.fp8Block(a, as, b, bs, d, m, n, k);
        assertEquals(128f, d[0]);
        assertTrue(Float.isNaN(d[1]) && Float.isNaN(d[n + 1]));
        assertEquals(128f, d[n + 2]);
    }

    @Test
    void badArguments() {
        assertThrows(IllegalArgumentException.class,
                () -> VectorGemm.fp8Block(new byte[100], new float[1], new byte[100], new float[1], new float[1], 1, 1, 100));
        assertThrows(IllegalArgumentException.class,
                () -> VectorGemm.fp8Block(new byte[128], new float[1], new byte[127], new float[1], new float[1], 1, 1, 128));
    }
}
