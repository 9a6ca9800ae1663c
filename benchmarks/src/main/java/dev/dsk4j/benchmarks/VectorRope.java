package dev.dsk4j.benchmarks;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * rope.apply with the Java Vector API ({@link FloatVector#SPECIES_PREFERRED}), in place, the same
 * bits as {@link JavaRope}. Interleaved: {@code y = fma(x, cc, swap(x)·ss)} with the token's table
 * row expanded to {@code cc = (c c ...)}, {@code ss = (-s s ...)} and the pairs swapped by a
 * shuffle; neox: the two halves as two vectors. Needs dim (interleaved) or dim/2 (neox) to be a
 * multiple of the lane count (DeepSeek's 64 is, for 8 and 16 lanes); other dims run JavaRope.
 */
public final class VectorRope {
    private VectorRope() {}

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.length() * 16));
    static final int L = F.length();
    static final VectorShuffle<Float> SWAP = VectorShuffle.fromOp(F, i -> i ^ 1);

    static boolean fits(int dim, boolean neox) { return (neox ? dim / 2 : dim) % L == 0; }

    static FloatVector loadBf16(short[] x, int i) {
        return ((IntVector) ShortVector.fromArray(S, x, i).convertShape(VectorOperators.S2I, I, 0))
                .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    static void storeBf16(short[] x, int i, FloatVector f) {
        IntVector b = f.reinterpretAsInts();
        IntVector r = b.add(0x7fff).add(b.lanewise(VectorOperators.LSHR, 16).and(1)).lanewise(VectorOperators.LSHR, 16);
        VectorMask<Integer> nan = f.test(VectorOperators.IS_NAN).cast(I);
        r = r.blend(b.lanewise(VectorOperators.LSHR, 16).or(0x40), nan);
        ((ShortVector) r.convertShape(VectorOperators.I2S, S, 0)).intoArray(x, i);
    }

    /** Tokens [t0, t1) of an f32 (bf16 == null) or bf16 (f32 == null) x. */
    static void apply(float[] f32, short[] bf16, int[] pos, int heads, int dim, boolean neox, float[] cos, float[] sin,
                      int t0, int t1) {
        if (!fits(dim, neox)) {
            if (f32 != null) JavaRope.apply(f32, pos, heads, dim, neox, cos, sin, t0, t1);
            else JavaRope.apply(bf16, pos, heads, dim, neox, cos, sin, t0, t1);
            return;
        }
        int half = dim / 2;
        float[] cc = new float[dim], ss = new float[dim];
        for (int t = t0; t < t1; t++) {
            int tb = pos[t] * half;
            if (!neox)
                for (int j = 0; j < half; j++) {
                    cc[2 * j] = cc[2 * j + 1] = cos[tb + j];
                    ss[2 * j] = -sin[tb + j];
                    ss[2 * j + 1] = sin[tb + j];
                }
            for (int h = 0; h < heads; h++) {
                int row = (t * heads + h) * dim;
                if (!neox) {
                    for (int i = 0; i < dim; i += L) {
                        FloatVector x = f32 != null ? FloatVector.fromArray(F, f32, row + i) : loadBf16(bf16, row + i);
                        FloatVector y = x.fma(FloatVector.fromArray(F, cc, i), x.rearrange(SWAP).mul(FloatVector.fromArray(F, ss, i)));
                        if (f32 != null) y.intoArray(f32, row + i); else storeBf16(bf16, row + i, y);
                    }
                } else {
                    for (int j = 0; j < half; j += L) {
                        FloatVector lo = f32 != null ? FloatVector.fromArray(F, f32, row + j) : loadBf16(bf16, row + j);
                        FloatVector hi = f32 != null ? FloatVector.fromArray(F, f32, row + half + j) : loadBf16(bf16, row + half + j);
                        FloatVector c = FloatVector.fromArray(F, cos, tb + j), s = FloatVector.fromArray(F, sin, tb + j);
                        FloatVector ylo = lo.fma(c, hi.mul(s.neg())), yhi = hi.fma(c, lo.mul(s));
                        if (f32 != null) {
                            ylo.intoArray(f32, row + j);
                            yhi.intoArray(f32, row + half + j);
                        } else {
                            storeBf16(bf16, row + j, ylo);
                            storeBf16(bf16, row + half + j, yhi);
                        }
                    }
                }
            }
        }
    }

    public static void apply(float[] x, int[] pos, int heads, int dim, boolean neox, float[] cos, float[] sin) {
        apply(x, null, pos, heads, dim, neox, cos, sin, 0, pos.length);
    }

    public static void apply(short[] x, int[] pos, int heads, int dim, boolean neox, float[] cos, float[] sin) {
        apply(null, x, pos, heads, dim, neox, cos, sin, 0, pos.length);
    }

    public static void applyParallel(float[] x, int[] pos, int heads, int dim, boolean neox, float[] cos, float[] sin) {
        JavaFp8.parallel(pos.length, x.length, (a, b) -> apply(x, null, pos, heads, dim, neox, cos, sin, a, b));
    }

    public static void applyParallel(short[] x, int[] pos, int heads, int dim, boolean neox, float[] cos, float[] sin) {
        JavaFp8.parallel(pos.length, x.length, (a, b) -> apply(null, x, pos, heads, dim, neox, cos, sin, a, b));
    }
}
