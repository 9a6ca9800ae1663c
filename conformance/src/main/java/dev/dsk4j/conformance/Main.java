package dev.dsk4j.conformance;

import dev.dsk4j.internal.Json;
import dev.dsk4j.DType;
import dev.dsk4j.Fp8;
import dev.dsk4j.Fp8.ScaleFormat;
import dev.dsk4j.Fp8.ScaleLayout;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * {@code ./dsk4j conformance}: the conformance suite on every available backend, one line per op
 * output and backend (cases, elements, max abs / rel error, bit mismatches, PASS/FAIL);
 * {@code --vectors DIR} runs golden-vector files instead, one line per file and backend;
 * {@code --json FILE} writes the same as JSON. Exit status 0 only if everything passes.
 */
public final class Main {
    private Main() {}

    record Row(String op, String backend, long cases, Comparison result) {}

    public static void main(String[] args) throws IOException {
        int cases = 40;
        long seed = System.nanoTime();
        Path vectors = null, json = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--cases" -> cases = Integer.parseInt(value(args, ++i, "--cases"));
                case "--seed" -> seed = Long.parseLong(value(args, ++i, "--seed"));
                case "--vectors" -> vectors = Path.of(value(args, ++i, "--vectors"));
                case "--json" -> json = Path.of(value(args, ++i, "--json"));
                case "-h", "--help" -> {
                    System.out.println("usage: ./dsk4j conformance [--cases N] [--seed S] [--vectors DIR] [--json FILE]");
                    return;
                }
                default -> {
                    System.err.println("conformance: unknown argument " + args[i]);
                    System.exit(2);
                }
            }
        }
        List<Backend> backends = Backend.available();
        System.out.println("dsk4j conformance: backends " + backends + (vectors == null ? ", seed " + seed + ", " + cases + " random cases per op" : ""));
        for (String u : Backend.unavailable()) System.out.println("  not run: " + u);
        boolean ok;
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("backends", backends.stream().map(Backend::name).toList());
        report.put("unavailable", Backend.unavailable());
        if (vectors != null) {
            if (!Files.isDirectory(vectors)) {
                System.err.println("conformance: --vectors " + vectors + " is not a folder");
                System.exit(2);
            }
            List<Golden.CaseResult> results = Golden.run(vectors, backends);
            if (results.isEmpty()) System.out.println("no .safetensors cases in " + vectors);
            results.forEach(System.out::println);
            long failed = results.stream().filter(r -> !r.passed()).count();
            System.out.printf("%d passed, %d failed%n", results.size() - failed, failed);
            ok = failed == 0 && !results.isEmpty();
            List<Object> rows = new ArrayList<>();
            for (Golden.CaseResult r : results)
                rows.add(Map.of("file", r.file(), "backend", r.backend(), "result", r.passed() ? "PASS" : "FAIL", "detail", r.detail()));
            report.put("vectors", rows);
        } else {
            List<Row> rows = new ArrayList<>();
            for (Backend b : backends) rows.addAll(suite(b, cases, seed));
            System.out.printf("%-28s %-18s %6s %12s %10s %10s %10s  %s%n", "op", "backend", "cases", "elements", "max_abs",
                    "max_rel", "mismatch", "result");
            for (Row r : rows) {
                Comparison c = r.result();
                System.out.printf("%-28s %-18s %6d %12d %10.3g %10.3g %10d  %s%n", r.op(), r.backend(), r.cases(), c.elements(),
                        c.maxAbs(), c.maxRel(), c.mismatches(), c.passed() ? "PASS" : "FAIL");
                if (!c.passed()) System.out.println("    first mismatch: " + c.firstMismatch());
            }
            long failed = rows.stream().filter(r -> !r.result().passed()).count();
            System.out.printf("%d passed, %d failed%n", rows.size() - failed, failed);
            ok = failed == 0;
            List<Object> out = new ArrayList<>();
            for (Row r : rows) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("op", r.op());
                m.put("backend", r.backend());
                m.put("cases", r.cases());
                m.put("elements", r.result().elements());
                m.put("max_abs", r.result().maxAbs());
                m.put("max_rel", r.result().maxRel());
                m.put("mismatches", r.result().mismatches());
                m.put("result", r.result().passed() ? "PASS" : "FAIL");
                m.put("first_mismatch", r.result().firstMismatch());
                out.add(m);
            }
            report.put("seed", seed);
            report.put("results", out);
        }
        if (json != null) {
            Files.writeString(json, Json.write(report) + "\n");
            System.out.println("wrote " + json);
        }
        System.exit(ok ? 0 : 1);
    }

    private static String value(String[] args, int i, String flag) {
        if (i >= args.length) {
            System.err.println("conformance: " + flag + " needs a value");
            System.exit(2);
        }
        return args[i];
    }

    /** The fp8 suite on one backend: exhaustive small domains, then random cases. */
    static List<Row> suite(Backend b, int cases, long seed) {
        Map<String, Comparison> merged = new LinkedHashMap<>();
        Map<String, Long> counts = new LinkedHashMap<>();
        SplittableRandom r = new SplittableRandom(seed);
        try (Session s = new Session(b)) {
            int[] all16 = new int[1 << 16], all8 = new int[256];
            for (int i = 0; i < all16.length; i++) all16[i] = i;
            for (int i = 0; i < all8.length; i++) all8[i] = i;
            for (DType to : new DType[] {DType.E4M3, DType.E5M2}) {
                add(merged, counts, "fp8.cast bf16->" + to.label(), Fp8Checks.cast(s, DType.BF16, to, all16));
                add(merged, counts, "fp8.cast f16->" + to.label(), Fp8Checks.cast(s, DType.F16, to, all16));
                for (int c = 0; c < cases; c++) {
                    int[] raw = new int[4096];
                    for (int i = 0; i < raw.length; i++)
                        raw[i] = Float.floatToRawIntBits(r.nextBoolean() ? Values.special(r) : Float.intBitsToFloat(r.nextInt()));
                    add(merged, counts, "fp8.cast f32->" + to.label(), Fp8Checks.cast(s, DType.F32, to, raw));
                }
                for (DType f : new DType[] {DType.F32, DType.BF16, DType.F16})
                    add(merged, counts, "fp8.cast " + to.label() + "->" + f.label(), Fp8Checks.cast(s, to, f, all8));
            }
            for (int c = 0; c < cases; c++) {
                int rows = r.nextInt(0, 48), k = 128 * r.nextInt(1, 17);
                float[] x = Values.activations(r, rows * k, r.nextInt(3) == 0 ? 0 : r.nextDouble(0.05));
                DType xt = r.nextBoolean() ? DType.F32 : DType.BF16;
                ScaleFormat fmt = r.nextBoolean() ? ScaleFormat.F32 : ScaleFormat.UE8M0;
                ScaleLayout layout = r.nextBoolean() ? ScaleLayout.ROW_MAJOR : ScaleLayout.COLUMN_MAJOR;
                for (Comparison cmp : Fp8Checks.actQuant(s, x, rows, k, xt, fmt, layout, r.nextInt(3)))
                    add(merged, counts, cmp.what(), cmp);
            }
            for (int c = 0; c < Math.max(1, cases / 2); c++) {
                int n = r.nextInt(0, 300), k = r.nextInt(0, 300);
                float[] w = Values.activations(r, n * k, r.nextInt(3) == 0 ? 0 : 0.01);
                for (Comparison cmp : Fp8Checks.weightQuant(s, w, n, k, r.nextBoolean() ? DType.F32 : DType.BF16,
                        r.nextBoolean() ? ScaleFormat.F32 : ScaleFormat.UE8M0))
                    add(merged, counts, cmp.what(), cmp);
                byte[] codes = new byte[n * k];
                for (int i = 0; i < codes.length; i++) codes[i] = (byte) r.nextInt(256);
                long[] ss = Fp8.blockScaleShape(n, k);
                float[] scale = new float[(int) (ss[0] * ss[1])];
                for (int i = 0; i < scale.length; i++) scale[i] = (float) Math.pow(2, r.nextDouble(-30, 30));
                Comparison d = Fp8Checks.weightDequant(s, codes, n, k, scale, r.nextBoolean() ? DType.F32 : DType.BF16);
                add(merged, counts, d.what(), d);
            }
            for (int c = 0; c < Math.max(1, cases / 4); c++) {
                int m = r.nextInt(0, 70), n = r.nextInt(1, 300), k = 128 * r.nextInt(0, 6);
                for (DType dt : new DType[] {DType.F32, DType.BF16}) {
                    Comparison g = GemmChecks.fp8Block(s, r, m, n, k, r.nextBoolean(), dt,
                            r.nextBoolean() ? Fp8.ScaleLayout.ROW_MAJOR : Fp8.ScaleLayout.COLUMN_MAJOR, r.nextInt(3));
                    add(merged, counts, g.what(), g);
                    Comparison h = GemmChecks.bf16(s, r, m, n, r.nextInt(0, 400), r.nextBoolean(), dt);
                    add(merged, counts, h.what(), h);
                }
                for (boolean bBf16 : new boolean[] {false, true}) { // gemm.f32 with f32 and bf16 weights
                    Comparison f = GemmChecks.f32(s, r, m, n, r.nextInt(0, 400), bBf16, r.nextBoolean());
                    add(merged, counts, f.what(), f);
                }
                int groups = r.nextInt(1, 6);
                int[] sizes = new int[groups];
                for (int g = 0; g < groups; g++) sizes[g] = r.nextInt(4) == 0 ? 0 : r.nextInt(1, 40);
                Comparison gc = GemmChecks.groupedContiguous(s, r, sizes, r.nextBoolean(), n, 128 * r.nextInt(1, 4), DType.F32);
                add(merged, counts, gc.what(), gc);
                int mMax = r.nextInt(0, 20);
                int[] masked = new int[groups];
                for (int g = 0; g < groups; g++) masked[g] = r.nextInt(mMax + 1);
                Comparison gm = GemmChecks.groupedMasked(s, r, masked, mMax, n, 128 * r.nextInt(1, 4), DType.F32);
                add(merged, counts, gm.what(), gm);
            }
            // rope: DeepSeek-V3's table once, random tables; apply on q_pe / k_pe shapes, both layouts and dtypes
            add(merged, counts, "rope.yarn_table", RopeChecks.table(s, dev.dsk4j.Rope.YarnConfig.deepSeekV3()));
            for (int c = 0; c < Math.max(1, cases / 4); c++) {
                dev.dsk4j.Rope.YarnConfig cfg = RopeChecks.randomConfig(r);
                add(merged, counts, "rope.yarn_table", RopeChecks.table(s, cfg));
                for (DType dt : new DType[] {DType.F32, DType.BF16})
                    for (dev.dsk4j.Rope.Layout layout : dev.dsk4j.Rope.Layout.values()) {
                        boolean v3 = r.nextBoolean();
                        for (Comparison cmp : RopeChecks.apply(s, r, v3 ? dev.dsk4j.Rope.YarnConfig.deepSeekV3() : cfg,
                                r.nextInt(0, 40), v3 ? r.nextInt(0, 129) : r.nextInt(0, 6), layout, dt, r.nextBoolean()))
                            add(merged, counts, cmp.what(), cmp);
                    }
            }
            // mla: append + decode in every cache format and dtype, absorbed == naive, prefill, absorption
            for (int c = 0; c < Math.max(1, cases / 8); c++) {
                for (dev.dsk4j.Mla.CacheFormat f : dev.dsk4j.Mla.CacheFormat.values())
                    for (DType dt : new DType[] {DType.F32, DType.BF16}) {
                        int sq = r.nextInt(1, 3);
                        boolean causal = r.nextBoolean();
                        int[] lens = MlaChecks.lengths(r, r.nextInt(1, 4), causal ? sq : 1, 200 + r.nextInt(400));
                        for (Comparison cmp : MlaChecks.decode(s, r, f, dt, lens, sq, r.nextInt(1, 20), causal))
                            add(merged, counts, cmp.what(), cmp);
                    }
                Comparison eq = MlaChecks.equivalence(s, r, dev.dsk4j.Mla.CacheFormat.values()[r.nextInt(3)], DType.F32,
                        MlaChecks.lengths(r, 2, 1, 100), 1, r.nextInt(1, 4), false);
                add(merged, counts, eq.what(), eq);
                for (DType dt : new DType[] {DType.F32, DType.BF16})
                    for (Comparison cmp : MlaChecks.prefill(s, r, MlaChecks.cuSeqlens(r, r.nextInt(1, 4), 150), r.nextInt(1, 3), 192,
                            128, dt, true))
                        add(merged, counts, cmp.what(), cmp);
                for (boolean oSide : new boolean[] {false, true}) {
                    Comparison ab = MlaChecks.absorb(s, r, r.nextInt(1, 70), r.nextInt(1, 3), 192, oSide, DType.F32, DType.BF16);
                    add(merged, counts, ab.what(), ab);
                }
            }
            // moe: the router (indices and logits bit for bit) and the dispatch layout (exact)
            for (int c = 0; c < Math.max(1, cases / 4); c++) {
                for (Comparison cmp : MoeChecks.gate(s, r, r.nextInt(0, 12))) add(merged, counts, cmp.what(), cmp);
                Comparison d = MoeChecks.dispatch(s, r);
                add(merged, counts, d.what(), d);
            }
            // elementwise: the model's small steps (rmsnorm also on the model's [T, 512 + 64] rows)
            for (int c = 0; c < Math.max(1, cases / 4); c++)
                for (DType dt : new DType[] {DType.F32, DType.BF16}) {
                    int rows = r.nextInt(0, 9), d = r.nextBoolean() ? 512 : r.nextInt(1, 300);
                    Comparison rn = ElementwiseChecks.rmsnorm(s, r, rows, d, d == 512 ? 576 : d + r.nextInt(0, 3), dt);
                    add(merged, counts, rn.what(), rn);
                    for (boolean silu : new boolean[] {false, true}) {
                        Comparison b2 = ElementwiseChecks.binary(s, r, silu, r.nextInt(0, 3000), dt);
                        add(merged, counts, b2.what(), b2);
                    }
                    Comparison e = ElementwiseChecks.embed(s, r, r.nextInt(0, 9), r.nextInt(1, 100), r.nextInt(1, 300),
                            r.nextBoolean() ? DType.F32 : DType.BF16, dt);
                    add(merged, counts, e.what(), e);
                    Comparison cp = ElementwiseChecks.copies(s, r, r.nextInt(0, 9), dt);
                    add(merged, counts, cp.what(), cp);
                }
        }
        List<Row> rows = new ArrayList<>();
        for (Map.Entry<String, Comparison> e : merged.entrySet())
            rows.add(new Row(e.getKey(), b.name(), counts.get(e.getKey()), e.getValue()));
        return rows;
    }

    private static void add(Map<String, Comparison> merged, Map<String, Long> counts, String key, Comparison c) {
        merged.merge(key, c, Comparison::plus);
        counts.merge(key, 1L, Long::sum);
    }
}
