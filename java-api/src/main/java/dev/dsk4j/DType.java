package dev.dsk4j;

/** Element types; the codes are those of {@code dsk4j.h} (DSK4J_DTYPE_*). */
public enum DType {
    /** IEEE binary32. */
    F32(0, 4),
    /** bfloat16: the upper 16 bits of an f32; Java holds it as {@code short}. */
    BF16(1, 2),
    /** IEEE binary16; Java holds it as {@code short}. */
    F16(2, 2),
    /** float8 e4m3fn: no infinities, max 448, NaN = 0x7f/0xff. */
    E4M3(3, 1),
    /** float8 e5m2: IEEE-like, max 57344. */
    E5M2(4, 1),
    /** 32-bit signed integer. */
    I32(5, 4);

    private final int code;
    private final int byteSize;

    DType(int code, int byteSize) {
        this.code = code;
        this.byteSize = byteSize;
    }

    /** The native code (DSK4J_DTYPE_*). */
    public int code() { return code; }

    /** Bytes per element. */
    public int byteSize() { return byteSize; }

    /** True for e4m3 and e5m2. */
    public boolean isFp8() { return this == E4M3 || this == E5M2; }

    /** The lower-case name used in messages and golden vectors ("f32", "e4m3", ...). */
    public String label() { return name().toLowerCase(java.util.Locale.ROOT); }
}
