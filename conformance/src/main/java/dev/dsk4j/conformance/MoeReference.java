package dev.dsk4j.conformance;

import dev.dsk4j.DType;
import dev.dsk4j.Moe;
import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * The plain-Java reference of the moe ops (DESIGN.md 4.5, dsk4j.h). The router follows the spec
 * literally with a different algorithm than the kernels (it sorts; the kernels select): logits in
 * the contract's 16-lane f32 order, scores in double rounded once, groups and experts ordered by
 * descending biased score with ties to the lower id. Dispatch, combine and the bias update are
 * the contract's loops. {@link #denseLayer} evaluates a SwiGLU MoE layer token by token.
 */
public final class MoeReference {
    private MoeReference() {}

    /** The logit of x·w in the contract's order (16 fma lanes, pairwise lane reduction). */
    public static float logit(float[] x, int xOff, float[] w, int wOff, int hidden) {
        float[] acc = new float[16];
        for (int j = 0; j < hidden; j++) acc[j & 15] = Math.fma(x[xOff + j], w[wOff + j], acc[j & 15]);
        for (int l = 0; l < 8; l++) acc[l] += acc[l + 8];
        for (int l = 0; l < 4; l++) acc[l] += acc[l + 4];
        for (int l = 0; l < 2; l++) acc[l] += acc[l + 2];
        return acc[0] + acc[1];
    }

    /** The scores of one token's logits. */
    public static float[] scores(float[] logits, Moe.ScoreFunction f) {
        int e = logits.length;
        float[] s = new float[e];
        if (f == Moe.ScoreFunction.SIGMOID) {
            for (int i = 0; i < e; i++) s[i] = (float) (1.0 / (1.0 + Math.exp(-(double) logits[i])));
        } else {
            float m = logits[0];
            for (int i = 1; i < e; i++) if (logits[i] > m) m = logits[i];
            double sum = 0;
            for (int i = 0; i < e; i++) sum += Math.exp((double) logits[i] - m);
            for (int i = 0; i < e; i++) s[i] = (float) (Math.exp((double) logits[i] - m) / sum);
        }
        return s;
    }

    /** Ids 0..n-1 by descending value, ties to the lower id. */
    static int[] order(float[] v) {
        return IntStream.range(0, v.length).boxed()
                .sorted((a, b) -> v[a] > v[b] ? -1 : v[a] < v[b] ? 1 : Integer.compare(a, b))
                .mapToInt(Integer::intValue).toArray();
    }

    /** The groups kept for one token's biased scores b. */
    public static boolean[] keptGroups(float[] b, boolean withBias, Moe.GateConfig c) {
        int g = c.nGroup(), per = c.groupSize();
        boolean[] kept = new boolean[g];
        if (g == 1) {
            kept[0] = true;
            return kept;
        }
        float[] score = new float[g];
        for (int i = 0; i < g; i++) {
            float[] bg = Arrays.copyOfRange(b, i * per, (i + 1) * per);
            int[] o = order(bg);
            score[i] = withBias ? bg[o[0]] + bg[o[1]] : bg[o[0]];
        }
        int[] o = order(score);
        for (int r = 0; r < c.topkGroup(); r++) kept[o[r]] = true;
        return kept;
    }

    /** The routing of one token from its logits: indices and weights (topK each). */
    public static void route(float[] logits, float[] bias, Moe.GateConfig c, int[] idx, float[] w, int off) {
        float[] s = scores(logits, c.scoreFunction());
        float[] b = new float[s.length];
        for (int i = 0; i < s.length; i++) b[i] = bias == null ? s[i] : s[i] + bias[i];
        boolean[] kept = keptGroups(b, bias != null, c);
        float[] masked = b.clone();
        for (int i = 0; i < s.length; i++) if (!kept[i / c.groupSize()]) masked[i] = Float.NEGATIVE_INFINITY;
        // -inf ties among masked experts never matter: topK <= kept experts
        int[] o = order(masked);
        float sum = 0;
        for (int r = 0; r < c.topK(); r++) {
            idx[off + r] = o[r];
            w[off + r] = s[o[r]];
            sum += s[o[r]];
        }
        for (int r = 0; r < c.topK(); r++) {
            if (c.normTopkProb() && sum > 0) w[off + r] /= sum;
            w[off + r] *= c.routedScalingFactor();
        }
    }

    /** moe.gate of x[t, h] with wg[e, h] (both as f32 values): fills idx, w [t, topK] and returns logits [t, e]. */
    public static float[] gate(float[] x, float[] wg, float[] bias, int t, int h, Moe.GateConfig c, int[] idx, float[] w) {
        int e = c.experts();
        float[] logits = new float[t * e];
        for (int i = 0; i < t; i++) {
            float[] row = new float[e];
            for (int j = 0; j < e; j++) row[j] = logit(x, i * h, wg, j * h, h);
            System.arraycopy(row, 0, logits, i * e, e);
            route(row, bias, c, idx, w, i * c.topK());
        }
        return logits;
    }

    /** moe.dispatch: returns {counts[E], offsets[E+1], rowOf[T*K], srcOf[rows]}. */
    public static int[][] dispatch(int[] indices, int experts, int align, int mMax, int rows) {
        int[] counts = new int[experts], offsets = new int[experts + 1], rowOf = new int[indices.length];
        int[] srcOf = new int[rows];
        Arrays.fill(srcOf, -1);
        for (int e : indices) counts[e]++;
        for (int e = 0; e < experts; e++)
            offsets[e + 1] = mMax > 0 ? (e + 1) * mMax : offsets[e] + (counts[e] + align - 1) / align * align;
        int[] cur = Arrays.copyOf(offsets, experts);
        for (int p = 0; p < indices.length; p++) {
            int r = cur[indices[p]]++;
            rowOf[p] = r;
            srcOf[r] = p;
        }
        return new int[][] {counts, offsets, rowOf, srcOf};
    }

    /** moe.combine in f32: y[t] = Σ_i fma(w, e[rowOf], acc) (+ shared). */
    public static float[] combine(float[] e, float[] weights, int[] rowOf, float[] shared, int t, int k, int h) {
        float[] y = new float[t * h];
        for (int i = 0; i < t; i++)
            for (int c = 0; c < h; c++) {
                float acc = 0;
                for (int s = 0; s < k; s++) acc = Math.fma(weights[i * k + s], e[rowOf[i * k + s] * h + c], acc);
                if (shared != null) acc += shared[i * h + c];
                y[i * h + c] = acc;
            }
        return y;
    }

    /** moe.bias_update. */
    public static void biasUpdate(float[] bias, int[] counts, float gamma) {
        double total = 0;
        for (int c : counts) total += c;
        double mean = total / counts.length;
        for (int e = 0; e < counts.length; e++) {
            if (counts[e] < mean) bias[e] += gamma;
            else if (counts[e] > mean) bias[e] -= gamma;
        }
    }

    /**
     * The activation as the layer feeds it to a GEMM for weights of dtype {@code wt}: e4m3 (act_quant
     * 1x128 and back), bf16 (rounded) or f32 (unchanged).
     */
    static float[] asActivation(float[] v, int rows, int k, DType wt) {
        if (wt == DType.F32) return v.clone();
        float[] out = new float[v.length];
        if (wt == DType.BF16) {
            for (int i = 0; i < v.length; i++) out[i] = Fp8Reference.bf16ToFloat(Fp8Reference.floatToBf16(v[i]));
            return out;
        }
        byte[] q = new byte[v.length];
        float[] sc = new float[rows * (k / 128)];
        Fp8Reference.actQuant(v, rows, k, false, q, sc);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < k; j++) out[r * k + j] = Fp8Reference.e4m3ToFloat(q[r * k + j]) * sc[r * (k / 128) + j / 128];
        return out;
    }

    /**
     * One SwiGLU expert on one token's activation xa[h] with dense f32 weights w13 [2I, H], w2 [H, I]
     * (double sums; {@code a = silu(g)·u} rounded to f32, then fed to w2 as {@link #asActivation}).
     */
    static double[] expert(float[] xa, float[] w13, int w13Off, float[] w2, int w2Off, int h, int inter, DType wt) {
        float[] a = new float[inter];
        for (int n = 0; n < inter; n++) {
            double g = 0, u = 0;
            for (int j = 0; j < h; j++) {
                g += (double) xa[j] * w13[w13Off + n * h + j];
                u += (double) xa[j] * w13[w13Off + (n + inter) * h + j];
            }
            a[n] = (float) (g / (1 + Math.exp(-g)) * u);
        }
        float[] aa = asActivation(a, 1, inter, wt);
        double[] out = new double[h];
        for (int c = 0; c < h; c++) {
            double acc = 0;
            for (int j = 0; j < inter; j++) acc += (double) aa[j] * w2[w2Off + c * inter + j];
            out[c] = acc;
        }
        return out;
    }

    /**
     * A dense per-token evaluation of a MoE layer: route each token ({@link #gate}), run each chosen
     * expert and the shared one on it and sum with the routing weights (double accumulation). Weights
     * are given as f32 values (of e4m3 x scale, of bf16, or f32 themselves); {@code wt}, the layer's
     * weight dtype, says how activations are fed to the GEMMs: e4m3 quantized 1x128, bf16 rounded,
     * f32 exact.
     * w13 [E, 2I, H], w2 [E, H, I], s13 [2Is, H] / s2 [H, Is] or null. Returns y [T, H]; idx gets the routing.
     */
    public static float[] denseLayer(float[] x, float[] wg, float[] bias, float[] w13, float[] w2, float[] s13, float[] s2,
                                     int t, int h, int inter, int sharedInter, Moe.GateConfig c, DType wt, int[] idx) {
        float[] w = new float[t * c.topK()];
        gate(x, wg, bias, t, h, c, idx, w);
        float[] xa = asActivation(x, t, h, wt);
        float[] y = new float[t * h];
        for (int i = 0; i < t; i++) {
            float[] xt = java.util.Arrays.copyOfRange(xa, i * h, (i + 1) * h);
            double[] acc = new double[h];
            for (int k = 0; k < c.topK(); k++) {
                int e = idx[i * c.topK() + k];
                double[] o = expert(xt, w13, e * 2 * inter * h, w2, e * h * inter, h, inter, wt);
                for (int j = 0; j < h; j++) acc[j] += w[i * c.topK() + k] * o[j];
            }
            if (s13 != null) {
                double[] o = expert(xt, s13, 0, s2, 0, h, sharedInter, wt);
                for (int j = 0; j < h; j++) acc[j] += o[j];
            }
            for (int j = 0; j < h; j++) y[i * h + j] = (float) acc[j];
        }
        return y;
    }
}
