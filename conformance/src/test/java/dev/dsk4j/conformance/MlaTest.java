package dev.dsk4j.conformance;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.longs;

import dev.dsk4j.DType;
import dev.dsk4j.Dsk4jException;
import dev.dsk4j.Mla;
import dev.dsk4j.Status;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** mla.* on every backend against {@link MlaReference} (tolerances: {@link MlaChecks}). */
@ExtendWith(Backends.SkipUnavailable.class)
class MlaTest {
    static Stream<Backend> backends() { return Backends.withMissing(); }

    private static final Mla.CacheFormat[] FORMATS = Mla.CacheFormat.values();

    @Test
    void formatsAndConstants() {
        assertEquals(2304, Mla.CacheFormat.F32.tokenBytes());
        assertEquals(1152, Mla.CacheFormat.BF16.tokenBytes());
        assertEquals(656, Mla.CacheFormat.FP8.tokenBytes());
        assertEquals(0.1352338, Mla.Config.deepSeekV3().softmaxScale(), 5e-8);
        // the reference token of the FP8 format: power-of-two scales, e4m3 codes, bf16 rope
        float[] lat = new float[512], pe = new float[64];
        for (int i = 0; i < 512; i++) lat[i] = (i % 128) * (i < 128 ? 0.001f : 3f);
        for (int i = 0; i < 64; i++) pe[i] = i;
        byte[] tok = MlaReference.token(Mla.CacheFormat.FP8, lat, 0, pe, 0);
        float s0 = Float.intBitsToFloat(MlaReference.getInt(tok, 512)), s1 = Float.intBitsToFloat(MlaReference.getInt(tok, 516));
        assertEquals(Math.scalb(1f, Math.getExponent(0.127f / 448) + 1), s0);
        assertEquals(Math.scalb(1f, Math.getExponent(381f / 448) + 1), s1);
        double[] back = MlaReference.readToken(Mla.CacheFormat.FP8, tok, 0);
        assertEquals(63.0, back[512 + 63]);
        assertEquals(381.0, back[255], 381 * 0x1p-3);
    }

    /** Every format and dtype; random B, Sq, H, lengths (1, 63, 64, 65, long, 0), causal or not, pages in random order. */
    @ParameterizedTest
    @MethodSource("backends")
    void decodeMatchesReference(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(24).forAll(longs().all(), integers().between(0, 5), integers().between(1, 3),
                    integers().between(1, 3)).checkAssert((seed, opts, sq, batch) -> {
                        SplittableRandom r = new SplittableRandom(seed);
                        Mla.CacheFormat f = FORMATS[opts % 3];
                        DType d = opts < 3 ? DType.F32 : DType.BF16;
                        boolean causal = r.nextBoolean();
                        int heads = new int[] {1, 3, 16, 21}[r.nextInt(4)];
                        int[] lens = MlaChecks.lengths(r, batch, causal ? sq : 1, 300 + r.nextInt(500));
                        for (Comparison c : MlaChecks.decode(s, r, f, d, lens, sq, heads, causal))
                            assertTrue(c.passed(), () -> backend + " " + f + " " + d + " lens=" + Arrays.toString(lens)
                                    + " sq=" + sq + " H=" + heads + (causal ? " causal" : "") + ": " + c);
                    });
        }
    }

    /** One long sequence (split over the threads, combined) and a DeepSeek-sized head count. */
    @ParameterizedTest
    @MethodSource("backends")
    void decodeLongSequenceSplitKv(Backend backend) {
        SplittableRandom r = new SplittableRandom(42);
        try (Session s = new Session(backend)) {
            for (Mla.CacheFormat f : FORMATS)
                for (Comparison c : MlaChecks.decode(s, r, f, DType.F32, new int[] {2000}, 2, 128, true))
                    assertTrue(c.passed(), () -> backend + " " + f + ": " + c);
            for (Comparison c : MlaChecks.decode(s, r, Mla.CacheFormat.BF16, DType.BF16, new int[] {1500, 0, 65}, 1, 128, false))
                assertTrue(c.passed(), () -> backend + ": " + c);
        }
    }

    /** Absorbed decode (absorb_q, decode, absorb_o) == naive MHA over the decompressed K/V. */
    @ParameterizedTest
    @MethodSource("backends")
    void absorbedEqualsNaive(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(6).forAll(longs().all(), integers().between(0, 5)).checkAssert((seed, opts) -> {
                SplittableRandom r = new SplittableRandom(seed);
                Mla.CacheFormat f = FORMATS[opts % 3];
                DType d = opts < 3 ? DType.F32 : DType.BF16;
                int sq = r.nextInt(1, 3), heads = r.nextInt(1, 5);
                boolean causal = r.nextBoolean();
                int[] lens = MlaChecks.lengths(r, r.nextInt(1, 3), causal ? sq : 1, 150);
                Comparison c = MlaChecks.equivalence(s, r, f, d, lens, sq, heads, causal);
                assertTrue(c.passed(), () -> backend + " " + f + " " + d + " lens=" + Arrays.toString(lens) + ": " + c);
            });
        }
    }

    /** Several packed sequences (lengths 0, 1, 63, 64, 65, long), DeepSeek's dims and odd ones, causal or not. */
    @ParameterizedTest
    @MethodSource("backends")
    void prefillMatchesReference(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(12).forAll(longs().all(), integers().between(0, 3)).checkAssert((seed, opts) -> {
                SplittableRandom r = new SplittableRandom(seed);
                DType d = (opts & 1) == 0 ? DType.F32 : DType.BF16;
                boolean v3 = (opts & 2) == 0;
                int dqk = v3 ? 192 : r.nextInt(1, 257), dv = v3 ? 128 : r.nextInt(1, 257);
                int heads = r.nextInt(1, 4);
                boolean causal = r.nextInt(4) != 0;
                int[] cu = MlaChecks.cuSeqlens(r, r.nextInt(1, 5), 200 + r.nextInt(150));
                for (Comparison c : MlaChecks.prefill(s, r, cu, heads, dqk, dv, d, causal))
                    assertTrue(c.passed(), () -> backend + " cu=" + Arrays.toString(cu) + " H=" + heads + " " + dqk + "/" + dv
                            + " " + d + (causal ? " causal" : "") + ": " + c);
            });
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void absorbMatchesReference(Backend backend) {
        try (Session s = new Session(backend)) {
            qt().withExamples(12).forAll(longs().all(), integers().between(0, 7)).checkAssert((seed, opts) -> {
                SplittableRandom r = new SplittableRandom(seed);
                DType d = (opts & 1) == 0 ? DType.F32 : DType.BF16, w = (opts & 2) == 0 ? DType.F32 : DType.BF16;
                boolean oSide = (opts & 4) != 0;
                int tokens = r.nextInt(0, 140), heads = r.nextInt(1, 4), stride = r.nextBoolean() ? 192 : 128 + r.nextInt(5);
                Comparison c = MlaChecks.absorb(s, r, tokens, heads, stride, oSide, d, w);
                assertTrue(c.passed(), () -> backend + " T=" + tokens + " H=" + heads + " stride " + stride + ": " + c);
            });
        }
    }

    /** Writing past a sequence's pages, a page index outside the pool, a bad seq id: errors, nothing written. */
    @ParameterizedTest
    @MethodSource("backends")
    void appendOutOfRangeIsAnErrorAndWritesNothing(Backend backend) {
        try (Session s = new Session(backend); Arena a = Arena.ofConfined()) {
            var ctx = s.context();
            Mla.LatentCache cache = Mla.LatentCache.allocate(ctx, a, Mla.CacheFormat.BF16, 3);
            ctx.fill(cache.pages(), Session.POISON);
            Tensor lat = s.input(a, Tensor.ofFloats(a, new float[2 * 512], 2, 512));
            Tensor pe = s.input(a, Tensor.ofFloats(a, new float[2 * 64], 2, 64));
            Tensor bt = s.input(a, Tensor.ofInts(a, new int[] {2, 0, 1, 7}, 2, 2)); // seq 1's second page is 7: outside
            int[][] seqs = {{0, 0}, {0, 1}, {0, 2}, {0, -1}};
            int[][] poss = {{5, 128}, {3, 64}, {0, 0}, {0, 0}};
            String[] expect = {"'positions': entry 1", "'block_table': entry [1, 1]", "'seq_ids': entry 1", "'seq_ids': entry 1"};
            for (int i = 0; i < seqs.length; i++) {
                int k = i;
                var e = assertThrows(Dsk4jException.class, () -> Mla.append(ctx, cache, lat, pe,
                        s.input(a, Tensor.ofInts(a, seqs[k], 2)), s.input(a, Tensor.ofInts(a, poss[k], 2)), bt));
                assertEquals(Status.INVALID_ARGUMENT, e.status());
                assertTrue(e.getMessage().contains(expect[i]), e.getMessage());
                byte[] pool = s.toHost(a, cache.pages()).segment().toArray(ValueLayout.JAVA_BYTE);
                for (byte b : pool) assertEquals((byte) 0xff, b, "nothing written");
            }
            // the last slot of the last page a sequence has is fine
            Mla.append(ctx, cache, lat, pe, s.input(a, Tensor.ofInts(a, new int[] {0, 1}, 2)),
                    s.input(a, Tensor.ofInts(a, new int[] {127, 63}, 2)), bt);
        }
    }

    /** Decode with a bad page index among the visible ones, or a length past the pages: errors, output untouched. */
    @ParameterizedTest
    @MethodSource("backends")
    void decodeOutOfRangeIsAnError(Backend backend) {
        try (Session s = new Session(backend); Arena a = Arena.ofConfined()) {
            var ctx = s.context();
            Mla.LatentCache cache = Mla.LatentCache.allocate(ctx, a, Mla.CacheFormat.F32, 2);
            ctx.fill(cache.pages(), 0);
            Tensor q = s.input(a, Tensor.ofFloats(a, new float[2 * 512], 1, 2, 1, 512));
            Tensor qp = s.input(a, Tensor.ofFloats(a, new float[2 * 64], 1, 2, 1, 64));
            Tensor bt = s.input(a, Tensor.ofInts(a, new int[] {1, 2}, 1, 2));
            int[] lens = {65, 129, 1};
            String[] expect = {"'block_table': entry [0, 1]", "'seq_lens': entry 0", "less than sq"};
            for (int i = 0; i < lens.length; i++) {
                Tensor o = s.output(a, DType.F32, 1, 2, 1, 512);
                Tensor sl = s.input(a, Tensor.ofInts(a, new int[] {lens[i]}, 1));
                var e = assertThrows(Dsk4jException.class, () -> Mla.decode(ctx, o, null, q, qp, cache, bt, sl, 0.1, true));
                assertTrue(e.getMessage().contains(expect[i]), e.getMessage());
                assertTrue(Arrays.stream(Fp8Checks.rawOf(s.toHost(a, o))).allMatch(v -> v == 0xffffffff), "output untouched");
            }
            // the pages the visible positions use are fine: length 64 reads page 1 only
            Tensor o = s.output(a, DType.F32, 1, 2, 1, 512);
            Mla.decode(ctx, o, null, q, qp, cache, bt, s.input(a, Tensor.ofInts(a, new int[] {64}, 1)), 0.1, true);
            assertArrayEquals(new float[2 * 512], MlaChecks.floats(s, a, o));
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void badArgumentsNameTheArgument(Backend backend) {
        try (Session s = new Session(backend); Arena a = Arena.ofConfined()) {
            var ctx = s.context();
            Mla.LatentCache cache = Mla.LatentCache.allocate(ctx, a, Mla.CacheFormat.FP8, 1);
            Tensor q = ctx.allocate(a, DType.F32, 1, 1, 2, 512), qp = ctx.allocate(a, DType.F32, 1, 1, 2, 64);
            Tensor bt = ctx.allocate(a, DType.I32, 1, 1), sl = ctx.allocate(a, DType.I32, 1);
            var e = assertThrows(IllegalArgumentException.class,
                    () -> Mla.decode(ctx, ctx.allocate(a, DType.BF16, 1, 1, 2, 512), null, q, qp, cache, bt, sl, 0.1, false));
            assertTrue(e.getMessage().contains("'oLatent'"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> Mla.decode(ctx, ctx.allocate(a, DType.F32, 1, 1, 2, 512), null, q, ctx.allocate(a, DType.F32, 1, 1, 2, 63),
                            cache, bt, sl, 0.1, false));
            assertTrue(e.getMessage().contains("'qPe'"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> Mla.decode(ctx, ctx.allocate(a, DType.F32, 1, 1, 2, 512), null, q, qp, cache, bt, sl, Double.NaN, false));
            assertTrue(e.getMessage().contains("'softmaxScale'"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> Mla.absorbQ(ctx, ctx.allocate(a, DType.F32, 1, 2, 512), ctx.allocate(a, DType.F32, 1, 2, 100),
                            ctx.allocate(a, DType.F32, 2, 256, 512)));
            assertTrue(e.getMessage().contains("'qNope'"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> Mla.absorbO(ctx, ctx.allocate(a, DType.F32, 1, 2, 128), ctx.allocate(a, DType.F32, 1, 2, 512),
                            ctx.allocate(a, DType.F32, 3, 256, 512)));
            assertTrue(e.getMessage().contains("'wkvB'"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> Mla.prefill(ctx, ctx.allocate(a, DType.F32, 4, 2, 128), null,
                    ctx.allocate(a, DType.F32, 4, 2, 192), ctx.allocate(a, DType.F32, 4, 2, 191), ctx.allocate(a, DType.F32, 4, 2, 128),
                    ctx.allocate(a, DType.I32, 2), 0.1, true));
            assertTrue(e.getMessage().contains("'k'"), e.getMessage());
            // cu_seqlens not ending at T: the native check names it
            Tensor cu = s.input(a, Tensor.ofInts(a, new int[] {0, 3}, 2));
            var ne = assertThrows(Dsk4jException.class, () -> Mla.prefill(ctx, ctx.allocate(a, DType.F32, 4, 2, 128), null,
                    ctx.allocate(a, DType.F32, 4, 2, 192), ctx.allocate(a, DType.F32, 4, 2, 192), ctx.allocate(a, DType.F32, 4, 2, 128),
                    cu, 0.1, true));
            assertTrue(ne.getMessage().contains("'cu_seqlens'"), ne.getMessage());
        }
    }
}
