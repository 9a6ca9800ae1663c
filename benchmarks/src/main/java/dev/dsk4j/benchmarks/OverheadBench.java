package dev.dsk4j.benchmarks;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Device;
import dev.dsk4j.Dsk4j;
import dev.dsk4j.Fp8;
import dev.dsk4j.Tensor;
import dev.dsk4j.bindings.Dsk4jH;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The cost of a Java -> native call, per call, on a small tensor (ns/op):
 *
 * <ol>
 *   <li>{@code downcallVersion}: the raw jextract binding of a trivial function
 *       ({@code dsk4j_version} into preallocated segments); {@code downcallVersionCritical}: the
 *       same through a {@link Linker.Option#critical critical} handle (no thread-state
 *       transition), the floor of an FFM call; {@code downcallLastError}: a no-argument call;</li>
 *   <li>{@code apiActQuant}: {@link Fp8#actQuant} on x[1, 128] through the full Java API (argument
 *       checks, context acquire/release, status check);</li>
 *   <li>{@code rawActQuant}: the same op through the raw binding
 *       {@code Dsk4jH.dsk4j_fp8_act_quant} on a native context opened here (all cores), and
 *       {@code rawActQuant1t} on a one-thread context (no pool handoff possible);</li>
 *   <li>{@code javaActQuant} / {@code vectorActQuant}: the pure-Java act_quant on [1, 128].</li>
 * </ol>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@State(Scope.Benchmark)
public class OverheadBench {
    static final int K = 128;

    Arena arena;
    MemorySegment major, minor, patch;
    MethodHandle versionCritical;

    Context ctx;
    Tensor x, y, scale;
    Fp8.ActQuantOptions options;

    MemorySegment rawCtx, rawCtx1;
    MemorySegment xs, ys, ss;

    float[] xa;
    byte[] ya;
    float[] sa;

    @Setup(Level.Trial)
    public void setup() {
        Dsk4j.version(); // loads the native library (the bindings look symbols up in this class loader)
        arena = Arena.ofShared();
        major = arena.allocate(ValueLayout.JAVA_INT);
        minor = arena.allocate(ValueLayout.JAVA_INT);
        patch = arena.allocate(ValueLayout.JAVA_INT);
        versionCritical = Linker.nativeLinker().downcallHandle(Dsk4jH.dsk4j_version$address(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS),
                Linker.Option.critical(false));

        xa = Fp8Bench.activations(K);
        ya = new byte[K];
        sa = new float[1];

        ctx = Context.open(Device.cpu());
        x = Tensor.ofFloats(arena, xa, 1, K);
        y = Tensor.allocate(arena, DType.E4M3, 1, K);
        scale = Tensor.allocate(arena, DType.F32, 1, 1);
        options = Fp8.ActQuantOptions.defaults();

        rawCtx = openRaw(0);
        rawCtx1 = openRaw(1);
        xs = x.segment();
        ys = y.segment();
        ss = scale.segment();
        if (rawActQuant() != 0 || rawActQuant1t() != 0) throw new IllegalStateException("dsk4j_fp8_act_quant failed");
    }

    MemorySegment openRaw(int threads) {
        MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
        int rc = Dsk4jH.dsk4j_context_open(out, arena.allocateFrom("cpu"), threads, 0);
        if (rc != 0) throw new IllegalStateException("dsk4j_context_open: " + rc);
        return out.get(ValueLayout.ADDRESS, 0);
    }

    @TearDown(Level.Trial)
    public void close() {
        Dsk4jH.dsk4j_context_close(rawCtx);
        Dsk4jH.dsk4j_context_close(rawCtx1);
        ctx.close();
        arena.close();
    }

    @Benchmark
    public int downcallVersion() { return Dsk4jH.dsk4j_version(major, minor, patch); }

    @Benchmark
    public int downcallVersionCritical() throws Throwable {
        return (int) versionCritical.invokeExact(major, minor, patch);
    }

    @Benchmark
    public MemorySegment downcallLastError() { return Dsk4jH.dsk4j_last_error(); }

    @Benchmark
    public void apiActQuant() { Fp8.actQuant(ctx, y, scale, x, options); }

    @Benchmark
    public int rawActQuant() {
        return Dsk4jH.dsk4j_fp8_act_quant(rawCtx, ys, K, ss, 4, xs, 4 * K, Dsk4jH.DSK4J_DTYPE_F32(), 1, K, 128, 0, 0);
    }

    @Benchmark
    public int rawActQuant1t() {
        return Dsk4jH.dsk4j_fp8_act_quant(rawCtx1, ys, K, ss, 4, xs, 4 * K, Dsk4jH.DSK4J_DTYPE_F32(), 1, K, 128, 0, 0);
    }

    @Benchmark
    public byte[] javaActQuant() {
        JavaFp8.actQuant(xa, 1, K, ya, sa);
        return ya;
    }

    @Benchmark
    public byte[] vectorActQuant() {
        VectorFp8.actQuant(xa, 1, K, ya, sa);
        return ya;
    }
}
