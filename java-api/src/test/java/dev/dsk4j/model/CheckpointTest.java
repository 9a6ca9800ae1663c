package dev.dsk4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.longs;

import dev.dsk4j.DType;
import dev.dsk4j.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {
    @TempDir
    Path dir;

    private static void write(Path file, Arena a, Object... nameAndTensor) throws IOException {
        List<SafeTensorsWriter.Entry> l = new ArrayList<>();
        for (int k = 0; k < nameAndTensor.length; k += 2)
            l.add(SafeTensorsWriter.Entry.of((String) nameAndTensor[k], (Tensor) nameAndTensor[k + 1]));
        SafeTensorsWriter.write(file, Map.of(), l);
    }

    private static void index(Path dir, String weightMap) throws IOException {
        Files.writeString(dir.resolve(Checkpoint.INDEX), "{\"metadata\":{\"total_size\":0},\"weight_map\":{" + weightMap + "}}");
    }

    @Test
    void multiFileCheckpointWithIndexRandomlySharded() {
        qt().withExamples(15).forAll(longs().all(), integers().between(1, 4)).checkAssert((seed, shards) -> {
            Random r = new Random(seed);
            try (Arena a = Arena.ofConfined()) {
                Path d = Files.createTempDirectory(dir, "ckpt");
                int n = 1 + r.nextInt(12);
                Map<String, float[]> values = new LinkedHashMap<>();
                List<List<Object>> perFile = new ArrayList<>();
                for (int s = 0; s < shards; s++) perFile.add(new ArrayList<>());
                StringBuilder map = new StringBuilder();
                long bytes = 0;
                for (int k = 0; k < n; k++) {
                    String name = "model.layers." + k + ".mlp.w";
                    float[] v = new float[1 + r.nextInt(20)];
                    for (int j = 0; j < v.length; j++) v[j] = (float) r.nextGaussian();
                    values.put(name, v);
                    int s = r.nextInt(shards);
                    perFile.get(s).add(name);
                    perFile.get(s).add(Tensor.ofFloats(a, v));
                    String file = String.format("model-%05d-of-%05d.safetensors", s + 1, shards);
                    if (k > 0) map.append(',');
                    map.append('"').append(name).append("\":\"").append(file).append('"');
                    bytes += 4L * v.length;
                }
                for (int s = 0; s < shards; s++)
                    write(d.resolve(String.format("model-%05d-of-%05d.safetensors", s + 1, shards)), a, perFile.get(s).toArray());
                if (r.nextBoolean()) index(d, map.toString());
                else {
                    Map<String, String> weightMap = new LinkedHashMap<>();
                    for (int s = 0; s < shards; s++)
                        for (int j = 0; j < perFile.get(s).size(); j += 2)
                            weightMap.put((String) perFile.get(s).get(j), String.format("model-%05d-of-%05d.safetensors", s + 1, shards));
                    Map<String, String> ordered = new LinkedHashMap<>();
                    for (String name : values.keySet()) ordered.put(name, weightMap.get(name));
                    SafeTensorsWriter.writeIndex(d, bytes, ordered);
                }
                // a stray tensor file the index does not list is not part of the checkpoint
                write(d.resolve("stray.safetensors"), a, "stray", Tensor.ofFloats(a, new float[] {1}));
                try (Checkpoint c = Checkpoint.open(d)) {
                    assertEquals(new ArrayList<>(values.keySet()), new ArrayList<>(c.names()));
                    assertEquals(bytes, c.totalBytes());
                    assertFalse(c.contains("stray"));
                    assertEquals(d, c.directory());
                    for (var e : values.entrySet()) {
                        assertArrayEquals(e.getValue(), c.tensor(e.getKey()).toFloatArray());
                        assertArrayEquals(e.getValue(), c.tensor(e.getKey(), DType.F32, e.getValue().length).toFloatArray());
                        assertTrue(c.tensor(e.getKey()).segment().isMapped());
                        assertTrue(c.info(e.getKey()).file().getFileName().toString().startsWith("model-"));
                    }
                }
            } catch (IOException x) {
                throw new AssertionError(x);
            }
        });
    }

    @Test
    void directoryWithoutIndexReadsEverySafetensorsFile() throws IOException {
        try (Arena a = Arena.ofConfined()) {
            write(dir.resolve("b.safetensors"), a, "y", Tensor.ofInts(a, new int[] {3}));
            write(dir.resolve("a.safetensors"), a, "x", Tensor.ofFloats(a, new float[] {1, 2}), "z",
                    Tensor.ofShorts(a, DType.BF16, new short[] {0x3f80}));
            Files.writeString(dir.resolve("config.json"), "{}");
            try (Checkpoint c = Checkpoint.open(dir)) {
                assertEquals(List.of("x", "z", "y"), new ArrayList<>(c.names()));
                assertEquals(8 + 2 + 4, c.totalBytes());
                assertEquals(2, c.files().size());
                assertArrayEquals(new int[] {3}, c.tensor("y").toIntArray());
            }
            write(dir.resolve("c.safetensors"), a, "x", Tensor.ofFloats(a, new float[] {1}));
            CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
            assertTrue(e.getMessage().contains("'x'") && e.getMessage().contains("a.safetensors")
                    && e.getMessage().contains("c.safetensors"), e.getMessage());
        }
    }

    @Test
    void indexProblemsNameTensorAndFile() throws IOException {
        try (Arena a = Arena.ofConfined()) {
            write(dir.resolve("model-00001.safetensors"), a, "w", Tensor.ofFloats(a, new float[] {1}));
            index(dir, "\"w\":\"model-00001.safetensors\",\"v\":\"model-00002.safetensors\"");
            CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
            assertTrue(e.getMessage().contains("'v'") && e.getMessage().contains("model-00002.safetensors")
                    && e.getMessage().contains("does not exist"), e.getMessage());

            index(dir, "\"w\":\"model-00001.safetensors\",\"v\":\"model-00001.safetensors\"");
            e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
            assertTrue(e.getMessage().startsWith("model-00001.safetensors: ") && e.getMessage().contains("'v'"),
                    e.getMessage());

            index(dir, "\"w\":\"../model-00001.safetensors\"");
            e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
            assertTrue(e.getMessage().contains("'w'") && e.getMessage().contains("not a file inside"), e.getMessage());

            index(dir, "\"w\":7");
            e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
            assertTrue(e.getMessage().startsWith(Checkpoint.INDEX) && e.getMessage().contains("'w'"), e.getMessage());

            Files.writeString(dir.resolve(Checkpoint.INDEX), "{\"metadata\":{}}");
            e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
            assertTrue(e.getMessage().contains("weight_map"), e.getMessage());

            Files.writeString(dir.resolve(Checkpoint.INDEX), "{\"weight_map\":");
            e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
            assertTrue(e.getMessage().startsWith(Checkpoint.INDEX) && e.getMessage().contains("JSON"), e.getMessage());

            // a malformed shard: the shard's own message
            Files.write(dir.resolve("model-00001.safetensors"), new byte[3]);
            index(dir, "\"w\":\"model-00001.safetensors\"");
            e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
            assertTrue(e.getMessage().startsWith("model-00001.safetensors: "), e.getMessage());
        }
    }

    @Test
    void checkedTensorMessagesNameFileTensorAndBothShapes() throws IOException {
        String q = "model.layers.0.self_attn.q_a_proj.weight";
        try (Arena a = Arena.ofConfined()) {
            write(dir.resolve("model-00001.safetensors"), a, q, Tensor.allocate(a, DType.E4M3, 16, 8),
                    "unlisted", Tensor.allocate(a, DType.F32, 1));
            index(dir, "\"" + q + "\":\"model-00001.safetensors\"");
        }
        Checkpoint c = Checkpoint.open(dir);
        try {
            assertEquals(List.of(q), new ArrayList<>(c.names()));
            assertEquals(128, c.tensor(q, DType.E4M3, 16, 8).byteSize());
            CheckpointException e = assertThrows(CheckpointException.class, () -> c.tensor(q, DType.E4M3, 16, 4));
            assertEquals("model-00001.safetensors: tensor '" + q + "' has shape [16, 8], expected [16, 4]", e.getMessage());
            e = assertThrows(CheckpointException.class, () -> c.tensor(q, DType.BF16, 16, 8));
            assertEquals("model-00001.safetensors: tensor '" + q + "' has dtype F8_E4M3, expected BF16", e.getMessage());
            e = assertThrows(CheckpointException.class, () -> c.tensor("nope"));
            assertTrue(e.getMessage().contains("'nope'"), e.getMessage());
        } finally {
            c.close();
        }
        assertThrows(IllegalStateException.class, () -> c.tensor(q));
        assertThrows(IllegalStateException.class, c::names);
    }

    @Test
    void emptyOrMissingDirectory() throws IOException {
        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
        assertTrue(e.getMessage().contains("no " + Checkpoint.INDEX), e.getMessage());
        assertThrows(java.nio.file.NoSuchFileException.class, () -> Checkpoint.open(dir.resolve("missing")));
        Path file = Files.writeString(dir.resolve("f"), "x");
        assertThrows(java.nio.file.NotDirectoryException.class, () -> Checkpoint.open(file));
    }
}
