package example;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Device;
import dev.dsk4j.Fp8;
import dev.dsk4j.Gemm;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;

/** Quantizes activations and a weight with dsk4j, runs an FP8 GEMM, checks both; exits 1 if off. */
public final class Consumer {
    public static void main(String[] args) {
        float[] x = new float[256];
        for (int i = 0; i < x.length; i++) x[i] = (float) Math.sin(i) * (i < 128 ? 1 : 1000);
        try (Context cpu = Context.open(Device.cpu()); Arena arena = Arena.ofConfined()) {
            Tensor xt = Tensor.ofFloats(arena, x, 1, 256);
            Fp8.Quantized q = Fp8.actQuant(cpu, arena, xt, Fp8.ActQuantOptions.defaults());
            float[] codes = q.values().toFloatArray();
            float[] scales = q.scales().toFloatArray();
            double maxRel = 0;
            for (int i = 0; i < x.length; i++) {
                double back = codes[i] * scales[i / 128];
                double amax = i < 128 ? 1 : 1000;
                maxRel = Math.max(maxRel, Math.abs(back - x[i]) / amax);
            }
            System.out.printf("consumer: %s, scales %s, max error %.4f of the group max%n", cpu.describe(),
                    java.util.Arrays.toString(scales), maxRel);
            if (maxRel > 1.0 / 16) {
                System.err.println("consumer: round trip error too large");
                System.exit(1);
            }

            // An FP8 linear layer: y[4, 256] = x[4, 256] · w[256, 256]ᵀ with both operands quantized.
            int n = 256, k = 256, m = 4;
            float[] w = new float[n * k], xs = new float[m * k];
            for (int i = 0; i < w.length; i++) w[i] = (float) Math.cos(i * 0.37) * 0.05f;
            for (int i = 0; i < xs.length; i++) xs[i] = (float) Math.sin(i * 0.11);
            Fp8.Quantized wq = Fp8.weightQuant(cpu, arena, Tensor.ofFloats(arena, w, n, k), Fp8.ScaleFormat.F32);
            Fp8.Quantized xq = Fp8.actQuant(cpu, arena, Tensor.ofFloats(arena, xs, m, k), Fp8.ActQuantOptions.defaults());
            float[] y = Gemm.fp8Block(cpu, arena, xq, wq, DType.F32).toFloatArray();
            // The GEMM multiplies the quantized operands exactly up to f32 rounding: compare with
            // the f64 product of the dequantized values (x ~ code * scale per 1x128, w per 128x128).
            float[] xc = xq.values().toFloatArray(), xsc = xq.scales().toFloatArray();
            float[] wc = wq.values().toFloatArray(), wsc = wq.scales().toFloatArray();
            double num = 0, den = 0, qnum = 0;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    double ref = 0, exact = 0;
                    for (int t = 0; t < k; t++) {
                        ref += (double) xc[i * k + t] * xsc[i * (k / 128) + t / 128] * wc[j * k + t] * wsc[(j / 128) * (k / 128) + t / 128];
                        exact += (double) xs[i * k + t] * w[j * k + t];
                    }
                    num += (y[i * n + j] - ref) * (y[i * n + j] - ref);
                    den += ref * ref;
                    qnum += (y[i * n + j] - exact) * (y[i * n + j] - exact);
                }
            double rel = Math.sqrt(num / den);
            System.out.printf("consumer: fp8 linear layer [%d, %d] x [%d, %d]^T: relative error %.2e against the f64 product"
                    + " of the quantized operands, %.3f against the unquantized one%n", m, k, n, k, rel, Math.sqrt(qnum / den));
            if (!(rel < 1e-5)) {
                System.err.println("consumer: fp8 GEMM error too large");
                System.exit(1);
            }
        }
    }
}
