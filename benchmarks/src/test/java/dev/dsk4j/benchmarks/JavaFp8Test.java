package dev.dsk4j.benchmarks;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dsk4j.conformance.Fp8Reference;
import java.io.File;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Test;

/**
 * JavaFp8 and VectorFp8 (the pure-Java peers of the benchmarks) are bit-exact with
 * Fp8Reference: conversions on all 2^16 bf16-derived values, midpoints, random bit patterns and
 * specials; act_quant, weight_quant and weight_dequant on one thread and on all cores.
 */
class JavaFp8Test {

    @Test
    void javaFp8IsBitExact() {
        Fp8Exactness.checkAll(Fp8Exactness.JAVA);
    }

    @Test
    void vectorFp8IsBitExact() throws IOException, InterruptedException {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()) {
            Fp8Exactness.checkAll(VectorFp8CheckMain.VECTOR);
            return;
        }
        // The test JVM was started without --add-modules jdk.incubator.vector: check in a child JVM that has it.
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(List.of(java, "--add-modules", "jdk.incubator.vector", "-Xss4m", "-cp",
                classPath(), VectorFp8CheckMain.class.getName()))
                .redirectErrorStream(true).start();
        String out;
        try (var in = p.getInputStream()) {
            out = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        if (!p.waitFor(10, TimeUnit.MINUTES)) p.destroyForcibly();
        System.out.print(out);
        assertEquals(0, p.exitValue(), "VectorFp8 check in a child JVM failed:\n" + out);
    }

    /** This JVM's class path plus where the classes the check needs came from (surefire may hide them). */
    private static String classPath() {
        Set<String> entries = new LinkedHashSet<>();
        for (Class<?> c : List.of(VectorFp8CheckMain.class, JavaFp8.class, Fp8Reference.class, Assertions.class,
                dev.dsk4j.Tensor.class, dev.dsk4j.bindings.Dsk4jH.class)) {
            try {
                entries.add(Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString());
            } catch (URISyntaxException | RuntimeException e) {
                // fall back to java.class.path alone for this one
            }
        }
        entries.addAll(List.of(System.getProperty("java.class.path").split(File.pathSeparator)));
        return String.join(File.pathSeparator, entries);
    }
}
