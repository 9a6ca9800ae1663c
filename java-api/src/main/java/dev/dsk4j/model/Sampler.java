package dev.dsk4j.model;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits: greedy (temperature 0: the first index of the maximum) or
 * sampling from {@code softmax(logits / temperature)} restricted to the smallest set of most likely
 * tokens whose probability reaches {@code topP} (nucleus). Deterministic for a seed.
 */
public final class Sampler {
    private final double temperature;
    private final double topP;
    private final SplittableRandom random;

    /** temperature >= 0 (0 = greedy), topP in (0, 1]. */
    public Sampler(double temperature, double topP, long seed) {
        if (!(temperature >= 0) || !Double.isFinite(temperature))
            throw new IllegalArgumentException("argument 'temperature' must be finite and >= 0, got " + temperature);
        if (!(topP > 0 && topP <= 1))
            throw new IllegalArgumentException("argument 'topP' must be in (0, 1], got " + topP);
        this.temperature = temperature;
        this.topP = topP;
        this.random = new SplittableRandom(seed);
    }

    /** The first index of the largest value (NaN never wins; all-NaN gives 0). */
    public static int argmax(float[] logits) {
        int best = 0;
        float bv = Float.NEGATIVE_INFINITY;
        boolean found = false;
        for (int i = 0; i < logits.length; i++) {
            float v = logits[i];
            if (!Float.isNaN(v) && (!found || v > bv)) { best = i; bv = v; found = true; }
        }
        return best;
    }

    /** The next token for {@code logits}. */
    public int sample(float[] logits) {
        if (temperature == 0) return argmax(logits);
        int n = logits.length;
        double max = Double.NEGATIVE_INFINITY;
        for (float v : logits) if (!Float.isNaN(v)) max = Math.max(max, v);
        if (max == Double.NEGATIVE_INFINITY) return argmax(logits);
        double[] p = new double[n];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            p[i] = Float.isNaN(logits[i]) ? 0 : Math.exp((logits[i] - max) / temperature);
            sum += p[i];
        }
        Integer[] order = null;
        int keep = n;
        if (topP < 1) {
            order = new Integer[n];
            for (int i = 0; i < n; i++) order[i] = i;
            final double[] pp = p;
            Arrays.sort(order, (a, b) -> pp[a] != pp[b] ? Double.compare(pp[b], pp[a]) : Integer.compare(a, b));
            double cum = 0;
            keep = 0;
            while (keep < n) {
                cum += p[order[keep++]];
                if (cum >= topP * sum) break;
            }
            sum = 0;
            for (int i = 0; i < keep; i++) sum += p[order[i]];
        }
        double r = random.nextDouble() * sum;
        for (int i = 0; i < keep; i++) {
            int idx = order == null ? i : order[i];
            r -= p[idx];
            if (r < 0) return idx;
        }
        return order == null ? argmax(logits) : order[keep - 1];
    }
}
