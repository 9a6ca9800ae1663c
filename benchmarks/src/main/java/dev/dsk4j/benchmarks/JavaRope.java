package dev.dsk4j.benchmarks;

/**
 * rope.apply in plain scalar Java, in place on x [tokens, heads, dim] (f32 {@code float[]} or bf16
 * {@code short[]}) with the f32 tables cos, sin [rows, dim/2]: the kernels' formula
 * {@code y0 = fma(x0, c, -(x1·s))}, {@code y1 = fma(x1, c, x0·s)} ({@link Math#fma}), so it is
 * bit-exact with the native backends (RopeJavaPeersTest). The peer of the benchmarks ({@link RopeBench}).
 */
public final class JavaRope {
    private JavaRope() {}

    /** Tokens [t0, t1) of an f32 x. */
    public static void apply(float[] x, int[] pos, int heads, int dim, boolean neox, float[] cos, float[] sin, int t0, int t1) {
        int half = dim / 2;
        for (int t = t0; t < t1; t++) {
            int tb = pos[t] * half;
            for (int h = 0; h < heads; h++) {
                int row = (t * heads + h) * dim;
                for (int j = 0; j < half; j++) {
                    int i0 = neox ? row + j : row + 2 * j, i1 = neox ? i0 + half : i0 + 1;
                    float c = cos[tb + j], s = sin[tb + j], x0 = x[i0], x1 = x[i1];
                    x[i0] = Math.fma(x0, c, -(x1 * s));
                    x[i1] = Math.fma(x1, c, x0 * s);
                }
            }
        }
    }

    /** Tokens [t0, t1) of a bf16 x (widened exactly, rounded back to nearest even). */
    public static void apply(short[] x, int[] pos, int heads, int dim, boolean neox, float[] cos, float[] sin, int t0, int t1) {
        int half = dim / 2;
        for (int t = t0; t < t1; t++) {
            int tb = pos[t] * half;
            for (int h = 0; h < heads; h++) {
                int row = (t * heads + h) * dim;
                for (int j = 0; j < half; j++) {
                    int i0 = neox ? row + j : row + 2 * j, i1 = neox ? i0 + half : i0 + 1;
                    float c = cos[tb + j], s = sin[tb + j];
                    float x0 = Float.intBitsToFloat(x[i0] << 16), x1 = Float.intBitsToFloat(x[i1] << 16);
                    x[i0] = bf16(Math.fma(x0, c, -(x1 * s)));
                    x[i1] = bf16(Math.fma(x1, c, x0 * s));
                }
            }
        }
    }

    /** f32 -> bf16 bits, nearest even; NaN -> (bits >> 16) | 0x40. */
    static short bf16(float f) {
        int b = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) return (short) ((b >>> 16) | 0x40);
        return (short) ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16);
    }

    /** All tokens, one contiguous chunk per core. */
    public static void applyParallel(float[] x, int[] pos, int heads, int dim, boolean neox, float[] cos, float[] sin) {
        JavaFp8.parallel(pos.length, x.length, (a, b) -> apply(x, pos, heads, dim, neox, cos, sin, a, b));
    }

    public static void applyParallel(short[] x, int[] pos, int heads, int dim, boolean neox, float[] cos, float[] sin) {
        JavaFp8.parallel(pos.length, x.length, (a, b) -> apply(x, pos, heads, dim, neox, cos, sin, a, b));
    }
}
