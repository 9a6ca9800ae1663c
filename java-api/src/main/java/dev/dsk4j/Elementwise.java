package dev.dsk4j;

import dev.dsk4j.bindings.Dsk4jH;
import dev.dsk4j.internal.Native;
import java.util.Arrays;
import java.util.Objects;

/**
 * The model's small element-wise steps as native ops on a context's memory (host on cpu, device on
 * CUDA): {@code elementwise.rmsnorm}, {@code add}, {@code silu_mul}, {@code embed},
 * {@code copy_columns}, {@code gather_rows} (dsk4j.h "elementwise"). Values are computed from the
 * stored values (bf16 widened exactly) and rounded once to the output dtype (bf16: round to nearest
 * even). Tensors must be contiguous and belong to the context; outputs must be writable.
 *
 * <p>On the cpu backend an out-of-range {@code ids} / {@code idx} entry is an error naming the
 * argument and nothing is written; on CUDA (indices in device memory, not read by the host) such a
 * row is written as zeros.
 */
public final class Elementwise {
    private Elementwise() {}

    /**
     * {@code y[R, d] = x[R, 0:d] / sqrt(mean(x[r,0:d]²) + eps) · w}; x f32|bf16 [R, ldx] with
     * {@code ldx >= d = w.dim(0)} (2-D), y same dtype [R, d]; w f32 [d]. y may be x itself when ldx == d.
     *
     * <p>Per row, in double: {@code ss = Σ_i x_i²} (ascending i), {@code inv = 1/sqrt(ss/d + eps)},
     * {@code y_i = (float)((x_i·inv)·w_i)} then rounded to the dtype. eps finite and {@code >= 0}.
     * The cpu backend gives exactly these bits; CUDA's fast kernel sums ss in another order.
     */
    public static void rmsnorm(Context ctx, Tensor y, Tensor x, Tensor w, double eps) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Ops.checkTensor(ctx, "x", x);
        Ops.checkTensor(ctx, "w", w);
        Ops.checkOutput(ctx, "y", y);
        Ops.checkDType("x", x, DType.F32, DType.BF16);
        Ops.checkDType("y", y, x.dtype());
        Ops.checkDType("w", w, DType.F32);
        Ops.checkRank("x", x, 2);
        Ops.checkRank("w", w, 1);
        long rows = x.dim(0), ldx = x.dim(1), d = w.dim(0);
        if (d < 1) throw new IllegalArgumentException("argument 'w' must have at least one element, got shape "
                + Arrays.toString(w.shape()));
        if (ldx < d)
            throw new IllegalArgumentException("argument 'x' must have at least d = " + d + " columns (w's length), got shape "
                    + Arrays.toString(x.shape()));
        Ops.checkShape("y", y, rows, d);
        if (!Double.isFinite(eps) || eps < 0)
            throw new IllegalArgumentException("argument 'eps' must be finite and >= 0, got " + eps);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_rmsnorm(ctx.handle(), y.segment(), y.byteSize(), x.segment(), x.byteSize(),
                    w.segment(), w.byteSize(), x.dtype().code(), rows, d, ldx, eps));
        } finally {
            ctx.release();
        }
    }

    /** {@code y = a + b} (one dtype f32|bf16, one element count; y may be a or b). f32 arithmetic. */
    public static void add(Context ctx, Tensor y, Tensor a, Tensor b) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        checkBinary(ctx, y, "a", a, "b", b);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_add(ctx.handle(), y.segment(), y.byteSize(), a.segment(), a.byteSize(), b.segment(),
                    b.byteSize(), a.dtype().code(), a.numel()));
        } finally {
            ctx.release();
        }
    }

    /**
     * {@code y = silu(g) · u}, {@code silu(z) = z / (1 + e^-z)} (one dtype f32|bf16, one element count; y may
     * be g or u). In double, rounded once: {@code (float)((z / (1 + exp(-z))) · u)}.
     */
    public static void siluMul(Context ctx, Tensor y, Tensor g, Tensor u) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        checkBinary(ctx, y, "g", g, "u", u);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_silu_mul(ctx.handle(), y.segment(), y.byteSize(), g.segment(), g.byteSize(),
                    u.segment(), u.byteSize(), g.dtype().code(), g.numel()));
        } finally {
            ctx.release();
        }
    }

    private static void checkBinary(Context ctx, Tensor y, String pArg, Tensor p, String qArg, Tensor q) {
        /* in place: an input that is y itself is reported as 'y' (the caller passed one tensor for both) */
        String pn = p == y && p != null ? "y" : pArg, qn = q == y && q != null ? "y" : qArg;
        Ops.checkTensor(ctx, pn, p);
        Ops.checkTensor(ctx, qn, q);
        Ops.checkOutput(ctx, "y", y);
        Ops.checkDType(pn, p, DType.F32, DType.BF16);
        Ops.checkDType(qn, q, p.dtype());
        Ops.checkDType("y", y, p.dtype());
        if (q.numel() != p.numel())
            throw new IllegalArgumentException("argument '" + qn + "' must have as many elements as '" + pn + "' ("
                    + p.numel() + "), got shape " + Arrays.toString(q.shape()));
        if (y.numel() != p.numel())
            throw new IllegalArgumentException("argument 'y' must have as many elements as '" + pn + "' (" + p.numel()
                    + "), got shape " + Arrays.toString(y.shape()));
    }

    /**
     * {@code y[T, D]} (f32|bf16) {@code = table[ids[t]]} (table f32|bf16 [V, D]; ids i32 [T]): bf16 to f32
     * exact, f32 to bf16 round to nearest even. An id outside {@code [0, V)}: an error naming {@code ids}
     * on cpu, a zero row on CUDA.
     */
    public static void embed(Context ctx, Tensor y, Tensor table, Tensor ids) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Ops.checkTensor(ctx, "table", table);
        Ops.checkTensor(ctx, "ids", ids);
        Ops.checkOutput(ctx, "y", y);
        Ops.checkDType("table", table, DType.F32, DType.BF16);
        Ops.checkDType("y", y, DType.F32, DType.BF16);
        Ops.checkDType("ids", ids, DType.I32);
        Ops.checkRank("table", table, 2);
        Ops.checkRank("ids", ids, 1);
        long tokens = ids.dim(0), vocab = table.dim(0), d = table.dim(1);
        Ops.checkShape("y", y, tokens, d);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_embed(ctx.handle(), y.segment(), y.byteSize(), y.dtype().code(), table.segment(),
                    table.byteSize(), table.dtype().code(), ids.segment(), ids.byteSize(), tokens, vocab, d));
        } finally {
            ctx.release();
        }
    }

    /**
     * {@code dst[:, dstCol0 + j] = src[:, srcCol0 + j]} for {@code j < width}; dst [R, Cd] and src [R, Cs]
     * 2-D, same dtype (any: bits are copied) and rows; {@code dstCol0 + width <= Cd}, {@code srcCol0 + width <= Cs}.
     */
    public static void copyColumns(Context ctx, Tensor dst, long dstCol0, Tensor src, long srcCol0, long width) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Ops.checkTensor(ctx, "src", src);
        Ops.checkOutput(ctx, "dst", dst);
        Ops.checkRank("src", src, 2);
        Ops.checkRank("dst", dst, 2);
        Ops.checkDType("dst", dst, src.dtype());
        if (dst.dim(0) != src.dim(0))
            throw new IllegalArgumentException("argument 'dst' must have the rows of 'src' (" + src.dim(0) + "), got shape "
                    + Arrays.toString(dst.shape()));
        if (width < 0) throw new IllegalArgumentException("argument 'width' is negative (" + width + ")");
        checkWindow("dstCol0", dstCol0, width, "dst", dst.dim(1));
        checkWindow("srcCol0", srcCol0, width, "src", src.dim(1));
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_copy_columns(ctx.handle(), dst.segment(), dst.byteSize(), src.segment(), src.byteSize(),
                    src.dtype().code(), src.dim(0), dst.dim(1), dstCol0, src.dim(1), srcCol0, width));
        } finally {
            ctx.release();
        }
    }

    private static void checkWindow(String arg, long col0, long width, String tensor, long cols) {
        if (col0 < 0 || col0 > cols || width > cols - col0)
            throw new IllegalArgumentException("argument '" + arg + "' (" + col0 + ") + width (" + width
                    + ") must lie in [0, " + cols + "] (the columns of '" + tensor + "')");
    }

    /**
     * {@code dst[i] = src[idx[i]]}; dst [N, C], src [M, C] same dtype (any: bits are copied) (2-D), idx i32 [N].
     * An entry outside {@code [0, M)}: an error naming {@code idx} on cpu, a zero row on CUDA.
     */
    public static void gatherRows(Context ctx, Tensor dst, Tensor src, Tensor idx) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Ops.checkTensor(ctx, "src", src);
        Ops.checkTensor(ctx, "idx", idx);
        Ops.checkOutput(ctx, "dst", dst);
        Ops.checkRank("src", src, 2);
        Ops.checkDType("dst", dst, src.dtype());
        Ops.checkDType("idx", idx, DType.I32);
        Ops.checkRank("idx", idx, 1);
        Ops.checkShape("dst", dst, idx.dim(0), src.dim(1));
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_gather_rows(ctx.handle(), dst.segment(), dst.byteSize(), src.segment(), src.byteSize(),
                    src.dtype().code(), idx.segment(), idx.byteSize(), idx.dim(0), src.dim(0), src.dim(1)));
        } finally {
            ctx.release();
        }
    }
}
