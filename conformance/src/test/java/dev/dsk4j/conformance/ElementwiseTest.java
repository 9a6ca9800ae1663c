package dev.dsk4j.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.longs;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Dsk4jException;
import dev.dsk4j.Elementwise;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * elementwise.rmsnorm, add, silu_mul, embed, copy_columns, gather_rows on every backend against the
 * plain-Java reference below (the double formulas of dsk4j.h). On cpu every op but silu_mul is bit
 * for bit (the formulas fix every rounding); silu_mul is within 1 ulp of the output dtype (exp may
 * differ by an ulp between Java and C). On CUDA the fast rmsnorm sums in another order (1 ulp), and an
 * out-of-range id / idx gives a zero row instead of an error. Outputs are poisoned (NaN) first.
 */
@ExtendWith(Backends.SkipUnavailable.class)
class ElementwiseTest {
    static Stream<Backend> backends() { return Backends.withMissing(); }

    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;

    // the reference: ElementwiseReference (also used by ./dsk4j conformance); bf16 through Fp8Reference

    // ------------------------------------------------------------------ values

    static final float[] SPECIALS = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -0f, Float.MIN_VALUE,
            -Float.MIN_VALUE, 1e-40f, -3e-39f, Float.MIN_NORMAL, Float.MAX_VALUE, -3e38f, 1e30f, -65504f, 88.7f, -88.7f, 745f, -745f};

    /** n values: mostly gaussian of a random scale, with specials (NaN, Inf, denormal, huge) when `specials`. */
    static float[] values(SplittableRandom r, int n, boolean specials, DType dt) {
        float[] v = new float[n];
        double scale = Math.pow(10, r.nextInt(-3, 4));
        for (int i = 0; i < n; i++) {
            v[i] = specials && r.nextInt(8) == 0 ? SPECIALS[r.nextInt(SPECIALS.length)] : (float) (r.nextGaussian() * scale);
            if (dt == DType.BF16) v[i] = Fp8Reference.bf16ToFloat(Fp8Reference.floatToBf16(v[i])); /* exactly representable */
        }
        return v;
    }

    static Tensor host(Arena a, DType dt, float[] v, long... shape) {
        if (dt == DType.F32) return Tensor.ofFloats(a, v, shape);
        short[] s = new short[v.length];
        for (int i = 0; i < v.length; i++) s[i] = Fp8Reference.floatToBf16(v[i]);
        return Tensor.ofShorts(a, DType.BF16, s, shape);
    }

    /** Raw element bits of a host tensor of any dtype (as unsigned ints). */
    static long[] bits(Tensor t) {
        int n = Math.toIntExact(t.numel());
        long[] out = new long[n];
        MemorySegment s = t.segment();
        for (int i = 0; i < n; i++)
            out[i] = switch (t.dtype().byteSize()) {
                case 4 -> s.getAtIndex(I32, i) & 0xffffffffL;
                case 2 -> s.getAtIndex(I16, i) & 0xffffL;
                default -> s.get(ValueLayout.JAVA_BYTE, i) & 0xffL;
            };
        return out;
    }

    static boolean isNaN(DType dt, long b) {
        return dt == DType.F32 ? Float.isNaN(Float.intBitsToFloat((int) b)) : Float.isNaN(Fp8Reference.bf16ToFloat((short) b));
    }

    /** Sign-magnitude bits to a monotone ordinal (adjacent floats differ by 1). */
    static long ordinal(DType dt, long b) {
        long sign = dt == DType.F32 ? 0x80000000L : 0x8000L;
        return (b & sign) != 0 ? -(b & (sign - 1)) : b;
    }

    /** got (dtype f32|bf16) against the f32 reference values rounded to that dtype: equal bits (NaN: any NaN), or within `ulps`. */
    static void assertMatches(String what, float[] ref, Tensor got, int ulps) {
        DType dt = got.dtype();
        long[] g = bits(got);
        assertEquals(ref.length, g.length, what + ": element count");
        int bad = 0;
        String first = null;
        for (int i = 0; i < ref.length; i++) {
            long want = dt == DType.F32 ? Float.floatToRawIntBits(ref[i]) & 0xffffffffL : Fp8Reference.floatToBf16(ref[i]) & 0xffffL;
            boolean ok;
            if (isNaN(dt, want) || isNaN(dt, g[i])) ok = isNaN(dt, want) && isNaN(dt, g[i]);
            else ok = Math.abs(ordinal(dt, want) - ordinal(dt, g[i])) <= ulps;
            if (!ok && bad++ == 0)
                first = "element " + i + ": want 0x" + Long.toHexString(want) + ", got 0x" + Long.toHexString(g[i]);
        }
        final int nbad = bad;
        final String f = first;
        assertEquals(0, nbad, () -> what + ": " + nbad + " of " + ref.length + " elements differ; first " + f);
    }

    static String messageOf(Runnable r) {
        RuntimeException e = assertThrows(RuntimeException.class, r::run);
        assertTrue(e instanceof IllegalArgumentException || e instanceof NullPointerException || e instanceof Dsk4jException,
                () -> "unexpected " + e);
        return e.getMessage();
    }

    static void assertNames(String arg, Runnable r) {
        String m = messageOf(r);
        assertTrue(m != null && m.contains("'" + arg + "'"), () -> "message does not name '" + arg + "': " + m);
    }

    static DType floatType(SplittableRandom r) { return r.nextBoolean() ? DType.F32 : DType.BF16; }

    // ------------------------------------------------------------------ rmsnorm

    /** Random rows (0 included), d (1, odd, 7168), ldx >= d, both dtypes, specials and all-zero rows, in place too. */
    @ParameterizedTest
    @MethodSource("backends")
    void rmsnormMatchesTheReference(Backend backend) {
        int[] rowChoices = {0, 1, 2, 3, 7, 16};
        int[] dChoices = {1, 2, 3, 7, 31, 64, 129, 512, 1000, 7168};
        try (Session s = new Session(backend)) {
            boolean cuda = s.context().isCuda();
            qt().withExamples(60).forAll(longs().all(), integers().between(0, rowChoices.length - 1),
                    integers().between(0, dChoices.length - 1), integers().between(0, 7)).checkAssert((seed, ri, di, opts) -> {
                        SplittableRandom r = new SplittableRandom(seed);
                        int rows = rowChoices[ri], d = dChoices[di];
                        boolean inPlace = (opts & 1) != 0, specials = (opts & 2) != 0, zeroRow = (opts & 4) != 0;
                        int ldx = inPlace ? d : d + (r.nextBoolean() ? 0 : r.nextInt(1, 70));
                        DType dt = floatType(r);
                        double eps = new double[] {1e-6, 1e-5, 0.0, 1e-3}[r.nextInt(zeroRow ? 2 : 4)];
                        float[] x = values(r, rows * ldx, specials, dt);
                        if (zeroRow && rows > 0) Arrays.fill(x, 0, ldx, 0f);
                        float[] w = values(r, d, false, DType.F32);
                        float[] ref = ElementwiseReference.rmsnorm(x, rows, d, ldx, w, eps);
                        if (zeroRow && rows > 0)
                            for (int i = 0; i < d; i++) assertTrue(Float.isFinite(ref[i]), "reference of a zero row is finite");
                        try (Arena a = Arena.ofConfined()) {
                            Tensor xd = s.input(a, host(a, dt, x, rows, ldx));
                            Tensor wd = s.input(a, Tensor.ofFloats(a, w, d));
                            Tensor y = inPlace ? xd : s.output(a, dt, rows, d);
                            Elementwise.rmsnorm(s.context(), y, xd, wd, eps);
                            String what = backend + " rmsnorm rows " + rows + " d " + d + " ldx " + ldx + " " + dt.label()
                                    + (inPlace ? " in place" : "") + (specials ? " specials" : "") + " eps " + eps;
                            assertMatches(what, ref, s.toHost(a, y), cuda ? 1 : 0);
                        }
                    });
        }
    }

    // ------------------------------------------------------------------ add, silu_mul

    /** n random (0 included), shapes [T, D] / [T*D], both dtypes, specials, y = a or y = b. */
    @ParameterizedTest
    @MethodSource("backends")
    void addAndSiluMulMatchTheReference(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(80).forAll(longs().all(), integers().between(0, 3), integers().between(0, 1))
                    .checkAssert((seed, where, op) -> {
                        SplittableRandom r = new SplittableRandom(seed);
                        int t = r.nextInt(0, 9), dd = r.nextInt(1, 3) == 1 ? r.nextInt(1, 300) : 18432 / 16 * r.nextInt(1, 3);
                        int n = t * dd;
                        DType dt = floatType(r);
                        boolean specials = r.nextBoolean();
                        float[] a = values(r, n, specials, dt), b = values(r, n, specials, dt);
                        boolean silu = op == 1;
                        float[] ref = silu ? ElementwiseReference.siluMul(a, b) : ElementwiseReference.add(a, b);
                        try (Arena ar = Arena.ofConfined()) {
                            Tensor ad = s.input(ar, host(ar, dt, a, t, dd));
                            Tensor bd = s.input(ar, host(ar, dt, b, n)); /* another shape, the same element count */
                            Tensor y = switch (where) {
                                case 1 -> ad;
                                case 2 -> bd;
                                default -> s.output(ar, dt, n);
                            };
                            if (silu) Elementwise.siluMul(s.context(), y, ad, bd);
                            else Elementwise.add(s.context(), y, ad, bd);
                            String what = backend + (silu ? " siluMul " : " add ") + "[" + t + ", " + dd + "] " + dt.label()
                                    + (where == 1 ? " y = first" : where == 2 ? " y = second" : "") + (specials ? " specials" : "");
                            assertMatches(what, ref, s.toHost(ar, y), silu ? 1 : 0);
                        }
                    });
        }
    }

    // ------------------------------------------------------------------ embed

    @ParameterizedTest
    @MethodSource("backends")
    void embedMatchesTheReference(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(50).forAll(longs().all()).checkAssert(seed -> {
                SplittableRandom r = new SplittableRandom(seed);
                int v = r.nextInt(1, 300), d = r.nextBoolean() ? r.nextInt(1, 100) : 7168, t = r.nextInt(0, 9);
                DType td = floatType(r), yd = floatType(r);
                float[] table = values(r, v * d, r.nextBoolean(), td);
                int[] ids = new int[t];
                for (int i = 0; i < t; i++) ids[i] = switch (r.nextInt(4)) {
                    case 0 -> 0;
                    case 1 -> v - 1;
                    default -> r.nextInt(v);
                };
                float[] ref = new float[t * d];
                for (int i = 0; i < t; i++) System.arraycopy(table, ids[i] * d, ref, i * d, d);
                try (Arena a = Arena.ofConfined()) {
                    Tensor tab = s.input(a, host(a, td, table, v, d));
                    Tensor idt = s.input(a, Tensor.ofInts(a, ids, t));
                    Tensor y = s.output(a, yd, t, d);
                    Elementwise.embed(s.context(), y, tab, idt);
                    Tensor got = s.toHost(a, y);
                    String what = backend + " embed V " + v + " D " + d + " T " + t + " " + td.label() + " -> " + yd.label();
                    if (td == DType.F32 && yd == DType.F32) { /* a bit copy: NaN payloads too */
                        long[] g = bits(got);
                        for (int i = 0; i < ref.length; i++)
                            assertEquals(Float.floatToRawIntBits(ref[i]) & 0xffffffffL, g[i], what + " element " + i);
                    } else {
                        assertMatches(what, ref, got, 0);
                    }
                }
            });
        }
    }

    /** An id outside [0, V): cpu refuses naming 'ids' and the position, writing nothing; CUDA writes a zero row. */
    @ParameterizedTest
    @MethodSource("backends")
    void embedRejectsAnIdOutsideTheVocabulary(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(20).forAll(longs().all()).checkAssert(seed -> {
                SplittableRandom r = new SplittableRandom(seed);
                int v = r.nextInt(1, 50), d = r.nextInt(1, 40), t = r.nextInt(1, 6), bad = r.nextInt(t);
                int[] ids = new int[t];
                for (int i = 0; i < t; i++) ids[i] = r.nextInt(v);
                ids[bad] = r.nextBoolean() ? v + r.nextInt(3) : -1 - r.nextInt(3);
                try (Arena a = Arena.ofConfined()) {
                    Tensor tab = s.input(a, host(a, DType.F32, values(r, v * d, false, DType.F32), v, d));
                    Tensor idt = s.input(a, Tensor.ofInts(a, ids, t));
                    Tensor y = s.output(a, DType.F32, t, d);
                    if (s.context().isCuda()) {
                        Elementwise.embed(s.context(), y, tab, idt);
                        float[] got = s.toHost(a, y).toFloatArray();
                        for (int i = 0; i < d; i++) assertEquals(0f, got[bad * d + i], backend + " zero row");
                        return;
                    }
                    Dsk4jException e = assertThrows(Dsk4jException.class, () -> Elementwise.embed(s.context(), y, tab, idt));
                    assertTrue(e.getMessage().contains("'ids'") && e.getMessage().contains("entry " + bad + " "), e::getMessage);
                    for (long b : bits(y)) assertEquals(0xffffffffL, b, "nothing written");
                }
            });
        }
    }

    // ------------------------------------------------------------------ copy_columns, gather_rows

    static final DType[] ANY = {DType.F32, DType.BF16, DType.F16, DType.E4M3, DType.E5M2, DType.I32};

    /** A host tensor of random bytes. */
    static Tensor randomBytes(Arena a, SplittableRandom r, DType dt, long... shape) {
        Tensor t = Tensor.allocate(a, dt, shape);
        MemorySegment s = t.segment();
        for (long i = 0; i < s.byteSize(); i++) s.set(ValueLayout.JAVA_BYTE, i, (byte) r.nextInt(256));
        return t;
    }

    @ParameterizedTest
    @MethodSource("backends")
    void copyColumnsCopiesTheWindowBitForBit(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(60).forAll(longs().all()).checkAssert(seed -> {
                SplittableRandom r = new SplittableRandom(seed);
                DType dt = ANY[r.nextInt(ANY.length)];
                int rows = r.nextInt(0, 9), cd = r.nextInt(0, 80), cs = r.nextInt(0, 80);
                if (r.nextInt(4) == 0) { cd = 576 + 64; cs = 576; } /* the model's [T, d+64] <- [T, 576] */
                int width = r.nextInt(0, Math.min(cd, cs) + 1);
                int d0 = r.nextInt(0, cd - width + 1), s0 = r.nextInt(0, cs - width + 1);
                try (Arena a = Arena.ofConfined()) {
                    Tensor dstHost = randomBytes(a, r, dt, rows, cd), srcHost = randomBytes(a, r, dt, rows, cs);
                    long[] want = bits(dstHost), src = bits(srcHost);
                    for (int i = 0; i < rows; i++)
                        for (int j = 0; j < width; j++) want[i * cd + d0 + j] = src[i * cs + s0 + j];
                    Tensor dst = s.input(a, dstHost);
                    Elementwise.copyColumns(s.context(), dst, d0, s.input(a, srcHost), s0, width);
                    long[] got = bits(s.toHost(a, dst));
                    String what = backend + " copyColumns " + dt.label() + " rows " + rows + " dst [" + cd + "] @" + d0 + " src [" + cs
                            + "] @" + s0 + " width " + width;
                    for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], what + " element " + i);
                }
            });
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void gatherRowsCopiesRowsBitForBit(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(60).forAll(longs().all()).checkAssert(seed -> {
                SplittableRandom r = new SplittableRandom(seed);
                DType dt = ANY[r.nextInt(ANY.length)];
                int m = r.nextInt(1, 20), n = r.nextInt(0, 30), c = r.nextInt(0, 70);
                int[] idx = new int[n];
                for (int i = 0; i < n; i++) idx[i] = r.nextInt(4) == 0 && i > 0 ? idx[i - 1] : r.nextInt(m); /* repeats */
                try (Arena a = Arena.ofConfined()) {
                    Tensor srcHost = randomBytes(a, r, dt, m, c);
                    long[] src = bits(srcHost);
                    Tensor dst = s.output(a, dt, n, c);
                    Elementwise.gatherRows(s.context(), dst, s.input(a, srcHost), s.input(a, Tensor.ofInts(a, idx, n)));
                    long[] got = bits(s.toHost(a, dst));
                    for (int i = 0; i < n; i++)
                        for (int j = 0; j < c; j++)
                            assertEquals(src[idx[i] * c + j], got[i * c + j], backend + " gatherRows " + dt.label() + " row " + i);
                }
            });
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void gatherRowsRejectsAnIndexOutOfRange(Backend backend) {
        try (Session s = new Session(backend); Arena a = Arena.ofConfined()) {
            int[] idx = {0, 2, 3};
            Tensor src = s.input(a, Tensor.ofFloats(a, new float[] {1, 2, 3, 4, 5, 6}, 3, 2));
            Tensor dst = s.output(a, DType.F32, 3, 2);
            Tensor it = s.input(a, Tensor.ofInts(a, idx, 3));
            if (s.context().isCuda()) {
                Elementwise.gatherRows(s.context(), dst, src, it);
                assertEquals(Arrays.toString(new float[] {1, 2, 5, 6, 0, 0}), Arrays.toString(s.toHost(a, dst).toFloatArray()));
                return;
            }
            Dsk4jException e = assertThrows(Dsk4jException.class, () -> Elementwise.gatherRows(s.context(), dst, src, it));
            assertTrue(e.getMessage().contains("'idx'") && e.getMessage().contains("entry 2 "), e::getMessage);
            for (long b : bits(dst)) assertEquals(0xffffffffL, b, "nothing written");
        }
    }

    // ------------------------------------------------------------------ argument errors

    /** Wrong dtypes, shapes, read-only outputs, overlaps, bad parameters: each throws naming the argument. */
    @ParameterizedTest
    @MethodSource("backends")
    void argumentErrorsNameTheArgument(Backend backend) {
        try (Session s = new Session(backend); Arena a = Arena.ofConfined()) {
            Context c = s.context();
            Tensor x = s.output(a, DType.F32, 4, 10), w = s.output(a, DType.F32, 8), y = s.output(a, DType.F32, 4, 8);
            c.fill(x, 0);
            c.fill(w, 0);
            assertNames("x", () -> Elementwise.rmsnorm(c, y, s.output(a, DType.E4M3, 4, 10), w, 1e-6));
            assertNames("y", () -> Elementwise.rmsnorm(c, s.output(a, DType.BF16, 4, 8), x, w, 1e-6));
            assertNames("w", () -> Elementwise.rmsnorm(c, y, x, s.output(a, DType.BF16, 8), 1e-6));
            assertNames("y", () -> Elementwise.rmsnorm(c, s.output(a, DType.F32, 4, 9), x, w, 1e-6));
            assertNames("y", () -> Elementwise.rmsnorm(c, s.output(a, DType.F32, 5, 8), x, w, 1e-6));
            assertNames("x", () -> Elementwise.rmsnorm(c, y, x, s.output(a, DType.F32, 11), 1e-6)); /* ldx < d */
            assertNames("x", () -> Elementwise.rmsnorm(c, y, x.reshape(40), w, 1e-6));
            assertNames("eps", () -> Elementwise.rmsnorm(c, y, x, w, Double.NaN));
            assertNames("eps", () -> Elementwise.rmsnorm(c, y, x, w, -1));
            assertNames("y", () -> Elementwise.rmsnorm(c, x, x, w, 1e-6)); /* y [4, 10] is not [4, 8] */
            Tensor xs = s.output(a, DType.F32, 4, 8);
            c.fill(xs, 0);
            Elementwise.rmsnorm(c, xs, xs, w, 1e-6); /* in place with ldx == d is allowed */
            Tensor big = s.output(a, DType.F32, 64);
            c.fill(big, 0);
            Tensor p = big.slice(0, 32), q = big.slice(1, 33), other = big.slice(32, 64);
            assertNames("y", () -> Elementwise.rmsnorm(c, q.reshape(4, 8), p.reshape(4, 8), w, 1e-6)); /* partial overlap */
            assertNames("y", () -> Elementwise.add(c, q, p, other));
            assertNames("y", () -> Elementwise.siluMul(c, q, other, p));
            assertNames("a", () -> Elementwise.add(c, p, s.output(a, DType.I32, 32), other));
            assertNames("b", () -> Elementwise.add(c, p, other, s.output(a, DType.BF16, 32)));
            assertNames("b", () -> Elementwise.add(c, p, other, s.output(a, DType.F32, 31)));
            assertNames("y", () -> Elementwise.add(c, s.output(a, DType.F32, 33), p, other));
            assertNames("y", () -> Elementwise.add(c, s.output(a, DType.BF16, 32), p, other));
            assertNames("g", () -> Elementwise.siluMul(c, p, s.output(a, DType.I32, 32), other));
            assertNames("u", () -> Elementwise.siluMul(c, p, other, s.output(a, DType.F32, 4)));
            Elementwise.add(c, p, p, other); /* in place: y == a */
            Elementwise.siluMul(c, other, p, other); /* y == u */

            Tensor table = s.output(a, DType.BF16, 10, 6), ids = s.input(a, Tensor.ofInts(a, new int[] {1, 9}, 2));
            c.fill(table, 0);
            Tensor ey = s.output(a, DType.F32, 2, 6);
            assertNames("table", () -> Elementwise.embed(c, ey, s.output(a, DType.E4M3, 10, 6), ids));
            assertNames("ids", () -> Elementwise.embed(c, ey, table, s.output(a, DType.F32, 2)));
            assertNames("y", () -> Elementwise.embed(c, s.output(a, DType.I32, 2, 6), table, ids));
            assertNames("y", () -> Elementwise.embed(c, s.output(a, DType.F32, 3, 6), table, ids));
            assertNames("y", () -> Elementwise.embed(c, s.output(a, DType.F32, 2, 5), table, ids));
            assertNames("ids", () -> Elementwise.embed(c, ey, table, s.input(a, Tensor.ofInts(a, new int[] {1, 9}, 1, 2))));

            Tensor dst = s.output(a, DType.BF16, 3, 8), src = s.output(a, DType.BF16, 3, 5);
            c.fill(src, 0);
            assertNames("dst", () -> Elementwise.copyColumns(c, s.output(a, DType.F32, 3, 8), 0, src, 0, 5));
            assertNames("dst", () -> Elementwise.copyColumns(c, s.output(a, DType.BF16, 4, 8), 0, src, 0, 5));
            assertNames("dstCol0", () -> Elementwise.copyColumns(c, dst, 4, src, 0, 5));
            assertNames("dstCol0", () -> Elementwise.copyColumns(c, dst, -1, src, 0, 5));
            assertNames("srcCol0", () -> Elementwise.copyColumns(c, dst, 0, src, 1, 5));
            assertNames("width", () -> Elementwise.copyColumns(c, dst, 0, src, 0, -1));
            assertNames("src", () -> Elementwise.copyColumns(c, dst, 0, src.reshape(15), 0, 5));
            Elementwise.copyColumns(c, dst, 3, src, 0, 5); /* dstCol0 + width == Cd is fine */

            Tensor gsrc = s.output(a, DType.E4M3, 5, 7), gidx = s.input(a, Tensor.ofInts(a, new int[] {4, 4, 0}, 3));
            c.fill(gsrc, 0);
            assertNames("dst", () -> Elementwise.gatherRows(c, s.output(a, DType.E5M2, 3, 7), gsrc, gidx));
            assertNames("dst", () -> Elementwise.gatherRows(c, s.output(a, DType.E4M3, 3, 6), gsrc, gidx));
            assertNames("dst", () -> Elementwise.gatherRows(c, s.output(a, DType.E4M3, 2, 7), gsrc, gidx));
            assertNames("idx", () -> Elementwise.gatherRows(c, s.output(a, DType.E4M3, 3, 7), gsrc, s.output(a, DType.F32, 3)));
            assertNames("src", () -> Elementwise.gatherRows(c, s.output(a, DType.E4M3, 3, 7), gsrc.reshape(35), gidx));

            if (!c.isCuda()) { /* read-only outputs (e.g. a mapped checkpoint) and overlapping host memory */
                Tensor ro = Tensor.wrap(Tensor.allocate(a, DType.F32, 4, 8).segment().asReadOnly(), DType.F32, 4, 8);
                assertNames("y", () -> Elementwise.rmsnorm(c, ro, x, w, 1e-6));
                assertNames("y", () -> Elementwise.add(c, ro.reshape(32), p, other));
                assertNames("y", () -> Elementwise.siluMul(c, ro.reshape(32), p, other));
                Tensor roE = Tensor.wrap(Tensor.allocate(a, DType.F32, 2, 6).segment().asReadOnly(), DType.F32, 2, 6);
                assertNames("y", () -> Elementwise.embed(c, roE, table, ids));
                Tensor roD = Tensor.wrap(Tensor.allocate(a, DType.BF16, 3, 8).segment().asReadOnly(), DType.BF16, 3, 8);
                assertNames("dst", () -> Elementwise.copyColumns(c, roD, 0, src, 0, 5));
                Tensor roG = Tensor.wrap(Tensor.allocate(a, DType.E4M3, 3, 7).segment().asReadOnly(), DType.E4M3, 3, 7);
                assertNames("dst", () -> Elementwise.gatherRows(c, roG, gsrc, gidx));
                /* copy_columns / gather_rows / embed into their own input */
                Tensor cc = Tensor.allocate(a, DType.F32, 4, 8);
                assertNames("dst", () -> Elementwise.copyColumns(c, cc, 0, cc, 4, 4));
                Tensor gi = Tensor.ofInts(a, new int[] {0, 1, 0, 1}, 4);
                assertNames("dst", () -> Elementwise.gatherRows(c, gi.reshape(2, 2), gi.reshape(2, 2), Tensor.ofInts(a, new int[] {0, 1}, 2)));
                Tensor et = Tensor.allocate(a, DType.F32, 4, 6);
                et.segment().fill((byte) 0);
                assertNames("y", () -> Elementwise.embed(c, et.slice(0, 2), et, Tensor.ofInts(a, new int[] {3, 2}, 2)));
                /* tensors of another memory: a heap segment */
                Tensor heap = Tensor.wrap(MemorySegment.ofArray(new float[32]), DType.F32, 32);
                assertNames("a", () -> Elementwise.add(c, p, heap, other));
            }
            assertNames("ctx", () -> Elementwise.add(null, p, p, other));
            assertNames("y", () -> Elementwise.add(c, null, p, other));
            assertNames("ids", () -> Elementwise.embed(c, ey, table, null));
            assertNames("idx", () -> Elementwise.gatherRows(c, dst, src, null));
        }
    }
}
