package dev.dsk4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.longs;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Hardening of the Java API (issue 7): every public op of dev.dsk4j (Fp8, Gemm, Rope, Mla, Moe, Elementwise and
 * Context's copy/fill) as a table of cases, each a valid call on small random shapes;
 *
 * <ul>
 *   <li>malformed calls (wrong dtype, inconsistent shape, too-small output, zero-length argument,
 *       tensor from a closed arena, closed context) throw IllegalArgumentException,
 *       IllegalStateException or Dsk4jException whose message names an argument of the op (the
 *       very argument for a closed arena); negative and overflowing shapes are refused when the
 *       tensor is made;
 *   <li>8 threads run every op at once, 10,000 calls in all, with results bitwise equal to a
 *       single-threaded run;
 *   <li>the resident set size returns to its level after a long loop of every op.
 * </ul>
 *
 * Every cpu path (BEST, AVX512, AVX2, PORTABLE) is used.
 */
class HardeningTest {

    /** One tensor argument of an op: its Java name, dtype, shape; outputs are written by the op. */
    record Arg(String name, DType dtype, long[] shape, boolean output, int[] ints) {
        Arg(String name, DType dtype, boolean output, long... shape) { this(name, dtype, shape, output, null); }
    }

    /** Runs the op on the tensors by argument name; returns further outputs the op allocated. */
    interface Call {
        List<Tensor> run(Context ctx, Arena arena, Map<String, Tensor> t);
    }

    record Case(String op, List<Arg> args, Call call) {}

    static Arg in(String n, DType d, long... s) { return new Arg(n, d, false, s); }
    static Arg out(String n, DType d, long... s) { return new Arg(n, d, true, s); }
    static Arg ints(String n, int[] v, long... s) { return new Arg(n, DType.I32, s, false, v); }
    static Arg intsOut(String n, int[] v, long... s) { return new Arg(n, DType.I32, s, true, v); }

    static List<Tensor> none() { return List.of(); }

    /** The cases of every public op on small random shapes drawn from r. */
    static List<Case> cases(Random r) {
        List<Case> cs = new ArrayList<>();
        int n = 1 + r.nextInt(300), rows = 1 + r.nextInt(5), kb = 1 + r.nextInt(2), k = 128 * kb;
        cs.add(new Case("fp8.cast", List.of(out("y", DType.E4M3, n), in("x", DType.F32, n)),
                (c, a, t) -> { Fp8.cast(c, t.get("y"), t.get("x")); return none(); }));
        cs.add(new Case("fp8.actQuant", List.of(out("y", DType.E4M3, rows, k), out("scale", DType.F32, rows, kb),
                in("x", DType.F32, rows, k)),
                (c, a, t) -> { Fp8.actQuant(c, t.get("y"), t.get("scale"), t.get("x"), Fp8.ActQuantOptions.defaults()); return none(); }));
        int wn = 1 + r.nextInt(200), wk = 1 + r.nextInt(200), bn = (wn + 127) / 128, bk = (wk + 127) / 128;
        cs.add(new Case("fp8.weightQuant", List.of(out("y", DType.E4M3, wn, wk), out("scaleInv", DType.F32, bn, bk),
                in("w", DType.BF16, wn, wk)),
                (c, a, t) -> { Fp8.weightQuant(c, t.get("y"), t.get("scaleInv"), t.get("w"), Fp8.ScaleFormat.UE8M0); return none(); }));
        cs.add(new Case("fp8.weightDequant", List.of(out("y", DType.F32, wn, wk), in("w", DType.E4M3, wn, wk),
                in("scaleInv", DType.F32, bn, bk)),
                (c, a, t) -> { Fp8.weightDequant(c, t.get("y"), t.get("w"), t.get("scaleInv")); return none(); }));

        int m = 1 + r.nextInt(6), gn = 1 + r.nextInt(140), cn = (gn + 127) / 128, gk = 128 * (1 + r.nextInt(2)), gkb = gk / 128;
        cs.add(new Case("gemm.fp8Block", List.of(out("d", DType.F32, m, gn), in("a", DType.E4M3, m, gk),
                in("aScale", DType.F32, m, gkb), in("b", DType.E4M3, gn, gk), in("bScale", DType.F32, cn, gkb)),
                (c, a, t) -> { Gemm.fp8Block(c, t.get("d"), t.get("a"), t.get("aScale"), t.get("b"), t.get("bScale")); return none(); }));
        int bk2 = 1 + r.nextInt(100);
        cs.add(new Case("gemm.bf16", List.of(out("d", DType.BF16, m, gn), in("a", DType.BF16, m, bk2), in("b", DType.BF16, gn, bk2)),
                (c, a, t) -> { Gemm.bf16(c, t.get("d"), t.get("a"), t.get("b"), null); return none(); }));
        int fk = 1 + r.nextInt(100);
        cs.add(new Case("gemm.f32", List.of(out("d", DType.F32, m, gn), in("a", DType.F32, m, fk), in("b", DType.F32, gn, fk)),
                (c, a, t) -> { Gemm.f32(c, t.get("d"), t.get("a"), t.get("b"), null); return none(); }));
        cs.add(new Case("gemm.f32Bf16", List.of(out("d", DType.F32, m, gn), in("a", DType.F32, m, fk), in("b", DType.BF16, gn, fk),
                in("c", DType.F32, m, gn)),
                (c, a, t) -> { Gemm.f32(c, t.get("d"), t.get("a"), t.get("b"), t.get("c")); return none(); }));
        cs.add(new Case("gemm.f32InPlace", List.of(out("d", DType.F32, m, gn), in("a", DType.F32, m, fk), in("b", DType.BF16, gn, fk)),
                (c, a, t) -> { Gemm.f32(c, t.get("d"), t.get("a"), t.get("b"), t.get("d")); return none(); }));
        int g = 1 + r.nextInt(3), gm = 2 + r.nextInt(8);
        int[] offs = new int[g + 1];
        for (int i = 1; i <= g; i++) offs[i] = i == g ? gm : Math.min(gm, offs[i - 1] + r.nextInt(3));
        cs.add(new Case("gemm.fp8GroupedContiguous", List.of(out("d", DType.F32, gm, gn), in("a", DType.E4M3, gm, gk),
                in("aScale", DType.F32, gm, gkb), in("b", DType.E4M3, g, gn, gk), in("bScale", DType.F32, g, cn, gkb),
                ints("groupOffsets", offs, g + 1)),
                (c, a, t) -> { Gemm.fp8GroupedContiguous(c, t.get("d"), t.get("a"), t.get("aScale"), t.get("b"), t.get("bScale"),
                        t.get("groupOffsets")); return none(); }));
        int mm = 1 + r.nextInt(4);
        int[] masked = new int[g];
        for (int i = 0; i < g; i++) masked[i] = r.nextInt(mm + 1);
        cs.add(new Case("gemm.fp8GroupedMasked", List.of(out("d", DType.BF16, g, mm, gn), in("a", DType.E4M3, g, mm, gk),
                in("aScale", DType.F32, g, mm, gkb), in("b", DType.E4M3, g, gn, gk), in("bScale", DType.F32, g, cn, gkb),
                ints("maskedM", masked, g)),
                (c, a, t) -> { Gemm.fp8GroupedMasked(c, t.get("d"), t.get("a"), t.get("aScale"), t.get("b"), t.get("bScale"),
                        t.get("maskedM")); return none(); }));

        int dim = 2 * (1 + r.nextInt(32)), len = 1 + r.nextInt(40);
        Rope.YarnConfig yarn = new Rope.YarnConfig(dim, 10000, 1, 4096, len, 32, 1);
        cs.add(new Case("rope.yarnTable", List.of(out("cos", DType.F32, len, dim / 2), out("sin", DType.F32, len, dim / 2)),
                (c, a, t) -> { Rope.yarnTable(c, t.get("cos"), t.get("sin"), yarn); return none(); }));
        int tok = 1 + r.nextInt(6), heads = 1 + r.nextInt(3);
        int[] pos = new int[tok];
        for (int i = 0; i < tok; i++) pos[i] = r.nextInt(len);
        cs.add(new Case("rope.apply", List.of(out("y", DType.BF16, tok, heads, dim), in("x", DType.BF16, tok, heads, dim),
                ints("positions", pos, tok), in("cos", DType.F32, len, dim / 2), in("sin", DType.F32, len, dim / 2)),
                (c, a, t) -> { Rope.apply(c, t.get("y"), t.get("x"), t.get("positions"), new Rope.Table(yarn, t.get("cos"), t.get("sin")),
                        Rope.Layout.NEOX); return none(); }));

        int batch = 1 + r.nextInt(2), maxPages = 1 + r.nextInt(2), numPages = batch * maxPages;
        int[] bt = new int[batch * maxPages];
        for (int i = 0; i < bt.length; i++) bt[i] = (i * 7 + 3) % numPages;
        int at = 1 + r.nextInt(5);
        int[] sid = new int[at], apos = new int[at];
        for (int i = 0; i < at; i++) { sid[i] = r.nextInt(batch); apos[i] = r.nextInt(maxPages * 64); }
        cs.add(new Case("mla.append", List.of(in("kvLatent", DType.F32, at, 512), in("kPe", DType.F32, at, 64),
                ints("seqIds", sid, at), ints("positions", apos, at), ints("blockTable", bt, batch, maxPages)),
                (c, a, t) -> {
                    Mla.LatentCache cache = Mla.LatentCache.allocate(c, a, Mla.CacheFormat.FP8, numPages);
                    c.fill(cache.pages(), 0);
                    Mla.append(c, cache, t.get("kvLatent"), t.get("kPe"), t.get("seqIds"), t.get("positions"), t.get("blockTable"));
                    return List.of(cache.pages());
                }));
        int sq = 1 + r.nextInt(2), mh = 1 + r.nextInt(3);
        int[] lens = new int[batch];
        for (int i = 0; i < batch; i++) lens[i] = sq + r.nextInt(maxPages * 64 - sq + 1);
        cs.add(new Case("mla.decode", List.of(out("oLatent", DType.F32, batch, sq, mh, 512), out("lse", DType.F32, batch, sq, mh),
                in("qLatent", DType.F32, batch, sq, mh, 512), in("qPe", DType.F32, batch, sq, mh, 64),
                ints("blockTable", bt, batch, maxPages), ints("seqLens", lens, batch)),
                (c, a, t) -> {
                    Mla.LatentCache cache = Mla.LatentCache.allocate(c, a, Mla.CacheFormat.BF16, numPages);
                    c.fill(cache.pages(), 0x3c);
                    Mla.decode(c, t.get("oLatent"), t.get("lse"), t.get("qLatent"), t.get("qPe"), cache, t.get("blockTable"),
                            t.get("seqLens"), 0.1, true);
                    return none();
                }));
        int pt = 1 + r.nextInt(8), qk = 1 + r.nextInt(40), vd = 1 + r.nextInt(24);
        int[] cu = {0, r.nextInt(pt + 1), pt};
        cs.add(new Case("mla.prefill", List.of(out("o", DType.F32, pt, heads, vd), out("lse", DType.F32, pt, heads),
                in("q", DType.F32, pt, heads, qk), in("k", DType.F32, pt, heads, qk), in("v", DType.F32, pt, heads, vd),
                ints("cuSeqlens", cu, 3)),
                (c, a, t) -> { Mla.prefill(c, t.get("o"), t.get("lse"), t.get("q"), t.get("k"), t.get("v"), t.get("cuSeqlens"), 0.2, true);
                    return none(); }));
        int ah = 1 + r.nextInt(2), atok = 1 + r.nextInt(3);
        cs.add(new Case("mla.absorbQ", List.of(out("qLatent", DType.F32, atok, ah, 512), in("qNope", DType.F32, atok, ah, 192),
                in("wkvB", DType.BF16, ah, 256, 512)),
                (c, a, t) -> { Mla.absorbQ(c, t.get("qLatent"), t.get("qNope"), t.get("wkvB")); return none(); }));
        cs.add(new Case("mla.absorbO", List.of(out("o", DType.BF16, atok, ah, 128), in("oLatent", DType.BF16, atok, ah, 512),
                in("wkvB", DType.F32, ah * 256, 512)),
                (c, a, t) -> { Mla.absorbO(c, t.get("o"), t.get("oLatent"), t.get("wkvB")); return none(); }));

        int E = 8, topK = 2, mt = 1 + r.nextInt(6), hid = 1 + r.nextInt(40);
        Moe.GateConfig gc = new Moe.GateConfig(E, topK, 2, 1, Moe.ScoreFunction.SIGMOID, true, 1.5f);
        cs.add(new Case("moe.gate", List.of(intsOut("indices", null, mt, topK), out("weights", DType.F32, mt, topK),
                out("logits", DType.F32, mt, E), in("x", DType.F32, mt, hid), in("wg", DType.BF16, E, hid), in("bias", DType.F32, E)),
                (c, a, t) -> { Moe.gate(c, t.get("indices"), t.get("weights"), t.get("logits"), t.get("x"), t.get("wg"), t.get("bias"), gc);
                    return none(); }));
        int[] idx = new int[mt * topK];
        for (int i = 0; i < mt; i++) {
            idx[i * topK] = r.nextInt(E);
            idx[i * topK + 1] = (idx[i * topK] + 1 + r.nextInt(E - 1)) % E;
        }
        cs.add(new Case("moe.dispatch", List.of(ints("indices", idx, mt, topK)),
                (c, a, t) -> { Moe.Dispatch d = Moe.dispatch(c, a, t.get("indices"), E, 4);
                    return List.of(d.counts(), d.offsets(), d.rowOf(), d.srcOf()); }));
        cs.add(new Case("moe.dispatchMasked", List.of(ints("indices", idx, mt, topK)),
                (c, a, t) -> { Moe.Dispatch d = Moe.dispatchMasked(c, a, t.get("indices"), E, mt);
                    return List.of(d.counts(), d.offsets(), d.rowOf(), d.srcOf()); }));
        int prs = mt * topK;
        cs.add(new Case("moe.gather", List.of(out("xp", DType.BF16, prs, hid), in("x", DType.BF16, mt, hid), ints("indices", idx, mt, topK)),
                (c, a, t) -> { Moe.gather(c, t.get("xp"), t.get("x"), Moe.dispatch(c, a, t.get("indices"), E, 1)); return none(); }));
        int[] rowOf = new int[prs];
        for (int i = 0; i < prs; i++) rowOf[i] = r.nextInt(prs);
        cs.add(new Case("moe.combine", List.of(out("y", DType.F32, mt, hid), in("e", DType.BF16, prs, hid),
                in("weights", DType.F32, mt, topK), ints("rowOf", rowOf, mt, topK), in("shared", DType.F32, mt, hid)),
                (c, a, t) -> { Moe.combine(c, t.get("y"), t.get("e"), t.get("weights"), t.get("rowOf"), t.get("shared")); return none(); }));
        int[] counts = new int[E];
        for (int i = 0; i < E; i++) counts[i] = r.nextInt(5);
        cs.add(new Case("moe.biasUpdate", List.of(out("bias", DType.F32, E), ints("counts", counts, E)),
                (c, a, t) -> { Moe.biasUpdate(c, t.get("bias"), t.get("counts"), 0.001f); return none(); }));
        int sr = 1 + r.nextInt(4), inter = 128 * (1 + r.nextInt(2));
        cs.add(new Case("moe.siluQuant", List.of(out("y", DType.E4M3, sr, inter), out("scale", DType.F32, sr, inter / 128),
                in("h", DType.F32, sr, 2 * inter)),
                (c, a, t) -> { Moe.siluQuant(c, t.get("y"), t.get("scale"), t.get("h")); return none(); }));
        int fe = 4, fh = 128, fi = 128;
        Moe.GateConfig fgc = new Moe.GateConfig(fe, 2, 1, 1, Moe.ScoreFunction.SOFTMAX, false, 1f);
        cs.add(new Case("moe.forward", List.of(out("y", DType.F32, mt, fh), in("x", DType.F32, mt, fh), intsOut("counts", null, fe),
                in("wg", DType.F32, fe, fh), in("w13", DType.BF16, fe, 2 * fi, fh), in("w2", DType.BF16, fe, fh, fi)),
                (c, a, t) -> {
                    Moe.Layer layer = new Moe.Layer(fgc, t.get("wg"), null, t.get("w13"), null, t.get("w2"), null, null, null, null, null);
                    Moe.forward(c, t.get("y"), t.get("x"), layer, t.get("counts"));
                    return none();
                }));
        int er = 1 + r.nextInt(4), ed = 1 + r.nextInt(60), eld = ed + r.nextInt(3);
        cs.add(new Case("elementwise.rmsnorm", List.of(out("y", DType.BF16, er, ed), in("x", DType.BF16, er, eld), in("w", DType.F32, ed)),
                (c, a, t) -> { Elementwise.rmsnorm(c, t.get("y"), t.get("x"), t.get("w"), 1e-6); return none(); }));
        int an = 1 + r.nextInt(300);
        cs.add(new Case("elementwise.add", List.of(out("y", DType.F32, an), in("a", DType.F32, an), in("b", DType.F32, an)),
                (c, a, t) -> { Elementwise.add(c, t.get("y"), t.get("a"), t.get("b")); return none(); }));
        cs.add(new Case("elementwise.addInPlace", List.of(out("y", DType.BF16, er, ed), in("b", DType.BF16, er * ed)),
                (c, a, t) -> { Elementwise.add(c, t.get("y"), t.get("y"), t.get("b")); return none(); }));
        cs.add(new Case("elementwise.siluMul", List.of(out("y", DType.BF16, er, ed), in("g", DType.BF16, er, ed), in("u", DType.BF16, er, ed)),
                (c, a, t) -> { Elementwise.siluMul(c, t.get("y"), t.get("g"), t.get("u")); return none(); }));
        int ev = 1 + r.nextInt(50), edim = 1 + r.nextInt(40), et = 1 + r.nextInt(5);
        int[] eids = new int[et];
        for (int i = 0; i < et; i++) eids[i] = r.nextInt(ev);
        cs.add(new Case("elementwise.embed", List.of(out("y", DType.F32, et, edim), in("table", DType.BF16, ev, edim), ints("ids", eids, et)),
                (c, a, t) -> { Elementwise.embed(c, t.get("y"), t.get("table"), t.get("ids")); return none(); }));
        int cr = 1 + r.nextInt(5), ccs = 1 + r.nextInt(40), cw = 1 + r.nextInt(ccs), cs0 = r.nextInt(ccs - cw + 1), cd0 = r.nextInt(5);
        cs.add(new Case("elementwise.copyColumns", List.of(out("dst", DType.BF16, cr, cd0 + cw), in("src", DType.BF16, cr, ccs)),
                (c, a, t) -> { Elementwise.copyColumns(c, t.get("dst"), cd0, t.get("src"), cs0, cw); return none(); }));
        int gsm = 1 + r.nextInt(8), gnr = 1 + r.nextInt(8), gcol = 1 + r.nextInt(30);
        int[] gidx = new int[gnr];
        for (int i = 0; i < gnr; i++) gidx[i] = r.nextInt(gsm);
        cs.add(new Case("elementwise.gatherRows", List.of(out("dst", DType.E4M3, gnr, gcol), in("src", DType.E4M3, gsm, gcol), ints("idx", gidx, gnr)),
                (c, a, t) -> { Elementwise.gatherRows(c, t.get("dst"), t.get("src"), t.get("idx")); return none(); }));
        int cnum = 1 + r.nextInt(100);
        cs.add(new Case("context.copy", List.of(out("dst", DType.F32, cnum), in("src", DType.F32, cnum)),
                (c, a, t) -> { c.copy(t.get("dst"), t.get("src")); return none(); }));
        cs.add(new Case("context.fill", List.of(out("t", DType.BF16, cnum)),
                (c, a, t) -> { c.fill(t.get("t"), 0x7f); return none(); }));
        return cs;
    }

    // ------------------------------------------------------------------ tensors

    /** A tensor for the argument: ints as given (cycled), floats small and random, fp8 codes without NaN. */
    static Tensor make(Arena arena, Arg g, DType dtype, long[] shape, long seed) {
        Tensor t = Tensor.allocate(arena, dtype, shape);
        MemorySegment s = t.segment();
        Random r = new Random(seed);
        long n = t.numel();
        for (long i = 0; i < n; i++) {
            switch (dtype) {
                case I32 -> s.setAtIndex(ValueLayout.JAVA_INT_UNALIGNED, i,
                        g.ints() != null && g.ints().length > 0 ? g.ints()[(int) (i % g.ints().length)] : 0);
                case F32 -> s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, r.nextFloat() * 2 - 1);
                case BF16, F16 -> s.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i,
                        (short) (Float.floatToRawIntBits(r.nextFloat() * 2 - 1) >>> 16));
                default -> s.set(ValueLayout.JAVA_BYTE, i, (byte) (r.nextInt(0x7e) | (r.nextBoolean() ? 0x80 : 0)));
            }
        }
        return t;
    }

    static Map<String, Tensor> tensors(Arena arena, Case c, long seed) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        for (Arg g : c.args()) m.put(g.name(), make(arena, g, g.dtype(), g.shape(), seed + g.name().hashCode()));
        return m;
    }

    static byte[] bytes(Tensor t) { return t.segment().toArray(ValueLayout.JAVA_BYTE); }

    static Context open(Context.CpuPath p) { return Context.open(Device.cpu(), Context.Options.defaults().withCpuPath(p).withThreads(2)); }

    // ------------------------------------------------------------------ (a) malformed calls

    enum Malformation { WRONG_DTYPE, SHAPE_PLUS_ONE, SHORTER_OUTPUT, ZERO_LENGTH, CLOSED_ARENA, CLOSED_CONTEXT }

    static final DType[] FLOATS = {DType.F32, DType.BF16, DType.F16, DType.E4M3, DType.E5M2};

    static String snake(String camel) { return camel.replaceAll("([a-z0-9])([A-Z])", "$1_$2").toLowerCase(); }

    /** The message names an argument: `'arg'` with the Java or the C name, any argument of the op unless `exact`. */
    static boolean namesArgument(String msg, Case c, Arg which, boolean exact) {
        if (msg == null) return false;
        for (Arg g : c.args()) {
            if (exact && g != which) continue;
            /* 'x', its C name 'x_name' or 'x_name_dtype', or a field path such as 'table.cos' */
            if (msg.contains("'" + g.name() + "'") || msg.contains("'" + snake(g.name()) + "'") || msg.contains("." + g.name() + "'")
                    || msg.contains("'" + snake(g.name()) + "_dtype'"))
                return true;
        }
        return false;
    }

    /** A dtype the op refuses for this argument (every op checks its dtypes; mismatches name an argument). */
    static DType wrongDType(Case c, Arg g) {
        if (g.dtype() == DType.I32) return DType.F32;
        if (c.op().equals("context.copy") || c.op().equals("context.fill")) return null; /* raw bytes: any dtype copies */
        if (c.op().equals("moe.gather")) return null; /* any element type is copied bit for bit */
        return DType.I32;
    }

    static int checkedCalls;

    /**
     * The changes that leave a consistent call: an op whose shapes follow from that one argument
     * (moe.dispatch of one token more or of none), and a block table with one sequence more (its
     * rows are the batch; nothing refers to the extra one), a combine source with a row more than
     * the row map uses. These must succeed.
     */
    /**
     * One token more for moe.dispatchMasked: valid unless an expert now gets more than mMax rows;
     * a decode block table with one row more: valid if the API takes the batch from the queries.
     */
    static boolean mayBeValid(Case c, Arg g, Malformation kind) {
        return kind == Malformation.SHAPE_PLUS_ONE
                && (c.op().equals("moe.dispatchMasked") || (c.op().equals("mla.decode") && g.name().equals("blockTable")));
    }

    static boolean stillValid(Case c, Arg g, Malformation kind) {
        boolean shape = kind == Malformation.SHAPE_PLUS_ONE || kind == Malformation.ZERO_LENGTH;
        if (shape && c.op().startsWith("moe.dispatch")) return !mayBeValid(c, g, kind);
        if (kind != Malformation.SHAPE_PLUS_ONE) return false;
        return (c.op().equals("mla.append") && g.name().equals("blockTable"))
                || (c.op().equals("moe.combine") && g.name().equals("e")) /* likewise */
                || (c.op().equals("elementwise.embed") && g.name().equals("table")) /* a vocabulary of one id more */
                || (c.op().equals("elementwise.gatherRows") && g.name().equals("src")); /* a source row more */
    }

    /** Runs one malformation of one argument; returns false when it does not apply. */
    static boolean malformed(Context ctx, Context.CpuPath path, Case c, Arg g, Malformation kind, long seed) {
        long[] s = g.shape().clone();
        DType dt = g.dtype();
        switch (kind) {
            case WRONG_DTYPE -> { dt = wrongDType(c, g); if (dt == null) return false; }
            case SHAPE_PLUS_ONE -> s[0]++;
            case SHORTER_OUTPUT -> { if (!g.output() || s[s.length - 1] == 0) return false; s[s.length - 1]--; }
            case ZERO_LENGTH -> { if (s[0] == 0) return false; s[0] = 0; }
            default -> { }
        }
        if (c.op().equals("context.fill") && kind.ordinal() <= Malformation.ZERO_LENGTH.ordinal()) return false; /* fill: any tensor */
        if (kind == Malformation.CLOSED_CONTEXT && g != c.args().get(0)) return false; /* once per op */
        Context use = ctx;
        if (kind == Malformation.CLOSED_CONTEXT) {
            use = open(path);
            use.close();
        }
        final Context callCtx = use;
        final long[] shape = s;
        final DType dtype = dt;
        try (Arena arena = Arena.ofConfined()) {
            Map<String, Tensor> t = tensors(arena, c, seed);
            if (kind == Malformation.CLOSED_ARENA) {
                Arena gone = Arena.ofConfined();
                t.put(g.name(), make(gone, g, g.dtype(), g.shape(), seed));
                gone.close();
            } else if (kind != Malformation.CLOSED_CONTEXT) {
                t.put(g.name(), make(arena, g, dtype, shape, seed));
            }
            if (stillValid(c, g, kind)) {
                assertDoesNotThrow(() -> c.call().run(callCtx, arena, t), () -> c.op() + " " + kind + " of '" + g.name() + "'");
                return true;
            }
            if (mayBeValid(c, g, kind)) {
                try {
                    c.call().run(callCtx, arena, t);
                    return true;
                } catch (RuntimeException e) {
                    assertTrue(namesArgument(e.getMessage(), c, g, false), () -> c.op() + " " + kind + ": " + e);
                    checkedCalls++;
                    return true;
                }
            }
            RuntimeException e = assertThrows(RuntimeException.class, () -> c.call().run(callCtx, arena, t),
                    () -> c.op() + " " + kind + " of '" + g.name() + "' did not throw");
            assertTrue(e instanceof IllegalArgumentException || e instanceof IllegalStateException || e instanceof Dsk4jException,
                    () -> c.op() + " " + kind + " of '" + g.name() + "': unexpected " + e);
            boolean ok = switch (kind) {
                case CLOSED_CONTEXT -> e instanceof IllegalStateException && e.getMessage().contains("closed");
                case CLOSED_ARENA -> e instanceof IllegalStateException && namesArgument(e.getMessage(), c, g, true);
                default -> namesArgument(e.getMessage(), c, g, false);
            };
            assertTrue(ok, () -> c.op() + " " + kind + " of '" + g.name() + "': the message does not name an argument: " + e);
            checkedCalls++;
        }
        return true;
    }

    @Test
    void malformedCallsThrowNamingTheArgument() {
        Context[] ctxs = new Context[Context.CpuPath.values().length];
        for (Context.CpuPath p : Context.CpuPath.values()) ctxs[p.ordinal()] = open(p);
        AtomicInteger examples = new AtomicInteger();
        checkedCalls = 0;
        try {
            qt().withExamples(12).forAll(longs().all(), integers().between(0, 3)).checkAssert((seed, pathIndex) -> {
                Context.CpuPath path = Context.CpuPath.values()[pathIndex];
                Context ctx = ctxs[pathIndex];
                for (Case c : cases(new Random(seed))) {
                    try (Arena arena = Arena.ofConfined()) { /* the valid call succeeds */
                        Map<String, Tensor> t = tensors(arena, c, seed);
                        assertDoesNotThrow(() -> c.call().run(ctx, arena, t), () -> c.op() + " valid call");
                    }
                    for (Arg g : c.args())
                        for (Malformation kind : Malformation.values()) malformed(ctx, path, c, g, kind, seed);
                }
                examples.incrementAndGet();
            });
        } finally {
            for (Context c : ctxs) c.close();
        }
        System.out.println("HardeningTest: " + checkedCalls + " malformed calls over " + examples.get()
                + " random examples, each threw an exception naming an argument");
        assertTrue(checkedCalls > 1000, "too few malformed calls checked: " + checkedCalls);
    }

    @Test
    void negativeAndOverflowingShapesAreRefused() {
        try (Arena a = Arena.ofConfined()) {
            qt().withExamples(50).forAll(longs().between(Long.MIN_VALUE, -1), integers().between(0, 2)).checkAssert((neg, at) -> {
                long[] shape = {3, 4, 5};
                shape[at] = neg;
                var e = assertThrows(IllegalArgumentException.class, () -> Tensor.allocate(a, DType.F32, shape));
                assertTrue(e.getMessage().contains("'shape'"), e::getMessage);
            });
            var e = assertThrows(IllegalArgumentException.class, () -> Tensor.allocate(a, DType.F32, 1L << 40, 1L << 40));
            assertTrue(e.getMessage().contains("'shape'"), e::getMessage);
            var w = assertThrows(IllegalArgumentException.class, () -> Tensor.wrap(a.allocate(16), DType.F32, 5));
            assertTrue(w.getMessage().contains("'segment'"), w::getMessage);
        }
    }

    // ------------------------------------------------------------------ (c) use after close

    @Test
    void useAfterCloseThrows() {
        Context ctx = open(Context.CpuPath.BEST);
        Tensor dead;
        try (Arena a = Arena.ofConfined()) {
            dead = ctx.allocate(a, DType.F32, 128);
        }
        try (Arena a = Arena.ofConfined()) {
            Tensor live = ctx.allocate(a, DType.F32, 128);
            var e = assertThrows(IllegalStateException.class, () -> ctx.copy(live, dead));
            assertTrue(e.getMessage().contains("'src'"), e::getMessage);
            assertThrows(IllegalStateException.class, () -> ctx.fill(dead, 0));
            assertThrows(IllegalStateException.class, () -> Fp8.cast(ctx, Tensor.allocate(a, DType.E4M3, 128), dead));
        }
        ctx.close();
        ctx.close(); /* idempotent */
        assertTrue(ctx.isClosed());
        try (Arena a = Arena.ofConfined()) {
            Tensor x = Tensor.allocate(a, DType.F32, 128);
            assertThrows(IllegalStateException.class, () -> ctx.allocate(a, DType.F32, 4));
            assertThrows(IllegalStateException.class, () -> ctx.fill(x, 0));
            assertThrows(IllegalStateException.class, ctx::synchronize);
            assertThrows(IllegalStateException.class, () -> Fp8.cast(ctx, Tensor.allocate(a, DType.E4M3, 128), x));
            assertThrows(IllegalStateException.class, () -> Rope.table(ctx, Rope.YarnConfig.deepSeekV3().withMaxSeqLen(8)));
        }
    }

    // ------------------------------------------------------------------ (b) 8 threads

    @Test
    void eightThreadsAtOnceGiveTheSingleThreadBits() throws Exception {
        final int threads = 8, total = 10_000;
        long seed = new Random().nextLong();
        for (Context.CpuPath path : new Context.CpuPath[] {Context.CpuPath.BEST, Context.CpuPath.PORTABLE}) {
            try (Context ctx = open(path); Arena shared = Arena.ofShared()) {
                List<Case> cs = cases(new Random(seed));
                List<Map<String, Tensor>> inputs = new ArrayList<>();
                List<List<byte[]>> expected = new ArrayList<>();
                for (Case c : cs) {
                    Map<String, Tensor> t = tensors(shared, c, seed);
                    inputs.add(t);
                    expected.add(runFresh(ctx, c, t));
                }
                AtomicInteger calls = new AtomicInteger();
                try (ExecutorService pool = Executors.newFixedThreadPool(threads)) {
                    List<Future<?>> fs = new ArrayList<>();
                    for (int th = 0; th < threads; th++) {
                        final int start = th;
                        fs.add(pool.submit(() -> {
                            for (int i = 0; i < total / threads; i++) {
                                int ci = (start * 7 + i) % cs.size();
                                List<byte[]> got = runFresh(ctx, cs.get(ci), inputs.get(ci));
                                List<byte[]> want = expected.get(ci);
                                assertEquals(want.size(), got.size());
                                for (int o = 0; o < want.size(); o++)
                                    assertArrayEquals(want.get(o), got.get(o), cs.get(ci).op() + " output " + o + " differs from one thread");
                                calls.incrementAndGet();
                            }
                            return null;
                        }));
                    }
                    for (Future<?> f : fs) f.get();
                }
                assertEquals(total, calls.get());
                System.out.println("HardeningTest: " + path + ": " + calls.get() + " calls of " + cs.size() + " ops from " + threads
                        + " threads, all bitwise equal to the single-thread run");
            }
        }
    }

    /** Runs the case with fresh copies of its outputs (inputs shared, read-only); returns the output bytes. */
    static List<byte[]> runFresh(Context ctx, Case c, Map<String, Tensor> inputs) {
        try (Arena a = Arena.ofConfined()) {
            Map<String, Tensor> t = new LinkedHashMap<>(inputs);
            for (Arg g : c.args()) {
                if (!g.output()) continue;
                Tensor fresh = Tensor.allocate(a, g.dtype(), g.shape());
                fresh.segment().copyFrom(inputs.get(g.name()).segment());
                t.put(g.name(), fresh);
            }
            List<Tensor> extra = c.call().run(ctx, a, t);
            List<byte[]> out = new ArrayList<>();
            for (Arg g : c.args()) if (g.output()) out.add(bytes(t.get(g.name())));
            for (Tensor e : extra) out.add(bytes(e));
            return out;
        }
    }

    // ------------------------------------------------------------------ (d) native memory

    static long rssKb() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status")))
            if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("[^0-9]", ""));
        throw new IllegalStateException("no VmRSS in /proc/self/status");
    }

    /**
     * Bytes the C heap has in use (glibc mallinfo2: uordblks + hblkhd, over all arenas), or -1
     * where mallinfo2 is missing. The library allocates with malloc/posix_memalign, so a leak in
     * it shows here with far less noise than in the resident set.
     */
    static long mallocInUse() throws Throwable {
        Linker linker = Linker.nativeLinker();
        var sym = linker.defaultLookup().find("mallinfo2");
        if (sym.isEmpty()) return -1;
        MemoryLayout[] fields = new MemoryLayout[10];
        for (int i = 0; i < 10; i++) fields[i] = ValueLayout.JAVA_LONG.withName("f" + i);
        StructLayout layout = MemoryLayout.structLayout(fields);
        MethodHandle h = linker.downcallHandle(sym.get(), FunctionDescriptor.of(layout));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment info = (MemorySegment) h.invokeExact((SegmentAllocator) a);
            return info.get(ValueLayout.JAVA_LONG, 7 * 8) + info.get(ValueLayout.JAVA_LONG, 4 * 8);
        }
    }

    static void loop(int iterations, long seed) {
        for (int i = 0; i < iterations; i++) {
            /* a context per 50 iterations: opening and closing threads and their pools is part of the loop */
            try (Context ctx = open(Context.CpuPath.values()[i % 4])) {
                for (int j = 0; j < 50; j++) {
                    for (Case c : cases(new Random(seed + i * 50L + j))) {
                        try (Arena a = Arena.ofConfined()) {
                            c.call().run(ctx, a, tensors(a, c, seed));
                        }
                    }
                    try (Arena a = Arena.ofConfined()) { /* and a failing native call: no leak on the error path */
                        Tensor x = Tensor.allocate(a, DType.F32, 2, 128);
                        assertThrows(RuntimeException.class, () -> Fp8.cast(ctx, Tensor.allocate(a, DType.E4M3, 3, 128), x));
                    }
                }
            }
        }
    }

    @Test
    void nativeMemoryReturnsToItsLevelAfterALongLoop() throws Throwable {
        if (!Files.exists(Path.of("/proc/self/status"))) fail("this test reads VmRSS from /proc/self/status (Linux)");
        long seed = new Random().nextLong();
        loop(4, seed); /* warm up: code, JIT, malloc arenas, thread stacks */
        System.gc();
        long before = rssKb(), heapBefore = mallocInUse();
        long t0 = System.nanoTime();
        final int rounds = 24;
        loop(rounds, seed);
        System.gc();
        long after = rssKb(), heapAfter = mallocInUse();
        long calls = (long) rounds * 50 * (cases(new Random(seed)).size() + 1);
        final long slackKb = 64 * 1024;
        System.out.printf("HardeningTest: VmRSS %d kB before, %d kB after %d native calls in %d contexts (%.1f s): %+d kB (slack %d kB)%n",
                before, after, calls, rounds, (System.nanoTime() - t0) / 1e9, after - before, slackKb);
        assertTrue(after - before < slackKb, "resident memory grew by " + (after - before) + " kB over the loop");
        if (heapBefore >= 0) {
            final long heapSlack = 16L << 20; /* the JVM's own malloc use (JIT, GC tables) moves too */
            System.out.printf("HardeningTest: C heap in use (mallinfo2) %d bytes before, %d after: %+d bytes (slack %d)%n",
                    heapBefore, heapAfter, heapAfter - heapBefore, heapSlack);
            assertTrue(heapAfter - heapBefore < heapSlack, "the C heap grew by " + (heapAfter - heapBefore) + " bytes over the loop");
        }
    }
}
