package dev.dsk4j;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Every {@link Context.CpuPath} opens, and each caps the path as documented. */
class ContextCpuPathTest {
    @ParameterizedTest
    @EnumSource(Context.CpuPath.class)
    void eachPathOpensWithinItsCap(Context.CpuPath path) {
        try (Context c = Context.open(Device.cpu(), Context.Options.defaults().withThreads(1).withCpuPath(path))) {
            String d = c.describe();
            assertTrue(d.startsWith("cpu: 1 thread, "), d);
            String simd = d.substring("cpu: 1 thread, ".length());
            switch (path) {
                case BEST -> assertTrue(simd.matches("avx512\\+amx|avx512|avx2\\+fma|portable"), d);
                case AVX512 -> assertTrue(simd.matches("avx512|avx2\\+fma|portable"), d);
                case AVX2 -> assertTrue(simd.matches("avx2\\+fma|portable"), d);
                case PORTABLE -> assertTrue(simd.equals("portable"), d);
            }
            if (path != Context.CpuPath.BEST) assertFalse(simd.contains("amx"), d);
        }
    }
}
