package dev.dsk4j.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ProgressTest {
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
    private final AtomicLong now = new AtomicLong(1_000_000_000L);

    private String text() { return bytes.toString(StandardCharsets.UTF_8); }

    @Test
    void notATerminalPrintsOnlyTheFinalLine() {
        Progress p = Progress.to(out, false, now::get, "loading", 1_200_000_000L, "B");
        for (int k = 0; k < 12; k++) {
            now.addAndGet(300_000_000L);
            p.advance(100_000_000L);
        }
        assertEquals("", text(), "nothing before close");
        now.addAndGet(-200_000_000L);
        p.close();
        p.close();
        assertEquals("loading 100% 1.2 GB in 3.4 s\n", text());
    }

    @Test
    void terminalRedrawsInPlaceAtMostTenTimesASecond() {
        Progress p = Progress.to(out, true, now::get, "loading", 61, "layers");
        for (int k = 0; k < 61; k++) {
            now.addAndGet(20_000_000L); // 50 advances per second
            p.advance(1);
        }
        p.close();
        String s = text();
        long redraws = s.chars().filter(c -> c == '\r').count() - 1; // the final line starts with '\r' too
        // 61 advances 20 ms apart: drawn at the first, then once per 100 ms (advances 1, 6, 11, ..., 61)
        assertEquals(13, redraws, s);
        assertTrue(s.startsWith("\rloading   2% 1 layers / 61 layers\rloading  10% 6 layers / 61 layers"), s);
        assertTrue(s.matches("(?s).*\\rloading 100% 61 layers in 1\\.2 s *\n"), s);
        assertEquals(1, s.chars().filter(c -> c == '\n').count());
    }

    @Test
    void quietPrintsNothingAndCountsStillWork() {
        PrintStream saved = System.err;
        System.setErr(out);
        try {
            Progress p = Progress.quiet();
            p.advance(5);
            assertEquals(5, p.done());
            p.close();
        } finally {
            System.setErr(saved);
        }
        assertEquals("", text());
    }

    @Test
    void unknownTotalAndArguments() {
        Progress p = Progress.to(out, false, now::get, "scan", 0, "tensors");
        p.advance(7);
        assertThrows(IllegalArgumentException.class, () -> p.advance(-1));
        p.close();
        assertEquals("scan 7 tensors in 0.0 s\n", text());
    }

    @Test
    void advancingFromManyThreadsCountsEverything() throws InterruptedException {
        Progress p = Progress.to(out, true, System::nanoTime, "par", 8 * 10_000, "B");
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 8; t++) threads.add(Thread.ofPlatform().start(() -> {
            for (int k = 0; k < 10_000; k++) p.advance(1);
        }));
        for (Thread t : threads) t.join();
        p.close();
        assertEquals(80_000, p.done());
        assertTrue(text().contains("par 100% 80.0 kB in "), text());
    }
}
