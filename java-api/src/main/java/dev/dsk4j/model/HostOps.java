package dev.dsk4j.model;

import dev.dsk4j.DType;
import dev.dsk4j.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The model's small element-wise steps on host f32 tensors (the heavy work goes to the native
 * ops): RMSNorm, residual add, embedding gather, SwiGLU, row copies. Sums are in double, so the
 * result is the f32 rounding of the exact value up to double rounding.
 */
final class HostOps {
    private HostOps() {}

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort S = ValueLayout.JAVA_SHORT_UNALIGNED;

    /** The elements of a bf16 / f32 host tensor as f32 (a norm weight, a bias). */
    static float[] floats(Tensor t) {
        return t.toFloatArray();
    }

    /** y[t, 0:d] = x[t, 0:d] / sqrt(mean(x[t]²) + eps) · w  — x rows of length {@code ldx}, y rows of {@code d}. */
    static void rmsnorm(Tensor y, Tensor x, long ldx, float[] w, double eps) {
        int d = w.length;
        long rows = y.dim(0);
        MemorySegment xs = x.segment(), ys = y.segment();
        float[] row = new float[d];
        for (long t = 0; t < rows; t++) {
            MemorySegment.copy(xs, F, t * ldx * 4, row, 0, d);
            double ss = 0;
            for (int i = 0; i < d; i++) ss += (double) row[i] * row[i];
            double r = 1.0 / Math.sqrt(ss / d + eps);
            for (int i = 0; i < d; i++) row[i] = (float) (row[i] * r * w[i]);
            MemorySegment.copy(row, 0, ys, F, t * d * 4L, d);
        }
    }

    /** h += a (same shape, f32). */
    static void addInPlace(Tensor h, Tensor a) {
        long n = h.numel();
        MemorySegment hs = h.segment(), as = a.segment();
        float[] x = new float[4096], y = new float[4096];
        for (long i = 0; i < n; i += x.length) {
            int len = (int) Math.min(x.length, n - i);
            MemorySegment.copy(hs, F, i * 4, x, 0, len);
            MemorySegment.copy(as, F, i * 4, y, 0, len);
            for (int j = 0; j < len; j++) x[j] += y[j];
            MemorySegment.copy(x, 0, hs, F, i * 4, len);
        }
    }

    /** out[t] = table[ids[t]] as f32 (table bf16|f32 [V, D]). */
    static void embed(Tensor out, Tensor table, int[] ids) {
        long v = table.dim(0);
        int d = (int) table.dim(1);
        MemorySegment ts = table.segment(), os = out.segment();
        float[] row = new float[d];
        for (int t = 0; t < ids.length; t++) {
            int id = ids[t];
            if (id < 0 || id >= v)
                throw new IllegalArgumentException("token id " + id + " at position " + t + " is outside the vocabulary [0, "
                        + v + ")");
            if (table.dtype() == DType.BF16) {
                long base = (long) id * d * 2;
                for (int i = 0; i < d; i++) row[i] = Float.intBitsToFloat(ts.get(S, base + 2L * i) << 16);
            } else {
                MemorySegment.copy(ts, F, (long) id * d * 4, row, 0, d);
            }
            MemorySegment.copy(row, 0, os, F, (long) t * d * 4, d);
        }
    }

    /** y = silu(g) · u element-wise (f32 tensors of one shape), silu(z) = z / (1 + e^-z). */
    static void siluMul(Tensor y, Tensor g, Tensor u) {
        long n = y.numel();
        float[] a = new float[4096], b = new float[4096];
        for (long i = 0; i < n; i += a.length) {
            int len = (int) Math.min(a.length, n - i);
            MemorySegment.copy(g.segment(), F, i * 4, a, 0, len);
            MemorySegment.copy(u.segment(), F, i * 4, b, 0, len);
            for (int j = 0; j < len; j++) {
                double z = a[j];
                a[j] = (float) (z / (1.0 + Math.exp(-z)) * b[j]);
            }
            MemorySegment.copy(a, 0, y.segment(), F, i * 4, len);
        }
    }

    /**
     * Copies columns [c0, c0 + width) of each row of {@code src} (row length {@code lds}) to
     * columns [d0, d0 + width) of {@code dst} (row length {@code ldd}), for {@code rows} rows.
     */
    static void copyColumns(Tensor dst, long ldd, long d0, Tensor src, long lds, long c0, long width, long rows) {
        int es = dst.dtype().byteSize();
        for (long r = 0; r < rows; r++)
            MemorySegment.copy(src.segment(), (r * lds + c0) * es, dst.segment(), (r * ldd + d0) * es, width * es);
    }

    /** Copies rows {@code idx[i]} of {@code src} [*, w] into row i of {@code dst} [idx.length, w]. */
    static void gatherRows(Tensor dst, Tensor src, int[] idx, int count) {
        long w = src.dim(1) * src.dtype().byteSize();
        for (int i = 0; i < count; i++) MemorySegment.copy(src.segment(), idx[i] * w, dst.segment(), i * w, w);
    }

    /** A row of f32 values. */
    static float[] row(Tensor t, long r) {
        int w = (int) t.dim(1);
        float[] out = new float[w];
        MemorySegment.copy(t.segment(), F, r * w * 4L, out, 0, w);
        return out;
    }

    static void setRow(Tensor t, long r, float[] v) {
        MemorySegment.copy(v, 0, t.segment(), F, r * v.length * 4L, v.length);
    }
}
