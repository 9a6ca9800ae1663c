package dev.dsk4j.benchmarks;

/**
 * Runs the exactness checks of VectorFp8 in a JVM started with
 * {@code --add-modules jdk.incubator.vector} (JavaFp8Test starts one when the test JVM lacks
 * the module). Exit status 0 = all equal.
 */
public final class VectorFp8CheckMain {
    private VectorFp8CheckMain() {}

    static final Fp8Exactness.Impl VECTOR = new Fp8Exactness.Impl() {
        public String name() { return "VectorFp8 (" + VectorFp8.describe() + ")"; }
        public void encode(float[] x, byte[] y, int n) { VectorFp8.encode(x, y, n); }
        public void decode(byte[] w, float[] y, int n) { VectorFp8.decode(w, y, n); }
        public void actQuant(boolean p, float[] x, int rows, int k, byte[] y, float[] s) {
            if (p) VectorFp8.actQuantParallel(x, rows, k, y, s); else VectorFp8.actQuant(x, rows, k, y, s);
        }
        public void weightQuant(boolean p, float[] w, int n, int k, byte[] y, float[] s) {
            if (p) VectorFp8.weightQuantParallel(w, n, k, y, s); else VectorFp8.weightQuant(w, n, k, y, s);
        }
        public void weightDequant(boolean p, byte[] w, int n, int k, float[] s, float[] y) {
            if (p) VectorFp8.weightDequantParallel(w, n, k, s, y); else VectorFp8.weightDequant(w, n, k, s, y);
        }
    };

    public static void main(String[] args) {
        try {
            Fp8Exactness.checkAll(VECTOR);
            System.out.println("VectorFp8CheckMain: " + VECTOR.name() + " bit-exact with Fp8Reference");
        } catch (Throwable t) {
            t.printStackTrace();
            System.exit(1);
        }
    }
}
