package dev.dsk4j;

import dev.dsk4j.bindings.Dsk4jH;
import dev.dsk4j.internal.Native;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;

/**
 * GEMMs of DESIGN.md section 4.2, all "NT": {@code d = a · bᵀ} with f32 accumulation:
 * {@code gemm.fp8_block}, {@code gemm.bf16}, {@code gemm.f32} (f32 activations against f32 or bf16
 * weights: the model's dequant mode and LM head), {@code gemm.fp8_grouped_contiguous} (MoE prefill)
 * and {@code gemm.fp8_grouped_masked} (MoE decode). FP8 operands carry their scales:
 * activations one f32 per row and 128 K ({@link Fp8#actQuant}), weights one per 128x128 block
 * ({@link Fp8#weightQuant}); the scales are applied once per 128-wide K block.
 */
public final class Gemm {
    private Gemm() {}

    private static final int KB = 128;

    // ------------------------------------------------------------------ gemm.fp8_block

    /**
     * gemm.fp8_block: {@code d[m, n] = Σ_kb (a[m, kb] · b[n, kb]ᵀ) · aScale[m, kb] · bScale[n/128, kb]}.
     * {@code a} e4m3 [m, k] with row-major {@code aScale} f32 [m, k/128]; {@code b} e4m3 [n, k] with
     * {@code bScale} f32 [ceil(n/128), k/128]; {@code d} f32|bf16 [m, n]; k % 128 == 0.
     */
    public static void fp8Block(Context ctx, Tensor d, Tensor a, Tensor aScale, Tensor b, Tensor bScale) {
        fp8Block(ctx, d, a, aScale, Fp8.ScaleLayout.ROW_MAJOR, b, bScale, null);
    }

    /**
     * gemm.fp8_block with the scale layout of {@code aScale} ({@code COLUMN_MAJOR}: [k/128, ld],
     * ld >= m, as {@link Fp8#actQuant} writes it) and an optional f32 addend {@code c} [m, n]
     * (null for none; it may be {@code d} itself when d is f32).
     */
    public static void fp8Block(Context ctx, Tensor d, Tensor a, Tensor aScale, Fp8.ScaleLayout aScaleLayout, Tensor b,
                                Tensor bScale, Tensor c) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Objects.requireNonNull(aScaleLayout, "argument 'aScaleLayout' is null");
        checkFp8Operands(ctx, d, a, aScale, b, bScale);
        Ops.checkRank("a", a, 2);
        Ops.checkRank("b", b, 2);
        long m = a.dim(0), k = a.dim(1), n = b.dim(0);
        checkK("a", k);
        if (b.dim(1) != k)
            throw new IllegalArgumentException("argument 'b' must have K = " + k + " columns like 'a', got shape "
                    + Arrays.toString(b.shape()));
        long ld = 0;
        if (aScaleLayout == Fp8.ScaleLayout.ROW_MAJOR) {
            Ops.checkShape("aScale", aScale, m, k / KB);
        } else {
            Ops.checkRank("aScale", aScale, 2);
            if (aScale.dim(0) != k / KB || aScale.dim(1) < m)
                throw new IllegalArgumentException("argument 'aScale' must have shape [" + k / KB + ", ld >= " + m
                        + "] for a column-major layout, got " + Arrays.toString(aScale.shape()));
            ld = aScale.dim(1);
        }
        Ops.checkShape("bScale", bScale, Fp8.blockScaleShape(n, k));
        Ops.checkShape("d", d, m, n);
        MemorySegment cs = addend(ctx, c, m, n);
        int flags = aScaleLayout == Fp8.ScaleLayout.COLUMN_MAJOR ? Dsk4jH.DSK4J_SCALE_COL_MAJOR() : 0;
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_gemm_fp8_block(ctx.handle(), d.segment(), d.byteSize(), d.dtype().code(),
                    a.segment(), a.byteSize(), aScale.segment(), aScale.byteSize(), b.segment(), b.byteSize(),
                    bScale.segment(), bScale.byteSize(), cs, c == null ? 0 : c.byteSize(), m, n, k, flags, ld));
        } finally {
            ctx.release();
        }
    }

    /** gemm.fp8_block of row-major quantized operands into a new tensor of dtype {@code out}. */
    public static Tensor fp8Block(Context ctx, Arena arena, Fp8.Quantized a, Fp8.Quantized b, DType out) {
        Objects.requireNonNull(a, "argument 'a' is null");
        Objects.requireNonNull(b, "argument 'b' is null");
        Tensor d = ctx.allocate(arena, out, a.values().dim(0), b.values().dim(0));
        fp8Block(ctx, d, a.values(), a.scales(), b.values(), b.scales());
        return d;
    }

    // ------------------------------------------------------------------ gemm.bf16

    /** gemm.bf16: {@code d[m, n] = a[m, k] · b[n, k]ᵀ (+ c)}, bf16 inputs, f32 accumulation; c may be null. */
    public static void bf16(Context ctx, Tensor d, Tensor a, Tensor b, Tensor c) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Ops.checkTensor(ctx, "a", a);
        Ops.checkTensor(ctx, "b", b);
        Ops.checkOutput(ctx, "d", d);
        Ops.checkDType("a", a, DType.BF16);
        Ops.checkDType("b", b, DType.BF16);
        Ops.checkDType("d", d, DType.F32, DType.BF16);
        Ops.checkRank("a", a, 2);
        Ops.checkRank("b", b, 2);
        long m = a.dim(0), k = a.dim(1), n = b.dim(0);
        if (b.dim(1) != k)
            throw new IllegalArgumentException("argument 'b' must have K = " + k + " columns like 'a', got shape "
                    + Arrays.toString(b.shape()));
        Ops.checkShape("d", d, m, n);
        MemorySegment cs = addend(ctx, c, m, n);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_gemm_bf16(ctx.handle(), d.segment(), d.byteSize(), d.dtype().code(), a.segment(),
                    a.byteSize(), b.segment(), b.byteSize(), cs, c == null ? 0 : c.byteSize(), m, n, k));
        } finally {
            ctx.release();
        }
    }

    /** gemm.bf16 into a new tensor of dtype {@code out}. */
    public static Tensor bf16(Context ctx, Arena arena, Tensor a, Tensor b, DType out) {
        Objects.requireNonNull(a, "argument 'a' is null");
        Objects.requireNonNull(b, "argument 'b' is null");
        Tensor d = ctx.allocate(arena, out, a.dim(0), b.dim(0));
        bf16(ctx, d, a, b, null);
        return d;
    }

    // ------------------------------------------------------------------ gemm.f32

    /**
     * gemm.f32: {@code d[m, n] = a[m, k] · b[n, k]ᵀ (+ c)}, {@code a} f32, {@code b} f32 or bf16
     * (dequantized weights, widened exactly), {@code d} f32; exact f32 products (never tf32), f32
     * accumulation, any m, n, k (k = 0 gives c or zeros). {@code c} f32 [m, n] or null; it may be
     * {@code d} itself. On the CPU the same inputs give the same bits on every call.
     */
    public static void f32(Context ctx, Tensor d, Tensor a, Tensor b, Tensor c) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Ops.checkTensor(ctx, "a", a);
        Ops.checkTensor(ctx, "b", b);
        Ops.checkOutput(ctx, "d", d);
        Ops.checkDType("a", a, DType.F32);
        Ops.checkDType("b", b, DType.F32, DType.BF16);
        Ops.checkDType("d", d, DType.F32);
        Ops.checkRank("a", a, 2);
        Ops.checkRank("b", b, 2);
        long m = a.dim(0), k = a.dim(1), n = b.dim(0);
        if (b.dim(1) != k)
            throw new IllegalArgumentException("argument 'b' must have K = " + k + " columns like 'a', got shape "
                    + Arrays.toString(b.shape()));
        Ops.checkShape("d", d, m, n);
        MemorySegment cs = addend(ctx, c, m, n);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_gemm_f32(ctx.handle(), d.segment(), d.byteSize(), a.segment(), a.byteSize(),
                    b.segment(), b.byteSize(), b.dtype().code(), cs, c == null ? 0 : c.byteSize(), m, n, k));
        } finally {
            ctx.release();
        }
    }

    /** gemm.f32 into a new f32 tensor [m, n] on the context, allocated in {@code arena}. */
    public static Tensor f32(Context ctx, Arena arena, Tensor a, Tensor b) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Objects.requireNonNull(arena, "argument 'arena' is null");
        Objects.requireNonNull(a, "argument 'a' is null");
        Objects.requireNonNull(b, "argument 'b' is null");
        Ops.checkRank("a", a, 2);
        Ops.checkRank("b", b, 2);
        Tensor d = ctx.allocate(arena, DType.F32, a.dim(0), b.dim(0));
        f32(ctx, d, a, b, null);
        return d;
    }

    // ------------------------------------------------------------------ grouped (MoE)

    /**
     * gemm.fp8_grouped_contiguous (MoE prefill): rows {@code groupOffsets[g] .. groupOffsets[g+1]-1}
     * of {@code a} (e4m3 [m, k], row-major {@code aScale} [m, k/128]) are multiplied by expert g's
     * {@code b[g]} (e4m3 [G, n, k], {@code bScale} [G, ceil(n/128), k/128]) into the same rows of
     * {@code d} [m, n]; rows outside every group are not written. {@code groupOffsets} i32 [G+1].
     */
    public static void fp8GroupedContiguous(Context ctx, Tensor d, Tensor a, Tensor aScale, Tensor b, Tensor bScale,
                                            Tensor groupOffsets) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        checkGroupedOperands(ctx, d, a, aScale, b, bScale);
        Ops.checkTensor(ctx, "groupOffsets", groupOffsets);
        Ops.checkDType("groupOffsets", groupOffsets, DType.I32);
        Ops.checkRank("a", a, 2);
        long m = a.dim(0), k = a.dim(1), g = b.dim(0), n = b.dim(1);
        checkK("a", k);
        checkB(b, bScale, g, n, k);
        Ops.checkShape("aScale", aScale, m, k / KB);
        Ops.checkShape("d", d, m, n);
        Ops.checkShape("groupOffsets", groupOffsets, g + 1);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_gemm_fp8_grouped_contiguous(ctx.handle(), d.segment(), d.byteSize(),
                    d.dtype().code(), a.segment(), a.byteSize(), aScale.segment(), aScale.byteSize(), b.segment(),
                    b.byteSize(), bScale.segment(), bScale.byteSize(), groupOffsets.segment(), groupOffsets.byteSize(),
                    g, m, n, k));
        } finally {
            ctx.release();
        }
    }

    /**
     * gemm.fp8_grouped_masked (MoE decode): for each expert g, rows {@code 0 .. maskedM[g]-1} of
     * {@code a[g]} (e4m3 [G, mMax, k], {@code aScale} [G, mMax, k/128]) times {@code b[g]} into
     * {@code d[g]} ([G, mMax, n]); rows at and past {@code maskedM[g]} are not written.
     * {@code maskedM} i32 [G].
     */
    public static void fp8GroupedMasked(Context ctx, Tensor d, Tensor a, Tensor aScale, Tensor b, Tensor bScale,
                                        Tensor maskedM) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        checkGroupedOperands(ctx, d, a, aScale, b, bScale);
        Ops.checkTensor(ctx, "maskedM", maskedM);
        Ops.checkDType("maskedM", maskedM, DType.I32);
        Ops.checkRank("a", a, 3);
        long g = a.dim(0), mMax = a.dim(1), k = a.dim(2), n = b.dim(1);
        checkK("a", k);
        if (b.dim(0) != g)
            throw new IllegalArgumentException("argument 'b' must hold " + g + " experts like 'a', got shape "
                    + Arrays.toString(b.shape()));
        checkB(b, bScale, g, n, k);
        Ops.checkShape("aScale", aScale, g, mMax, k / KB);
        Ops.checkShape("d", d, g, mMax, n);
        Ops.checkShape("maskedM", maskedM, g);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_gemm_fp8_grouped_masked(ctx.handle(), d.segment(), d.byteSize(),
                    d.dtype().code(), a.segment(), a.byteSize(), aScale.segment(), aScale.byteSize(), b.segment(),
                    b.byteSize(), bScale.segment(), bScale.byteSize(), maskedM.segment(), maskedM.byteSize(), g, mMax,
                    n, k));
        } finally {
            ctx.release();
        }
    }

    // ------------------------------------------------------------------ checks

    private static void checkK(String arg, long k) {
        if (k % KB != 0)
            throw new IllegalArgumentException("argument '" + arg + "': K = " + k + " is not a multiple of " + KB);
    }

    /** Presence, memory and dtypes of the fp8 GEMM operands (shapes are each op's). */
    private static void checkFp8Operands(Context ctx, Tensor d, Tensor a, Tensor aScale, Tensor b, Tensor bScale) {
        Ops.checkTensor(ctx, "a", a);
        Ops.checkTensor(ctx, "aScale", aScale);
        Ops.checkTensor(ctx, "b", b);
        Ops.checkTensor(ctx, "bScale", bScale);
        Ops.checkOutput(ctx, "d", d);
        Ops.checkDType("a", a, DType.E4M3);
        Ops.checkDType("b", b, DType.E4M3);
        Ops.checkDType("aScale", aScale, DType.F32);
        Ops.checkDType("bScale", bScale, DType.F32);
        Ops.checkDType("d", d, DType.F32, DType.BF16);
    }

    private static void checkGroupedOperands(Context ctx, Tensor d, Tensor a, Tensor aScale, Tensor b, Tensor bScale) {
        checkFp8Operands(ctx, d, a, aScale, b, bScale);
        Ops.checkRank("b", b, 3);
    }

    private static void checkB(Tensor b, Tensor bScale, long g, long n, long k) {
        if (b.dim(2) != k)
            throw new IllegalArgumentException("argument 'b' must have K = " + k + " columns like 'a', got shape "
                    + Arrays.toString(b.shape()));
        long[] s = Fp8.blockScaleShape(n, k);
        Ops.checkShape("bScale", bScale, g, s[0], s[1]);
    }

    /** The addend's segment (NULL for none), checked to be f32 [m, n] on the context. */
    private static MemorySegment addend(Context ctx, Tensor c, long m, long n) {
        if (c == null) return MemorySegment.NULL;
        Ops.checkTensor(ctx, "c", c);
        Ops.checkDType("c", c, DType.F32);
        Ops.checkShape("c", c, m, n);
        return c.segment();
    }
}
