package dev.dsk4j.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dsk4j.Dsk4j;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class NativeLibraryTest {
    @Test
    void loadsFromAHashNamedFileAndReportsTheVersion() throws Exception {
        Path p = Dsk4j.libraryPath();
        assertTrue(Files.isRegularFile(p), p::toString);
        if (System.getProperty("dsk4j.library.path") == null) {
            String name = p.getFileName().toString();
            assertTrue(name.matches("libdsk4j-[0-9a-f]{20}\\.so"), name);
            // the name is the content hash of the file
            assertTrue(NativeLibrary.sha256(Files.readAllBytes(p)).startsWith(name.substring(9, 29)), name);
        }
        assertTrue(Dsk4j.version().matches("\\d+\\.\\d+\\.\\d+"), Dsk4j.version());
    }

    @Test
    void platformName() {
        String p = NativeLibrary.platform();
        assertTrue(p.contains("-"), p);
        if (System.getProperty("os.arch").equals("amd64")) assertEquals("linux-x86_64", p);
    }
}
