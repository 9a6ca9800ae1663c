package dev.dsk4j.model;

import dev.dsk4j.DType;
import dev.dsk4j.Tensor;
import dev.dsk4j.internal.Json;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Writes {@code .safetensors} files that {@link SafeTensors} and the Hugging Face libraries read:
 * the 8-byte little-endian header size, the JSON header padded with spaces to a multiple of 8
 * bytes, then the data, packed without gaps in order of decreasing element size so that every
 * tensor starts at a multiple of its element size (the header lists the tensors in the order
 * given). The file is written to a temporary file in the same directory, forced to disk, then
 * moved over {@code file} atomically (where the file system allows), so a reader never sees a
 * partial file.
 */
public final class SafeTensorsWriter {
    private SafeTensorsWriter() {}

    /** One tensor to write: its {@code data} must hold exactly {@code numel(shape) * dtype.byteSize()} bytes. */
    public record Entry(String name, DType dtype, long[] shape, MemorySegment data) {
        public Entry {
            Objects.requireNonNull(name, "argument 'name' is null");
            Objects.requireNonNull(dtype, "argument 'dtype' is null");
            Objects.requireNonNull(data, "argument 'data' is null");
            shape = Objects.requireNonNull(shape, "argument 'shape' is null").clone();
            if (name.equals("__metadata__")) throw new IllegalArgumentException("argument 'name' must not be __metadata__");
            long n = 1;
            for (long d : shape) {
                if (d < 0) throw new IllegalArgumentException("argument 'shape' of tensor '" + name
                        + "' has a negative dimension: " + Arrays.toString(shape));
                n = Math.multiplyExact(n, d);
            }
            long bytes = Math.multiplyExact(n, dtype.byteSize());
            if (data.byteSize() != bytes)
                throw new IllegalArgumentException("argument 'data' of tensor '" + name + "' holds " + data.byteSize()
                        + " bytes, " + dtype.label() + " " + Arrays.toString(shape) + " needs " + bytes);
        }

        /** An entry for a contiguous host tensor. */
        public static Entry of(String name, Tensor tensor) {
            Objects.requireNonNull(tensor, "argument 'tensor' is null");
            if (tensor.isDevice()) throw new IllegalArgumentException("argument 'tensor' ('" + name + "') is in device memory");
            if (!tensor.isContiguous()) throw new IllegalArgumentException("argument 'tensor' ('" + name + "') is not contiguous");
            return new Entry(name, tensor.dtype(), tensor.shape(), tensor.segment());
        }

        /** A copy of the shape. */
        @Override
        public long[] shape() { return shape.clone(); }

        @Override
        public String toString() {
            return "Entry[" + name + " " + dtype.label() + Arrays.toString(shape) + "]";
        }
    }

    /**
     * Writes {@code tensors} and {@code metadata} (may be null or empty: no {@code __metadata__}) to
     * {@code file}. Names must be unique.
     */
    public static void write(Path file, Map<String, String> metadata, List<Entry> tensors) throws IOException {
        Objects.requireNonNull(file, "argument 'file' is null");
        Objects.requireNonNull(tensors, "argument 'tensors' is null");
        Set<String> seen = new HashSet<>();
        for (Entry e : tensors) {
            Objects.requireNonNull(e, "argument 'tensors' holds null");
            if (!seen.add(e.name())) throw new IllegalArgumentException("argument 'tensors' holds '" + e.name() + "' twice");
        }
        // data order: decreasing element size (stable), so each offset is a multiple of its element size
        List<Entry> dataOrder = new ArrayList<>(tensors);
        dataOrder.sort(Comparator.comparingInt((Entry e) -> e.dtype().byteSize()).reversed());
        Map<String, long[]> offsets = new LinkedHashMap<>();
        long offset = 0;
        for (Entry e : dataOrder) {
            long end = Math.addExact(offset, e.data().byteSize());
            offsets.put(e.name(), new long[] {offset, end});
            offset = end;
        }
        Map<String, Object> header = new LinkedHashMap<>();
        if (metadata != null && !metadata.isEmpty()) {
            Map<String, Object> m = new LinkedHashMap<>();
            metadata.forEach((k, v) -> m.put(Objects.requireNonNull(k, "argument 'metadata' has a null key"),
                    Objects.requireNonNull(v, "argument 'metadata' has a null value for '" + k + "'")));
            header.put("__metadata__", m);
        }
        for (Entry e : tensors) {
            Map<String, Object> t = new LinkedHashMap<>();
            t.put("dtype", SafeTensors.dtypeName(e.dtype()));
            List<Object> shape = new ArrayList<>();
            for (long d : e.shape) shape.add(d);
            t.put("shape", shape);
            long[] o = offsets.get(e.name());
            t.put("data_offsets", List.of(o[0], o[1]));
            header.put(e.name(), t);
        }
        byte[] json = Json.write(header).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) head.put((byte) ' ');
        head.flip();

        Path target = file.toAbsolutePath();
        Path dir = target.getParent();
        Path tmp = Files.createTempFile(dir, "." + target.getFileName() + ".", ".tmp");
        boolean done = false;
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                writeFully(ch, head);
                for (Entry e : dataOrder) {
                    MemorySegment d = e.data();
                    for (long at = 0; at < d.byteSize(); at += 1L << 30) {
                        writeFully(ch, d.asSlice(at, Math.min(1L << 30, d.byteSize() - at)).asByteBuffer());
                    }
                }
                ch.force(true);
            }
            try { // createTempFile makes the file owner-only; a checkpoint is ordinary data
                Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
            } catch (UnsupportedOperationException x) {
                // not a POSIX file system: keep its default
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException x) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
        } finally {
            if (!done) Files.deleteIfExists(tmp);
        }
    }

    /**
     * Writes {@code dir/model.safetensors.index.json}: {@code {"metadata": {"total_size": totalSize},
     * "weight_map": {tensor name: file name}}} (the Hugging Face layout {@link Checkpoint#open} reads),
     * through a temporary file moved into place.
     */
    public static void writeIndex(Path dir, long totalSize, Map<String, String> weightMap) throws IOException {
        Objects.requireNonNull(dir, "argument 'dir' is null");
        Objects.requireNonNull(weightMap, "argument 'weightMap' is null");
        if (totalSize < 0) throw new IllegalArgumentException("argument 'totalSize' must not be negative, got " + totalSize);
        Map<String, Object> map = new LinkedHashMap<>();
        weightMap.forEach((k, v) -> map.put(Objects.requireNonNull(k, "argument 'weightMap' has a null key"),
                Objects.requireNonNull(v, "argument 'weightMap' has a null file for '" + k + "'")));
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("metadata", Map.of("total_size", totalSize));
        root.put("weight_map", map);
        Path target = dir.resolve(Checkpoint.INDEX).toAbsolutePath();
        Path tmp = Files.createTempFile(target.getParent(), "." + Checkpoint.INDEX + ".", ".tmp");
        boolean done = false;
        try {
            Files.writeString(tmp, Json.write(root) + "\n", StandardCharsets.UTF_8);
            try {
                Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
            } catch (UnsupportedOperationException x) {
                // not a POSIX file system: keep its default
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException x) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
        } finally {
            if (!done) Files.deleteIfExists(tmp);
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }
}
