package dev.dsk4j;

/** A backend a {@link Context} can be opened on: the CPU, or CUDA device N. */
public sealed interface Device permits Device.Cpu, Device.Cuda {

    /** The device string of the C ABI: "cpu" or "cuda:N". */
    String id();

    /** The CPU backend (always available). */
    record Cpu() implements Device {
        @Override public String id() { return "cpu"; }
        @Override public String toString() { return id(); }
    }

    /** CUDA device {@code ordinal}. */
    record Cuda(int ordinal) implements Device {
        public Cuda {
            if (ordinal < 0) throw new IllegalArgumentException("argument 'ordinal' must be >= 0, got " + ordinal);
        }
        @Override public String id() { return "cuda:" + ordinal; }
        @Override public String toString() { return id(); }
    }

    /** The CPU. */
    static Device cpu() { return new Cpu(); }

    /** CUDA device {@code ordinal}. */
    static Device cuda(int ordinal) { return new Cuda(ordinal); }

    /** Parses "cpu" or "cuda:N". */
    static Device parse(String id) {
        if (id == null) throw new IllegalArgumentException("argument 'id' is null");
        if (id.equals("cpu")) return cpu();
        if (id.startsWith("cuda:")) {
            try {
                return cuda(Integer.parseInt(id.substring(5)));
            } catch (NumberFormatException e) {
                // fall through to the message below
            }
        }
        throw new IllegalArgumentException("argument 'id' must be \"cpu\" or \"cuda:N\", got \"" + id + "\"");
    }
}
