package dev.dsk4j.benchmarks;

import org.junit.jupiter.api.Test;

/**
 * JavaFp8 and VectorFp8 (the pure-Java peers of the benchmarks) are bit-exact with
 * Fp8Reference: conversions on all 2^16 bf16-derived values, midpoints, random bit patterns and
 * specials; act_quant, weight_quant and weight_dequant on one thread and on all cores.
 */
class JavaFp8Test {

    @Test
    void javaFp8IsBitExact() {
        Fp8Exactness.checkAll(Fp8Exactness.JAVA);
    }

    @Test
    void vectorFp8IsBitExact() {
        Fp8Exactness.checkAll(Fp8Exactness.VECTOR);
    }
}
