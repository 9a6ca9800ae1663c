package dev.dsk4j.model;

import java.util.List;
import java.util.Map;

/**
 * The result of {@link Generator#generate}: the new tokens of each sequence and what it cost.
 *
 * @param tokens new tokens per sequence (the prompt not included)
 * @param promptTokens tokens of all prompts
 * @param prefillNanos time of the prefill (all prompts, first tokens sampled, MTP primed)
 * @param decodeTokens tokens produced after the first one of each sequence
 * @param decodeNanos time of the decode loop
 * @param steps main-model forward calls of the decode loop
 * @param drafted MTP drafts checked
 * @param accepted MTP drafts accepted
 * @param profile time per op family over the whole generation
 */
public record Generation(List<int[]> tokens, long promptTokens, long prefillNanos, long decodeTokens, long decodeNanos,
                         long steps, long drafted, long accepted, Map<Profile.Family, Long> profile) {
    /** Prompt tokens per second of prefill. */
    public double prefillTokensPerSecond() { return prefillNanos == 0 ? 0 : promptTokens * 1e9 / prefillNanos; }

    /** Generated tokens per second of the decode loop (all sequences together). */
    public double decodeTokensPerSecond() { return decodeNanos == 0 ? 0 : decodeTokens * 1e9 / decodeNanos; }

    /** Accepted / drafted MTP tokens (NaN without MTP). */
    public double acceptanceRate() { return drafted == 0 ? Double.NaN : (double) accepted / drafted; }
}
