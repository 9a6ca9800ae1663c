package dev.dsk4j;

import dev.dsk4j.bindings.Dsk4jH;
import dev.dsk4j.internal.Native;
import dev.dsk4j.internal.NativeLibrary;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Library facts: version, where the native library came from, which backends exist. */
public final class Dsk4j {
    private Dsk4j() {}

    /** The native library's version, "major.minor.patch". */
    public static String version() {
        Native.ensureLoaded();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ValueLayout.JAVA_INT, 3);
            Native.check(Dsk4jH.dsk4j_version(v, v.asSlice(4), v.asSlice(8)));
            return v.getAtIndex(ValueLayout.JAVA_INT, 0) + "." + v.getAtIndex(ValueLayout.JAVA_INT, 1) + "."
                    + v.getAtIndex(ValueLayout.JAVA_INT, 2);
        }
    }

    /** The file the native library was loaded from. */
    public static Path libraryPath() { return NativeLibrary.load(); }

    /**
     * The number of CUDA devices, or a {@link Dsk4jException} with {@link Status#UNAVAILABLE} and
     * the driver's message where there is no usable driver.
     */
    public static int cudaDeviceCount() {
        Native.ensureLoaded();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(ValueLayout.JAVA_INT);
            Native.check(Dsk4jH.dsk4j_cuda_device_count(n));
            return n.get(ValueLayout.JAVA_INT, 0);
        }
    }

    /** Why CUDA cannot be used here, or null if at least one device is present. */
    public static String cudaUnavailableReason() {
        try {
            int n = cudaDeviceCount();
            return n > 0 ? null : "the CUDA driver reports no devices";
        } catch (Dsk4jException e) {
            return e.getMessage();
        }
    }

    /** The devices found: {@code cpu} always, then {@code cuda:N} for each CUDA device. */
    public static List<Device> devices() {
        List<Device> out = new ArrayList<>();
        out.add(Device.cpu());
        int n;
        try {
            n = cudaDeviceCount();
        } catch (Dsk4jException e) {
            n = 0;
        }
        for (int i = 0; i < n; i++) out.add(Device.cuda(i));
        return out;
    }
}
