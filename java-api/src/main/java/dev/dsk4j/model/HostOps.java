package dev.dsk4j.model;

import dev.dsk4j.DType;
import dev.dsk4j.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The model's small element-wise steps on host activation tensors, f32 or bf16 (the heavy work goes to the
 * native ops): RMSNorm, residual add, embedding gather, SwiGLU, row copies. Values are computed in double
 * from the stored values and rounded once to the tensor's dtype (bf16: round to nearest even).
 */
final class HostOps {
    private HostOps() {}

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort S = ValueLayout.JAVA_SHORT_UNALIGNED;

    /** n elements of t (f32 or bf16) from element offset off into dst. */
    static void read(Tensor t, long off, float[] dst, int n) {
        if (t.dtype() == DType.F32) {
            MemorySegment.copy(t.segment(), F, off * 4, dst, 0, n);
        } else {
            MemorySegment s = t.segment();
            for (int i = 0; i < n; i++) dst[i] = Float.intBitsToFloat(s.get(S, (off + i) * 2) << 16);
        }
    }

    /** n elements of src to t (f32 or bf16, rounded to nearest even) at element offset off. */
    static void write(Tensor t, long off, float[] src, int n) {
        if (t.dtype() == DType.F32) {
            MemorySegment.copy(src, 0, t.segment(), F, off * 4, n);
        } else {
            MemorySegment s = t.segment();
            for (int i = 0; i < n; i++) s.set(S, (off + i) * 2, bf16(src[i]));
        }
    }

    /** f32 -> bf16 bits, round to nearest even; NaN stays NaN. */
    static short bf16(float f) {
        int b = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) return (short) ((b >>> 16) | 0x40);
        return (short) ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16);
    }

    /** y[t, 0:d] = x[t, 0:d] / sqrt(mean(x[t]²) + eps) · w  — x rows of length {@code ldx}, y rows of {@code d}. */
    static void rmsnorm(Tensor y, Tensor x, long ldx, float[] w, double eps) {
        int d = w.length;
        long rows = y.dim(0);
        float[] row = new float[d];
        for (long t = 0; t < rows; t++) {
            read(x, t * ldx, row, d);
            double ss = 0;
            for (int i = 0; i < d; i++) ss += (double) row[i] * row[i];
            double r = 1.0 / Math.sqrt(ss / d + eps);
            for (int i = 0; i < d; i++) row[i] = (float) (row[i] * r * w[i]);
            write(y, t * d, row, d);
        }
    }

    /** h += a (same shape and dtype). */
    static void addInPlace(Tensor h, Tensor a) {
        long n = h.numel();
        float[] x = new float[4096], y = new float[4096];
        for (long i = 0; i < n; i += x.length) {
            int len = (int) Math.min(x.length, n - i);
            read(h, i, x, len);
            read(a, i, y, len);
            for (int j = 0; j < len; j++) x[j] += y[j];
            write(h, i, x, len);
        }
    }

    /** out[t] = table[ids[t]] (table bf16|f32 [V, D]; exact for a bf16 table). */
    static void embed(Tensor out, Tensor table, int[] ids) {
        long v = table.dim(0);
        int d = (int) table.dim(1);
        float[] row = new float[d];
        for (int t = 0; t < ids.length; t++) {
            int id = ids[t];
            if (id < 0 || id >= v)
                throw new IllegalArgumentException("token id " + id + " at position " + t + " is outside the vocabulary [0, "
                        + v + ")");
            read(table, (long) id * d, row, d);
            write(out, (long) t * d, row, d);
        }
    }

    /** y = silu(g) · u element-wise (tensors of one shape), silu(z) = z / (1 + e^-z). */
    static void siluMul(Tensor y, Tensor g, Tensor u) {
        long n = y.numel();
        float[] a = new float[4096], b = new float[4096];
        for (long i = 0; i < n; i += a.length) {
            int len = (int) Math.min(a.length, n - i);
            read(g, i, a, len);
            read(u, i, b, len);
            for (int j = 0; j < len; j++) {
                double z = a[j];
                a[j] = (float) (z / (1.0 + Math.exp(-z)) * b[j]);
            }
            write(y, i, a, len);
        }
    }

    /**
     * Copies columns [c0, c0 + width) of each row of {@code src} (row length {@code lds}) to
     * columns [d0, d0 + width) of {@code dst} (row length {@code ldd}), for {@code rows} rows (one dtype).
     */
    static void copyColumns(Tensor dst, long ldd, long d0, Tensor src, long lds, long c0, long width, long rows) {
        int es = dst.dtype().byteSize();
        for (long r = 0; r < rows; r++)
            MemorySegment.copy(src.segment(), (r * lds + c0) * es, dst.segment(), (r * ldd + d0) * es, width * es);
    }

    /** Copies rows {@code idx[i]} of {@code src} [*, w] into row i of {@code dst} [count, w] (one dtype). */
    static void gatherRows(Tensor dst, Tensor src, int[] idx, int count) {
        long w = src.dim(1) * src.dtype().byteSize();
        for (int i = 0; i < count; i++) MemorySegment.copy(src.segment(), idx[i] * w, dst.segment(), i * w, w);
    }

    /** Row r as f32 values. */
    static float[] row(Tensor t, long r) {
        int w = (int) t.dim(1);
        float[] out = new float[w];
        read(t, r * w, out, w);
        return out;
    }

    static void setRow(Tensor t, long r, float[] v) {
        write(t, r * v.length, v, v.length);
    }
}
