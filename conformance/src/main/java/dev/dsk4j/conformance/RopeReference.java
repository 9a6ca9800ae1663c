package dev.dsk4j.conformance;

import dev.dsk4j.Rope;

/**
 * The plain-Java reference of rope.yarn_table and rope.apply (DESIGN.md 4.3), in double:
 * {@link #freqs} and {@link #correctionRange} follow the formulas of the DeepSeek-V3 reference
 * (its {@code precompute_freqs_cis}); {@link #apply} rotates by the exact angle {@code t·f_i}
 * ({@link StrictMath} cos/sin, so the reference is the same on every JVM). {@link #applyF32} is
 * the kernels' own f32 formula ({@code y0 = fma(x0, c, -(x1·s))}, {@code y1 = fma(x1, c, x0·s)})
 * on a given f32 table: every backend must match it bit for bit.
 */
public final class RopeReference {
    private RopeReference() {}

    /** {@code [low, high]} of YaRN's linear ramp (DeepSeek-V3: [10, 23]). */
    public static double[] correctionRange(int dim, double theta, long originalSeqLen, double betaFast, double betaSlow) {
        double low = Math.floor(correctionDim(betaFast, dim, theta, originalSeqLen));
        double high = Math.ceil(correctionDim(betaSlow, dim, theta, originalSeqLen));
        low = Math.max(low, 0);
        high = Math.min(high, dim - 1);
        if (low == high) high += 0.001;
        return new double[] {low, high};
    }

    private static double correctionDim(double rotations, int dim, double theta, long originalSeqLen) {
        return dim * Math.log(originalSeqLen / (2 * Math.PI * rotations)) / (2 * Math.log(theta));
    }

    /** The frequencies f_i, i < dim/2, with YaRN's ramp when maxSeqLen > originalSeqLen. */
    public static double[] freqs(Rope.YarnConfig c) {
        int half = c.dim() / 2;
        double[] f = new double[half];
        for (int i = 0; i < half; i++) f[i] = 1.0 / StrictMath.pow(c.theta(), (double) (2 * i) / c.dim());
        if (c.maxSeqLen() > c.originalSeqLen()) {
            double[] lh = correctionRange(c.dim(), c.theta(), c.originalSeqLen(), c.betaFast(), c.betaSlow());
            for (int i = 0; i < half; i++) {
                double ramp = Math.min(1, Math.max(0, (i - lh[0]) / (lh[1] - lh[0])));
                f[i] = f[i] / c.factor() * ramp + f[i] * (1 - ramp);
            }
        }
        return f;
    }

    /** The exact table: out[0] = cos, out[1] = sin, each [maxSeqLen * dim/2] in double. */
    public static double[][] table(Rope.YarnConfig c) {
        double[] f = freqs(c);
        int half = f.length, rows = Math.toIntExact(c.maxSeqLen());
        double[] cos = new double[rows * half], sin = new double[rows * half];
        for (int t = 0; t < rows; t++)
            for (int i = 0; i < half; i++) {
                double a = t * f[i];
                cos[t * half + i] = StrictMath.cos(a);
                sin[t * half + i] = StrictMath.sin(a);
            }
        return new double[][] {cos, sin};
    }

    /** Index of the first and the second element of pair j of row {@code row} ([rows, dim]). */
    static int first(Rope.Layout layout, int row, int dim, int j) {
        return layout == Rope.Layout.NEOX ? row * dim + j : row * dim + 2 * j;
    }

    static int second(Rope.Layout layout, int row, int dim, int j) {
        return layout == Rope.Layout.NEOX ? row * dim + j + dim / 2 : row * dim + 2 * j + 1;
    }

    /**
     * rope.apply in double: x [tokens, heads, dim] rotated by the exact angles {@code positions[t]·f_i}.
     * Also returns, per element, {@code |x0| + |x1|} of its pair (out[1]), the scale of its rounding error.
     */
    public static double[][] apply(float[] x, int[] positions, int heads, int dim, Rope.Layout layout, Rope.YarnConfig c) {
        double[] f = freqs(c);
        double[] y = new double[x.length], mag = new double[x.length];
        for (int t = 0; t < positions.length; t++)
            for (int h = 0; h < heads; h++) {
                int row = t * heads + h;
                for (int j = 0; j < dim / 2; j++) {
                    int i0 = first(layout, row, dim, j), i1 = second(layout, row, dim, j);
                    double a = positions[t] * f[j], cs = StrictMath.cos(a), sn = StrictMath.sin(a);
                    double x0 = x[i0], x1 = x[i1];
                    y[i0] = x0 * cs - x1 * sn;
                    y[i1] = x0 * sn + x1 * cs;
                    mag[i0] = mag[i1] = Math.abs(x0) + Math.abs(x1);
                }
            }
        return new double[][] {y, mag};
    }

    /** The kernels' f32 formula on the f32 tables {@code cos}, {@code sin} [rows, dim/2]. */
    public static float[] applyF32(float[] x, int[] positions, int heads, int dim, Rope.Layout layout, float[] cos, float[] sin) {
        float[] y = new float[x.length];
        int half = dim / 2;
        for (int t = 0; t < positions.length; t++)
            for (int h = 0; h < heads; h++) {
                int row = t * heads + h;
                for (int j = 0; j < half; j++) {
                    int i0 = first(layout, row, dim, j), i1 = second(layout, row, dim, j);
                    float c = cos[positions[t] * half + j], s = sin[positions[t] * half + j];
                    float x0 = x[i0], x1 = x[i1];
                    y[i0] = Math.fma(x0, c, -(x1 * s));
                    y[i1] = Math.fma(x1, c, x0 * s);
                }
            }
        return y;
    }

    /** The MLA softmax scale in double: (qkNope + qkRope)^-0.5 · mscale², mscale = 0.1·m·ln(factor) + 1 under YaRN. */
    public static double mlaSoftmaxScale(int qkNope, int qkRope, double factor, double m, boolean yarn) {
        double ms = yarn ? 0.1 * m * Math.log(factor) + 1 : 1;
        return ms * ms / Math.sqrt(qkNope + qkRope);
    }
}
