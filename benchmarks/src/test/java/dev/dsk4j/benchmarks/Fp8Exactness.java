package dev.dsk4j.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dev.dsk4j.conformance.Fp8Reference;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Bit-exactness checks of a fast fp8 implementation (JavaFp8 or VectorFp8) against
 * Fp8Reference: conversions on every bf16-derived f32, midpoints and their neighbours, random
 * bit patterns and specials; act_quant, weight_quant and weight_dequant (one thread and all
 * cores) on random data with NaN, Inf, zeros, subnormals, all-zero and all-NaN groups and
 * partial edge blocks. Plain static methods so that a child JVM can run them too
 * (VectorFp8CheckMain).
 */
final class Fp8Exactness {
    private Fp8Exactness() {}

    /** The operations under test. */
    interface Impl {
        String name();
        void encode(float[] x, byte[] y, int n);
        void decode(byte[] w, float[] y, int n);
        void actQuant(boolean parallel, float[] x, int rows, int k, byte[] y, float[] scale);
        void weightQuant(boolean parallel, float[] w, int n, int k, byte[] y, float[] scaleInv);
        void weightDequant(boolean parallel, byte[] w, int n, int k, float[] scaleInv, float[] y);
    }

    static final Impl JAVA = new Impl() {
        public String name() { return "JavaFp8"; }
        public void encode(float[] x, byte[] y, int n) { JavaFp8.encode(x, y, n); }
        public void decode(byte[] w, float[] y, int n) { JavaFp8.decode(w, y, n); }
        public void actQuant(boolean p, float[] x, int rows, int k, byte[] y, float[] s) {
            if (p) JavaFp8.actQuantParallel(x, rows, k, y, s); else JavaFp8.actQuant(x, rows, k, y, s);
        }
        public void weightQuant(boolean p, float[] w, int n, int k, byte[] y, float[] s) {
            if (p) JavaFp8.weightQuantParallel(w, n, k, y, s); else JavaFp8.weightQuant(w, n, k, y, s);
        }
        public void weightDequant(boolean p, byte[] w, int n, int k, float[] s, float[] y) {
            if (p) JavaFp8.weightDequantParallel(w, n, k, s, y); else JavaFp8.weightDequant(w, n, k, s, y);
        }
    };

    /** Runs every check; throws AssertionError on the first difference. */
    static void checkAll(Impl impl) {
        checkEncode(impl);
        checkDecode(impl);
        checkActQuant(impl);
        checkWeightQuant(impl);
        checkWeightDequant(impl);
    }

    // ------------------------------------------------------------------ inputs

    /** Every f32 whose low 16 bits are zero (all 2^16 bf16 values, NaN/Inf/±0/subnormals included). */
    static float[] allBf16() {
        float[] x = new float[1 << 16];
        for (int i = 0; i < x.length; i++) x[i] = Float.intBitsToFloat(i << 16);
        return x;
    }

    /** Each e4m3 value, each midpoint between neighbours (and past 448), each +-1 and +-2 ulp, both signs. */
    static float[] midpoints() {
        List<Float> v = new ArrayList<>();
        float[] vals = new float[127];
        for (int c = 0; c <= 0x7e; c++) vals[c] = Fp8Reference.e4m3ToFloat((byte) c);
        for (int c = 0; c <= 0x7e; c++) {
            float hi = c < 0x7e ? vals[c + 1] : 480f; // 480: where the next code would be
            float mid = (vals[c] + hi) / 2; // exact: short binary fractions
            for (float base : new float[] {vals[c], mid}) {
                int b = Float.floatToRawIntBits(base);
                for (int d = -2; d <= 2; d++) {
                    float f = Float.intBitsToFloat(b + d);
                    v.add(f);
                    v.add(-f);
                }
            }
        }
        for (float f : new float[] {0f, -0f, Float.MIN_VALUE, -Float.MIN_VALUE, Float.MIN_NORMAL, 0x1p-10f, 0x1p-11f,
                0x1.8p-10f, 0x1p-6f, Math.nextDown(0x1p-6f), 0x0.fp-6f, 464f, Math.nextDown(464f), Math.nextUp(464f), 480f,
                1e6f, Float.MAX_VALUE, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN,
                Float.intBitsToFloat(0xffc00000), Float.intBitsToFloat(0x7f800001), Float.intBitsToFloat(0xff800001)}) {
            v.add(f);
            v.add(-f);
        }
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) out[i] = v.get(i);
        return out;
    }

    /** Random activations: per-group magnitudes from 1e-12 to 1e12, with specials sprinkled in. */
    static float[] randomActivations(SplittableRandom r, int n) {
        float[] x = new float[n];
        for (int g = 0; g < n; g += 128) {
            int kind = r.nextInt(12);
            float mag = (float) Math.pow(10, r.nextDouble(-12, 12));
            for (int i = g; i < Math.min(n, g + 128); i++) {
                float v = (float) (r.nextGaussian() * mag);
                switch (kind) {
                    case 0 -> v = 0f; // an all-zero group: amax -> 1e-4
                    case 1 -> v = Float.NaN; // an all-NaN group
                    case 2 -> v = Float.intBitsToFloat(r.nextInt()); // any bit pattern
                    case 3 -> v = r.nextInt(4) == 0 ? Float.intBitsToFloat(r.nextInt(0x800000) | (r.nextBoolean() ? 0x80000000 : 0)) : v; // f32 subnormals
                    default -> { }
                }
                int special = r.nextInt(200);
                if (special == 0) v = Float.NaN;
                else if (special == 1) v = r.nextBoolean() ? Float.POSITIVE_INFINITY : Float.NEGATIVE_INFINITY;
                else if (special == 2) v = r.nextBoolean() ? 0f : -0f;
                x[i] = v;
            }
        }
        return x;
    }

    // ------------------------------------------------------------------ checks

    static void checkEncode(Impl impl) {
        SplittableRandom r = new SplittableRandom(1);
        float[] rnd = new float[1 << 20];
        for (int i = 0; i < rnd.length; i++) rnd[i] = Float.intBitsToFloat(r.nextInt());
        float[] small = new float[1 << 18]; // dense around the e4m3 range
        for (int i = 0; i < small.length; i++) small[i] = (float) ((r.nextBoolean() ? 1 : -1) * Math.pow(2, r.nextDouble(-14, 10)));
        for (float[] x : new float[][] {allBf16(), midpoints(), rnd, small}) {
            byte[] y = new byte[x.length];
            impl.encode(x, y, x.length);
            for (int i = 0; i < x.length; i++) {
                byte want = Fp8Reference.floatToE4m3(x[i]);
                if (y[i] != want)
                    fail(impl.name() + " e4m3(" + x[i] + " = 0x" + Integer.toHexString(Float.floatToRawIntBits(x[i]))
                            + "): got 0x" + Integer.toHexString(y[i] & 0xff) + ", want 0x" + Integer.toHexString(want & 0xff));
            }
        }
    }

    static void checkDecode(Impl impl) {
        byte[] w = new byte[256 + 37]; // not a multiple of the vector length: the tail too
        for (int i = 0; i < w.length; i++) w[i] = (byte) i;
        float[] y = new float[w.length];
        impl.decode(w, y, w.length);
        for (int i = 0; i < w.length; i++)
            assertBits(Fp8Reference.e4m3ToFloat(w[i]), y[i], impl.name() + " decode 0x" + Integer.toHexString(w[i] & 0xff));
    }

    static void checkActQuant(Impl impl) {
        SplittableRandom r = new SplittableRandom(2);
        int[][] shapes = {{1, 128}, {3, 384}, {7, 1024}, {1, 7168}, {64, 2048}, {512, 128}};
        for (int[] sh : shapes) {
            int rows = sh[0], k = sh[1];
            float[] x = randomActivations(r, rows * k);
            actQuantCase(impl, x, rows, k);
        }
        // every bf16-derived value, as 512 groups of 128
        actQuantCase(impl, allBf16(), 512, 128);
        // the same values shuffled, so that each group mixes magnitudes
        float[] sh = allBf16();
        for (int i = sh.length - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            float t = sh[i]; sh[i] = sh[j]; sh[j] = t;
        }
        actQuantCase(impl, sh, 64, 1024);
    }

    static void actQuantCase(Impl impl, float[] x, int rows, int k) {
        byte[] wantY = new byte[rows * k];
        float[] wantS = new float[rows * k / 128];
        Fp8Reference.actQuant(x, rows, k, false, wantY, wantS);
        for (boolean par : new boolean[] {false, true}) {
            byte[] y = new byte[rows * k];
            float[] s = new float[rows * k / 128];
            Arrays.fill(y, (byte) 0x55);
            impl.actQuant(par, x, rows, k, y, s);
            String what = impl.name() + " act_quant [" + rows + ", " + k + "]" + (par ? " all cores" : " one thread");
            for (int i = 0; i < s.length; i++) assertBits(wantS[i], s[i], what + " scale[" + i + "]");
            for (int i = 0; i < y.length; i++)
                if (y[i] != wantY[i])
                    fail(what + " y[" + i + "] for x = " + x[i] + " / " + wantS[i / 128] + ": got 0x"
                            + Integer.toHexString(y[i] & 0xff) + ", want 0x" + Integer.toHexString(wantY[i] & 0xff));
        }
    }

    static void checkWeightQuant(Impl impl) {
        SplittableRandom r = new SplittableRandom(3);
        int[][] shapes = {{1, 1}, {128, 128}, {200, 300}, {257, 129}, {130, 1000}, {384, 512}, {3, 7168}};
        for (int[] sh : shapes) {
            int n = sh[0], k = sh[1];
            float[] w = randomActivations(r, n * k);
            int nb = (n + 127) / 128, kb = (k + 127) / 128;
            byte[] wantY = new byte[n * k];
            float[] wantS = new float[nb * kb];
            Fp8Reference.weightQuant(w, n, k, false, wantY, wantS);
            for (boolean par : new boolean[] {false, true}) {
                byte[] y = new byte[n * k];
                float[] s = new float[nb * kb];
                impl.weightQuant(par, w, n, k, y, s);
                String what = impl.name() + " weight_quant [" + n + ", " + k + "]" + (par ? " all cores" : " one thread");
                for (int i = 0; i < s.length; i++) assertBits(wantS[i], s[i], what + " scaleInv[" + i + "]");
                for (int i = 0; i < y.length; i++)
                    if (y[i] != wantY[i]) fail(what + " y[" + i + "]: got 0x" + Integer.toHexString(y[i] & 0xff) + ", want 0x"
                            + Integer.toHexString(wantY[i] & 0xff));
            }
        }
    }

    static void checkWeightDequant(Impl impl) {
        SplittableRandom r = new SplittableRandom(4);
        int[][] shapes = {{1, 1}, {128, 128}, {200, 300}, {257, 129}, {384, 512}, {130, 1000}};
        for (int[] sh : shapes) {
            int n = sh[0], k = sh[1];
            byte[] w = new byte[n * k];
            for (int i = 0; i < w.length; i++) w[i] = (byte) r.nextInt(256); // NaN codes and subnormals included
            int nb = (n + 127) / 128, kb = (k + 127) / 128;
            float[] s = new float[nb * kb];
            for (int i = 0; i < s.length; i++) {
                int kind = r.nextInt(8);
                s[i] = switch (kind) {
                    case 0 -> 1e-40f; // products in the f32 subnormal range
                    case 1 -> 3e38f; // overflow to Inf
                    case 2 -> 0f;
                    default -> (float) Math.pow(10, r.nextDouble(-6, 2));
                };
            }
            float[] want = Fp8Reference.weightDequant(w, n, k, s);
            for (boolean par : new boolean[] {false, true}) {
                float[] y = new float[n * k];
                impl.weightDequant(par, w, n, k, s, y);
                String what = impl.name() + " weight_dequant [" + n + ", " + k + "]" + (par ? " all cores" : " one thread");
                for (int i = 0; i < y.length; i++) assertBits(want[i], y[i], what + " y[" + i + "]");
            }
        }
    }

    /** Equal bits, every NaN counting as one (floatToIntBits canonicalizes NaN). */
    static void assertBits(float want, float got, String what) {
        if (Float.floatToIntBits(want) != Float.floatToIntBits(got))
            assertEquals(want, got, what + ": bits 0x" + Integer.toHexString(Float.floatToRawIntBits(got)) + " vs 0x"
                    + Integer.toHexString(Float.floatToRawIntBits(want)));
    }

    static final Impl VECTOR = new Impl() {
        public String name() { return "VectorFp8 (" + VectorFp8.describe() + ")"; }
        public void encode(float[] x, byte[] y, int n) { VectorFp8.encode(x, y, n); }
        public void decode(byte[] w, float[] y, int n) { VectorFp8.decode(w, y, n); }
        public void actQuant(boolean p, float[] x, int rows, int k, byte[] y, float[] s) {
            if (p) VectorFp8.actQuantParallel(x, rows, k, y, s); else VectorFp8.actQuant(x, rows, k, y, s);
        }
        public void weightQuant(boolean p, float[] w, int n, int k, byte[] y, float[] s) {
            if (p) VectorFp8.weightQuantParallel(w, n, k, y, s); else VectorFp8.weightQuant(w, n, k, y, s);
        }
        public void weightDequant(boolean p, byte[] w, int n, int k, float[] s, float[] y) {
            if (p) VectorFp8.weightDequantParallel(w, n, k, s, y); else VectorFp8.weightDequant(w, n, k, s, y);
        }
    };

}
