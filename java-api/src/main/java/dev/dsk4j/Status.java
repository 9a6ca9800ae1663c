package dev.dsk4j;

/** Status codes of the C ABI (DSK4J_ERR_*). */
public enum Status {
    INVALID_ARGUMENT(-1),
    UNSUPPORTED(-2),
    UNAVAILABLE(-3),
    OUT_OF_MEMORY(-4),
    DEVICE(-5),
    INTERNAL(-6),
    /** A code this version of the Java API does not know. */
    UNKNOWN(Integer.MIN_VALUE);

    private final int code;

    Status(int code) { this.code = code; }

    public int code() { return code; }

    /** The status of a native code. */
    public static Status of(int code) {
        for (Status s : values()) if (s.code == code) return s;
        return UNKNOWN;
    }
}
