package dev.dsk4j.conformance;

import dev.dsk4j.internal.Json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The golden-vector runner: generated cases pass everywhere; a changed, unknown or broken case fails. */
class GoldenTest {
    @TempDir Path dir;

    @Test
    void generatedCasesPassOnEveryBackend() throws Exception {
        List<Path> files = Golden.generate(dir, System.nanoTime());
        assertEquals(17, files.size());
        List<Golden.CaseResult> results = Golden.run(dir, Backends.all().toList());
        assertEquals(files.size() * Backends.all().count(), results.size());
        for (Golden.CaseResult r : results) assertTrue(r.passed(), r::toString);
    }

    @Test
    void aChangedExpectedByteFails() throws Exception {
        Golden.generate(dir, 7);
        Path f = dir.resolve("fp8_act_quant_none.safetensors");
        SafeTensors.File file = SafeTensors.read(f);
        Map<String, SafeTensors.Entry> t = new LinkedHashMap<>(file.tensors());
        SafeTensors.Entry y = t.get("out.y");
        byte[] data = y.data().clone();
        data[data.length / 2] ^= 1; // one code off by one ulp
        t.put("out.y", new SafeTensors.Entry(y.dtype(), y.shape(), data));
        SafeTensors.write(f, file.metadata(), t);
        for (Golden.CaseResult r : Golden.run(dir, Backends.all().toList())) {
            if (r.file().equals("fp8_act_quant_none.safetensors")) {
                assertFalse(r.passed(), r::toString);
                assertTrue(r.detail().contains("1 of"), r::toString);
            } else {
                assertTrue(r.passed(), r::toString);
            }
        }
    }

    @Test
    void aRopeValueOutsideTheToleranceFails() throws Exception {
        Golden.generate(dir, 11);
        Path f = dir.resolve("rope_apply_neox_6x4x64.safetensors");
        SafeTensors.File file = SafeTensors.read(f);
        Map<String, SafeTensors.Entry> t = new LinkedHashMap<>(file.tensors());
        SafeTensors.Entry y = t.get("out.y");
        byte[] data = y.data().clone();
        data[4 * 17 + 2] ^= 0x10; // bit 20 of element 17's f32: far outside 2^-21 (|x0| + |x1|)
        t.put("out.y", new SafeTensors.Entry(y.dtype(), y.shape(), data));
        SafeTensors.write(f, file.metadata(), t);
        for (Golden.CaseResult r : Golden.run(dir, Backends.all().limit(1).toList()))
            if (r.file().equals("rope_apply_neox_6x4x64.safetensors")) assertFalse(r.passed(), r::toString);
            else assertTrue(r.passed(), r::toString);
    }

    @Test
    void anMlaDecodeValueOutsideTheToleranceFails() throws Exception {
        Golden.generate(dir, 13);
        Path f = dir.resolve("mla_decode_f32_2x2x4x100.safetensors");
        SafeTensors.File file = SafeTensors.read(f);
        Map<String, SafeTensors.Entry> t = new LinkedHashMap<>(file.tensors());
        SafeTensors.Entry o = t.get("out.o_latent");
        byte[] data = o.data().clone();
        data[4 * 1000 + 3] ^= 0x40; // bit 30 of element 1000's f32 (exponent): off by a factor 2^128 or more
        t.put("out.o_latent", new SafeTensors.Entry(o.dtype(), o.shape(), data));
        SafeTensors.write(f, file.metadata(), t);
        for (Golden.CaseResult r : Golden.run(dir, Backends.all().limit(1).toList()))
            if (r.file().equals("mla_decode_f32_2x2x4x100.safetensors")) assertFalse(r.passed(), r::toString);
            else assertTrue(r.passed(), r::toString);
    }

    @Test
    void unknownOpsAndBrokenFilesFail() throws Exception {
        Map<String, String> meta = Map.of("op", "mla.something_new", "params", "{}");
        SafeTensors.write(dir.resolve("unknown.safetensors"), meta, Map.of("in.x", SafeTensors.entry(new float[] {1f}, 1)));
        Files.write(dir.resolve("truncated.safetensors"), new byte[] {100, 0, 0, 0, 0, 0, 0, 0, '{'});
        Files.writeString(dir.resolve("badjson.safetensors"), "\u0004\0\0\0\0\0\0\0{\"a\"");
        List<Golden.CaseResult> results = Golden.run(dir, Backends.all().limit(1).toList());
        assertEquals(3, results.size());
        for (Golden.CaseResult r : results) assertFalse(r.passed(), r::toString);
        assertTrue(results.stream().anyMatch(r -> r.detail().contains("unknown op 'mla.something_new'")), results::toString);
        assertTrue(results.stream().anyMatch(r -> r.detail().contains("header size")), results::toString);
    }

    @Test
    void jsonRoundTripAndStrictness() {
        Object v = Json.parse("{\"a\":[1,2.5,\"x\\n\\u0041\",true,null],\"b\":{}}");
        assertEquals("{\"a\":[1,2.5,\"x\\nA\",true,null],\"b\":{}}", Json.write(v));
        for (String bad : new String[] {"{", "{\"a\":1,}", "[1 2]", "{\"a\":1,\"a\":2}", "\"\\q\"", "01x"}) {
            try {
                Json.parse(bad);
                throw new AssertionError("accepted " + bad);
            } catch (IllegalArgumentException expected) {
                assertTrue(expected.getMessage().contains("offset"), expected.getMessage());
            }
        }
    }
}
