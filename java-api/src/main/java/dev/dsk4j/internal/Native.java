package dev.dsk4j.internal;

import dev.dsk4j.Dsk4jException;
import dev.dsk4j.Status;
import dev.dsk4j.bindings.Dsk4jH;
import java.lang.foreign.MemorySegment;

/** Turns native status codes into exceptions carrying the library's message. */
public final class Native {
    private Native() {}

    static {
        NativeLibrary.load();
    }

    /** Makes sure the library is loaded (the bindings look their symbols up lazily). */
    public static void ensureLoaded() {
        // the static initializer did the work
    }

    /** Throws a {@link Dsk4jException} unless {@code rc} is DSK4J_OK. */
    public static void check(int rc) {
        if (rc != 0) throw new Dsk4jException(Status.of(rc), lastError());
    }

    /** The calling thread's last native error message. */
    public static String lastError() {
        MemorySegment msg = Dsk4jH.dsk4j_last_error();
        if (msg.equals(MemorySegment.NULL)) return "(no message)";
        return msg.reinterpret(4096).getString(0);
    }
}
