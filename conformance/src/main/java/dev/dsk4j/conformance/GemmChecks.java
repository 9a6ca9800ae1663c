package dev.dsk4j.conformance;

import dev.dsk4j.DType;
import dev.dsk4j.Fp8;
import dev.dsk4j.Gemm;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Runs one case of a gemm.* op on a backend with random operands and compares with
 * {@link GemmReference} under the tolerances of DESIGN.md 6:
 * <ul>
 *   <li>every element within a bound that holds for any f32 summation order:
 *       {@code |got - ref| <= (k + 8) * 2^-24 * Σ|terms|} on the CPU ({@code 2^-11 * Σ|terms|} more on
 *       CUDA tensor cores; not for gemm.f32, whose CUDA kernels multiply exactly in f32 as well), plus
 *       {@code 2^-8 * |ref|} for bf16 outputs; NaN only where the reference is NaN;</li>
 *   <li>relative Frobenius error at most 1e-5 (CPU f32 and gemm.f32 everywhere), 2e-3 (CUDA f32), 1e-2 (bf16 outputs), over
 *       outputs of at least 64 elements (on a handful of elements one cancelling dot product
 *       dominates it; the per-element bound above covers those), not counting the absolute rounding
 *       of results in the f32 subnormal range ((k + 1)·2^-150 per element);</li>
 *   <li>rows the op must not write keep the poison bytes.</li>
 * </ul>
 */
public final class GemmChecks {
    private GemmChecks() {}

    private static final double U = 0x1p-24;

    /** Random finite e4m3 codes (no NaN), with zeros and both signs. */
    static byte[] codes(SplittableRandom r, int n) {
        byte[] c = new byte[n];
        for (int i = 0; i < n; i++) {
            int v = r.nextInt(256);
            if ((v & 0x7f) == 0x7f) v &= 0xfe; // NaN -> the largest finite
            c[i] = (byte) v;
        }
        return c;
    }

    /** Positive scales over a few binades, like act_quant/weight_quant produce. */
    static float[] scales(SplittableRandom r, int n) {
        float[] s = new float[n];
        for (int i = 0; i < n; i++) s[i] = (float) (Math.pow(2, r.nextDouble(-12, 2)) * (1 + r.nextDouble()));
        return s;
    }

    static float[] floats(SplittableRandom r, int n, double scale) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float) (Values.gaussian(r) * scale);
        return f;
    }

    /**
     * Compares d (raw f32 bits or bf16 codes, [rows, n]) with the reference on the rows marked in
     * {@code written}; rows not marked must still hold the poison.
     */
    static Comparison compare(String what, Session s, DType dtype, int[] got, GemmReference.Result ref, boolean[] written,
                              int n, int k) {
        return compare(what, s, dtype, got, ref, written, n, k, false);
    }

    /** {@code exactProducts}: the backend multiplies in exact f32 on every device (gemm.f32): CPU tolerances. */
    static Comparison compare(String what, Session s, DType dtype, int[] got, GemmReference.Result ref, boolean[] written,
                              int n, int k, boolean exactProducts) {
        boolean cuda = !exactProducts && s.backend().device() instanceof dev.dsk4j.Device.Cuda;
        double elem = (k + 8) * U + (cuda ? 0x1p-11 : 0);
        double rel = dtype == DType.BF16 ? 0x1p-8 : 0;
        double frobTol = dtype == DType.BF16 ? 1e-2 : cuda ? 2e-3 : 1e-5;
        long bad = 0;
        String first = null;
        double num = 0, den = 0, maxAbs = 0;
        int poison = dtype == DType.BF16 ? 0xffff : 0xffffffff;
        for (int i = 0; i < got.length; i++) {
            int row = i / n;
            String problem = null;
            if (!written[row]) {
                if (got[i] != poison) problem = "row " + row + " must not be written";
            } else {
                float g = dtype == DType.BF16 ? Fp8Reference.bf16ToFloat((short) got[i]) : Float.intBitsToFloat(got[i]);
                double e = ref.value()[i];
                if (Double.isNaN(e) || Double.isNaN(g)) {
                    if (!(Double.isNaN(e) && Double.isNaN(g))) problem = "NaN mismatch";
                } else if (Double.isInfinite(e) || Double.isInfinite(g)) {
                    if (e != g) problem = "Inf mismatch";
                } else {
                    double err = Math.abs(g - e);
                    maxAbs = Math.max(maxAbs, err);
                    // in the subnormal range rounding is absolute: at most 2^-150 per product and sum, which
                    // no relative measure can absorb when every output is tiny (k = 1, subnormal operands)
                    double errRel = Math.max(0, err - (k + 1) * 0x1p-150);
                    num += errRel * errRel;
                    den += e * e;
                    if (err > elem * ref.mag()[i] + rel * Math.abs(e) + Float.MIN_NORMAL) problem = "outside its error bound";
                }
                if (problem != null) {
                    double e2 = e;
                    problem += String.format(" (got %s, reference %s, bound %.3g)", Float.toString(
                            dtype == DType.BF16 ? Fp8Reference.bf16ToFloat((short) got[i]) : Float.intBitsToFloat(got[i])),
                            Double.toString(e2), elem * ref.mag()[i] + rel * Math.abs(e2));
                }
            }
            if (problem != null) {
                bad++;
                if (first == null) first = "element [" + row + ", " + (i % n) + "]: " + problem;
            }
        }
        double frob = den == 0 ? (num == 0 ? 0 : Double.POSITIVE_INFINITY) : Math.sqrt(num / den);
        long compared = 0;
        for (boolean w : written) if (w) compared += n;
        if (compared >= 64 && frob > frobTol) {
            bad++;
            if (first == null) first = String.format("relative Frobenius error %.3g > %.3g", frob, frobTol);
        }
        return new Comparison(what, got.length, bad, maxAbs, frob, first);
    }

    /** gemm.fp8_block on random operands: [m, k] x [n, k]^T, optional addend, d f32 or bf16. */
    public static Comparison fp8Block(Session s, SplittableRandom r, int m, int n, int k, boolean withC, DType dType,
                                      Fp8.ScaleLayout layout, int ldPad) {
        return fp8Block(s, r, m, n, k, withC, dType, layout, ldPad, 0);
    }

    /**
     * {@link #fp8Block(Session, SplittableRandom, int, int, int, boolean, DType, Fp8.ScaleLayout, int)}
     * with {@code nanCodes} NaN codes (0x7f, 0xff) planted at random places of A and as many of B:
     * every output whose dot product meets one must be NaN, every other one finite and within bounds.
     */
    public static Comparison fp8Block(Session s, SplittableRandom r, int m, int n, int k, boolean withC, DType dType,
                                      Fp8.ScaleLayout layout, int ldPad, int nanCodes) {
        int kb = k / 128;
        byte[] a = codes(r, m * k), b = codes(r, n * k);
        for (int q = 0; q < nanCodes; q++) {
            if (a.length > 0) a[r.nextInt(a.length)] = (byte) (r.nextBoolean() ? 0x7f : 0xff);
            if (b.length > 0) b[r.nextInt(b.length)] = (byte) (r.nextBoolean() ? 0x7f : 0xff);
        }
        float[] as = scales(r, m * kb), bs = scales(r, ((n + 127) / 128) * kb);
        float[] c = withC ? floats(r, m * n, 10) : null;
        GemmReference.Result ref = GemmReference.fp8Block(a, as, b, bs, c, m, n, k);
        try (Arena ar = Arena.ofConfined()) {
            Tensor at = s.input(ar, Tensor.ofBytes(ar, DType.E4M3, a, m, k));
            Tensor bt = s.input(ar, Tensor.ofBytes(ar, DType.E4M3, b, n, k));
            Tensor bst = s.input(ar, Tensor.ofFloats(ar, bs, Fp8.blockScaleShape(n, k)));
            Tensor ast;
            if (layout == Fp8.ScaleLayout.ROW_MAJOR) {
                ast = s.input(ar, Tensor.ofFloats(ar, as, m, kb));
            } else {
                int ld = m + ldPad;
                float[] cm = new float[kb * ld];
                for (int i = 0; i < m; i++) for (int q = 0; q < kb; q++) cm[q * ld + i] = as[i * kb + q];
                ast = s.input(ar, Tensor.ofFloats(ar, cm, kb, ld));
            }
            Tensor ct = c == null ? null : s.input(ar, Tensor.ofFloats(ar, c, m, n));
            Tensor d = s.output(ar, dType, m, n);
            Gemm.fp8Block(s.context(), d, at, ast, layout, bt, bst, ct);
            boolean[] all = new boolean[m];
            Arrays.fill(all, true);
            return compare("gemm.fp8_block " + dType.label(), s, dType, Fp8Checks.rawOf(s.toHost(ar, d)), ref, all, n, k);
        }
    }

    /**
     * The values of a gemm.bf16 case. The AMX path (cpu/amx) takes only operands whose nonzero
     * magnitudes lie in [2^-50, 2^50] (its tile unit flushes denormal inputs and results to zero);
     * the others must give the same results through the fallback inside the native code.
     */
    public enum Bf16Values {
        /** Gaussian A, 0.05-scaled gaussian B: the tile path. */
        ORDINARY,
        /**
         * B scaled by 2^20; about a third of the rows of A entirely bf16 subnormals (their outputs,
         * near 2^-107, would become 0 if flushed), a few more subnormals planted in A and in B.
         */
        SUBNORMAL,
        /** A few normal values near 2^-80 in A or B, B scaled by 2^40: below the tile path's range. */
        TINY,
        /** A few values near 2^60..2^80 in A or B: above the tile path's range, still finite sums. */
        HUGE,
        /** A few ±Inf and NaN in A and in B. */
        INF_NAN
    }

    /** gemm.bf16 on random ordinary operands. */
    public static Comparison bf16(Session s, SplittableRandom r, int m, int n, int k, boolean withC, DType dType) {
        return bf16(s, r, m, n, k, withC, dType, Bf16Values.ORDINARY);
    }

    /** gemm.bf16 on random operands of the given kind. */
    public static Comparison bf16(Session s, SplittableRandom r, int m, int n, int k, boolean withC, DType dType,
                                  Bf16Values values) {
        short[] a = new short[m * k], b = new short[n * k];
        double bScale = switch (values) {
            case SUBNORMAL -> 0x1p20;
            case TINY -> 0x1p40 * 0.05;
            default -> 0.05;
        };
        for (int i = 0; i < a.length; i++) a[i] = Fp8Reference.floatToBf16((float) Values.gaussian(r));
        for (int i = 0; i < b.length; i++) b[i] = Fp8Reference.floatToBf16((float) (Values.gaussian(r) * bScale));
        if (values == Bf16Values.SUBNORMAL)
            for (int i = 0; i < m; i++)
                if (r.nextInt(3) == 0)
                    for (int t = 0; t < k; t++) a[i * k + t] = Fp8Reference.floatToBf16((float) (Values.gaussian(r) * 0x1p-130));
        int planted = values == Bf16Values.ORDINARY || a.length == 0 ? 0 : 1 + r.nextInt(1 + a.length / 50);
        boolean inB = b.length > 0 && r.nextBoolean();
        for (int q = 0; q < planted; q++) {
            int sign = r.nextBoolean() ? 0x8000 : 0;
            int at = r.nextInt(a.length);
            switch (values) {
                case SUBNORMAL -> a[at] = (short) (sign | r.nextInt(1, 0x80)); // exponent 0, mantissa != 0
                case TINY, HUGE -> { // all in A or all in B (the native code checks B's range while it copies B); never
                                     // in both, so that no two meet in a product (2^160 overflows, 2^-160 underflows)
                    double mag = values == Bf16Values.TINY ? Math.pow(2, r.nextDouble(-90, -70)) : Math.pow(2, r.nextDouble(60, 80));
                    short v = Fp8Reference.floatToBf16((float) (sign != 0 ? -mag : mag));
                    if (inB) b[r.nextInt(b.length)] = v;
                    else a[at] = v;
                }
                case INF_NAN -> {
                    short special = (short) (r.nextInt(3) == 0 ? 0x7fc0 | sign : 0x7f80 | sign);
                    a[at] = special;
                    if (b.length > 0 && r.nextBoolean()) b[r.nextInt(b.length)] = special;
                }
                default -> throw new AssertionError(values);
            }
            // B subnormals too, only where every output keeps enough ordinary terms (k >= 8, at most 2% of B): an output
            // made of subnormal products alone has no relative precision left for the Frobenius criterion
            if (values == Bf16Values.SUBNORMAL && k >= 8 && q <= b.length / 50 && r.nextBoolean())
                b[r.nextInt(b.length)] = (short) (sign | r.nextInt(1, 0x80));
        }
        float[] c = withC ? floats(r, m * n, 1) : null;
        GemmReference.Result ref = GemmReference.bf16(a, b, c, m, n, k);
        try (Arena ar = Arena.ofConfined()) {
            Tensor at = s.input(ar, Tensor.ofShorts(ar, DType.BF16, a, m, k));
            Tensor bt = s.input(ar, Tensor.ofShorts(ar, DType.BF16, b, n, k));
            Tensor ct = c == null ? null : s.input(ar, Tensor.ofFloats(ar, c, m, n));
            Tensor d = s.output(ar, dType, m, n);
            Gemm.bf16(s.context(), d, at, bt, ct);
            boolean[] all = new boolean[m];
            Arrays.fill(all, true);
            return compare("gemm.bf16 " + dType.label(), s, dType, Fp8Checks.rawOf(s.toHost(ar, d)), ref, all, n, k);
        }
    }

    /** The values of a gemm.f32 case (A f32, B f32 or bf16). */
    public enum F32Values {
        /** Gaussian A, 0.05-scaled gaussian B. */
        ORDINARY,
        /** About a third of the rows of A entirely f32 subnormals, a few more subnormals planted in A and in B. */
        SUBNORMAL,
        /** A few values near 2^60..2^100 in A or (never both) in B: huge terms, finite f32 sums. */
        HUGE,
        /** A few ±Inf and NaN in A and in B (NaN propagates, Inf·0 is NaN, Inf - Inf is NaN). */
        INF_NAN
    }

    /** The operands of one gemm.f32 case; {@code b} holds the values the kernel sees (bf16-rounded when bf16). */
    public record F32Operands(float[] a, float[] b, short[] bBits, float[] c) {}

    /** Random gemm.f32 operands of the given kind; {@code bBits} (bf16 codes of b) when {@code bBf16}, else null. */
    public static F32Operands f32Operands(SplittableRandom r, int m, int n, int k, boolean bBf16, boolean withC,
                                          F32Values values) {
        float[] a = new float[m * k], b = new float[n * k];
        for (int i = 0; i < a.length; i++) a[i] = (float) Values.gaussian(r);
        for (int i = 0; i < b.length; i++) b[i] = (float) (Values.gaussian(r) * 0.05);
        if (values == F32Values.SUBNORMAL)
            for (int i = 0; i < m; i++)
                if (r.nextInt(3) == 0)
                    for (int t = 0; t < k; t++) a[i * k + t] = (float) (Values.gaussian(r) * 0x1p-135);
        int planted = values == F32Values.ORDINARY || a.length == 0 ? 0 : 1 + r.nextInt(1 + a.length / 50);
        boolean inB = b.length > 0 && r.nextBoolean();
        for (int q = 0; q < planted; q++) {
            float sign = r.nextBoolean() ? -1f : 1f;
            switch (values) {
                case SUBNORMAL -> {
                    a[r.nextInt(a.length)] = sign * Float.intBitsToFloat(r.nextInt(1, 0x800000)); // exponent 0
                    // B subnormals only where each output keeps enough ordinary terms (k >= 8, at most 2% of B)
                    if (k >= 8 && q <= b.length / 50 && r.nextBoolean())
                        b[r.nextInt(b.length)] = sign * Float.intBitsToFloat(r.nextInt(1, 0x800000));
                }
                case HUGE -> { // all in A or all in B: no two meet in one product (2^200 overflows f32)
                    float v = sign * (float) Math.pow(2, r.nextDouble(60, 100));
                    if (inB) b[r.nextInt(b.length)] = v;
                    else a[r.nextInt(a.length)] = v;
                }
                case INF_NAN -> {
                    float special = r.nextInt(3) == 0 ? Float.NaN : sign * Float.POSITIVE_INFINITY;
                    a[r.nextInt(a.length)] = special;
                    if (b.length > 0 && r.nextBoolean()) b[r.nextInt(b.length)] = special;
                }
                default -> throw new AssertionError(values);
            }
        }
        short[] bits = null;
        if (bBf16) {
            bits = new short[b.length];
            for (int i = 0; i < b.length; i++) {
                bits[i] = Fp8Reference.floatToBf16(b[i]);
                b[i] = Fp8Reference.bf16ToFloat(bits[i]);
            }
        }
        float[] c = withC ? floats(r, m * n, 1) : null;
        return new F32Operands(a, b, bits, c);
    }

    /** gemm.f32 on random ordinary operands. */
    public static Comparison f32(Session s, SplittableRandom r, int m, int n, int k, boolean bBf16, boolean withC) {
        return f32(s, r, m, n, k, bBf16, withC, F32Values.ORDINARY);
    }

    /**
     * gemm.f32 on random operands of the given kind, against {@link GemmReference#f32}; the op runs
     * twice into two poisoned outputs, which must agree bit for bit (a second {@code bits} mismatch
     * otherwise), and with c given, a third time in place (d = c on entry), which must agree too.
     */
    public static Comparison f32(Session s, SplittableRandom r, int m, int n, int k, boolean bBf16, boolean withC,
                                 F32Values values) {
        F32Operands o = f32Operands(r, m, n, k, bBf16, withC, values);
        GemmReference.Result ref = GemmReference.f32(o.a(), o.b(), o.c(), m, n, k);
        String what = "gemm.f32 b=" + (bBf16 ? "bf16" : "f32");
        try (Arena ar = Arena.ofConfined()) {
            Tensor at = s.input(ar, Tensor.ofFloats(ar, o.a(), m, k));
            Tensor bt = s.input(ar, bBf16 ? Tensor.ofShorts(ar, DType.BF16, o.bBits(), n, k) : Tensor.ofFloats(ar, o.b(), n, k));
            Tensor ct = o.c() == null ? null : s.input(ar, Tensor.ofFloats(ar, o.c(), m, n));
            Tensor d = s.output(ar, DType.F32, m, n), d2 = s.output(ar, DType.F32, m, n);
            Gemm.f32(s.context(), d, at, bt, ct);
            Gemm.f32(s.context(), d2, at, bt, ct);
            int[] got = Fp8Checks.rawOf(s.toHost(ar, d)), again = Fp8Checks.rawOf(s.toHost(ar, d2));
            boolean[] all = new boolean[m];
            Arrays.fill(all, true);
            Comparison cmp = compare(what, s, DType.F32, got, ref, all, n, k, true);
            String differs = firstDifference("second call", got, again, n);
            if (differs == null && o.c() != null) {
                Tensor inPlace = s.input(ar, Tensor.ofFloats(ar, o.c(), m, n));
                Gemm.f32(s.context(), inPlace, at, bt, inPlace);
                differs = firstDifference("in place (c = d)", got, Fp8Checks.rawOf(s.toHost(ar, inPlace)), n);
            }
            if (differs == null) return cmp;
            return new Comparison(what, cmp.elements(), cmp.mismatches() + 1, cmp.maxAbs(), cmp.maxRel(),
                    cmp.firstMismatch() != null ? cmp.firstMismatch() : differs);
        }
    }

    /** null when the raw bits agree, else where they first differ. */
    static String firstDifference(String what, int[] expected, int[] got, int n) {
        for (int i = 0; i < expected.length; i++)
            if (expected[i] != got[i])
                return String.format("%s: element [%d, %d] is %s, the first call gave %s", what, i / n, i % n,
                        Float.intBitsToFloat(got[i]), Float.intBitsToFloat(expected[i]));
        return null;
    }

    /**
     * gemm.fp8_grouped_contiguous: {@code sizes[g]} rows per expert, each group starting
     * {@code gap} rows after the previous one ends when {@code align} (DeepGEMM-style 128-row
     * alignment: the padding rows belong to no group and must stay unwritten).
     */
    public static Comparison groupedContiguous(Session s, SplittableRandom r, int[] sizes, boolean align, int n, int k,
                                               DType dType) {
        int groups = sizes.length, kb = k / 128;
        int[] offsets = new int[groups + 1];
        int rows = 0;
        for (int g = 0; g < groups; g++) {
            offsets[g] = rows;
            rows += sizes[g];
            if (align) rows = (rows + 127) / 128 * 128;
        }
        offsets[groups] = rows;
        // With alignment the padded rows are inside a group's range, as DeepGEMM pads: they are
        // computed like any row. Rows outside every range: only past offsets[groups] here.
        int m = rows + (r.nextBoolean() ? r.nextInt(5) : 0); // trailing rows outside every group
        byte[] a = codes(r, m * k), b = codes(r, groups * n * k);
        float[] as = scales(r, m * kb), bs = scales(r, groups * ((n + 127) / 128) * kb);
        double[] out = new double[m * n], mag = new double[m * n];
        boolean[] written = new boolean[m];
        for (int g = 0; g < groups; g++) {
            GemmReference.expert(a, as, b, bs, g, offsets[g], offsets[g + 1] - offsets[g], n, k, out, mag);
            for (int i = offsets[g]; i < offsets[g + 1]; i++) written[i] = true;
        }
        try (Arena ar = Arena.ofConfined()) {
            Tensor d = s.output(ar, dType, m, n);
            Gemm.fp8GroupedContiguous(s.context(), d, s.input(ar, Tensor.ofBytes(ar, DType.E4M3, a, m, k)),
                    s.input(ar, Tensor.ofFloats(ar, as, m, kb)), s.input(ar, Tensor.ofBytes(ar, DType.E4M3, b, groups, n, k)),
                    s.input(ar, Tensor.ofFloats(ar, bs, groups, (n + 127) / 128, kb)),
                    s.input(ar, Tensor.ofInts(ar, offsets, groups + 1)));
            return compare("gemm.fp8_grouped_contiguous " + dType.label(), s, dType, Fp8Checks.rawOf(s.toHost(ar, d)),
                    new GemmReference.Result(out, mag), written, n, k);
        }
    }

    /** gemm.fp8_grouped_masked with valid row counts {@code masked} per expert and m_max rows each. */
    public static Comparison groupedMasked(Session s, SplittableRandom r, int[] masked, int mMax, int n, int k, DType dType) {
        int groups = masked.length, kb = k / 128, m = groups * mMax;
        byte[] a = codes(r, m * k), b = codes(r, groups * n * k);
        float[] as = scales(r, m * kb), bs = scales(r, groups * ((n + 127) / 128) * kb);
        double[] out = new double[m * n], mag = new double[m * n];
        boolean[] written = new boolean[m];
        for (int g = 0; g < groups; g++) {
            GemmReference.expert(a, as, b, bs, g, g * mMax, masked[g], n, k, out, mag);
            for (int i = 0; i < masked[g]; i++) written[g * mMax + i] = true;
        }
        try (Arena ar = Arena.ofConfined()) {
            Tensor d = s.output(ar, dType, groups, mMax, n);
            Gemm.fp8GroupedMasked(s.context(), d, s.input(ar, Tensor.ofBytes(ar, DType.E4M3, a, groups, mMax, k)),
                    s.input(ar, Tensor.ofFloats(ar, as, groups, mMax, kb)),
                    s.input(ar, Tensor.ofBytes(ar, DType.E4M3, b, groups, n, k)),
                    s.input(ar, Tensor.ofFloats(ar, bs, groups, (n + 127) / 128, kb)),
                    s.input(ar, Tensor.ofInts(ar, masked, groups)));
            return compare("gemm.fp8_grouped_masked " + dType.label(), s, dType, Fp8Checks.rawOf(s.toHost(ar, d)),
                    new GemmReference.Result(out, mag), written, n, k);
        }
    }
}
