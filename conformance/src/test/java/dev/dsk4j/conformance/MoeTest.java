package dev.dsk4j.conformance;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.longs;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Dsk4jException;
import dev.dsk4j.Moe;
import dev.dsk4j.Status;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** moe.gate / dispatch / gather / combine / bias_update on every backend against {@link MoeReference}. */
@ExtendWith(Backends.SkipUnavailable.class)
class MoeTest {
    static java.util.stream.Stream<Backend> backends() { return Backends.withMissing(); }

    /** One router case and the backend's answer. */
    record GateRun(Moe.GateConfig c, int t, int h, float[] x, float[] wg, float[] bias, int[] idx, float[] w,
                   float[] logits) {}

    static float[] normals(SplittableRandom r, int n, double sd) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (r.nextGaussian() * sd);
        return v;
    }

    /** A small random configuration covering V3-like (sigmoid, bias, groups), V2-like and V2-Lite-like routers. */
    static Moe.GateConfig randomConfig(SplittableRandom r) {
        int kind = r.nextInt(4);
        if (kind == 0) return Moe.GateConfig.deepSeekV3();
        int nGroup = 1 + r.nextInt(8), per = 2 + r.nextInt(8), experts = nGroup * per;
        int topkGroup = 1 + r.nextInt(nGroup), topK = 1 + r.nextInt(Math.min(topkGroup * per, 9));
        Moe.ScoreFunction f = r.nextBoolean() ? Moe.ScoreFunction.SIGMOID : Moe.ScoreFunction.SOFTMAX;
        return new Moe.GateConfig(experts, topK, nGroup, topkGroup, f, r.nextBoolean(), 0.5f + r.nextInt(32) * 0.5f);
    }

    static GateRun runGate(Session s, Arena a, Moe.GateConfig c, int t, int h, float[] x, float[] wg, float[] bias,
                           DType xType, DType wType) {
        Context ctx = s.context();
        Tensor xt = s.input(a, Fp8Checks.hostInput(a, x, xType, t, h));
        Tensor wt = s.input(a, Fp8Checks.hostInput(a, wg, wType, c.experts(), h));
        Tensor bt = bias == null ? null : s.input(a, Tensor.ofFloats(a, bias, c.experts()));
        Tensor idx = s.output(a, DType.I32, t, c.topK()), w = s.output(a, DType.F32, t, c.topK());
        Tensor lg = s.output(a, DType.F32, t, c.experts());
        Moe.gate(ctx, idx, w, lg, xt, wt, bt, c);
        return new GateRun(c, t, h, xType == DType.F32 ? x : Fp8Checks.roundToBf16(x),
                wType == DType.F32 ? wg : Fp8Checks.roundToBf16(wg), bias, s.toHost(a, idx).toIntArray(),
                s.toHost(a, w).toFloatArray(), s.toHost(a, lg).toFloatArray());
    }

    static GateRun randomGate(Session s, Arena a, SplittableRandom r, Moe.GateConfig c, int t) {
        int h = 1 + r.nextInt(300);
        if (r.nextInt(4) == 0) h = 128 * (1 + r.nextInt(4));
        float[] x = normals(r, t * h, 1), wg = normals(r, c.experts() * h, 1 / Math.sqrt(h));
        float[] bias = r.nextBoolean() ? normals(r, c.experts(), 0.05) : null;
        DType xd = r.nextBoolean() ? DType.F32 : DType.BF16, wd = r.nextBoolean() ? DType.F32 : DType.BF16;
        return runGate(s, a, c, t, h, x, wg, bias, xd, wd);
    }

    /** Indices and logits bit for bit, weights within 2 ulp-ish relative error, against the reference. */
    @ParameterizedTest
    @MethodSource("backends")
    void gateMatchesReference(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(60).forAll(longs().all(), integers().between(0, 9)).checkAssert((seed, t) -> {
                SplittableRandom r = new SplittableRandom(seed);
                Moe.GateConfig c = randomConfig(r);
                try (Arena a = Arena.ofConfined()) {
                    GateRun g = randomGate(s, a, r, c, t);
                    int[] idx = new int[t * c.topK()];
                    float[] w = new float[t * c.topK()];
                    float[] logits = MoeReference.gate(g.x(), g.wg(), g.bias(), t, g.h(), c, idx, w);
                    String what = backend + " " + c + " T=" + t + " H=" + g.h() + " bias=" + (g.bias() != null);
                    assertArrayEquals(Fp8Checks.rawOf(Tensor.ofFloats(a, logits, logits.length)),
                            Fp8Checks.rawOf(Tensor.ofFloats(a, g.logits(), g.logits().length)), what + " logits");
                    assertArrayEquals(idx, g.idx(), what + " indices");
                    for (int i = 0; i < w.length; i++)
                        assertEquals(w[i], g.w()[i], 1e-6f * Math.abs(w[i]) + 1e-30f, what + " weight " + i);
                }
            });
        }
    }

    /** Chosen experts lie in the chosen groups; distinct; renormalized weights sum to the scaling factor. */
    @ParameterizedTest
    @MethodSource("backends")
    void gateStructuralProperties(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(40).forAll(longs().all(), integers().between(1, 6)).checkAssert((seed, t) -> {
                SplittableRandom r = new SplittableRandom(seed);
                Moe.GateConfig c = randomConfig(r);
                try (Arena a = Arena.ofConfined()) {
                    GateRun g = randomGate(s, a, r, c, t);
                    for (int i = 0; i < t; i++) {
                        float[] lg = Arrays.copyOfRange(g.logits(), i * c.experts(), (i + 1) * c.experts());
                        float[] sc = MoeReference.scores(lg, c.scoreFunction());
                        float[] b = sc.clone();
                        if (g.bias() != null) for (int e = 0; e < b.length; e++) b[e] += g.bias()[e];
                        boolean[] kept = MoeReference.keptGroups(b, g.bias() != null, c);
                        double sum = 0;
                        boolean[] seen = new boolean[c.experts()];
                        for (int k = 0; k < c.topK(); k++) {
                            int e = g.idx()[i * c.topK() + k];
                            assertTrue(e >= 0 && e < c.experts() && !seen[e], "distinct, in range: " + e);
                            seen[e] = true;
                            assertTrue(kept[e / c.groupSize()], backend + " " + c + ": expert " + e + " outside the kept groups");
                            if (k > 0) {
                                int p = g.idx()[i * c.topK() + k - 1];
                                assertTrue(b[p] > b[e] || (b[p] == b[e] && p < e), "descending biased score, ties to the lower id");
                            }
                            sum += g.w()[i * c.topK() + k];
                        }
                        if (c.normTopkProb())
                            assertEquals(c.routedScalingFactor(), sum, 1e-5 * c.routedScalingFactor(), backend + " " + c);
                    }
                }
            });
        }
    }

    /** Exact ties (identical gate rows, equal bias) go to the lower expert and group ids. */
    @ParameterizedTest
    @MethodSource("backends")
    void exactTiesGoToTheLowerId(Backend backend) {
        try (Session s = new Session(backend); Arena a = Arena.ofConfined()) {
            Moe.GateConfig v3 = Moe.GateConfig.deepSeekV3();
            int h = 64;
            SplittableRandom r = new SplittableRandom(7);
            float[] x = normals(r, 2 * h, 1), row = normals(r, h, 0.1), wg = new float[256 * h];
            for (int e = 0; e < 256; e++) System.arraycopy(row, 0, wg, e * h, h);
            GateRun g = runGate(s, a, v3, 2, h, x, wg, new float[256], DType.F32, DType.F32);
            assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7}, g.idx(), backend.toString());
            for (float w : g.w()) assertEquals(2.5f / 8, w, 1e-6f);
            // raise experts 200 and 100 equally through the bias: both come first, 100 before 200;
            // then the rest of their groups (3 and 6) tie with groups 0..: groups 3, 6, 0, 1 are kept
            float[] bias = new float[256];
            bias[200] = 0.25f;
            bias[100] = 0.25f;
            g = runGate(s, a, v3, 1, h, Arrays.copyOf(x, h), wg, bias, DType.F32, DType.F32);
            assertArrayEquals(new int[] {100, 200, 0, 1, 2, 3, 4, 5}, g.idx(), backend.toString());
            // without groups (V2-Lite-like, softmax): plain lowest ids
            Moe.GateConfig lite = Moe.GateConfig.deepSeekV2Lite();
            g = runGate(s, a, lite, 1, h, Arrays.copyOf(x, h), Arrays.copyOf(wg, 64 * h), null, DType.BF16, DType.BF16);
            assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5}, g.idx(), backend.toString());
            for (float w : g.w()) assertEquals(1f / 64, w, 1e-8f);
        }
    }

    /** Permuting the tokens permutes indices, weights and logits bit for bit. */
    @ParameterizedTest
    @MethodSource("backends")
    void permutingTokensPermutesTheRouting(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(15).forAll(longs().all(), integers().between(2, 12)).checkAssert((seed, t) -> {
                SplittableRandom r = new SplittableRandom(seed);
                Moe.GateConfig c = randomConfig(r);
                int h = 1 + r.nextInt(200);
                float[] x = normals(r, t * h, 1), wg = normals(r, c.experts() * h, 0.1), bias = normals(r, c.experts(), 0.02);
                int[] perm = permutation(r, t);
                float[] xp = new float[t * h];
                for (int i = 0; i < t; i++) System.arraycopy(x, perm[i] * h, xp, i * h, h);
                try (Arena a = Arena.ofConfined()) {
                    GateRun g1 = runGate(s, a, c, t, h, x, wg, bias, DType.F32, DType.F32);
                    GateRun g2 = runGate(s, a, c, t, h, xp, wg, bias, DType.F32, DType.F32);
                    int k = c.topK();
                    for (int i = 0; i < t; i++)
                        for (int j = 0; j < k; j++) {
                            assertEquals(g1.idx()[perm[i] * k + j], g2.idx()[i * k + j]);
                            assertEquals(Float.floatToIntBits(g1.w()[perm[i] * k + j]), Float.floatToIntBits(g2.w()[i * k + j]));
                        }
                }
            });
        }
    }

    static int[] permutation(SplittableRandom r, int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = r.nextInt(i + 1), tmp = p[i];
            p[i] = p[j];
            p[j] = tmp;
        }
        return p;
    }

    /** Distinct random experts per token. */
    static int[] randomIndices(SplittableRandom r, int t, int k, int experts) {
        int[] idx = new int[t * k];
        for (int i = 0; i < t; i++) {
            int[] p = permutation(r, experts);
            System.arraycopy(p, 0, idx, i * k, k);
        }
        return idx;
    }

    /**
     * Dispatch (contiguous with and without 128-row padding, and masked) equals the reference; gather
     * then combine with identity experts and one unit weight per token returns the input bit for bit;
     * with random weights and a shared term combine equals the reference bit for bit.
     */
    @ParameterizedTest
    @MethodSource("backends")
    void dispatchGatherCombine(Backend backend) {
        try (Session s = new Session(backend)) {
            Context ctx = s.context();
            qt().withExamples(40).forAll(longs().all(), integers().between(0, 40), integers().between(0, 2)).checkAssert((seed, t, mode) -> {
                SplittableRandom r = new SplittableRandom(seed);
                int experts = 1 + r.nextInt(40), k = 1 + r.nextInt(Math.min(experts, 8)), h = 1 + r.nextInt(70);
                int align = mode == 1 ? 128 : mode == 0 ? 1 + r.nextInt(4) : 1;
                int mMax = mode == 2 ? Math.max(t, 1) + r.nextInt(3) : 0;
                int[] idx = randomIndices(r, t, k, experts);
                try (Arena a = Arena.ofConfined()) {
                    Tensor it = s.input(a, Tensor.ofInts(a, idx, t, k));
                    Moe.Dispatch d = mode == 2 ? Moe.dispatchMasked(ctx, a, it, experts, mMax)
                            : Moe.dispatch(ctx, a, it, experts, align);
                    int rows = (int) d.rows();
                    int[][] ref = MoeReference.dispatch(idx, experts, align, mMax, rows);
                    String what = backend + " T=" + t + " k=" + k + " E=" + experts + " align=" + align + " mMax=" + mMax;
                    assertArrayEquals(ref[0], s.toHost(a, d.counts()).toIntArray(), what + " counts");
                    assertArrayEquals(ref[1], s.toHost(a, d.offsets()).toIntArray(), what + " offsets");
                    assertArrayEquals(ref[2], s.toHost(a, d.rowOf()).toIntArray(), what + " rowOf");
                    assertArrayEquals(ref[3], s.toHost(a, d.srcOf()).toIntArray(), what + " srcOf");
                    for (int e = 0; e < experts; e++) assertEquals(0, ref[1][e] % (mMax > 0 ? mMax : align));
                    // gather then combine, identity experts, one unit weight per token: the input back
                    float[] x = normals(r, t * h, 3);
                    Tensor xt = s.input(a, Tensor.ofFloats(a, x, t, h));
                    Tensor xp = s.output(a, DType.F32, rows, h);
                    Moe.gather(ctx, xp, xt, d);
                    float[] xph = s.toHost(a, xp).toFloatArray();
                    for (int row = 0; row < rows; row++)
                        for (int c = 0; c < h; c++)
                            assertEquals(ref[3][row] < 0 ? 0f : x[ref[3][row] / k * h + c], xph[row * h + c], what + " gather");
                    float[] unit = new float[t * k];
                    for (int i = 0; i < t; i++) unit[i * k + r.nextInt(k)] = 1f;
                    Tensor y = s.output(a, DType.F32, t, h);
                    Moe.combine(ctx, y, xp, s.input(a, Tensor.ofFloats(a, unit, t, k)), d.rowOf(), null);
                    assertArrayEquals(Fp8Checks.rawOf(Tensor.ofFloats(a, x, Math.max(x.length, 0))),
                            Fp8Checks.rawOf(s.toHost(a, y)), what + " identity round trip");
                    // random weights and a shared term: the reference's fma order bit for bit
                    float[] w = normals(r, t * k, 1), sh = normals(r, t * h, 1);
                    Moe.combine(ctx, y, xp, s.input(a, Tensor.ofFloats(a, w, t, k)), d.rowOf(),
                            s.input(a, Tensor.ofFloats(a, sh, t, h)));
                    float[] yr = MoeReference.combine(xph, w, ref[2], sh, t, k, h);
                    assertArrayEquals(Fp8Checks.rawOf(Tensor.ofFloats(a, yr, yr.length)), Fp8Checks.rawOf(s.toHost(a, y)),
                            what + " weighted combine");
                }
            });
        }
    }

    /** Permuting tokens permutes the combined outputs (dispatch order changes, results do not). */
    @ParameterizedTest
    @MethodSource("backends")
    void permutingTokensPermutesCombinedOutputs(Backend backend) {
        try (Session s = new Session(backend)) {
            Context ctx = s.context();
            qt().withExamples(20).forAll(longs().all(), integers().between(1, 30)).checkAssert((seed, t) -> {
                SplittableRandom r = new SplittableRandom(seed);
                int experts = 2 + r.nextInt(20), k = 1 + r.nextInt(Math.min(experts, 6)), h = 1 + r.nextInt(40);
                int[] idx = randomIndices(r, t, k, experts), perm = permutation(r, t);
                float[] x = normals(r, t * h, 1), w = normals(r, t * k, 1);
                int[] idx2 = new int[t * k];
                float[] x2 = new float[t * h], w2 = new float[t * k];
                for (int i = 0; i < t; i++) {
                    System.arraycopy(idx, perm[i] * k, idx2, i * k, k);
                    System.arraycopy(w, perm[i] * k, w2, i * k, k);
                    System.arraycopy(x, perm[i] * h, x2, i * h, h);
                }
                try (Arena a = Arena.ofConfined()) {
                    float[] y1 = layer(s, a, idx, x, w, t, k, h, experts), y2 = layer(s, a, idx2, x2, w2, t, k, h, experts);
                    for (int i = 0; i < t; i++)
                        for (int c = 0; c < h; c++)
                            assertEquals(Float.floatToIntBits(y1[perm[i] * h + c]), Float.floatToIntBits(y2[i * h + c]));
                }
            });
        }
    }

    /** dispatch, gather, "expert e scales by e+1", combine. */
    private static float[] layer(Session s, Arena a, int[] idx, float[] x, float[] w, int t, int k, int h, int experts) {
        Context ctx = s.context();
        Moe.Dispatch d = Moe.dispatch(ctx, a, s.input(a, Tensor.ofInts(a, idx, t, k)), experts, 4);
        Tensor xp = s.output(a, DType.F32, d.rows(), h);
        Moe.gather(ctx, xp, s.input(a, Tensor.ofFloats(a, x, t, h)), d);
        float[] e = s.toHost(a, xp).toFloatArray();
        int[] off = s.toHost(a, d.offsets()).toIntArray();
        for (int ex = 0; ex < experts; ex++)
            for (int row = off[ex]; row < off[ex + 1]; row++)
                for (int c = 0; c < h; c++) e[row * h + c] *= ex + 1;
        Tensor y = s.output(a, DType.F32, t, h);
        Moe.combine(ctx, y, s.input(a, Tensor.ofFloats(a, e, d.rows(), h)), s.input(a, Tensor.ofFloats(a, w, t, k)),
                d.rowOf(), null);
        return s.toHost(a, y).toFloatArray();
    }


    /**
     * moe.silu_quant against silu(g)·u in f32 and the act_quant reference: scales within 1e-6
     * relative, codes equal or (an f32 rounding of exp apart, at an e4m3 rounding boundary) adjacent.
     */
    @ParameterizedTest
    @MethodSource("backends")
    void siluQuantMatchesTheReference(Backend backend) {
        try (Session s = new Session(backend)) {
            Context ctx = s.context();
            qt().withExamples(20).forAll(longs().all(), integers().between(0, 17)).checkAssert((seed, rows) -> {
                SplittableRandom r = new SplittableRandom(seed);
                int inter = 128 * (1 + r.nextInt(3));
                float[] h = normals(r, rows * 2 * inter, Math.pow(10, r.nextDouble(-3, 1)));
                float[] a = new float[rows * inter];
                for (int i = 0; i < rows; i++)
                    for (int c = 0; c < inter; c++) {
                        float g = h[i * 2 * inter + c], u = h[i * 2 * inter + inter + c];
                        a[i * inter + c] = g / (1f + (float) Math.exp(-g)) * u;
                    }
                byte[] q = new byte[rows * inter];
                float[] sc = new float[rows * (inter / 128)];
                Fp8Reference.actQuant(a, rows, inter, false, q, sc);
                try (Arena ar = Arena.ofConfined()) {
                    Tensor y = s.output(ar, DType.E4M3, rows, inter), scale = s.output(ar, DType.F32, rows, inter / 128);
                    Moe.siluQuant(ctx, y, scale, s.input(ar, Tensor.ofFloats(ar, h, rows, 2 * inter)));
                    byte[] gy = s.toHost(ar, y).toByteArray();
                    float[] gs = s.toHost(ar, scale).toFloatArray();
                    for (int i = 0; i < sc.length; i++) assertEquals(sc[i], gs[i], 1e-6f * sc[i], backend + " scale " + i);
                    int off = 0;
                    for (int i = 0; i < q.length; i++) {
                        int d = Math.abs((q[i] & 0x7f) - (gy[i] & 0x7f));
                        boolean sameSign = (q[i] & 0x80) == (gy[i] & 0x80) || (q[i] & 0x7f) == 0 || (gy[i] & 0x7f) == 0;
                        assertTrue(d <= 1 && sameSign, backend + " code " + i + ": " + (gy[i] & 0xff) + " vs " + (q[i] & 0xff));
                        if (d != 0) off++;
                    }
                    assertTrue(off <= Math.max(1, q.length / 1000), backend + ": " + off + " codes one step off");
                }
            });
        }
    }

    /** Weights of [g, n, k] in dtype wt (e4m3: per expert weight_quant) and their f32 values. */
    record Weights(Tensor values, Tensor scales, float[] dense) {}

    static Weights weights(Session s, Arena a, float[] w, int g, int n, int k, DType wt) {
        if (wt == DType.F32) {
            Tensor t = Tensor.ofFloats(a, w, g == 0 ? new long[] {n, k} : new long[] {g, n, k});
            return new Weights(s.input(a, t), null, w);
        }
        if (wt == DType.BF16) {
            Tensor t = Fp8Checks.hostInput(a, w, DType.BF16, g == 0 ? new long[] {n, k} : new long[] {g, n, k});
            return new Weights(s.input(a, t), null, Fp8Checks.roundToBf16(w));
        }
        int gg = Math.max(g, 1), nb = (n + 127) / 128, kb = k / 128;
        byte[] q = new byte[gg * n * k];
        float[] sc = new float[gg * nb * kb], dense = new float[gg * n * k];
        for (int e = 0; e < gg; e++) {
            float[] we = Arrays.copyOfRange(w, e * n * k, (e + 1) * n * k);
            byte[] qe = new byte[n * k];
            float[] se = new float[nb * kb];
            Fp8Reference.weightQuant(we, n, k, false, qe, se);
            System.arraycopy(qe, 0, q, e * n * k, n * k);
            System.arraycopy(se, 0, sc, e * nb * kb, nb * kb);
            System.arraycopy(Fp8Reference.weightDequant(qe, n, k, se), 0, dense, e * n * k, n * k);
        }
        long[] shape = g == 0 ? new long[] {n, k} : new long[] {g, n, k};
        long[] sshape = g == 0 ? new long[] {nb, kb} : new long[] {g, nb, kb};
        return new Weights(s.input(a, Tensor.ofBytes(a, DType.E4M3, q, shape)), s.input(a, Tensor.ofFloats(a, sc, sshape)),
                dense);
    }

    /** moe.forward equals a dense per-token evaluation of the chosen experts (fp8 and bf16 weights, with/without shared). */
    @ParameterizedTest
    @MethodSource("backends")
    void forwardEqualsDensePerTokenEvaluation(Backend backend) {
        try (Session s = new Session(backend)) {
            Context ctx = s.context();
            qt().withExamples(8).forAll(longs().all(), integers().between(0, 3)).checkAssert((seed, opts) -> {
                SplittableRandom r = new SplittableRandom(seed);
                boolean fp8 = (opts & 1) == 0, shared = (opts & 2) == 0;
                DType wt = fp8 ? DType.E4M3 : DType.BF16;
                int t = new int[] {1, 3, 9, 20}[r.nextInt(4)], h = 256, inter = 128, si = shared ? 128 : 0;
                Moe.GateConfig c = r.nextBoolean() ? new Moe.GateConfig(16, 4, 4, 2, Moe.ScoreFunction.SIGMOID, true, 2.5f)
                        : new Moe.GateConfig(12, 3, 1, 1, Moe.ScoreFunction.SOFTMAX, false, 1f);
                int e = c.experts();
                float[] x = normals(r, t * h, 1), wg = normals(r, e * h, 0.06);
                float[] bias = c.scoreFunction() == Moe.ScoreFunction.SIGMOID ? normals(r, e, 0.01) : null;
                try (Arena a = Arena.ofConfined()) {
                    Weights w13 = weights(s, a, normals(r, e * 2 * inter * h, 0.06), e, 2 * inter, h, wt);
                    Weights w2 = weights(s, a, normals(r, e * h * inter, 0.09), e, h, inter, wt);
                    Weights s13 = shared ? weights(s, a, normals(r, 2 * si * h, 0.06), 0, 2 * si, h, wt) : null;
                    Weights s2 = shared ? weights(s, a, normals(r, h * si, 0.09), 0, h, si, wt) : null;
                    Moe.Layer layer = new Moe.Layer(c, s.input(a, Tensor.ofFloats(a, wg, e, h)),
                            bias == null ? null : s.input(a, Tensor.ofFloats(a, bias, e)), w13.values(), w13.scales(),
                            w2.values(), w2.scales(), shared ? s13.values() : null, shared ? s13.scales() : null,
                            shared ? s2.values() : null, shared ? s2.scales() : null);
                    Tensor y = s.output(a, DType.F32, t, h), counts = s.output(a, DType.I32, e);
                    Moe.forward(ctx, y, s.input(a, Tensor.ofFloats(a, x, t, h)), layer, counts);
                    int[] idx = new int[t * c.topK()];
                    float[] ref = MoeReference.denseLayer(x, wg, bias, w13.dense(), w2.dense(), shared ? s13.dense() : null,
                            shared ? s2.dense() : null, t, h, inter, si, c, wt, idx);
                    float[] got = s.toHost(a, y).toFloatArray();
                    double num = 0, den = 0;
                    for (int i = 0; i < ref.length; i++) {
                        num += (got[i] - ref[i]) * (double) (got[i] - ref[i]);
                        den += ref[i] * (double) ref[i];
                    }
                    double rel = Math.sqrt(num / den);
                    String what = backend + " " + (fp8 ? "fp8" : "bf16") + (shared ? " +shared" : "") + " T=" + t + " " + c;
                    assertTrue(rel < (fp8 ? 2e-2 : 5e-3), what + ": relative L2 error " + rel);
                    int[] refCounts = new int[e];
                    for (int i : idx) refCounts[i]++;
                    assertArrayEquals(refCounts, s.toHost(a, counts).toIntArray(), what + " counts");
                }
            });
        }
    }

    /** The relative Frobenius error |got - ref| / |ref| (0 when both are empty). */
    static double relativeFrobenius(float[] got, float[] ref) {
        double num = 0, den = 0;
        for (int i = 0; i < ref.length; i++) {
            num += (got[i] - ref[i]) * (double) (got[i] - ref[i]);
            den += ref[i] * (double) ref[i];
        }
        return ref.length == 0 ? 0 : Math.sqrt(num / den);
    }

    /**
     * moe.forward with f32 weights (gemm.f32 experts on exact f32 activations, silu(g)·u unrounded)
     * equals the dense per-token evaluation within gemm.f32's tolerance, for random T (0 and 1
     * included), random routers (groups, sigmoid / softmax, with and without bias), any hidden /
     * inter sizes (no multiple of 128 needed), f32 or bf16 x, with and without a shared expert.
     */
    @ParameterizedTest
    @MethodSource("backends")
    void forwardWithF32WeightsEqualsDensePerTokenEvaluation(Backend backend) {
        try (Session s = new Session(backend)) {
            Context ctx = s.context();
            qt().withExamples(12).forAll(longs().all(), integers().between(0, 3)).checkAssert((seed, opts) -> {
                SplittableRandom r = new SplittableRandom(seed);
                boolean shared = (opts & 1) == 0, bf16x = (opts & 2) != 0;
                int pick = r.nextInt(5);
                int t = pick == 0 ? 0 : pick == 1 ? 1 : 2 + r.nextInt(23);
                Moe.GateConfig c = randomConfig(r);
                int e = c.experts(), h = 1 + r.nextInt(c.experts() > 64 ? 48 : 160), inter = 1 + r.nextInt(96);
                int si = shared ? 1 + r.nextInt(96) : 0;
                float[] x = normals(r, t * h, 1), wg = normals(r, e * h, 0.3);
                if (bf16x) x = Fp8Checks.roundToBf16(x);
                float[] bias = r.nextBoolean() ? normals(r, e, 0.01) : null;
                double ws = 1 / Math.sqrt(h), ws2 = 1 / Math.sqrt(inter);
                try (Arena a = Arena.ofConfined()) {
                    Weights w13 = weights(s, a, normals(r, e * 2 * inter * h, ws), e, 2 * inter, h, DType.F32);
                    Weights w2 = weights(s, a, normals(r, e * h * inter, ws2), e, h, inter, DType.F32);
                    Weights s13 = shared ? weights(s, a, normals(r, 2 * si * h, ws), 0, 2 * si, h, DType.F32) : null;
                    Weights s2 = shared ? weights(s, a, normals(r, h * si, 1 / Math.sqrt(si)), 0, h, si, DType.F32) : null;
                    Moe.Layer layer = new Moe.Layer(c, s.input(a, Tensor.ofFloats(a, wg, e, h)),
                            bias == null ? null : s.input(a, Tensor.ofFloats(a, bias, e)), w13.values(), null,
                            w2.values(), null, shared ? s13.values() : null, null, shared ? s2.values() : null, null);
                    Tensor y = s.output(a, DType.F32, t, h), counts = s.output(a, DType.I32, e);
                    Tensor xt = s.input(a, Fp8Checks.hostInput(a, x, bf16x ? DType.BF16 : DType.F32, t, h));
                    Moe.forward(ctx, y, xt, layer, counts);
                    int[] idx = new int[t * c.topK()];
                    float[] ref = MoeReference.denseLayer(x, wg, bias, w13.dense(), w2.dense(), shared ? s13.dense() : null,
                            shared ? s2.dense() : null, t, h, inter, si, c, DType.F32, idx);
                    float[] got = s.toHost(a, y).toFloatArray();
                    assertEquals(t * h, got.length);
                    double rel = relativeFrobenius(got, ref);
                    String what = backend + " f32" + (shared ? " +shared(" + si + ")" : "") + (bf16x ? " x bf16" : "")
                            + " T=" + t + " H=" + h + " I=" + inter + " " + c;
                    assertTrue(rel <= 1e-5, what + ": relative Frobenius error " + rel);
                    int[] refCounts = new int[e];
                    for (int i : idx) refCounts[i]++;
                    assertArrayEquals(refCounts, s.toHost(a, counts).toIntArray(), what + " counts");
                }
            });
        }
    }

    /** f32 weights take no scales, and every weight of a layer has the layer's dtype. */
    @ParameterizedTest
    @MethodSource("backends")
    void forwardWithF32WeightsRejectsScalesAndMixedDtypes(Backend backend) {
        try (Session s = new Session(backend); Arena a = Arena.ofConfined()) {
            Context ctx = s.context();
            SplittableRandom r = new SplittableRandom(11);
            int t = 2, h = 16, inter = 8, e = 4;
            Moe.GateConfig c = new Moe.GateConfig(e, 2, 2, 1, Moe.ScoreFunction.SIGMOID, true, 1.5f);
            Tensor wg = s.input(a, Tensor.ofFloats(a, normals(r, e * h, 0.1), e, h));
            Tensor w13 = s.input(a, Tensor.ofFloats(a, normals(r, e * 2 * inter * h, 0.1), e, 2 * inter, h));
            Tensor w2 = s.input(a, Tensor.ofFloats(a, normals(r, e * h * inter, 0.1), e, h, inter));
            Tensor s13 = s.input(a, Tensor.ofFloats(a, normals(r, 2 * inter * h, 0.1), 2 * inter, h));
            Tensor s2 = s.input(a, Tensor.ofFloats(a, normals(r, h * inter, 0.1), h, inter));
            Tensor w2bf = s.input(a, Fp8Checks.hostInput(a, normals(r, e * h * inter, 0.1), DType.BF16, e, h, inter));
            Tensor s2bf = s.input(a, Fp8Checks.hostInput(a, normals(r, h * inter, 0.1), DType.BF16, h, inter));
            Tensor scale13 = s.input(a, Tensor.ofFloats(a, new float[e], e, 1, 1));
            Tensor scale2 = s.input(a, Tensor.ofFloats(a, new float[1], 1, 1));
            Tensor x = s.input(a, Tensor.ofFloats(a, normals(r, t * h, 1), t, h));
            Tensor y = s.output(a, DType.F32, t, h);
            record Bad(String arg, Moe.Layer layer) {}
            Bad[] bad = {
                new Bad("w13Scale", new Moe.Layer(c, wg, null, w13, scale13, w2, null, null, null, null, null)),
                new Bad("w2Scale", new Moe.Layer(c, wg, null, w13, null, w2, scale13, null, null, null, null)),
                new Bad("sharedW2Scale", new Moe.Layer(c, wg, null, w13, null, w2, null, s13, null, s2, scale2)),
                new Bad("w2", new Moe.Layer(c, wg, null, w13, null, w2bf, null, null, null, null, null)),
                new Bad("sharedW2", new Moe.Layer(c, wg, null, w13, null, w2, null, s13, null, s2bf, null)),
            };
            for (Bad b : bad) {
                var ex = assertThrows(IllegalArgumentException.class, () -> Moe.forward(ctx, y, x, b.layer(), null),
                        backend + " " + b.arg());
                assertTrue(ex.getMessage().contains("'" + b.arg() + "'"), b.arg() + ": " + ex.getMessage());
            }
            // the same layer without the offending pieces runs
            Moe.forward(ctx, y, x, new Moe.Layer(c, wg, null, w13, null, w2, null, s13, null, s2, null), null);
            for (float v : s.toHost(a, y).toFloatArray()) assertTrue(Float.isFinite(v), backend + ": " + v);
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void biasUpdateFollowsTheLoadSign(Backend backend) {
        try (Session s = new Session(backend); Arena a = Arena.ofConfined()) {
            SplittableRandom r = new SplittableRandom(3);
            int experts = 256;
            float[] bias = normals(r, experts, 0.01);
            int[] counts = new int[experts];
            for (int e = 0; e < experts; e++) counts[e] = r.nextInt(16);
            counts[5] = 0;
            Tensor b = s.input(a, Tensor.ofFloats(a, bias, experts));
            Moe.biasUpdate(s.context(), b, s.input(a, Tensor.ofInts(a, counts, experts)), 0.001f);
            float[] ref = bias.clone();
            MoeReference.biasUpdate(ref, counts, 0.001f);
            assertArrayEquals(ref, s.toHost(a, b).toFloatArray(), 0f);
            assertEquals(bias[5] + 0.001f, ref[5], 0f);
            // equal loads: nothing moves
            int[] even = new int[experts];
            Arrays.fill(even, 8);
            Tensor b2 = s.input(a, Tensor.ofFloats(a, bias, experts));
            Moe.biasUpdate(s.context(), b2, s.input(a, Tensor.ofInts(a, even, experts)), 0.001f);
            assertArrayEquals(bias, s.toHost(a, b2).toFloatArray(), 0f);
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void badArgumentsNameTheArgument(Backend backend) {
        try (Session s = new Session(backend); Arena a = Arena.ofConfined()) {
            Context ctx = s.context();
            var e = assertThrows(IllegalArgumentException.class, () -> new Moe.GateConfig(256, 8, 7, 4, Moe.ScoreFunction.SIGMOID, true, 2.5f));
            assertTrue(e.getMessage().contains("'nGroup'"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> new Moe.GateConfig(256, 129, 8, 4, Moe.ScoreFunction.SIGMOID, true, 2.5f));
            assertTrue(e.getMessage().contains("'topK'"), e.getMessage());
            Tensor x = ctx.allocate(a, DType.F32, 2, 64), wg = ctx.allocate(a, DType.F32, 256, 32);
            e = assertThrows(IllegalArgumentException.class, () -> Moe.gate(ctx, a, x, wg, null, Moe.GateConfig.deepSeekV3()));
            assertTrue(e.getMessage().contains("'wg'"), e.getMessage());
            if (ctx.isCuda()) {
                // device indices are not read by the host: an out-of-range id is ignored (rowOf -1, not
                // counted), and the masked layout drops the pairs past mMax (rowOf -1, still counted)
                Moe.Dispatch d = Moe.dispatch(ctx, a, s.input(a, Tensor.ofInts(a, new int[] {0, 1, 2, 9}, 2, 2)), 9, 1);
                assertArrayEquals(new int[] {1, 1, 1, 0, 0, 0, 0, 0, 0}, s.toHost(a, d.counts()).toIntArray());
                assertArrayEquals(new int[] {0, 1, 2, -1}, s.toHost(a, d.rowOf()).toIntArray());
                assertArrayEquals(new int[] {0, 1, 2, -1}, s.toHost(a, d.srcOf()).toIntArray());
                Moe.Dispatch m = Moe.dispatchMasked(ctx, a, s.input(a, Tensor.ofInts(a, new int[] {1, 1, 1}, 3, 1)), 4, 2);
                assertArrayEquals(new int[] {0, 3, 0, 0}, s.toHost(a, m.counts()).toIntArray());
                assertArrayEquals(new int[] {2, 3, -1}, s.toHost(a, m.rowOf()).toIntArray());
                assertArrayEquals(new int[] {-1, -1, 0, 1, -1, -1, -1, -1}, s.toHost(a, m.srcOf()).toIntArray());
                return;
            }
            // an expert id out of range is a native error naming 'indices'
            Tensor bad = Tensor.ofInts(a, new int[] {0, 1, 2, 9}, 2, 2);
            var ne = assertThrows(Dsk4jException.class, () -> Moe.dispatch(ctx, a, bad, 9, 1));
            assertEquals(Status.INVALID_ARGUMENT, ne.status());
            assertTrue(ne.getMessage().contains("'indices'") && ne.getMessage().contains("entry 3"), ne.getMessage());
            // masked layout overflow
            Tensor same = Tensor.ofInts(a, new int[] {1, 1, 1}, 3, 1);
            ne = assertThrows(Dsk4jException.class, () -> Moe.dispatchMasked(ctx, a, same, 4, 2));
            assertTrue(ne.getMessage().contains("m_max"), ne.getMessage());
        }
    }
}
