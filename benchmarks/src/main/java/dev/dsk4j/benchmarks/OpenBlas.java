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
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * OpenBLAS (the GEMM benchmarks' native peer), loaded at run time through FFM: no build-time
 * dependency, and a machine without it just skips the openblas rows. Looks for Debian's
 * pthreads build first ({@code /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0},
 * package libopenblas0-pthread, pulled in by libopenblas-dev), then {@code libopenblas.so.0},
 * {@code libopenblas.so} and {@code libcblas.so.3} on the loader's path (or only what the system
 * property {@value #PROPERTY} names). On load it sets
 * OpenBLAS's thread count to the number of cores (openblas_set_num_threads; the
 * OPENBLAS_NUM_THREADS environment variable is read by OpenBLAS itself before that).
 * OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are never changed here; {@link #environment()} reports them.
 */
public final class OpenBlas {
    /** CBLAS enums. */
    static final int ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

    /** What the gemm run prints (and skips the rows) when OpenBLAS is missing. */
    public static final String NOT_INSTALLED = "openblas: not installed (apt-get install libopenblas-dev)";

    static final List<String> CANDIDATES = List.of(
            "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
            "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
            "libopenblas.so.0", "libopenblas.so", "libcblas.so.3");

    /**
     * System property naming the library to load instead of the candidates (e.g. a self-built
     * OpenBLAS that knows this CPU), or "none" to run as if OpenBLAS were missing. Pass it with
     * DSK4J_JAVA_OPTS=-Ddsk4j.bench.openblas=...; JMH's forks inherit it.
     */
    public static final String PROPERTY = "dsk4j.bench.openblas";

    static final List<String> ENV = List.of("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
            "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_VERBOSE");

    private static volatile Optional<OpenBlas> instance;
    private static volatile String whyMissing = NOT_INSTALLED;

    private final String library;
    private final MethodHandle sgemm, sgemv, getConfig, getCorename, getNumThreads;
    private final int threads;

    private OpenBlas(String library, SymbolLookup lookup) {
        this.library = library;
        Linker linker = Linker.nativeLinker();
        ValueLayout.OfInt I = ValueLayout.JAVA_INT;
        ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
        ValueLayout P = ValueLayout.ADDRESS;
        // void cblas_sgemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)  (blasint = int)
        sgemm = linker.downcallHandle(lookup.find("cblas_sgemm").orElseThrow(),
                FunctionDescriptor.ofVoid(I, I, I, I, I, I, F, P, I, P, I, F, P, I));
        // void cblas_sgemv(order, trans, M, N, alpha, A, lda, X, incX, beta, Y, incY)
        sgemv = linker.downcallHandle(lookup.find("cblas_sgemv").orElseThrow(),
                FunctionDescriptor.ofVoid(I, I, I, I, F, P, I, P, I, F, P, I));
        getConfig = optional(linker, lookup, "openblas_get_config", FunctionDescriptor.of(P));
        getCorename = optional(linker, lookup, "openblas_get_corename", FunctionDescriptor.of(P));
        getNumThreads = optional(linker, lookup, "openblas_get_num_threads", FunctionDescriptor.of(I));
        MethodHandle setNumThreads = optional(linker, lookup, "openblas_set_num_threads", FunctionDescriptor.ofVoid(I));
        int cores = Runtime.getRuntime().availableProcessors();
        try {
            if (setNumThreads != null) setNumThreads.invokeExact(cores);
            threads = getNumThreads == null ? -1 : (int) getNumThreads.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException("openblas: setting the thread count failed: " + t, t);
        }
    }

    private static MethodHandle optional(Linker linker, SymbolLookup lookup, String name, FunctionDescriptor fd) {
        return lookup.find(name).map(s -> linker.downcallHandle(s, fd)).orElse(null);
    }

    /** OpenBLAS, loaded once per JVM; empty (see {@link #whyMissing()}) if no library was found. */
    public static Optional<OpenBlas> get() {
        Optional<OpenBlas> o = instance;
        if (o != null) return o;
        synchronized (OpenBlas.class) {
            if (instance != null) return instance;
            List<String> tried = new ArrayList<>();
            Optional<OpenBlas> found = Optional.empty();
            String forced = System.getProperty(PROPERTY);
            List<String> candidates = forced == null || forced.isBlank() ? CANDIDATES
                    : forced.equals("none") ? List.of() : List.of(forced);
            for (String c : candidates) {
                if (c.startsWith("/") && !Files.exists(Path.of(c))) continue;
                try {
                    SymbolLookup lookup = SymbolLookup.libraryLookup(c, Arena.global());
                    if (lookup.find("cblas_sgemm").isEmpty()) {
                        tried.add(c + " (no cblas_sgemm)");
                        continue;
                    }
                    found = Optional.of(new OpenBlas(c, lookup));
                    break;
                } catch (IllegalArgumentException | IllegalStateException e) {
                    tried.add(c + " (" + e.getMessage() + ")");
                }
            }
            if (found.isEmpty()) whyMissing = NOT_INSTALLED + (tried.isEmpty() ? "" : "; tried " + tried);
            instance = found;
            return found;
        }
    }

    /** Why {@link #get()} is empty. */
    public static String whyMissing() { return whyMissing; }

    /** The library file it was loaded from (the name given to dlopen, resolved through symlinks where it is a path). */
    public String library() {
        try {
            return library.startsWith("/") ? Path.of(library).toRealPath().toString() : library;
        } catch (Exception e) {
            return library;
        }
    }

    /** openblas_get_config(), or "unknown". */
    public String config() { return string(getConfig); }

    /** openblas_get_corename(): the kernel set OpenBLAS picked for this CPU, or "unknown". */
    public String corename() { return string(getCorename); }

    /** OpenBLAS's thread count after setting it to the number of cores (-1 if it cannot tell). */
    public int threads() { return threads; }

    private static String string(MethodHandle h) {
        if (h == null) return "unknown";
        try {
            MemorySegment p = (MemorySegment) h.invokeExact();
            return p.equals(MemorySegment.NULL) ? "unknown" : p.reinterpret(4096).getString(0).trim();
        } catch (Throwable t) {
            return "unknown (" + t + ")";
        }
    }

    /** The environment variables that steer OpenBLAS, with their values (or "unset"). */
    public static Map<String, String> environment() {
        Map<String, String> m = new LinkedHashMap<>();
        for (String v : ENV) m.put(v, System.getenv(v) == null ? "unset" : System.getenv(v));
        return m;
    }

    /** One line: library, config, core name, threads and the steering environment. */
    public String describe() {
        StringBuilder env = new StringBuilder();
        environment().forEach((k, v) -> env.append(env.isEmpty() ? "" : ", ").append(k).append('=').append(v));
        return "openblas " + library() + ": config \"" + config() + "\", core \"" + corename() + "\", " + threads
                + " threads; environment: " + env;
    }

    /**
     * {@code c[m, n] = a[m, k] · b[n, k]ᵀ}, f32 row-major: cblas_sgemm(CblasRowMajor, CblasNoTrans,
     * CblasTrans, m, n, k, 1, a, k, b, k, 0, c, n).
     */
    public void sgemmNT(int m, int n, int k, MemorySegment a, MemorySegment b, MemorySegment c) {
        check(a, (long) m * k, "a");
        check(b, (long) n * k, "b");
        check(c, (long) m * n, "c");
        try {
            sgemm.invokeExact(ROW_MAJOR, NO_TRANS, TRANS, m, n, k, 1f, a, k, b, k, 0f, c, n);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** {@code y[n] = w[n, k] · x[k]}, f32 row-major: cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1, w, k, x, 1, 0, y, 1). */
    public void sgemv(int n, int k, MemorySegment w, MemorySegment x, MemorySegment y) {
        check(w, (long) n * k, "w");
        check(x, k, "x");
        check(y, n, "y");
        try {
            sgemv.invokeExact(ROW_MAJOR, NO_TRANS, n, k, 1f, w, k, x, 1, 0f, y, 1);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static void check(MemorySegment s, long floats, String what) {
        if (!s.isNative() || s.byteSize() < 4 * floats)
            throw new IllegalArgumentException("openblas: '" + what + "' must be native memory of at least " + floats
                    + " floats, got " + s);
    }
}
