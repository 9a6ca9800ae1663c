package dev.dsk4j.conformance;

import dev.dsk4j.DType;

/**
 * The outcome of comparing one output of one op on one backend with the reference: elements
 * compared, bit mismatches (an element matches iff its bits are equal, or both are NaN for
 * float types), the largest absolute and relative error over elements where both are finite,
 * and the first mismatch for the report.
 */
public record Comparison(String what, long elements, long mismatches, double maxAbs, double maxRel, String firstMismatch) {
    // For tolerance-based outputs (the GEMMs) maxRel is the relative Frobenius error
    // ||got - ref|| / ||ref|| and a mismatch is an element outside its error bound.

    public boolean passed() { return mismatches == 0; }

    /** Merges two comparisons of the same output (over more cases). */
    public Comparison plus(Comparison o) {
        return new Comparison(what, elements + o.elements, mismatches + o.mismatches, Math.max(maxAbs, o.maxAbs),
                Math.max(maxRel, o.maxRel), firstMismatch != null ? firstMismatch : o.firstMismatch);
    }

    @Override
    public String toString() {
        return String.format("%s: %d elements, %d mismatches, max abs %.3g, max rel %.3g%s", what, elements, mismatches,
                maxAbs, maxRel, firstMismatch == null ? "" : " (first: " + firstMismatch + ")");
    }

    /** Exact comparison of f32 values (bits equal or both NaN). */
    public static Comparison floats(String what, float[] got, float[] exp) {
        check(what, got.length, exp.length);
        Acc acc = new Acc();
        for (int i = 0; i < exp.length; i++) {
            boolean ok = Float.floatToRawIntBits(got[i]) == Float.floatToRawIntBits(exp[i])
                    || (Float.isNaN(got[i]) && Float.isNaN(exp[i]));
            float g = got[i], e = exp[i];
            acc.add(i, ok, g, e, () -> Float.toHexString(g) + " vs " + Float.toHexString(e));
        }
        return acc.result(what, exp.length);
    }

    /** Exact comparison of raw elements of {@code dtype} (1 or 2 bytes each, given as ints). */
    public static Comparison codes(String what, DType dtype, int[] got, int[] exp) {
        check(what, got.length, exp.length);
        String label = dtype.label();
        Acc acc = new Acc();
        for (int i = 0; i < exp.length; i++) {
            float g = Fp8Reference.toFloat(label, got[i]), e = Fp8Reference.toFloat(label, exp[i]);
            boolean ok = got[i] == exp[i] || (Float.isNaN(g) && Float.isNaN(e));
            int gi = got[i], ei = exp[i];
            acc.add(i, ok, g, e, () -> String.format("0x%x vs 0x%x", gi, ei));
        }
        return acc.result(what, exp.length);
    }

    public static int[] unsigned(byte[] b) {
        int[] out = new int[b.length];
        for (int i = 0; i < b.length; i++) out[i] = b[i] & 0xff;
        return out;
    }

    public static int[] unsigned(short[] s) {
        int[] out = new int[s.length];
        for (int i = 0; i < s.length; i++) out[i] = s[i] & 0xffff;
        return out;
    }

    private static void check(String what, int got, int exp) {
        if (got != exp) throw new IllegalStateException(what + ": " + got + " elements, expected " + exp);
    }

    private static final class Acc {
        long mismatches;
        double maxAbs, maxRel;
        String first;

        void add(int i, boolean ok, float got, float exp, java.util.function.Supplier<String> describe) {
            if (!ok) {
                mismatches++;
                if (first == null) first = "element " + i + ": got " + describe.get();
            }
            if (Float.isFinite(got) && Float.isFinite(exp)) {
                double abs = Math.abs((double) got - exp);
                maxAbs = Math.max(maxAbs, abs);
                if (exp != 0) maxRel = Math.max(maxRel, abs / Math.abs((double) exp));
            }
        }

        Comparison result(String what, long n) { return new Comparison(what, n, mismatches, maxAbs, maxRel, first); }
    }
}
