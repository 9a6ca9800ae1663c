package dev.dsk4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsk4j.bindings.Dsk4jH;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Bad arguments to the fp8 ops: an exception naming the argument, from Java or from native code. */
class Fp8ArgumentsTest {
    static Context cpu;

    @BeforeAll
    static void open() { cpu = Context.open(Device.cpu()); }

    @AfterAll
    static void close() { cpu.close(); }

    static void assertNames(RuntimeException e, String arg) {
        assertTrue(e.getMessage().contains("'" + arg + "'"), () -> "message does not name '" + arg + "': " + e.getMessage());
    }

    @Test
    void kNotAMultipleOf128() {
        try (Arena a = Arena.ofConfined()) {
            Tensor x = Tensor.allocate(a, DType.F32, 2, 100);
            var e = assertThrows(IllegalArgumentException.class, () -> Fp8.actQuant(cpu, a, x, Fp8.ActQuantOptions.defaults()));
            assertNames(e, "x");
        }
    }

    @Test
    void wrongShapesAndDtypes() {
        try (Arena a = Arena.ofConfined()) {
            Tensor x = Tensor.allocate(a, DType.F32, 2, 256);
            Tensor y = Tensor.allocate(a, DType.E4M3, 2, 256);
            Tensor scale = Tensor.allocate(a, DType.F32, 2, 2);
            var opts = Fp8.ActQuantOptions.defaults();
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Fp8.actQuant(cpu, Tensor.allocate(a, DType.E4M3, 2, 255), scale, x, opts)), "y");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Fp8.actQuant(cpu, y, Tensor.allocate(a, DType.F32, 2, 1), x, opts)), "scale");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Fp8.actQuant(cpu, Tensor.allocate(a, DType.E5M2, 2, 256), scale, x, opts)), "y");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Fp8.actQuant(cpu, y, scale, Tensor.allocate(a, DType.F16, 2, 256), opts)), "x");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Fp8.actQuant(cpu, y, scale, x.transpose(0, 1), opts)), "x");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Fp8.actQuant(cpu, y, Tensor.allocate(a, DType.F32, 2, 1),
                            x, new Fp8.ActQuantOptions(Fp8.ScaleFormat.F32, Fp8.ScaleLayout.COLUMN_MAJOR))), "scale");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Fp8.weightDequant(cpu, Tensor.allocate(a, DType.F32, 3, 3), Tensor.allocate(a, DType.E4M3, 3, 4),
                            Tensor.allocate(a, DType.F32, 1, 1))), "y");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Fp8.weightQuant(cpu, Tensor.allocate(a, DType.E4M3, 3, 4), Tensor.allocate(a, DType.F32, 2, 1),
                            Tensor.allocate(a, DType.F32, 3, 4), Fp8.ScaleFormat.F32)), "scaleInv");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Fp8.cast(cpu, Tensor.allocate(a, DType.F32, 4), Tensor.allocate(a, DType.BF16, 4))), "x");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Fp8.cast(cpu, Tensor.allocate(a, DType.E4M3, 5), Tensor.allocate(a, DType.F32, 4))), "y");
        }
    }

    @Test
    void closedArenaAndHeapMemory() {
        Tensor x;
        try (Arena a = Arena.ofConfined()) {
            x = Tensor.allocate(a, DType.F32, 1, 128);
        }
        try (Arena a = Arena.ofConfined()) {
            Tensor y = Tensor.allocate(a, DType.E4M3, 1, 128);
            Tensor s = Tensor.allocate(a, DType.F32, 1, 1);
            assertNames(assertThrows(IllegalStateException.class,
                    () -> Fp8.actQuant(cpu, y, s, x, Fp8.ActQuantOptions.defaults())), "x");
            Tensor heap = Tensor.wrap(MemorySegment.ofArray(new float[128]), DType.F32, 1, 128);
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Fp8.actQuant(cpu, y, s, heap, Fp8.ActQuantOptions.defaults())), "x");
        }
    }

    @Test
    void nativeValidationCatchesWhatJavaWouldNot() {
        // Straight through the bindings, past the Java checks: native code must refuse, not crash.
        cpu.acquire();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ctx = cpu.handle();
            MemorySegment x = a.allocate(4 * 256), y = a.allocate(256), s = a.allocate(8);
            int f32 = DType.F32.code(), e4m3 = DType.E4M3.code();
            expectNative(Dsk4jH.dsk4j_fp8_act_quant(ctx, y, 100, s, 8, x, 1024, f32, 1, 256, 128, 0, 0), "y");
            expectNative(Dsk4jH.dsk4j_fp8_act_quant(ctx, y, 256, s, 4, x, 1024, f32, 1, 256, 128, 0, 0), "scale");
            expectNative(Dsk4jH.dsk4j_fp8_act_quant(ctx, y, 256, s, 8, x, 1024, f32, -1, 256, 128, 0, 0), "rows");
            expectNative(Dsk4jH.dsk4j_fp8_act_quant(ctx, y, 256, s, 8, x, 1024, f32, 1, 200, 128, 0, 0), "k");
            expectNative(Dsk4jH.dsk4j_fp8_act_quant(ctx, y, 256, s, 8, x, 1024, 99, 1, 256, 128, 0, 0), "x_dtype");
            expectNative(Dsk4jH.dsk4j_fp8_act_quant(ctx, MemorySegment.NULL, 256, s, 8, x, 1024, f32, 1, 256, 128, 0, 0), "y");
            expectNative(Dsk4jH.dsk4j_fp8_act_quant(ctx, y, 256, s, 8, x, 1024, f32, 1, 256, 128, 64, 0), "flags");
            expectNative(Dsk4jH.dsk4j_fp8_act_quant(ctx, x, 256, s, 8, x, 1024, f32, 1, 256, 128, 0, 0), "x");
            expectNative(Dsk4jH.dsk4j_fp8_act_quant(ctx, y, 256, s, 8, x, 1024, f32, Long.MAX_VALUE, 256, 128, 0, 0), "rows * k");
            expectNative(Dsk4jH.dsk4j_fp8_cast(ctx, y, 256, e4m3, x, 1024, e4m3, 256), "x_dtype");
            expectNative(Dsk4jH.dsk4j_fp8_cast(ctx, y, 256, e4m3, x.asSlice(1), 1023, f32, 255), "x");
            expectNative(Dsk4jH.dsk4j_fp8_weight_dequant(ctx, x, 1024, f32, y, 256, s, 4, 16, 16, 64), "block");
            expectNative(Dsk4jH.dsk4j_fp8_act_quant(MemorySegment.NULL, y, 256, s, 8, x, 1024, f32, 1, 256, 128, 0, 0), "ctx");
        } finally {
            cpu.release();
        }
    }

    private static void expectNative(int rc, String arg) {
        assertTrue(rc < 0, "expected an error status naming '" + arg + "', got " + rc);
        String msg = dev.dsk4j.internal.Native.lastError();
        assertTrue(msg.contains(arg), () -> "native message does not name '" + arg + "': " + msg);
    }

    @Test
    void closedContext() {
        Context c = Context.open(Device.cpu());
        c.close();
        c.close(); // idempotent
        try (Arena a = Arena.ofConfined()) {
            Tensor x = Tensor.allocate(a, DType.F32, 1, 128);
            assertThrows(IllegalStateException.class, () -> Fp8.actQuant(c, a, x, Fp8.ActQuantOptions.defaults()));
        }
    }

    @Test
    void emptyTensorsAreFine() {
        try (Arena a = Arena.ofConfined()) {
            Fp8.Quantized q = Fp8.actQuant(cpu, a, Tensor.allocate(a, DType.F32, 0, 256), Fp8.ActQuantOptions.defaults());
            assertEquals(0, q.values().numel());
            Fp8.Quantized w = Fp8.weightQuant(cpu, a, Tensor.allocate(a, DType.F32, 0, 0), Fp8.ScaleFormat.F32);
            assertEquals(0, w.scales().numel());
        }
    }

    @Test
    void cudaWithoutADriverSaysWhy() {
        String reason = Dsk4j.cudaUnavailableReason();
        org.junit.jupiter.api.Assumptions.assumeTrue(reason != null,
                "SKIPPED: a CUDA device is present, so there is no unavailable-driver message to check");
        var e = assertThrows(Dsk4jException.class, () -> Context.open(Device.cuda(0)));
        assertEquals(Status.UNAVAILABLE, e.status(), e.getMessage());
        assertTrue(!e.getMessage().isBlank());
    }
}
