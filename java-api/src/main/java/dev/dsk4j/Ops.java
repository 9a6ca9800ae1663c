package dev.dsk4j;

import java.util.Arrays;
import java.util.Objects;

/** Argument checks shared by the ops: each failure names the argument. */
final class Ops {
    private Ops() {}

    /** A tensor argument usable on {@code ctx}: present, contiguous, in the right memory, alive. */
    static void checkTensor(Context ctx, String arg, Tensor t) {
        Objects.requireNonNull(t, () -> "argument '" + arg + "' is null");
        t.requireContiguous(arg);
        if (ctx.isCuda()) checkOwner(ctx, arg, t);
        else checkHost(ctx, arg, t);
    }

    /** An output argument: as {@link #checkTensor}, and writable (not a read-only mapping such as a checkpoint tensor). */
    static void checkOutput(Context ctx, String arg, Tensor t) {
        checkTensor(ctx, arg, t);
        if (!t.isDevice() && t.segment().isReadOnly())
            throw new IllegalArgumentException("argument '" + arg + "' is read-only memory (e.g. a tensor of a mapped "
                    + "checkpoint) and cannot be an output");
    }

    static void checkHost(Context ctx, String arg, Tensor t) {
        if (t.isDevice())
            throw new IllegalArgumentException("argument '" + arg + "' is in device memory of "
                    + t.owner().device().id() + " but the context is " + ctx.device().id());
        if (!t.segment().scope().isAlive())
            throw new IllegalStateException("argument '" + arg + "': its arena is closed");
        if (!t.segment().isAccessibleBy(Thread.currentThread()))
            throw new IllegalStateException("argument '" + arg + "' belongs to an arena confined to another thread");
        if (!t.segment().isNative())
            throw new IllegalArgumentException("argument '" + arg + "' is on the Java heap; allocate it from an Arena");
    }

    static void checkOwner(Context ctx, String arg, Tensor t) {
        if (!t.isDevice())
            throw new IllegalArgumentException("argument '" + arg + "' is in host memory but the context is "
                    + ctx.device().id() + "; allocate it with Context.allocate and copy into it");
        if (t.owner() != ctx)
            throw new IllegalArgumentException("argument '" + arg + "' belongs to another context ("
                    + t.owner() + "), not " + ctx);
        if (!t.segment().scope().isAlive())
            throw new IllegalStateException("argument '" + arg + "': its arena is closed (device memory freed)");
    }

    static void checkDType(String arg, Tensor t, DType... allowed) {
        for (DType d : allowed) if (t.dtype() == d) return;
        throw new IllegalArgumentException("argument '" + arg + "' must be " + labels(allowed) + ", got " + t.dtype().label());
    }

    static void checkShape(String arg, Tensor t, long... expected) {
        if (!Arrays.equals(t.shape(), expected))
            throw new IllegalArgumentException("argument '" + arg + "' must have shape " + Arrays.toString(expected)
                    + ", got " + Arrays.toString(t.shape()));
    }

    static void checkRank(String arg, Tensor t, int rank) {
        if (t.rank() != rank)
            throw new IllegalArgumentException("argument '" + arg + "' must have rank " + rank + ", got shape "
                    + Arrays.toString(t.shape()));
    }

    private static String labels(DType[] ds) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < ds.length; i++) {
            if (i > 0) sb.append(i == ds.length - 1 ? " or " : ", ");
            sb.append(ds[i].label());
        }
        return sb.toString();
    }
}
