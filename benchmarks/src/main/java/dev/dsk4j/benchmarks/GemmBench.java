package dev.dsk4j.benchmarks;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Device;
import dev.dsk4j.Fp8;
import dev.dsk4j.Gemm;
import dev.dsk4j.Tensor;
import dev.dsk4j.conformance.Fp8Reference;
import dev.dsk4j.conformance.GemmReference;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * JMH benchmarks of the gemm.* ops (DESIGN.md 4.2) on DeepSeek-V3 shapes, {@code d = a · bᵀ}:
 * a [M, K] activations, b [N, K] weights, one implementation per run.
 *
 * <p>Dense cases (parameter {@code c} = "MxNxK/impl"): (N, K) = (2112, 7168) (q_a + kv_a
 * projection), (4096, 7168) (an expert's fused w1/w3), (7168, 2048) (an expert's w2), (18432, 7168)
 * (the dense FFN's w1/w3); M = 1, 4, 16, 128, plus 512 for the two smaller weights (scaled down
 * for 2 cores: see {@link #SCALED_DOWN}). Grouped cases (parameter {@code g} = "w13|w2/tT/impl"):
 * 8 routed experts of 256 with T = 1, 16 or 128 tokens each, w13 = [8, 4096, 7168], w2 = [8, 7168, 2048];
 * only the 8 routed experts' weights are allocated (the grouped kernels never read the other
 * 248).
 *
 * <p>Implementations:
 * <ul>
 *   <li>{@code dsk4j}: {@link Gemm#fp8Block} on a cpu context (all cores), e4m3 weights + 128x128
 *       block scales, e4m3 activations + 1x128 scales, f32 out (FP8 decoding inside the op);
 *       grouped: {@code dsk4j-masked} ({@link Gemm#fp8GroupedMasked}, decode) and
 *       {@code dsk4j-contig} ({@link Gemm#fp8GroupedContiguous}, prefill);</li>
 *   <li>{@code dsk4j-bf16}: {@link Gemm#bf16} on bf16 copies of the same product;</li>
 *   <li>{@code dsk4j-f32} / {@code dsk4j-f32-bf16}: {@link Gemm#f32} (gemm.f32, the model's dequant mode and LM
 *       head) with f32 activations (the decoded e4m3 ones) against f32 / bf16 weights (the dequantized e4m3 ones);
 *       M = 1, 4, 128 on (N, K) = (2112, 7168) and (7168, 2048); never on AMX tiles (exact f32 products), so no
 *       *-avx512 twin;</li>
 *   <li>{@code dsk4j*-avx512} (e.g. {@code dsk4j-avx512}, {@code dsk4j-bf16-avx512}, {@code dsk4j-masked-avx512}):
 *       the same op on a context capped at AVX-512 ({@link Context.CpuPath#AVX512}: no AMX tiles),
 *       beside the plain {@code dsk4j*} rows, which take the best path ({@link Context.CpuPath#BEST}:
 *       AMX-BF16 tiles for the GEMMs where present). The launcher drops these rows on a CPU
 *       without AMX, where both would be the same code;</li>
 *   <li>{@code openblas-sgemm}: cblas_sgemm(RowMajor, NoTrans, Trans) on f32 copies of the same
 *       product (weights decoded with their scales, activations with theirs), per expert for the
 *       grouped cases; {@code openblas-sgemv}: cblas_sgemv on the f32 weights, M = 1 only
 *       ({@link OpenBlas}, loaded through FFM, all cores);</li>
 *   <li>{@code vector}: {@link VectorGemm}, the Java Vector API, all cores;</li>
 *   <li>{@code reference}: {@link GemmReference} (double precision, slow by design), 1x2112x7168 only.</li>
 * </ul>
 *
 * <p>Cold weights: for M (tokens per expert) &lt;= {@value #ROTATE_MAX_M} each call uses the next
 * of {@link #copies} copies of the weights, together at least max(512 MiB, 2 x L3), so that the
 * weights come from memory as in inference, not from L3. Activations stay hot. Values are random
 * finite e4m3 codes (a repeated 1 MiB pattern) and scales over a few binades: the kernels' speed
 * does not depend on them.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 1, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
public class GemmBench {

    /** What the default case lists leave out, for the printed table. */
    public static final String SCALED_DOWN = "scaled down for 2 cores / 24 GB / a ~20 min run: M=512 only for 2112x7168 and"
            + " 7168x2048; dsk4j-bf16 only at M = 1, 16, 128 (dsk4j-bf16-avx512 at 128); reference only at 1x2112x7168; grouped: only the 8 routed"
            + " experts' weights are allocated (of 256), masked (decode) at T = 1, 16, contiguous (prefill) at T = 16, 128;"
            + " JMH 1 fork, 1 warmup + 3 measurement iterations of 1 s (a large case is a few calls); the AVX-512-only"
            + " rows (*-avx512) only where the best path has AMX; gemm.f32 (dsk4j-f32*) at M = 1, 4, 128 on 2112x7168 and 7168x2048 only";

    static final int G = 8, KB = 128;
    /** Suffix of the dsk4j impls run on a context capped at AVX-512 (no AMX tiles). */
    public static final String AVX512 = "-avx512";
    static final int ROTATE_MAX_M = 16;
    static final int PATTERN = (1 << 20) + 4099; // not a multiple of any row length

    // ------------------------------------------------------------------ cases

    /**
     * One case: {@code g} groups (1 for dense) of {@code t} rows of a against [n, k] weights.
     * {@code kind}: dense, masked or contig.
     */
    public record Case(String kind, String label, int g, int t, int n, int k, String impl) {
        public long flops() { return 2L * g * t * n * k; }

        /** The impl without the {@value #AVX512} suffix. */
        public String baseImpl() { return impl.endsWith(AVX512) ? impl.substring(0, impl.length() - AVX512.length()) : impl; }

        /** The CPU path of a dsk4j impl: AVX512 for the {@value #AVX512} variants, else BEST (AMX where present). */
        public Context.CpuPath cpuPath() { return impl.endsWith(AVX512) ? Context.CpuPath.AVX512 : Context.CpuPath.BEST; }

        /** Bytes of the weights one call reads, in the impl's storage (e4m3: 1, bf16: 2, f32: 4 per element). */
        public long weightBytes() { return (long) g * n * k * elementBytes(impl); }

        /** M as printed: "16" dense, "8x16" grouped. */
        public String m() { return g == 1 && kind.equals("dense") ? Integer.toString(t) : g + "x" + t; }

        /** Copies of the weights cycled through (1 = hot after the first call). */
        public int copies() { return GemmBench.copies(weightBytes(), t, impl); }
    }

    static int elementBytes(String impl) {
        if (impl.startsWith("openblas")) return 4;
        if (impl.equals("dsk4j-bf16") || impl.equals("dsk4j-bf16" + AVX512) || impl.equals("dsk4j-f32-bf16")) return 2;
        if (impl.equals("dsk4j-f32")) return 4;
        return 1;
    }

    /** Copies of the weights so that one pass over them exceeds max(512 MiB, 2 x L3), for t <= ROTATE_MAX_M. */
    static int copies(long weightBytes, int t, String impl) {
        if (t > ROTATE_MAX_M || impl.equals("reference")) return 1;
        long l3 = Bandwidth.l3Bytes();
        long target = Math.max(512L << 20, l3 > 0 ? 2 * l3 : 0);
        return (int) Math.max(1, (target + weightBytes - 1) / weightBytes);
    }

    /** A dense case "MxNxK/impl". */
    public static Case dense(String c) {
        String[] p = c.split("/");
        String[] d = p[0].split("x");
        int m = Integer.parseInt(d[0]), n = Integer.parseInt(d[1]), k = Integer.parseInt(d[2]);
        return new Case("dense", n + "x" + k, 1, m, n, k, p[1]);
    }

    /** A grouped case "w13|w2/tT/impl". */
    public static Case grouped(String c) {
        String[] p = c.split("/");
        int n, k;
        switch (p[0]) {
            case "w13" -> { n = 4096; k = 7168; }
            case "w2" -> { n = 7168; k = 2048; }
            default -> throw new IllegalArgumentException("unknown grouped weight '" + p[0] + "' (w13 or w2)");
        }
        if (!p[1].startsWith("t")) throw new IllegalArgumentException("bad tokens per expert '" + p[1] + "' (t1, t16, ...)");
        int t = Integer.parseInt(p[1].substring(1));
        String base = p[2].endsWith(AVX512) ? p[2].substring(0, p[2].length() - AVX512.length()) : p[2];
        String kind = base.equals("dsk4j-masked") ? "masked" : base.equals("dsk4j-contig") ? "contig" : "grouped";
        return new Case(kind, p[0] + " " + G + "x" + n + "x" + k, G, t, n, k, p[2]);
    }

    // ------------------------------------------------------------------ data

    /** n random finite e4m3 codes (a repeated pattern; NaN codes excluded). */
    static byte[] codes(long seed, int n) {
        SplittableRandom r = new SplittableRandom(seed);
        byte[] pat = new byte[Math.min(n, PATTERN)];
        for (int i = 0; i < pat.length; i++) {
            int v = r.nextInt(256);
            if ((v & 0x7f) == 0x7f) v &= 0xfe;
            pat[i] = (byte) v;
        }
        if (pat.length == n) return pat;
        byte[] w = new byte[n];
        for (int i = 0; i < n; i += pat.length) System.arraycopy(pat, 0, w, i, Math.min(pat.length, n - i));
        return w;
    }

    /** n positive scales over a few binades, like act_quant / weight_quant produce. */
    static float[] scales(long seed, int n) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] s = new float[n];
        for (int i = 0; i < n; i++) s[i] = (float) (Math.pow(2, r.nextDouble(-12, -2)) * (1 + r.nextDouble()));
        return s;
    }

    /** Operands of a case, as Java arrays (weights of all groups in one array). */
    static final class Operands {
        final byte[] a, b;
        final float[] aScale, bScale;
        final int rows, kb, nb;

        Operands(Case c) {
            rows = c.g() * c.t();
            kb = c.k() / KB;
            nb = (c.n() + KB - 1) / KB;
            a = codes(1, rows * c.k());
            aScale = scales(2, rows * kb);
            b = codes(3, Math.multiplyExact(c.g() * c.n(), c.k()));
            bScale = scales(4, c.g() * nb * kb);
        }
    }

    // ------------------------------------------------------------------ state

    /** One implementation of one case: resources opened in setup, the call in {@link #op}. */
    public abstract static class GemmState {
        Arena arena;
        Context ctx;
        Runnable op;
        Object result; // keeps pure-Java results live
        int next;      // the weight copy the next call uses

        int rotate(int copies) {
            int i = next;
            next = i + 1 == copies ? 0 : i + 1;
            return i;
        }

        void build(Case c) {
            Operands o = new Operands(c);
            int copies = c.copies();
            int n = c.n(), k = c.k(), t = c.t(), g = c.g(), rows = o.rows;
            String impl = c.baseImpl();
            if (impl.startsWith("dsk4j")) {
                arena = Arena.ofShared();
                ctx = Context.open(Device.cpu(), Context.Options.defaults().withCpuPath(c.cpuPath()));
            }
            switch (impl) {
                case "dsk4j", "dsk4j-masked", "dsk4j-contig" -> {
                    boolean masked = c.kind().equals("masked");
                    long[] aShape = masked ? new long[] {g, t, k} : new long[] {rows, k};
                    long[] asShape = masked ? new long[] {g, t, k / KB} : new long[] {rows, k / KB};
                    long[] dShape = masked ? new long[] {g, t, n} : new long[] {rows, n};
                    long[] bShape = c.kind().equals("dense") ? new long[] {n, k} : new long[] {g, n, k};
                    long[] bsShape = c.kind().equals("dense") ? new long[] {o.nb, o.kb} : new long[] {g, o.nb, o.kb};
                    Tensor a = Tensor.ofBytes(arena, DType.E4M3, o.a, aShape);
                    Tensor as = Tensor.ofFloats(arena, o.aScale, asShape);
                    Tensor bs = Tensor.ofFloats(arena, o.bScale, bsShape);
                    Tensor d = Tensor.allocate(arena, DType.F32, dShape);
                    Tensor[] b = new Tensor[copies];
                    b[0] = Tensor.ofBytes(arena, DType.E4M3, o.b, bShape);
                    for (int i = 1; i < copies; i++) {
                        b[i] = Tensor.allocate(arena, DType.E4M3, bShape);
                        b[i].segment().copyFrom(b[0].segment());
                    }
                    Context cx = ctx;
                    switch (c.kind()) {
                        case "dense" -> op = () -> Gemm.fp8Block(cx, d, a, as, b[rotate(copies)], bs);
                        case "masked" -> {
                            int[] mm = new int[g];
                            Arrays.fill(mm, t);
                            Tensor maskedM = Tensor.ofInts(arena, mm, g);
                            op = () -> Gemm.fp8GroupedMasked(cx, d, a, as, b[rotate(copies)], bs, maskedM);
                        }
                        default -> {
                            int[] off = new int[g + 1];
                            for (int i = 0; i <= g; i++) off[i] = i * t;
                            Tensor offsets = Tensor.ofInts(arena, off, g + 1);
                            op = () -> Gemm.fp8GroupedContiguous(cx, d, a, as, b[rotate(copies)], bs, offsets);
                        }
                    }
                }
                case "dsk4j-bf16" -> {
                    if (g != 1) throw new IllegalArgumentException("dsk4j-bf16 is a dense case");
                    float[] af = VectorGemm.scaledA(o.a, o.aScale, t, k);
                    short[] ab = new short[af.length];
                    for (int i = 0; i < af.length; i++) ab[i] = Fp8Reference.floatToBf16(af[i]);
                    Tensor a = Tensor.ofShorts(arena, DType.BF16, ab, t, k);
                    Tensor d = Tensor.allocate(arena, DType.F32, t, n);
                    Tensor[] b = new Tensor[copies];
                    b[0] = Tensor.allocate(arena, DType.BF16, n, k);
                    try (Arena tmp = Arena.ofConfined()) {
                        Fp8.weightDequant(ctx, b[0], Tensor.ofBytes(tmp, DType.E4M3, o.b, n, k),
                                Tensor.ofFloats(tmp, o.bScale, o.nb, o.kb));
                    }
                    for (int i = 1; i < copies; i++) {
                        b[i] = Tensor.allocate(arena, DType.BF16, n, k);
                        b[i].segment().copyFrom(b[0].segment());
                    }
                    Context cx = ctx;
                    op = () -> Gemm.bf16(cx, d, a, b[rotate(copies)], null);
                }
                case "dsk4j-f32", "dsk4j-f32-bf16" -> {
                    if (g != 1) throw new IllegalArgumentException(impl + " is a dense case");
                    DType wt = impl.equals("dsk4j-f32") ? DType.F32 : DType.BF16;
                    Tensor a = Tensor.ofFloats(arena, VectorGemm.scaledA(o.a, o.aScale, t, k), t, k);
                    Tensor d = Tensor.allocate(arena, DType.F32, t, n);
                    Tensor[] b = new Tensor[copies];
                    b[0] = Tensor.allocate(arena, wt, n, k);
                    try (Arena tmp = Arena.ofConfined()) {
                        Fp8.weightDequant(ctx, b[0], Tensor.ofBytes(tmp, DType.E4M3, o.b, n, k),
                                Tensor.ofFloats(tmp, o.bScale, o.nb, o.kb));
                    }
                    for (int i = 1; i < copies; i++) {
                        b[i] = Tensor.allocate(arena, wt, n, k);
                        b[i].segment().copyFrom(b[0].segment());
                    }
                    Context cx = ctx;
                    op = () -> Gemm.f32(cx, d, a, b[rotate(copies)], null);
                }
                case "openblas-sgemm", "openblas-sgemv" -> {
                    OpenBlas blas = OpenBlas.get().orElseThrow(() -> new IllegalStateException(OpenBlas.whyMissing()));
                    boolean gemv = impl.equals("openblas-sgemv");
                    if (gemv && t != 1) throw new IllegalArgumentException("openblas-sgemv needs M = 1 row per group");
                    arena = Arena.ofShared();
                    MemorySegment a = arena.allocate(4L * rows * k, 64);
                    MemorySegment.copy(VectorGemm.scaledA(o.a, o.aScale, rows, k), 0, a,
                            java.lang.foreign.ValueLayout.JAVA_FLOAT, 0, rows * k);
                    MemorySegment d = arena.allocate(4L * rows * n, 64);
                    long setBytes = 4L * g * n * k, wBytes = 4L * n * k;
                    MemorySegment[] b = new MemorySegment[copies];
                    b[0] = arena.allocate(setBytes, 64);
                    try (Context cx = Context.open(Device.cpu()); Arena tmp = Arena.ofConfined()) {
                        int sb = o.nb * o.kb;
                        for (int e = 0; e < g; e++) {
                            Tensor src = Tensor.ofBytes(tmp, DType.E4M3, Arrays.copyOfRange(o.b, e * n * k, (e + 1) * n * k), n, k);
                            Tensor s = Tensor.ofFloats(tmp, Arrays.copyOfRange(o.bScale, e * sb, (e + 1) * sb), o.nb, o.kb);
                            Fp8.weightDequant(cx, Tensor.wrap(b[0].asSlice(e * wBytes, wBytes), DType.F32, n, k), src, s);
                        }
                    }
                    for (int i = 1; i < copies; i++) {
                        b[i] = arena.allocate(setBytes, 64);
                        b[i].copyFrom(b[0]);
                    }
                    op = () -> {
                        MemorySegment w = b[rotate(copies)];
                        for (int e = 0; e < g; e++) {
                            MemorySegment we = w.asSlice(e * wBytes, wBytes), ae = a.asSlice(4L * e * t * k, 4L * t * k),
                                    de = d.asSlice(4L * e * t * n, 4L * t * n);
                            if (gemv) blas.sgemv(n, k, we, ae, de);
                            else blas.sgemmNT(t, n, k, ae, we, de);
                        }
                    };
                }
                case "vector" -> {
                    byte[][] b = new byte[copies][];
                    b[0] = o.b;
                    for (int i = 1; i < copies; i++) b[i] = o.b.clone();
                    byte[][] a = new byte[g][];
                    float[][] as = new float[g][], d = new float[g][];
                    for (int e = 0; e < g; e++) {
                        a[e] = Arrays.copyOfRange(o.a, e * t * k, (e + 1) * t * k);
                        as[e] = Arrays.copyOfRange(o.aScale, e * t * o.kb, (e + 1) * t * o.kb);
                        d[e] = new float[t * n];
                    }
                    int sb = o.nb * o.kb;
                    warmVector(t, k);
                    op = () -> {
                        byte[] w = b[rotate(copies)];
                        for (int e = 0; e < g; e++) VectorGemm.fp8Block(a[e], as[e], w, e * n * k, o.bScale, e * sb, d[e], t, n, k);
                    };
                }
                case "reference" -> {
                    if (g != 1) throw new IllegalArgumentException("reference is a dense case");
                    op = () -> result = GemmReference.fp8Block(o.a, o.aScale, o.b, o.bScale, null, t, n, k);
                }
                default -> throw new IllegalArgumentException("unknown impl '" + impl + "' for " + c);
            }
            op.run(); // fail in setup, not in the measurement, if something is wrong
        }

        /**
         * Compiles VectorGemm's path for m = t (C2) on a small problem first: interpreted Vector API
         * code is thousands of times slower, and a first call on a large case would not finish in
         * the warmup.
         */
        static void warmVector(int t, int k) {
            int m = t > VectorGemm.SMALL_M ? 16 : t, n = 64, kk = Math.min(k, 1024);
            Operands o = new Operands(new Case("dense", "warm", 1, m, n, kk, "vector"));
            float[] d = new float[m * n];
            for (int i = 0; i < 200; i++) VectorGemm.fp8Block(o.a, o.aScale, o.b, o.bScale, d, m, n, kk);
        }

        @TearDown(Level.Trial)
        public void close() {
            if (ctx != null) ctx.close();
            if (arena != null) arena.close();
            ctx = null;
            arena = null;
            op = null;
            result = null;
        }
    }

    @State(Scope.Benchmark)
    public static class Dense extends GemmState {
        @Param({
            "1x2112x7168/dsk4j", "1x2112x7168/dsk4j-avx512", "1x2112x7168/dsk4j-bf16", "1x2112x7168/openblas-sgemm",
            "1x2112x7168/openblas-sgemv", "1x2112x7168/vector", "1x2112x7168/reference",
            "1x2112x7168/dsk4j-f32", "1x2112x7168/dsk4j-f32-bf16",
            "4x2112x7168/dsk4j-f32", "4x2112x7168/dsk4j-f32-bf16",
            "128x2112x7168/dsk4j-f32", "128x2112x7168/dsk4j-f32-bf16",
            "4x2112x7168/dsk4j", "4x2112x7168/dsk4j-avx512", "4x2112x7168/openblas-sgemm", "4x2112x7168/vector",
            "16x2112x7168/dsk4j", "16x2112x7168/dsk4j-avx512", "16x2112x7168/dsk4j-bf16", "16x2112x7168/openblas-sgemm",
            "16x2112x7168/vector",
            "128x2112x7168/dsk4j", "128x2112x7168/dsk4j-avx512", "128x2112x7168/dsk4j-bf16", "128x2112x7168/dsk4j-bf16-avx512",
            "128x2112x7168/openblas-sgemm", "128x2112x7168/vector",
            "512x2112x7168/dsk4j", "512x2112x7168/dsk4j-avx512", "512x2112x7168/openblas-sgemm", "512x2112x7168/vector",

            "1x4096x7168/dsk4j", "1x4096x7168/dsk4j-avx512", "1x4096x7168/dsk4j-bf16", "1x4096x7168/openblas-sgemm",
            "1x4096x7168/openblas-sgemv", "1x4096x7168/vector",
            "4x4096x7168/dsk4j", "4x4096x7168/dsk4j-avx512", "4x4096x7168/openblas-sgemm", "4x4096x7168/vector",
            "16x4096x7168/dsk4j", "16x4096x7168/dsk4j-avx512", "16x4096x7168/dsk4j-bf16", "16x4096x7168/openblas-sgemm",
            "16x4096x7168/vector",
            "128x4096x7168/dsk4j", "128x4096x7168/dsk4j-avx512", "128x4096x7168/dsk4j-bf16", "128x4096x7168/dsk4j-bf16-avx512",
            "128x4096x7168/openblas-sgemm", "128x4096x7168/vector",

            "1x7168x2048/dsk4j", "1x7168x2048/dsk4j-avx512", "1x7168x2048/dsk4j-bf16", "1x7168x2048/openblas-sgemm",
            "1x7168x2048/openblas-sgemv", "1x7168x2048/vector",
            "1x7168x2048/dsk4j-f32", "1x7168x2048/dsk4j-f32-bf16",
            "4x7168x2048/dsk4j-f32", "4x7168x2048/dsk4j-f32-bf16",
            "128x7168x2048/dsk4j-f32", "128x7168x2048/dsk4j-f32-bf16",
            "4x7168x2048/dsk4j", "4x7168x2048/dsk4j-avx512", "4x7168x2048/openblas-sgemm", "4x7168x2048/vector",
            "16x7168x2048/dsk4j", "16x7168x2048/dsk4j-avx512", "16x7168x2048/dsk4j-bf16", "16x7168x2048/openblas-sgemm",
            "16x7168x2048/vector",
            "128x7168x2048/dsk4j", "128x7168x2048/dsk4j-avx512", "128x7168x2048/dsk4j-bf16", "128x7168x2048/dsk4j-bf16-avx512",
            "128x7168x2048/openblas-sgemm", "128x7168x2048/vector",
            "512x7168x2048/dsk4j", "512x7168x2048/dsk4j-avx512", "512x7168x2048/openblas-sgemm", "512x7168x2048/vector",

            "1x18432x7168/dsk4j", "1x18432x7168/dsk4j-avx512", "1x18432x7168/dsk4j-bf16", "1x18432x7168/openblas-sgemm",
            "1x18432x7168/openblas-sgemv", "1x18432x7168/vector",
            "4x18432x7168/dsk4j", "4x18432x7168/dsk4j-avx512", "4x18432x7168/openblas-sgemm", "4x18432x7168/vector",
            "16x18432x7168/dsk4j", "16x18432x7168/dsk4j-avx512", "16x18432x7168/dsk4j-bf16", "16x18432x7168/openblas-sgemm",
            "16x18432x7168/vector",
            "128x18432x7168/dsk4j", "128x18432x7168/dsk4j-avx512", "128x18432x7168/dsk4j-bf16",
            "128x18432x7168/dsk4j-bf16-avx512", "128x18432x7168/openblas-sgemm", "128x18432x7168/vector",
        })
        public String c;

        @Setup(Level.Trial)
        public void setup() { build(dense(c)); }
    }

    @State(Scope.Benchmark)
    public static class Grouped extends GemmState {
        @Param({
            "w13/t1/dsk4j-masked", "w13/t1/dsk4j-masked-avx512", "w13/t1/openblas-sgemm", "w13/t1/openblas-sgemv", "w13/t1/vector",
            "w13/t16/dsk4j-masked", "w13/t16/dsk4j-masked-avx512", "w13/t16/dsk4j-contig", "w13/t16/dsk4j-contig-avx512",
            "w13/t16/openblas-sgemm", "w13/t16/vector",
            "w13/t128/dsk4j-contig", "w13/t128/dsk4j-contig-avx512", "w13/t128/openblas-sgemm", "w13/t128/vector",
            "w2/t1/dsk4j-masked", "w2/t1/dsk4j-masked-avx512", "w2/t1/openblas-sgemm", "w2/t1/openblas-sgemv", "w2/t1/vector",
            "w2/t16/dsk4j-masked", "w2/t16/dsk4j-masked-avx512", "w2/t16/dsk4j-contig", "w2/t16/dsk4j-contig-avx512",
            "w2/t16/openblas-sgemm", "w2/t16/vector",
            "w2/t128/dsk4j-contig", "w2/t128/dsk4j-contig-avx512", "w2/t128/openblas-sgemm", "w2/t128/vector",
        })
        public String g;

        @Setup(Level.Trial)
        public void setup() { build(grouped(g)); }
    }

    @Benchmark
    public void dense(Dense s) { s.op.run(); }

    @Benchmark
    public void grouped(Grouped s) { s.op.run(); }
}
