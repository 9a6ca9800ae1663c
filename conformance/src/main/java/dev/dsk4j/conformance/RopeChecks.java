package dev.dsk4j.conformance;

import dev.dsk4j.DType;
import dev.dsk4j.Rope;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Runs one case of rope.yarn_table or rope.apply on a backend and compares with
 * {@link RopeReference}:
 * <ul>
 *   <li>rope.yarn_table: every entry within {@code 2^-24·|ref| + 1e-11} of the exact value (one
 *       rounding of the double to f32; 1e-11 covers the double angle {@code t·f_i} computed by
 *       another libm's pow), NaN never;</li>
 *   <li>rope.apply: bit for bit the kernels' f32 formula on the backend's own table
 *       ({@link RopeReference#applyF32}; bf16 outputs rounded to nearest even), and against the
 *       double reference every element within {@code 2^-21·(|x0| + |x1|)} of its pair (plus
 *       {@code 2^-8·|ref|} for bf16), relative Frobenius error at most 1e-5 (f32) / 1e-2 (bf16)
 *       (DESIGN.md 6).</li>
 * </ul>
 * Outputs are poisoned before each run (Session), so an unwritten element fails.
 */
public final class RopeChecks {
    private RopeChecks() {}

    /** rope.yarn_table of {@code c} on the backend against the exact table. */
    public static Comparison table(Session s, Rope.YarnConfig c) {
        double[][] ref = RopeReference.table(c);
        try (Arena a = Arena.ofConfined()) {
            long half = c.dim() / 2;
            Tensor cos = s.output(a, DType.F32, c.maxSeqLen(), half), sin = s.output(a, DType.F32, c.maxSeqLen(), half);
            Rope.yarnTable(s.context(), cos, sin, c);
            float[] gc = s.toHost(a, cos).toFloatArray(), gs = s.toHost(a, sin).toFloatArray();
            return bounded("rope.yarn_table", gc, ref[0], null, 0x1p-24, 1e-11, 0).plus(
                    bounded("rope.yarn_table", gs, ref[1], null, 0x1p-24, 1e-11, 0));
        }
    }

    /**
     * {@code got} against {@code ref}: {@code |got - ref| <= rel·|ref| + abs + pair·mag[i]} (mag null: 0),
     * and, when {@code frobTol > 0}, relative Frobenius error at most frobTol (outputs of >= 64 elements).
     */
    static Comparison bounded(String what, float[] got, double[] ref, double[] mag, double rel, double abs, double pair,
                              double frobTol) {
        long bad = 0;
        String first = null;
        double num = 0, den = 0, maxAbs = 0;
        for (int i = 0; i < ref.length; i++) {
            double g = got[i], e = ref[i], err = Math.abs(g - e);
            boolean ok = !Double.isNaN(g) && err <= rel * Math.abs(e) + abs + (mag == null ? 0 : pair * mag[i]);
            if (!Double.isNaN(g)) {
                maxAbs = Math.max(maxAbs, err);
                num += err * err;
                den += e * e;
            }
            if (!ok) {
                bad++;
                if (first == null) first = "element " + i + ": got " + g + ", expected " + e + " (error " + err + ")";
            }
        }
        double frob = den == 0 ? (num == 0 ? 0 : Double.POSITIVE_INFINITY) : Math.sqrt(num / den);
        if (frobTol > 0 && ref.length >= 64 && frob > frobTol) {
            bad++;
            if (first == null) first = String.format("relative Frobenius error %.3g > %.3g", frob, frobTol);
        }
        return new Comparison(what, ref.length, bad, maxAbs, frob, first);
    }

    private static Comparison bounded(String what, float[] got, double[] ref, double[] mag, double rel, double abs,
                                      double frobTol) {
        return bounded(what, got, ref, mag, rel, abs, 0, frobTol);
    }

    /** Random positions in [0, rows), with 0 and rows - 1 planted when there are tokens. */
    public static int[] positions(SplittableRandom r, int tokens, long rows) {
        int[] p = new int[tokens];
        for (int t = 0; t < tokens; t++) p[t] = (int) r.nextLong(rows);
        if (tokens > 0) p[r.nextInt(tokens)] = 0;
        if (tokens > 1) p[r.nextInt(tokens)] = (int) (rows - 1);
        return p;
    }

    /** Gaussian values over a few binades (as f32, rounded to bf16 for a bf16 case by the caller). */
    static float[] values(SplittableRandom r, int n) {
        float[] x = new float[n];
        double scale = Math.pow(10, r.nextDouble(-3, 2));
        for (int i = 0; i < n; i++) x[i] = (float) (Values.gaussian(r) * scale);
        return x;
    }

    /**
     * rope.apply on x [tokens, heads, dim] (heads 0 means a k_pe-like [tokens, dim] tensor) of
     * {@code dtype} with the table of {@code c} cached in the context, in place or out of place.
     * Returns the bit-exact comparison with the f32 formula and the comparison with the double reference.
     */
    public static List<Comparison> apply(Session s, SplittableRandom r, Rope.YarnConfig c, int tokens, int heads,
                                         Rope.Layout layout, DType dtype, boolean inPlace) {
        int h = Math.max(heads, 1), dim = c.dim();
        float[] x = values(r, tokens * h * dim);
        if (dtype == DType.BF16) x = Fp8Checks.roundToBf16(x);
        int[] pos = positions(r, tokens, c.maxSeqLen());
        long[] shape = heads == 0 ? new long[] {tokens, dim} : new long[] {tokens, heads, dim};
        String what = "rope.apply " + dtype.label() + " " + layout.name().toLowerCase();
        try (Arena a = Arena.ofConfined()) {
            Rope.Table table = Rope.table(s.context(), c);
            Tensor xt = s.input(a, Fp8Checks.hostInput(a, x, dtype, shape));
            Tensor pt = s.input(a, Tensor.ofInts(a, pos, tokens));
            Tensor y;
            if (inPlace) {
                y = xt;
                Rope.applyInPlace(s.context(), xt, pt, table, layout);
            } else {
                y = s.output(a, dtype, shape);
                Rope.apply(s.context(), y, xt, pt, table, layout);
            }
            int[] got = Fp8Checks.rawOf(s.toHost(a, y));
            float[] cos = s.toHost(a, table.cos()).toFloatArray(), sin = s.toHost(a, table.sin()).toFloatArray();
            float[] exact = RopeReference.applyF32(x, pos, h, dim, layout, cos, sin);
            List<Comparison> out = new ArrayList<>();
            float[] gotF = new float[got.length];
            if (dtype == DType.F32) {
                for (int i = 0; i < got.length; i++) gotF[i] = Float.intBitsToFloat(got[i]);
                out.add(Comparison.floats(what, gotF, exact));
            } else {
                int[] exp = new int[exact.length];
                for (int i = 0; i < exact.length; i++) {
                    exp[i] = Fp8Reference.floatToBf16(exact[i]) & 0xffff;
                    gotF[i] = Fp8Reference.bf16ToFloat((short) got[i]);
                }
                out.add(Comparison.codes(what, DType.BF16, got, exp));
            }
            double[][] ref = RopeReference.apply(x, pos, h, dim, layout, c);
            out.add(bounded(what + " vs f64", gotF, ref[0], ref[1], dtype == DType.BF16 ? 0x1p-8 : 0, Float.MIN_NORMAL,
                    0x1p-21, dtype == DType.BF16 ? 1e-2 : 1e-5));
            return out;
        }
    }

    /** A random valid YaRN configuration: small tables, YaRN on or off, dims with and without SIMD tails. */
    public static Rope.YarnConfig randomConfig(SplittableRandom r) {
        int dim = r.nextInt(4) == 0 ? 2 * r.nextInt(1, 70) : new int[] {16, 32, 64, 128}[r.nextInt(4)];
        long original = r.nextLong(1, 400), rows = r.nextLong(1, 600);
        return new Rope.YarnConfig(dim, r.nextBoolean() ? 10000 : r.nextDouble(2, 1e6), r.nextDouble(1, 64), original,
                rows, r.nextDouble(8, 64), r.nextDouble(0.5, 4));
    }
}
