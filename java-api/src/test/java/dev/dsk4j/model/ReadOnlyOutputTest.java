package dev.dsk4j.model;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Device;
import dev.dsk4j.Fp8;
import dev.dsk4j.Gemm;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/** A tensor of a mapped checkpoint is read-only: passing it as an output is an exception, never a SIGSEGV. */
class ReadOnlyOutputTest {
    @TempDir
    Path dir;

    @Test
    void mappedTensorsAreRefusedAsOutputs() throws Exception {
        Path f = dir.resolve("w.safetensors");
        try (Arena a = Arena.ofConfined()) {
            Tensor w = Tensor.ofFloats(a, new float[256], 2, 128);
            SafeTensorsWriter.write(f, Map.of(), List.of(SafeTensorsWriter.Entry.of("w", w)));
        }
        try (SafeTensors st = SafeTensors.open(f); Context cpu = Context.open(Device.cpu()); Arena a = Arena.ofConfined()) {
            Tensor ro = st.tensor("w"); // f32 [2, 128], read-only mapping
            assertTrue(ro.segment().isReadOnly());
            Tensor x = Tensor.ofFloats(a, new float[256], 2, 128);
            Tensor b = Tensor.ofFloats(a, new float[128 * 128], 128, 128);
            Tensor y8 = Tensor.allocate(a, DType.E4M3, 2, 128);
            Tensor s = Tensor.allocate(a, DType.F32, 2, 1);
            List<Executable> calls = List.of(
                    () -> Gemm.f32(cpu, ro, x, b, null),
                    () -> Fp8.actQuant(cpu, y8, ro.reshape(256).slice(0, 2).reshape(2, 1), x, Fp8.ActQuantOptions.defaults()),
                    () -> cpu.fill(ro, 0),
                    () -> cpu.copy(ro, x));
            for (Executable c : calls) {
                var e = assertThrows(IllegalArgumentException.class, c);
                assertTrue(e.getMessage().contains("read-only"), e.getMessage());
            }
            // the same calls with writable outputs go through
            Gemm.f32(cpu, Tensor.allocate(a, DType.F32, 2, 128), ro, b, null);
            Fp8.actQuant(cpu, y8, s, ro, Fp8.ActQuantOptions.defaults());
        }
    }
}
