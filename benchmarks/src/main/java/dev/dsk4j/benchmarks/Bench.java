package dev.dsk4j.benchmarks;

import dev.dsk4j.Context;
import dev.dsk4j.Device;
import dev.dsk4j.Dsk4j;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import jdk.incubator.vector.FloatVector;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.CommandLineOptionException;
import org.openjdk.jmh.runner.options.CommandLineOptions;
import org.openjdk.jmh.runner.options.OptionsBuilder;

/**
 * {@code ./dsk4j bench [fp8|overhead|gemm|rope|all] [JMH ARGS]}: measures this machine's memory bandwidth
 * ({@link Bandwidth}) and, for gemm, its peak f32 FMA rate ({@link PeakFlops}) and AMX-BF16 tile
 * rate ({@link AmxPeak}, "n/a" without AMX), runs the JMH benchmarks
 * ({@link Fp8Bench}, {@link OverheadBench}, {@link GemmBench}, {@link RopeBench}) and prints each result with its ratio
 * to the measured ceilings and to its peers (DESIGN.md 7). Extra arguments go to JMH as on its
 * command line (e.g. {@code -p impl=dsk4j}, {@code -wi 1 -i 2}, {@code -f 0}). Tables are also
 * written as CSV to benchmarks/target/.
 */
public final class Bench {
    private Bench() {}

    static final List<String> OPS = List.of("fp8.act_quant", "fp8.weight_dequant", "fp8.weight_quant");
    static final List<String> IMPLS = List.of("dsk4j", "dsk4j-1t", "vector-mt", "vector-1t", "java-mt", "java-1t", "reference");
    /** The target of the issue: the CPU backend at >= 70% of read bandwidth and >= 3x the best pure Java. */
    static final double TARGET_BW = 0.70, TARGET_SPEEDUP = 3.0;
    /** Input + output at least this many times L3 counts as "much larger than L3" (the L3 is also shared with other tenants). */
    static final double BIG_L3 = 1.5;

    /** One fp8 result. */
    record Row(String op, String shape, String impl, double seconds, double errorSeconds, long bytes) {
        double gbs() { return bytes / seconds / 1e9; }
    }

    public static void main(String[] args) throws Exception {
        String what = "all";
        int first = 0;
        if (args.length > 0 && Set.of("fp8", "overhead", "gemm", "rope", "mla", "moe", "model", "all").contains(args[0])) {
            what = args[0];
            first = 1;
        } else if (args.length > 0 && Set.of("-h", "--help", "help").contains(args[0])) {
            System.out.println("usage: ./dsk4j bench [fp8|overhead|gemm|rope|mla|moe|model|all] [JMH ARGS]\n"
                    + "  fp8       fp8.act_quant / weight_dequant / weight_quant: dsk4j (native CPU) vs plain Java,\n"
                    + "            Vector API and reference, with GB/s and % of this machine's read bandwidth\n"
                    + "  overhead  Java -> native call overhead per op call (ns)\n"
                    + "  gemm      gemm.fp8_block / bf16 / f32 / grouped: dsk4j (native CPU; best path and, where it has AMX,\n"
                    + "            the AVX-512-only path as *-avx512) vs OpenBLAS sgemm/sgemv (f32), Vector API and\n"
                    + "            reference, with GFLOP/s, % of the measured peak FMA rate and AMX-BF16 tile rate and, for\n"
                    + "            M <= 4, weight GB/s and % of read bandwidth (~20 min; needs libopenblas-dev for the\n"
                    + "            openblas rows: apt-get install libopenblas-dev); pick cases with -p c=MxNxK/impl,...\n"
                    + "            (dense) and -p g=w13/t16/impl,... (grouped)\n"
                    + "  rope      rope.apply in place on q_pe [T, 128, 64] f32/bf16 (DeepSeek-V3 YaRN table): dsk4j (native\n"
                    + "            CPU) vs plain Java and Vector API, with GB/s and % of read bandwidth (-p layout=neox)\n"
                    + "  mla       mla.decode (absorbed) B in {1,8}, H in {16,128}, L in {1024,4096,16384}, bf16 cache (-p fmt=fp8):\n"
                    + "            GFLOP/s and % of the measured peak FMA, cache GB/s and % of read bandwidth, and the naive\n"
                    + "            decompressed path (its decompression GEMM alone: a lower bound) on the same work\n"
                    + "  moe       a DeepSeek-V3 MoE layer (moe.forward, FP8 experts, 32 resident experts) at T = 1, 16, 128\n"
                    + "            and the V3 router (moe.gate, 256 experts) alone, with weight GB/s, % of read bandwidth and\n"
                    + "            GFLOP/s, % of the measured peak FMA rate\n"
                    + "  model     the model API: decode steps (B = 1, 8 at context 256) and a 128-token prefill of the demo\n"
                    + "            checkpoint and of one real-sized DeepSeek-V3 layer (32 experts, vocabulary 1024; written once\n"
                    + "            to benchmarks/target, 1.7 GB), tokens/s, time per op family and peak RSS vs weights + cache\n"
                    + "  all       all of them (default)\n"
                    + "JMH ARGS go to JMH (e.g. -p impl=dsk4j,java-mt  -wi 1 -i 2  -f 0); run with '-h' after fp8 for JMH's list.");
            return;
        }
        String[] jmhArgs = Arrays.copyOfRange(args, first, args.length);
        CommandLineOptions cli;
        try {
            cli = new CommandLineOptions(jmhArgs);
        } catch (CommandLineOptionException e) {
            System.err.println("dsk4j bench: bad JMH arguments: " + e.getMessage());
            System.exit(2);
            return;
        }
        if (cli.shouldHelp()) {
            cli.showHelp();
            return;
        }

        String load0 = loadAverage();
        printMachine();
        System.out.println("# measuring memory bandwidth (best of 5 passes) ...");
        Bandwidth.Result bw = Bandwidth.measure(5);
        System.out.println("# bandwidth: " + bw.describe());
        System.out.flush();

        PeakFlops.Result peak = null;
        Optional<AmxPeak.Result> amx = Optional.empty();
        if (what.equals("gemm") || what.equals("mla") || what.equals("moe") || what.equals("all")) {
            System.out.println("# measuring the peak FMA rate and the AMX-BF16 tile rate (best of 5 passes) ...");
            peak = PeakFlops.measure(5);
            amx = AmxPeak.measure(5);
            System.out.println("# " + peak.describe());
            System.out.println("# " + AmxPeak.describe(amx));
            System.out.println("# " + openBlasLine());
            System.out.flush();
        }

        List<String> report = new ArrayList<>();
        report.add("bandwidth: " + bw.describe());
        if (peak != null) report.add(peak.describe());
        if (peak != null) report.add(AmxPeak.describe(amx));
        report.add("load average at start: " + load0 + " (" + Runtime.getRuntime().availableProcessors()
                + " cores; another busy process makes every number here lower and noisier)");
        if (what.equals("fp8") || what.equals("all")) report.addAll(fp8(cli, bw));
        if (what.equals("overhead") || what.equals("all")) report.addAll(overhead(cli));
        if (what.equals("gemm") || what.equals("all")) report.addAll(gemm(cli, bw, peak, amx));
        if (what.equals("rope") || what.equals("all")) report.addAll(rope(cli, bw));
        if (what.equals("mla") || what.equals("all")) report.addAll(mla(cli, bw, peak));
        if (what.equals("moe") || what.equals("all")) report.addAll(moe(cli, bw, peak));
        if (what.equals("model") || what.equals("all")) report.addAll(model(cli));

        report.add("load average at end: " + loadAverage());
        System.out.println();
        System.out.println("==================================================================== dsk4j bench: summary");
        report.forEach(System.out::println);
    }

    /** OpenBLAS as the gemm run will use it (library, config, core, threads, environment), or why it is missing. */
    static String openBlasLine() {
        return OpenBlas.get().map(OpenBlas::describe).orElse(OpenBlas.whyMissing());
    }

    /** The 1, 5 and 15 minute load averages from /proc/loadavg, or "unknown". */
    static String loadAverage() {
        try {
            String[] p = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return p[0] + " " + p[1] + " " + p[2];
        } catch (IOException | RuntimeException e) {
            return "unknown";
        }
    }

    static void printMachine() {
        System.out.println("# dsk4j bench: JDK " + Runtime.version() + " (" + System.getProperty("java.vm.name") + "), "
                + Runtime.getRuntime().availableProcessors() + " cores, L3 "
                + (Bandwidth.l3Bytes() > 0 ? (Bandwidth.l3Bytes() >> 20) + " MiB" : "unknown") + ", "
                + "Vector API " + FloatVector.SPECIES_PREFERRED.vectorBitSize() + " bits");
        try (Context c = Context.open(Device.cpu())) {
            System.out.println("# dsk4j " + Dsk4j.version() + " (" + Dsk4j.libraryPath() + "): " + c.describe());
        }
    }

    // ------------------------------------------------------------------ fp8

    static List<String> fp8(CommandLineOptions cli, Bandwidth.Result bw) throws RunnerException {
        Collection<RunResult> results = new Runner(new OptionsBuilder().parent(cli)
                .include(Fp8Bench.class.getName() + "\\.").build()).run();
        List<Row> rows = new ArrayList<>();
        for (RunResult rr : results) {
            var p = rr.getParams();
            String method = p.getBenchmark().substring(p.getBenchmark().lastIndexOf('.') + 1);
            String op = switch (method.replace("Reference", "")) {
                case "actQuant" -> "fp8.act_quant";
                case "weightDequant" -> "fp8.weight_dequant";
                case "weightQuant" -> "fp8.weight_quant";
                default -> method;
            };
            String impl = method.endsWith("Reference") ? "reference" : p.getParam("impl");
            String shape = p.getParam("shape");
            Result<?> r = rr.getPrimaryResult();
            double sec = seconds(r.getScore(), r.getScoreUnit());
            double err = Double.isNaN(r.getScoreError()) ? Double.NaN
                    : Math.abs(sec - seconds(r.getScore() + r.getScoreError(), r.getScoreUnit()));
            rows.add(new Row(op, shape, impl, sec, err, Fp8Bench.bytesMoved(op, shape)));
        }
        rows.sort(Comparator.comparingInt((Row r) -> OPS.indexOf(r.op()))
                .thenComparingLong(r -> r.bytes())
                .thenComparingInt(r -> IMPLS.indexOf(r.impl())));

        Map<String, Row> bestJava = bestJava(rows);

        List<String> out = new ArrayList<>();
        out.add("");
        out.add("fp8 ops (CPU). time = JMH average per call; GB/s = (input + output bytes) / time, counting f32 values,");
        out.add("e4m3 codes and f32 scales once each (write-allocate traffic not counted); %BW = of the read bandwidth");
        out.add(String.format(Locale.ROOT, "measured above (%.1f GB/s, %d cores); x best Java = time of the fastest java-*/vector-* run", bw.readGBs(), bw.threads()));
        out.add("of the same op and shape / this time. MB = input + output; L3 = %s.".formatted(
                bw.l3Bytes() > 0 ? (bw.l3Bytes() >> 20) + " MiB" : "unknown"));
        bandwidthTable(out, rows, bestJava, bw, 18, "shape");

        // the target, on the shapes much larger than L3 (and, for the record, the others)
        out.add("");
        out.add(String.format(Locale.ROOT, "target (CPU backend, all cores): >= %.0f%% of read bandwidth and >= %.0fx the best pure Java,"
                + " for act_quant and weight_dequant on tensors >> L3:", 100 * TARGET_BW, TARGET_SPEEDUP));
        for (Row r : rows) {
            if (!r.impl().equals("dsk4j") || r.op().equals("fp8.weight_quant")) continue;
            Row best = bestJava.get(r.op() + " " + r.shape());
            if (best == null) continue;
            double pct = r.gbs() / bw.readGBs(), speed = best.seconds() / r.seconds();
            double xl3 = bw.l3Bytes() > 0 ? (double) r.bytes() / bw.l3Bytes() : Double.NaN;
            boolean big = xl3 >= BIG_L3;
            boolean met = pct >= TARGET_BW && speed >= TARGET_SPEEDUP;
            out.add(String.format(Locale.ROOT, "  %-18s %-11s %4.1fxL3 %6.1f%% of read BW (%s), %5.2fx best Java (%s, %s;"
                            + " 3x it would be %.0f%% of read BW) -> %s",
                    r.op(), r.shape(), xl3, 100 * pct, pct >= TARGET_BW ? "ok" : "below",
                    speed, best.impl(), speed >= TARGET_SPEEDUP ? "ok" : "below", 300 * best.gbs() / bw.readGBs(),
                    big ? (met ? "MET" : "NOT MET") : "(fits in L3: informative)"));
        }
        writeCsv("bench-fp8.csv", rows, bestJava, bw);
        return out;
    }

    /** Seconds per op from a JMH score and its unit (time/op or ops/time). */
    static double seconds(double score, String unit) {
        String[] p = unit.split("/");
        if (p[0].equals("ops")) return 1 / (score * perSecond(p[1]));
        return score / perSecond(p[0]);
    }

    /** How many of the time unit make a second. */
    static double perSecond(String u) {
        return switch (u) {
            case "ns" -> 1e9;
            case "us" -> 1e6;
            case "ms" -> 1e3;
            case "s" -> 1;
            case "min" -> 1 / 60.0;
            default -> throw new IllegalArgumentException("unknown time unit " + u);
        };
    }

    static String time(double s) {
        if (s < 1e-6) return String.format(Locale.ROOT, "%.1f ns", s * 1e9);
        if (s < 1e-3) return String.format(Locale.ROOT, "%.2f us", s * 1e6);
        if (s < 1) return String.format(Locale.ROOT, "%.3f ms", s * 1e3);
        return String.format(Locale.ROOT, "%.3f s", s);
    }

    static void writeCsv(String name, List<Row> rows, Map<String, Row> bestJava, Bandwidth.Result bw) {
        StringBuilder sb = new StringBuilder("op,shape,impl,seconds_per_op,error_seconds,bytes_in_out,gb_per_s,read_bw_gb_per_s,pct_of_read_bw,speedup_vs_best_java,best_java_impl\n");
        for (Row r : rows) {
            Row best = bestJava.get(r.op() + " " + r.shape());
            sb.append(String.format(Locale.ROOT, "%s,%s,%s,%.6e,%.3e,%d,%.3f,%.3f,%.2f,%s,%s%n", r.op(), r.shape(), r.impl(),
                    r.seconds(), r.errorSeconds(), r.bytes(), r.gbs(), bw.readGBs(), 100 * r.gbs() / bw.readGBs(),
                    best == null ? "" : String.format(Locale.ROOT, "%.3f", best.seconds() / r.seconds()),
                    best == null ? "" : best.impl()));
        }
        write(name, sb.toString());
    }

    static void write(String name, String text) {
        Path dir = Files.isDirectory(Path.of("benchmarks", "target")) ? Path.of("benchmarks", "target")
                : Files.isDirectory(Path.of("target")) ? Path.of("target") : Path.of(".");
        try {
            Files.writeString(dir.resolve(name), text);
            System.out.println("# wrote " + dir.resolve(name));
        } catch (IOException e) {
            System.out.println("# could not write " + dir.resolve(name) + ": " + e.getMessage());
        }
    }

    // ------------------------------------------------------------------ rope

    /** The targets of the MLA issue (CPU): >= 60% of peak FMA at H=128, L=4096, and >= 5x the naive path at L=4096. */
    static final double TARGET_MLA_PEAK = 0.60, TARGET_MLA_NAIVE = 5.0;

    static List<String> mla(CommandLineOptions cli, Bandwidth.Result bw, PeakFlops.Result peak) throws RunnerException {
        Collection<RunResult> results = new Runner(new OptionsBuilder().parent(cli)
                .include(MlaBench.class.getName() + "\\.").build()).run();
        Map<String, double[]> decode = new LinkedHashMap<>(), naive = new LinkedHashMap<>();
        Map<String, String> fmts = new LinkedHashMap<>();
        for (RunResult rr : results) {
            var p = rr.getParams();
            String method = p.getBenchmark().substring(p.getBenchmark().lastIndexOf('.') + 1), c = p.getParam("c");
            Result<?> r = rr.getPrimaryResult();
            double sec = seconds(r.getScore(), r.getScoreUnit());
            double err = Double.isNaN(r.getScoreError()) ? Double.NaN
                    : Math.abs(sec - seconds(r.getScore() + r.getScoreError(), r.getScoreUnit()));
            if (method.equals("naive")) naive.put(c, new double[] {sec, err});
            else {
                decode.put(c, new double[] {sec, err});
                fmts.put(c, p.getParam("fmt"));
            }
        }
        List<String> out = new ArrayList<>();
        out.add("");
        out.add("mla.decode (absorbed MQA form, CPU, all cores), one query token per sequence, case = B/H/L, pages shuffled.");
        out.add("GFLOP/s = 2*B*H*L*(576+512) / time; %peak = of the peak FMA rate measured above"
                + (peak == null ? " (not measured)" : String.format(Locale.ROOT, " (%.1f GFLOP/s)", peak.gflops())) + ";");
        out.add(String.format(Locale.ROOT, "cache GB/s = B*L*token bytes / time, %%BW = of the read bandwidth (%.1f GB/s). Cache bytes per", bw.readGBs()));
        out.add("token: f32 2304, bf16 1152, fp8 656. naive = the decompression GEMM of the non-absorbed path alone");
        out.add("(gemm.bf16 [B*L,512]x[H*256,512]^T, best backend path), a lower bound of that path; x naive = naive / decode.");
        String hdr = String.format(Locale.ROOT, "%-12s %-5s %6s %12s %10s %9s %7s %9s %7s %12s %9s", "case", "fmt", "B/tok", "time/op", "+-",
                "GFLOP/s", "%peak", "GB/s", "%BW", "naive", "x naive");
        out.add(hdr);
        out.add("-".repeat(hdr.length()));
        for (var e : decode.entrySet()) {
            String c = e.getKey(), fmt = fmts.get(c);
            double sec = e.getValue()[0], gf = MlaBench.flops(c) / sec / 1e9, gbs = MlaBench.cacheBytes(c, fmt) / sec / 1e9;
            double[] nv = naive.get(c);
            out.add(String.format(Locale.ROOT, "%-12s %-5s %6d %12s %10s %9.1f %6.1f%% %9.2f %6.1f%% %12s %9s", c, fmt,
                    MlaBench.format(fmt).tokenBytes(), time(sec), Double.isNaN(e.getValue()[1]) ? "-" : time(e.getValue()[1]), gf,
                    peak == null ? Double.NaN : 100 * gf / peak.gflops(), gbs, 100 * gbs / bw.readGBs(),
                    nv == null ? "-" : time(nv[0]), nv == null ? "-" : String.format(Locale.ROOT, ">= %.1fx", nv[0] / sec)));
        }
        out.add("");
        out.add(String.format(Locale.ROOT, "targets (CPU): >= %.0f%% of peak FMA at H=128, L=4096; >= %.0fx the naive path at L=4096:",
                100 * TARGET_MLA_PEAK, TARGET_MLA_NAIVE));
        for (var e : decode.entrySet()) {
            String c = e.getKey();
            int[] p = MlaBench.parse(c);
            if (p[2] != 4096) continue;
            double sec = e.getValue()[0], gf = MlaBench.flops(c) / sec / 1e9;
            if (p[1] == 128 && peak != null)
                out.add(String.format(Locale.ROOT, "  %-12s %6.1f%% of peak FMA -> %s", c, 100 * gf / peak.gflops(),
                        gf / peak.gflops() >= TARGET_MLA_PEAK ? "MET" : "NOT MET"));
            double[] nv = naive.get(c);
            if (nv != null)
                out.add(String.format(Locale.ROOT, "  %-12s >= %.1fx the naive path -> %s", c, nv[0] / sec,
                        nv[0] / sec >= TARGET_MLA_NAIVE ? "MET" : "NOT MET (a lower bound)"));
        }
        return out;
    }

    static final List<String> ROPE_CASES = List.of("f32/16384", "bf16/32768", "f32/128");
    /** The target for rope.apply: >= 70% of read bandwidth on tensors >> L3. */
    static final double TARGET_ROPE_BW = 0.70;

    static List<String> rope(CommandLineOptions cli, Bandwidth.Result bw) throws RunnerException {
        Collection<RunResult> results = new Runner(new OptionsBuilder().parent(cli)
                .include(RopeBench.class.getName() + "\\.").build()).run();
        List<Row> rows = new ArrayList<>();
        for (RunResult rr : results) {
            var p = rr.getParams();
            String c = p.getParam("c");
            Result<?> r = rr.getPrimaryResult();
            double sec = seconds(r.getScore(), r.getScoreUnit());
            double err = Double.isNaN(r.getScoreError()) ? Double.NaN
                    : Math.abs(sec - seconds(r.getScore() + r.getScoreError(), r.getScoreUnit()));
            rows.add(new Row("rope.apply " + p.getParam("layout"), c, p.getParam("impl"), sec, err, RopeBench.bytesMoved(c)));
        }
        rows.sort(Comparator.comparing(Row::op).thenComparingInt((Row r) -> ROPE_CASES.indexOf(r.shape()))
                .thenComparingInt(r -> IMPLS.indexOf(r.impl())));
        Map<String, Row> bestJava = bestJava(rows);
        List<String> out = new ArrayList<>();
        out.add("");
        out.add("rope.apply in place on q_pe [T, 128, 64] (CPU), DeepSeek-V3 YaRN table, positions t mod 16384. time = JMH");
        out.add("average per call; GB/s = (q_pe read + q_pe written + positions + the tokens' table rows) / time; %BW = of");
        out.add(String.format(Locale.ROOT, "the read bandwidth measured above (%.1f GB/s, %d cores); L3 = %s. x best Java = time of the",
                bw.readGBs(), bw.threads(), bw.l3Bytes() > 0 ? (bw.l3Bytes() >> 20) + " MiB" : "unknown"));
        out.add("fastest java-*/vector-* run of the same case / this time. Case = dtype/T.");
        bandwidthTable(out, rows, bestJava, bw, 24, "case");
        out.add("");
        out.add(String.format(Locale.ROOT, "target (CPU backend, all cores): >= %.0f%% of read bandwidth on tensors >> L3:", 100 * TARGET_ROPE_BW));
        for (Row r : rows) {
            if (!r.impl().equals("dsk4j")) continue;
            double pct = r.gbs() / bw.readGBs();
            double xl3 = bw.l3Bytes() > 0 ? (double) r.bytes() / bw.l3Bytes() : Double.NaN;
            out.add(String.format(Locale.ROOT, "  %-24s %-11s %4.1fxL3 %6.1f%% of read BW -> %s", r.op(), r.shape(), xl3, 100 * pct,
                    xl3 >= BIG_L3 ? (pct >= TARGET_ROPE_BW ? "MET" : "NOT MET") : "(fits in L3: informative)"));
        }
        writeCsv("bench-rope.csv", rows, bestJava, bw);
        return out;
    }

    // ------------------------------------------------------------------ model

    static List<String> model(CommandLineOptions cli) throws RunnerException {
        try { // written here, once, so that the writer's memory is not in the forks' peak RSS
            for (String m : List.of("demo", "v3layer")) ModelBench.checkpoint(m);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        Collection<RunResult> results = new Runner(new OptionsBuilder().parent(cli)
                .include(ModelBench.class.getName() + "\\.").build()).run();
        List<String> out = new ArrayList<>();
        out.add("");
        out.add("Model API on the CPU backend (all cores), gemm fp8, bf16 latent cache. decode = one step of B sequences at");
        out.add("context " + ModelBench.CONTEXT + " (+ LM head); prefill = one " + ModelBench.PROMPT
                + "-token prompt (+ LM head of its last token). demo = the demo");
        out.add("checkpoint (3 layers, hidden 256); v3layer = one DeepSeek-V3 layer with real shapes, 32 resident experts (256");
        out.add("do not fit here), vocabulary 1024. Time per op family and peak RSS: see the [model ...] lines of the JMH log.");
        String hdr = String.format(Locale.ROOT, "%-9s %-8s %5s %14s %10s %12s", "model", "bench", "B", "time/op", "+-", "tokens/s");
        out.add(hdr);
        out.add("-".repeat(hdr.length()));
        for (RunResult rr : results) {
            String bench = rr.getParams().getBenchmark().substring(rr.getParams().getBenchmark().lastIndexOf('.') + 1);
            String model = rr.getParams().getParam("model");
            String b = bench.equals("prefill") ? "1" : rr.getParams().getParam("batch");
            Result<?> r = rr.getPrimaryResult();
            double sec = seconds(r.getScore(), r.getScoreUnit());
            double err = Double.isNaN(r.getScoreError()) ? Double.NaN
                    : Math.abs(sec - seconds(r.getScore() + r.getScoreError(), r.getScoreUnit()));
            double tokens = bench.equals("prefill") ? ModelBench.PROMPT : Integer.parseInt(b);
            out.add(String.format(Locale.ROOT, "%-9s %-8s %5s %14s %10s %12.1f", model, bench, b, time(sec),
                    Double.isNaN(err) ? "-" : time(err), tokens / sec));
        }
        return out;
    }

    // ------------------------------------------------------------------ moe

    static List<String> moe(CommandLineOptions cli, Bandwidth.Result bw, PeakFlops.Result peak) throws RunnerException {
        Collection<RunResult> results = new Runner(new OptionsBuilder().parent(cli)
                .include(MoeBench.class.getName() + "\\.").build()).run();
        List<String> out = new ArrayList<>();
        out.add("");
        out.add("DeepSeek-V3 MoE layer on the CPU backend (all cores): hidden 7168, moe_inter 2048, top-8, 8 groups keep 4,");
        out.add("1 shared expert, FP8 weights (e4m3 + 128x128 scales), x bf16, y f32. layer/T = moe.forward with " + MoeBench.RESIDENT
                + " RESIDENT experts");
        out.add("(router restricted to them: 11 GB for 256 does not fit here), router/T = moe.gate alone, V3's 256-expert router.");
        out.add("weight GB/s = bytes of the experts the routing touched (+ shared, + router) / time; %BW of the read bandwidth");
        out.add(String.format(Locale.ROOT, "(%.1f GB/s); GFLOP/s = 2*MACs/time; %%peak of the measured FMA peak (%s).", bw.readGBs(),
                peak == null ? "n/a" : String.format(Locale.ROOT, "%.0f GFLOP/s", peak.gflops())));
        String hdr = String.format(Locale.ROOT, "%-12s %14s %10s %10s %8s %10s %8s", "case", "time/op", "+-", "wt GB/s", "%BW", "GFLOP/s",
                "%peak");
        out.add(hdr);
        out.add("-".repeat(hdr.length()));
        for (RunResult rr : results) {
            String c = rr.getParams().getParam("c");
            Result<?> r = rr.getPrimaryResult();
            double sec = seconds(r.getScore(), r.getScoreUnit());
            double err = Double.isNaN(r.getScoreError()) ? Double.NaN
                    : Math.abs(sec - seconds(r.getScore() + r.getScoreError(), r.getScoreUnit()));
            long bytes = touchedBytes(c);
            double gbs = bytes / sec / 1e9, gf = MoeBench.flops(c) / sec / 1e9;
            out.add(String.format(Locale.ROOT, "%-12s %14s %10s %10.2f %7.1f%% %10.1f %7.1f%%", c, time(sec),
                    Double.isNaN(err) ? "-" : time(err), gbs, 100 * gbs / bw.readGBs(), gf,
                    peak == null ? Double.NaN : 100 * gf / peak.gflops()));
        }
        out.add("targets (issue 5): layer/1 >= 80% of read bandwidth over the touched weights; layer/128 >= 70% of peak FMA.");
        return out;
    }

    /** The touched weight bytes of a MoeBench case, as its setup computes them (the routing is deterministic). */
    static long touchedBytes(String c) {
        MoeBench.Layer s = new MoeBench.Layer();
        s.c = c;
        try {
            s.setup();
            return s.touchedBytes;
        } finally {
            s.close();
        }
    }

    /** The best pure-Java peer (java-* or vector-*) of each "op shape" of rows. */
    static Map<String, Row> bestJava(List<Row> rows) {
        Map<String, Row> best = new LinkedHashMap<>();
        for (Row r : rows)
            if (r.impl().startsWith("java") || r.impl().startsWith("vector"))
                best.merge(r.op() + " " + r.shape(), r, (a, b) -> a.seconds() <= b.seconds() ? a : b);
        return best;
    }

    /** The GB/s table of rows (fp8 and rope): one block per op and shape, ratios to the read bandwidth and best Java. */
    static void bandwidthTable(List<String> out, List<Row> rows, Map<String, Row> bestJava, Bandwidth.Result bw, int opWidth,
                               String shapeTitle) {
        String cols = "%-" + opWidth + "s %-11s %-10s ";
        String hdr = String.format(Locale.ROOT, cols + "%8s %14s %10s %9s %7s %13s", "op", shapeTitle, "impl", "MB",
                "time/op", "+-", "GB/s", "%BW", "x best Java");
        out.add(hdr);
        out.add("-".repeat(hdr.length()));
        String last = null;
        for (Row r : rows) {
            String key = r.op() + " " + r.shape();
            if (last != null && !last.equals(key)) out.add("");
            last = key;
            Row best = bestJava.get(key);
            String ratio = best == null ? "-" : String.format(Locale.ROOT, "%.2fx", best.seconds() / r.seconds());
            out.add(String.format(Locale.ROOT, cols + "%8.1f %14s %10s %9.2f %6.1f%% %13s", r.op(), r.shape(), r.impl(),
                    r.bytes() / 1e6, time(r.seconds()), Double.isNaN(r.errorSeconds()) ? "-" : time(r.errorSeconds()),
                    r.gbs(), 100 * r.gbs() / bw.readGBs(), ratio));
        }
    }

    // ------------------------------------------------------------------ gemm

    static final List<String> GEMM_IMPLS = List.of("dsk4j", "dsk4j-avx512", "dsk4j-masked", "dsk4j-masked-avx512", "dsk4j-contig",
            "dsk4j-contig-avx512", "dsk4j-bf16", "dsk4j-bf16-avx512", "dsk4j-f32", "dsk4j-f32-bf16", "openblas-sgemm",
            "openblas-sgemv", "vector", "reference");
    /** The targets for the CPU backend (all cores). */
    static final double TARGET_PEAK_LARGE = 0.75, TARGET_SGEMM_LARGE = 1.0, TARGET_PEAK_16 = 0.70, TARGET_BW_SMALL = 0.80,
            TARGET_BLAS_SMALL = 3.5;

    /** One gemm result. */
    record GemmRow(GemmBench.Case c, double seconds, double errorSeconds) {
        double gflops() { return c.flops() / seconds / 1e9; }

        double gbs() { return c.weightBytes() / seconds / 1e9; }

        /** Case and M: the rows compared with each other. */
        String key() { return c.label() + " " + c.m(); }
    }

    /**
     * The cases of parameter {@code name} (c: dense, g: grouped): JMH's -p value if given; none if
     * only the other parameter is given; else the benchmark's default list. openblas cases are
     * dropped when OpenBLAS is missing, the AVX-512-only dsk4j cases ({@link GemmBench#AVX512}) of the
     * default list when the best CPU path has no AMX (they would rerun the same code).
     */
    static List<String> gemmCases(CommandLineOptions cli, String name, Class<?> state, boolean blas, boolean amx) {
        List<String> cases = new ArrayList<>();
        var given = cli.getParameter(name);
        if (given.hasValue()) cases.addAll(given.get());
        else if (cli.getParameter("c").hasValue() || cli.getParameter("g").hasValue()) return cases; // only the other kind asked for
        else {
            try {
                cases.addAll(Arrays.asList(state.getField(name).getAnnotation(org.openjdk.jmh.annotations.Param.class).value()));
            } catch (NoSuchFieldException e) {
                throw new IllegalStateException(e);
            }
            if (!amx) cases.removeIf(c -> c.endsWith(GemmBench.AVX512));
        }
        if (!blas) cases.removeIf(c -> c.contains("openblas"));
        return cases;
    }

    /** True when a default cpu context uses AMX tiles for the GEMMs. */
    static boolean cpuHasAmx() {
        try (Context c = Context.open(Device.cpu())) {
            return c.describe().contains("amx");
        }
    }

    static List<String> gemm(CommandLineOptions cli, Bandwidth.Result bw0, PeakFlops.Result peak0, Optional<AmxPeak.Result> amx0)
            throws RunnerException {
        boolean blas = OpenBlas.get().isPresent();
        boolean amxPath = cpuHasAmx();
        List<String> out = new ArrayList<>();
        if (!blas) {
            System.out.println(OpenBlas.NOT_INSTALLED + ": the openblas rows are skipped");
            System.out.flush();
        }
        if (!amxPath) {
            System.out.println("the best CPU path has no AMX tiles here: the AVX-512-only rows (*" + GemmBench.AVX512
                    + ") are skipped (the dsk4j rows are that path)");
            System.out.flush();
        }
        List<String> dense = gemmCases(cli, "c", GemmBench.Dense.class, blas, amxPath);
        List<String> grouped = gemmCases(cli, "g", GemmBench.Grouped.class, blas, amxPath);
        List<String> order = new ArrayList<>(); // case labels in the order of the lists
        for (String c : dense) if (!order.contains(GemmBench.dense(c).label())) order.add(GemmBench.dense(c).label());
        for (String c : grouped) if (!order.contains(GemmBench.grouped(c).label())) order.add(GemmBench.grouped(c).label());

        OptionsBuilder ob = new OptionsBuilder();
        ob.parent(cli);
        if (!dense.isEmpty()) ob.include(GemmBench.class.getName() + "\\.dense$").param("c", dense.toArray(String[]::new));
        if (!grouped.isEmpty()) ob.include(GemmBench.class.getName() + "\\.grouped$").param("g", grouped.toArray(String[]::new));
        List<GemmRow> rows = new ArrayList<>();
        if (!dense.isEmpty() || !grouped.isEmpty()) {
            for (RunResult rr : new Runner(ob.build()).run()) {
                var p = rr.getParams();
                String method = p.getBenchmark().substring(p.getBenchmark().lastIndexOf('.') + 1);
                GemmBench.Case c = method.equals("dense") ? GemmBench.dense(p.getParam("c")) : GemmBench.grouped(p.getParam("g"));
                Result<?> r = rr.getPrimaryResult();
                double sec = seconds(r.getScore(), r.getScoreUnit());
                double err = Double.isNaN(r.getScoreError()) ? Double.NaN
                        : Math.abs(sec - seconds(r.getScore() + r.getScoreError(), r.getScoreUnit()));
                rows.add(new GemmRow(c, sec, err));
            }
        }
        // The ceilings again after the run (a busy neighbour during the first measurement would make
        // every percentage too high): the higher of the two is used.
        System.out.println("# measuring the ceilings again after the gemm run ...");
        PeakFlops.Result peak1 = PeakFlops.measure(5);
        Optional<AmxPeak.Result> amx1 = amx0.isPresent() ? AmxPeak.measure(5) : amx0;
        Bandwidth.Result bw1 = Bandwidth.measure(5);
        System.out.println("# " + peak1.describe());
        System.out.println("# " + AmxPeak.describe(amx1));
        System.out.println("# bandwidth: " + bw1.describe());
        PeakFlops.Result peak = peak1.gflops() > peak0.gflops() ? peak1 : peak0;
        Optional<AmxPeak.Result> amx = amx1.isEmpty() ? amx0
                : amx0.isEmpty() || amx1.get().gflops() > amx0.get().gflops() ? amx1 : amx0;
        double ap = amx.map(AmxPeak.Result::gflops).orElse(Double.NaN);
        Bandwidth.Result bw = bw1.readGBs() > bw0.readGBs() ? bw1 : bw0;
        rows.sort(Comparator.comparingInt((GemmRow r) -> order.indexOf(r.c().label()))
                .thenComparingInt(r -> r.c().t())
                .thenComparingInt(r -> GEMM_IMPLS.indexOf(r.c().impl())));

        Map<String, GemmRow> bestBlas = new LinkedHashMap<>(), sgemm = new LinkedHashMap<>(), avx512 = new LinkedHashMap<>();
        for (GemmRow r : rows) {
            if (r.c().impl().startsWith("openblas"))
                bestBlas.merge(r.key(), r, (a, b) -> a.seconds() <= b.seconds() ? a : b);
            if (r.c().impl().equals("openblas-sgemm")) sgemm.put(r.key(), r);
            if (r.c().impl().endsWith(GemmBench.AVX512)) avx512.put(r.key() + " " + r.c().baseImpl(), r);
        }

        double pk = peak.gflops(), rb = bw.readGBs();
        out.add("");
        out.add(String.format(Locale.ROOT, "ceilings for the gemm table, the higher of before and after the run: peak FMA %.1f GFLOP/s"
                + " (before %.1f, after %.1f), read bandwidth %.1f GB/s (before %.1f, after %.1f)", peak.gflops(), peak0.gflops(),
                peak1.gflops(), bw.readGBs(), bw0.readGBs(), bw1.readGBs()));
        out.add(amx.isPresent()
                ? String.format(Locale.ROOT, "AMX-BF16 tile peak %.1f GFLOP/s (before %.1f, after %.1f; one thread %.1f): %%amx = of it",
                        ap, amx0.map(AmxPeak.Result::gflops).orElse(Double.NaN), amx1.map(AmxPeak.Result::gflops).orElse(Double.NaN),
                        amx.get().gflopsOneThread())
                : "AMX-BF16 tile peak n/a (" + AmxPeak.whyMissing() + "): the %amx column reads -");
        out.add("GEMM on the CPU backend, d = a * b^T (\"NT\"), f32 output: a [M,K] activations, b [N,K] weights; grouped rows:");
        out.add("8 routed experts x T tokens (M = 8xT), w13 = [8,4096,7168], w2 = [8,7168,2048].");
        out.add(String.format(Locale.ROOT, "GFLOP/s = 2*M*N*K / time; %%peak = of the peak FMA rate measured above (%.1f GFLOP/s f32: Java Vector API,", pk));
        out.add(String.format(Locale.ROOT, "%d-bit FMA loop, %d independent chains, all %d cores). For M <= 4: GB/s = weight bytes / time in each impl's own",
                peak.lanes() * 32, PeakFlops.CHAINS, peak.threads()));
        out.add(String.format(Locale.ROOT, "format (e4m3 1 B: dsk4j, vector; bf16 2 B; f32 4 B: openblas; scales not counted), %%BW = of the read bandwidth"));
        out.add(String.format(Locale.ROOT, "measured above (%.1f GB/s). wMB = weight MB per call; copies = weight copies cycled through (>= max(512 MiB,", rb));
        out.add("2 x L3) in all for M <= 16, so the weights come from DRAM); x ob-best = time of the faster OpenBLAS run (sgemm or");
        out.add("sgemv) of the same case / this time. dsk4j-bf16 and openblas multiply bf16 / f32 copies of the same e4m3 product.");
        out.add("dsk4j* rows: the best CPU path (" + (amxPath ? "AMX-BF16 tiles + AVX-512 here" : "no AMX here") + "); dsk4j*"
                + GemmBench.AVX512 + ": the same op capped");
        out.add("at AVX-512 (Context.CpuPath.AVX512); x avx512 = time of the AVX-512-only row of the same case and op / this time.");
        out.add(GemmBench.SCALED_DOWN + ".");
        out.add(openBlasLine());
        String warn = openBlasWarning();
        if (warn != null) out.add(warn);
        String hdr = String.format(Locale.ROOT, "%-20s %-6s %-19s %12s %10s %8s %6s %6s %8s %6s %7s %6s %9s %8s", "case (NxK)", "M",
                "impl", "time/op", "+-", "GFLOP/s", "%peak", "%amx", "wMB", "copies", "GB/s", "%BW", "x ob-best", "x avx512");
        out.add(hdr);
        out.add("-".repeat(hdr.length()));
        String last = null;
        for (GemmRow r : rows) {
            if (last != null && !last.equals(r.c().label())) out.add("");
            last = r.c().label();
            boolean small = r.c().t() <= 4;
            GemmRow best = bestBlas.get(r.key());
            GemmRow capped = r.c().impl().endsWith(GemmBench.AVX512) ? null : avx512.get(r.key() + " " + r.c().impl());
            out.add(String.format(Locale.ROOT, "%-20s %-6s %-19s %12s %10s %8.1f %5.1f%% %6s %8.1f %6d %7s %6s %9s %8s", r.c().label(),
                    r.c().m(), r.c().impl(), time(r.seconds()), Double.isNaN(r.errorSeconds()) ? "-" : time(r.errorSeconds()), r.gflops(),
                    100 * r.gflops() / pk, Double.isNaN(ap) ? "-" : String.format(Locale.ROOT, "%.1f%%", 100 * r.gflops() / ap),
                    r.c().weightBytes() / 1e6, r.c().copies(),
                    small ? String.format(Locale.ROOT, "%.2f", r.gbs()) : "-",
                    small ? String.format(Locale.ROOT, "%.1f%%", 100 * r.gbs() / rb) : "-",
                    best == null ? "-" : String.format(Locale.ROOT, "%.2fx", best.seconds() / r.seconds()),
                    capped == null ? "-" : String.format(Locale.ROOT, "%.2fx", capped.seconds() / r.seconds())));
        }

        out.add("");
        out.add(String.format(Locale.ROOT, "targets (dsk4j e4m3, all cores): M >= 128: >= %.0f%% of peak FMA and >= %.1fx openblas-sgemm;"
                        + " M = 16: >= %.0f%% of peak FMA; M <= 4: >= %.0f%% of read BW in e4m3 weight bytes and >= %.1fx the faster OpenBLAS",
                100 * TARGET_PEAK_LARGE, TARGET_SGEMM_LARGE, 100 * TARGET_PEAK_16, 100 * TARGET_BW_SMALL, TARGET_BLAS_SMALL));
        if (amxPath)
            out.add("  (the dsk4j rows run on AMX tiles here, whose ceiling is the AMX-BF16 peak, not the f32 FMA peak: see %amx)");
        int hit = 0, total = 0;
        for (GemmRow r : rows) {
            String impl = r.c().impl();
            if (!impl.startsWith("dsk4j") || impl.startsWith("dsk4j-bf16") || impl.startsWith("dsk4j-f32")
                    || impl.endsWith(GemmBench.AVX512)) continue;
            int t = r.c().t();
            double pct = r.gflops() / pk;
            List<String> parts = new ArrayList<>();
            boolean met = true, complete = true;
            if (t <= 4) {
                double b = r.gbs() / rb;
                parts.add(String.format(Locale.ROOT, "%5.1f%% of read BW (%s)", 100 * b, b >= TARGET_BW_SMALL ? "ok" : "below"));
                met &= b >= TARGET_BW_SMALL;
                GemmRow best = bestBlas.get(r.key());
                if (best == null) {
                    parts.add("x openblas: n/a");
                    complete = false;
                } else {
                    double x = best.seconds() / r.seconds();
                    parts.add(String.format(Locale.ROOT, "%6.2fx %s (%s)", x, best.c().impl(), x >= TARGET_BLAS_SMALL ? "ok" : "below"));
                    met &= x >= TARGET_BLAS_SMALL;
                }
            } else {
                double goal = t >= 128 ? TARGET_PEAK_LARGE : TARGET_PEAK_16;
                parts.add(String.format(Locale.ROOT, "%5.1f%% of peak FMA (%s)", 100 * pct, pct >= goal ? "ok" : "below"));
                met &= pct >= goal;
                if (t >= 128) {
                    GemmRow sg = sgemm.get(r.key());
                    if (sg == null) {
                        parts.add("x openblas-sgemm: n/a");
                        complete = false;
                    } else {
                        double x = sg.seconds() / r.seconds();
                        parts.add(String.format(Locale.ROOT, "%6.2fx openblas-sgemm (%s)", x, x >= TARGET_SGEMM_LARGE ? "ok" : "below"));
                        met &= x >= TARGET_SGEMM_LARGE;
                    }
                }
            }
            String verdict = met ? (complete ? "hit" : "hit on what was measured (no openblas)") : "miss";
            total++;
            if (met && complete) hit++;
            out.add(String.format(Locale.ROOT, "  %-20s M=%-6s %-13s %s -> %s", r.c().label(), r.c().m(), impl, String.join(", ", parts), verdict));
        }
        out.add(String.format(Locale.ROOT, "  targets hit: %d of %d", hit, total));
        out.addAll(gemmF32Summary(rows, bestBlas, sgemm, pk, rb));
        writeGemmCsv(rows, bestBlas, bw, peak, ap);
        return out;
    }

    /**
     * gemm.f32 (dsk4j-f32: f32 weights, dsk4j-f32-bf16: bf16 weights) against this run's ceilings: M <= 8 (decode, a GEMV
     * streaming the weights) as a share of the read bandwidth in the impl's own weight bytes, M >= 64 (prefill) as a share
     * of the peak f32 FMA rate; each against OpenBLAS on the same f32 product (the faster of sgemm / sgemv, resp. sgemm).
     */
    static List<String> gemmF32Summary(List<GemmRow> rows, Map<String, GemmRow> bestBlas, Map<String, GemmRow> sgemm, double pk,
                                       double rb) {
        List<String> out = new ArrayList<>();
        for (GemmRow r : rows) {
            String impl = r.c().impl();
            if (!impl.startsWith("dsk4j-f32")) continue;
            if (out.isEmpty()) {
                out.add("");
                out.add("gemm.f32 (f32 activations; weights f32 = dsk4j-f32, bf16 = dsk4j-f32-bf16; exact f32 products, never AMX):");
                out.add("  M <= 8 against the read bandwidth (weight bytes in the impl's format / time), M >= 64 against the peak f32 FMA;");
                out.add("  x openblas = OpenBLAS time on the f32 product / this time (faster of sgemm/sgemv for M <= 8, sgemm else)");
            }
            int t = r.c().t();
            GemmRow peer = t <= 8 ? bestBlas.get(r.key()) : sgemm.get(r.key());
            String vs = peer == null ? "x openblas: n/a"
                    : String.format(Locale.ROOT, "%6.2fx %s", peer.seconds() / r.seconds(), peer.c().impl());
            String ratio = t <= 8
                    ? String.format(Locale.ROOT, "%7.2f GB/s = %5.1f%% of read BW", r.gbs(), 100 * r.gbs() / rb)
                    : String.format(Locale.ROOT, "%7.1f GFLOP/s = %5.1f%% of peak FMA", r.gflops(), 100 * r.gflops() / pk);
            out.add(String.format(Locale.ROOT, "  %-20s M=%-4d %-15s %s, %s", r.c().label(), t, impl, ratio, vs));
        }
        return out;
    }

    /** A warning when OpenBLAS fell back to old generic kernels on a CPU with AVX2 / AVX-512 (an unknown CPU model), else null. */
    static String openBlasWarning() {
        var o = OpenBlas.get();
        if (o.isEmpty()) return null;
        String core = o.get().corename().toLowerCase(Locale.ROOT);
        boolean old = Set.of("prescott", "core2", "penryn", "dunnington", "nehalem", "katmai", "coppermine", "northwood",
                "banias", "atom", "unknown").contains(core);
        if (!old || FloatVector.SPECIES_PREFERRED.vectorBitSize() < 256) return null;
        return "WARNING: OpenBLAS runs its \"" + o.get().corename() + "\" kernels on this " + FloatVector.SPECIES_PREFERRED.vectorBitSize()
                + "-bit-SIMD CPU (" + cpuModel() + "): this OpenBLAS does not recognize the CPU and fell back to"
                + " SSE kernels, so the openblas rows are far from what OpenBLAS can do here. OPENBLAS_CORETYPE is "
                + OpenBlas.environment().get("OPENBLAS_CORETYPE") + " and was not changed; to compare against its AVX-512"
                + " kernels run e.g. OPENBLAS_CORETYPE=SkylakeX ./dsk4j bench gemm.";
    }

    /** "model name (family F, model M)" from /proc/cpuinfo, or "unknown". */
    static String cpuModel() {
        try {
            String name = null, fam = null, model = null;
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                String v = line.contains(":") ? line.substring(line.indexOf(':') + 1).trim() : "";
                if (name == null && line.startsWith("model name")) name = v;
                else if (fam == null && line.startsWith("cpu family")) fam = v;
                else if (model == null && line.matches("model\\s*:.*")) model = v;
            }
            return (name == null ? "unknown" : name) + ", family " + fam + " model " + model;
        } catch (IOException | RuntimeException e) {
            return "unknown";
        }
    }

    static void writeGemmCsv(List<GemmRow> rows, Map<String, GemmRow> bestBlas, Bandwidth.Result bw, PeakFlops.Result peak,
                             double amxPeak) {
        StringBuilder sb = new StringBuilder("kind,case,m,impl,seconds_per_op,error_seconds,flops,gflops,peak_gflops,pct_of_peak,"
                + "amx_peak_gflops,pct_of_amx_peak,"
                + "weight_bytes,weight_copies,weight_gb_per_s,read_bw_gb_per_s,pct_of_read_bw,speedup_vs_openblas_best,openblas_best_impl\n");
        for (GemmRow r : rows) {
            GemmRow best = bestBlas.get(r.key());
            sb.append(String.format(Locale.ROOT, "%s,%s,%s,%s,%.6e,%.3e,%d,%.3f,%.3f,%.2f,%s,%s,%d,%d,%.3f,%.3f,%.2f,%s,%s%n", r.c().kind(),
                    r.c().label(), r.c().m(), r.c().impl(), r.seconds(), r.errorSeconds(), r.c().flops(), r.gflops(), peak.gflops(),
                    100 * r.gflops() / peak.gflops(),
                    Double.isNaN(amxPeak) ? "" : String.format(Locale.ROOT, "%.3f", amxPeak),
                    Double.isNaN(amxPeak) ? "" : String.format(Locale.ROOT, "%.2f", 100 * r.gflops() / amxPeak),
                    r.c().weightBytes(), r.c().copies(), r.gbs(), bw.readGBs(),
                    100 * r.gbs() / bw.readGBs(),
                    best == null ? "" : String.format(Locale.ROOT, "%.3f", best.seconds() / r.seconds()),
                    best == null ? "" : best.c().impl()));
        }
        write("bench-gemm.csv", sb.toString());
    }

    // ------------------------------------------------------------------ overhead

    static final Map<String, String> OVERHEAD = new LinkedHashMap<>();

    static {
        OVERHEAD.put("downcallVersionCritical", "dsk4j_version, critical handle (no thread-state transition): FFM floor");
        OVERHEAD.put("downcallVersion", "dsk4j_version(3 preallocated int*), raw jextract binding");
        OVERHEAD.put("downcallLastError", "dsk4j_last_error(), raw binding, no arguments");
        OVERHEAD.put("rawActQuant1t", "dsk4j_fp8_act_quant [1,128], raw binding, 1-thread context");
        OVERHEAD.put("rawActQuant", "dsk4j_fp8_act_quant [1,128], raw binding, all-cores context");
        OVERHEAD.put("apiActQuant", "Fp8.actQuant [1,128], full Java API (checks, acquire/release)");
        OVERHEAD.put("javaActQuant", "JavaFp8.actQuant [1,128], plain Java, no native call");
        OVERHEAD.put("vectorActQuant", "VectorFp8.actQuant [1,128], Vector API, no native call");
    }

    static List<String> overhead(CommandLineOptions cli) throws RunnerException {
        Collection<RunResult> results = new Runner(new OptionsBuilder().parent(cli)
                .include(OverheadBench.class.getName() + "\\.").build()).run();
        Map<String, double[]> ns = new LinkedHashMap<>();
        for (RunResult rr : results) {
            String b = rr.getParams().getBenchmark();
            Result<?> r = rr.getPrimaryResult();
            double s = seconds(r.getScore(), r.getScoreUnit());
            double e = Double.isNaN(r.getScoreError()) ? Double.NaN
                    : Math.abs(s - seconds(r.getScore() + r.getScoreError(), r.getScoreUnit()));
            ns.put(b.substring(b.lastIndexOf('.') + 1), new double[] {s * 1e9, e * 1e9});
        }
        List<String> out = new ArrayList<>();
        out.add("");
        out.add("Java -> native call overhead (JMH average time per call, ns; one thread calling):");
        String hdr = String.format(Locale.ROOT, "%-24s %10s %8s  %s", "benchmark", "ns/op", "+-", "what");
        out.add(hdr);
        out.add("-".repeat(hdr.length() + 50));
        StringBuilder csv = new StringBuilder("benchmark,ns_per_op,error_ns,what\n");
        for (var e : OVERHEAD.entrySet()) {
            double[] v = ns.get(e.getKey());
            if (v == null) continue;
            out.add(String.format(Locale.ROOT, "%-24s %10.1f %8s  %s", e.getKey(), v[0],
                    Double.isNaN(v[1]) ? "-" : String.format(Locale.ROOT, "%.1f", v[1]), e.getValue()));
            csv.append(String.format(Locale.ROOT, "%s,%.2f,%.2f,\"%s\"%n", e.getKey(), v[0], v[1], e.getValue()));
        }
        double[] api = ns.get("apiActQuant"), raw = ns.get("rawActQuant"), raw1 = ns.get("rawActQuant1t"),
                dc = ns.get("downcallVersion"), crit = ns.get("downcallVersionCritical"), jv = ns.get("javaActQuant");
        out.add("");
        if (dc != null && crit != null)
            out.add(String.format(Locale.ROOT, "  native transition (downcallVersion - critical):      %8.1f ns", dc[0] - crit[0]));
        if (api != null && raw != null)
            out.add(String.format(Locale.ROOT, "  Java API checks + context bookkeeping (api - raw):   %8.1f ns per op call", api[0] - raw[0]));
        if (raw != null && dc != null)
            out.add(String.format(Locale.ROOT, "  native validation + [1,128] kernel (raw - downcall): %8.1f ns", raw[0] - dc[0]));
        if (raw != null && raw1 != null)
            out.add(String.format(Locale.ROOT, "  all-cores vs 1-thread context on [1,128]:            %8.1f ns", raw[0] - raw1[0]));
        double[] vv = ns.get("vectorActQuant");
        if (api != null && jv != null)
            out.add(String.format(Locale.ROOT, "  full API call vs plain Java on [1,128]:              %8.2fx the time", api[0] / jv[0]));
        if (api != null && vv != null)
            out.add(String.format(Locale.ROOT, "  full API call vs Vector API Java on [1,128]:         %8.2fx the time", api[0] / vv[0]));
        write("bench-overhead.csv", csv.toString());
        return out;
    }
}
