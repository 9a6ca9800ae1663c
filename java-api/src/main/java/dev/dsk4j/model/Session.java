package dev.dsk4j.model;

import dev.dsk4j.Mla;
import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.util.Arrays;

/**
 * The state of up to {@code maxBatch} sequences of a {@link Model}: one paged latent cache per
 * layer (and one for the MTP block), a block table [maxBatch, maxSeqLen/64] with a fixed range of
 * pages per slot, and the number of tokens each slot holds, in the model's context memory (device
 * memory on CUDA). Owns that memory: close it.
 * Not thread-safe.
 */
public final class Session implements AutoCloseable {
    final Model model;
    final int maxBatch;
    final int maxSeqLen;
    final int pagesPerSeq;
    final Mla.LatentCache[] caches; // index = block index; the MTP block uses the last one
    final Tensor blockTable;
    final int[] length; // tokens in the main caches per slot
    final int[] mtpLength; // entries in the MTP cache per slot
    private final Arena arena;

    Session(Model model, int maxBatch, int maxSeqLen, Mla.CacheFormat format) {
        if (maxBatch < 1) throw new IllegalArgumentException("argument 'maxBatch' must be >= 1, got " + maxBatch);
        if (maxSeqLen < 1 || maxSeqLen > model.config().maxPositionEmbeddings())
            throw new IllegalArgumentException("argument 'maxSeqLen' must be in [1, max_position_embeddings = "
                    + model.config().maxPositionEmbeddings() + "], got " + maxSeqLen);
        this.model = model;
        this.maxBatch = maxBatch;
        this.maxSeqLen = maxSeqLen;
        this.pagesPerSeq = (maxSeqLen + Mla.PAGE_TOKENS - 1) / Mla.PAGE_TOKENS;
        this.arena = Arena.ofShared();
        try {
            int layers = model.weights().allBlocks().size();
            caches = new Mla.LatentCache[layers];
            for (int l = 0; l < layers; l++)
                caches[l] = Mla.LatentCache.allocate(model.context(), arena, format, (long) maxBatch * pagesPerSeq);
            int[] bt = new int[maxBatch * pagesPerSeq];
            for (int i = 0; i < bt.length; i++) bt[i] = i;
            blockTable = model.ints(arena, bt).reshape(maxBatch, pagesPerSeq);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
        length = new int[maxBatch];
        mtpLength = new int[maxBatch];
    }

    /** Bytes of the latent caches. */
    public long cacheBytes() {
        long s = 0;
        for (Mla.LatentCache c : caches) s += c.pages().byteSize();
        return s;
    }

    /** Tokens slot {@code slot} holds. */
    public int length(int slot) { return length[slot]; }

    /** Forgets every sequence (the memory is kept). */
    public void reset() {
        Arrays.fill(length, 0);
        Arrays.fill(mtpLength, 0);
    }

    public int maxBatch() { return maxBatch; }

    public int maxSeqLen() { return maxSeqLen; }

    @Override
    public void close() { arena.close(); }
}
