package dev.dsk4j.conformance;

import java.util.List;
import java.util.stream.Stream;

/** The backends the tests run on (every one usable here); prints once which ones are not. */
final class Backends {
    private static final List<Backend> ALL;

    static {
        ALL = Backend.available();
        System.out.println("[conformance] backends under test: " + ALL);
        for (String line : Backend.unavailable()) System.out.println("[conformance] skipped backend: " + line);
    }

    private Backends() {}

    static Stream<Backend> all() { return ALL.stream(); }
}
