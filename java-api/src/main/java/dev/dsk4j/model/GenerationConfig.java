package dev.dsk4j.model;

import java.util.Objects;
import java.util.Set;

/**
 * How {@link Generator} continues prompts: at most {@code maxTokens} new tokens per sequence, the
 * sampler ({@code temperature} 0 = greedy, {@code topP}, {@code seed}; sequence i uses seed + i),
 * stop tokens (generation of a sequence ends after emitting one), and {@code mtp}: speculative
 * decoding with the model's MTP module as the draft (the output is the same as without it).
 */
public record GenerationConfig(int maxTokens, double temperature, double topP, long seed, Set<Integer> stopTokens,
                               boolean mtp) {
    public GenerationConfig {
        Objects.requireNonNull(stopTokens, "argument 'stopTokens' is null");
        if (maxTokens < 0) throw new IllegalArgumentException("argument 'maxTokens' must be >= 0, got " + maxTokens);
        new Sampler(temperature, topP, seed); // validates
        stopTokens = Set.copyOf(stopTokens);
    }

    /** Greedy decoding of up to {@code maxTokens} tokens, no stop tokens, no MTP. */
    public static GenerationConfig greedy(int maxTokens) {
        return new GenerationConfig(maxTokens, 0, 1, 0, Set.of(), false);
    }

    public GenerationConfig withMtp(boolean on) {
        return new GenerationConfig(maxTokens, temperature, topP, seed, stopTokens, on);
    }

    public GenerationConfig withStopTokens(Set<Integer> stops) {
        return new GenerationConfig(maxTokens, temperature, topP, seed, stops, mtp);
    }

    public GenerationConfig withSampling(double temp, double p, long s) {
        return new GenerationConfig(maxTokens, temp, p, s, stopTokens, mtp);
    }
}
