package dev.dsk4j.benchmarks;

import java.util.stream.IntStream;

/**
 * The best plain (scalar) Java versions of fp8.act_quant, fp8.weight_quant and
 * fp8.weight_dequant (DESIGN.md 3 and 4.1): the peers the native CPU backend is measured
 * against. Bit-exact with {@code dev.dsk4j.conformance.Fp8Reference} (JavaFp8Test), but fast:
 *
 * <ul>
 *   <li>f32 -> e4m3 on the bits, without branches: the normal range rounds the f32 bits to 3
 *       mantissa bits (round to nearest even: add 0x7ffff plus the lowest kept bit), the
 *       subnormal range adds the magic 2^14 (whose ulp is 2^-9, the e4m3 subnormal step) so that
 *       the FPU does the round-to-nearest-even, then selects pick saturation and NaN;</li>
 *   <li>amax on the integer bits of |x| (NaN bit patterns masked to 0), an int max reduction;</li>
 *   <li>e4m3 -> f32 through a 256-entry float table.</li>
 * </ul>
 *
 * Each op comes as a one-thread version and an all-cores version (the common fork/join pool
 * plus the calling thread, over contiguous chunks; small inputs stay on the calling thread).
 * Array indices are int: every DeepSeek-V3 shape benchmarked (up to 18432 x 7168) fits.
 */
public final class JavaFp8 {
    private JavaFp8() {}

    public static final int GROUP = 128;
    public static final int BLOCK = 128;

    /** Below this many elements the all-cores versions run on the calling thread. */
    static final int PARALLEL_MIN_ELEMS = 1 << 16;

    /** e4m3 code (0..255) -> its exact f32 value; NaN for 0x7f and 0xff. */
    static final float[] E4M3_TO_F32 = new float[256];

    static {
        for (int c = 0; c < 256; c++) {
            int e = (c >> 3) & 0xf, m = c & 7;
            float v;
            if (e == 15 && m == 7) v = Float.NaN;
            else if (e == 0) v = m * 0x1p-9f;
            else v = Float.intBitsToFloat(((e + 120) << 23) | (m << 20));
            E4M3_TO_F32[c] = (c & 0x80) != 0 ? -v : v;
        }
    }

    /** The number of threads the all-cores versions use. */
    public static int threads() { return Math.max(1, Runtime.getRuntime().availableProcessors()); }

    // ------------------------------------------------------------------ conversions

    /**
     * f32 -> e4m3 code (0..255): round to nearest even, saturate to +-448 (Inf too), NaN -> 0x7f.
     * No branches (selects only).
     */
    public static int e4m3(float x) {
        int b = Float.floatToRawIntBits(x);
        int a = b & 0x7fffffff;
        // normal e4m3 (|x| >= 2^-6): keep 3 mantissa bits, RNE; rebias the exponent 127 -> 7
        int normal = ((a + 0x7ffff + ((a >>> 20) & 1)) >>> 20) - (120 << 3);
        // subnormal (|x| < 2^-6): rint(|x| * 2^9) through the FPU's own RNE at ulp(2^14) = 2^-9
        int sub = Float.floatToRawIntBits(Float.intBitsToFloat(a) + 16384f) - 0x46800000;
        int code = a < 0x3c800000 ? sub : normal;
        code = a >= 0x43e00000 ? 0x7e : code; // >= 448 (and Inf): saturate
        code |= (b >>> 24) & 0x80;
        return a > 0x7f800000 ? 0x7f : code; // every NaN
    }

    /** e4m3 code -> f32 (exact; NaN for 0x7f, 0xff). */
    public static float e4m3ToFloat(byte code) { return E4M3_TO_F32[code & 0xff]; }

    /** fp8.cast f32 -> e4m3 of x[0, n) into y. */
    public static void encode(float[] x, byte[] y, int n) {
        for (int i = 0; i < n; i++) y[i] = (byte) e4m3(x[i]);
    }

    /** fp8.cast e4m3 -> f32 of w[0, n) into y. */
    public static void decode(byte[] w, float[] y, int n) {
        for (int i = 0; i < n; i++) y[i] = E4M3_TO_F32[w[i] & 0xff];
    }

    /** max |x[i]| over [from, to) with NaN ignored, as the int bits of a non-negative float. */
    static int amaxBits(float[] x, int from, int to) {
        int m = 0;
        for (int i = from; i < to; i++) {
            int a = Float.floatToRawIntBits(x[i]) & 0x7fffffff;
            a = a > 0x7f800000 ? 0 : a; // NaN: ignored
            m = Math.max(m, a);
        }
        return m;
    }

    /** s = max(amax, 1e-4) / 448 (f32). */
    static float scaleOf(int amaxBits) { return Math.max(Float.intBitsToFloat(amaxBits), 1e-4f) / 448f; }

    // ------------------------------------------------------------------ fp8.act_quant

    /**
     * fp8.act_quant, one thread: x[rows, k] f32 (k % 128 == 0) -> y[rows, k] e4m3 codes and
     * scale[rows, k/128] f32 (row-major).
     */
    public static void actQuant(float[] x, int rows, int k, byte[] y, float[] scale) {
        checkActQuant(x, rows, k, y, scale);
        actQuantGroups(x, y, scale, 0, rows * (k / GROUP));
    }

    /** fp8.act_quant on all cores (same result as {@link #actQuant}). */
    public static void actQuantParallel(float[] x, int rows, int k, byte[] y, float[] scale) {
        checkActQuant(x, rows, k, y, scale);
        int groups = rows * (k / GROUP);
        parallel(groups, (long) groups * GROUP, (g0, g1) -> actQuantGroups(x, y, scale, g0, g1));
    }

    /** Groups [g0, g1) of the flat group index (group g = elements [128 g, 128 g + 128)). */
    static void actQuantGroups(float[] x, byte[] y, float[] scale, int g0, int g1) {
        for (int g = g0; g < g1; g++) {
            int base = g * GROUP;
            float s = scaleOf(amaxBits(x, base, base + GROUP));
            scale[g] = s;
            for (int i = base; i < base + GROUP; i++) y[i] = (byte) e4m3(x[i] / s);
        }
    }

    static void checkActQuant(float[] x, int rows, int k, byte[] y, float[] scale) {
        if (rows < 0 || k < 0 || k % GROUP != 0) throw new IllegalArgumentException("rows " + rows + ", k " + k);
        long n = (long) rows * k;
        if (x.length < n || y.length < n || scale.length < n / GROUP)
            throw new IllegalArgumentException("arrays too small for [" + rows + ", " + k + "]");
    }

    // ------------------------------------------------------------------ fp8.weight_quant

    /**
     * fp8.weight_quant, one thread: w[n, k] f32 -> y[n, k] e4m3 codes and
     * scaleInv[ceil(n/128), ceil(k/128)] (partial edge blocks).
     */
    public static void weightQuant(float[] w, int n, int k, byte[] y, float[] scaleInv) {
        checkWeight(w.length, n, k, y.length, scaleInv.length);
        weightQuantBlockRows(w, n, k, y, scaleInv, 0, (n + BLOCK - 1) / BLOCK);
    }

    /** fp8.weight_quant on all cores, split over rows of 128x128 blocks. */
    public static void weightQuantParallel(float[] w, int n, int k, byte[] y, float[] scaleInv) {
        checkWeight(w.length, n, k, y.length, scaleInv.length);
        int nb = (n + BLOCK - 1) / BLOCK;
        parallel(nb, (long) n * k, (b0, b1) -> weightQuantBlockRows(w, n, k, y, scaleInv, b0, b1));
    }

    /** Block rows [b0, b1): a pass for the amax of every block of the row, then one to quantize. */
    static void weightQuantBlockRows(float[] w, int n, int k, byte[] y, float[] scaleInv, int b0, int b1) {
        int kb = (k + BLOCK - 1) / BLOCK;
        int[] amax = new int[kb];
        float[] s = new float[kb];
        for (int bi = b0; bi < b1; bi++) {
            int r0 = bi * BLOCK, r1 = Math.min(n, r0 + BLOCK);
            java.util.Arrays.fill(amax, 0);
            for (int r = r0; r < r1; r++) {
                int row = r * k;
                for (int bj = 0; bj < kb; bj++) {
                    int c0 = bj * BLOCK, c1 = Math.min(k, c0 + BLOCK);
                    amax[bj] = Math.max(amax[bj], amaxBits(w, row + c0, row + c1));
                }
            }
            for (int bj = 0; bj < kb; bj++) {
                s[bj] = scaleOf(amax[bj]);
                scaleInv[bi * kb + bj] = s[bj];
            }
            for (int r = r0; r < r1; r++) {
                int row = r * k;
                for (int bj = 0; bj < kb; bj++) {
                    float sb = s[bj];
                    int c0 = row + bj * BLOCK, c1 = row + Math.min(k, bj * BLOCK + BLOCK);
                    for (int i = c0; i < c1; i++) y[i] = (byte) e4m3(w[i] / sb);
                }
            }
        }
    }

    // ------------------------------------------------------------------ fp8.weight_dequant

    /** fp8.weight_dequant, one thread: y[i, j] = e4m3(w[i, j]) * scaleInv[i/128, j/128] (one f32 product). */
    public static void weightDequant(byte[] w, int n, int k, float[] scaleInv, float[] y) {
        checkWeight(y.length, n, k, w.length, scaleInv.length);
        weightDequantRows(w, k, scaleInv, y, 0, n);
    }

    /** fp8.weight_dequant on all cores, split over rows. */
    public static void weightDequantParallel(byte[] w, int n, int k, float[] scaleInv, float[] y) {
        checkWeight(y.length, n, k, w.length, scaleInv.length);
        parallel(n, (long) n * k, (r0, r1) -> weightDequantRows(w, k, scaleInv, y, r0, r1));
    }

    static void weightDequantRows(byte[] w, int k, float[] scaleInv, float[] y, int r0, int r1) {
        int kb = (k + BLOCK - 1) / BLOCK;
        float[] t = E4M3_TO_F32;
        for (int r = r0; r < r1; r++) {
            int row = r * k, srow = (r / BLOCK) * kb;
            for (int bj = 0; bj < kb; bj++) {
                float s = scaleInv[srow + bj];
                int c0 = row + bj * BLOCK, c1 = row + Math.min(k, bj * BLOCK + BLOCK);
                for (int i = c0; i < c1; i++) y[i] = t[w[i] & 0xff] * s;
            }
        }
    }

    static void checkWeight(int floats, int n, int k, int bytes, int scales) {
        if (n < 0 || k < 0) throw new IllegalArgumentException("n " + n + ", k " + k);
        long numel = (long) n * k;
        long ns = ((long) n + BLOCK - 1) / BLOCK * (((long) k + BLOCK - 1) / BLOCK);
        if (floats < numel || bytes < numel || scales < ns)
            throw new IllegalArgumentException("arrays too small for [" + n + ", " + k + "]");
    }

    // ------------------------------------------------------------------ threads

    /** A range [from, to) of work items. */
    @FunctionalInterface
    interface Range {
        void run(int from, int to);
    }

    /**
     * Runs {@code body} over [0, items) in one contiguous chunk per thread (the common pool plus
     * the calling thread), or on the calling thread alone when the work is small.
     */
    static void parallel(int items, long elems, Range body) {
        int t = Math.min(threads(), items);
        if (t <= 1 || elems < PARALLEL_MIN_ELEMS) {
            body.run(0, items);
            return;
        }
        IntStream.range(0, t).parallel().forEach(c -> body.run((int) ((long) items * c / t), (int) ((long) items * (c + 1) / t)));
    }
}
