package dev.dsk4j.conformance;

import dev.dsk4j.DType;
import dev.dsk4j.Mla;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Runs mla.* cases on a backend and compares with {@link MlaReference}:
 * <ul>
 *   <li>cache_append: every written slot bit for bit the contract's token bytes (all formats);</li>
 *   <li>decode: against the double reference over the values of the backend's own cache bytes
 *       (so the lossy FP8 cache compares tightly): each o_latent element within
 *       {@code tol·max|latent|} of its row's keys, relative Frobenius error at most 1e-5 (f32 output) /
 *       1e-2 (bf16), lse within 1e-5·(1 + |lse|) (f32 queries); a sequence of length 0 gives o = 0,
 *       lse = -inf exactly;</li>
 *   <li>the equivalence: absorb_q, decode, absorb_o on the backend == the naive MHA over the
 *       decompressed K/V (k = [W_UK·c, k_pe], v = W_UV·c) in double, Frobenius 1e-4 (f32) / 2e-2 (bf16);</li>
 *   <li>prefill: the double reference of the packed causal attention, bounds as decode;</li>
 *   <li>absorb: per element {@code (K + 8)·2^-24·Σ|terms|} (f32 accumulation over K terms), plus 2^-8·|ref|
 *       for bf16 outputs.</li>
 * </ul>
 * Outputs and the cache pool are poisoned first, so an unwritten element fails.
 */
public final class MlaChecks {
    private MlaChecks() {}

    static final int LAT = MlaReference.LAT, ROPE = MlaReference.ROPE, PAGE = MlaReference.PAGE;

    /** A paged cache filled through mla.cache_append on the backend. */
    public record Filled(Mla.LatentCache cache, Tensor blockTable, Tensor seqLens, int[] bt, int[] lens, int maxPages,
                         byte[] pool, double[][][] kv, Comparison appendCheck) {}

    /** Random lengths with the edge cases 1, 63, 64, 65 and a long one mixed in. */
    public static int[] lengths(SplittableRandom r, int batch, int minLen, int longLen) {
        int[] edge = {1, 63, 64, 65, longLen, 0};
        int[] lens = new int[batch];
        for (int b = 0; b < batch; b++) {
            int v = r.nextInt(3) == 0 ? r.nextInt(1, 200) : edge[r.nextInt(edge.length)];
            lens[b] = v == 0 ? 0 : Math.max(v, minLen);
        }
        return lens;
    }

    /**
     * Fills a cache of {@code format} with sequences of {@code lens} (random latent/pe values of
     * {@code dtype}) on pages in random order (unused block-table entries are -1, an extra unused
     * page or two in the pool), appending all tokens in one call in random order.
     */
    public static Filled fill(Session s, Arena a, SplittableRandom r, Mla.CacheFormat format, DType dtype, int[] lens) {
        int batch = lens.length, maxPages = 1, total = 0, pagesUsed = 0;
        for (int len : lens) {
            maxPages = Math.max(maxPages, (len + PAGE - 1) / PAGE);
            total += len;
            pagesUsed += (len + PAGE - 1) / PAGE;
        }
        maxPages += r.nextInt(2);
        int numPages = pagesUsed + r.nextInt(3);
        int[] perm = permutation(r, numPages);
        int[] bt = new int[batch * maxPages];
        java.util.Arrays.fill(bt, -1);
        int next = 0;
        for (int b = 0; b < batch; b++)
            for (int g = 0; g * PAGE < lens[b]; g++) bt[b * maxPages + g] = perm[next++];
        // tokens in random order
        int[] seq = new int[total], pos = new int[total];
        int t = 0;
        for (int b = 0; b < batch; b++)
            for (int p = 0; p < lens[b]; p++, t++) {
                seq[t] = b;
                pos[t] = p;
            }
        int[] order = permutation(r, total);
        int[] seqO = new int[total], posO = new int[total];
        for (int i = 0; i < total; i++) {
            seqO[i] = seq[order[i]];
            posO[i] = pos[order[i]];
        }
        float[] lat = values(r, total * LAT, 1.0), pe = values(r, total * ROPE, 1.0);
        if (dtype == DType.BF16) {
            lat = Fp8Checks.roundToBf16(lat);
            pe = Fp8Checks.roundToBf16(pe);
        }
        Mla.LatentCache cache = Mla.LatentCache.allocate(s.context(), a, format, numPages);
        s.context().fill(cache.pages(), Session.POISON);
        Tensor btT = s.input(a, Tensor.ofInts(a, bt, batch, maxPages));
        Mla.append(s.context(), cache, s.input(a, Fp8Checks.hostInput(a, lat, dtype, total, LAT)),
                s.input(a, Fp8Checks.hostInput(a, pe, dtype, total, ROPE)), s.input(a, Tensor.ofInts(a, seqO, total)),
                s.input(a, Tensor.ofInts(a, posO, total)), btT);
        byte[] pool = s.toHost(a, cache.pages()).segment().toArray(ValueLayout.JAVA_BYTE);
        // every written slot: the contract's bytes
        int tb = format.tokenBytes();
        long bad = 0;
        String first = null;
        for (int i = 0; i < total; i++) {
            byte[] exp = MlaReference.token(format, lat, i * LAT, pe, i * ROPE);
            long page = bt[seqO[i] * maxPages + posO[i] / PAGE];
            int off = (int) ((page * PAGE + posO[i] % PAGE) * tb);
            for (int j = 0; j < tb; j++)
                if (pool[off + j] != exp[j]) {
                    bad++;
                    if (first == null)
                        first = "token " + i + " (seq " + seqO[i] + ", position " + posO[i] + ") byte " + j + ": got 0x"
                                + Integer.toHexString(pool[off + j] & 0xff) + ", expected 0x"
                                + Integer.toHexString(exp[j] & 0xff);
                    break;
                }
        }
        Comparison appendCheck = new Comparison("mla.cache_append " + format + " " + dtype.label(), total, bad, 0, 0, first);
        double[][][] kv = new double[batch][][];
        for (int b = 0; b < batch; b++) kv[b] = MlaReference.sequence(format, pool, bt, maxPages, b, lens[b]);
        Tensor lensT = s.input(a, Tensor.ofInts(a, lens.clone(), batch));
        return new Filled(cache, btT, lensT, bt, lens, maxPages, pool, kv, appendCheck);
    }

    /** mla.decode of random queries against a filled cache; [append, o_latent, lse]. */
    public static List<Comparison> decode(Session s, SplittableRandom r, Mla.CacheFormat format, DType dtype, int[] lens,
                                          int sq, int heads, boolean causal) {
        try (Arena a = Arena.ofConfined()) {
            Filled f = fill(s, a, r, format, dtype, lens);
            int batch = lens.length, rows = batch * sq * heads;
            double scale = r.nextDouble(0.03, 0.2);
            float[] ql = values(r, rows * LAT, 1.0), qp = values(r, rows * ROPE, 1.0);
            if (dtype == DType.BF16) {
                ql = Fp8Checks.roundToBf16(ql);
                qp = Fp8Checks.roundToBf16(qp);
            }
            Tensor o = s.output(a, dtype, batch, sq, heads, LAT), lse = s.output(a, DType.F32, batch, sq, heads);
            Mla.decode(s.context(), o, lse, s.input(a, Fp8Checks.hostInput(a, ql, dtype, batch, sq, heads, LAT)),
                    s.input(a, Fp8Checks.hostInput(a, qp, dtype, batch, sq, heads, ROPE)), f.cache(), f.blockTable(),
                    f.seqLens(), scale, causal);
            MlaReference.Decode ref = MlaReference.decode(ql, qp, f.kv(), lens, batch, sq, heads, (float) scale, causal);
            String what = "mla.decode " + format + " " + dtype.label() + (causal ? " causal" : "");
            List<Comparison> out = new ArrayList<>();
            out.add(f.appendCheck());
            out.addAll(compareRows(what, floats(s, a, o), s.toHost(a, lse).toFloatArray(), ref.o(), ref.lse(), ref.maxKv(),
                    LAT, dtype));
            return out;
        }
    }

    /**
     * o [rows][width] and lse [rows] against the reference; rows whose reference lse is -inf must be
     * exactly 0 and -inf.
     */
    static List<Comparison> compareRows(String what, float[] got, float[] gotLse, double[][] ref, double[] refLse,
                                        double[] mag, int width, DType dtype) {
        int rows = ref.length, live = 0;
        long emptyBad = 0;
        String emptyFirst = null;
        for (int i = 0; i < rows; i++) {
            if (refLse[i] != Double.NEGATIVE_INFINITY) {
                live++;
                continue;
            }
            boolean ok = gotLse[i] == Float.NEGATIVE_INFINITY;
            for (int c = 0; c < width; c++) ok &= got[i * width + c] == 0f;
            if (!ok) {
                emptyBad++;
                if (emptyFirst == null) emptyFirst = "row " + i + " has no visible key: lse " + gotLse[i] + ", o[0] " + got[i * width];
            }
        }
        float[] g = new float[live * width], gl = new float[live];
        double[] e = new double[live * width], m = new double[live * width], el = new double[live], ml = new double[live];
        for (int i = 0, k = 0; i < rows; i++) {
            if (refLse[i] == Double.NEGATIVE_INFINITY) continue;
            for (int c = 0; c < width; c++) {
                g[k * width + c] = got[i * width + c];
                e[k * width + c] = ref[i][c];
                m[k * width + c] = mag[i];
            }
            gl[k] = gotLse[i];
            el[k] = refLse[i];
            ml[k] = 1 + Math.abs(refLse[i]);
            k++;
        }
        boolean bf = dtype == DType.BF16;
        List<Comparison> out = new ArrayList<>();
        out.add(RopeChecks.bounded(what + " o", g, e, m, 0, Float.MIN_NORMAL, bf ? 0x1p-8 : 2e-5, bf ? 1e-2 : 1e-5));
        Comparison l = RopeChecks.bounded(what + " lse", gl, el, ml, 0, 0, 2e-5, 0);
        out.add(l.plus(new Comparison(what + " lse", rows - live, emptyBad, 0, 0, emptyFirst)));
        return out;
    }

    /** absorb_q, decode, absorb_o on the backend against the naive MHA over the decompressed K/V. */
    public static Comparison equivalence(Session s, SplittableRandom r, Mla.CacheFormat format, DType dtype, int[] lens,
                                         int sq, int heads, boolean causal) {
        try (Arena a = Arena.ofConfined()) {
            Filled f = fill(s, a, r, format, dtype, lens);
            int batch = lens.length, tokens = batch * sq, rows = tokens * heads;
            double scale = r.nextDouble(0.03, 0.2);
            float[] q = values(r, rows * 192, 1.0), w = values(r, heads * 256 * LAT, 0.05);
            if (dtype == DType.BF16) {
                q = Fp8Checks.roundToBf16(q);
                w = Fp8Checks.roundToBf16(w);
            }
            float[] qNope = new float[rows * 128], qPe = new float[rows * ROPE];
            for (int i = 0; i < rows; i++) {
                System.arraycopy(q, i * 192, qNope, i * 128, 128);
                System.arraycopy(q, i * 192 + 128, qPe, i * ROPE, ROPE);
            }
            Tensor wT = s.input(a, Fp8Checks.hostInput(a, w, dtype, heads, 256, LAT));
            Tensor qLat = s.output(a, dtype, tokens, heads, LAT);
            Mla.absorbQ(s.context(), qLat, s.input(a, Fp8Checks.hostInput(a, q, dtype, tokens, heads, 192)), wT);
            Tensor oLat = s.output(a, dtype, batch, sq, heads, LAT);
            Mla.decode(s.context(), oLat, null, qLat.reshape(batch, sq, heads, LAT),
                    s.input(a, Fp8Checks.hostInput(a, qPe, dtype, batch, sq, heads, ROPE)), f.cache(), f.blockTable(),
                    f.seqLens(), scale, causal);
            Tensor o = s.output(a, dtype, tokens, heads, 128);
            Mla.absorbO(s.context(), o, oLat.reshape(tokens, heads, LAT), wT);
            double[][] ref = MlaReference.naive(qNope, qPe, w, f.kv(), lens, batch, sq, heads, (float) scale, causal);
            float[] got = floats(s, a, o);
            double[] e = new double[rows * 128], m = new double[rows * 128];
            for (int i = 0; i < rows; i++) {
                double mx = 0;
                for (int d = 0; d < 128; d++) mx = Math.max(mx, Math.abs(ref[i][d]));
                for (int d = 0; d < 128; d++) {
                    e[i * 128 + d] = ref[i][d];
                    m[i * 128 + d] = mx;
                }
            }
            boolean bf = dtype == DType.BF16;
            return RopeChecks.bounded("mla absorbed == naive " + format + " " + dtype.label(), got, e, m, 0,
                    Float.MIN_NORMAL, bf ? 6e-2 : 2e-4, bf ? 2e-2 : 1e-4);
        }
    }

    /** Packed random sequence lengths (edge cases mixed in) summing to the returned cu_seqlens' last entry. */
    public static int[] cuSeqlens(SplittableRandom r, int nseq, int longLen) {
        int[] cu = new int[nseq + 1];
        int[] edge = {1, 63, 64, 65, longLen, 0, 2};
        for (int i = 0; i < nseq; i++) cu[i + 1] = cu[i] + (r.nextBoolean() ? edge[r.nextInt(edge.length)] : r.nextInt(1, 150));
        return cu;
    }

    /** mla.prefill of random q, k, v on packed sequences cu; [o, lse]. */
    public static List<Comparison> prefill(Session s, SplittableRandom r, int[] cu, int heads, int dqk, int dv, DType dtype,
                                           boolean causal) {
        try (Arena a = Arena.ofConfined()) {
            int tokens = cu[cu.length - 1];
            double scale = Math.pow(dqk, -0.5) * r.nextDouble(0.5, 2);
            float[] q = values(r, tokens * heads * dqk, 1.0), k = values(r, tokens * heads * dqk, 1.0),
                    v = values(r, tokens * heads * dv, 1.0);
            if (dtype == DType.BF16) {
                q = Fp8Checks.roundToBf16(q);
                k = Fp8Checks.roundToBf16(k);
                v = Fp8Checks.roundToBf16(v);
            }
            Tensor o = s.output(a, dtype, tokens, heads, dv), lse = s.output(a, DType.F32, tokens, heads);
            Mla.prefill(s.context(), o, lse, s.input(a, Fp8Checks.hostInput(a, q, dtype, tokens, heads, dqk)),
                    s.input(a, Fp8Checks.hostInput(a, k, dtype, tokens, heads, dqk)),
                    s.input(a, Fp8Checks.hostInput(a, v, dtype, tokens, heads, dv)),
                    s.input(a, Tensor.ofInts(a, cu.clone(), cu.length)), scale, causal);
            MlaReference.Prefill ref = MlaReference.prefill(q, k, v, cu, heads, dqk, dv, (float) scale, causal);
            return compareRows("mla.prefill " + dtype.label() + " " + dqk + "/" + dv + (causal ? " causal" : ""),
                    floats(s, a, o), s.toHost(a, lse).toFloatArray(), ref.o(), ref.lse(), ref.maxV(), dv, dtype);
        }
    }

    /** absorb_q (oSide false; qNope with head stride {@code stride}) or absorb_o. */
    public static Comparison absorb(Session s, SplittableRandom r, int tokens, int heads, int stride, boolean oSide,
                                    DType dtype, DType wType) {
        try (Arena a = Arena.ofConfined()) {
            int in = oSide ? LAT : stride, outW = oSide ? 128 : LAT;
            float[] x = values(r, tokens * heads * in, 1.0), w = values(r, heads * 256 * LAT, 0.05);
            if (dtype == DType.BF16) x = Fp8Checks.roundToBf16(x);
            if (wType == DType.BF16) w = Fp8Checks.roundToBf16(w);
            Tensor xT = s.input(a, Fp8Checks.hostInput(a, x, dtype, tokens, heads, in));
            Tensor wT = s.input(a, Fp8Checks.hostInput(a, w, wType, heads * 256L, LAT));
            Tensor y = s.output(a, dtype, tokens, heads, outW);
            if (oSide) Mla.absorbO(s.context(), y, xT, wT);
            else Mla.absorbQ(s.context(), y, xT, wT);
            double[][] ref = MlaReference.absorb(x, w, tokens, heads, in, oSide);
            int kTerms = oSide ? LAT : 128;
            return RopeChecks.bounded("mla.absorb_" + (oSide ? "o" : "q") + " " + dtype.label() + "/" + wType.label(),
                    floats(s, a, y), ref[0], ref[1], dtype == DType.BF16 ? 0x1p-8 : 0, Float.MIN_NORMAL,
                    (kTerms + 8) * 0x1p-24, 0);
        }
    }

    static float[] floats(Session s, Arena a, Tensor t) {
        Tensor h = s.toHost(a, t);
        if (h.dtype() == DType.F32) return h.toFloatArray();
        short[] raw = h.toShortArray();
        float[] f = new float[raw.length];
        for (int i = 0; i < raw.length; i++) f[i] = Fp8Reference.bf16ToFloat(raw[i]);
        return f;
    }

    static float[] values(SplittableRandom r, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (Values.gaussian(r) * scale);
        return x;
    }

    static int[] permutation(SplittableRandom r, int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = r.nextInt(i + 1), t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }
}
