package dev.dsk4j;

import dev.dsk4j.bindings.Dsk4jH;
import dev.dsk4j.internal.Native;
import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.Objects;

/**
 * Rotary position embedding with YaRN scaling (DESIGN.md 4.3): {@code rope.yarn_table} and
 * {@code rope.apply}, and the softmax scale of MLA.
 *
 * <p>The table ({@link #yarnTable}) holds {@code cos(t·f_i)} and {@code sin(t·f_i)} for every
 * position {@code t < maxSeqLen} and {@code i < dim/2}, computed in double and rounded once to f32.
 * {@link #table(Context, YarnConfig)} caches it per context and configuration. {@link #apply}
 * rotates each pair {@code (x0, x1)} of the last dimension of {@code x[T, H, dim]} (or
 * {@code [T, dim]}) by token t's row {@code positions[t]}, in f32 with exactly these roundings on
 * every backend: {@code y0 = fma(x0, c, -(x1·s))}, {@code y1 = fma(x1, c, x0·s)} (bf16 inputs
 * widened exactly, bf16 outputs rounded to nearest even). A position outside
 * {@code [0, maxSeqLen)} is an error naming {@code positions}.
 */
public final class Rope {
    private Rope() {}

    /** Which elements form a rotated pair. */
    public enum Layout {
        /** {@code (x[2j], x[2j+1])}: the DeepSeek-V3 reference's layout ({@code view_as_complex}). */
        INTERLEAVED,
        /** {@code (x[j], x[j + dim/2])}: GPT-NeoX / Hugging Face {@code rotate_half}. */
        NEOX;

        int code() { return this == INTERLEAVED ? Dsk4jH.DSK4J_ROPE_INTERLEAVED() : Dsk4jH.DSK4J_ROPE_NEOX(); }
    }

    /**
     * The parameters of a YaRN table (the names of DeepSeek-V3's {@code ModelArgs}: {@code qk_rope_head_dim},
     * {@code rope_theta}, {@code rope_factor}, {@code original_seq_len}, {@code max_seq_len},
     * {@code beta_fast}, {@code beta_slow}). YaRN applies only when {@code maxSeqLen > originalSeqLen}.
     */
    public record YarnConfig(int dim, double theta, double factor, long originalSeqLen, long maxSeqLen, double betaFast,
                             double betaSlow) {
        public YarnConfig {
            if (dim < 2 || dim > 1024 || dim % 2 != 0)
                throw new IllegalArgumentException("argument 'dim' must be even and in [2, 1024], got " + dim);
            if (!(theta > 1) || !Double.isFinite(theta))
                throw new IllegalArgumentException("argument 'theta' must be finite and > 1, got " + theta);
            if (!(factor >= 1) || !Double.isFinite(factor))
                throw new IllegalArgumentException("argument 'factor' must be finite and >= 1, got " + factor);
            if (originalSeqLen < 1)
                throw new IllegalArgumentException("argument 'originalSeqLen' must be >= 1, got " + originalSeqLen);
            if (maxSeqLen < 0 || maxSeqLen > (1L << 31))
                throw new IllegalArgumentException("argument 'maxSeqLen' must be in [0, 2^31], got " + maxSeqLen);
            if (!(betaFast > 0) || !Double.isFinite(betaFast))
                throw new IllegalArgumentException("argument 'betaFast' must be finite and > 0, got " + betaFast);
            if (!(betaSlow > 0) || !Double.isFinite(betaSlow))
                throw new IllegalArgumentException("argument 'betaSlow' must be finite and > 0, got " + betaSlow);
        }

        /** DeepSeek-V3: dim 64, theta 1e4, factor 40, original 4096, max 16384, beta_fast 32, beta_slow 1. */
        public static YarnConfig deepSeekV3() { return new YarnConfig(64, 10000, 40, 4096, 16384, 32, 1); }

        /** This configuration with another {@code maxSeqLen} (table rows). */
        public YarnConfig withMaxSeqLen(long rows) {
            return new YarnConfig(dim, theta, factor, originalSeqLen, rows, betaFast, betaSlow);
        }

        /** True when the frequencies are YaRN-scaled ({@code maxSeqLen > originalSeqLen}). */
        public boolean scaled() { return maxSeqLen > originalSeqLen; }

        /**
         * The YaRN correction range {@code [low, high]} over frequency indices:
         * {@code low = max(floor(cd(betaFast)), 0)}, {@code high = min(ceil(cd(betaSlow)), dim-1)}
         * (+0.001 when equal), {@code cd(r) = dim·ln(originalSeqLen/(2πr)) / (2 ln theta)}.
         * DeepSeek-V3: [10, 23].
         */
        public double[] correctionRange() {
            double low = Math.max(Math.floor(correctionDim(betaFast)), 0);
            double high = Math.min(Math.ceil(correctionDim(betaSlow)), dim - 1);
            if (low == high) high += 0.001;
            return new double[] {low, high};
        }

        private double correctionDim(double rotations) {
            return dim * Math.log(originalSeqLen / (2 * Math.PI * rotations)) / (2 * Math.log(theta));
        }

        /** {@code 0.1·m·ln(factor) + 1} when {@link #scaled()}, else 1: YaRN's attention magnitude factor. */
        public double mscale(double m) { return scaled() ? 0.1 * m * Math.log(factor) + 1 : 1; }
    }

    /** A YaRN table: {@code cos}, {@code sin} f32 [maxSeqLen, dim/2] in one context's memory. */
    public record Table(YarnConfig config, Tensor cos, Tensor sin) {
        public Table {
            Objects.requireNonNull(config, "argument 'config' is null");
            Objects.requireNonNull(cos, "argument 'cos' is null");
            Objects.requireNonNull(sin, "argument 'sin' is null");
        }
    }

    /**
     * The softmax scale of MLA: {@code (qkNopeHeadDim + qkRopeHeadDim)^-0.5 · mscale²} with
     * {@code mscale = 0.1·m·ln(factor) + 1} when {@code yarn.scaled()} (else 1). DeepSeek-V3
     * ({@code 128, 64, deepSeekV3(), 1}): 0.1352338. The same scale serves the absorbed (576-wide)
     * form: it is not {@code 576^-0.5}.
     */
    public static double mlaSoftmaxScale(int qkNopeHeadDim, int qkRopeHeadDim, YarnConfig yarn, double m) {
        Objects.requireNonNull(yarn, "argument 'yarn' is null");
        if (qkNopeHeadDim < 0 || qkRopeHeadDim < 0 || qkNopeHeadDim + qkRopeHeadDim <= 0)
            throw new IllegalArgumentException("arguments 'qkNopeHeadDim' (" + qkNopeHeadDim + ") and 'qkRopeHeadDim' ("
                    + qkRopeHeadDim + ") must be >= 0 with a positive sum");
        if (!Double.isFinite(m)) throw new IllegalArgumentException("argument 'm' must be finite, got " + m);
        double ms = yarn.mscale(m);
        return Math.pow(qkNopeHeadDim + qkRopeHeadDim, -0.5) * ms * ms;
    }

    // ------------------------------------------------------------------ rope.yarn_table

    /** rope.yarn_table into {@code cos}, {@code sin} (f32 [maxSeqLen, dim/2], on {@code ctx}). */
    public static void yarnTable(Context ctx, Tensor cos, Tensor sin, YarnConfig config) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Objects.requireNonNull(config, "argument 'config' is null");
        Ops.checkOutput(ctx, "cos", cos);
        Ops.checkOutput(ctx, "sin", sin);
        Ops.checkDType("cos", cos, DType.F32);
        Ops.checkDType("sin", sin, DType.F32);
        Ops.checkShape("cos", cos, config.maxSeqLen(), config.dim() / 2);
        Ops.checkShape("sin", sin, config.maxSeqLen(), config.dim() / 2);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_rope_yarn_table(ctx.handle(), cos.segment(), cos.byteSize(), sin.segment(),
                    sin.byteSize(), config.dim(), config.theta(), config.factor(), config.originalSeqLen(),
                    config.maxSeqLen(), config.betaFast(), config.betaSlow()));
        } finally {
            ctx.release();
        }
    }

    /** rope.yarn_table into new tensors from {@code arena} (on CUDA: device memory freed with it). */
    public static Table yarnTable(Context ctx, Arena arena, YarnConfig config) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Objects.requireNonNull(config, "argument 'config' is null");
        Tensor cos = ctx.allocate(arena, DType.F32, config.maxSeqLen(), config.dim() / 2);
        Tensor sin = ctx.allocate(arena, DType.F32, config.maxSeqLen(), config.dim() / 2);
        yarnTable(ctx, cos, sin, config);
        return new Table(config, cos, sin);
    }

    /**
     * The table of {@code config} on {@code ctx}, computed on first use and cached in the context
     * (one per configuration; its memory lives as long as the context is reachable and open).
     * Thread-safe.
     */
    public static Table table(Context ctx, YarnConfig config) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Objects.requireNonNull(config, "argument 'config' is null");
        return ctx.cached(new TableKey(config), k -> yarnTable(ctx, Arena.ofAuto(), config));
    }

    private record TableKey(YarnConfig config) {}

    // ------------------------------------------------------------------ rope.apply

    /**
     * rope.apply: {@code y = rotate(x)} with {@code x}, {@code y} f32|bf16 (same dtype and shape)
     * [T, H, dim] (q_pe) or [T, dim] (k_pe), {@code positions} i32 [T], {@code table} of this context
     * with {@code table.config().dim() == dim}. {@code y} may be {@code x} (in place); otherwise they
     * must not overlap.
     */
    public static void apply(Context ctx, Tensor y, Tensor x, Tensor positions, Table table, Layout layout) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Objects.requireNonNull(table, "argument 'table' is null");
        Objects.requireNonNull(layout, "argument 'layout' is null");
        Ops.checkTensor(ctx, "x", x);
        Ops.checkOutput(ctx, "y", y);
        Ops.checkTensor(ctx, "positions", positions);
        Ops.checkTensor(ctx, "table.cos", table.cos());
        Ops.checkTensor(ctx, "table.sin", table.sin());
        Ops.checkDType("x", x, DType.F32, DType.BF16);
        Ops.checkDType("y", y, x.dtype());
        Ops.checkDType("positions", positions, DType.I32);
        if (x.rank() != 2 && x.rank() != 3)
            throw new IllegalArgumentException("argument 'x' must have shape [T, H, dim] or [T, dim], got "
                    + Arrays.toString(x.shape()));
        YarnConfig c = table.config();
        long dim = x.dim(-1), tokens = x.dim(0), heads = x.rank() == 3 ? x.dim(1) : 1;
        if (dim != c.dim())
            throw new IllegalArgumentException("argument 'x': last dimension " + dim + " differs from the table's dim "
                    + c.dim());
        Ops.checkShape("y", y, x.shape());
        Ops.checkShape("positions", positions, tokens);
        Ops.checkDType("table.cos", table.cos(), DType.F32);
        Ops.checkDType("table.sin", table.sin(), DType.F32);
        Ops.checkShape("table.cos", table.cos(), c.maxSeqLen(), c.dim() / 2);
        Ops.checkShape("table.sin", table.sin(), c.maxSeqLen(), c.dim() / 2);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_rope_apply(ctx.handle(), y.segment(), y.byteSize(), x.segment(), x.byteSize(),
                    x.dtype().code(), positions.segment(), positions.byteSize(), table.cos().segment(),
                    table.cos().byteSize(), table.sin().segment(), table.sin().byteSize(), tokens, heads, dim,
                    c.maxSeqLen(), layout.code()));
        } finally {
            ctx.release();
        }
    }

    /** rope.apply in place: {@code x = rotate(x)}. */
    public static void applyInPlace(Context ctx, Tensor x, Tensor positions, Table table, Layout layout) {
        apply(ctx, x, x, positions, table, layout);
    }

    /** rope.apply into a new tensor from {@code arena} (same dtype and shape as {@code x}). */
    public static Tensor apply(Context ctx, Arena arena, Tensor x, Tensor positions, Table table, Layout layout) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Objects.requireNonNull(x, "argument 'x' is null");
        Tensor y = ctx.allocate(arena, x.dtype(), x.shape());
        apply(ctx, y, x, positions, table, layout);
        return y;
    }
}
