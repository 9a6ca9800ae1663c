package dev.dsk4j.benchmarks;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CyclicBarrier;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * This machine's memory ceilings, measured in the same run as the benchmarks (DESIGN.md 7):
 * read bandwidth over an off-heap buffer much larger than L3 (sum of longs with the Vector API,
 * every core, best of N passes), plus one-core read, all-core write (fill) and copy bandwidth.
 * GB = 10^9 bytes.
 */
public final class Bandwidth {
    private Bandwidth() {}

    static final VectorSpecies<Long> S = LongVector.SPECIES_PREFERRED;

    /** What was measured. */
    public record Result(long bufferBytes, long l3Bytes, int threads, double readGBs, double readOneThreadGBs,
                         double writeGBs, double copyGBs) {
        public String describe() {
            return String.format(Locale.ROOT,
                    "read %.1f GB/s (%d threads; one thread %.1f GB/s), write %.1f GB/s, copy %.1f GB/s "
                            + "(read+written bytes); buffer %s, L3 %s",
                    readGBs, threads, readOneThreadGBs, writeGBs, copyGBs, mib(bufferBytes), l3Bytes > 0 ? mib(l3Bytes) : "unknown");
        }
    }

    static String mib(long bytes) { return String.format(Locale.ROOT, "%d MiB", bytes >> 20); }

    /** L3 size from sysfs (cpu0, index3), or -1. */
    public static long l3Bytes() {
        try {
            String s = Files.readString(Path.of("/sys/devices/system/cpu/cpu0/cache/index3/size")).trim();
            long mult = 1;
            char last = Character.toUpperCase(s.charAt(s.length() - 1));
            if (last == 'K') mult = 1L << 10;
            else if (last == 'M') mult = 1L << 20;
            else if (last == 'G') mult = 1L << 30;
            if (mult != 1) s = s.substring(0, s.length() - 1);
            return Long.parseLong(s) * mult;
        } catch (Exception e) {
            return -1;
        }
    }

    /**
     * Measures with a buffer of max(1 GiB, 4 x L3) (at most 4 GiB), best of {@code reps} passes per
     * measure. The memory is freed on return.
     */
    public static Result measure(int reps) {
        long l3 = l3Bytes();
        long bytes = Math.min(4L << 30, Math.max(1L << 30, l3 > 0 ? 4 * l3 : 0));
        bytes = bytes / (1 << 20) * (1 << 20);
        int threads = Runtime.getRuntime().availableProcessors();
        try (Arena arena = Arena.ofShared()) {
            MemorySegment a = arena.allocate(bytes, 4096);
            MemorySegment b = arena.allocate(bytes, 4096);
            parallel(threads, (lo, hi) -> a.asSlice(lo, hi - lo).fill((byte) 1), bytes); // touch every page
            parallel(threads, (lo, hi) -> b.asSlice(lo, hi - lo).fill((byte) 2), bytes);
            // warm the read loop up on a small slice so that the timed passes run compiled code
            MemorySegment small = a.asSlice(0, 1 << 20);
            for (int i = 0; i < 2000; i++) sink ^= sum(small, 0, small.byteSize());
            double read = 0, read1 = 0, write = 0, copy = 0;
            for (int r = 0; r < reps; r++) {
                read = Math.max(read, bytes / 1e9 / parallel(threads, (lo, hi) -> sink ^= sum(a, lo, hi), bytes));
                read1 = Math.max(read1, bytes / 1e9 / parallel(1, (lo, hi) -> sink ^= sum(a, lo, hi), bytes));
                write = Math.max(write, bytes / 1e9 / parallel(threads, (lo, hi) -> b.asSlice(lo, hi - lo).fill((byte) 3), bytes));
                copy = Math.max(copy, 2 * bytes / 1e9
                        / parallel(threads, (lo, hi) -> MemorySegment.copy(a, lo, b, lo, hi - lo), bytes));
            }
            return new Result(bytes, l3, threads, read, read1, write, copy);
        }
    }

    static volatile long sink;

    /** Sum of the longs of seg[lo, hi) (hi - lo a multiple of 4 vectors), four accumulators. */
    static long sum(MemorySegment seg, long lo, long hi) {
        long vb = S.vectorByteSize();
        LongVector s0 = LongVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
        long off = lo;
        for (; off + 4 * vb <= hi; off += 4 * vb) {
            s0 = s0.add(LongVector.fromMemorySegment(S, seg, off, ByteOrder.LITTLE_ENDIAN));
            s1 = s1.add(LongVector.fromMemorySegment(S, seg, off + vb, ByteOrder.LITTLE_ENDIAN));
            s2 = s2.add(LongVector.fromMemorySegment(S, seg, off + 2 * vb, ByteOrder.LITTLE_ENDIAN));
            s3 = s3.add(LongVector.fromMemorySegment(S, seg, off + 3 * vb, ByteOrder.LITTLE_ENDIAN));
        }
        long t = s0.add(s1).add(s2).add(s3).reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
        for (; off + 8 <= hi; off += 8) t += seg.get(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, off);
        return t;
    }

    interface Chunk {
        void run(long lo, long hi);
    }

    /** Runs body over [0, bytes) split in {@code threads} page-aligned chunks; returns seconds from start to the last end. */
    static double parallel(int threads, Chunk body, long bytes) {
        CyclicBarrier start = new CyclicBarrier(threads + 1);
        CyclicBarrier end = new CyclicBarrier(threads + 1);
        List<Thread> ts = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            long lo = bytes * t / threads / 4096 * 4096, hi = t == threads - 1 ? bytes : bytes * (t + 1) / threads / 4096 * 4096;
            Thread th = new Thread(() -> {
                try {
                    start.await();
                    body.run(lo, hi);
                    end.await();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }, "bandwidth-" + t);
            th.setDaemon(true);
            th.start();
            ts.add(th);
        }
        try {
            start.await();
            long t0 = System.nanoTime();
            end.await();
            long t1 = System.nanoTime();
            for (Thread th : ts) th.join();
            return (t1 - t0) / 1e9;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    public static void main(String[] args) {
        System.out.println(measure(args.length > 0 ? Integer.parseInt(args[0]) : 5).describe());
    }
}
