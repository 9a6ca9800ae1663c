package dev.dsk4j.conformance;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The suite behind {@code ./dsk4j conformance}: every op's outputs get a passing row on every backend. */
class MainTest {
    @Test
    void suiteCoversEveryOpOutputOnEveryBackend() {
        for (Backend b : Backends.all().toList()) {
            List<Main.Row> rows = Main.suite(b, 3, System.nanoTime());
            for (String op : new String[] {"fp8.cast f32->e4m3", "fp8.cast e5m2->f16", "fp8.act_quant y", "fp8.act_quant scale",
                    "fp8.weight_quant y", "fp8.weight_quant scale_inv", "gemm.fp8_block f32", "gemm.bf16 bf16", "gemm.f32 b=f32", "gemm.f32 b=bf16",
                    "gemm.fp8_grouped_contiguous f32", "gemm.fp8_grouped_masked f32"})
                assertTrue(rows.stream().anyMatch(r -> r.op().equals(op)), () -> b + " has no row for " + op + ": " + rows);
            assertTrue(rows.stream().anyMatch(r -> r.op().startsWith("fp8.weight_dequant")), rows::toString);
            for (Main.Row r : rows) {
                assertTrue(r.result().passed(), () -> b + ": " + r);
                assertFalse(r.cases() == 0, r::toString);
            }
        }
    }
}
