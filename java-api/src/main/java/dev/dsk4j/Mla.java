package dev.dsk4j;

import dev.dsk4j.bindings.Dsk4jH;
import dev.dsk4j.internal.Native;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;

/**
 * Multi-head Latent Attention (DESIGN.md 4.4): the paged latent cache, absorbed decode, prefill
 * and the absorption helpers ({@code mla.*} of {@code dsk4j.h}).
 *
 * <p>Per token the cache holds {@code kv_norm(c_kv)} (512 values) and the roped {@code k_pe} (64)
 * in one of three {@link CacheFormat}s, in pages of 64 tokens. A block table i32
 * {@code [batch, maxPages]} maps position {@code p} of sequence {@code b} to page
 * {@code blockTable[b, p/64]}, slot {@code p % 64}; pages may be in any order and shared.
 *
 * <p>Decode is the absorbed MQA form: {@code logit = scale·(q_latent·latent + q_pe·rope)},
 * {@code o_latent = softmax(logit)·latent}, {@code lse = ln Σ exp(logit)}; with {@code causal}
 * query {@code s} of {@code sq} sees positions {@code [0, seqLen - sq + s]}; a sequence of length 0
 * gives {@code o_latent = 0}, {@code lse = -inf}. {@link #absorbQ} and {@link #absorbO} turn
 * {@code q_nope} into {@code q_latent} and {@code o_latent} into the per-head output with
 * {@code kv_b_proj}'s weight viewed {@code [H, 256, 512]} (W_UK = rows 0..127, W_UV = rows 128..255).
 *
 * <p>Every argument is checked (names in the messages); index errors found by the native layer
 * (a position past the sequence's pages, a page index outside the pool) throw {@link Dsk4jException}
 * and leave the outputs and the cache unwritten.
 */
public final class Mla {
    private Mla() {}

    /** Latent values per token (kv_lora_rank). */
    public static final int LATENT = 512;
    /** RoPE key values per token (qk_rope_head_dim). */
    public static final int ROPE = 64;
    /** Tokens per cache page. */
    public static final int PAGE_TOKENS = 64;
    /** Rows per head of {@code kv_b_proj} (qk_nope_head_dim + v_head_dim). */
    public static final int WKV_ROWS = 256;

    /** The byte format of one cached token. */
    public enum CacheFormat {
        /** f32 latent[512] then f32 rope[64]: 2304 bytes, exact. */
        F32(0, 2304),
        /** bf16 latent[512] then bf16 rope[64]: 1152 bytes. */
        BF16(1, 1152),
        /**
         * e4m3 latent[512], f32 scale[4] (one power of two per 128 latent values, as fp8.act_quant with
         * ue8m0 scales), bf16 rope[64]: 656 bytes. Lossy.
         */
        FP8(2, 656);

        private final int code;
        private final int tokenBytes;

        CacheFormat(int code, int tokenBytes) {
            this.code = code;
            this.tokenBytes = tokenBytes;
        }

        /** The native code (DSK4J_MLA_CACHE_*). */
        public int code() { return code; }

        /** Bytes per token. */
        public int tokenBytes() { return tokenBytes; }

        /** Bytes per page of 64 tokens. */
        public long pageBytes() { return (long) tokenBytes * PAGE_TOKENS; }
    }

    /**
     * The attention parameters of a model: heads, the softmax scale (see
     * {@link Rope#mlaSoftmaxScale}) and the head dims of the prefill form.
     */
    public record Config(int heads, double softmaxScale, int qkNopeHeadDim, int qkRopeHeadDim, int vHeadDim) {
        public Config {
            if (heads < 1) throw new IllegalArgumentException("argument 'heads' must be >= 1, got " + heads);
            if (!(softmaxScale > 0) || !Double.isFinite(softmaxScale))
                throw new IllegalArgumentException("argument 'softmaxScale' must be finite and > 0, got " + softmaxScale);
            if (qkNopeHeadDim < 0 || qkRopeHeadDim < 0 || qkNopeHeadDim + qkRopeHeadDim < 1
                    || qkNopeHeadDim + qkRopeHeadDim > 256)
                throw new IllegalArgumentException("arguments 'qkNopeHeadDim' (" + qkNopeHeadDim + ") + 'qkRopeHeadDim' ("
                        + qkRopeHeadDim + ") must be in [1, 256]");
            if (vHeadDim < 1 || vHeadDim > 256)
                throw new IllegalArgumentException("argument 'vHeadDim' must be in [1, 256], got " + vHeadDim);
        }

        /** DeepSeek-V3: 128 heads, scale 0.1352338 (YaRN mscale²), head dims 128 + 64 and 128. */
        public static Config deepSeekV3() {
            return new Config(128, Rope.mlaSoftmaxScale(128, 64, Rope.YarnConfig.deepSeekV3(), 1.0), 128, 64, 128);
        }

        /** qk_nope + qk_rope (192 for V3). */
        public int qkHeadDim() { return qkNopeHeadDim + qkRopeHeadDim; }
    }

    /**
     * A pool of cache pages in one context's memory, owned by the arena it was allocated from
     * (on CUDA: device memory freed with that arena). {@link #pages()} is the raw bytes viewed as i32
     * words {@code [numPages, 64, tokenBytes/4]} (every format's token is a multiple of 4 bytes).
     */
    public record LatentCache(Context context, CacheFormat format, long numPages, Tensor pages) {
        public LatentCache {
            Objects.requireNonNull(context, "argument 'context' is null");
            Objects.requireNonNull(format, "argument 'format' is null");
            Objects.requireNonNull(pages, "argument 'pages' is null");
            if (numPages < 0) throw new IllegalArgumentException("argument 'numPages' must be >= 0, got " + numPages);
            if (pages.byteSize() != numPages * format.pageBytes())
                throw new IllegalArgumentException("argument 'pages' holds " + pages.byteSize() + " bytes, expected "
                        + numPages * format.pageBytes());
        }

        /** Allocates {@code numPages} pages (uninitialized) of {@code format} on {@code ctx} from {@code arena}. */
        public static LatentCache allocate(Context ctx, Arena arena, CacheFormat format, long numPages) {
            Objects.requireNonNull(ctx, "argument 'ctx' is null");
            Objects.requireNonNull(arena, "argument 'arena' is null");
            Objects.requireNonNull(format, "argument 'format' is null");
            if (numPages < 0) throw new IllegalArgumentException("argument 'numPages' must be >= 0, got " + numPages);
            Tensor t = ctx.allocate(arena, DType.I32, numPages, PAGE_TOKENS, format.tokenBytes() / 4);
            return new LatentCache(ctx, format, numPages, t);
        }

        /** Bytes of the whole pool. */
        public long byteSize() { return pages.byteSize(); }
    }

    private static void checkCache(Context ctx, LatentCache cache) {
        Objects.requireNonNull(cache, "argument 'cache' is null");
        if (cache.context() != ctx)
            throw new IllegalArgumentException("argument 'cache' belongs to another context (" + cache.context() + ")");
        Ops.checkTensor(ctx, "cache.pages", cache.pages());
    }

    private static long[] checkBlockTable(Context ctx, Tensor blockTable) {
        Ops.checkTensor(ctx, "blockTable", blockTable);
        Ops.checkDType("blockTable", blockTable, DType.I32);
        Ops.checkRank("blockTable", blockTable, 2);
        return blockTable.shape();
    }

    // ------------------------------------------------------------------ mla.cache_append

    /**
     * mla.cache_append: token {@code t} ({@code kvLatent[t]} [512], {@code kPe[t]} [64], f32|bf16, the same
     * dtype) is stored at position {@code positions[t]} of sequence {@code seqIds[t]} (row of
     * {@code blockTable} [batch, maxPages]). Throws (nothing written) when a seq id, a position
     * ({@code >= maxPages·64}) or a page index it uses is out of range.
     */
    public static void append(Context ctx, LatentCache cache, Tensor kvLatent, Tensor kPe, Tensor seqIds,
                              Tensor positions, Tensor blockTable) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        checkCache(ctx, cache);
        Ops.checkTensor(ctx, "kvLatent", kvLatent);
        Ops.checkTensor(ctx, "kPe", kPe);
        Ops.checkTensor(ctx, "seqIds", seqIds);
        Ops.checkTensor(ctx, "positions", positions);
        Ops.checkDType("kvLatent", kvLatent, DType.F32, DType.BF16);
        Ops.checkDType("kPe", kPe, kvLatent.dtype());
        Ops.checkDType("seqIds", seqIds, DType.I32);
        Ops.checkDType("positions", positions, DType.I32);
        Ops.checkRank("kvLatent", kvLatent, 2);
        long tokens = kvLatent.dim(0);
        Ops.checkShape("kvLatent", kvLatent, tokens, LATENT);
        Ops.checkShape("kPe", kPe, tokens, ROPE);
        Ops.checkShape("seqIds", seqIds, tokens);
        Ops.checkShape("positions", positions, tokens);
        long[] bt = checkBlockTable(ctx, blockTable);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_mla_cache_append(ctx.handle(), cache.pages().segment(), cache.byteSize(),
                    cache.format().code(), kvLatent.segment(), kvLatent.byteSize(), kPe.segment(), kPe.byteSize(),
                    kvLatent.dtype().code(), seqIds.segment(), seqIds.byteSize(), positions.segment(),
                    positions.byteSize(), blockTable.segment(), blockTable.byteSize(), bt[0], bt[1], cache.numPages(),
                    tokens));
        } finally {
            ctx.release();
        }
    }

    // ------------------------------------------------------------------ mla.decode

    /** The outputs of {@link #decode(Context, Arena, Tensor, Tensor, LatentCache, Tensor, Tensor, double, boolean)}. */
    public record DecodeResult(Tensor oLatent, Tensor lse) {}

    /**
     * mla.decode: {@code oLatent} [B, Sq, H, 512] (the dtype of the queries), {@code lse} f32 [B, Sq, H] or
     * null, from {@code qLatent} [B, Sq, H, 512] and {@code qPe} [B, Sq, H, 64] (f32|bf16) against
     * {@code cache} with {@code blockTable} [B, maxPages] and {@code seqLens} i32 [B]
     * ({@code 0 <= seqLens[b] <= maxPages·64}; with {@code causal} each is 0 or {@code >= Sq}).
     */
    public static void decode(Context ctx, Tensor oLatent, Tensor lse, Tensor qLatent, Tensor qPe, LatentCache cache,
                              Tensor blockTable, Tensor seqLens, double softmaxScale, boolean causal) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        checkCache(ctx, cache);
        Ops.checkTensor(ctx, "qLatent", qLatent);
        Ops.checkTensor(ctx, "qPe", qPe);
        Ops.checkOutput(ctx, "oLatent", oLatent);
        Ops.checkTensor(ctx, "seqLens", seqLens);
        Ops.checkDType("qLatent", qLatent, DType.F32, DType.BF16);
        Ops.checkDType("qPe", qPe, qLatent.dtype());
        Ops.checkDType("oLatent", oLatent, qLatent.dtype());
        Ops.checkDType("seqLens", seqLens, DType.I32);
        Ops.checkRank("qLatent", qLatent, 4);
        long b = qLatent.dim(0), sq = qLatent.dim(1), h = qLatent.dim(2);
        Ops.checkShape("qLatent", qLatent, b, sq, h, LATENT);
        Ops.checkShape("qPe", qPe, b, sq, h, ROPE);
        Ops.checkShape("oLatent", oLatent, b, sq, h, LATENT);
        Ops.checkShape("seqLens", seqLens, b);
        if (lse != null) {
            Ops.checkOutput(ctx, "lse", lse);
            Ops.checkDType("lse", lse, DType.F32);
            Ops.checkShape("lse", lse, b, sq, h);
        }
        long[] bt = checkBlockTable(ctx, blockTable);
        if (bt[0] != b)
            throw new IllegalArgumentException("argument 'blockTable' has " + bt[0] + " rows, expected batch " + b);
        checkScale(softmaxScale);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_mla_decode(ctx.handle(), oLatent.segment(), oLatent.byteSize(),
                    lse == null ? MemorySegment.NULL : lse.segment(), lse == null ? 0 : lse.byteSize(),
                    qLatent.segment(), qLatent.byteSize(), qPe.segment(), qPe.byteSize(), qLatent.dtype().code(),
                    cache.pages().segment(), cache.byteSize(), cache.format().code(), blockTable.segment(),
                    blockTable.byteSize(), seqLens.segment(), seqLens.byteSize(), b, sq, h, bt[1], cache.numPages(),
                    (float) softmaxScale, causal ? Dsk4jH.DSK4J_MLA_CAUSAL() : 0));
        } finally {
            ctx.release();
        }
    }

    /** mla.decode into new tensors from {@code arena}. */
    public static DecodeResult decode(Context ctx, Arena arena, Tensor qLatent, Tensor qPe, LatentCache cache,
                                      Tensor blockTable, Tensor seqLens, double softmaxScale, boolean causal) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Objects.requireNonNull(qLatent, "argument 'qLatent' is null");
        Ops.checkRank("qLatent", qLatent, 4);
        Tensor o = ctx.allocate(arena, qLatent.dtype(), qLatent.shape());
        Tensor lse = ctx.allocate(arena, DType.F32, qLatent.dim(0), qLatent.dim(1), qLatent.dim(2));
        decode(ctx, o, lse, qLatent, qPe, cache, blockTable, seqLens, softmaxScale, causal);
        return new DecodeResult(o, lse);
    }

    private static void checkScale(double s) {
        if (!(s > 0) || !Double.isFinite(s) || !Float.isFinite((float) s) || (float) s == 0)
            throw new IllegalArgumentException("argument 'softmaxScale' must be finite and > 0 in f32, got " + s);
    }

    // ------------------------------------------------------------------ mla.prefill

    /**
     * mla.prefill (up-projected form): {@code o} [T, H, vDim], {@code lse} f32 [T, H] or null, from
     * {@code q}, {@code k} [T, H, qkDim] and {@code v} [T, H, vDim] (f32|bf16, one dtype) holding
     * packed sequences {@code cuSeqlens} i32 [nseq + 1] (0, non-decreasing, ending at T); with
     * {@code causal} token t sees the tokens of its sequence up to itself. qkDim, vDim in [1, 256].
     */
    public static void prefill(Context ctx, Tensor o, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor cuSeqlens,
                               double softmaxScale, boolean causal) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Ops.checkTensor(ctx, "q", q);
        Ops.checkTensor(ctx, "k", k);
        Ops.checkTensor(ctx, "v", v);
        Ops.checkOutput(ctx, "o", o);
        Ops.checkTensor(ctx, "cuSeqlens", cuSeqlens);
        Ops.checkDType("q", q, DType.F32, DType.BF16);
        Ops.checkDType("k", k, q.dtype());
        Ops.checkDType("v", v, q.dtype());
        Ops.checkDType("o", o, q.dtype());
        Ops.checkDType("cuSeqlens", cuSeqlens, DType.I32);
        Ops.checkRank("q", q, 3);
        Ops.checkRank("v", v, 3);
        Ops.checkRank("cuSeqlens", cuSeqlens, 1);
        long t = q.dim(0), h = q.dim(1), dqk = q.dim(2), dv = v.dim(2);
        Ops.checkShape("k", k, t, h, dqk);
        Ops.checkShape("v", v, t, h, dv);
        Ops.checkShape("o", o, t, h, dv);
        if (cuSeqlens.dim(0) < 1)
            throw new IllegalArgumentException("argument 'cuSeqlens' must have nseq + 1 >= 1 entries");
        if (lse != null) {
            Ops.checkOutput(ctx, "lse", lse);
            Ops.checkDType("lse", lse, DType.F32);
            Ops.checkShape("lse", lse, t, h);
        }
        checkScale(softmaxScale);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_mla_prefill(ctx.handle(), o.segment(), o.byteSize(),
                    lse == null ? MemorySegment.NULL : lse.segment(), lse == null ? 0 : lse.byteSize(), q.segment(),
                    q.byteSize(), k.segment(), k.byteSize(), v.segment(), v.byteSize(), q.dtype().code(),
                    cuSeqlens.segment(), cuSeqlens.byteSize(), cuSeqlens.dim(0) - 1, t, h, dqk, dv, (float) softmaxScale,
                    causal ? Dsk4jH.DSK4J_MLA_CAUSAL() : 0));
        } finally {
            ctx.release();
        }
    }

    // ------------------------------------------------------------------ absorption

    private static long checkWkv(Context ctx, Tensor wkvB, long heads) {
        Ops.checkTensor(ctx, "wkvB", wkvB);
        Ops.checkDType("wkvB", wkvB, DType.F32, DType.BF16);
        long[] s = wkvB.shape();
        boolean ok = (s.length == 3 && s[0] == heads && s[1] == WKV_ROWS && s[2] == LATENT)
                || (s.length == 2 && s[0] == heads * WKV_ROWS && s[1] == LATENT);
        if (!ok)
            throw new IllegalArgumentException("argument 'wkvB' must have shape [" + heads + ", 256, 512] or ["
                    + heads * WKV_ROWS + ", 512], got " + Arrays.toString(s));
        return heads;
    }

    /**
     * mla.absorb_q: {@code qLatent[t, h, :] = qNope[t, h, 0:128] · W_UK[h]} ([128, 512], rows 0..127 of head h of
     * {@code wkvB} [H, 256, 512] or [H·256, 512], f32|bf16). {@code qNope} [T, H, S] with S >= 128: only the
     * first 128 values of each head are read, so {@code q} [T, H, 192] can be passed as it is.
     * {@code qLatent} [T, H, 512] has qNope's dtype. f32 accumulation.
     */
    public static void absorbQ(Context ctx, Tensor qLatent, Tensor qNope, Tensor wkvB) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Ops.checkTensor(ctx, "qNope", qNope);
        Ops.checkOutput(ctx, "qLatent", qLatent);
        Ops.checkDType("qNope", qNope, DType.F32, DType.BF16);
        Ops.checkDType("qLatent", qLatent, qNope.dtype());
        Ops.checkRank("qNope", qNope, 3);
        long t = qNope.dim(0), h = qNope.dim(1), stride = qNope.dim(2);
        if (stride < 128)
            throw new IllegalArgumentException("argument 'qNope': last dimension must be >= 128, got " + stride);
        Ops.checkShape("qLatent", qLatent, t, h, LATENT);
        checkWkv(ctx, wkvB, h);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_mla_absorb_q(ctx.handle(), qLatent.segment(), qLatent.byteSize(), qNope.segment(),
                    qNope.byteSize(), qNope.dtype().code(), wkvB.segment(), wkvB.byteSize(), wkvB.dtype().code(), t, h,
                    stride));
        } finally {
            ctx.release();
        }
    }

    /**
     * mla.absorb_o: {@code o[t, h, :] = oLatent[t, h, :] · W_UV[h]ᵀ} ({@code o} [T, H, 128], {@code oLatent}
     * [T, H, 512] (decode's [B, Sq, H, 512] reshaped), W_UV = rows 128..255 of head h of {@code wkvB}).
     */
    public static void absorbO(Context ctx, Tensor o, Tensor oLatent, Tensor wkvB) {
        Objects.requireNonNull(ctx, "argument 'ctx' is null");
        Ops.checkTensor(ctx, "oLatent", oLatent);
        Ops.checkOutput(ctx, "o", o);
        Ops.checkDType("oLatent", oLatent, DType.F32, DType.BF16);
        Ops.checkDType("o", o, oLatent.dtype());
        Ops.checkRank("oLatent", oLatent, 3);
        long t = oLatent.dim(0), h = oLatent.dim(1);
        Ops.checkShape("oLatent", oLatent, t, h, LATENT);
        Ops.checkShape("o", o, t, h, 128);
        checkWkv(ctx, wkvB, h);
        ctx.acquire();
        try {
            Native.check(Dsk4jH.dsk4j_mla_absorb_o(ctx.handle(), o.segment(), o.byteSize(), oLatent.segment(),
                    oLatent.byteSize(), oLatent.dtype().code(), wkvB.segment(), wkvB.byteSize(), wkvB.dtype().code(), t,
                    h));
        } finally {
            ctx.release();
        }
    }
}
