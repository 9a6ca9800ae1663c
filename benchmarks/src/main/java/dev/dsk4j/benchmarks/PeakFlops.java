package dev.dsk4j.benchmarks;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * This machine's f32 FMA ceiling, measured in the same run as the GEMM benchmarks (DESIGN.md 7).
 *
 * <p>How: every core runs a thread with a tight loop of {@value #CHAINS} independent FMA chains
 * ({@code acc_i = acc_i * 0.9999 + 1e-4}, values stay near 1: no denormals, no overflow) on
 * {@link FloatVector#SPECIES_PREFERRED} (16 lanes with AVX-512), {@value #CHAINS} accumulators held in
 * vector registers, so the loop is bound by FMA throughput, not latency (4 cycles x 2 FMA ports
 * needs 8 chains in flight). Time is taken from a barrier that starts all threads to the last
 * thread's end, best of N passes; GFLOP/s = threads x iterations x chains x lanes x 2 / time. It
 * runs heavy 512-bit FMAs on all cores at once, so the clock it sees is the one a GEMM sees.
 * This is a Java measurement: if C2 emitted extra instructions in the loop it would read low;
 * {@link Result#nominalGflops()} (cpu MHz of /proc/cpuinfo x cores x lanes x 2 x 2 FMA ports, an
 * assumption about the core) is printed beside it for comparison, and the GEMM tables also show
 * OpenBLAS's own large-M sgemm rate.
 */
public final class PeakFlops {
    private PeakFlops() {}

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int CHAINS = 16;
    /** Inner iterations per pass and thread (each: CHAINS FMAs). */
    static final long ITERS = 20_000_000L;

    static volatile float sink;

    /** What was measured. */
    public record Result(int threads, int lanes, double gflops, double gflopsOneThread, double mhz) {
        /** Nominal FMA peak from the cpu MHz /proc/cpuinfo reports, assuming 2 FMA units of the vector width. */
        public double nominalGflops() { return mhz <= 0 ? Double.NaN : threads * mhz * 1e6 * lanes * 2 * 2 / 1e9; }

        public String describe() {
            return String.format(Locale.ROOT,
                    "peak FMA %.1f GFLOP/s f32 (%d threads; one thread %.1f GFLOP/s): Java Vector API, %d-bit FloatVector "
                            + "(%d lanes), %d independent fma chains per thread, best of passes%s",
                    gflops, threads, gflopsOneThread, lanes * 32, lanes, CHAINS,
                    Double.isNaN(nominalGflops()) ? "" : String.format(Locale.ROOT,
                            "; nominal %.0f MHz x %d cores x %d lanes x 2 flops x 2 FMA units = %.1f GFLOP/s (assumed, not measured)",
                            mhz, threads, lanes, nominalGflops()));
        }
    }

    /** Best of {@code reps} passes on all cores and on one. */
    public static Result measure(int reps) {
        int threads = Runtime.getRuntime().availableProcessors();
        // warm up: compile the loop (C2) before timing
        for (int i = 0; i < 50; i++) sink += chains(200_000);
        double all = 0, one = 0;
        for (int r = 0; r < reps; r++) {
            all = Math.max(all, flops(threads) / pass(threads));
            one = Math.max(one, flops(1) / pass(1));
        }
        return new Result(threads, F.length(), all / 1e9, one / 1e9, cpuMhz());
    }

    static double flops(int threads) { return (double) threads * ITERS * CHAINS * F.length() * 2; }

    static double pass(int threads) {
        return Bandwidth.parallel(threads, (lo, hi) -> sink += chains(ITERS), threads * 4096L);
    }

    /** {@value #CHAINS} independent FMA chains, {@code iters} steps each; returns a lane of their sum (kept live). */
    static float chains(long iters) {
        FloatVector m = FloatVector.broadcast(F, 0.9999f), c = FloatVector.broadcast(F, 1e-4f);
        FloatVector a0 = FloatVector.broadcast(F, 1f), a1 = a0.add(0.01f), a2 = a0.add(0.02f), a3 = a0.add(0.03f),
                a4 = a0.add(0.04f), a5 = a0.add(0.05f), a6 = a0.add(0.06f), a7 = a0.add(0.07f),
                a8 = a0.add(0.08f), a9 = a0.add(0.09f), a10 = a0.add(0.10f), a11 = a0.add(0.11f),
                a12 = a0.add(0.12f), a13 = a0.add(0.13f), a14 = a0.add(0.14f), a15 = a0.add(0.15f);
        for (long i = 0; i < iters; i++) {
            a0 = a0.fma(m, c); a1 = a1.fma(m, c); a2 = a2.fma(m, c); a3 = a3.fma(m, c);
            a4 = a4.fma(m, c); a5 = a5.fma(m, c); a6 = a6.fma(m, c); a7 = a7.fma(m, c);
            a8 = a8.fma(m, c); a9 = a9.fma(m, c); a10 = a10.fma(m, c); a11 = a11.fma(m, c);
            a12 = a12.fma(m, c); a13 = a13.fma(m, c); a14 = a14.fma(m, c); a15 = a15.fma(m, c);
        }
        FloatVector s = a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7)
                .add(a8).add(a9).add(a10).add(a11).add(a12).add(a13).add(a14).add(a15);
        return s.reduceLanes(VectorOperators.ADD);
    }

    /** "cpu MHz" of the first processor in /proc/cpuinfo, or 0. */
    static double cpuMhz() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo")))
                if (line.startsWith("cpu MHz")) return Double.parseDouble(line.substring(line.indexOf(':') + 1).trim());
        } catch (Exception e) {
            // unknown
        }
        return 0;
    }

    public static void main(String[] args) {
        System.out.println(measure(args.length > 0 ? Integer.parseInt(args[0]) : 5).describe());
    }
}
