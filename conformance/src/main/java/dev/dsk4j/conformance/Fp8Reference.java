package dev.dsk4j.conformance;

/**
 * The plain-Java reference of the fp8.* ops (DESIGN.md 3 and 4.1), written to be obviously
 * correct rather than fast: conversions pick the nearest representable value from a table
 * (ties to the even code) instead of manipulating bits. No native code.
 */
public final class Fp8Reference {
    private Fp8Reference() {}

    public static final float E4M3_MAX = 448f;
    public static final float E5M2_MAX = 57344f;

    /** Positive finite values of each format, indexed by code (0x00.. max code). */
    private static final double[] E4M3_VALUES = table(true);
    private static final double[] E5M2_VALUES = table(false);

    private static double[] table(boolean e4m3) {
        int maxCode = e4m3 ? 0x7e : 0x7b;
        double[] v = new double[maxCode + 1];
        for (int c = 0; c <= maxCode; c++) v[c] = decodeDouble(e4m3, c);
        return v;
    }

    /** Exact value of a positive or negative fp8 code, by the textbook formula. */
    static double decodeDouble(boolean e4m3, int code) {
        int mbits = e4m3 ? 3 : 2, ebits = e4m3 ? 4 : 5, bias = e4m3 ? 7 : 15;
        int sign = (code >> 7) & 1;
        int e = (code >> mbits) & ((1 << ebits) - 1);
        int m = code & ((1 << mbits) - 1);
        double mag;
        if (e4m3 && e == 15 && m == 7) return Double.NaN;
        if (!e4m3 && e == 31) return m == 0 ? (sign == 1 ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY) : Double.NaN;
        if (e == 0) mag = m * Math.pow(2, 1 - bias - mbits);
        else mag = (1 + m / (double) (1 << mbits)) * Math.pow(2, e - bias);
        return sign == 1 ? -mag : mag;
    }

    /** e4m3 code -> f32 (exact). */
    public static float e4m3ToFloat(byte code) { return (float) decodeDouble(true, code & 0xff); }

    /** e5m2 code -> f32 (exact). */
    public static float e5m2ToFloat(byte code) { return (float) decodeDouble(false, code & 0xff); }

    /** f32 -> e4m3: nearest, ties to even code, saturating to +-448 (Inf too), NaN -> 0x7f. */
    public static byte floatToE4m3(float x) { return encode(E4M3_VALUES, x); }

    /** f32 -> e5m2: nearest, ties to even code, saturating to +-57344 (Inf too), NaN -> 0x7f. */
    public static byte floatToE5m2(float x) { return encode(E5M2_VALUES, x); }

    private static byte encode(double[] values, float x) {
        if (Float.isNaN(x)) return 0x7f;
        int sign = (Float.floatToRawIntBits(x) >>> 31) << 7;
        double a = Math.abs((double) x);
        int maxCode = values.length - 1;
        int code;
        if (a >= values[maxCode]) {
            code = maxCode; // saturate (satfinite): everything beyond max, Inf included
        } else {
            // largest code with value <= a
            int lo = 0, hi = maxCode;
            while (lo < hi) {
                int mid = (lo + hi + 1) >>> 1;
                if (values[mid] <= a) lo = mid; else hi = mid - 1;
            }
            double below = values[lo], above = values[lo + 1];
            double dBelow = a - below, dAbove = above - a; // exact in double: both are short binary fractions
            if (dBelow < dAbove) code = lo;
            else if (dAbove < dBelow) code = lo + 1;
            else code = (lo & 1) == 0 ? lo : lo + 1; // tie: the even code
        }
        return (byte) (sign | code);
    }

    /** bf16 bits -> f32 (exact). */
    public static float bf16ToFloat(short b) { return Float.intBitsToFloat((b & 0xffff) << 16); }

    /** f32 -> bf16 bits: nearest, ties to even; NaN -> quiet NaN with the sign kept. */
    public static short floatToBf16(float x) {
        int bits = Float.floatToRawIntBits(x);
        if (Float.isNaN(x)) return (short) ((bits >>> 16) | 0x40);
        int sign = (bits >>> 16) & 0x8000;
        double a = Math.abs((double) x);
        int down = (bits & 0x7fffffff) >>> 16; // the bf16 at or below |x|
        double lo = Float.intBitsToFloat(down << 16);
        if (lo == a) return (short) (sign | down);
        int up = down + 1; // the bf16 above |x|; 0x7f80 is Inf, standing for 2^128 when rounding
        double hi = up == 0x7f80 ? Math.scalb(1.0, 128) : Float.intBitsToFloat(up << 16);
        double dLo = a - lo, dHi = hi - a; // exact in double
        int code = dLo < dHi ? down : dHi < dLo ? up : ((down & 1) == 0 ? down : up);
        return (short) (sign | code);
    }

    /** f16 bits -> f32 (exact). */
    public static float f16ToFloat(short h) { return Float.float16ToFloat(h); }

    /** f32 -> f16 bits (IEEE round to nearest even; the JDK's conversion). */
    public static short floatToF16(float x) { return Float.floatToFloat16(x); }

    /** Any supported float dtype element -> f32. */
    public static float toFloat(String dtype, long raw) {
        return switch (dtype) {
            case "f32" -> Float.intBitsToFloat((int) raw);
            case "bf16" -> bf16ToFloat((short) raw);
            case "f16" -> f16ToFloat((short) raw);
            case "e4m3" -> e4m3ToFloat((byte) raw);
            case "e5m2" -> e5m2ToFloat((byte) raw);
            default -> throw new IllegalArgumentException("not a float dtype: " + dtype);
        };
    }

    /** UE8M0: the smallest power of two >= s (s > 0, finite or Inf), from the bits. */
    public static float ue8m0(float s) {
        int bits = Float.floatToRawIntBits(s);
        if ((bits & 0x007fffff) == 0 || Float.isInfinite(s)) return s;
        return Float.intBitsToFloat((bits & 0x7f800000) + 0x00800000);
    }

    /** amax of the group/block: max |x| ignoring NaN, then at least 1e-4. */
    private static float scaleOf(float amax, boolean ue8m0) {
        float s = Math.max(amax, 1e-4f) / 448f;
        return ue8m0 ? ue8m0(s) : s;
    }

    /**
     * fp8.act_quant: x[rows, k] (k % 128 == 0) -> y[rows, k] e4m3 codes and scale[rows, k/128]
     * (row-major here; layouts are a storage matter for the caller).
     */
    public static void actQuant(float[] x, int rows, int k, boolean ue8m0, byte[] y, float[] scale) {
        int groups = k / 128;
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < groups; g++) {
                int base = r * k + g * 128;
                float amax = 0;
                for (int i = 0; i < 128; i++) {
                    float a = Math.abs(x[base + i]);
                    if (a > amax) amax = a; // NaN compares false: ignored
                }
                float s = scaleOf(amax, ue8m0);
                scale[r * groups + g] = s;
                for (int i = 0; i < 128; i++) y[base + i] = floatToE4m3(x[base + i] / s);
            }
        }
    }

    /** fp8.weight_quant: w[n, k] -> y[n, k] e4m3 codes, scaleInv[ceil(n/128), ceil(k/128)]. */
    public static void weightQuant(float[] w, int n, int k, boolean ue8m0, byte[] y, float[] scaleInv) {
        int nb = (n + 127) / 128, kb = (k + 127) / 128;
        for (int bi = 0; bi < nb; bi++) {
            for (int bj = 0; bj < kb; bj++) {
                float amax = 0;
                for (int i = bi * 128; i < Math.min(n, bi * 128 + 128); i++)
                    for (int j = bj * 128; j < Math.min(k, bj * 128 + 128); j++) {
                        float a = Math.abs(w[i * k + j]);
                        if (a > amax) amax = a;
                    }
                float s = scaleOf(amax, ue8m0);
                scaleInv[bi * kb + bj] = s;
                for (int i = bi * 128; i < Math.min(n, bi * 128 + 128); i++)
                    for (int j = bj * 128; j < Math.min(k, bj * 128 + 128); j++) y[i * k + j] = floatToE4m3(w[i * k + j] / s);
            }
        }
    }

    /** fp8.weight_dequant: y[i, j] = e4m3(w[i, j]) * scaleInv[i/128, j/128] (one f32 product). */
    public static float[] weightDequant(byte[] w, int n, int k, float[] scaleInv) {
        int kb = (k + 127) / 128;
        float[] y = new float[n * k];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < k; j++) y[i * k + j] = e4m3ToFloat(w[i * k + j]) * scaleInv[(i / 128) * kb + j / 128];
        return y;
    }
}
