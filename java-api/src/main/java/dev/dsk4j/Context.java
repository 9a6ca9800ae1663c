package dev.dsk4j;

import dev.dsk4j.bindings.Dsk4jH;
import dev.dsk4j.internal.Native;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Cleaner;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An open backend ({@code cpu} or {@code cuda:N}). Ops take the context they run on. A context
 * may be used from many threads at once; {@link #close()} waits for calls in flight and then
 * frees the backend (and, on CUDA, every device buffer still allocated on it). Using a closed
 * context throws {@link IllegalStateException}. A context that becomes unreachable without
 * {@link #close()} is closed by a {@link Cleaner} (its worker threads and device memory are not
 * leaked), but close contexts yourself: when that happens is up to the garbage collector.
 */
public final class Context implements AutoCloseable {

    /** Which CPU code path a cpu context may use; every path gives the same bits. */
    public enum CpuPath {
        /**
         * The best the CPU has: AVX-512, with AMX-BF16 tiles for the GEMMs where present (and the
         * kernel grants them), else AVX2+FMA, else portable C.
         */
        BEST,
        /** At most AVX-512: no AMX tiles (AVX2+FMA or portable C on a CPU without AVX-512). */
        AVX512,
        /** At most AVX2+FMA (portable C on a CPU without it). */
        AVX2,
        /** The portable C path. */
        PORTABLE
    }

    /**
     * Options of {@link #open(Device, Options)}.
     *
     * @param threads CPU worker threads, 0 = one per online core
     * @param cpuPath CPU: the widest SIMD path allowed
     * @param referenceKernels CUDA: run the plain reference kernels instead of the fast ones
     */
    public record Options(int threads, CpuPath cpuPath, boolean referenceKernels) {
        public Options {
            if (threads < 0 || threads > 1024)
                throw new IllegalArgumentException("argument 'threads' must be in [0, 1024], got " + threads);
            java.util.Objects.requireNonNull(cpuPath, "argument 'cpuPath' is null");
        }

        /** All cores, fastest path. */
        public static Options defaults() { return new Options(0, CpuPath.BEST, false); }

        /** These options with another thread count. */
        public Options withThreads(int n) { return new Options(n, cpuPath, referenceKernels); }

        /** These options with another CPU path. */
        public Options withCpuPath(CpuPath p) { return new Options(threads, p, referenceKernels); }

        /** These options with the CUDA reference kernels on or off. */
        public Options withReferenceKernels(boolean on) { return new Options(threads, cpuPath, on); }

        int flags() {
            return switch (cpuPath) {
                case BEST -> 0;
                case AVX512 -> Dsk4jH.DSK4J_CPU_MAX_AVX512();
                case AVX2 -> Dsk4jH.DSK4J_CPU_MAX_AVX2();
                case PORTABLE -> Dsk4jH.DSK4J_CPU_FORCE_PORTABLE();
            } | (referenceKernels ? Dsk4jH.DSK4J_CUDA_REFERENCE_KERNELS() : 0);
        }
    }

    private static final Cleaner CLEANER = Cleaner.create();

    /** Closes the native context; must not refer to the Context. */
    private record NativeCloser(MemorySegment handle) implements Runnable {
        @Override public void run() { Dsk4jH.dsk4j_context_close(handle); }
    }

    private final Device device;
    private final Cleaner.Cleanable cleanable;
    private final Options options;
    private final MemorySegment handle;
    private final String description;
    /** >= 0: calls in flight; -1: closed. */
    private final AtomicInteger state = new AtomicInteger();

    private Context(Device device, Options options, MemorySegment handle, String description) {
        this.device = device;
        this.options = options;
        this.handle = handle;
        this.description = description;
        this.cleanable = CLEANER.register(this, new NativeCloser(handle));
    }

    /** Opens {@code device} with default options. */
    public static Context open(Device device) {
        return open(device, Options.defaults());
    }

    /**
     * Opens {@code device}.
     *
     * @throws Dsk4jException with {@link Status#UNAVAILABLE} and the driver's message where a CUDA
     *     device cannot be used (no driver, no device, no GPU kernels in this build)
     */
    public static Context open(Device device, Options options) {
        Objects.requireNonNull(device, "argument 'device' is null");
        Objects.requireNonNull(options, "argument 'options' is null");
        Native.ensureLoaded();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
            Native.check(Dsk4jH.dsk4j_context_open(out, arena.allocateFrom(device.id()), options.threads(),
                    options.flags()));
            MemorySegment handle = out.get(ValueLayout.ADDRESS, 0);
            MemorySegment buf = arena.allocate(512);
            int rc = Dsk4jH.dsk4j_context_describe(buf, buf.byteSize(), handle);
            if (rc != 0) {
                String msg = Native.lastError();
                Dsk4jH.dsk4j_context_close(handle);
                throw new Dsk4jException(Status.of(rc), msg);
            }
            return new Context(device, options, handle, buf.getString(0));
        }
    }

    /** The device this context runs on. */
    public Device device() { return device; }

    /** The options it was opened with. */
    public Options options() { return options; }

    /** The library's description, e.g. "cpu: 2 threads, avx512" or "cuda:0: NVIDIA H200, sm_90, ...". */
    public String describe() { return description; }

    /** True for a CUDA context (tensors must then be device tensors of this context). */
    public boolean isCuda() { return device instanceof Device.Cuda; }

    /** The native handle, for the ops of this package; valid between acquire and release. */
    MemorySegment handle() { return handle; }

    /** Marks a call in flight; throws if closed. */
    void acquire() {
        for (;;) {
            int s = state.get();
            if (s < 0) throw new IllegalStateException("context " + device.id() + " is closed");
            if (state.compareAndSet(s, s + 1)) return;
        }
    }

    /** Like {@link #acquire()} but returns false instead of throwing. */
    boolean tryAcquire() {
        for (;;) {
            int s = state.get();
            if (s < 0) return false;
            if (state.compareAndSet(s, s + 1)) return true;
        }
    }

    void release() { state.decrementAndGet(); }

    /** True once {@link #close()} has run. */
    public boolean isClosed() { return state.get() < 0; }

    /**
     * Allocates an uninitialized tensor in this context's memory: host memory from {@code arena}
     * on the CPU (buffers of 1 MiB or more as pages of their own, returned to the system when the
     * arena closes, so that freed activations do not stay resident), device memory on CUDA (freed when {@code arena} closes, or when this context
     * closes, whichever comes first).
     */
    public Tensor allocate(Arena arena, DType dtype, long... shape) {
        Objects.requireNonNull(arena, "argument 'arena' is null");
        Objects.requireNonNull(dtype, "argument 'dtype' is null");
        long bytes = Tensor.byteSizeOf(dtype, shape);
        if (isClosed()) throw new IllegalStateException("context " + device.id() + " is closed");
        if (!isCuda()) return Tensor.wrap(dev.dsk4j.internal.HostPages.allocate(arena, bytes), dtype, shape);
        acquire();
        try (Arena tmp = Arena.ofConfined()) {
            MemorySegment out = tmp.allocate(ValueLayout.ADDRESS);
            Native.check(Dsk4jH.dsk4j_mem_alloc(out, handle, Math.max(bytes, 1)));
            long address = out.get(ValueLayout.ADDRESS, 0).address();
            // The segment is never dereferenced by Java; it carries the address, the size and the
            // arena's lifetime. Its cleanup frees the device buffer unless the context went first.
            MemorySegment device = MemorySegment.ofAddress(address).reinterpret(bytes, arena, s -> freeDevice(address));
            return Tensor.onDevice(this, device, dtype, shape);
        } finally {
            release();
        }
    }

    private void freeDevice(long address) {
        if (!tryAcquire()) return; // closing the context freed it already
        try {
            Dsk4jH.dsk4j_mem_free(handle, MemorySegment.ofAddress(address));
        } finally {
            release();
        }
    }

    /** Copies all of {@code src} into {@code dst} (same dtype and element count; host or this context's device). */
    public void copy(Tensor dst, Tensor src) {
        Objects.requireNonNull(dst, "argument 'dst' is null");
        Objects.requireNonNull(src, "argument 'src' is null");
        if (dst.byteSize() != src.byteSize())
            throw new IllegalArgumentException("arguments 'dst' and 'src' differ in size: " + dst.byteSize() + " vs "
                    + src.byteSize() + " bytes");
        int dir;
        if (!dst.isDevice() && dst.segment().isReadOnly())
            throw new IllegalArgumentException("argument 'dst' is read-only memory (e.g. a tensor of a mapped checkpoint)");
        if (!isCuda()) {
            Ops.checkHost(this, "dst", dst);
            Ops.checkHost(this, "src", src);
            dir = Dsk4jH.DSK4J_COPY_HOST_TO_DEVICE();
        } else if (dst.isDevice() && src.isDevice()) {
            dir = Dsk4jH.DSK4J_COPY_DEVICE_TO_DEVICE();
        } else if (dst.isDevice()) {
            dir = Dsk4jH.DSK4J_COPY_HOST_TO_DEVICE();
        } else if (src.isDevice()) {
            dir = Dsk4jH.DSK4J_COPY_DEVICE_TO_HOST();
        } else {
            dst.hostSegment("dst").copyFrom(src.hostSegment("src"));
            return;
        }
        if (dst.isDevice()) Ops.checkOwner(this, "dst", dst);
        if (src.isDevice()) Ops.checkOwner(this, "src", src);
        acquire();
        try {
            Native.check(Dsk4jH.dsk4j_memcpy(handle, dst.segment(), dst.byteSize(), src.segment(), src.byteSize(),
                    src.byteSize(), dir));
        } finally {
            release();
        }
    }

    /** Sets every byte of {@code t} to {@code value} (tests poison outputs with it). */
    public void fill(Tensor t, int value) {
        Objects.requireNonNull(t, "argument 't' is null");
        if (value < 0 || value > 255) throw new IllegalArgumentException("argument 'value' must be a byte, got " + value);
        if (t.isDevice()) Ops.checkOwner(this, "t", t); else Ops.checkHost(this, "t", t);
        if (!t.isDevice() && t.segment().isReadOnly())
            throw new IllegalArgumentException("argument 't' is read-only memory (e.g. a tensor of a mapped checkpoint)");
        acquire();
        try {
            Native.check(Dsk4jH.dsk4j_memset(handle, t.segment(), t.byteSize(), value, t.byteSize()));
        } finally {
            release();
        }
    }

    /** Waits for all work queued on this context. */
    public void synchronize() {
        acquire();
        try {
            Native.check(Dsk4jH.dsk4j_synchronize(handle));
        } finally {
            release();
        }
    }

    /** Waits for calls in flight, then closes. Idempotent. */
    @Override
    public void close() {
        for (;;) {
            int s = state.get();
            if (s < 0) return;
            if (s == 0 && state.compareAndSet(0, -1)) break;
            Thread.onSpinWait();
        }
        cleanable.clean(); // dsk4j_context_close, exactly once (it cannot fail)
        cache.clear();
    }

    @Override
    public String toString() { return "Context[" + description + (isClosed() ? ", closed" : "") + "]"; }

    // ------------------------------------------------------------------ per-context caches

    /** Values the ops derive once per context and key (e.g. {@link Rope#table} per configuration). */
    private final java.util.concurrent.ConcurrentHashMap<Object, Object> cache = new java.util.concurrent.ConcurrentHashMap<>();

    /** The cached value of {@code key}, made by {@code make} on first use (not cached if it throws). */
    @SuppressWarnings("unchecked")
    <K, V> V cached(K key, java.util.function.Function<K, V> make) {
        if (isClosed()) throw new IllegalStateException("context " + device.id() + " is closed");
        return (V) cache.computeIfAbsent(key, k -> make.apply((K) k));
    }
}
