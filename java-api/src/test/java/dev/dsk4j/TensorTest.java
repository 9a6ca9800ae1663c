package dev.dsk4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;

class TensorTest {
    @Test
    void shapesStridesAndViews() {
        try (Arena a = Arena.ofConfined()) {
            Tensor t = Tensor.ofFloats(a, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
            assertArrayEquals(new long[] {3, 1}, t.strides());
            assertEquals(24, t.byteSize());
            assertTrue(t.isContiguous());
            Tensor tt = t.transpose(0, 1);
            assertFalse(tt.isContiguous());
            assertThrows(IllegalArgumentException.class, tt::toFloatArray);
            assertArrayEquals(new float[] {4, 5, 6}, t.slice(1, 2).toFloatArray());
            assertArrayEquals(new long[] {3, 2}, t.reshape(3, 2).shape());
            assertThrows(IllegalArgumentException.class, () -> t.reshape(4, 2));
            assertThrows(IllegalArgumentException.class, () -> Tensor.allocate(a, DType.F32, 2, -1));
            assertThrows(IllegalArgumentException.class, () -> Tensor.ofFloats(a, new float[5], 2, 3));
            assertThrows(IndexOutOfBoundsException.class, () -> t.slice(1, 3));
        }
    }

    @Test
    void decodesEveryDtype() {
        try (Arena a = Arena.ofConfined()) {
            assertArrayEquals(new float[] {448f, -0f, 0x1p-9f}, Tensor.ofBytes(a, DType.E4M3, new byte[] {0x7e, (byte) 0x80, 1}).toFloatArray());
            assertTrue(Float.isNaN(Tensor.ofBytes(a, DType.E4M3, new byte[] {0x7f}).toFloatArray()[0]));
            assertArrayEquals(new float[] {57344f, Float.NEGATIVE_INFINITY, 0x1p-16f},
                    Tensor.ofBytes(a, DType.E5M2, new byte[] {0x7b, (byte) 0xfc, 1}).toFloatArray());
            assertArrayEquals(new float[] {1f, -2f}, Tensor.ofShorts(a, DType.BF16, new short[] {0x3f80, (short) 0xc000}).toFloatArray());
            assertArrayEquals(new float[] {1f, 65504f}, Tensor.ofShorts(a, DType.F16, new short[] {0x3c00, 0x7bff}).toFloatArray());
        }
    }
}
