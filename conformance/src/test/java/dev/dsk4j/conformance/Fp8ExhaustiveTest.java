package dev.dsk4j.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsk4j.Dsk4j;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * All 2^32 f32 bit patterns through the CPU backend's fp8.cast (every SIMD path) against
 * NVIDIA's cuda_fp8.h host conversion, bit for bit. Needs the CUDA headers and a C++ compiler;
 * skipped with the reason where they are missing.
 *
 * <p>Flags 0 (the best path) and 8 (DSK4J_CPU_MAX_AVX512, the {@code cpu/avx512} backend where AMX
 * exists) run the same cast code: the fp8 conversions and quantizations choose their kernels by the
 * SIMD level alone ({@code ctx->simd} in native/src/cpu_fp8.c) and AMX tiles serve only the GEMMs.
 * So {@code cpu/amx} and {@code cpu/avx512} share one 2^32 run (flags 0; each run takes about a minute on the 2-core VM)
 * instead of two.
 */
class Fp8ExhaustiveTest {
    private static final Pattern LINE = Pattern.compile("format=(\\w+) checked=(\\d+) mismatches=(\\d+)(.*)");

    static Path cudaInclude() {
        List<Path> candidates = new ArrayList<>();
        for (String env : new String[] {"CUDA_HOME", "CUDA_PATH"}) {
            String v = System.getenv(env);
            if (v != null) candidates.add(Path.of(v, "include"));
        }
        candidates.add(Path.of("/usr/local/cuda/include"));
        candidates.add(Path.of("/usr/include"));
        for (Path p : candidates) if (Files.isRegularFile(p.resolve("cuda_fp8.h"))) return p;
        return null;
    }

    static Path compiler() {
        for (String c : new String[] {"g++", "c++", "clang++"})
            for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin").split(":"))
                if (Files.isExecutable(Path.of(dir, c))) return Path.of(dir, c);
        return null;
    }

    static String run(List<String> cmd, long timeoutSeconds) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(timeoutSeconds, TimeUnit.SECONDS), "timed out: " + cmd);
        String text = new String(out, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), () -> String.join(" ", cmd) + " failed:\n" + text);
        return text;
    }

    @ParameterizedTest(name = "flags={0}")
    @ValueSource(ints = {0, 4, 1}) // 0: best path (AVX-512, = cpu/amx and cpu/avx512 for casts), 4: DSK4J_CPU_MAX_AVX2, 1: DSK4J_CPU_FORCE_PORTABLE
    void everyF32BitPatternMatchesCudaFp8Host(int flags) throws Exception {
        Path include = cudaInclude();
        Assumptions.assumeTrue(include != null,
                "SKIPPED: cuda_fp8.h not found (set CUDA_HOME); the 2^32 comparison with NVIDIA's conversion needs it");
        Path cxx = compiler();
        Assumptions.assumeTrue(cxx != null, "SKIPPED: no C++ compiler (g++, c++, clang++) on PATH");
        Path src = Path.of("src/test/native/fp8_exhaustive.cpp").toAbsolutePath();
        Path header = Path.of("../native/include").toAbsolutePath();
        Path exe = Path.of("target/fp8_exhaustive").toAbsolutePath();
        run(List.of(cxx.toString(), "-O2", "-std=c++17", "-pthread", "-I" + include, "-I" + header, src.toString(),
                "-o", exe.toString(), "-ldl"), 300);
        String out = run(List.of(exe.toString(), Dsk4j.libraryPath().toString(), Integer.toString(flags)), 900);
        System.out.print("[fp8 exhaustive, flags=" + flags + "] " + out);
        int formats = 0;
        for (String line : out.split("\n")) {
            Matcher m = LINE.matcher(line.trim());
            if (!m.matches()) continue;
            formats++;
            assertEquals(1L << 32, Long.parseLong(m.group(2)), line);
            assertEquals(0L, Long.parseLong(m.group(3)), () -> "mismatches against cuda_fp8.h: " + line);
        }
        assertEquals(2, formats, "expected a line for e4m3 and e5m2:\n" + out);
    }
}
