package dev.dsk4j.conformance;

import dev.dsk4j.DType;
import dev.dsk4j.Fp8;
import dev.dsk4j.Fp8.ScaleFormat;
import dev.dsk4j.Fp8.ScaleLayout;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.util.List;

/**
 * Runs one case of an fp8 op on a backend and compares every output with {@link Fp8Reference}.
 * Shared by the property tests and the {@code conformance} command. All fp8 outputs are
 * bit-exact by contract (DESIGN.md 6).
 */
public final class Fp8Checks {
    private Fp8Checks() {}

    /** Host tensor of {@code dtype} holding raw element bits {@code raw} (f32 bits, i32 values, 16-bit or 8-bit codes). */
    static Tensor hostOfRaw(Arena a, DType dtype, int[] raw) {
        return switch (dtype.byteSize()) {
            case 4 -> {
                if (dtype == DType.I32) yield Tensor.ofInts(a, raw.clone(), raw.length);
                float[] f = new float[raw.length];
                for (int i = 0; i < raw.length; i++) f[i] = Float.intBitsToFloat(raw[i]);
                yield Tensor.ofFloats(a, f, raw.length);
            }
            case 2 -> {
                short[] s = new short[raw.length];
                for (int i = 0; i < raw.length; i++) s[i] = (short) raw[i];
                yield Tensor.ofShorts(a, dtype, s, raw.length);
            }
            default -> {
                byte[] b = new byte[raw.length];
                for (int i = 0; i < raw.length; i++) b[i] = (byte) raw[i];
                yield Tensor.ofBytes(a, dtype, b, raw.length);
            }
        };
    }

    /** Raw element bits of a host tensor (f32 bits, i32 values or unsigned 16/8-bit codes). */
    static int[] rawOf(Tensor t) {
        return switch (t.dtype().byteSize()) {
            case 4 -> {
                if (t.dtype() == DType.I32) yield t.toIntArray();
                float[] f = t.toFloatArray();
                int[] r = new int[f.length];
                for (int i = 0; i < f.length; i++) r[i] = Float.floatToRawIntBits(f[i]);
                yield r;
            }
            case 2 -> Comparison.unsigned(t.toShortArray());
            default -> Comparison.unsigned(t.toByteArray());
        };
    }

    /** The reference conversion of one raw element. */
    static int referenceCast(DType from, DType to, int raw) {
        float v = Fp8Reference.toFloat(from.label(), raw);
        return switch (to) {
            case E4M3 -> Fp8Reference.floatToE4m3(v) & 0xff;
            case E5M2 -> Fp8Reference.floatToE5m2(v) & 0xff;
            case F32 -> Float.floatToRawIntBits(v);
            case BF16 -> Fp8Reference.floatToBf16(v) & 0xffff;
            case F16 -> Fp8Reference.floatToF16(v) & 0xffff;
            default -> throw new IllegalArgumentException("cast to " + to.label());
        };
    }

    /** fp8.cast of elements {@code raw} (bits of {@code from}) to {@code to}. */
    public static Comparison cast(Session s, DType from, DType to, int[] raw) {
        try (Arena a = Arena.ofConfined()) {
            Tensor x = s.input(a, hostOfRaw(a, from, raw));
            Tensor y = s.output(a, to, raw.length);
            Fp8.cast(s.context(), y, x);
            int[] got = rawOf(s.toHost(a, y));
            int[] exp = new int[raw.length];
            for (int i = 0; i < raw.length; i++) exp[i] = referenceCast(from, to, raw[i]);
            String what = "fp8.cast " + from.label() + "->" + to.label();
            if (to == DType.F32) return Comparison.floats(what, floatsOf(got), floatsOf(exp));
            return Comparison.codes(what, to, got, exp);
        }
    }

    private static float[] floatsOf(int[] bits) {
        float[] f = new float[bits.length];
        for (int i = 0; i < bits.length; i++) f[i] = Float.intBitsToFloat(bits[i]);
        return f;
    }

    /** x rounded to bf16 and back (the values a bf16 input holds). */
    static float[] roundToBf16(float[] x) {
        float[] r = new float[x.length];
        for (int i = 0; i < x.length; i++) r[i] = Fp8Reference.bf16ToFloat(Fp8Reference.floatToBf16(x[i]));
        return r;
    }

    static Tensor hostInput(Arena a, float[] x, DType dtype, long... shape) {
        if (dtype == DType.F32) return Tensor.ofFloats(a, x, shape);
        short[] s = new short[x.length];
        for (int i = 0; i < x.length; i++) s[i] = Fp8Reference.floatToBf16(x[i]);
        return Tensor.ofShorts(a, DType.BF16, s, shape);
    }

    /**
     * fp8.act_quant of x[rows, k] given as {@code xType} (f32 or bf16: x is rounded first), scales
     * in {@code format} and {@code layout} (column-major with ld = rows + ldPad).
     */
    public static List<Comparison> actQuant(Session s, float[] x, int rows, int k, DType xType, ScaleFormat format,
                                            ScaleLayout layout, int ldPad) {
        float[] xv = xType == DType.BF16 ? roundToBf16(x) : x;
        int groups = k / 128;
        byte[] ey = new byte[rows * k];
        float[] es = new float[rows * groups];
        Fp8Reference.actQuant(xv, rows, k, format == ScaleFormat.UE8M0, ey, es);
        try (Arena a = Arena.ofConfined()) {
            Tensor xt = s.input(a, hostInput(a, x, xType, rows, k));
            Tensor y = s.output(a, DType.E4M3, rows, k);
            long ld = rows + ldPad;
            Tensor scale = layout == ScaleLayout.ROW_MAJOR ? s.output(a, DType.F32, rows, groups)
                    : s.output(a, DType.F32, groups, ld);
            Fp8.actQuant(s.context(), y, scale, xt, new Fp8.ActQuantOptions(format, layout));
            int[] gotY = Comparison.unsigned(s.toHost(a, y).toByteArray());
            float[] gotS = s.toHost(a, scale).toFloatArray();
            float[] gotScale = new float[rows * groups];
            for (int r = 0; r < rows; r++)
                for (int g = 0; g < groups; g++)
                    gotScale[r * groups + g] = layout == ScaleLayout.ROW_MAJOR ? gotS[r * groups + g] : gotS[(int) (g * ld + r)];
            return List.of(Comparison.codes("fp8.act_quant y", DType.E4M3, gotY, Comparison.unsigned(ey)),
                    Comparison.floats("fp8.act_quant scale", gotScale, es));
        }
    }

    /** fp8.weight_quant of w[n, k] given as {@code wType} (rounded to bf16 first when bf16). */
    public static List<Comparison> weightQuant(Session s, float[] w, int n, int k, DType wType, ScaleFormat format) {
        float[] wv = wType == DType.BF16 ? roundToBf16(w) : w;
        long[] ss = Fp8.blockScaleShape(n, k);
        byte[] ey = new byte[n * k];
        float[] es = new float[(int) (ss[0] * ss[1])];
        Fp8Reference.weightQuant(wv, n, k, format == ScaleFormat.UE8M0, ey, es);
        try (Arena a = Arena.ofConfined()) {
            Tensor wt = s.input(a, hostInput(a, w, wType, n, k));
            Tensor y = s.output(a, DType.E4M3, n, k);
            Tensor scale = s.output(a, DType.F32, ss);
            Fp8.weightQuant(s.context(), y, scale, wt, format);
            return List.of(
                    Comparison.codes("fp8.weight_quant y", DType.E4M3, Comparison.unsigned(s.toHost(a, y).toByteArray()),
                            Comparison.unsigned(ey)),
                    Comparison.floats("fp8.weight_quant scale_inv", s.toHost(a, scale).toFloatArray(), es));
        }
    }

    /** fp8.weight_dequant of e4m3 codes w[n, k] with scaleInv, output {@code yType} (f32 or bf16). */
    public static Comparison weightDequant(Session s, byte[] w, int n, int k, float[] scaleInv, DType yType) {
        float[] ey = Fp8Reference.weightDequant(w, n, k, scaleInv);
        long[] ss = Fp8.blockScaleShape(n, k);
        try (Arena a = Arena.ofConfined()) {
            Tensor wt = s.input(a, Tensor.ofBytes(a, DType.E4M3, w, n, k));
            Tensor st = s.input(a, Tensor.ofFloats(a, scaleInv, ss));
            Tensor y = s.output(a, yType, n, k);
            Fp8.weightDequant(s.context(), y, wt, st);
            Tensor host = s.toHost(a, y);
            if (yType == DType.F32) return Comparison.floats("fp8.weight_dequant f32", host.toFloatArray(), ey);
            int[] exp = new int[ey.length];
            for (int i = 0; i < ey.length; i++) exp[i] = Fp8Reference.floatToBf16(ey[i]) & 0xffff;
            return Comparison.codes("fp8.weight_dequant bf16", DType.BF16, Comparison.unsigned(host.toShortArray()), exp);
        }
    }
}
