package dev.dsk4j.conformance;

import java.lang.reflect.Method;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.InvocationInterceptor;
import org.junit.jupiter.api.extension.ReflectiveInvocationContext;

/**
 * The backends the tests run on (every one usable here); prints once which ones are not.
 * Parameterized tests take {@link #withMissing()} and carry {@code @ExtendWith(Backends.SkipUnavailable.class)}:
 * a CPU path this machine lacks ({@code cpu/amx} without AMX) then shows as a skipped case with the
 * reason, not as a case that silently vanished.
 */
final class Backends {
    private static final List<Backend> ALL;
    private static final List<Backend> MISSING;

    static {
        ALL = Backend.available();
        MISSING = Backend.missing();
        System.out.println("[conformance] backends under test: " + ALL);
        for (String line : Backend.unavailable()) System.out.println("[conformance] skipped backend: " + line);
    }

    private Backends() {}

    /** Every backend usable here. */
    static Stream<Backend> all() { return ALL.stream(); }

    /** {@link #all()}, then the CPU paths this machine lacks (their cases are skipped, see {@link SkipUnavailable}). */
    static Stream<Backend> withMissing() { return Stream.concat(ALL.stream(), MISSING.stream()); }

    /** Aborts (JUnit: skipped, with the reason) a test invocation whose Backend argument is not usable here. */
    static final class SkipUnavailable implements InvocationInterceptor {
        @Override
        public void interceptTestTemplateMethod(Invocation<Void> invocation, ReflectiveInvocationContext<Method> call,
                                                ExtensionContext context) throws Throwable {
            for (Object arg : call.getArguments()) {
                if (arg instanceof Backend b && !b.usable()) {
                    invocation.skip();
                    Assumptions.abort("SKIPPED " + b.name() + ": " + b.unavailableReason());
                }
            }
            invocation.proceed();
        }
    }
}
