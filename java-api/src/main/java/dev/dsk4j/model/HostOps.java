package dev.dsk4j.model;

import dev.dsk4j.DType;
import dev.dsk4j.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Host-side reads and writes of f32/bf16 tensors (logit rows, weight conversions at load time). The model's
 * element-wise steps themselves are native ops ({@link dev.dsk4j.Elementwise}) so that they run on CUDA too.
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

    /** f32 -> bf16 bits, round to nearest even; NaN stays NaN. */
    static short bf16(float f) {
        int b = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) return (short) ((b >>> 16) | 0x40);
        return (short) ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16);
    }

    /** Row r as f32 values. */
    static float[] row(Tensor t, long r) {
        int w = (int) t.dim(1);
        float[] out = new float[w];
        read(t, r * w, out, w);
        return out;
    }
}
