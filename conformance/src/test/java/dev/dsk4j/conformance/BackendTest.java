package dev.dsk4j.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsk4j.Context;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Each CPU backend opens the path its name says (so a test "on cpu/amx" really runs the AMX tiles). */
@ExtendWith(Backends.SkipUnavailable.class)
class BackendTest {
    static java.util.stream.Stream<Backend> backends() { return Backends.withMissing(); }

    @ParameterizedTest
    @MethodSource("backends")
    void cpuBackendsRunThePathTheyAreNamedFor(Backend backend) {
        try (Context c = backend.open()) {
            String d = c.describe();
            switch (backend.name()) {
                case "cpu/amx" -> assertTrue(d.endsWith(", avx512+amx"), d);
                case "cpu/avx512" -> assertTrue(d.endsWith(", avx512"), d);
                case "cpu/avx2" -> assertTrue(d.endsWith(", avx2+fma"), d);
                case "cpu/portable" -> assertTrue(d.endsWith(", portable"), d);
                default -> assertTrue(backend.name().startsWith("cuda:"), backend.name());
            }
        }
    }

    @Test
    void eachNameOnceAndTheMissingOnesRefuseToOpen() {
        List<String> names = Backends.withMissing().map(Backend::name).toList();
        assertEquals(names.size(), names.stream().distinct().count(), names::toString);
        assertTrue(names.contains(Backend.CPU_AMX), names::toString); // usable or listed as missing, never absent
        for (Backend b : Backend.missing()) {
            var e = assertThrows(Backend.UnavailableException.class, b::open);
            assertTrue(e.getMessage().contains(b.name()) && e.getMessage().contains("AMX"), e.getMessage());
        }
    }
}
