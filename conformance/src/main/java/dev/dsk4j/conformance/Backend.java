package dev.dsk4j.conformance;

import dev.dsk4j.Context;
import dev.dsk4j.Device;
import dev.dsk4j.Dsk4j;
import dev.dsk4j.Dsk4jException;
import java.util.ArrayList;
import java.util.List;

/**
 * One code path under test: a device plus the options that select its kernels, e.g.
 * {@code cpu/avx512}, {@code cpu/avx2}, {@code cpu/portable}, {@code cuda:0/fast}, {@code cuda:0/reference}.
 */
public record Backend(String name, Device device, Context.Options options) {

    /** Opens a context for this backend. */
    public Context open() { return Context.open(device, options); }

    @Override public String toString() { return name; }

    /**
     * Every backend usable here: the CPU's best path and each narrower one (AVX-512, AVX2+FMA,
     * portable C), and for each CUDA device its fast and its reference kernels. A CUDA device that
     * fails to open is reported by {@link #unavailable()} rather than silently dropped.
     */
    public static List<Backend> available() {
        List<Backend> out = new ArrayList<>();
        String best;
        try (Context c = Context.open(Device.cpu())) {
            String d = c.describe();
            best = d.contains("avx512") ? "cpu/avx512" : d.contains("avx2") ? "cpu/avx2" : "cpu/portable";
        }
        Context.Options defaults = Context.Options.defaults();
        out.add(new Backend(best, Device.cpu(), defaults));
        if (best.equals("cpu/avx512"))
            out.add(new Backend("cpu/avx2", Device.cpu(), defaults.withCpuPath(Context.CpuPath.AVX2)));
        if (!best.equals("cpu/portable"))
            out.add(new Backend("cpu/portable", Device.cpu(), defaults.withCpuPath(Context.CpuPath.PORTABLE)));
        for (Device d : Dsk4j.devices()) {
            if (!(d instanceof Device.Cuda)) continue;
            Backend fast = new Backend(d.id() + "/fast", d, Context.Options.defaults());
            Backend ref = new Backend(d.id() + "/reference", d, defaults.withReferenceKernels(true));
            for (Backend b : List.of(fast, ref)) {
                try {
                    b.open().close();
                    out.add(b);
                } catch (Dsk4jException e) {
                    // reported by unavailable()
                }
            }
        }
        return out;
    }

    /** Lines saying which backends could not be used here and why (empty when all could). */
    public static List<String> unavailable() {
        List<String> out = new ArrayList<>();
        String reason = Dsk4j.cudaUnavailableReason();
        if (reason != null) out.add("cuda: unavailable: " + reason);
        for (Device d : Dsk4j.devices()) {
            if (!(d instanceof Device.Cuda)) continue;
            try {
                Context.open(d).close();
            } catch (Dsk4jException e) {
                out.add(d.id() + ": unavailable: " + e.getMessage());
            }
        }
        return out;
    }
}
