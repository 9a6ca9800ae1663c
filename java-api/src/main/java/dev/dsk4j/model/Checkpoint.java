package dev.dsk4j.model;

import dev.dsk4j.DType;
import dev.dsk4j.Tensor;
import dev.dsk4j.internal.Json;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The weights of a Hugging Face checkpoint directory: {@code model.safetensors.index.json} (its
 * {@code weight_map}: tensor name → file) and the {@code .safetensors} files it names, or, without
 * an index, every {@code *.safetensors} file of the directory. Every file is memory-mapped
 * ({@link SafeTensors}): opening costs the headers only, and {@link #tensor} is a zero-copy view
 * valid until {@link #close()}. Safe to use from several threads.
 */
public final class Checkpoint implements AutoCloseable {
    /** The name of the index file. */
    public static final String INDEX = "model.safetensors.index.json";

    private final Path directory;
    private final List<SafeTensors> files;
    private final Map<String, SafeTensors> fileOf;
    private final Set<String> names;
    private volatile boolean closed;

    private Checkpoint(Path directory, List<SafeTensors> files, Map<String, SafeTensors> fileOf) {
        this.directory = directory;
        this.files = List.copyOf(files);
        this.fileOf = fileOf;
        this.names = Collections.unmodifiableSequencedSet(new LinkedHashSet<>(fileOf.keySet()));
    }

    /**
     * Opens the checkpoint in {@code dir}. With {@value #INDEX}: its tensors are exactly those of
     * {@code weight_map} (in its order); every file it names must exist in {@code dir} and hold the
     * tensors mapped to it, else a {@link CheckpointException} naming the tensor and the file
     * (tensors of those files that the map does not list are not part of the checkpoint). Without
     * an index: the tensors of every {@code *.safetensors} file (files in name order, tensors in
     * header order); a name in two files is a {@link CheckpointException} naming both, and so is a
     * directory without any.
     *
     * @throws IOException when the directory or a file cannot be read
     */
    public static Checkpoint open(Path dir) throws IOException {
        Objects.requireNonNull(dir, "argument 'dir' is null");
        if (!Files.exists(dir)) throw new NoSuchFileException(dir.toString());
        if (!Files.isDirectory(dir)) throw new NotDirectoryException(dir.toString());
        Path index = dir.resolve(INDEX);
        Map<String, SafeTensors> opened = new LinkedHashMap<>();
        try {
            Map<String, SafeTensors> fileOf = Files.exists(index) ? fromIndex(dir, index, opened) : fromDirectory(dir, opened);
            return new Checkpoint(dir, new ArrayList<>(opened.values()), fileOf);
        } catch (Throwable t) {
            for (SafeTensors st : opened.values()) st.close();
            throw t;
        }
    }

    private static Map<String, SafeTensors> fromIndex(Path dir, Path index, Map<String, SafeTensors> opened)
            throws IOException {
        String text;
        try {
            text = Files.readString(index);
        } catch (CharacterCodingException e) {
            throw new CheckpointException(INDEX + ": not valid UTF-8", e);
        }
        Object parsed;
        try {
            parsed = Json.parse(text);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(INDEX + ": not valid JSON (" + e.getMessage() + ")", e);
        }
        if (!(parsed instanceof Map<?, ?> root)) throw new CheckpointException(INDEX + ": not a JSON object");
        if (!(root.get("weight_map") instanceof Map<?, ?> weightMap))
            throw new CheckpointException(INDEX + ": no 'weight_map' object");
        Path base = dir.toAbsolutePath().normalize();
        Map<String, SafeTensors> fileOf = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : weightMap.entrySet()) {
            String name = (String) e.getKey();
            if (!(e.getValue() instanceof String fileName))
                throw new CheckpointException(INDEX + ": tensor '" + name + "' maps to " + Json.write(e.getValue())
                        + ", not a file name");
            Path file = base.resolve(fileName).normalize();
            if (fileName.isEmpty() || !file.startsWith(base) || file.equals(base))
                throw new CheckpointException(INDEX + ": tensor '" + name + "' maps to '" + fileName
                        + "', which is not a file inside " + dir);
            SafeTensors st = opened.get(fileName);
            if (st == null) {
                if (!Files.isRegularFile(file))
                    throw new CheckpointException(INDEX + ": tensor '" + name + "' maps to file '" + fileName
                            + "', which does not exist in " + dir);
                st = SafeTensors.open(file);
                opened.put(fileName, st);
            }
            if (!st.contains(name))
                throw new CheckpointException(fileName + ": has no tensor '" + name + "' (" + INDEX + " maps it there)");
            fileOf.put(name, st);
        }
        return fileOf;
    }

    private static Map<String, SafeTensors> fromDirectory(Path dir, Map<String, SafeTensors> opened) throws IOException {
        List<Path> found = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.safetensors")) {
            for (Path p : ds) if (Files.isRegularFile(p)) found.add(p);
        }
        found.sort(null);
        if (found.isEmpty())
            throw new CheckpointException(dir + ": no " + INDEX + " and no *.safetensors file");
        Map<String, SafeTensors> fileOf = new LinkedHashMap<>();
        for (Path p : found) {
            SafeTensors st = SafeTensors.open(p);
            opened.put(p.getFileName().toString(), st);
            for (String name : st.names()) {
                SafeTensors before = fileOf.putIfAbsent(name, st);
                if (before != null)
                    throw new CheckpointException(SafeTensors.fileName(p) + ": tensor '" + name + "' is also in "
                            + SafeTensors.fileName(before.file()) + " (and there is no " + INDEX + " to choose)");
            }
        }
        return fileOf;
    }

    // ------------------------------------------------------------------ facts

    /** The checkpoint directory (as given to {@link #open}). */
    public Path directory() { return directory; }

    /** The tensor names ({@code weight_map} order, or file then header order). */
    public Set<String> names() {
        ensureOpen();
        return names;
    }

    public boolean contains(String name) {
        ensureOpen();
        return fileOf.containsKey(name);
    }

    /** The files of this checkpoint. */
    public List<SafeTensors> files() {
        ensureOpen();
        return files;
    }

    /** Where and what tensor {@code name} is; a {@link CheckpointException} when the checkpoint has no such tensor. */
    public SafeTensors.TensorInfo info(String name) {
        return fileOf(name).info(name);
    }

    /** Tensor {@code name} as a zero-copy host view (see {@link SafeTensors#tensor}), valid until {@link #close()}. */
    public Tensor tensor(String name) {
        return fileOf(name).tensor(name);
    }

    /**
     * Tensor {@code name}, checked to have {@code dtype} and {@code shape}: otherwise a
     * {@link CheckpointException} such as {@code "model-00001-of-000163.safetensors: tensor
     * 'model.layers.0.self_attn.q_a_proj.weight' has shape [1536, 7168], expected [1536, 2048]"}.
     */
    public Tensor tensor(String name, DType dtype, long... shape) {
        Objects.requireNonNull(dtype, "argument 'dtype' is null");
        Objects.requireNonNull(shape, "argument 'shape' is null");
        SafeTensors st = fileOf(name);
        SafeTensors.TensorInfo t = st.info(name);
        String where = SafeTensors.fileName(t.file()) + ": tensor '" + name + "'";
        if (!dtype.equals(SafeTensors.dtypeOf(t.dtype())))
            throw new CheckpointException(where + " has dtype " + t.dtype() + ", expected "
                    + SafeTensors.dtypeName(dtype));
        if (!Arrays.equals(t.shape(), shape))
            throw new CheckpointException(where + " has shape " + Arrays.toString(t.shape()) + ", expected "
                    + Arrays.toString(shape));
        return st.tensor(name);
    }

    /** Sum of the bytes of the checkpoint's tensors. */
    public long totalBytes() {
        ensureOpen();
        long s = 0;
        for (Map.Entry<String, SafeTensors> e : fileOf.entrySet()) s += e.getValue().info(e.getKey()).byteSize();
        return s;
    }

    private SafeTensors fileOf(String name) {
        ensureOpen();
        Objects.requireNonNull(name, "argument 'name' is null");
        SafeTensors st = fileOf.get(name);
        if (st == null) throw new CheckpointException(directory + ": no tensor '" + name + "' in the checkpoint");
        return st;
    }

    /**
     * Unmaps every file (idempotent); tensors from {@link #tensor} become invalid. A file still in
     * use by a running native op stays mapped: {@link IllegalStateException}, and this checkpoint
     * stays open (call again later).
     */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        IllegalStateException failed = null;
        for (SafeTensors st : files) {
            try {
                st.close();
            } catch (IllegalStateException e) {
                if (failed == null) failed = e;
            }
        }
        if (failed != null) {
            closed = false;
            throw failed;
        }
    }

    private void ensureOpen() {
        if (closed) throw new IllegalStateException(directory + ": checkpoint closed");
    }

    @Override
    public String toString() {
        return "Checkpoint[" + directory + ", " + fileOf.size() + " tensors in " + files.size() + " files"
                + (closed ? ", closed" : "") + "]";
    }
}
