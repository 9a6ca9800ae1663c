package dev.dsk4j.internal;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Host buffers of {@link #MIN_BYTES} or more as anonymous pages of their own ({@code mmap}),
 * unmapped when their arena closes. An arena's {@code allocate} takes memory from the C heap,
 * which keeps large freed blocks (glibc raises its mmap threshold after the first large free):
 * the activations of a long prefill, freed after each layer, would stay resident and the peak
 * resident memory of a long-running model would creep up from call to call. The CPU kernels' own large
 * workspaces do the same in C (native/src/cpu_alloc.c); this one is Java so that a buffer's lifetime is its
 * arena's alone, not tied to a context that may close first. Linux only; elsewhere
 * (or if {@code mmap} cannot be found) the arena allocates as usual.
 */
public final class HostPages {
    private HostPages() {}

    /** Buffers from this size on are mapped pages (smaller ones: the arena, i.e. the C heap). */
    public static final long MIN_BYTES = 1L << 20;

    private static final long PAGE = 4096;
    private static final int PROT_READ_WRITE = 0x1 | 0x2;
    private static final int MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20; // Linux (x86-64 and aarch64)
    private static final MethodHandle MMAP, MUNMAP;

    static {
        MethodHandle mmap = null, munmap = null;
        if (System.getProperty("os.name", "").startsWith("Linux")) {
            try {
                Linker linker = Linker.nativeLinker();
                var libc = linker.defaultLookup();
                mmap = linker.downcallHandle(libc.find("mmap").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
                munmap = linker.downcallHandle(libc.find("munmap").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
            } catch (RuntimeException e) { // no such symbol: fall back to the arena
                mmap = null;
                munmap = null;
            }
        }
        MMAP = mmap;
        MUNMAP = munmap;
    }

    /** {@code bytes} of zeroed, 64-byte aligned host memory whose lifetime is {@code arena}'s. */
    public static MemorySegment allocate(Arena arena, long bytes) {
        if (bytes < MIN_BYTES || MMAP == null) return arena.allocate(Math.max(bytes, 1), 64).asSlice(0, bytes);
        long len = (bytes + PAGE - 1) & -PAGE;
        MemorySegment p;
        try {
            p = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, len, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("mmap of " + len + " bytes failed", t);
        }
        long address = p.address();
        if (address == -1L) throw new OutOfMemoryError("cannot map " + len + " bytes of host memory");
        return MemorySegment.ofAddress(address).reinterpret(len, arena, s -> unmap(address, len)).asSlice(0, bytes);
    }

    private static void unmap(long address, long len) {
        try {
            int rc = (int) MUNMAP.invokeExact(MemorySegment.ofAddress(address), len);
            assert rc == 0 : "munmap failed";
        } catch (Throwable t) {
            throw new IllegalStateException("munmap failed", t);
        }
    }
}
