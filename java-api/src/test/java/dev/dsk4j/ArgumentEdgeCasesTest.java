package dev.dsk4j;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Memory a call cannot use: misaligned views, an arena confined to another thread, a host tensor on a CUDA
 * context. Each is an exception naming the argument, never a crash.
 */
class ArgumentEdgeCasesTest {
    @Test
    void misalignedSegmentsAreRefusedNamingTheArgument() {
        try (Context cpu = Context.open(Device.cpu()); Arena a = Arena.ofConfined()) {
            for (int off = 1; off < 4; off++) {
                MemorySegment raw = a.allocate(4L * 256 + 8, 64);
                Tensor x = Tensor.wrap(raw.asSlice(off, 4L * 256), DType.F32, 2, 128); // f32 at an odd address
                Tensor y = Tensor.allocate(a, DType.E4M3, 2, 128), s = Tensor.allocate(a, DType.F32, 2, 1);
                RuntimeException e = assertThrows(RuntimeException.class,
                        () -> Fp8.actQuant(cpu, y, s, x, Fp8.ActQuantOptions.defaults()));
                assertTrue(e instanceof IllegalArgumentException || e instanceof Dsk4jException, e.toString());
                assertTrue(e.getMessage().contains("'x'") || e.getMessage().contains(" x "), e.getMessage());
                Tensor sMis = Tensor.wrap(raw.asSlice(off, 8), DType.F32, 2, 1);
                RuntimeException e2 = assertThrows(RuntimeException.class, () -> Fp8.actQuant(cpu, y, sMis,
                        Tensor.allocate(a, DType.F32, 2, 128), Fp8.ActQuantOptions.defaults()));
                assertTrue(e2.getMessage().contains("scale"), e2.getMessage());
            }
        }
    }

    @Test
    void anArenaConfinedToAnotherThreadIsRefused() throws Exception {
        CountDownLatch made = new CountDownLatch(1), done = new CountDownLatch(1);
        Tensor[] foreign = new Tensor[1];
        CompletableFuture<Void> owner = CompletableFuture.runAsync(() -> {
            try (Arena a = Arena.ofConfined()) {
                foreign[0] = Tensor.allocate(a, DType.F32, 2, 128);
                made.countDown();
                done.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        made.await();
        try (Context cpu = Context.open(Device.cpu()); Arena a = Arena.ofConfined()) {
            Tensor y = Tensor.allocate(a, DType.E4M3, 2, 128), s = Tensor.allocate(a, DType.F32, 2, 1);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> Fp8.actQuant(cpu, y, s, foreign[0], Fp8.ActQuantOptions.defaults()));
            assertTrue(e.getMessage().contains("'x'") && e.getMessage().contains("another thread"), e.getMessage());
        } finally {
            done.countDown();
            owner.get();
        }
    }

    @Test
    void aHostTensorOnACudaContextIsRefused() {
        Context cuda;
        try {
            cuda = Context.open(Device.cuda(0));
        } catch (Dsk4jException e) {
            Assumptions.abort("no CUDA device here: " + e.getMessage());
            return;
        }
        try (cuda; Arena a = Arena.ofConfined()) {
            Tensor x = Tensor.allocate(a, DType.F32, 2, 128);
            Tensor y = cuda.allocate(a, DType.E4M3, 2, 128), s = cuda.allocate(a, DType.F32, 2, 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Fp8.actQuant(cuda, y, s, x, Fp8.ActQuantOptions.defaults()));
            assertTrue(e.getMessage().contains("'x'"), e.getMessage());
        }
    }
}
