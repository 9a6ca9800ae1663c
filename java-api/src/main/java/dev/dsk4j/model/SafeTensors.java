package dev.dsk4j.model;

import dev.dsk4j.DType;
import dev.dsk4j.Tensor;
import dev.dsk4j.internal.Json;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One {@code .safetensors} file, memory-mapped read-only: an 8-byte little-endian header size
 * {@code n}, {@code n} bytes of UTF-8 JSON ({@code __metadata__}: string to string; per tensor
 * {@code dtype}, {@code shape}, {@code data_offsets [begin, end]} relative to the data that
 * follows the header), then the data.
 *
 * <p>The whole file is mapped through FFM into this object's own shared {@link Arena}: every
 * {@link #tensor} is a zero-copy view of the mapping and lives until {@link #close()}, which
 * unmaps the file; any later use of this object or of its tensors throws
 * {@link IllegalStateException}. Instances are safe to use from several threads.
 *
 * <p>{@link #open} validates the whole header before returning (see {@link #open} for the list);
 * a malformed file is a {@link CheckpointException} whose message names the file and, where one
 * is involved, the tensor. FFM bounds checks make it impossible to read outside the mapping.
 * (As with any memory map, truncating the file on disk while it is mapped is not supported.)
 */
public final class SafeTensors implements AutoCloseable {
    /** The largest header accepted, in bytes (the limit of the reference Rust implementation). */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    private static final ValueLayout.OfLong LE_LONG =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Element size in bits of every safetensors dtype (those dsk4j cannot compute on included). */
    private static final Map<String, Integer> BITS = Map.ofEntries(
            Map.entry("BOOL", 8), Map.entry("U8", 8), Map.entry("I8", 8),
            Map.entry("F8_E4M3", 8), Map.entry("F8_E5M2", 8), Map.entry("F8_E8M0", 8),
            Map.entry("F4", 4), Map.entry("F6_E2M3", 6), Map.entry("F6_E3M2", 6),
            Map.entry("I16", 16), Map.entry("U16", 16), Map.entry("F16", 16), Map.entry("BF16", 16),
            Map.entry("I32", 32), Map.entry("U32", 32), Map.entry("F32", 32),
            Map.entry("I64", 64), Map.entry("U64", 64), Map.entry("F64", 64), Map.entry("C64", 64));

    /**
     * One tensor of the header. {@code dtype} is the safetensors name ({@code F32}, {@code BF16},
     * {@code F8_E4M3}, ...); {@code begin}/{@code end} are the {@code data_offsets}, relative to the
     * start of the data (just after the header); {@code file} is the file that holds it.
     */
    public record TensorInfo(String name, String dtype, long[] shape, long begin, long end, Path file) {
        public TensorInfo {
            Objects.requireNonNull(name, "argument 'name' is null");
            Objects.requireNonNull(dtype, "argument 'dtype' is null");
            Objects.requireNonNull(file, "argument 'file' is null");
            shape = Objects.requireNonNull(shape, "argument 'shape' is null").clone();
        }

        /** A copy of the shape. */
        @Override
        public long[] shape() { return shape.clone(); }

        /** Number of elements (1 for a scalar). */
        public long numel() {
            long n = 1;
            for (long d : shape) n = Math.multiplyExact(n, d);
            return n;
        }

        /** Bytes of the data ({@code end - begin}). */
        public long byteSize() { return end - begin; }

        /**
         * The dsk4j dtype: F32, BF16, F16, F8_E4M3 → E4M3, F8_E5M2 → E5M2, I32. Other safetensors
         * dtypes (I64, F64, BOOL, U8, ...) are listed by the header but have none: a
         * {@link CheckpointException} naming the file, the tensor and the dtype.
         */
        public DType dsk4jType() {
            DType d = dtypeOf(dtype);
            if (d == null)
                throw new CheckpointException(fileName(file) + ": tensor '" + name + "' has dtype " + dtype
                        + ", which dsk4j does not compute on (F32, BF16, F16, F8_E4M3, F8_E5M2, I32)");
            return d;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof TensorInfo t && name.equals(t.name) && dtype.equals(t.dtype)
                    && Arrays.equals(shape, t.shape) && begin == t.begin && end == t.end && file.equals(t.file);
        }

        @Override
        public int hashCode() {
            return Objects.hash(name, dtype, Arrays.hashCode(shape), begin, end, file);
        }

        @Override
        public String toString() {
            return "TensorInfo[" + name + " " + dtype + Arrays.toString(shape) + " [" + begin + ", " + end + ") in "
                    + fileName(file) + "]";
        }
    }

    private final Path file;
    private final String where;
    private final Arena arena;
    private final MemorySegment mapping;
    private final long dataStart;
    private final Map<String, String> metadata;
    private final Map<String, TensorInfo> infos;
    private final Set<String> names;
    private final ConcurrentHashMap<String, MemorySegment> alignedCopies = new ConcurrentHashMap<>();
    private volatile boolean closed;

    private SafeTensors(Path file, Arena arena, MemorySegment mapping, long dataStart, Map<String, String> metadata,
                        Map<String, TensorInfo> infos) {
        this.file = file;
        this.where = fileName(file);
        this.arena = arena;
        this.mapping = mapping;
        this.dataStart = dataStart;
        this.metadata = Collections.unmodifiableMap(metadata);
        this.infos = infos;
        this.names = Collections.unmodifiableSequencedSet(new LinkedHashSet<>(infos.keySet()));
    }

    /**
     * Maps {@code file} and validates its header. Every one of these is a {@link CheckpointException}
     * naming the file (and the tensor): a file shorter than 8 bytes; a header size larger than the
     * file or than {@link #MAX_HEADER_BYTES}; a header that is not UTF-8 or not a JSON object; a
     * {@code __metadata__} that is not an object of strings; an entry that is not an object or lacks
     * {@code dtype} (a known safetensors dtype string), {@code shape} (non-negative integers whose
     * product does not overflow) or {@code data_offsets} ({@code [begin, end]} integers with
     * {@code 0 <= begin <= end <=} data size); {@code end - begin != numel * element size}; two
     * tensors whose bytes overlap. Gaps between tensors are allowed.
     *
     * @throws IOException when the file cannot be read (missing, not a regular file, ...)
     */
    public static SafeTensors open(Path file) throws IOException {
        Objects.requireNonNull(file, "argument 'file' is null");
        String where = fileName(file);
        if (!Files.isRegularFile(file)) {
            if (!Files.exists(file)) throw new java.nio.file.NoSuchFileException(file.toString());
            throw new IOException(file + ": not a regular file");
        }
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8)
                throw new CheckpointException(where + ": " + size + " bytes, shorter than the 8-byte header size");
            MemorySegment mapping = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long n = mapping.get(LE_LONG, 0);
            if (n < 0 || n > size - 8)
                throw new CheckpointException(where + ": header size " + Long.toUnsignedString(n)
                        + " is larger than the " + (size - 8) + " bytes after the size field");
            if (n > MAX_HEADER_BYTES)
                throw new CheckpointException(where + ": header size " + n + " is larger than the limit of "
                        + MAX_HEADER_BYTES + " bytes");
            String text = decodeUtf8(where, mapping.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE));
            Object parsed;
            try {
                parsed = Json.parse(text);
            } catch (IllegalArgumentException e) {
                throw new CheckpointException(where + ": header is not valid JSON (" + e.getMessage() + ")", e);
            }
            if (!(parsed instanceof Map<?, ?> header))
                throw new CheckpointException(where + ": header is not a JSON object");
            long dataStart = 8 + n, dataSize = size - dataStart;
            Map<String, String> metadata = new LinkedHashMap<>();
            Map<String, TensorInfo> infos = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : header.entrySet()) {
                String name = (String) e.getKey();
                if (name.equals("__metadata__")) metadata = metadata(where, e.getValue());
                else infos.put(name, entry(file, where, name, e.getValue(), dataSize));
            }
            checkOverlaps(where, infos.values());
            return new SafeTensors(file, arena, mapping, dataStart, metadata, infos);
        } catch (Throwable t) {
            arena.close();
            throw t;
        }
    }

    private static String decodeUtf8(String where, byte[] bytes) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new CheckpointException(where + ": header is not valid UTF-8", e);
        }
    }

    private static Map<String, String> metadata(String where, Object value) {
        if (!(value instanceof Map<?, ?> m))
            throw new CheckpointException(where + ": __metadata__ is not a JSON object of strings");
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> me : m.entrySet()) {
            if (!(me.getValue() instanceof String sv))
                throw new CheckpointException(where + ": __metadata__ key '" + me.getKey() + "' is not a string ("
                        + Json.write(me.getValue()) + ")");
            out.put((String) me.getKey(), sv);
        }
        return out;
    }

    private static TensorInfo entry(Path file, String where, String name, Object value, long dataSize) {
        String ctx = where + ": tensor '" + name + "'";
        if (!(value instanceof Map<?, ?> t)) throw new CheckpointException(ctx + " is not a JSON object");
        Object dt = t.get("dtype"), sh = t.get("shape"), of = t.get("data_offsets");
        if (dt == null) throw new CheckpointException(ctx + " has no dtype");
        if (sh == null) throw new CheckpointException(ctx + " has no shape");
        if (of == null) throw new CheckpointException(ctx + " has no data_offsets");
        if (!(dt instanceof String dtype)) throw new CheckpointException(ctx + ": dtype is not a string: " + Json.write(dt));
        Integer bits = BITS.get(dtype);
        if (bits == null) throw new CheckpointException(ctx + ": unknown dtype '" + dtype + "'");
        if (!(sh instanceof List<?> shapeList))
            throw new CheckpointException(ctx + ": shape is not an array: " + Json.write(sh));
        long[] shape = new long[shapeList.size()];
        long numel = 1;
        for (int k = 0; k < shape.length; k++) {
            if (!(shapeList.get(k) instanceof Long d))
                throw new CheckpointException(ctx + ": shape " + Json.write(shapeList) + " holds a non-integer");
            if (d < 0) throw new CheckpointException(ctx + ": shape " + Json.write(shapeList) + " has a negative dimension");
            shape[k] = d;
            try {
                numel = Math.multiplyExact(numel, d);
            } catch (ArithmeticException x) {
                throw new CheckpointException(ctx + ": shape " + Json.write(shapeList) + " overflows the element count");
            }
        }
        if (!(of instanceof List<?> offs) || offs.size() != 2 || !(offs.get(0) instanceof Long begin)
                || !(offs.get(1) instanceof Long end))
            throw new CheckpointException(ctx + ": data_offsets " + Json.write(of) + " is not [begin, end] integers");
        if (begin < 0 || end < begin || end > dataSize)
            throw new CheckpointException(ctx + ": data_offsets [" + begin + ", " + end + "] are not within the "
                    + dataSize + " bytes of data (0 <= begin <= end <= data size)");
        long totalBits;
        try {
            totalBits = Math.multiplyExact(numel, (long) bits);
        } catch (ArithmeticException x) {
            throw new CheckpointException(ctx + ": shape " + Json.write(shapeList) + " overflows the byte count");
        }
        if (totalBits % 8 != 0)
            throw new CheckpointException(ctx + ": " + dtype + " " + Json.write(shapeList) + " is not a whole number of bytes");
        if (end - begin != totalBits / 8)
            throw new CheckpointException(ctx + ": data_offsets [" + begin + ", " + end + "] span " + (end - begin)
                    + " bytes, " + dtype + " " + Json.write(shapeList) + " needs " + totalBits / 8);
        return new TensorInfo(name, dtype, shape, begin, end, file);
    }

    private static void checkOverlaps(String where, java.util.Collection<TensorInfo> all) {
        List<TensorInfo> sorted = new ArrayList<>();
        for (TensorInfo t : all) if (t.end() > t.begin()) sorted.add(t);
        sorted.sort(Comparator.comparingLong(TensorInfo::begin));
        for (int k = 1; k < sorted.size(); k++) {
            TensorInfo a = sorted.get(k - 1), b = sorted.get(k);
            if (b.begin() < a.end())
                throw new CheckpointException(where + ": tensor '" + b.name() + "' (bytes [" + b.begin() + ", " + b.end()
                        + ")) overlaps tensor '" + a.name() + "' (bytes [" + a.begin() + ", " + a.end() + "))");
        }
    }

    // ------------------------------------------------------------------ facts

    /** The file (as given to {@link #open}). */
    public Path file() { return file; }

    /** The {@code __metadata__} strings (empty when absent), in header order. */
    public Map<String, String> metadata() {
        ensureOpen();
        return metadata;
    }

    /** The tensor names in header order. */
    public Set<String> names() {
        ensureOpen();
        return names;
    }

    public boolean contains(String name) {
        ensureOpen();
        return infos.containsKey(name);
    }

    /** The header entry of {@code name}; a {@link CheckpointException} when the file has no such tensor. */
    public TensorInfo info(String name) {
        ensureOpen();
        Objects.requireNonNull(name, "argument 'name' is null");
        TensorInfo t = infos.get(name);
        if (t == null) throw new CheckpointException(where + ": no tensor '" + name + "'");
        return t;
    }

    /** Sum of the bytes of every tensor. */
    public long totalBytes() {
        ensureOpen();
        long s = 0;
        for (TensorInfo t : infos.values()) s += t.byteSize();
        return s;
    }

    // ------------------------------------------------------------------ data

    /**
     * The tensor {@code name} as a host {@link Tensor} of its {@link TensorInfo#dsk4jType() dsk4j type},
     * valid until {@link #close()}. Zero copy: a view of the mapping, whenever the data's address is a
     * multiple of the element size (always so for files written by {@link SafeTensorsWriter} and by
     * the Hugging Face libraries). A tensor whose data is <em>not</em> aligned to its element size is
     * copied once into an aligned buffer of this file's arena (freed by {@link #close()}); later calls
     * return views of that copy.
     */
    public Tensor tensor(String name) {
        TensorInfo t = info(name);
        DType dtype = t.dsk4jType();
        MemorySegment data = mapping.asSlice(dataStart + t.begin(), t.byteSize());
        if (data.address() % dtype.byteSize() != 0) data = alignedCopy(name, data);
        return Tensor.wrap(data, dtype, t.shape());
    }

    /** True when {@link #tensor(String)} of {@code name} is (or would be) a copy, not a view of the mapping. */
    public boolean isCopied(String name) {
        TensorInfo t = info(name);
        Integer bits = BITS.get(t.dtype());
        long size = Math.max(1, bits / 8);
        return (mapping.address() + dataStart + t.begin()) % size != 0;
    }

    /** The raw bytes of tensor {@code name} (any dtype, including those dsk4j does not compute on): a read-only view. */
    public MemorySegment bytes(String name) {
        TensorInfo t = info(name);
        return mapping.asSlice(dataStart + t.begin(), t.byteSize());
    }

    private MemorySegment alignedCopy(String name, MemorySegment data) {
        return alignedCopies.computeIfAbsent(name, k -> {
            ensureOpen();
            MemorySegment copy = arena.allocate(Math.max(1, data.byteSize()), 64);
            MemorySegment.copy(data, 0, copy, 0, data.byteSize());
            return copy.asSlice(0, data.byteSize()).asReadOnly();
        });
    }

    /**
     * Unmaps the file (idempotent). Tensors from {@link #tensor} become invalid. While a native op
     * is running on one of them the arena cannot close: {@link IllegalStateException}, and this
     * object stays open (call again later).
     */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        try {
            arena.close();
        } catch (IllegalStateException e) {
            closed = false;
            throw e;
        }
    }

    private void ensureOpen() {
        if (closed) throw new IllegalStateException(where + ": closed");
    }

    @Override
    public String toString() {
        return "SafeTensors[" + file + ", " + infos.size() + " tensors" + (closed ? ", closed" : "") + "]";
    }

    // ------------------------------------------------------------------ dtype names

    /** The dsk4j dtype of a safetensors dtype name, or null when there is none. */
    public static DType dtypeOf(String safetensorsDtype) {
        return switch (safetensorsDtype) {
            case "F32" -> DType.F32;
            case "BF16" -> DType.BF16;
            case "F16" -> DType.F16;
            case "F8_E4M3" -> DType.E4M3;
            case "F8_E5M2" -> DType.E5M2;
            case "I32" -> DType.I32;
            default -> null;
        };
    }

    /** The safetensors dtype name of a dsk4j dtype ("F32", "BF16", "F16", "F8_E4M3", "F8_E5M2", "I32"). */
    public static String dtypeName(DType dtype) {
        return switch (Objects.requireNonNull(dtype, "argument 'dtype' is null")) {
            case F32 -> "F32";
            case BF16 -> "BF16";
            case F16 -> "F16";
            case E4M3 -> "F8_E4M3";
            case E5M2 -> "F8_E5M2";
            case I32 -> "I32";
        };
    }

    static String fileName(Path file) {
        Path f = file.getFileName();
        return f == null ? file.toString() : f.toString();
    }
}
