package example;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Device;
import dev.dsk4j.Fp8;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;

/** Quantizes a row of activations with dsk4j and checks the round trip; exits 1 if it is off. */
public final class Consumer {
    public static void main(String[] args) {
        float[] x = new float[256];
        for (int i = 0; i < x.length; i++) x[i] = (float) Math.sin(i) * (i < 128 ? 1 : 1000);
        try (Context cpu = Context.open(Device.cpu()); Arena arena = Arena.ofConfined()) {
            Tensor xt = Tensor.ofFloats(arena, x, 1, 256);
            Fp8.Quantized q = Fp8.actQuant(cpu, arena, xt, Fp8.ActQuantOptions.defaults());
            float[] codes = q.values().toFloatArray();
            float[] scales = q.scales().toFloatArray();
            double maxRel = 0;
            for (int i = 0; i < x.length; i++) {
                double back = codes[i] * scales[i / 128];
                double amax = i < 128 ? 1 : 1000;
                maxRel = Math.max(maxRel, Math.abs(back - x[i]) / amax);
            }
            System.out.printf("consumer: %s, scales %s, max error %.4f of the group max%n", cpu.describe(),
                    java.util.Arrays.toString(scales), maxRel);
            if (maxRel > 1.0 / 16) {
                System.err.println("consumer: round trip error too large");
                System.exit(1);
            }
        }
    }
}
