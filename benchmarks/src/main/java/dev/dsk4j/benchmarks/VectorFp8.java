package dev.dsk4j.benchmarks;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * fp8.act_quant, fp8.weight_quant and fp8.weight_dequant with the Java Vector API
 * (jdk.incubator.vector; run with {@code --add-modules jdk.incubator.vector}): the same bit
 * tricks as {@link JavaFp8}, lane-wise, on {@link FloatVector#SPECIES_PREFERRED} (16 lanes with
 * AVX-512, 8 with AVX2), narrowed to bytes with an I2B conversion. e4m3 -> f32 is computed,
 * not looked up (no gather): normal codes by shifting the bits into an f32, subnormal codes as
 * {@code m * 2^-9}. Bit-exact with the reference (JavaFp8Test). Partial 128-wide edge blocks
 * of weights finish in scalar code.
 */
public final class VectorFp8 {
    private VectorFp8() {}

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(F.length() * 8));
    static final int L = F.length();

    static {
        if (JavaFp8.GROUP % L != 0) throw new ExceptionInInitializerError("vector length " + L + " does not divide 128");
    }

    /** A description such as "FloatVector 512 bits (16 lanes)". */
    public static String describe() { return "FloatVector " + F.vectorBitSize() + " bits (" + L + " lanes)"; }

    // ------------------------------------------------------------------ lane-wise conversions

    /** f32 lanes -> e4m3 codes (0..255) in int lanes: RNE, saturating, NaN -> 0x7f (as JavaFp8.e4m3). */
    static IntVector e4m3(FloatVector q) {
        IntVector b = q.reinterpretAsInts();
        IntVector a = b.and(0x7fffffff);
        IntVector normal = a.add(0x7ffff).add(a.lanewise(VectorOperators.LSHR, 20).and(1))
                .lanewise(VectorOperators.LSHR, 20).sub(120 << 3);
        IntVector sub = a.reinterpretAsFloats().add(16384f).reinterpretAsInts().sub(0x46800000);
        IntVector code = normal.blend(sub, a.compare(VectorOperators.LT, 0x3c800000));
        code = code.blend(0x7e, a.compare(VectorOperators.GE, 0x43e00000));
        code = code.or(b.lanewise(VectorOperators.LSHR, 24).and(0x80));
        return code.blend(0x7f, a.compare(VectorOperators.GT, 0x7f800000));
    }

    /** e4m3 codes (0..255 in int lanes) -> exact f32 (NaN for 0x7f, 0xff). */
    static FloatVector decode(IntVector c) {
        IntVector mag = c.and(0x7f);
        FloatVector normal = mag.lanewise(VectorOperators.LSHL, 20).add(120 << 23).reinterpretAsFloats();
        FloatVector sub = ((FloatVector) c.and(7).convert(VectorOperators.I2F, 0)).mul(0x1p-9f);
        FloatVector v = normal.blend(sub, mag.compare(VectorOperators.LT, 8).cast(F));
        v = v.blend(Float.NaN, mag.compare(VectorOperators.EQ, 0x7f).cast(F));
        return v.reinterpretAsInts().or(c.and(0x80).lanewise(VectorOperators.LSHL, 24)).reinterpretAsFloats();
    }

    /** |x| bits with NaN patterns set to 0, for an int max (non-negative floats order as ints). */
    static IntVector absBitsNoNaN(FloatVector x) {
        IntVector a = x.reinterpretAsInts().and(0x7fffffff);
        return a.blend(0, a.compare(VectorOperators.GT, 0x7f800000));
    }

    static void storeCodes(IntVector code, byte[] y, int off) {
        ((ByteVector) code.convertShape(VectorOperators.I2B, B, 0)).intoArray(y, off);
    }

    /** fp8.cast f32 -> e4m3 of x[0, n) into y (vector lanes, scalar tail). */
    public static void encode(float[] x, byte[] y, int n) {
        int i = 0;
        for (; i + L <= n; i += L) storeCodes(e4m3(FloatVector.fromArray(F, x, i)), y, i);
        for (; i < n; i++) y[i] = (byte) JavaFp8.e4m3(x[i]);
    }

    /** fp8.cast e4m3 -> f32 of w[0, n) into y (vector lanes, scalar tail). */
    public static void decode(byte[] w, float[] y, int n) {
        int i = 0;
        for (; i + L <= n; i += L) {
            IntVector c = (IntVector) ByteVector.fromArray(B, w, i).convertShape(VectorOperators.B2I, I, 0);
            decode(c.and(0xff)).intoArray(y, i);
        }
        for (; i < n; i++) y[i] = JavaFp8.E4M3_TO_F32[w[i] & 0xff];
    }

    // ------------------------------------------------------------------ fp8.act_quant

    /** fp8.act_quant, one thread (as {@link JavaFp8#actQuant}). */
    public static void actQuant(float[] x, int rows, int k, byte[] y, float[] scale) {
        JavaFp8.checkActQuant(x, rows, k, y, scale);
        actQuantGroups(x, y, scale, 0, rows * (k / JavaFp8.GROUP));
    }

    /** fp8.act_quant on all cores. */
    public static void actQuantParallel(float[] x, int rows, int k, byte[] y, float[] scale) {
        JavaFp8.checkActQuant(x, rows, k, y, scale);
        int groups = rows * (k / JavaFp8.GROUP);
        JavaFp8.parallel(groups, (long) groups * JavaFp8.GROUP, (g0, g1) -> actQuantGroups(x, y, scale, g0, g1));
    }

    static void actQuantGroups(float[] x, byte[] y, float[] scale, int g0, int g1) {
        for (int g = g0; g < g1; g++) {
            int base = g * JavaFp8.GROUP;
            IntVector m = IntVector.zero(I);
            for (int i = base; i < base + JavaFp8.GROUP; i += L) m = m.max(absBitsNoNaN(FloatVector.fromArray(F, x, i)));
            float s = JavaFp8.scaleOf(m.reduceLanes(VectorOperators.MAX));
            scale[g] = s;
            for (int i = base; i < base + JavaFp8.GROUP; i += L) storeCodes(e4m3(FloatVector.fromArray(F, x, i).div(s)), y, i);
        }
    }

    // ------------------------------------------------------------------ fp8.weight_quant

    /** fp8.weight_quant, one thread (as {@link JavaFp8#weightQuant}). */
    public static void weightQuant(float[] w, int n, int k, byte[] y, float[] scaleInv) {
        JavaFp8.checkWeight(w.length, n, k, y.length, scaleInv.length);
        weightQuantBlockRows(w, n, k, y, scaleInv, 0, (n + JavaFp8.BLOCK - 1) / JavaFp8.BLOCK);
    }

    /** fp8.weight_quant on all cores. */
    public static void weightQuantParallel(float[] w, int n, int k, byte[] y, float[] scaleInv) {
        JavaFp8.checkWeight(w.length, n, k, y.length, scaleInv.length);
        int nb = (n + JavaFp8.BLOCK - 1) / JavaFp8.BLOCK;
        JavaFp8.parallel(nb, (long) n * k, (b0, b1) -> weightQuantBlockRows(w, n, k, y, scaleInv, b0, b1));
    }

    static void weightQuantBlockRows(float[] w, int n, int k, byte[] y, float[] scaleInv, int b0, int b1) {
        final int bs = JavaFp8.BLOCK;
        int kb = (k + bs - 1) / bs;
        int[] amax = new int[kb];
        float[] s = new float[kb];
        for (int bi = b0; bi < b1; bi++) {
            int r0 = bi * bs, r1 = Math.min(n, r0 + bs);
            java.util.Arrays.fill(amax, 0);
            for (int r = r0; r < r1; r++) {
                int row = r * k;
                for (int bj = 0; bj < kb; bj++) {
                    int c0 = row + bj * bs, c1 = row + Math.min(k, bj * bs + bs);
                    int i = c0;
                    if (c1 - c0 == bs) {
                        IntVector m = IntVector.zero(I);
                        for (; i < c1; i += L) m = m.max(absBitsNoNaN(FloatVector.fromArray(F, w, i)));
                        amax[bj] = Math.max(amax[bj], m.reduceLanes(VectorOperators.MAX));
                    } else {
                        amax[bj] = Math.max(amax[bj], JavaFp8.amaxBits(w, c0, c1));
                    }
                }
            }
            for (int bj = 0; bj < kb; bj++) {
                s[bj] = JavaFp8.scaleOf(amax[bj]);
                scaleInv[bi * kb + bj] = s[bj];
            }
            for (int r = r0; r < r1; r++) {
                int row = r * k;
                for (int bj = 0; bj < kb; bj++) {
                    float sb = s[bj];
                    int c0 = row + bj * bs, c1 = row + Math.min(k, bj * bs + bs);
                    int i = c0;
                    for (; i + L <= c1; i += L) storeCodes(e4m3(FloatVector.fromArray(F, w, i).div(sb)), y, i);
                    for (; i < c1; i++) y[i] = (byte) JavaFp8.e4m3(w[i] / sb);
                }
            }
        }
    }

    // ------------------------------------------------------------------ fp8.weight_dequant

    /** fp8.weight_dequant, one thread (as {@link JavaFp8#weightDequant}). */
    public static void weightDequant(byte[] w, int n, int k, float[] scaleInv, float[] y) {
        JavaFp8.checkWeight(y.length, n, k, w.length, scaleInv.length);
        weightDequantRows(w, k, scaleInv, y, 0, n);
    }

    /** fp8.weight_dequant on all cores. */
    public static void weightDequantParallel(byte[] w, int n, int k, float[] scaleInv, float[] y) {
        JavaFp8.checkWeight(y.length, n, k, w.length, scaleInv.length);
        JavaFp8.parallel(n, (long) n * k, (r0, r1) -> weightDequantRows(w, k, scaleInv, y, r0, r1));
    }

    static void weightDequantRows(byte[] w, int k, float[] scaleInv, float[] y, int r0, int r1) {
        final int bs = JavaFp8.BLOCK;
        int kb = (k + bs - 1) / bs;
        for (int r = r0; r < r1; r++) {
            int row = r * k, srow = (r / bs) * kb;
            for (int bj = 0; bj < kb; bj++) {
                float s = scaleInv[srow + bj];
                int c0 = row + bj * bs, c1 = row + Math.min(k, bj * bs + bs);
                int i = c0;
                for (; i + L <= c1; i += L) {
                    IntVector c = (IntVector) ByteVector.fromArray(B, w, i).convertShape(VectorOperators.B2I, I, 0);
                    decode(c.and(0xff)).mul(s).intoArray(y, i);
                }
                for (; i < c1; i++) y[i] = JavaFp8.E4M3_TO_F32[w[i] & 0xff] * s;
            }
        }
    }
}
