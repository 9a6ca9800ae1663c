package dev.dsk4j.conformance;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;

/**
 * A backend opened for a run of checks: moves host inputs to the backend's memory, allocates
 * outputs (from the caller's arena, on CUDA freed with it) poisoned with 0xFF bytes (NaN for every float type, a code no fp8 conversion produces)
 * so that an element the kernel did not write fails, and brings outputs back to the host.
 */
public final class Session implements AutoCloseable {
    public static final int POISON = 0xFF;

    private final Backend backend;
    private final Context ctx;

    public Session(Backend backend) {
        this.backend = backend;
        this.ctx = backend.open();
    }

    public Backend backend() { return backend; }

    public Context context() { return ctx; }

    /** The backend's copy of host tensor {@code host}. */
    public Tensor input(Arena arena, Tensor host) {
        if (!ctx.isCuda()) return host;
        Tensor d = ctx.allocate(arena, host.dtype(), host.shape());
        ctx.copy(d, host);
        return d;
    }

    /** A poisoned output tensor in the backend's memory. */
    public Tensor output(Arena arena, DType dtype, long... shape) {
        Tensor t = ctx.allocate(arena, dtype, shape);
        ctx.fill(t, POISON);
        return t;
    }

    /** A host copy of {@code t}. */
    public Tensor toHost(Arena arena, Tensor t) {
        if (!t.isDevice()) return t;
        Tensor h = Tensor.allocate(arena, t.dtype(), t.shape());
        ctx.copy(h, t);
        return h;
    }

    @Override
    public void close() {
        ctx.close();
    }
}
