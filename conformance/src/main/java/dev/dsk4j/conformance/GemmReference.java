package dev.dsk4j.conformance;

/**
 * The plain-Java reference of the gemm.* ops (DESIGN.md 4.2), in double precision: every
 * product of fp8/bf16 values is exact in double, so this is the product the f32 kernels
 * approximate. Besides the result it returns, per element, the sum of the absolute values of
 * the terms ({@code mag}), from which the comparisons derive an error bound that holds for any
 * f32 summation order.
 */
public final class GemmReference {
    private GemmReference() {}

    /** Result and per-element magnitude (sum of |terms|, |c| included). */
    public record Result(double[] value, double[] mag) {}

    /**
     * gemm.fp8_block: a e4m3 codes [m, k], aScale [m, k/128] row-major, b e4m3 [n, k], bScale
     * [ceil(n/128), k/128], c f32 [m, n] or null: {@code Σ_kb (Σ_t a·b) · aScale[i,kb] · bScale[j/128,kb] (+ c)}.
     */
    public static Result fp8Block(byte[] a, float[] aScale, byte[] b, float[] bScale, float[] c, int m, int n, int k) {
        int kb = k / 128;
        double[] av = decode(a), bv = decode(b);
        double[] out = new double[m * n], mag = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double acc = 0, abs = 0;
                for (int q = 0; q < kb; q++) {
                    double part = 0, partAbs = 0;
                    for (int t = q * 128; t < q * 128 + 128; t++) {
                        double p = av[i * k + t] * bv[j * k + t];
                        part += p;
                        partAbs += Math.abs(p);
                    }
                    double s = (double) aScale[i * kb + q] * bScale[(j / 128) * kb + q];
                    acc += part * s;
                    abs += partAbs * Math.abs(s);
                }
                if (c != null) {
                    acc += c[i * n + j];
                    abs += Math.abs(c[i * n + j]);
                }
                out[i * n + j] = acc;
                mag[i * n + j] = abs;
            }
        }
        return new Result(out, mag);
    }

    /** gemm.bf16: a bf16 bits [m, k], b bf16 bits [n, k], c f32 [m, n] or null. */
    public static Result bf16(short[] a, short[] b, float[] c, int m, int n, int k) {
        double[] out = new double[m * n], mag = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double acc = 0, abs = 0;
                for (int t = 0; t < k; t++) {
                    double p = (double) Fp8Reference.bf16ToFloat(a[i * k + t]) * Fp8Reference.bf16ToFloat(b[j * k + t]);
                    acc += p;
                    abs += Math.abs(p);
                }
                if (c != null) {
                    acc += c[i * n + j];
                    abs += Math.abs(c[i * n + j]);
                }
                out[i * n + j] = acc;
                mag[i * n + j] = abs;
            }
        }
        return new Result(out, mag);
    }

    /**
     * gemm.f32: a f32 [m, k], b [n, k] as f32 values (bf16 weights widened exactly first), c f32
     * [m, n] or null: {@code Σ_t a[i,t]·b[j,t] (+ c)} accumulated in double (each f32 product is
     * exact in double).
     */
    public static Result f32(float[] a, float[] b, float[] c, int m, int n, int k) {
        double[] out = new double[m * n], mag = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double acc = 0, abs = 0;
                for (int t = 0; t < k; t++) {
                    double p = (double) a[i * k + t] * b[j * k + t];
                    acc += p;
                    abs += Math.abs(p);
                }
                if (c != null) {
                    acc += c[i * n + j];
                    abs += Math.abs(c[i * n + j]);
                }
                out[i * n + j] = acc;
                mag[i * n + j] = abs;
            }
        }
        return new Result(out, mag);
    }

    /**
     * One expert of the grouped forms: rows [row0, row0 + rows) of a (k columns) and aScale
     * (k/128 columns) against expert g of b [G, n, k] / bScale [G, ceil(n/128), k/128], written
     * into rows [row0, row0 + rows) of out/mag ([*, n]).
     */
    public static void expert(byte[] a, float[] aScale, byte[] b, float[] bScale, int g, int row0, int rows, int n,
                              int k, double[] out, double[] mag) {
        int kb = k / 128, sb = ((n + 127) / 128) * kb;
        byte[] ag = java.util.Arrays.copyOfRange(a, row0 * k, (row0 + rows) * k);
        float[] sg = java.util.Arrays.copyOfRange(aScale, row0 * kb, (row0 + rows) * kb);
        byte[] bg = java.util.Arrays.copyOfRange(b, g * n * k, (g + 1) * n * k);
        float[] bsg = java.util.Arrays.copyOfRange(bScale, g * sb, (g + 1) * sb);
        Result r = fp8Block(ag, sg, bg, bsg, null, rows, n, k);
        System.arraycopy(r.value(), 0, out, row0 * n, rows * n);
        System.arraycopy(r.mag(), 0, mag, row0 * n, rows * n);
    }

    private static double[] decode(byte[] codes) {
        double[] v = new double[codes.length];
        for (int i = 0; i < codes.length; i++) v[i] = Fp8Reference.e4m3ToFloat(codes[i]);
        return v;
    }
}
