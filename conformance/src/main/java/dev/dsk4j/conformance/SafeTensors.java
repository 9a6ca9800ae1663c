package dev.dsk4j.conformance;

import dev.dsk4j.internal.Json;
import dev.dsk4j.DType;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A whole-file safetensors reader and writer for golden vectors (small files): an 8-byte
 * little-endian header size, a JSON header ({@code __metadata__} of strings, then per tensor
 * {@code dtype}, {@code shape}, {@code data_offsets}), then the data. Every inconsistency is an
 * IllegalArgumentException naming the file and the tensor.
 */
public final class SafeTensors {
    /** One tensor: dtype name as in the file (F32, BF16, F8_E4M3, ...), shape and raw bytes. */
    public record Entry(String dtype, long[] shape, byte[] data) {
        public long numel() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }

        /** The dsk4j dtype of this entry. */
        public DType dsk4jType() { return dtypeOf(dtype); }

        /** Raw elements as ints: f32/i32 bits, unsigned 16-bit or 8-bit codes. */
        public int[] raw() {
            ByteBuffer b = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
            int size = sizeOf(dtype);
            int[] out = new int[(int) numel()];
            for (int k = 0; k < out.length; k++) {
                out[k] = switch (size) {
                    case 4 -> b.getInt(k * 4);
                    case 2 -> b.getShort(k * 2) & 0xffff;
                    default -> b.get(k) & 0xff;
                };
            }
            return out;
        }

        public float[] floats() {
            if (!dtype.equals("F32")) throw new IllegalArgumentException("tensor is " + dtype + ", not F32");
            int[] r = raw();
            float[] f = new float[r.length];
            for (int k = 0; k < r.length; k++) f[k] = Float.intBitsToFloat(r[k]);
            return f;
        }
    }

    public record File(Map<String, String> metadata, Map<String, Entry> tensors) {}

    static int sizeOf(String dtype) {
        return switch (dtype) {
            case "F32", "I32" -> 4;
            case "BF16", "F16" -> 2;
            case "F8_E4M3", "F8_E5M2", "U8", "I8" -> 1;
            default -> throw new IllegalArgumentException("unsupported safetensors dtype " + dtype);
        };
    }

    static DType dtypeOf(String dtype) {
        return switch (dtype) {
            case "F32" -> DType.F32;
            case "BF16" -> DType.BF16;
            case "F16" -> DType.F16;
            case "F8_E4M3" -> DType.E4M3;
            case "F8_E5M2" -> DType.E5M2;
            case "I32" -> DType.I32;
            default -> throw new IllegalArgumentException("no dsk4j dtype for safetensors dtype " + dtype);
        };
    }

    static String nameOf(DType d) {
        return switch (d) {
            case F32 -> "F32";
            case BF16 -> "BF16";
            case F16 -> "F16";
            case E4M3 -> "F8_E4M3";
            case E5M2 -> "F8_E5M2";
            case I32 -> "I32";
        };
    }

    public static File read(Path path) throws IOException {
        byte[] all = Files.readAllBytes(path);
        String where = path.getFileName().toString();
        if (all.length < 8) throw new IllegalArgumentException(where + ": shorter than the 8-byte header size");
        long n = ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        if (n < 2 || n > all.length - 8L || n > 100_000_000)
            throw new IllegalArgumentException(where + ": header size " + n + " does not fit the file of " + all.length + " bytes");
        Object parsed;
        try {
            parsed = Json.parse(new String(all, 8, (int) n, StandardCharsets.UTF_8));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
        if (!(parsed instanceof Map<?, ?> header)) throw new IllegalArgumentException(where + ": header is not a JSON object");
        int base = 8 + (int) n;
        Map<String, String> meta = new LinkedHashMap<>();
        Map<String, Entry> tensors = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : header.entrySet()) {
            String name = String.valueOf(e.getKey());
            if (name.equals("__metadata__")) {
                if (!(e.getValue() instanceof Map<?, ?> m)) throw new IllegalArgumentException(where + ": __metadata__ is not an object");
                for (Map.Entry<?, ?> me : m.entrySet()) {
                    if (!(me.getValue() instanceof String sv))
                        throw new IllegalArgumentException(where + ": __metadata__." + me.getKey() + " is not a string");
                    meta.put((String) me.getKey(), sv);
                }
                continue;
            }
            String ctx = where + ": tensor " + name;
            if (!(e.getValue() instanceof Map<?, ?> t)) throw new IllegalArgumentException(ctx + " is not an object");
            if (!(t.get("dtype") instanceof String dtype)) throw new IllegalArgumentException(ctx + ": no dtype");
            if (!(t.get("shape") instanceof List<?> shapeList)) throw new IllegalArgumentException(ctx + ": no shape");
            if (!(t.get("data_offsets") instanceof List<?> offs) || offs.size() != 2)
                throw new IllegalArgumentException(ctx + ": data_offsets must be [begin, end]");
            long[] shape = new long[shapeList.size()];
            long numel = 1;
            for (int k = 0; k < shape.length; k++) {
                if (!(shapeList.get(k) instanceof Long d) || d < 0) throw new IllegalArgumentException(ctx + ": bad shape " + shapeList);
                shape[k] = d;
                if (d != 0 && numel > Long.MAX_VALUE / d)
                    throw new IllegalArgumentException(ctx + ": shape " + shapeList + " holds more than 2^63-1 elements");
                numel *= d;
            }
            if (!(offs.get(0) instanceof Long b0) || !(offs.get(1) instanceof Long b1) || b0 < 0 || b1 < b0
                    || b1 > all.length - base)
                throw new IllegalArgumentException(ctx + ": data_offsets " + offs + " outside the data of " + (all.length - base) + " bytes");
            int es;
            try {
                es = sizeOf(dtype);
            } catch (IllegalArgumentException ex) {
                throw new IllegalArgumentException(ctx + ": " + ex.getMessage(), ex);
            }
            if (numel > Long.MAX_VALUE / es)
                throw new IllegalArgumentException(ctx + ": shape " + shapeList + " of " + dtype + " holds more than 2^63-1 bytes");
            long bytes = numel * es;
            if (b1 - b0 != bytes)
                throw new IllegalArgumentException(ctx + ": data_offsets span " + (b1 - b0) + " bytes, " + dtype + " " + shapeList + " needs " + bytes);
            byte[] data = new byte[(int) bytes];
            System.arraycopy(all, base + (int) (long) b0, data, 0, (int) bytes);
            tensors.put(name, new Entry(dtype, shape, data));
        }
        return new File(meta, tensors);
    }

    public static void write(Path path, Map<String, String> metadata, Map<String, Entry> tensors) throws IOException {
        Map<String, Object> header = new LinkedHashMap<>();
        header.put("__metadata__", new LinkedHashMap<>(metadata));
        long offset = 0;
        for (Map.Entry<String, Entry> e : tensors.entrySet()) {
            Map<String, Object> t = new LinkedHashMap<>();
            t.put("dtype", e.getValue().dtype());
            List<Object> shape = new ArrayList<>();
            for (long d : e.getValue().shape()) shape.add(d);
            t.put("shape", shape);
            t.put("data_offsets", List.of(offset, offset + e.getValue().data().length));
            offset += e.getValue().data().length;
            header.put(e.getKey(), t);
        }
        byte[] h = Json.write(header).getBytes(StandardCharsets.UTF_8);
        int pad = (8 - h.length % 8) % 8;
        ByteBuffer out = ByteBuffer.allocate(8 + h.length + pad + (int) offset).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(h.length + pad).put(h);
        for (int k = 0; k < pad; k++) out.put((byte) ' ');
        for (Entry e : tensors.values()) out.put(e.data());
        Files.write(path, out.array());
    }

    /** An entry from raw elements (f32/i32 bits, 16-bit or 8-bit codes). */
    public static Entry entry(DType dtype, int[] raw, long... shape) {
        int size = dtype.byteSize();
        ByteBuffer b = ByteBuffer.allocate(raw.length * size).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : raw) {
            switch (size) {
                case 4 -> b.putInt(v);
                case 2 -> b.putShort((short) v);
                default -> b.put((byte) v);
            }
        }
        return new Entry(nameOf(dtype), shape.clone(), b.array());
    }

    public static Entry entry(float[] values, long... shape) {
        int[] raw = new int[values.length];
        for (int k = 0; k < values.length; k++) raw[k] = Float.floatToRawIntBits(values[k]);
        return entry(DType.F32, raw, shape);
    }
}
