package dev.dsk4j.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Checks that the committed jextract bindings ({@link Dsk4jH}) still match native/include/dsk4j.h:
 * every exported dsk4j_* function and DSK4J_* integer constant of the header has its method in
 * Dsk4jH (constants with the same value), and Dsk4jH has no dsk4j_* / DSK4J_* method the header
 * no longer declares. On drift: run bindings/regenerate.sh.
 *
 * <p>The header is read from the system property {@code dsk4j.header} if set, else from
 * {@code ../native/include/dsk4j.h} relative to the working directory (Maven runs the tests in
 * the bindings module directory).
 */
class BindingsDriftTest {

    static final String HINT =
            "The bindings have drifted from native/include/dsk4j.h: run bindings/regenerate.sh "
                    + "(needs jextract, see bindings/GENERATED.md) and commit the regenerated files.";

    /** Header names that are #defined but are not integer constants of the API. */
    static final Set<String> NOT_CONSTANTS = Set.of("DSK4J_H", "DSK4J_EXPORT");

    /** What the header declares: function names, and constant names with their values (null: not an integer literal). */
    record HeaderApi(Set<String> functions, Map<String, Long> constants) {}

    // ---------------------------------------------------------------- parsing

    private static final Pattern BLOCK_COMMENT = Pattern.compile("/\\*.*?\\*/", Pattern.DOTALL);
    private static final Pattern LINE_COMMENT = Pattern.compile("//[^\\n]*");
    /** DSK4J_EXPORT, then the return type (anything but ';', '(', '{', '#'; may span lines), then the name and '('. */
    private static final Pattern FUNCTION =
            Pattern.compile("\\bDSK4J_EXPORT\\s+[^;(){}#]*?\\b(dsk4j_[A-Za-z0-9_]*)\\s*\\(");
    private static final Pattern DEFINE =
            Pattern.compile("^[ \\t]*#[ \\t]*define[ \\t]+(DSK4J_[A-Za-z0-9_]*)\\b(?!\\()([^\\n]*)$", Pattern.MULTILINE);
    private static final Pattern INTEGER =
            Pattern.compile("([+-]?)\\s*(0[xX][0-9A-Fa-f]+|0[0-7]*|[1-9][0-9]*)(?:[uU]?[lL]{0,2}|[lL]{1,2}[uU])");

    /** Removes comments, keeping line breaks so that #define lines stay lines. */
    static String stripComments(String text) {
        Matcher m = BLOCK_COMMENT.matcher(text);
        StringBuilder sb = new StringBuilder();
        while (m.find()) {
            String keptNewlines = m.group().replaceAll("[^\\n]", "");
            m.appendReplacement(sb, Matcher.quoteReplacement(" " + keptNewlines));
        }
        m.appendTail(sb);
        return LINE_COMMENT.matcher(sb).replaceAll("");
    }

    /** Parses the header text: exported dsk4j_* functions and DSK4J_* defines (sans DSK4J_H, DSK4J_EXPORT). */
    static HeaderApi parseHeader(String headerText) {
        String text = stripComments(headerText);
        Set<String> functions = new TreeSet<>();
        Matcher f = FUNCTION.matcher(text);
        while (f.find()) {
            functions.add(f.group(1));
        }
        Map<String, Long> constants = new LinkedHashMap<>();
        Matcher d = DEFINE.matcher(text);
        while (d.find()) {
            String name = d.group(1);
            if (NOT_CONSTANTS.contains(name)) {
                continue;
            }
            constants.put(name, parseInteger(d.group(2)));
        }
        return new HeaderApi(functions, constants);
    }

    /** The value of an integer literal such as {@code 2}, {@code (-1)}, {@code 0x10u}; null if it is something else. */
    static Long parseInteger(String value) {
        String v = value.strip();
        while (v.length() >= 2 && v.startsWith("(") && v.endsWith(")")) {
            v = v.substring(1, v.length() - 1).strip();
        }
        Matcher m = INTEGER.matcher(v);
        if (!m.matches()) {
            return null;
        }
        String digits = m.group(2);
        long magnitude;
        if (digits.startsWith("0x") || digits.startsWith("0X")) {
            magnitude = Long.parseUnsignedLong(digits.substring(2), 16);
        } else if (digits.length() > 1 && digits.startsWith("0")) {
            magnitude = Long.parseLong(digits.substring(1), 8);
        } else {
            magnitude = Long.parseLong(digits);
        }
        return "-".equals(m.group(1)) ? -magnitude : magnitude;
    }

    // ---------------------------------------------------------------- comparison

    private static boolean isPublicStatic(Method m) {
        return Modifier.isPublic(m.getModifiers()) && Modifier.isStatic(m.getModifiers());
    }

    /**
     * Every difference between the header and the bindings class, one line each (empty: in sync).
     * Only plain names count: jextract's companions such as {@code dsk4j_x$handle} are ignored.
     */
    static List<String> drift(HeaderApi header, Class<?> bindings) {
        Map<String, Method> javaFunctions = new LinkedHashMap<>();
        Map<String, Method> javaConstants = new LinkedHashMap<>();
        for (Method m : bindings.getMethods()) {
            if (!isPublicStatic(m) || m.getName().contains("$")) {
                continue;
            }
            if (m.getName().startsWith("dsk4j_")) {
                javaFunctions.putIfAbsent(m.getName(), m);
            } else if (m.getName().startsWith("DSK4J_") && m.getParameterCount() == 0) {
                javaConstants.putIfAbsent(m.getName(), m);
            }
        }

        List<String> problems = new ArrayList<>();
        for (String fn : header.functions()) {
            if (!javaFunctions.containsKey(fn)) {
                problems.add("function " + fn + " is declared in dsk4j.h but missing from " + bindings.getSimpleName());
            }
        }
        for (String fn : javaFunctions.keySet()) {
            if (!header.functions().contains(fn)) {
                problems.add("function " + fn + " is in " + bindings.getSimpleName() + " but no longer declared in dsk4j.h");
            }
        }
        for (Map.Entry<String, Long> c : header.constants().entrySet()) {
            Method m = javaConstants.get(c.getKey());
            if (m == null) {
                problems.add("constant " + c.getKey() + " is #defined in dsk4j.h but missing from " + bindings.getSimpleName());
                continue;
            }
            if (c.getValue() == null) {
                continue; // not an integer literal: the name is all we can check
            }
            Object actual;
            try {
                actual = m.invoke(null);
            } catch (IllegalAccessException | InvocationTargetException e) {
                problems.add("constant " + c.getKey() + " could not be read from " + bindings.getSimpleName() + ": " + e);
                continue;
            }
            if (!(actual instanceof Number n) || n.longValue() != c.getValue()) {
                problems.add("constant " + c.getKey() + " is " + c.getValue() + " in dsk4j.h but " + actual
                        + " in " + bindings.getSimpleName());
            }
        }
        for (String name : javaConstants.keySet()) {
            if (!header.constants().containsKey(name)) {
                problems.add("constant " + name + " is in " + bindings.getSimpleName() + " but no longer #defined in dsk4j.h");
            }
        }
        return problems;
    }

    static Path headerPath() {
        String prop = System.getProperty("dsk4j.header");
        if (prop != null && !prop.isBlank()) {
            return Path.of(prop);
        }
        Path fromModule = Path.of("..", "native", "include", "dsk4j.h");
        if (Files.isRegularFile(fromModule)) {
            return fromModule;
        }
        Path fromRoot = Path.of("native", "include", "dsk4j.h");
        return Files.isRegularFile(fromRoot) ? fromRoot : fromModule;
    }

    static String readHeader(Path path) throws IOException {
        if (!Files.isRegularFile(path)) {
            fail("dsk4j.h not found at " + path.toAbsolutePath()
                    + " (run the test from the bindings module directory or set -Ddsk4j.header=<path>)");
        }
        return Files.readString(path, StandardCharsets.UTF_8);
    }

    // ---------------------------------------------------------------- tests

    @Test
    void bindingsMatchHeader() throws IOException {
        Path path = headerPath();
        HeaderApi header = parseHeader(readHeader(path));
        assertFalse(header.functions().isEmpty(), "no DSK4J_EXPORT dsk4j_* function parsed from " + path.toAbsolutePath());
        assertFalse(header.constants().isEmpty(), "no #define DSK4J_* constant parsed from " + path.toAbsolutePath());

        List<String> problems = drift(header, Dsk4jH.class);
        if (!problems.isEmpty()) {
            fail(HINT + "\n  header: " + path.toAbsolutePath() + "\n  - " + String.join("\n  - ", problems));
        }
    }

    @Test
    void parserReadsSyntheticHeader() {
        String text = """
                #ifndef DSK4J_H
                #define DSK4J_H
                #include <stdint.h>
                #if defined(DSK4J_BUILDING)
                #define DSK4J_EXPORT __attribute__((visibility("default")))
                #else
                #define DSK4J_EXPORT
                #endif
                #define DSK4J_A 7
                #define DSK4J_NEG  (-12) /* a comment */
                #  define DSK4J_HEX 0x1Fu
                #define DSK4J_MACRO(x) ((x) + 1)
                /* DSK4J_EXPORT int dsk4j_in_comment(void);
                #define DSK4J_IN_COMMENT 3 */
                // DSK4J_EXPORT int dsk4j_in_line_comment(void);
                typedef struct dsk4j_context dsk4j_context;
                DSK4J_EXPORT const char* dsk4j_one(void);
                DSK4J_EXPORT int dsk4j_two(dsk4j_context* ctx, void* y,
                                           int64_t y_bytes,
                                           int32_t flags);
                DSK4J_EXPORT
                const void *
                dsk4j_three (int32_t* out);
                int dsk4j_internal_not_exported(void);
                #endif
                """;
        HeaderApi api = parseHeader(text);
        assertEquals(new TreeSet<>(List.of("dsk4j_one", "dsk4j_three", "dsk4j_two")), api.functions());
        Map<String, Long> expected = new LinkedHashMap<>();
        expected.put("DSK4J_A", 7L);
        expected.put("DSK4J_NEG", -12L);
        expected.put("DSK4J_HEX", 31L);
        assertEquals(expected, api.constants());
    }

    @Test
    void addingAFunctionToACopiedHeaderIsReportedAsDrift(@TempDir Path tmp) throws IOException {
        String original = readHeader(headerPath());
        int end = original.lastIndexOf("#ifdef __cplusplus");
        assertTrue(end > 0, "unexpected header layout: no closing '#ifdef __cplusplus'");
        String mutated = original.substring(0, end)
                + "/* added by the test */\nDSK4J_EXPORT int dsk4j_fake_added(dsk4j_context* ctx,\n"
                + "                                  int64_t n);\n"
                + "#define DSK4J_FAKE_ADDED (-42)\n\n"
                + original.substring(end);
        Path copy = tmp.resolve("dsk4j.h");
        Files.writeString(copy, mutated, StandardCharsets.UTF_8);

        HeaderApi before = parseHeader(original);
        HeaderApi after = parseHeader(readHeader(copy));
        Set<String> addedFunctions = new LinkedHashSet<>(after.functions());
        addedFunctions.removeAll(before.functions());
        assertEquals(Set.of("dsk4j_fake_added"), addedFunctions);
        assertEquals(-42L, after.constants().get("DSK4J_FAKE_ADDED"));

        List<String> problems = drift(after, Dsk4jH.class);
        assertTrue(problems.stream().anyMatch(p -> p.contains("dsk4j_fake_added") && p.contains("missing")),
                "drift not detected: " + problems);
        assertTrue(problems.stream().anyMatch(p -> p.contains("DSK4J_FAKE_ADDED") && p.contains("missing")),
                "drift not detected: " + problems);
        assertEquals(2, problems.size(), "only the two additions should drift: " + problems);

        // the reverse direction: a function dropped from the header is reported as well
        String removed = original.replaceFirst("DSK4J_EXPORT int dsk4j_synchronize\\(", "int dsk4j_synchronize(");
        List<String> reverse = drift(parseHeader(removed), Dsk4jH.class);
        assertEquals(1, reverse.size(), "expected exactly the removed function: " + reverse);
        assertTrue(reverse.get(0).contains("dsk4j_synchronize") && reverse.get(0).contains("no longer"), reverse.get(0));
    }
}
