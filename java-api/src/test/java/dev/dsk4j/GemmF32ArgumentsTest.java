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

/** Bad arguments to gemm.f32: an exception naming the argument, from Java ({@link Gemm#f32}) or from native code. */
class GemmF32ArgumentsTest {
    static Context cpu;

    @BeforeAll
    static void open() { cpu = Context.open(Device.cpu()); }

    @AfterAll
    static void close() { cpu.close(); }

    static void assertNames(RuntimeException e, String arg) {
        assertTrue(e.getMessage().contains("'" + arg + "'"), () -> "message does not name '" + arg + "': " + e.getMessage());
    }

    @Test
    void javaChecksNameTheArgument() {
        try (Arena a = Arena.ofConfined()) {
            Tensor x = Tensor.allocate(a, DType.F32, 3, 5), w = Tensor.allocate(a, DType.BF16, 4, 5);
            Tensor d = Tensor.allocate(a, DType.F32, 3, 4);
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Gemm.f32(cpu, d, Tensor.allocate(a, DType.BF16, 3, 5), w, null)), "a");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Gemm.f32(cpu, d, x, Tensor.allocate(a, DType.E4M3, 4, 5), null)), "b");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Gemm.f32(cpu, d, x, Tensor.allocate(a, DType.F32, 4, 6), null)), "b");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Gemm.f32(cpu, Tensor.allocate(a, DType.BF16, 3, 4), x, w, null)), "d");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Gemm.f32(cpu, Tensor.allocate(a, DType.F32, 4, 3), x, w, null)), "d");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Gemm.f32(cpu, d, x, w, Tensor.allocate(a, DType.F32, 3, 5))), "c");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Gemm.f32(cpu, d, x, w, Tensor.allocate(a, DType.BF16, 3, 4))), "c");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Gemm.f32(cpu, d, Tensor.allocate(a, DType.F32, 15), w, null)), "a");
            assertNames(assertThrows(IllegalArgumentException.class,
                    () -> Gemm.f32(cpu, d, x.transpose(0, 1), w, null)), "a");
            assertNames(assertThrows(NullPointerException.class, () -> Gemm.f32(cpu, d, x, null, null)), "b");
            assertNames(assertThrows(NullPointerException.class, () -> Gemm.f32(cpu, a, null, w)), "a");
            assertNames(assertThrows(NullPointerException.class, () -> Gemm.f32(null, d, x, w, null)), "ctx");
        }
    }

    @Test
    void nativeChecksNameTheArgument() {
        cpu.acquire();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ctx = cpu.handle();
            // m = 2, n = 3, k = 4: a 32 bytes, b 48 (f32) / 24 (bf16), d 24
            MemorySegment x = a.allocate(32, 64), w = a.allocate(48, 64), d = a.allocate(24, 64), c = a.allocate(24, 64);
            int f32 = DType.F32.code(), bf16 = DType.BF16.code(), e4m3 = DType.E4M3.code();
            MemorySegment nil = MemorySegment.NULL;
            assertEquals(0, Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, x, 32, w, 48, f32, c, 24, 2, 3, 4));
            assertEquals(0, Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, x, 32, w, 24, bf16, nil, 0, 2, 3, 4));
            assertEquals(0, Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, x, 32, w, 48, f32, d, 24, 2, 3, 4)); // in place
            assertEquals(0, Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, nil, 0, nil, 0, f32, nil, 0, 2, 3, 0)); // k = 0
            expectNative(Dsk4jH.dsk4j_gemm_f32(nil, d, 24, x, 32, w, 48, f32, nil, 0, 2, 3, 4), "'ctx'");
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, d, 20, x, 32, w, 48, f32, nil, 0, 2, 3, 4), "'d'");
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, nil, 24, x, 32, w, 48, f32, nil, 0, 2, 3, 4), "'d'");
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, x, 28, w, 48, f32, nil, 0, 2, 3, 4), "'a'");
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, nil, 32, w, 48, f32, nil, 0, 2, 3, 4), "'a'");
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, x, 32, w, 44, f32, nil, 0, 2, 3, 4), "'b'");
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, x, 32, w, 22, bf16, nil, 0, 2, 3, 4), "'b'");
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, x, 32, nil, 48, f32, nil, 0, 2, 3, 4), "'b'");
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, x, 32, w, 48, e4m3, nil, 0, 2, 3, 4), "'b_dtype'");
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, x, 32, w, 48, 99, nil, 0, 2, 3, 4), "'b_dtype'");
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, x, 32, w, 48, f32, c, 20, 2, 3, 4), "'c'");
            MemorySegment dd = a.allocate(28, 64);
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, dd, 24, x, 32, w, 48, f32, dd.asSlice(4), 24, 2, 3, 4), "'c'"); // c overlaps d
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, x, 32, w, 48, f32, nil, 0, -2, 3, 4), "'m'");
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, x, 32, w, 48, f32, nil, 0, 2, -3, 4), "'n'");
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, x, 32, w, 48, f32, nil, 0, 2, 3, -4), "'k'");
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, x, 32, w, 48, f32, nil, 0, Long.MAX_VALUE / 2, 3, 4), "a bytes");
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, x, 32, w, 48, f32, nil, 0, 2, Long.MAX_VALUE / 2, 4), "b bytes");
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, x, 32, x, 32, w, 48, f32, nil, 0, 2, 3, 4), "'a'"); // d overlaps a
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, w, 48, x, 32, w, 48, f32, nil, 0, 2, 3, 4), "'b'"); // d overlaps b
            expectNative(Dsk4jH.dsk4j_gemm_f32(ctx, d, 24, x.asSlice(1), 31, w, 48, f32, nil, 0, 2, 3, 3), "'a'"); // misaligned
        } finally {
            cpu.release();
        }
    }

    /** rc is an error status and the native message holds {@code needle} (an argument name in quotes, or a size). */
    private static void expectNative(int rc, String needle) {
        assertTrue(rc < 0, "expected an error status naming " + needle + ", got " + rc);
        String msg = dev.dsk4j.internal.Native.lastError();
        assertTrue(msg.contains(needle), () -> "native message does not name " + needle + ": " + msg);
    }
}
