package dev.dsk4j.conformance;

import java.util.SplittableRandom;

/**
 * Random inputs for the fp8 ops with the edge cases that break conversions and scaling: signed
 * zeros, NaN of both signs, infinities, f32 subnormals, values that must saturate, and values
 * at, just below and just above every fp8 rounding midpoint.
 */
public final class Values {
    private Values() {}

    private static final float[] SPECIALS = {
        0f, -0f, Float.NaN, Float.intBitsToFloat(0xffc00001), Float.intBitsToFloat(0x7f800001),
        Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MIN_VALUE, -Float.MIN_VALUE, Float.MIN_NORMAL,
        -Float.MIN_NORMAL, Float.MAX_VALUE, -Float.MAX_VALUE, 448f, -448f, 464f, Math.nextUp(464f), Math.nextDown(464f),
        480f, 57344f, 61440f, Math.nextDown(61440f), 65536f, 0x1p-6f, 0x1p-9f, 0x1p-10f, Math.nextUp(0x1p-10f),
        0x1p-14f, 0x1p-16f, 0x1p-17f, Math.nextUp(0x1p-17f), 1e-4f, -1e-4f, 1f, -1f, 1e30f, -1e30f
    };

    /** A special value (see the class comment). */
    public static float special(SplittableRandom r) {
        return switch (r.nextInt(4)) {
            case 0 -> SPECIALS[r.nextInt(SPECIALS.length)];
            case 1 -> midpoint(r, r.nextBoolean());
            case 2 -> Float.intBitsToFloat(r.nextInt(1, 0x800000) | (r.nextBoolean() ? 0x80000000 : 0)); // subnormal
            default -> Float.intBitsToFloat(r.nextInt()); // any bit pattern
        };
    }

    /** A value at or next to a rounding midpoint of e4m3 (or e5m2), random sign. */
    public static float midpoint(SplittableRandom r, boolean e4m3) {
        int max = e4m3 ? 0x7e : 0x7b;
        int c = r.nextInt(max);
        double lo = Fp8Reference.decodeDouble(e4m3, c), hi = Fp8Reference.decodeDouble(e4m3, c + 1);
        float m = (float) ((lo + hi) / 2); // exact: fp8 midpoints are short binary fractions
        m = switch (r.nextInt(3)) {
            case 0 -> Math.nextDown(m);
            case 1 -> Math.nextUp(m);
            default -> m;
        };
        return r.nextBoolean() ? -m : m;
    }

    /**
     * n activations: normal values of a random magnitude, with a fraction {@code specialRate} of
     * special values and occasional all-zero or single-outlier groups of 128.
     */
    public static float[] activations(SplittableRandom r, int n, double specialRate) {
        float[] x = new float[n];
        double magnitude = Math.pow(10, r.nextDouble(-8, 8));
        for (int i = 0; i < n; i++) {
            x[i] = r.nextDouble() < specialRate ? special(r) : (float) (gaussian(r) * magnitude);
        }
        for (int g = 0; g + 128 <= n; g += 128) {
            int kind = r.nextInt(16);
            if (kind == 0) java.util.Arrays.fill(x, g, g + 128, 0f); // amax floor 1e-4
            else if (kind == 1) x[g + r.nextInt(128)] = (float) (magnitude * 1e4); // outlier
            else if (kind == 2) for (int i = g; i < g + 128; i++) x[i] = midpoint(r, true) * (float) magnitude;
        }
        return x;
    }

    /** Standard normal sample. */
    public static double gaussian(SplittableRandom r) {
        double u = r.nextDouble(), v = r.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v);
    }
}
