package dev.dsk4j.benchmarks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.dsk4j.Context;
import dev.dsk4j.DType;
import dev.dsk4j.Device;
import dev.dsk4j.Rope;
import dev.dsk4j.Tensor;
import dev.dsk4j.conformance.RopeReference;
import java.lang.foreign.Arena;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * JavaRope and VectorRope (the pure-Java peers of RopeBench) are bit-exact with the kernels' f32
 * formula (RopeReference.applyF32) and with the native CPU backend, f32 and bf16, both layouts,
 * one thread and all cores.
 */
class RopeJavaPeersTest {
    @Test
    void peersAreBitExact() {
        SplittableRandom r = new SplittableRandom(5);
        Rope.YarnConfig v3 = Rope.YarnConfig.deepSeekV3();
        int t = 300, h = 3, dim = 64, n = t * h * dim;
        int[] pos = new int[t];
        for (int i = 0; i < t; i++) pos[i] = r.nextInt(16384);
        try (Context cpu = Context.open(Device.cpu()); Arena a = Arena.ofConfined()) {
            Rope.Table tb = Rope.table(cpu, v3);
            float[] cos = tb.cos().toFloatArray(), sin = tb.sin().toFloatArray();
            for (boolean neox : new boolean[] {false, true}) {
                Rope.Layout layout = neox ? Rope.Layout.NEOX : Rope.Layout.INTERLEAVED;
                float[] x = new float[n];
                for (int i = 0; i < n; i++) x[i] = (float) (r.nextGaussian() * 3);
                float[] exp = RopeReference.applyF32(x, pos, h, dim, layout, cos, sin);
                Tensor nat = Rope.apply(cpu, a, Tensor.ofFloats(a, x, t, h, dim), Tensor.ofInts(a, pos, t), tb, layout);
                assertArrayEquals(bits(exp), bits(nat.toFloatArray()), "native " + layout);
                float[][] f = {x.clone(), x.clone(), x.clone(), x.clone()};
                JavaRope.apply(f[0], pos, h, dim, neox, cos, sin, 0, t);
                JavaRope.applyParallel(f[1], pos, h, dim, neox, cos, sin);
                VectorRope.apply(f[2], pos, h, dim, neox, cos, sin);
                VectorRope.applyParallel(f[3], pos, h, dim, neox, cos, sin);
                for (int k = 0; k < 4; k++) assertArrayEquals(bits(exp), bits(f[k]), "f32 peer " + k + " " + layout);

                short[] xb = new short[n];
                for (int i = 0; i < n; i++) xb[i] = JavaRope.bf16(x[i]);
                float[] wide = new float[n];
                for (int i = 0; i < n; i++) wide[i] = Float.intBitsToFloat(xb[i] << 16);
                float[] e32 = RopeReference.applyF32(wide, pos, h, dim, layout, cos, sin);
                short[] eb = new short[n];
                for (int i = 0; i < n; i++) eb[i] = JavaRope.bf16(e32[i]);
                Tensor nb = Rope.apply(cpu, a, Tensor.ofShorts(a, DType.BF16, xb, t, h, dim), Tensor.ofInts(a, pos, t), tb, layout);
                assertArrayEquals(eb, nb.toShortArray(), "native bf16 " + layout);
                short[][] b = {xb.clone(), xb.clone(), xb.clone(), xb.clone()};
                JavaRope.apply(b[0], pos, h, dim, neox, cos, sin, 0, t);
                JavaRope.applyParallel(b[1], pos, h, dim, neox, cos, sin);
                VectorRope.apply(b[2], pos, h, dim, neox, cos, sin);
                VectorRope.applyParallel(b[3], pos, h, dim, neox, cos, sin);
                for (int k = 0; k < 4; k++) assertArrayEquals(eb, b[k], "bf16 peer " + k + " " + layout);
            }
        }
    }

    private static int[] bits(float[] f) {
        int[] b = new int[f.length];
        for (int i = 0; i < f.length; i++) b[i] = Float.floatToRawIntBits(f[i]);
        return b;
    }
}
