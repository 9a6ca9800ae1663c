package dev.dsk4j.conformance;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Dsk4j;
import dev.dsk4j.Fp8;
import dev.dsk4j.Gemm;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.util.List;
import java.util.SplittableRandom;

/**
 * {@code ./dsk4j demo kernels}: lists the backends, quantizes a DeepSeek-V3-sized
 * weight ([2048, 7168], an expert's gate projection) and a batch of activations ([128, 7168])
 * on each one, checks the bytes against the Java reference, and prints the quantization error
 * and the throughput; then runs the FP8 linear layer y = x·wᵀ on the quantized operands
 * ({@code gemm.fp8_block}) on every backend, with its error against the f64 product of the same
 * quantized operands (the kernel's own error) and against the unquantized f32 layer (what FP8
 * costs), and its speed.
 */
public final class KernelDemo {
    private KernelDemo() {}

    public static void main(String[] args) {
        System.out.println("dsk4j " + Dsk4j.version() + " (native library " + Dsk4j.libraryPath() + ")");
        List<Backend> backends = Backend.available();
        for (Backend b : backends) {
            try (Context c = b.open()) {
                System.out.println("  backend " + b.name() + ": " + c.describe());
            }
        }
        for (String u : Backend.unavailable()) System.out.println("  " + u);

        SplittableRandom r = new SplittableRandom(42);
        int n = 2048, k = 7168, t = 128;
        float[] w = new float[n * k];
        for (int i = 0; i < w.length; i++) w[i] = (float) (Values.gaussian(r) * 0.02);
        float[] x = new float[t * k];
        for (int i = 0; i < x.length; i++) x[i] = (float) (Values.gaussian(r) * (i % 977 == 0 ? 40 : 1)); // outliers

        long t0 = System.nanoTime();
        byte[] refW = new byte[n * k];
        long[] ss = Fp8.blockScaleShape(n, k);
        float[] refS = new float[(int) (ss[0] * ss[1])];
        Fp8Reference.weightQuant(w, n, k, false, refW, refS);
        byte[] refX = new byte[t * k];
        float[] refXs = new float[t * k / 128];
        Fp8Reference.actQuant(x, t, k, false, refX, refXs);
        System.out.printf("%nJava reference: weight [%d, %d] and activations [%d, %d] quantized in %.0f ms%n", n, k, t, k,
                (System.nanoTime() - t0) / 1e6);

        boolean allExact = true;
        for (Backend b : backends) {
            if (b.options().cpuPath() != Context.CpuPath.BEST || b.options().referenceKernels()) continue; // the fast path of each device
            System.out.println("\nbackend " + b.name());
            try (Session s = new Session(b); Arena a = Arena.ofConfined()) {
                Context ctx = s.context();
                Tensor wt = s.input(a, Tensor.ofFloats(a, w, n, k));
                Tensor xt = s.input(a, Tensor.ofFloats(a, x, t, k));
                Tensor wq = s.output(a, DType.E4M3, n, k), wsc = s.output(a, DType.F32, ss);
                Tensor xq = s.output(a, DType.E4M3, t, k), xsc = s.output(a, DType.F32, t, k / 128);
                Tensor back = s.output(a, DType.F32, n, k);
                double tq = time(ctx, () -> Fp8.weightQuant(ctx, wq, wsc, wt, Fp8.ScaleFormat.F32));
                double ta = time(ctx, () -> Fp8.actQuant(ctx, xq, xsc, xt, Fp8.ActQuantOptions.defaults()));
                double td = time(ctx, () -> Fp8.weightDequant(ctx, back, wq, wsc));

                boolean exactW = java.util.Arrays.equals(s.toHost(a, wq).toByteArray(), refW)
                        && java.util.Arrays.equals(s.toHost(a, wsc).toFloatArray(), refS);
                boolean exactX = java.util.Arrays.equals(s.toHost(a, xq).toByteArray(), refX)
                        && java.util.Arrays.equals(s.toHost(a, xsc).toFloatArray(), refXs);
                allExact &= exactW && exactX;
                float[] wBack = s.toHost(a, back).toFloatArray();
                float[] xCodes = s.toHost(a, xq).toFloatArray(), xScales = s.toHost(a, xsc).toFloatArray();
                float[] xBack = new float[x.length];
                for (int i = 0; i < x.length; i++) xBack[i] = xCodes[i] * xScales[i / 128];

                System.out.printf("  fp8.weight_quant   [%d, %d] f32 -> e4m3: %s reference, %6.2f ms, %6.2f GB/s%n", n, k,
                        exactW ? "bit-exact with the" : "DIFFERS from the", tq * 1e3, (n * (long) k * 5) / tq / 1e9);
                System.out.printf("  fp8.weight_dequant [%d, %d] e4m3 -> f32:            %6.2f ms, %6.2f GB/s%n", n, k,
                        td * 1e3, (n * (long) k * 5) / td / 1e9);
                System.out.printf("  fp8.act_quant      [%d, %d] f32 -> e4m3: %s reference, %6.2f ms, %6.2f GB/s%n", t, k,
                        exactX ? "bit-exact with the" : "DIFFERS from the", ta * 1e3, (t * (long) k * 5) / ta / 1e9);
                System.out.println("  round-trip error, weight:      " + errors(w, wBack));
                System.out.println("  round-trip error, activations: " + errors(x, xBack));
            }
        }

        // The FP8 linear layer on the reference's quantized operands, on every backend.
        int mr = 16; // rows checked against the f64 products (the Java reference is slow)
        GemmReference.Result ref = GemmReference.fp8Block(java.util.Arrays.copyOf(refX, mr * k),
                java.util.Arrays.copyOf(refXs, mr * k / 128), refW, refS, null, mr, n, k);
        double[] exact = new double[mr * n]; // the unquantized layer, f64
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < n; j++) {
                double acc = 0;
                for (int q = 0; q < k; q++) acc += (double) x[i * k + q] * w[j * k + q];
                exact[i * n + j] = acc;
            }
        System.out.printf("%ngemm.fp8_block y[%d, %d] = x[%d, %d] · w[%d, %d]ᵀ on the quantized operands "
                + "(errors on the first %d rows):%n", t, n, t, k, n, k, mr);
        boolean gemmOk = true;
        for (Backend b : backends) {
            try (Session s = new Session(b); Arena a = Arena.ofConfined()) {
                Context ctx = s.context();
                Tensor wq = s.input(a, Tensor.ofBytes(a, DType.E4M3, refW, n, k));
                Tensor wsc = s.input(a, Tensor.ofFloats(a, refS, ss));
                Tensor xq = s.input(a, Tensor.ofBytes(a, DType.E4M3, refX, t, k));
                Tensor xsc = s.input(a, Tensor.ofFloats(a, refXs, t, k / 128));
                Tensor y = s.output(a, DType.F32, t, n);
                double tg = time(ctx, () -> Gemm.fp8Block(ctx, y, xq, xsc, wq, wsc));
                float[] got = s.toHost(a, y).toFloatArray();
                double worst = 0, num = 0, den = 0;
                for (int i = 0; i < mr * n; i++) {
                    worst = Math.max(worst, Math.abs(got[i] - ref.value()[i]) / ref.mag()[i]);
                    num += (got[i] - exact[i]) * (got[i] - exact[i]);
                    den += exact[i] * exact[i];
                }
                boolean ok = worst <= (k + 8) * 0x1p-24 + (b.device() instanceof dev.dsk4j.Device.Cuda ? 0x1p-11 : 0);
                gemmOk &= ok;
                System.out.printf("  %-18s %7.2f ms %8.1f GFLOP/s   |error| / Σ|terms| vs f64 of the same operands %.1e (%s); "
                                + "vs the f32 layer: relative Frobenius %.4f%n", b.name(), tg * 1e3,
                        2.0 * t * n * k / tg / 1e9, worst, ok ? "within the contract" : "OUTSIDE the contract",
                        Math.sqrt(num / den));
            }
        }
        allExact &= gemmOk;
        System.out.println(allExact ? "\nquantization bit-exact with the Java reference and the GEMM within its error bound on every "
                + "backend above (./dsk4j conformance checks every path)" : "\nMISMATCH against the Java reference");
        System.exit(allExact ? 0 : 1);
    }

    /** Median seconds of 5 runs after a warm-up. */
    private static double time(Context ctx, Runnable op) {
        op.run();
        ctx.synchronize();
        double[] t = new double[5];
        for (int i = 0; i < t.length; i++) {
            long s = System.nanoTime();
            op.run();
            ctx.synchronize();
            t[i] = (System.nanoTime() - s) / 1e9;
        }
        java.util.Arrays.sort(t);
        return t[t.length / 2];
    }

    private static String errors(float[] ref, float[] got) {
        double num = 0, den = 0, maxAbs = 0;
        for (int i = 0; i < ref.length; i++) {
            double d = (double) got[i] - ref[i];
            num += d * d;
            den += (double) ref[i] * ref[i];
            maxAbs = Math.max(maxAbs, Math.abs(d));
        }
        double rel = Math.sqrt(num / den);
        return String.format("relative Frobenius %.4f (SNR %.1f dB), max abs %.4g", rel, -20 * Math.log10(rel), maxAbs);
    }
}
