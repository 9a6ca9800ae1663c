package dev.dsk4j.conformance;

/**
 * The elementwise ops' formulas (dsk4j.h elementwise.*) in plain Java, f32 results before any rounding to
 * the output dtype: rmsnorm {@code (float)(((double)x_i · inv) · w_i)} with {@code inv = 1 / sqrt(ss/d + eps)}
 * and {@code ss} the in-order double sum of {@code x_i²}; add in f32 arithmetic; silu_mul
 * {@code (float)((z / (1 + e^-z)) · u)} in double.
 */
public final class ElementwiseReference {
    private ElementwiseReference() {}

    /** y [rows, d] of x [rows, ldx] (its first d columns) and w [d]. */
    public static float[] rmsnorm(float[] x, int rows, int d, int ldx, float[] w, double eps) {
        float[] y = new float[rows * d];
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int i = 0; i < d; i++) ss += (double) x[r * ldx + i] * x[r * ldx + i];
            double inv = 1.0 / Math.sqrt(ss / d + eps);
            for (int i = 0; i < d; i++) y[r * d + i] = (float) ((double) x[r * ldx + i] * inv * w[i]);
        }
        return y;
    }

    public static float[] add(float[] a, float[] b) {
        float[] y = new float[a.length];
        for (int i = 0; i < a.length; i++) y[i] = a[i] + b[i];
        return y;
    }

    public static float[] siluMul(float[] g, float[] u) {
        float[] y = new float[g.length];
        for (int i = 0; i < g.length; i++) {
            double z = g[i];
            y[i] = (float) ((z / (1.0 + Math.exp(-z))) * u[i]);
        }
        return y;
    }
}
