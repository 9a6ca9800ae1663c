package dev.dsk4j.conformance;

import dev.dsk4j.Context;
import dev.dsk4j.Device;
import dev.dsk4j.Dsk4j;
import dev.dsk4j.Dsk4jException;
import java.util.ArrayList;
import java.util.List;

/**
 * One code path under test: a device plus the options that select its kernels, e.g.
 * {@code cpu/amx}, {@code cpu/avx512}, {@code cpu/avx2}, {@code cpu/portable}, {@code cuda:0/fast},
 * {@code cuda:0/reference}.
 *
 * @param unavailableReason null for a path usable here; otherwise why this machine lacks it (such a
 *                          backend comes only from {@link #missing}, and {@link #open()} refuses it)
 */
public record Backend(String name, Device device, Context.Options options, String unavailableReason) {

    /** A backend usable here. */
    public Backend(String name, Device device, Context.Options options) { this(name, device, options, null); }

    /** The name of the CPU path with AMX-BF16 tiles for the GEMMs (the best path where present). */
    public static final String CPU_AMX = "cpu/amx";

    /** Thrown by {@link #open()} for a backend this machine lacks. */
    public static final class UnavailableException extends IllegalStateException {
        UnavailableException(String message) { super(message); }
    }

    /** Opens a context for this backend. */
    public Context open() {
        if (unavailableReason != null) throw new UnavailableException(name + ": unavailable here: " + unavailableReason);
        return Context.open(device, options);
    }

    /** True when this machine has this path ({@link #open()} works). */
    public boolean usable() { return unavailableReason == null; }

    @Override public String toString() { return name; }

    /**
     * Every backend usable here: the CPU's best path and each narrower one (AMX tiles + AVX-512,
     * AVX-512 only, AVX2+FMA, portable C), and for each CUDA device its fast and its reference
     * kernels. A CUDA device that fails to open is reported by {@link #unavailable()} rather than
     * silently dropped.
     */
    public static List<Backend> available() {
        List<Backend> out = new ArrayList<>();
        String best = bestCpu();
        Context.Options defaults = Context.Options.defaults();
        out.add(new Backend(best, Device.cpu(), defaults));
        if (best.equals(CPU_AMX))
            out.add(new Backend("cpu/avx512", Device.cpu(), defaults.withCpuPath(Context.CpuPath.AVX512)));
        if (best.equals(CPU_AMX) || best.equals("cpu/avx512"))
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

    /**
     * The CPU paths this library has but this machine cannot run, as backends whose {@link #open()}
     * throws {@link UnavailableException} with the reason: today only {@code cpu/amx} (no AMX-TILE/
     * AMX-BF16 with AVX-512 VBMI, or the kernel did not grant the tile state). Tests list them so
     * that their cases show as skipped with the reason instead of vanishing.
     */
    public static List<Backend> missing() {
        if (bestCpu().equals(CPU_AMX)) return List.of();
        return List.of(new Backend(CPU_AMX, Device.cpu(), Context.Options.defaults(),
                "the CPU has no AMX-BF16 tiles with AVX-512 (or Linux did not grant this process the AMX tile state)"));
    }

    /** The name of the path a default cpu context takes, from its description. */
    private static String bestCpu() {
        try (Context c = Context.open(Device.cpu())) {
            String d = c.describe();
            return d.contains("amx") ? CPU_AMX : d.contains("avx512") ? "cpu/avx512" : d.contains("avx2") ? "cpu/avx2" : "cpu/portable";
        }
    }

    /** Lines saying which backends could not be used here and why (empty when all could). */
    public static List<String> unavailable() {
        List<String> out = new ArrayList<>();
        for (Backend b : missing()) out.add(b.name() + ": unavailable: " + b.unavailableReason());
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
