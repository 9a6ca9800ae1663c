package dev.dsk4j;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Objects;

/**
 * A tensor: a dtype, a shape and element strides over memory that you own. Host tensors live in
 * a {@link MemorySegment} (from an {@link Arena}: its lifetime is the tensor's); device tensors
 * are allocated by {@link Context#allocate} on a CUDA context and cannot be read from Java
 * directly (copy them to a host tensor with {@link Context#copy}).
 *
 * <p>Row-major: the last dimension varies fastest. Ops take contiguous tensors; a
 * {@link #transpose} view is not contiguous and is rejected by the ops with a clear message.
 * Tensors are immutable views; the memory behind them is not.
 */
public final class Tensor {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;

    private final MemorySegment segment;
    private final DType dtype;
    private final long[] shape;
    private final long[] strides;
    private final Context owner; // null for host memory

    private Tensor(MemorySegment segment, DType dtype, long[] shape, long[] strides, Context owner) {
        this.segment = segment;
        this.dtype = dtype;
        this.shape = shape;
        this.strides = strides;
        this.owner = owner;
    }

    // ------------------------------------------------------------------ creation

    /** A zero-filled host tensor allocated from {@code arena} (64-byte aligned). */
    public static Tensor allocate(Arena arena, DType dtype, long... shape) {
        Objects.requireNonNull(arena, "argument 'arena' is null");
        long bytes = byteSizeOf(dtype, shape);
        return wrap(arena.allocate(Math.max(bytes, 1), 64).asSlice(0, bytes), dtype, shape);
    }

    /**
     * Views host memory {@code segment} as a contiguous tensor. The segment must hold at least the
     * tensor's bytes and be native (off-heap) memory.
     */
    public static Tensor wrap(MemorySegment segment, DType dtype, long... shape) {
        Objects.requireNonNull(segment, "argument 'segment' is null");
        long bytes = byteSizeOf(dtype, shape);
        if (segment.byteSize() < bytes)
            throw new IllegalArgumentException("argument 'segment' holds " + segment.byteSize() + " bytes, shape "
                    + Arrays.toString(shape) + " " + dtype.label() + " needs " + bytes);
        return new Tensor(segment.asSlice(0, bytes), dtype, shape.clone(), contiguousStrides(shape), null);
    }

    static Tensor onDevice(Context owner, MemorySegment deviceSegment, DType dtype, long... shape) {
        return new Tensor(deviceSegment, dtype, shape.clone(), contiguousStrides(shape), owner);
    }

    /** A host f32 tensor holding {@code values}. */
    public static Tensor ofFloats(Arena arena, float[] values, long... shape) {
        Tensor t = allocate(arena, DType.F32, shapeFor(values.length, shape));
        MemorySegment.copy(values, 0, t.segment, F32, 0, values.length);
        return t;
    }

    /** A host tensor of 16-bit elements ({@code bf16} or {@code f16} bits) holding {@code values}. */
    public static Tensor ofShorts(Arena arena, DType dtype, short[] values, long... shape) {
        if (dtype.byteSize() != 2) throw new IllegalArgumentException("argument 'dtype' must be bf16 or f16, got " + dtype.label());
        Tensor t = allocate(arena, dtype, shapeFor(values.length, shape));
        MemorySegment.copy(values, 0, t.segment, I16, 0, values.length);
        return t;
    }

    /** A host tensor of bytes ({@code e4m3} or {@code e5m2} codes) holding {@code values}. */
    public static Tensor ofBytes(Arena arena, DType dtype, byte[] values, long... shape) {
        if (dtype.byteSize() != 1) throw new IllegalArgumentException("argument 'dtype' must be e4m3 or e5m2, got " + dtype.label());
        Tensor t = allocate(arena, dtype, shapeFor(values.length, shape));
        MemorySegment.copy(values, 0, t.segment, ValueLayout.JAVA_BYTE, 0, values.length);
        return t;
    }

    /** A host i32 tensor holding {@code values}. */
    public static Tensor ofInts(Arena arena, int[] values, long... shape) {
        Tensor t = allocate(arena, DType.I32, shapeFor(values.length, shape));
        MemorySegment.copy(values, 0, t.segment, I32, 0, values.length);
        return t;
    }

    private static long[] shapeFor(int length, long[] shape) {
        if (shape.length == 0) return new long[] {length};
        if (numelOf(shape) != length)
            throw new IllegalArgumentException("argument 'shape' " + Arrays.toString(shape) + " holds " + numelOf(shape)
                    + " elements, the array has " + length);
        return shape;
    }

    // ------------------------------------------------------------------ reading

    /** The elements as floats: exact for every dtype but i32 (decoded f16/bf16/e4m3/e5m2). Host only. */
    public float[] toFloatArray() {
        requireContiguous("this");
        int n = Math.toIntExact(numel());
        MemorySegment s = hostSegment("this");
        float[] out = new float[n];
        switch (dtype) {
            case F32 -> MemorySegment.copy(s, F32, 0, out, 0, n);
            case BF16 -> { for (int i = 0; i < n; i++) out[i] = Float.intBitsToFloat((s.getAtIndex(I16, i) & 0xffff) << 16); }
            case F16 -> { for (int i = 0; i < n; i++) out[i] = Float.float16ToFloat(s.getAtIndex(I16, i)); }
            case E4M3, E5M2 -> {
                for (int i = 0; i < n; i++) out[i] = Fp8.decode(dtype, s.get(ValueLayout.JAVA_BYTE, i));
            }
            case I32 -> throw new IllegalStateException("tensor is i32: use toIntArray()");
        }
        return out;
    }

    /** The raw 16-bit elements (bf16 or f16 bits). Host only. */
    public short[] toShortArray() {
        if (dtype.byteSize() != 2) throw new IllegalStateException("tensor is " + dtype.label() + ", not 16-bit");
        requireContiguous("this");
        return hostSegment("this").toArray(I16);
    }

    /** The raw bytes of the elements (fp8 codes for e4m3/e5m2). Host only. */
    public byte[] toByteArray() {
        requireContiguous("this");
        return hostSegment("this").toArray(ValueLayout.JAVA_BYTE);
    }

    /** The i32 elements. Host only. */
    public int[] toIntArray() {
        if (dtype != DType.I32) throw new IllegalStateException("tensor is " + dtype.label() + ", not i32");
        requireContiguous("this");
        return hostSegment("this").toArray(I32);
    }

    // ------------------------------------------------------------------ views

    /** A contiguous view with another shape of the same element count. */
    public Tensor reshape(long... newShape) {
        requireContiguous("this");
        if (numelOf(newShape) != numel())
            throw new IllegalArgumentException("argument 'newShape' " + Arrays.toString(newShape) + " holds "
                    + numelOf(newShape) + " elements, the tensor " + numel());
        return new Tensor(segment, dtype, newShape.clone(), contiguousStrides(newShape), owner);
    }

    /** Rows [start, end) of the first dimension (contiguous if this is). */
    public Tensor slice(long start, long end) {
        if (shape.length == 0) throw new IllegalStateException("a scalar has no rows");
        if (start < 0 || end < start || end > shape[0])
            throw new IndexOutOfBoundsException("slice [" + start + ", " + end + ") of dimension 0 of size " + shape[0]);
        long[] s = shape.clone();
        s[0] = end - start;
        long offset = start * strides[0] * dtype.byteSize();
        long bytes = numelOf(s) == 0 ? 0 : spanBytes(s, strides, dtype);
        return new Tensor(segment.asSlice(offset, bytes), dtype, s, strides.clone(), owner);
    }

    /** A view with dimensions {@code a} and {@code b} swapped (not contiguous in general). */
    public Tensor transpose(int a, int b) {
        Objects.checkIndex(a, shape.length);
        Objects.checkIndex(b, shape.length);
        long[] s = shape.clone(), st = strides.clone();
        s[a] = shape[b]; s[b] = shape[a];
        st[a] = strides[b]; st[b] = strides[a];
        return new Tensor(segment, dtype, s, st, owner);
    }

    // ------------------------------------------------------------------ facts

    public DType dtype() { return dtype; }

    /** A copy of the shape. */
    public long[] shape() { return shape.clone(); }

    /** Size of dimension {@code i}; negative i counts from the end. */
    public long dim(int i) { return shape[i < 0 ? shape.length + i : i]; }

    public int rank() { return shape.length; }

    /** A copy of the element strides. */
    public long[] strides() { return strides.clone(); }

    public long numel() { return numelOf(shape); }

    /** Bytes of the elements (numel * element size). */
    public long byteSize() { return numel() * dtype.byteSize(); }

    /** True if the elements are dense in row-major order. */
    public boolean isContiguous() {
        if (numel() <= 1) return true;
        long expected = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            if (shape[i] != 1 && strides[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }

    /** True for device memory of a CUDA context. */
    public boolean isDevice() { return owner != null; }

    /** The CUDA context owning this device tensor, or null for host memory. */
    public Context owner() { return owner; }

    /**
     * The memory: for host tensors the dereferenceable segment; for device tensors a segment that
     * only carries the device address and size (never read or write it from Java).
     */
    public MemorySegment segment() { return segment; }

    /** The host segment, or an exception naming {@code arg} for device tensors / closed arenas. */
    MemorySegment hostSegment(String arg) {
        if (owner != null) throw new IllegalArgumentException("argument '" + arg + "' is in device memory of "
                + owner.device().id() + "; copy it to a host tensor first");
        if (!segment.scope().isAlive()) throw new IllegalStateException("argument '" + arg + "': its arena is closed");
        return segment;
    }

    void requireContiguous(String arg) {
        if (!isContiguous())
            throw new IllegalArgumentException("argument '" + arg + "' is not contiguous (strides "
                    + Arrays.toString(strides) + " for shape " + Arrays.toString(shape) + ")");
    }

    @Override
    public String toString() {
        return "Tensor[" + dtype.label() + Arrays.toString(shape) + (owner != null ? " on " + owner.device().id() : "") + "]";
    }

    // ------------------------------------------------------------------ shape arithmetic

    static long numelOf(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException("argument 'shape' has a negative dimension: " + Arrays.toString(shape));
            try {
                n = Math.multiplyExact(n, d);
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("argument 'shape' " + Arrays.toString(shape) + " has more than 2^63 - 1 elements");
            }
        }
        return n;
    }

    static long byteSizeOf(DType dtype, long[] shape) {
        Objects.requireNonNull(dtype, "argument 'dtype' is null");
        Objects.requireNonNull(shape, "argument 'shape' is null");
        long n = numelOf(shape);
        if (n > Long.MAX_VALUE / dtype.byteSize())
            throw new IllegalArgumentException("argument 'shape' " + Arrays.toString(shape) + " has more than 2^63 - 1 bytes of "
                    + dtype.label());
        return n * dtype.byteSize();
    }

    static long[] contiguousStrides(long[] shape) {
        long[] st = new long[shape.length];
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            st[i] = s;
            s *= Math.max(shape[i], 1);
        }
        return st;
    }

    private static long spanBytes(long[] shape, long[] strides, DType dtype) {
        long last = 0;
        for (int i = 0; i < shape.length; i++) last += (shape[i] - 1) * strides[i];
        return (last + 1) * dtype.byteSize();
    }
}
