package dev.dsk4j.conformance;

import dev.dsk4j.Mla;

/**
 * Plain-Java reference of mla.* (DESIGN.md 4.4), computed in double from the values the kernels
 * see: the cache token bytes ({@link #token}) are the contract's, and decode reads back exactly
 * those bytes ({@link #readToken}), so a lossy FP8 cache is compared with the same quantized values.
 */
public final class MlaReference {
    private MlaReference() {}

    public static final int LAT = Mla.LATENT, ROPE = Mla.ROPE, KD = LAT + ROPE, PAGE = Mla.PAGE_TOKENS;

    /** The bytes of one cached token of {@code format} from f32 {@code lat} [512] and {@code pe} [64]. */
    public static byte[] token(Mla.CacheFormat format, float[] lat, int latOff, float[] pe, int peOff) {
        byte[] b = new byte[format.tokenBytes()];
        switch (format) {
            case F32 -> {
                for (int i = 0; i < LAT; i++) putInt(b, 4 * i, Float.floatToRawIntBits(lat[latOff + i]));
                for (int i = 0; i < ROPE; i++) putInt(b, 4 * (LAT + i), Float.floatToRawIntBits(pe[peOff + i]));
            }
            case BF16 -> {
                for (int i = 0; i < LAT; i++) putShort(b, 2 * i, Fp8Reference.floatToBf16(lat[latOff + i]));
                for (int i = 0; i < ROPE; i++) putShort(b, 2 * (LAT + i), Fp8Reference.floatToBf16(pe[peOff + i]));
            }
            case FP8 -> {
                float[] x = new float[LAT];
                System.arraycopy(lat, latOff, x, 0, LAT);
                byte[] y = new byte[LAT];
                float[] s = new float[4];
                Fp8Reference.actQuant(x, 1, LAT, true, y, s); // ue8m0: powers of two
                System.arraycopy(y, 0, b, 0, LAT);
                for (int g = 0; g < 4; g++) putInt(b, LAT + 4 * g, Float.floatToRawIntBits(s[g]));
                for (int i = 0; i < ROPE; i++) putShort(b, LAT + 16 + 2 * i, Fp8Reference.floatToBf16(pe[peOff + i]));
            }
        }
        return b;
    }

    /** The 576 values (latent, rope) a token's bytes stand for: f32 exact, bf16 widened, e4m3 × scale. */
    public static double[] readToken(Mla.CacheFormat format, byte[] b, int off) {
        double[] v = new double[KD];
        switch (format) {
            case F32 -> {
                for (int i = 0; i < KD; i++) v[i] = Float.intBitsToFloat(getInt(b, off + 4 * i));
            }
            case BF16 -> {
                for (int i = 0; i < KD; i++) v[i] = Fp8Reference.bf16ToFloat((short) getShort(b, off + 2 * i));
            }
            case FP8 -> {
                for (int i = 0; i < LAT; i++) {
                    float s = Float.intBitsToFloat(getInt(b, off + LAT + 4 * (i / 128)));
                    v[i] = (double) Fp8Reference.e4m3ToFloat(b[off + i]) * s;
                }
                for (int i = 0; i < ROPE; i++) v[LAT + i] = Fp8Reference.bf16ToFloat((short) getShort(b, off + LAT + 16 + 2 * i));
            }
        }
        return v;
    }

    /**
     * The K/V rows of sequence b ({@code [seqLen][576]}) from a pool's bytes through its block table
     * [batch, maxPages].
     */
    public static double[][] sequence(Mla.CacheFormat format, byte[] pool, int[] blockTable, int maxPages, int b, int len) {
        double[][] kv = new double[len][];
        for (int p = 0; p < len; p++) {
            long page = blockTable[b * maxPages + p / PAGE];
            kv[p] = readToken(format, pool, (int) ((page * PAGE + p % PAGE) * format.tokenBytes()));
        }
        return kv;
    }

    /** The outputs of {@link #decode}: o [rows][512] and lse [rows] in the order (b, s, h). */
    public record Decode(double[][] o, double[] lse, double[] maxKv) {}

    /**
     * mla.decode: q_latent [B,Sq,H,512], q_pe [B,Sq,H,64] (as the kernels see them: f32 values), kv[b]
     * [seqLen][576]. maxKv[row]: the largest |latent| the row's keys hold (for error bounds).
     */
    public static Decode decode(float[] qLat, float[] qPe, double[][][] kv, int[] seqLens, int batch, int sq, int heads,
                                double scale, boolean causal) {
        int rows = batch * sq * heads;
        double[][] o = new double[rows][LAT];
        double[] lse = new double[rows], maxKv = new double[rows];
        for (int b = 0; b < batch; b++)
            for (int s = 0; s < sq; s++)
                for (int h = 0; h < heads; h++) {
                    int row = (b * sq + s) * heads + h, len = seqLens[b];
                    int end = len == 0 ? 0 : causal ? len - sq + s + 1 : len;
                    if (end == 0) {
                        lse[row] = Double.NEGATIVE_INFINITY;
                        continue;
                    }
                    double[] logit = new double[end];
                    double mx = Double.NEGATIVE_INFINITY;
                    for (int p = 0; p < end; p++) {
                        double acc = 0;
                        for (int i = 0; i < LAT; i++) acc += (double) qLat[row * LAT + i] * kv[b][p][i];
                        for (int i = 0; i < ROPE; i++) acc += (double) qPe[row * ROPE + i] * kv[b][p][LAT + i];
                        logit[p] = scale * acc;
                        mx = Math.max(mx, logit[p]);
                    }
                    double sum = 0;
                    for (int p = 0; p < end; p++) sum += Math.exp(logit[p] - mx);
                    for (int p = 0; p < end; p++) {
                        double w = Math.exp(logit[p] - mx) / sum;
                        for (int i = 0; i < LAT; i++) {
                            o[row][i] += w * kv[b][p][i];
                            maxKv[row] = Math.max(maxKv[row], Math.abs(kv[b][p][i]));
                        }
                    }
                    lse[row] = mx + Math.log(sum);
                }
        return new Decode(o, lse, maxKv);
    }

    /**
     * The naive (non-absorbed) MHA over the decompressed cache, per head h: k = [W_UK[h]·c, k_pe],
     * v = W_UV[h]·c, q = [q_nope, q_pe]; logit = scale·q·k. Returns o [rows][128] in the order (b, s, h).
     * wkv [H, 256, 512] as f32 values; qNope [B,Sq,H,128].
     */
    public static double[][] naive(float[] qNope, float[] qPe, float[] wkv, double[][][] kv, int[] seqLens, int batch,
                                   int sq, int heads, double scale, boolean causal) {
        double[][] out = new double[batch * sq * heads][128];
        for (int b = 0; b < batch; b++) {
            int len = seqLens[b];
            for (int h = 0; h < heads; h++) {
                double[][] k = new double[len][128], v = new double[len][128];
                for (int p = 0; p < len; p++)
                    for (int d = 0; d < 128; d++) {
                        double ak = 0, av = 0;
                        for (int c = 0; c < LAT; c++) {
                            ak += (double) wkv[(h * 256 + d) * LAT + c] * kv[b][p][c];
                            av += (double) wkv[(h * 256 + 128 + d) * LAT + c] * kv[b][p][c];
                        }
                        k[p][d] = ak;
                        v[p][d] = av;
                    }
                for (int s = 0; s < sq; s++) {
                    int row = (b * sq + s) * heads + h, end = len == 0 ? 0 : causal ? len - sq + s + 1 : len;
                    if (end == 0) continue;
                    double[] logit = new double[end];
                    double mx = Double.NEGATIVE_INFINITY;
                    for (int p = 0; p < end; p++) {
                        double acc = 0;
                        for (int d = 0; d < 128; d++) acc += (double) qNope[row * 128 + d] * k[p][d];
                        for (int i = 0; i < ROPE; i++) acc += (double) qPe[row * ROPE + i] * kv[b][p][LAT + i];
                        logit[p] = scale * acc;
                        mx = Math.max(mx, logit[p]);
                    }
                    double sum = 0;
                    for (int p = 0; p < end; p++) sum += Math.exp(logit[p] - mx);
                    for (int p = 0; p < end; p++) {
                        double w = Math.exp(logit[p] - mx) / sum;
                        for (int d = 0; d < 128; d++) out[row][d] += w * v[p][d];
                    }
                }
            }
        }
        return out;
    }

    /** The outputs of {@link #prefill}: o [T*H][vDim], lse [T*H] (token-major), maxV [T*H]. */
    public record Prefill(double[][] o, double[] lse, double[] maxV) {}

    /** mla.prefill on f32 values: q, k [T,H,dqk], v [T,H,dv], packed sequences cu [nseq+1]. */
    public static Prefill prefill(float[] q, float[] k, float[] v, int[] cu, int heads, int dqk, int dv, double scale,
                                  boolean causal) {
        int tokens = cu[cu.length - 1];
        double[][] o = new double[tokens * heads][dv];
        double[] lse = new double[tokens * heads], maxV = new double[tokens * heads];
        for (int sIdx = 0; sIdx + 1 < cu.length; sIdx++)
            for (int t = cu[sIdx]; t < cu[sIdx + 1]; t++)
                for (int h = 0; h < heads; h++) {
                    int row = t * heads + h, end = causal ? t + 1 : cu[sIdx + 1];
                    int n = end - cu[sIdx];
                    double[] logit = new double[n];
                    double mx = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < n; j++) {
                        int u = cu[sIdx] + j;
                        double acc = 0;
                        for (int i = 0; i < dqk; i++) acc += (double) q[row * dqk + i] * k[(u * heads + h) * dqk + i];
                        logit[j] = scale * acc;
                        mx = Math.max(mx, logit[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < n; j++) sum += Math.exp(logit[j] - mx);
                    for (int j = 0; j < n; j++) {
                        int u = cu[sIdx] + j;
                        double w = Math.exp(logit[j] - mx) / sum;
                        for (int c = 0; c < dv; c++) {
                            double x = v[(u * heads + h) * dv + c];
                            o[row][c] += w * x;
                            maxV[row] = Math.max(maxV[row], Math.abs(x));
                        }
                    }
                    lse[row] = mx + Math.log(sum);
                }
        return new Prefill(o, lse, maxV);
    }

    /**
     * absorb_q: y[t,h,c] = Σ_{d<128} x[t,h,d]·w[h,d,c] (x [T,H,stride]); absorb_o (oSide): y[t,h,d] =
     * Σ_c x[t,h,c]·w[h,128+d,c] (x [T,H,512]). Returns {value, Σ|terms|} per output element.
     */
    public static double[][] absorb(float[] x, float[] w, int tokens, int heads, int stride, boolean oSide) {
        int outW = oSide ? 128 : LAT, n = tokens * heads * outW;
        double[] val = new double[n], mag = new double[n];
        for (int t = 0; t < tokens; t++)
            for (int h = 0; h < heads; h++)
                for (int j = 0; j < outW; j++) {
                    double acc = 0, m = 0;
                    if (!oSide) {
                        for (int d = 0; d < 128; d++) {
                            double p = (double) x[(t * heads + h) * stride + d] * w[(h * 256 + d) * LAT + j];
                            acc += p;
                            m += Math.abs(p);
                        }
                    } else {
                        for (int c = 0; c < LAT; c++) {
                            double p = (double) x[(t * heads + h) * LAT + c] * w[(h * 256 + 128 + j) * LAT + c];
                            acc += p;
                            m += Math.abs(p);
                        }
                    }
                    int i = (t * heads + h) * outW + j;
                    val[i] = acc;
                    mag[i] = m;
                }
        return new double[][] {val, mag};
    }

    static void putInt(byte[] b, int off, int v) {
        for (int i = 0; i < 4; i++) b[off + i] = (byte) (v >>> (8 * i));
    }

    static void putShort(byte[] b, int off, short v) {
        b[off] = (byte) v;
        b[off + 1] = (byte) (v >>> 8);
    }

    static int getInt(byte[] b, int off) {
        return (b[off] & 0xff) | (b[off + 1] & 0xff) << 8 | (b[off + 2] & 0xff) << 16 | (b[off + 3] & 0xff) << 24;
    }

    static int getShort(byte[] b, int off) { return (b[off] & 0xff) | (b[off + 1] & 0xff) << 8; }
}
