package dev.dsk4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsk4j.internal.HostPages;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;

/**
 * {@link Context#allocate} on the CPU: small buffers from the arena, buffers of 1 MiB and more as
 * pages of their own that go back to the system when the arena closes (the peak-memory fix of the
 * model API); both zeroed, 64-byte aligned, confined like the arena, usable by the ops.
 */
class ContextAllocateTest {
    static final SplittableRandom RANDOM = new SplittableRandom();

    static long rssKb() throws Exception {
        for (String l : Files.readAllLines(Path.of("/proc/self/status")))
            if (l.startsWith("VmRSS:")) return Long.parseLong(l.replaceAll("[^0-9]", ""));
        return -1;
    }

    @Test
    void smallAndLargeBuffersAreZeroedAlignedAndWork() {
        try (Context ctx = Context.open(Device.cpu()); Arena a = Arena.ofConfined()) {
            long[] sizes = {0, 1, 4, HostPages.MIN_BYTES / 4 - 1, HostPages.MIN_BYTES / 4, HostPages.MIN_BYTES / 4 + 1,
                    (HostPages.MIN_BYTES + 4096 * (1 + RANDOM.nextInt(100))) / 4 + RANDOM.nextInt(1000)};
            for (long n : sizes) {
                Tensor t = ctx.allocate(a, DType.F32, n);
                assertEquals(n * 4, t.byteSize());
                assertEquals(0, t.segment().address() % 64, "alignment of " + n + " floats");
                for (long i = 0; i < n; i += 997) assertEquals(0f, t.segment().getAtIndex(ValueLayout.JAVA_FLOAT, i));
                if (n == 0) continue;
                t.segment().setAtIndex(ValueLayout.JAVA_FLOAT, n - 1, 3f); // the last element is writable
                // an op writes all of it: add of two filled tensors
                Tensor x = ctx.allocate(a, DType.F32, n), y = ctx.allocate(a, DType.F32, n);
                for (long i = 0; i < n; i++) {
                    x.segment().setAtIndex(ValueLayout.JAVA_FLOAT, i, i);
                    y.segment().setAtIndex(ValueLayout.JAVA_FLOAT, i, 1);
                }
                Elementwise.add(ctx, t, x, y);
                for (long i = 0; i < n; i += 1 + n / 64)
                    assertEquals(i + 1f, t.segment().getAtIndex(ValueLayout.JAVA_FLOAT, i), "element " + i + " of " + n);
            }
        }
    }

    @Test
    void largeBuffersAreConfinedToTheirArenaAndItsThread() throws Exception {
        try (Context ctx = Context.open(Device.cpu())) {
            Tensor t;
            try (Arena a = Arena.ofConfined()) {
                t = ctx.allocate(a, DType.BF16, 3, HostPages.MIN_BYTES);
                Tensor view = t;
                var other = CompletableFuture.runAsync(() -> view.segment().get(ValueLayout.JAVA_BYTE, 0));
                ExecutionException e = assertThrows(ExecutionException.class, other::get);
                assertTrue(e.getCause() instanceof WrongThreadException, String.valueOf(e.getCause()));
            }
            assertThrows(IllegalStateException.class, () -> t.segment().get(ValueLayout.JAVA_BYTE, 0));
        }
    }

    @Test
    void largeBuffersGoBackToTheSystemWhenTheirArenaCloses() throws Exception {
        // 64 buffers of 4 MiB (below glibc's largest mmap threshold, 32 MiB, so that the C heap would serve them)
        // interleaved with small buffers that stay alive: from the C heap the freed 4 MiB blocks would stay
        // resident between the live ones; as pages of their own they go back when the arena closes.
        int n = 64;
        long size = 4L << 20;
        try (Context ctx = Context.open(Device.cpu()); Arena keep = Arena.ofConfined()) {
            try (Arena warm = Arena.ofConfined()) { // a large free first raises glibc's mmap threshold
                ctx.allocate(warm, DType.E4M3, 30L << 20).segment().fill((byte) 1);
            }
            for (int round = 0; round < 3; round++) {
                long before = rssKb(), peak;
                try (Arena a = Arena.ofConfined()) {
                    for (int i = 0; i < n; i++) {
                        ctx.allocate(a, DType.E4M3, size).segment().fill((byte) 1); // touch every page
                        ctx.allocate(keep, DType.E4M3, 64).segment().fill((byte) 2);
                    }
                    peak = rssKb();
                }
                long after = rssKb(), total = n * size >> 10;
                System.out.printf("%d x 4 MiB, round %d: RSS %d -> %d -> %d MiB%n", n, round, before >> 10, peak >> 10,
                        after >> 10);
                assertTrue(peak - before > total * 3 / 4, "the pages were not resident while in use");
                assertTrue(peak - after > total * 3 / 4, "closing the arena returned only " + ((peak - after) >> 10)
                        + " MiB of " + (total >> 10));
            }
        }
    }

    @Test
    void nativeWorkspacesOfAMiBOrMoreGiveCorrectResults() {
        // gemm.f32 with M x K of several MiB: its packed-A workspace is mapped pages (cpu_alloc.c), not the C heap
        for (Context.CpuPath path : new Context.CpuPath[] {Context.CpuPath.BEST, Context.CpuPath.PORTABLE}) {
            try (Context ctx = Context.open(Device.cpu(), Context.Options.defaults().withCpuPath(path));
                 Arena a = Arena.ofConfined()) {
                int m = 300 + RANDOM.nextInt(200), n = 16 + RANDOM.nextInt(48), k = 1024 + 128 * RANDOM.nextInt(8);
                float[] x = new float[m * k], w = new float[n * k];
                for (int i = 0; i < x.length; i++) x[i] = (float) RANDOM.nextDouble(-1, 1);
                for (int i = 0; i < w.length; i++) w[i] = (float) RANDOM.nextDouble(-1, 1);
                Tensor d = Gemm.f32(ctx, a, Tensor.ofFloats(a, x, m, k), Tensor.ofFloats(a, w, n, k));
                float[] got = d.toFloatArray();
                double num = 0, den = 0;
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        double ref = 0;
                        for (int l = 0; l < k; l++) ref += (double) x[i * k + l] * w[j * k + l];
                        num += (got[i * n + j] - ref) * (got[i * n + j] - ref);
                        den += ref * ref;
                    }
                double e = Math.sqrt(num / den);
                assertTrue(e < 1e-5, path + " " + m + "x" + n + "x" + k + ": relative error " + e);
            }
        }
    }
}
