package dev.dsk4j.internal;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;

/**
 * Finds and loads libdsk4j.so once per class loader, like sqlite-jdbc and LWJGL do: the
 * library shipped in this jar is extracted into a per-user cache folder under a content-hash
 * name (written to a temporary file, then renamed atomically, so concurrent JVMs never see a
 * partial file) and loaded from there. {@code -Ddsk4j.library.path=FILE_OR_DIR} loads a library
 * of your own instead; {@code -Ddsk4j.cache.dir=DIR} moves the cache.
 */
public final class NativeLibrary {
    /** Where the jar keeps the library: {@code dev/dsk4j/internal/native/<os>-<arch>/libdsk4j.so}. */
    static final String RESOURCE_DIR = "/dev/dsk4j/internal/native/";
    static final String LIBRARY_FILE = "libdsk4j.so";

    private static volatile Path loaded;

    private NativeLibrary() {}

    /** Loads the library if not yet loaded; returns the file loaded. Thread-safe. */
    public static Path load() {
        Path p = loaded;
        if (p != null) return p;
        synchronized (NativeLibrary.class) {
            if (loaded == null) loaded = doLoad();
            return loaded;
        }
    }

    private static Path doLoad() {
        String override = System.getProperty("dsk4j.library.path");
        Path file;
        if (override != null && !override.isBlank()) {
            Path o = Path.of(override);
            file = Files.isDirectory(o) ? o.resolve(LIBRARY_FILE) : o;
            if (!Files.isRegularFile(file)) {
                throw new IllegalStateException("dsk4j: -Ddsk4j.library.path=" + override + " names no file "
                        + "(expected a path to " + LIBRARY_FILE + " or the folder holding it)");
            }
        } else {
            file = extract();
        }
        try {
            System.load(file.toAbsolutePath().toString());
        } catch (UnsatisfiedLinkError e) {
            throw new IllegalStateException("dsk4j: cannot load the native library " + file + ": " + e.getMessage()
                    + " (platform " + platform() + ")", e);
        }
        return file;
    }

    /** "linux-x86_64" etc. */
    static String platform() {
        String os = System.getProperty("os.name", "?").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "?").toLowerCase(Locale.ROOT);
        String o = os.contains("linux") ? "linux" : os.contains("mac") ? "macos" : os.contains("win") ? "windows" : os;
        String a = switch (arch) {
            case "amd64", "x86_64" -> "x86_64";
            case "aarch64", "arm64" -> "aarch64";
            default -> arch;
        };
        return o + "-" + a;
    }

    private static Path extract() {
        String platform = platform();
        String resource = RESOURCE_DIR + platform + "/" + LIBRARY_FILE;
        byte[] bytes;
        try (InputStream in = NativeLibrary.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("dsk4j: this jar has no native library for " + platform
                        + " (looked for resource " + resource + "); dsk4j ships linux-x86_64. Build native/ "
                        + "yourself and run with -Ddsk4j.library.path=/path/to/" + LIBRARY_FILE);
            }
            bytes = in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("dsk4j: cannot read resource " + resource, e);
        }
        String hash = sha256(bytes).substring(0, 20);
        Path dir = cacheDir();
        Path target = dir.resolve("libdsk4j-" + hash + ".so");
        try {
            if (Files.isRegularFile(target) && sha256(Files.readAllBytes(target)).startsWith(hash)) {
                return target;
            }
            Files.createDirectories(dir);
            Path tmp = Files.createTempFile(dir, "libdsk4j-" + hash + "-", ".tmp");
            try {
                Files.write(tmp, bytes);
                try {
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
                }
            } finally {
                Files.deleteIfExists(tmp);
            }
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException("dsk4j: cannot extract the native library into " + dir
                    + " (set -Ddsk4j.cache.dir to a writable folder, or -Ddsk4j.library.path)", e);
        }
    }

    static Path cacheDir() {
        String prop = System.getProperty("dsk4j.cache.dir");
        if (prop != null && !prop.isBlank()) return Path.of(prop);
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank()) return Path.of(xdg, "dsk4j");
        String home = System.getProperty("user.home");
        if (home != null && !home.isBlank() && Files.isWritable(Path.of(home))) return Path.of(home, ".cache", "dsk4j");
        return Path.of(System.getProperty("java.io.tmpdir"), "dsk4j-" + System.getProperty("user.name", "user"));
    }

    static String sha256(byte[] data) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }
}
