package dev.dsk4j.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.util.Optional;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** The AMX ceiling: measured where the library was built and the CPU has AMX, else "n/a" with a reason. */
class AmxPeakTest {
    @Test
    void measuresOrSaysWhyNot() {
        Assumptions.assumeTrue(Files.isRegularFile(AmxPeak.library()),
                "SKIPPED: " + AmxPeak.library() + " was not built (no gcc >= 11 here)");
        Optional<AmxPeak.Result> r = AmxPeak.measure(1);
        String line = AmxPeak.describe(r);
        System.out.println("[amx peak] " + line);
        if (r.isEmpty()) {
            assertTrue(line.startsWith("AMX-BF16 peak n/a: ") && AmxPeak.whyMissing() != null, line);
            Assumptions.abort("SKIPPED: " + AmxPeak.whyMissing());
        }
        assertEquals(Runtime.getRuntime().availableProcessors(), r.get().threads());
        assertTrue(r.get().gflops() > 0 && r.get().gflopsOneThread() > 0, line);
    }

    @Test
    void aMissingLibraryReadsNotAvailable() {
        String old = System.getProperty(AmxPeak.PROPERTY);
        System.setProperty(AmxPeak.PROPERTY, "/nonexistent/libdsk4jbench.so");
        try {
            Optional<AmxPeak.Result> r = AmxPeak.measure(1);
            assertTrue(r.isEmpty());
            assertTrue(AmxPeak.describe(r).startsWith("AMX-BF16 peak n/a: /nonexistent/libdsk4jbench.so not found"),
                    AmxPeak.describe(r));
        } finally {
            if (old == null) System.clearProperty(AmxPeak.PROPERTY);
            else System.setProperty(AmxPeak.PROPERTY, old);
        }
    }
}
