package dev.dsk4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/** One context shared by threads gives the single-thread results; close waits for calls in flight. */
class ContextConcurrencyTest {
    @Test
    void sharedContextMatchesSingleThread() throws Exception {
        float[] x = new float[64 * 1024];
        Random r = new Random();
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian() * (i % 300 == 0 ? 100 : 1);
        byte[] expected;
        try (Context ctx = Context.open(Device.cpu()); Arena a = Arena.ofConfined()) {
            expected = Fp8.actQuant(ctx, a, Tensor.ofFloats(a, x, 64, 1024), Fp8.ActQuantOptions.defaults()).values().toByteArray();
        }
        try (Context ctx = Context.open(Device.cpu()); ExecutorService pool = Executors.newFixedThreadPool(6)) {
            List<Future<?>> fs = new ArrayList<>();
            for (int t = 0; t < 6; t++) {
                fs.add(pool.submit(() -> {
                    try (Arena a = Arena.ofConfined()) {
                        Tensor xt = Tensor.ofFloats(a, x, 64, 1024);
                        for (int i = 0; i < 100; i++)
                            assertArrayEquals(expected, Fp8.actQuant(ctx, a, xt, Fp8.ActQuantOptions.defaults()).values().toByteArray());
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) f.get();
        }
    }

    @Test
    void closeWhileOtherThreadsCallEitherCompletesOrThrowsCleanly() throws Exception {
        Context ctx = Context.open(Device.cpu());
        try (ExecutorService pool = Executors.newFixedThreadPool(3)) {
            List<Future<Integer>> fs = new ArrayList<>();
            for (int t = 0; t < 3; t++) {
                fs.add(pool.submit(() -> {
                    int done = 0;
                    try (Arena a = Arena.ofConfined()) {
                        Tensor xt = Tensor.allocate(a, DType.F32, 16, 1024);
                        Tensor y = Tensor.allocate(a, DType.E4M3, 16, 1024), s = Tensor.allocate(a, DType.F32, 16, 8);
                        for (int i = 0; i < 100_000; i++) {
                            Fp8.actQuant(ctx, y, s, xt, Fp8.ActQuantOptions.defaults());
                            done++;
                        }
                    } catch (IllegalStateException closed) {
                        // the context closed under us: a clean exception, never a crash
                    }
                    return done;
                }));
            }
            Thread.sleep(50);
            ctx.close();
            for (Future<Integer> f : fs) f.get();
        }
        try (Arena a = Arena.ofConfined()) {
            assertThrows(IllegalStateException.class,
                    () -> Fp8.actQuant(ctx, a, Tensor.allocate(a, DType.F32, 1, 128), Fp8.ActQuantOptions.defaults()));
        }
    }

    /** OS threads of this process (native pool workers are not Java threads). */
    private static long osThreads() throws java.io.IOException {
        try (var s = java.nio.file.Files.list(java.nio.file.Path.of("/proc/self/task"))) {
            return s.count();
        }
    }

    @Test
    void unreachableContextsAreClosedByTheCleaner() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(java.nio.file.Files.isDirectory(java.nio.file.Path.of("/proc/self/task")),
                "SKIPPED: needs /proc/self/task to count native threads");
        // 200 contexts with 1 native worker thread each, never closed: the Cleaner must reclaim them.
        long before = osThreads();
        for (int i = 0; i < 200; i++) Context.open(Device.cpu(), Context.Options.defaults().withThreads(2));
        long during = osThreads(), after = during;
        for (int i = 0; i < 200 && after >= before + 50; i++) {
            System.gc();
            Thread.sleep(20);
            after = osThreads();
        }
        long d = during, a = after;
        org.junit.jupiter.api.Assertions.assertTrue(a < before + 50,
                () -> "native worker threads of unreachable contexts were not reclaimed: " + before + " before, " + d
                        + " with 200 contexts, " + a + " after GC");
    }
}
