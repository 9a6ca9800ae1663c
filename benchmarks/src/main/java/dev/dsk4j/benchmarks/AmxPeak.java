package dev.dsk4j.benchmarks;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;

/**
 * This machine's AMX-BF16 tile ceiling, measured in the same run as the GEMM benchmarks beside the
 * f32 FMA ceiling of {@link PeakFlops} (DESIGN.md 7): the CPU GEMMs run on AMX tiles where present,
 * so their rate is also shown as a share of this one.
 *
 * <p>How: {@code dsk4jbench_amx_bf16_peak(threads, &gflops)} of {@value #LIBRARY}
 * (benchmarks/native/amx_peak.c, built by the benchmarks pom with gcc into benchmarks/target/),
 * called through FFM: one thread per core started from a barrier, each a loop of 4 independent
 * TDPBF16PS chains on accumulator tiles 0-3 with operand tiles 4 and 6 (no memory traffic);
 * GFLOP/s = TDPBF16PS count x 16·16·32·2 / time from the barrier to the last join. Best of N
 * passes on all cores and on one. Where the library was not built (no gcc, or a gcc without
 * AMX) or the CPU or kernel has no AMX, the ceiling is "n/a" with the reason.
 *
 * <p>The library is the file named by the system property {@value #PROPERTY} (the launcher
 * {@code ./dsk4j bench} sets it to benchmarks/target/{@value #LIBRARY}), else {@value #LIBRARY}
 * next to the benchmarks jar (or next to target/classes).
 */
public final class AmxPeak {
    private AmxPeak() {}

    /** System property naming libdsk4jbench.so. */
    public static final String PROPERTY = "dsk4j.bench.native";
    public static final String LIBRARY = "libdsk4jbench.so";

    /** What was measured. */
    public record Result(int threads, double gflops, double gflopsOneThread, Path library) {
        public String describe() {
            return String.format(Locale.ROOT,
                    "AMX-BF16 peak %.1f GFLOP/s (%d threads; one thread %.1f GFLOP/s): TDPBF16PS, 4 independent tile chains "
                            + "per thread, 16x16x32 x 2 flops each, best of passes (%s)",
                    gflops, threads, gflopsOneThread, library);
        }
    }

    private static volatile String whyMissing = "not measured";

    /** Why the last {@link #measure} found no AMX ceiling. */
    public static String whyMissing() { return whyMissing; }

    /** "AMX-BF16 peak ..." or "AMX-BF16 peak n/a: why". */
    public static String describe(Optional<Result> r) {
        return r.map(Result::describe).orElse("AMX-BF16 peak n/a: " + whyMissing);
    }

    /** The library file to load: the property's, else next to the benchmarks' code. */
    static Path library() {
        String p = System.getProperty(PROPERTY);
        if (p != null && !p.isBlank()) return Path.of(p);
        try {
            Path code = Path.of(AmxPeak.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            return code.getParent().resolve(LIBRARY); // target/x.jar or target/classes -> target/
        } catch (Exception e) {
            return Path.of(LIBRARY);
        }
    }

    /** Best of {@code reps} passes on all cores and on one; empty (see {@link #whyMissing()}) where AMX cannot run. */
    public static Optional<Result> measure(int reps) {
        Path lib = library();
        if (!Files.isRegularFile(lib)) {
            whyMissing = lib + " not found (built by the benchmarks module with gcc >= 11; run ./mvnw install, or set -D"
                    + PROPERTY + "=FILE)";
            return Optional.empty();
        }
        MethodHandle peak;
        try {
            SymbolLookup lookup = SymbolLookup.libraryLookup(lib, Arena.global());
            peak = Linker.nativeLinker().downcallHandle(lookup.findOrThrow("dsk4jbench_amx_bf16_peak"),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
        } catch (RuntimeException e) {
            whyMissing = "cannot load " + lib + ": " + e.getMessage();
            return Optional.empty();
        }
        int threads = Runtime.getRuntime().availableProcessors();
        double all = 0, one = 0;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ValueLayout.JAVA_DOUBLE);
            for (int r = 0; r < reps; r++) {
                for (int t : new int[] {threads, 1}) {
                    int rc = (int) peak.invokeExact(t, out);
                    if (rc != 0) {
                        whyMissing = switch (rc) {
                            case 1 -> "the CPU has no AMX-TILE/AMX-BF16 (CPUID)";
                            case 2 -> "Linux refused the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM; kernel < 5.16?)";
                            case 3 -> "threads could not be started";
                            default -> "dsk4jbench_amx_bf16_peak returned " + rc;
                        };
                        return Optional.empty();
                    }
                    double g = out.get(ValueLayout.JAVA_DOUBLE, 0);
                    if (t == threads) all = Math.max(all, g);
                    if (t == 1) one = Math.max(one, g);
                }
            }
        } catch (Throwable e) {
            whyMissing = "dsk4jbench_amx_bf16_peak failed: " + e;
            return Optional.empty();
        }
        whyMissing = null;
        return Optional.of(new Result(threads, all, one, lib));
    }

    public static void main(String[] args) {
        System.out.println(describe(measure(args.length > 0 ? Integer.parseInt(args[0]) : 5)));
    }
}
