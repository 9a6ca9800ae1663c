package dev.dsk4j.benchmarks;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Device;
import dev.dsk4j.Fp8;
import dev.dsk4j.Tensor;
import dev.dsk4j.conformance.Fp8Reference;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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
 * JMH benchmarks of fp8.act_quant, fp8.weight_dequant and fp8.weight_quant on DeepSeek-V3
 * shapes, one implementation per run ({@code impl}):
 *
 * <ul>
 *   <li>{@code dsk4j}: the native CPU backend through the Java API ({@link Fp8}), all cores;
 *       {@code dsk4j-1t}: the same on a one-thread context;</li>
 *   <li>{@code java-1t} / {@code java-mt}: {@link JavaFp8}, plain scalar Java, one thread / all cores;</li>
 *   <li>{@code vector-1t} / {@code vector-mt}: {@link VectorFp8}, the Vector API, one thread / all cores;</li>
 *   <li>{@code reference}: {@link Fp8Reference} (slow by design), only on the smaller shapes
 *       (separate benchmark methods {@code *Reference}).</li>
 * </ul>
 *
 * Shapes: activations [T, 7168] for T = 1, 128, 4096 and 16384 (the last, 587 MB of input and
 * output, is the one much larger than this machine's L3); weights w[n, k] = [7168, 2048] (an
 * expert's down projection) and [18432, 7168] (the dense FFN's up projection). Inputs and
 * outputs are allocated once per trial: off-heap tensors for dsk4j, Java arrays for the Java
 * peers. Input values repeat a 1M-element random pattern (Gaussian, per-group magnitudes
 * 10^-3..10^1; random non-NaN e4m3 codes and scales for dequant): the kernels' speed does not
 * depend on the values.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
public class Fp8Bench {

    static final int PATTERN = 1 << 20;

    /** [a, b] from "AxB". */
    static int[] dims(String shape) {
        String[] p = shape.split("x");
        return new int[] {Integer.parseInt(p[0]), Integer.parseInt(p[1])};
    }

    /** n activation-like floats (a repeated random pattern). */
    static float[] activations(int n) {
        SplittableRandom r = new SplittableRandom(42);
        float[] pat = new float[Math.min(n, PATTERN)];
        for (int g = 0; g < pat.length; g += 128) {
            double mag = Math.pow(10, r.nextDouble(-3, 1));
            for (int i = g; i < Math.min(pat.length, g + 128); i++) pat[i] = (float) (r.nextGaussian() * mag);
        }
        return tile(pat, n);
    }

    static float[] tile(float[] pat, int n) {
        if (pat.length == n) return pat;
        float[] x = new float[n];
        for (int i = 0; i < n; i += pat.length) System.arraycopy(pat, 0, x, i, Math.min(pat.length, n - i));
        return x;
    }

    /** n random e4m3 codes, NaN codes excluded. */
    static byte[] codes(int n) {
        SplittableRandom r = new SplittableRandom(43);
        byte[] pat = new byte[Math.min(n, PATTERN)];
        for (int i = 0; i < pat.length; i++) {
            int c;
            do c = r.nextInt(256); while ((c & 0x7f) == 0x7f);
            pat[i] = (byte) c;
        }
        if (pat.length == n) return pat;
        byte[] w = new byte[n];
        for (int i = 0; i < n; i += pat.length) System.arraycopy(pat, 0, w, i, Math.min(pat.length, n - i));
        return w;
    }

    static float[] scales(int n) {
        SplittableRandom r = new SplittableRandom(44);
        float[] s = new float[n];
        for (int i = 0; i < n; i++) s[i] = (float) Math.pow(10, r.nextDouble(-4, -2));
        return s;
    }

    /** One implementation of one op on one shape: resources opened in setup, the call in {@link #op}. */
    public abstract static class OpState {
        Arena arena;
        Context ctx;
        Runnable op;

        /** Opens a CPU context of the dsk4j impls (threads 0 = all cores) and an arena. */
        Context context(String impl) {
            ctx = Context.open(Device.cpu(), Context.Options.defaults().withThreads(impl.equals("dsk4j-1t") ? 1 : 0));
            return ctx;
        }

        Tensor floats(float[] values, long... shape) {
            Tensor t = Tensor.allocate(arena, DType.F32, shape);
            MemorySegment.copy(values, 0, t.segment(), ValueLayout.JAVA_FLOAT_UNALIGNED, 0, values.length);
            return t;
        }

        @TearDown(Level.Trial)
        public void close() {
            if (ctx != null) ctx.close();
            if (arena != null) arena.close();
            ctx = null;
            arena = null;
            op = null;
        }

        static IllegalArgumentException unknown(String impl) {
            return new IllegalArgumentException("unknown impl '" + impl + "'");
        }
    }

    // ------------------------------------------------------------------ fp8.act_quant

    @State(Scope.Benchmark)
    public static class ActQuant extends OpState {
        @Param({"1x7168", "128x7168", "4096x7168", "16384x7168"})
        public String shape;

        @Param({"dsk4j", "dsk4j-1t", "java-1t", "java-mt", "vector-1t", "vector-mt"})
        public String impl;

        @Setup(Level.Trial)
        public void setup() {
            int[] d = dims(shape);
            int rows = d[0], k = d[1];
            float[] x = activations(rows * k);
            byte[] y = new byte[0];
            float[] s = new float[0];
            if (!impl.startsWith("dsk4j")) {
                y = new byte[rows * k];
                s = new float[rows * k / 128];
            }
            final byte[] fy = y;
            final float[] fs = s;
            switch (impl) {
                case "dsk4j", "dsk4j-1t" -> {
                    arena = Arena.ofShared();
                    Context c = context(impl);
                    Tensor xt = floats(x, rows, k);
                    Tensor yt = Tensor.allocate(arena, DType.E4M3, rows, k);
                    Tensor st = Tensor.allocate(arena, DType.F32, rows, k / 128);
                    Fp8.ActQuantOptions o = Fp8.ActQuantOptions.defaults();
                    op = () -> Fp8.actQuant(c, yt, st, xt, o);
                }
                case "java-1t" -> op = () -> JavaFp8.actQuant(x, rows, k, fy, fs);
                case "java-mt" -> op = () -> JavaFp8.actQuantParallel(x, rows, k, fy, fs);
                case "vector-1t" -> op = () -> VectorFp8.actQuant(x, rows, k, fy, fs);
                case "vector-mt" -> op = () -> VectorFp8.actQuantParallel(x, rows, k, fy, fs);
                default -> throw unknown(impl);
            }
            op.run(); // fail in setup, not in the measurement, if something is wrong
        }
    }

    @State(Scope.Benchmark)
    public static class ActQuantReference extends OpState {
        @Param({"1x7168", "128x7168"})
        public String shape;

        @Setup(Level.Trial)
        public void setup() {
            int[] d = dims(shape);
            int rows = d[0], k = d[1];
            float[] x = activations(rows * k);
            byte[] y = new byte[rows * k];
            float[] s = new float[rows * k / 128];
            op = () -> Fp8Reference.actQuant(x, rows, k, false, y, s);
        }
    }

    @Benchmark
    public void actQuant(ActQuant s) { s.op.run(); }

    @Benchmark
    public void actQuantReference(ActQuantReference s) { s.op.run(); }

    // ------------------------------------------------------------------ fp8.weight_dequant

    @State(Scope.Benchmark)
    public static class WeightDequant extends OpState {
        @Param({"7168x2048", "18432x7168"})
        public String shape;

        @Param({"dsk4j", "dsk4j-1t", "java-1t", "java-mt", "vector-1t", "vector-mt"})
        public String impl;

        @Setup(Level.Trial)
        public void setup() {
            int[] d = dims(shape);
            int n = d[0], k = d[1];
            long[] ss = Fp8.blockScaleShape(n, k);
            byte[] w = codes(n * k);
            float[] si = scales((int) (ss[0] * ss[1]));
            switch (impl) {
                case "dsk4j", "dsk4j-1t" -> {
                    arena = Arena.ofShared();
                    Context c = context(impl);
                    Tensor wt = Tensor.allocate(arena, DType.E4M3, n, k);
                    MemorySegment.copy(w, 0, wt.segment(), ValueLayout.JAVA_BYTE, 0, w.length);
                    Tensor st = floats(si, ss);
                    Tensor yt = Tensor.allocate(arena, DType.F32, n, k);
                    op = () -> Fp8.weightDequant(c, yt, wt, st);
                }
                case "java-1t", "java-mt", "vector-1t", "vector-mt" -> {
                    float[] y = new float[n * k];
                    op = switch (impl) {
                        case "java-1t" -> () -> JavaFp8.weightDequant(w, n, k, si, y);
                        case "java-mt" -> () -> JavaFp8.weightDequantParallel(w, n, k, si, y);
                        case "vector-1t" -> () -> VectorFp8.weightDequant(w, n, k, si, y);
                        default -> () -> VectorFp8.weightDequantParallel(w, n, k, si, y);
                    };
                }
                default -> throw unknown(impl);
            }
            op.run();
        }
    }

    @State(Scope.Benchmark)
    public static class WeightDequantReference extends OpState {
        @Param({"7168x2048"})
        public String shape;

        float[] result;

        @Setup(Level.Trial)
        public void setup() {
            int[] d = dims(shape);
            int n = d[0], k = d[1];
            long[] ss = Fp8.blockScaleShape(n, k);
            byte[] w = codes(n * k);
            float[] si = scales((int) (ss[0] * ss[1]));
            op = () -> result = Fp8Reference.weightDequant(w, n, k, si); // allocates its output, by design
        }
    }

    @Benchmark
    public void weightDequant(WeightDequant s) { s.op.run(); }

    @Benchmark
    public void weightDequantReference(WeightDequantReference s) { s.op.run(); }

    // ------------------------------------------------------------------ fp8.weight_quant

    @State(Scope.Benchmark)
    public static class WeightQuant extends OpState {
        @Param({"7168x2048"})
        public String shape;

        @Param({"dsk4j", "dsk4j-1t", "java-1t", "java-mt", "vector-1t", "vector-mt"})
        public String impl;

        @Setup(Level.Trial)
        public void setup() {
            int[] d = dims(shape);
            int n = d[0], k = d[1];
            long[] ss = Fp8.blockScaleShape(n, k);
            float[] w = activations(n * k);
            switch (impl) {
                case "dsk4j", "dsk4j-1t" -> {
                    arena = Arena.ofShared();
                    Context c = context(impl);
                    Tensor wt = floats(w, n, k);
                    Tensor yt = Tensor.allocate(arena, DType.E4M3, n, k);
                    Tensor st = Tensor.allocate(arena, DType.F32, ss);
                    op = () -> Fp8.weightQuant(c, yt, st, wt, Fp8.ScaleFormat.F32);
                }
                case "java-1t", "java-mt", "vector-1t", "vector-mt" -> {
                    byte[] y = new byte[n * k];
                    float[] si = new float[(int) (ss[0] * ss[1])];
                    op = switch (impl) {
                        case "java-1t" -> () -> JavaFp8.weightQuant(w, n, k, y, si);
                        case "java-mt" -> () -> JavaFp8.weightQuantParallel(w, n, k, y, si);
                        case "vector-1t" -> () -> VectorFp8.weightQuant(w, n, k, y, si);
                        default -> () -> VectorFp8.weightQuantParallel(w, n, k, y, si);
                    };
                }
                default -> throw unknown(impl);
            }
            op.run();
        }
    }

    @State(Scope.Benchmark)
    public static class WeightQuantReference extends OpState {
        @Param({"7168x2048"})
        public String shape;

        @Setup(Level.Trial)
        public void setup() {
            int[] d = dims(shape);
            int n = d[0], k = d[1];
            long[] ss = Fp8.blockScaleShape(n, k);
            float[] w = activations(n * k);
            byte[] y = new byte[n * k];
            float[] si = new float[(int) (ss[0] * ss[1])];
            op = () -> Fp8Reference.weightQuant(w, n, k, false, y, si);
        }
    }

    @Benchmark
    public void weightQuant(WeightQuant s) { s.op.run(); }

    @Benchmark
    public void weightQuantReference(WeightQuantReference s) { s.op.run(); }

    // ------------------------------------------------------------------ bytes moved

    /** Bytes read plus bytes written by one call of {@code op} on {@code shape} (f32 in/out, e4m3 codes, f32 scales). */
    static long bytesMoved(String op, String shape) {
        int[] d = dims(shape);
        long a = d[0], b = d[1], numel = a * b;
        long blocks = ((a + 127) / 128) * ((b + 127) / 128);
        return switch (op) {
            case "fp8.act_quant" -> 4 * numel + numel + 4 * (numel / 128);
            case "fp8.weight_dequant" -> numel + 4 * blocks + 4 * numel;
            case "fp8.weight_quant" -> 4 * numel + numel + 4 * blocks;
            default -> throw new IllegalArgumentException(op);
        };
    }
}
