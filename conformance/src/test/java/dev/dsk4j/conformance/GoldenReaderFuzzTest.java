package dev.dsk4j.conformance;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.SourceDSL.integers;
import static org.quicktheories.generators.SourceDSL.longs;

import dev.dsk4j.DType;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The golden-vector reader on damaged files: random byte changes (mostly in the JSON header), truncations,
 * header lengths and hand-picked hostile headers either read or throw IOException / IllegalArgumentException
 * naming the file — never another exception, never an out-of-memory from a size taken on trust.
 */
class GoldenReaderFuzzTest {
    private static final String JSONISH = "0123456789-[]{}\",:e.E+ ";

    @TempDir
    Path dir;

    private byte[] valid() throws IOException {
        Map<String, SafeTensors.Entry> t = new LinkedHashMap<>();
        t.put("in.x", SafeTensors.entry(new float[] {1, -2, 3.5f, 0, 7, 8}, 2, 3));
        t.put("out.y", SafeTensors.entry(DType.E4M3, new int[] {1, 2, 3, 0x7f, 0x80, 9}, 6));
        t.put("in.ids", SafeTensors.entry(DType.I32, new int[] {5, 6}, 1, 2));
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("op", "fp8.cast");
        meta.put("params", "{\"format\":\"e4m3\"}");
        Path p = dir.resolve("valid.safetensors");
        SafeTensors.write(p, meta, t);
        return Files.readAllBytes(p);
    }

    private void readExpectingOnlyDocumentedErrors(byte[] bytes, String what) throws IOException {
        Path p = dir.resolve("case.safetensors");
        Files.write(p, bytes);
        try {
            SafeTensors.read(p);
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage() != null && e.getMessage().contains("case.safetensors"), what + ": " + e.getMessage());
        } catch (RuntimeException | Error e) {
            throw new AssertionError(what + ": undocumented " + e, e);
        }
    }

    @Test
    void mutatedFilesReadOrFailCleanly() throws IOException {
        byte[] good = valid();
        int header = 8 + (int) (good[0] & 0xff | (good[1] & 0xff) << 8);
        qt().withExamples(3000).forAll(longs().all(), integers().between(1, 8)).checkAssert((seed, flips) -> {
            SplittableRandom r = new SplittableRandom(seed);
            byte[] b = good.clone();
            for (int i = 0; i < flips; i++) {
                int pos = r.nextInt(10) < 8 ? 8 + r.nextInt(header - 8) : r.nextInt(b.length);
                b[pos] = r.nextInt(3) == 0 ? (byte) r.nextInt(256) : (byte) JSONISH.charAt(r.nextInt(JSONISH.length()));
            }
            if (r.nextInt(5) == 0) b = java.util.Arrays.copyOf(b, r.nextInt(b.length + 1));
            try {
                readExpectingOnlyDocumentedErrors(b, "seed " + seed);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    @Test
    void hostileHeadersFailCleanly() throws IOException {
        String[] headers = {
            "{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,0]}}",
            "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,9223372036854775807]}}",
            "{\"t\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
            "{\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
            "{\"t\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
            "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}",
            "{\"t\":[1,2,3]}",
            "{\"__metadata__\":{\"op\":5}}",
            "[".repeat(100_000),
            "{\"a\":".repeat(50_000),
            "",
            "null",
        };
        for (String h : headers) {
            byte[] hb = h.getBytes(StandardCharsets.UTF_8);
            byte[] file = new byte[8 + hb.length + 8];
            long n = hb.length;
            for (int i = 0; i < 8; i++) file[i] = (byte) (n >>> (8 * i));
            System.arraycopy(hb, 0, file, 8, hb.length);
            readExpectingOnlyDocumentedErrors(file, h.length() > 60 ? h.substring(0, 60) + "..." : h);
        }
        for (long n : new long[] {-1, 0, 1, Long.MAX_VALUE, 1L << 40}) {
            byte[] file = new byte[64];
            for (int i = 0; i < 8; i++) file[i] = (byte) (n >>> (8 * i));
            readExpectingOnlyDocumentedErrors(file, "header length " + n);
        }
    }
}
