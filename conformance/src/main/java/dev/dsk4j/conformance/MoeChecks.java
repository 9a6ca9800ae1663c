package dev.dsk4j.conformance;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Moe;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.util.List;
import java.util.SplittableRandom;

/**
 * moe.gate and moe.dispatch on one backend against {@link MoeReference} for the conformance runner:
 * the logits and the chosen experts bit for bit (the routing weights, one exp apart at most, are
 * checked with a tolerance by the unit tests), the dispatch layout exactly.
 */
public final class MoeChecks {
    private MoeChecks() {}

    static float[] normals(SplittableRandom r, int n, double sd) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (r.nextGaussian() * sd);
        return v;
    }

    /** A random router: V3's itself, or a small one (sigmoid/softmax, grouped or greedy, renormalized or not). */
    public static Moe.GateConfig randomConfig(SplittableRandom r) {
        if (r.nextInt(4) == 0) return Moe.GateConfig.deepSeekV3();
        int nGroup = 1 + r.nextInt(8), per = 2 + r.nextInt(8), experts = nGroup * per;
        int topkGroup = 1 + r.nextInt(nGroup), topK = 1 + r.nextInt(Math.min(topkGroup * per, 9));
        return new Moe.GateConfig(experts, topK, nGroup, topkGroup,
                r.nextBoolean() ? Moe.ScoreFunction.SIGMOID : Moe.ScoreFunction.SOFTMAX, r.nextBoolean(),
                0.5f + r.nextInt(32) * 0.5f);
    }

    private static float[] asFloats(int[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) f[i] = v[i];
        return f;
    }

    /** moe.gate on T random tokens: {indices, logits}. */
    public static List<Comparison> gate(Session s, SplittableRandom r, int t) {
        Moe.GateConfig c = randomConfig(r);
        int h = 1 + r.nextInt(300);
        DType xd = r.nextBoolean() ? DType.F32 : DType.BF16, wd = r.nextBoolean() ? DType.F32 : DType.BF16;
        float[] x = normals(r, t * h, 1), wg = normals(r, c.experts() * h, 1 / Math.sqrt(h));
        float[] bias = r.nextBoolean() ? normals(r, c.experts(), 0.05) : null;
        Context ctx = s.context();
        try (Arena a = Arena.ofConfined()) {
            Tensor idx = s.output(a, DType.I32, t, c.topK()), w = s.output(a, DType.F32, t, c.topK());
            Tensor lg = s.output(a, DType.F32, t, c.experts());
            Moe.gate(ctx, idx, w, lg, s.input(a, Fp8Checks.hostInput(a, x, xd, t, h)),
                    s.input(a, Fp8Checks.hostInput(a, wg, wd, c.experts(), h)),
                    bias == null ? null : s.input(a, Tensor.ofFloats(a, bias, c.experts())), c);
            float[] xr = xd == DType.F32 ? x : Fp8Checks.roundToBf16(x), wr = wd == DType.F32 ? wg : Fp8Checks.roundToBf16(wg);
            int[] ri = new int[t * c.topK()];
            float[] rw = new float[t * c.topK()];
            float[] rl = MoeReference.gate(xr, wr, bias, t, h, c, ri, rw);
            String what = "moe.gate " + c.scoreFunction().name().toLowerCase() + (c.nGroup() > 1 ? " grouped" : " greedy");
            return List.of(Comparison.floats(what + " indices", asFloats(s.toHost(a, idx).toIntArray()), asFloats(ri)),
                    Comparison.floats(what + " logits", s.toHost(a, lg).toFloatArray(), rl));
        }
    }

    /** moe.dispatch of random distinct routings: counts, offsets, rowOf, srcOf in one comparison. */
    public static Comparison dispatch(Session s, SplittableRandom r) {
        int t = r.nextInt(0, 40), experts = 1 + r.nextInt(40), k = 1 + r.nextInt(Math.min(experts, 8));
        int mode = r.nextInt(3), align = mode == 1 ? 128 : 1 + r.nextInt(4), mMax = mode == 2 ? Math.max(t, 1) : 0;
        int[] idx = new int[t * k];
        for (int i = 0; i < t; i++) {
            int[] p = new int[experts];
            for (int e = 0; e < experts; e++) p[e] = e;
            for (int e = experts - 1; e > 0; e--) {
                int j = r.nextInt(e + 1), tmp = p[e];
                p[e] = p[j];
                p[j] = tmp;
            }
            System.arraycopy(p, 0, idx, i * k, k);
        }
        Context ctx = s.context();
        try (Arena a = Arena.ofConfined()) {
            Tensor it = s.input(a, Tensor.ofInts(a, idx, t, k));
            Moe.Dispatch d = mode == 2 ? Moe.dispatchMasked(ctx, a, it, experts, mMax) : Moe.dispatch(ctx, a, it, experts, align);
            int[][] ref = MoeReference.dispatch(idx, experts, mode == 2 ? 1 : align, mMax, (int) d.rows());
            int[][] got = {s.toHost(a, d.counts()).toIntArray(), s.toHost(a, d.offsets()).toIntArray(),
                    s.toHost(a, d.rowOf()).toIntArray(), s.toHost(a, d.srcOf()).toIntArray()};
            return Comparison.floats("moe.dispatch " + (mode == 2 ? "masked" : mode == 1 ? "contiguous align 128" : "contiguous"),
                    asFloats(concat(got)), asFloats(concat(ref)));
        }
    }

    private static int[] concat(int[][] parts) {
        int n = 0;
        for (int[] p : parts) n += p.length;
        int[] out = new int[n];
        int o = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, o, p.length);
            o += p.length;
        }
        return out;
    }
}
