package dev.dsk4j;

import dev.dsk4j.bindings.Dsk4jH;
import dev.dsk4j.internal.Native;
import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.Objects;

/**
 * FP8 ops of DESIGN.md sections 3 and 4.1: {@code fp8.cast}, {@code fp8.act_quant},
 * {@code fp8.weight_quant}, {@code fp8.weight_dequant}. Each op has an out-parameter form
 * (you own every tensor) and an allocating form (outputs from your arena or, on CUDA, your
 * context). Arguments are checked in Java and again in native code; a bad one is an
 * exception naming it.
 */
public final class Fp8 {
    /** Elements per activation scale group (1 x 128) and per weight scale block (128 x 128). */
    public static final int GROUP = 128;
    public static final int BLOCK = 128;
    /** Largest finite e4m3 and e5m2 values. */
    public static final float E4M3_MAX = 448f;
    public static final float E5M2_MAX = 57344f;

    private Fp8() {}

    /** How scales are stored: plain f32, or rounded up to a power of two (UE8M0, from the bits). */
    public enum ScaleFormat { F32, UE8M0 }

    /** Layout of the activation scales: [rows, K/128], or column-major [K/128, ld] with ld >= rows. */
    public enum ScaleLayout { ROW_MAJOR, COLUMN_MAJOR }

    /** Options of act_quant. */
    public record ActQuantOptions(ScaleFormat format, ScaleLayout layout) {
        public ActQuantOptions {
            Objects.requireNonNull(format, "argument 'format' is null");
            Objects.requireNonNull(layout, "argument 'layout' is null");
        }

        /** f32 scales, row-major: what the DeepSeek-V3 reference's act_quant returns. */
        public static ActQuantOptions defaults() { return new ActQuantOptions(ScaleFormat.F32, ScaleLayout.ROW_MAJOR); }
    }

    /** Quantized values (e4m3) with their f32 scales. */
    public record Quantized(Tensor values, Tensor scales) {}

    // ------------------------------------------------------------------ fp8.cast

    /**
     * fp8.cast: {@code y = convert(x)} elementwise, f32/bf16/f16 to e4m3/e5m2 (round to nearest
     * even, saturating, NaN to 0x7f) or back (exact). Same element count.
     */
    public static void cast(Context ctx, Tensor y, Tensor x) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Ops.checkOutput(ctx, "y", y);
        Ops.checkTensor(ctx, "x", x);
        if (y.numel() != x.numel())
            throw new IllegalArgumentException("arguments 'y' and 'x' differ in element count: " + y.numel() + " vs " + x.numel());
        if (x.dtype().isFp8() == y.dtype().isFp8() || x.dtype() == DType.I32 || y.dtype() == DType.I32)
            throw new IllegalArgumentException("unsupported conversion " + x.dtype().label() + " -> " + y.dtype().label()
                    + " (arguments 'x', 'y'): one side must be e4m3 or e5m2, the other f32, bf16 or f16");
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_fp8_cast(ctx.handle(), y.segment(), y.byteSize(), y.dtype().code(),
                    x.segment(), x.byteSize(), x.dtype().code(), x.numel()));
        } finally {
            ctx.release();
        }
    }

    /** fp8.cast into a new tensor of dtype {@code to}, same shape as {@code x}. */
    public static Tensor cast(Context ctx, Arena arena, Tensor x, DType to) {
        Objects.requireNonNull(x, "argument 'x' is null");
        Tensor y = ctx.allocate(arena, to, x.shape());
        cast(ctx, y, x);
        return y;
    }

    // ------------------------------------------------------------------ fp8.act_quant

    /**
     * fp8.act_quant: {@code x[..., K]} f32|bf16 to {@code y[..., K]} e4m3 and f32 scales, one per
     * 128 contiguous elements: {@code amax = max(max|x|, 1e-4)}, {@code s = amax/448} (UE8M0: next
     * power of two), {@code y = e4m3(x / s)}. K % 128 == 0. Scale shape: {@code [..., K/128]}
     * (row-major) or {@code [K/128, ld]} with {@code ld >= rows} (column-major, "M-major").
     */
    public static void actQuant(Context ctx, Tensor y, Tensor scale, Tensor x, ActQuantOptions options) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Objects.requireNonNull(options, "argument 'options' is null");
        Ops.checkTensor(ctx, "x", x);
        Ops.checkOutput(ctx, "y", y);
        Ops.checkOutput(ctx, "scale", scale);
        Ops.checkDType("x", x, DType.F32, DType.BF16);
        Ops.checkDType("y", y, DType.E4M3);
        Ops.checkDType("scale", scale, DType.F32);
        long k = groupedK(x);
        Ops.checkShape("y", y, x.shape());
        long rows = k == 0 ? 0 : x.numel() / k;
        long groups = k / GROUP;
        long ld = 0;
        if (options.layout() == ScaleLayout.ROW_MAJOR) {
            Ops.checkShape("scale", scale, actScaleShape(x, ScaleLayout.ROW_MAJOR));
        } else {
            Ops.checkRank("scale", scale, 2);
            if (scale.dim(0) != groups || scale.dim(1) < rows)
                throw new IllegalArgumentException("argument 'scale' must have shape [" + groups + ", ld >= " + rows
                        + "] for a column-major layout, got " + Arrays.toString(scale.shape()));
            ld = scale.dim(1);
        }
        int flags = (options.format() == ScaleFormat.UE8M0 ? Dsk4jH.DSK4J_SCALE_UE8M0() : 0)
                | (options.layout() == ScaleLayout.COLUMN_MAJOR ? Dsk4jH.DSK4J_SCALE_COL_MAJOR() : 0);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_fp8_act_quant(ctx.handle(), y.segment(), y.byteSize(), scale.segment(),
                    scale.byteSize(), x.segment(), x.byteSize(), x.dtype().code(), rows, k, GROUP, flags, ld));
        } finally {
            ctx.release();
        }
    }

    /** fp8.act_quant into new tensors (column-major scales get ld = rows). */
    public static Quantized actQuant(Context ctx, Arena arena, Tensor x, ActQuantOptions options) {
        Objects.requireNonNull(x, "argument 'x' is null");
        Objects.requireNonNull(options, "argument 'options' is null");
        Tensor y = ctx.allocate(arena, DType.E4M3, x.shape());
        Tensor scale = ctx.allocate(arena, DType.F32, actScaleShape(x, options.layout()));
        actQuant(ctx, y, scale, x, options);
        return new Quantized(y, scale);
    }

    /** K of an act_quant input x[..., K], checked to be a multiple of 128. */
    private static long groupedK(Tensor x) {
        Objects.requireNonNull(x, "argument 'x' is null");
        if (x.rank() < 1) throw new IllegalArgumentException("argument 'x' must have rank >= 1");
        long k = x.dim(-1);
        if (k % GROUP != 0)
            throw new IllegalArgumentException("argument 'x': last dimension K = " + k + " is not a multiple of " + GROUP);
        return k;
    }

    /**
     * The scale shape act_quant writes for x[..., K]: [..., K/128] row-major, or [K/128, rows]
     * column-major (rows = the product of the leading dimensions).
     */
    public static long[] actScaleShape(Tensor x, ScaleLayout layout) {
        long k = groupedK(x);
        if (layout == ScaleLayout.COLUMN_MAJOR) return new long[] {k / GROUP, k == 0 ? 0 : x.numel() / k};
        long[] shape = x.shape();
        shape[shape.length - 1] = k / GROUP;
        return shape;
    }

    // ------------------------------------------------------------------ fp8.weight_quant

    /** The shape of the 128x128 block scales of a weight [n, k]: [ceil(n/128), ceil(k/128)]. */
    public static long[] blockScaleShape(long n, long k) {
        return new long[] {(n + BLOCK - 1) / BLOCK, (k + BLOCK - 1) / BLOCK};
    }

    /**
     * fp8.weight_quant: {@code w[n, k]} f32|bf16 to {@code y[n, k]} e4m3 and
     * {@code scaleInv[ceil(n/128), ceil(k/128)]} f32 with {@code w ~ y * scaleInv} per 128x128
     * block (partial edge blocks): {@code scaleInv = max(amax, 1e-4)/448}, {@code y = e4m3(w / scaleInv)}.
     */
    public static void weightQuant(Context ctx, Tensor y, Tensor scaleInv, Tensor w, ScaleFormat format) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Objects.requireNonNull(format, "argument 'format' is null");
        Ops.checkTensor(ctx, "w", w);
        Ops.checkOutput(ctx, "y", y);
        Ops.checkOutput(ctx, "scaleInv", scaleInv);
        Ops.checkDType("w", w, DType.F32, DType.BF16);
        Ops.checkDType("y", y, DType.E4M3);
        Ops.checkDType("scaleInv", scaleInv, DType.F32);
        Ops.checkRank("w", w, 2);
        Ops.checkShape("y", y, w.shape());
        Ops.checkShape("scaleInv", scaleInv, blockScaleShape(w.dim(0), w.dim(1)));
        int flags = format == ScaleFormat.UE8M0 ? Dsk4jH.DSK4J_SCALE_UE8M0() : 0;
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_fp8_weight_quant(ctx.handle(), y.segment(), y.byteSize(), scaleInv.segment(),
                    scaleInv.byteSize(), w.segment(), w.byteSize(), w.dtype().code(), w.dim(0), w.dim(1), BLOCK, flags));
        } finally {
            ctx.release();
        }
    }

    /** fp8.weight_quant into new tensors. */
    public static Quantized weightQuant(Context ctx, Arena arena, Tensor w, ScaleFormat format) {
        Objects.requireNonNull(w, "argument 'w' is null");
        Ops.checkRank("w", w, 2);
        Tensor y = ctx.allocate(arena, DType.E4M3, w.shape());
        Tensor s = ctx.allocate(arena, DType.F32, blockScaleShape(w.dim(0), w.dim(1)));
        weightQuant(ctx, y, s, w, format);
        return new Quantized(y, s);
    }

    // ------------------------------------------------------------------ fp8.weight_dequant

    /**
     * fp8.weight_dequant: {@code y[i, j] = float(w[i, j]) * scaleInv[i/128, j/128]} (one f32
     * product, rounded to bf16 for a bf16 {@code y}); {@code w[n, k]} e4m3.
     */
    public static void weightDequant(Context ctx, Tensor y, Tensor w, Tensor scaleInv) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Ops.checkTensor(ctx, "w", w);
        Ops.checkTensor(ctx, "scaleInv", scaleInv);
        Ops.checkOutput(ctx, "y", y);
        Ops.checkDType("w", w, DType.E4M3);
        Ops.checkDType("scaleInv", scaleInv, DType.F32);
        Ops.checkDType("y", y, DType.F32, DType.BF16);
        Ops.checkRank("w", w, 2);
        Ops.checkShape("y", y, w.shape());
        Ops.checkShape("scaleInv", scaleInv, blockScaleShape(w.dim(0), w.dim(1)));
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_fp8_weight_dequant(ctx.handle(), y.segment(), y.byteSize(), y.dtype().code(),
                    w.segment(), w.byteSize(), scaleInv.segment(), scaleInv.byteSize(), w.dim(0), w.dim(1), BLOCK));
        } finally {
            ctx.release();
        }
    }

    /** fp8.weight_dequant into a new tensor of dtype {@code out} (f32 or bf16). */
    public static Tensor weightDequant(Context ctx, Arena arena, Tensor w, Tensor scaleInv, DType out) {
        Objects.requireNonNull(w, "argument 'w' is null");
        Tensor y = ctx.allocate(arena, out, w.shape());
        weightDequant(ctx, y, w, scaleInv);
        return y;
    }

    // ------------------------------------------------------------------ decoding

    /** The exact value of fp8 code {@code v} in {@code format} (e4m3 or e5m2). */
    public static float decode(DType format, byte v) {
        int b = v & 0xff;
        boolean neg = (b & 0x80) != 0;
        int e, m;
        float r;
        if (format == DType.E4M3) {
            e = (b >> 3) & 0xf;
            m = b & 7;
            if (e == 15 && m == 7) return Float.NaN;
            r = e == 0 ? m * 0x1p-9f : (1 + m / 8f) * Math.scalb(1f, e - 7);
        } else if (format == DType.E5M2) {
            e = (b >> 2) & 0x1f;
            m = b & 3;
            if (e == 31) return m == 0 ? (neg ? Float.NEGATIVE_INFINITY : Float.POSITIVE_INFINITY) : Float.NaN;
            r = e == 0 ? m * 0x1p-16f : (1 + m / 4f) * Math.scalb(1f, e - 15);
        } else {
            throw new IllegalArgumentException("argument 'format' must be e4m3 or e5m2, got " + format.label());
        }
        return neg ? -r : r;
    }
}
