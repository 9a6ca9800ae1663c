package dev.dsk4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.longs;

import dev.dsk4j.DType;
import dev.dsk4j.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeTensorsTest {
    @TempDir
    Path dir;

    /** A file of 8-byte LE header size, {@code header} padded with spaces to a multiple of 8, then {@code data}. */
    static Path raw(Path file, String header, byte[] data) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        int padded = (h.length + 7) / 8 * 8;
        ByteBuffer b = ByteBuffer.allocate(8 + padded + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(padded).put(h);
        for (int k = h.length; k < padded; k++) b.put((byte) ' ');
        b.put(data);
        Files.write(file, b.array());
        return file;
    }

    static long[] randomShape(Random r) {
        long[] s = new long[r.nextInt(4)];
        for (int k = 0; k < s.length; k++) s[k] = r.nextInt(10) == 0 ? 0 : 1 + r.nextInt(6);
        return s;
    }

    static String randomString(Random r) {
        String alphabet = "ab.Z_09 \"\\/\n\té€😀";
        StringBuilder sb = new StringBuilder();
        int n = r.nextInt(12);
        for (int k = 0; k < n; k++) {
            int at = r.nextInt(alphabet.length());
            if (Character.isHighSurrogate(alphabet.charAt(at))) sb.append(alphabet, at, at + 2);
            else if (Character.isLowSurrogate(alphabet.charAt(at))) sb.append(alphabet, at - 1, at + 1);
            else sb.append(alphabet.charAt(at));
        }
        return sb.toString();
    }

    @Test
    void roundTripOfRandomTensorsOfEveryDtypeIsBitExactAndZeroCopy() {
        qt().withExamples(40).forAll(longs().all(), integers().between(0, 8)).checkAssert((seed, count) -> {
            Random r = new Random(seed);
            try (Arena arena = Arena.ofConfined()) {
                List<SafeTensorsWriter.Entry> entries = new ArrayList<>();
                Map<String, byte[]> expected = new LinkedHashMap<>();
                for (int k = 0; k < count; k++) {
                    DType dt = DType.values()[r.nextInt(DType.values().length)];
                    long[] shape = randomShape(r);
                    long n = 1;
                    for (long d : shape) n *= d;
                    byte[] bytes = new byte[(int) n * dt.byteSize()];
                    r.nextBytes(bytes);
                    MemorySegment seg = arena.allocate(Math.max(1, bytes.length)).asSlice(0, bytes.length);
                    MemorySegment.copy(bytes, 0, seg, ValueLayout.JAVA_BYTE, 0, bytes.length);
                    String name = "t" + k + "." + randomString(r);
                    entries.add(new SafeTensorsWriter.Entry(name, dt, shape, seg));
                    expected.put(name, bytes);
                }
                Map<String, String> meta = new LinkedHashMap<>();
                for (int k = r.nextInt(3); k > 0; k--) meta.put("k" + k + randomString(r), randomString(r));
                Path file = dir.resolve("rt-" + seed + ".safetensors");
                SafeTensorsWriter.write(file, meta, entries);
                try (SafeTensors st = SafeTensors.open(file)) {
                    assertEquals(meta, st.metadata());
                    assertEquals(new ArrayList<>(expected.keySet()), new ArrayList<>(st.names()));
                    long headerSize = readHeaderSize(file);
                    assertEquals(0, headerSize % 8, "header padded to a multiple of 8");
                    for (SafeTensorsWriter.Entry e : entries) {
                        SafeTensors.TensorInfo info = st.info(e.name());
                        assertEquals(SafeTensors.dtypeName(e.dtype()), info.dtype());
                        assertEquals(e.dtype(), info.dsk4jType());
                        assertArrayEquals(e.shape(), info.shape());
                        assertEquals(file, info.file());
                        assertFalse(st.isCopied(e.name()), "aligned data is never copied");
                        Tensor t = st.tensor(e.name());
                        assertEquals(e.dtype(), t.dtype());
                        assertArrayEquals(e.shape(), t.shape());
                        assertTrue(t.segment().isMapped(), "a view of the mapping");
                        assertTrue(t.segment().isReadOnly());
                        assertEquals(0, t.segment().address() % e.dtype().byteSize(), "aligned");
                        assertArrayEquals(expected.get(e.name()), t.toByteArray());
                    }
                }
            } catch (IOException x) {
                throw new AssertionError(x);
            }
        });
    }

    private static long readHeaderSize(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        return ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    @Test
    void valuesDecodeAndCloseUnmaps() throws IOException {
        Path file = dir.resolve("v.safetensors");
        try (Arena a = Arena.ofConfined()) {
            SafeTensorsWriter.write(file, Map.of("format", "pt"), List.of(
                    SafeTensorsWriter.Entry.of("w", Tensor.ofFloats(a, new float[] {1, -2.5f, 3, 4e-9f, 5, 6}, 2, 3)),
                    SafeTensorsWriter.Entry.of("b", Tensor.ofShorts(a, DType.BF16, new short[] {0x3f80, (short) 0xc000}, 2)),
                    SafeTensorsWriter.Entry.of("q", Tensor.ofBytes(a, DType.E4M3, new byte[] {0x7e, 1, (byte) 0x80}, 3)),
                    SafeTensorsWriter.Entry.of("i", Tensor.ofInts(a, new int[] {7, -8}, 1, 2))));
        }
        SafeTensors st = SafeTensors.open(file);
        Tensor w = st.tensor("w");
        assertArrayEquals(new float[] {1, -2.5f, 3, 4e-9f, 5, 6}, w.toFloatArray());
        assertArrayEquals(new float[] {1f, -2f}, st.tensor("b").toFloatArray());
        assertArrayEquals(new float[] {448f, 0x1p-9f, -0f}, st.tensor("q").toFloatArray());
        assertArrayEquals(new int[] {7, -8}, st.tensor("i").toIntArray());
        assertEquals(24 + 4 + 3 + 8, st.totalBytes());
        assertTrue(st.contains("w"));
        assertFalse(st.contains("x"));
        CheckpointException e = assertThrows(CheckpointException.class, () -> st.tensor("x"));
        assertTrue(e.getMessage().contains("v.safetensors") && e.getMessage().contains("'x'"), e.getMessage());
        st.close();
        st.close(); // idempotent
        assertThrows(IllegalStateException.class, () -> st.tensor("w"));
        assertThrows(IllegalStateException.class, st::names);
        assertThrows(IllegalStateException.class, () -> st.info("w"));
        assertThrows(IllegalStateException.class, w::toFloatArray, "a view dies with its file");
    }

    @Test
    void otherDtypesAreListedButHaveNoTensor() throws IOException {
        Path file = raw(dir.resolve("i64.safetensors"),
                "{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                        + "\"mask\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[16,19]},"
                        + "\"x\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[24,32]}}",
                new byte[32]);
        try (SafeTensors st = SafeTensors.open(file)) {
            assertEquals(List.of("ids", "mask", "x"), new ArrayList<>(st.names()));
            for (String[] c : new String[][] {{"ids", "I64"}, {"mask", "BOOL"}, {"x", "F64"}}) {
                assertEquals(c[1], st.info(c[0]).dtype());
                for (var call : List.<Runnable>of(() -> st.info(c[0]).dsk4jType(), () -> st.tensor(c[0]))) {
                    CheckpointException e = assertThrows(CheckpointException.class, call::run);
                    assertTrue(e.getMessage().contains("i64.safetensors") && e.getMessage().contains("'" + c[0] + "'")
                            && e.getMessage().contains(c[1]), e.getMessage());
                }
            }
            assertEquals(16, st.bytes("ids").byteSize());
        }
    }

    @Test
    void misalignedDataIsCopiedIntoAlignedMemory() throws IOException {
        byte[] data = new byte[1 + 8];
        data[0] = 42;
        ByteBuffer.wrap(data, 1, 8).order(ByteOrder.LITTLE_ENDIAN).putFloat(1.5f).putFloat(-7f);
        Path file = raw(dir.resolve("mis.safetensors"),
                "{\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                        + "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]}}", data);
        try (SafeTensors st = SafeTensors.open(file)) {
            assertTrue(st.isCopied("f"));
            Tensor f = st.tensor("f");
            assertEquals(0, f.segment().address() % 4);
            assertFalse(f.segment().isMapped());
            assertArrayEquals(new float[] {1.5f, -7f}, f.toFloatArray());
            assertEquals(f.segment().address(), st.tensor("f").segment().address(), "copied once");
        }
    }

    @Test
    void emptyFileOfTensorsAndZeroSizedTensors() throws IOException {
        Path file = raw(dir.resolve("empty.safetensors"),
                "{\"__metadata__\":{},\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
                        + "\"s\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", new byte[0]);
        try (SafeTensors st = SafeTensors.open(file)) {
            assertEquals(0, st.tensor("z").numel());
            assertArrayEquals(new long[] {0, 3}, st.tensor("z").shape());
        }
        Path none = raw(dir.resolve("none.safetensors"), "{}", new byte[0]);
        try (SafeTensors st = SafeTensors.open(none)) {
            assertTrue(st.names().isEmpty());
            assertTrue(st.metadata().isEmpty());
        }
    }

    // ------------------------------------------------------------------ malformed files

    private void assertMalformedFile(String fileName, byte[] content, String... mustContain) throws IOException {
        Path file = dir.resolve(fileName);
        Files.write(file, content);
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafeTensors.open(file).close());
        assertTrue(e.getMessage().startsWith(fileName + ": "), e.getMessage());
        for (String s : mustContain) assertTrue(e.getMessage().contains(s), "'" + s + "' not in: " + e.getMessage());
    }

    private void assertMalformed(String header, byte[] data, String... mustContain) throws IOException {
        Path tmp = raw(dir.resolve("tmp.bin"), header, data);
        assertMalformedFile("bad.safetensors", Files.readAllBytes(tmp), mustContain);
    }

    private static String t(String name, String dtype, String shape, String offsets) {
        return "\"" + name + "\":{\"dtype\":" + dtype + ",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
    }

    @Test
    void everyMalformedCaseNamesFileAndTensor() throws IOException {
        byte[] d16 = new byte[16];
        // file shorter than 8 bytes
        assertMalformedFile("short.safetensors", new byte[5], "shorter than the 8-byte header size");
        assertMalformedFile("zero.safetensors", new byte[0], "shorter");
        // header size larger than the file / larger than 100 MB / negative
        byte[] big = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(9).array();
        assertMalformedFile("big.safetensors", big, "header size 9", "larger than the 8 bytes");
        byte[] huge = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-1).array();
        assertMalformedFile("huge.safetensors", huge, "header size 18446744073709551615");
        Path sparse = dir.resolve("sparse.safetensors");
        try (var ch = java.nio.channels.FileChannel.open(sparse, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(100_000_001L).flip());
            ch.write(ByteBuffer.wrap(new byte[] {'{'}), 100_000_100L); // sparse: no 100 MB written
        }
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafeTensors.open(sparse));
        assertTrue(e.getMessage().startsWith("sparse.safetensors: ") && e.getMessage().contains("limit"), e.getMessage());
        // header not UTF-8, not JSON, not an object
        byte[] notUtf8 = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(8)
                .put(new byte[] {'{', '"', (byte) 0xc3, (byte) 0x28, '"', ':', '1', '}'}).array();
        assertMalformedFile("utf8.safetensors", notUtf8, "UTF-8");
        assertMalformed("{\"a\":", new byte[0], "not valid JSON");
        assertMalformed("[1,2]", new byte[0], "not a JSON object");
        assertMalformed("", new byte[0], "not valid JSON");
        assertMalformed("{\"a\":{},\"a\":{}}", new byte[0], "duplicate key");
        // entries without dtype / shape / data_offsets, or with the wrong JSON types
        assertMalformed("{\"w\":{\"shape\":[4],\"data_offsets\":[0,16]}}", d16, "tensor 'w'", "no dtype");
        assertMalformed("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}}", d16, "tensor 'w'", "no shape");
        assertMalformed("{\"w\":{\"dtype\":\"F32\",\"shape\":[4]}}", d16, "tensor 'w'", "no data_offsets");
        assertMalformed("{\"w\":[1]}", d16, "tensor 'w'", "not a JSON object");
        assertMalformed("{" + t("w", "5", "[4]", "[0,16]") + "}", d16, "tensor 'w'", "dtype is not a string");
        assertMalformed("{" + t("w", "\"F128\"", "[4]", "[0,16]") + "}", d16, "tensor 'w'", "unknown dtype 'F128'");
        assertMalformed("{" + t("w", "\"F32\"", "4", "[0,16]") + "}", d16, "tensor 'w'", "shape is not an array");
        assertMalformed("{" + t("w", "\"F32\"", "[4.0]", "[0,16]") + "}", d16, "tensor 'w'", "non-integer");
        assertMalformed("{" + t("w", "\"F32\"", "[\"4\"]", "[0,16]") + "}", d16, "tensor 'w'", "non-integer");
        assertMalformed("{" + t("w", "\"F32\"", "[4]", "{}") + "}", d16, "tensor 'w'", "data_offsets");
        assertMalformed("{" + t("w", "\"F32\"", "[4]", "[0]") + "}", d16, "tensor 'w'", "[begin, end]");
        assertMalformed("{" + t("w", "\"F32\"", "[4]", "[0,16,3]") + "}", d16, "tensor 'w'", "[begin, end]");
        assertMalformed("{" + t("w", "\"F32\"", "[4]", "[0,16.5]") + "}", d16, "tensor 'w'", "[begin, end]");
        // negative dims, numel overflow
        assertMalformed("{" + t("w", "\"F32\"", "[-4]", "[0,16]") + "}", d16, "tensor 'w'", "negative dimension");
        assertMalformed("{" + t("w", "\"F32\"", "[4294967296,4294967296]", "[0,16]") + "}", d16, "tensor 'w'", "overflow");
        assertMalformed("{" + t("w", "\"F32\"", "[4611686018427387904]", "[0,16]") + "}", d16, "tensor 'w'", "overflow");
        assertMalformed("{" + t("w", "\"F32\"", "[99999999999999999999]", "[0,16]") + "}", d16, "tensor 'w'", "non-integer");
        // data_offsets out of range
        assertMalformed("{" + t("w", "\"F32\"", "[4]", "[-16,0]") + "}", d16, "tensor 'w'", "not within the 16 bytes");
        assertMalformed("{" + t("w", "\"F32\"", "[4]", "[16,0]") + "}", d16, "tensor 'w'", "not within");
        assertMalformed("{" + t("w", "\"F32\"", "[4]", "[4,20]") + "}", d16, "tensor 'w'", "not within");
        assertMalformed("{" + t("w", "\"F32\"", "[0]", "[17,17]") + "}", d16, "tensor 'w'", "not within");
        // end - begin != numel * element size
        assertMalformed("{" + t("w", "\"BF16\"", "[2,4]", "[0,12]") + "}", d16, "tensor 'w'", "span 12 bytes",
                "needs 16");
        assertMalformed("{" + t("w", "\"F4\"", "[3]", "[0,1]") + "}", d16, "tensor 'w'", "whole number of bytes");
        // overlapping tensors
        assertMalformed("{" + t("a", "\"F32\"", "[2]", "[0,8]") + "," + t("b", "\"F32\"", "[2]", "[4,12]") + "}", d16,
                "tensor 'b'", "overlaps tensor 'a'");
        assertMalformed("{" + t("a", "\"F32\"", "[4]", "[0,16]") + "," + t("b", "\"I32\"", "[1]", "[8,12]") + "}", d16,
                "tensor 'b'", "overlaps tensor 'a'");
        // __metadata__ not a string -> string object
        assertMalformed("{\"__metadata__\":[\"a\"]}", d16, "__metadata__");
        assertMalformed("{\"__metadata__\":{\"format\":1}}", d16, "__metadata__", "'format'", "not a string");
        assertMalformed("{\"__metadata__\":{\"n\":null}}", d16, "__metadata__", "'n'");
    }

    @Test
    void ioProblemsAreIoExceptions() {
        assertThrows(java.nio.file.NoSuchFileException.class, () -> SafeTensors.open(dir.resolve("missing.safetensors")));
        assertThrows(IOException.class, () -> SafeTensors.open(dir));
    }

    // ------------------------------------------------------------------ fuzzing

    /**
     * Random byte mutations, header-size rewrites and truncations of a valid file: opening and reading
     * every tensor either works or throws a {@link CheckpointException} (the only documented exception
     * for content). Anything else (an IndexOutOfBounds, an ArithmeticException, a JVM crash) fails.
     */
    @Test
    void mutatedAndTruncatedFilesThrowOnlyCheckpointExceptions() throws IOException {
        Path valid = dir.resolve("valid.safetensors");
        try (Arena a = Arena.ofConfined()) {
            SafeTensorsWriter.write(valid, Map.of("format", "pt", "note", "x"), List.of(
                    SafeTensorsWriter.Entry.of("model.layers.0.w", Tensor.ofFloats(a, new float[12], 3, 4)),
                    SafeTensorsWriter.Entry.of("b", Tensor.ofShorts(a, DType.BF16, new short[5], 5)),
                    SafeTensorsWriter.Entry.of("q", Tensor.ofBytes(a, DType.E4M3, new byte[7], 7)),
                    SafeTensorsWriter.Entry.of("s", Tensor.ofInts(a, new int[] {1}))));
        }
        byte[] original = Files.readAllBytes(valid);
        int headerEnd = 8 + (int) readHeaderSize(valid);
        Path target = dir.resolve("fuzz.safetensors");
        int[] outcomes = new int[2];
        qt().withExamples(600).forAll(longs().all(), integers().between(0, 5)).checkAssert((seed, kind) -> {
            Random r = new Random(seed);
            byte[] b = original.clone();
            switch (kind) {
                case 0 -> { // truncation
                    b = Arrays.copyOf(b, r.nextInt(b.length));
                }
                case 1 -> { // flips in the header (where they matter)
                    for (int k = 1 + r.nextInt(4); k > 0; k--) b[8 + r.nextInt(headerEnd - 8)] ^= (byte) (1 << r.nextInt(8));
                }
                case 2 -> { // replace header characters by JSON-significant ones
                    String sig = "{}[],:\"0123456789-.eE \\";
                    for (int k = 1 + r.nextInt(3); k > 0; k--) b[8 + r.nextInt(headerEnd - 8)] = (byte) sig.charAt(r.nextInt(sig.length()));
                }
                case 3 -> { // header size rewritten
                    long n = switch (r.nextInt(4)) {
                        case 0 -> r.nextLong();
                        case 1 -> headerEnd - 8 + r.nextInt(17) - 8;
                        case 2 -> r.nextInt(b.length + 8);
                        default -> Long.MIN_VALUE + r.nextInt(3);
                    };
                    ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(0, n);
                }
                case 4 -> { // random bytes anywhere
                    for (int k = 1 + r.nextInt(8); k > 0; k--) b[r.nextInt(b.length)] = (byte) r.nextInt(256);
                }
                default -> { // digits of offsets and shapes changed
                    String h = new String(b, 8, headerEnd - 8, StandardCharsets.ISO_8859_1);
                    List<Integer> digits = new ArrayList<>();
                    for (int k = 0; k < h.length(); k++) if (Character.isDigit(h.charAt(k))) digits.add(k);
                    for (int k = 1 + r.nextInt(3); k > 0; k--)
                        b[8 + digits.get(r.nextInt(digits.size()))] = (byte) ('0' + r.nextInt(10));
                }
            }
            try {
                Files.write(target, b);
                try (SafeTensors st = SafeTensors.open(target)) {
                    for (String name : st.names()) {
                        st.bytes(name).toArray(ValueLayout.JAVA_BYTE);
                        try {
                            Tensor t = st.tensor(name);
                            t.toByteArray();
                        } catch (CheckpointException unsupportedDtype) {
                            assertTrue(unsupportedDtype.getMessage().contains("'" + name + "'"));
                        }
                    }
                    outcomes[0]++;
                }
            } catch (CheckpointException expected) {
                assertTrue(expected.getMessage().startsWith("fuzz.safetensors: "), expected.getMessage());
                outcomes[1]++;
            } catch (Throwable other) {
                fail("kind " + kind + " seed " + seed + ": " + other, other);
            }
        });
        assertTrue(outcomes[0] > 0 && outcomes[1] > 0, "both outcomes seen: " + Arrays.toString(outcomes));
    }

    @Test
    void writerRejectsInconsistentEntries() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment eight = a.allocate(8);
            assertThrows(IllegalArgumentException.class, () -> new SafeTensorsWriter.Entry("w", DType.F32, new long[] {3}, eight));
            assertThrows(IllegalArgumentException.class, () -> new SafeTensorsWriter.Entry("w", DType.F32, new long[] {-2}, eight));
            assertThrows(IllegalArgumentException.class, () -> new SafeTensorsWriter.Entry("__metadata__", DType.F32, new long[] {2}, eight));
            var e = new SafeTensorsWriter.Entry("w", DType.F32, new long[] {2}, eight);
            IllegalArgumentException x = assertThrows(IllegalArgumentException.class,
                    () -> SafeTensorsWriter.write(dir.resolve("dup.safetensors"), null, List.of(e, e)));
            assertTrue(x.getMessage().contains("'w' twice"), x.getMessage());
            assertFalse(Files.exists(dir.resolve("dup.safetensors")));
        }
    }

    @Test
    void writerReplacesAtomicallyAndLeavesNoTemporaryFile() throws IOException {
        Path file = dir.resolve("a.safetensors");
        try (Arena a = Arena.ofConfined()) {
            SafeTensorsWriter.write(file, null, List.of(SafeTensorsWriter.Entry.of("x", Tensor.ofFloats(a, new float[] {1}))));
            SafeTensorsWriter.write(file, Map.of(), List.of(SafeTensorsWriter.Entry.of("y", Tensor.ofFloats(a, new float[] {2}))));
        }
        try (SafeTensors st = SafeTensors.open(file); var list = Files.list(dir)) {
            assertEquals(List.of("y"), new ArrayList<>(st.names()));
            assertEquals(List.of(file), list.toList());
        }
    }
}
