package dev.dsk4j.conformance;

import dev.dsk4j.DType;
import dev.dsk4j.Elementwise;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.util.SplittableRandom;

/**
 * Runs one case of each elementwise op on a backend and compares with {@link ElementwiseReference}
 * (dsk4j.h elementwise.*): {@code add}, {@code embed}, {@code copy_columns} and {@code gather_rows} bit for
 * bit; {@code rmsnorm} and {@code silu_mul} within one unit in the last place of the output dtype (the CUDA
 * fast rmsnorm sums in another order; exp in silu may differ by an ulp between libms), bit for bit where
 * the reference is infinite or NaN. Inputs are f32 or bf16 with some zeros, subnormals, huge values and,
 * for the maps, NaN and ±Inf. Outputs are poisoned first (Session).
 */
public final class ElementwiseChecks {
    private ElementwiseChecks() {}

    static float[] values(SplittableRandom r, int n, boolean specials) { return values(r, n, specials, true); }

    /** Gaussians (σ 3) with some zeros, subnormals, huge values (when {@code huge}) and NaN / ±Inf (specials). */
    static float[] values(SplittableRandom r, int n, boolean specials, boolean huge) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            int k = r.nextInt(40);
            if (k == 2 && !huge) k = 5;
            v[i] = switch (k) {
                case 0 -> 0f;
                case 1 -> Float.MIN_VALUE * r.nextInt(1, 1000);
                case 2 -> (float) (r.nextDouble(-1, 1) * 1e30);
                case 3 -> specials ? Float.NaN : 1f;
                case 4 -> specials ? (r.nextBoolean() ? Float.POSITIVE_INFINITY : Float.NEGATIVE_INFINITY) : -1f;
                default -> (float) (r.nextGaussian() * 3);
            };
        }
        return v;
    }

    /** x as stored in dtype (bf16: rounded to nearest even). */
    static float[] stored(float[] x, DType dt) {
        if (dt == DType.F32) return x.clone();
        float[] o = new float[x.length];
        for (int i = 0; i < x.length; i++) o[i] = Fp8Reference.bf16ToFloat(Fp8Reference.floatToBf16(x[i]));
        return o;
    }

    static float round(float v, DType dt) { return dt == DType.F32 ? v : Fp8Reference.bf16ToFloat(Fp8Reference.floatToBf16(v)); }

    static float[] host(Session s, Arena a, Tensor t) {
        Tensor h = s.toHost(a, t);
        if (h.dtype() == DType.F32) return h.toFloatArray();
        short[] b = h.toShortArray();
        float[] o = new float[b.length];
        for (int i = 0; i < b.length; i++) o[i] = Fp8Reference.bf16ToFloat(b[i]);
        return o;
    }

    /** Equal bits (or both NaN), or both finite and at most {@code ulps} units of dtype's last place apart. */
    static Comparison within(String what, float[] got, float[] exp, DType dt, int ulps) {
        long bad = 0;
        String first = null;
        double maxAbs = 0, maxRel = 0;
        for (int i = 0; i < exp.length; i++) {
            float g = got[i], e = exp[i];
            boolean same = Float.floatToRawIntBits(g) == Float.floatToRawIntBits(e) || (Float.isNaN(g) && Float.isNaN(e));
            double step = Math.ulp(e) * (dt == DType.BF16 ? 65536 : 1);
            boolean ok = same || (ulps > 0 && Float.isFinite(g) && Float.isFinite(e) && Math.abs((double) g - e) <= ulps * step);
            if (Float.isFinite(g) && Float.isFinite(e)) {
                double d = Math.abs((double) g - e);
                maxAbs = Math.max(maxAbs, d);
                if (e != 0) maxRel = Math.max(maxRel, d / Math.abs(e));
            }
            if (!ok) {
                bad++;
                if (first == null) first = "element " + i + ": got " + g + " expected " + e;
            }
        }
        return new Comparison(what, exp.length, bad, maxAbs, maxRel, first);
    }

    /** elementwise.rmsnorm of x [rows, ldx] (first d columns) with w [d]. */
    public static Comparison rmsnorm(Session s, SplittableRandom r, int rows, int d, int ldx, DType dt) {
        // rows scaled by 10^-5 .. 10^2: where mean(x²) is near eps, eps shows
        // one case in four with huge values (they dominate their row's mean; elsewhere eps shows)
        float[] x = values(r, rows * ldx, false, r.nextInt(4) == 0), w = values(r, d, false);
        float scale = (float) Math.pow(10, r.nextInt(-5, 3));
        for (int i = 0; i < x.length; i++) x[i] *= scale;
        x = stored(x, dt);
        double eps = r.nextBoolean() ? 1e-6 : r.nextDouble(1e-8, 1e-3);
        float[] exp = ElementwiseReference.rmsnorm(x, rows, d, ldx, w, eps);
        for (int i = 0; i < exp.length; i++) exp[i] = round(exp[i], dt);
        try (Arena a = Arena.ofConfined()) {
            Tensor y = s.output(a, dt, rows, d);
            Elementwise.rmsnorm(s.context(), y, s.input(a, Fp8Checks.hostInput(a, x, dt, rows, ldx)),
                    s.input(a, Tensor.ofFloats(a, w, d)), eps);
            return within("elementwise.rmsnorm " + dt.label(), host(s, a, y), exp, dt, 1);
        }
    }

    /** elementwise.add (ulps 0) or elementwise.silu_mul (ulps 1) of n elements. */
    public static Comparison binary(Session s, SplittableRandom r, boolean silu, int n, DType dt) {
        float[] p = stored(values(r, n, true), dt), q = stored(values(r, n, true), dt);
        float[] exp = silu ? ElementwiseReference.siluMul(p, q) : ElementwiseReference.add(p, q);
        for (int i = 0; i < n; i++) exp[i] = round(exp[i], dt);
        try (Arena a = Arena.ofConfined()) {
            Tensor y = s.output(a, dt, n), tp = s.input(a, Fp8Checks.hostInput(a, p, dt, n)),
                    tq = s.input(a, Fp8Checks.hostInput(a, q, dt, n));
            if (silu) Elementwise.siluMul(s.context(), y, tp, tq);
            else Elementwise.add(s.context(), y, tp, tq);
            return within("elementwise." + (silu ? "silu_mul " : "add ") + dt.label(), host(s, a, y), exp, dt, silu ? 1 : 0);
        }
    }

    /** elementwise.embed of tokens ids from a [vocab, d] table (tableType) into yType. */
    public static Comparison embed(Session s, SplittableRandom r, int tokens, int vocab, int d, DType tableType, DType yType) {
        float[] table = stored(values(r, vocab * d, true), tableType);
        int[] ids = new int[tokens];
        for (int t = 0; t < tokens; t++) ids[t] = t == 0 ? vocab - 1 : r.nextInt(vocab);
        float[] exp = new float[tokens * d];
        for (int t = 0; t < tokens; t++)
            for (int i = 0; i < d; i++) exp[t * d + i] = round(table[ids[t] * d + i], yType);
        try (Arena a = Arena.ofConfined()) {
            Tensor y = s.output(a, yType, tokens, d);
            Elementwise.embed(s.context(), y, s.input(a, Fp8Checks.hostInput(a, table, tableType, vocab, d)),
                    s.input(a, Tensor.ofInts(a, ids)));
            return within("elementwise.embed " + tableType.label() + "->" + yType.label(), host(s, a, y), exp, yType, 0);
        }
    }

    /** elementwise.copy_columns into a poisoned-then-filled dst, and elementwise.gather_rows (f32 bits). */
    public static Comparison copies(Session s, SplittableRandom r, int rows, DType dt) {
        int sc = r.nextInt(1, 200), width = r.nextInt(0, sc + 1), s0 = r.nextInt(sc - width + 1);
        int dc = width + r.nextInt(0, 50), d0 = r.nextInt(dc - width + 1);
        float[] src = stored(values(r, rows * sc, true), dt), dst0 = stored(values(r, rows * dc, true), dt);
        float[] exp = dst0.clone();
        for (int t = 0; t < rows; t++) System.arraycopy(src, t * sc + s0, exp, t * dc + d0, width);
        int n = r.nextInt(0, 2 * rows + 1);
        int[] idx = new int[n];
        for (int i = 0; i < n; i++) idx[i] = r.nextInt(Math.max(rows, 1));
        float[] expG = new float[n * sc];
        for (int i = 0; i < n; i++) System.arraycopy(src, idx[i] * sc, expG, i * sc, sc);
        try (Arena a = Arena.ofConfined()) {
            Tensor ts = s.input(a, Fp8Checks.hostInput(a, src, dt, rows, sc));
            Tensor td = s.input(a, Fp8Checks.hostInput(a, dst0, dt, rows, dc));
            Elementwise.copyColumns(s.context(), td, d0, ts, s0, width);
            Comparison c = within("elementwise.copy_columns/gather_rows " + dt.label(), host(s, a, td), exp, dt, 0);
            if (rows == 0) return c;
            Tensor g = s.output(a, dt, n, sc);
            Elementwise.gatherRows(s.context(), g, ts, s.input(a, Tensor.ofInts(a, idx)));
            return c.plus(within("elementwise.copy_columns/gather_rows " + dt.label(), host(s, a, g), expG, dt, 0));
        }
    }
}
