package dev.dsk4j.model;

import dev.dsk4j.Tensor;
import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Continues a batch of prompts with a {@link Model}: one prefill of all prompts (compute-form
 * attention), then decode steps over the latent caches (absorbed attention), optionally with MTP
 * speculative decoding.
 *
 * <p>MTP (depth 1): after the main model has consumed tokens {@code 0..n-1} and sampled {@code t_n},
 * the MTP module drafts {@code d} from the main hidden state at {@code n-1} and {@code t_n}. The main
 * model then runs on {@code [t_n, d]} in one step (multi-query decode, causal): the token sampled
 * from the first position is {@code t_{n+1}}; if it equals {@code d}, the second position's logits are
 * valid too and a second token is sampled in the same step, otherwise the draft's cache entry is
 * rewound. A generator is used by one thread at a time (like its model). Since every emitted token is sampled from the main model's own distribution given the
 * true prefix, the output equals generation without MTP (for greedy decoding: token for token).
 */
public final class Generator {
    private final Model model;
    private final int prefillChunk;
    private Progress progress = Progress.quiet();

    public Generator(Model model) {
        this(model, 1024);
    }

    /**
     * A generator that prefills in forward calls of at most {@code prefillChunk} tokens (the activation memory of a
     * call grows with its tokens; later pieces of a long prompt attend to the cache in the absorbed form).
     */
    public Generator(Model model, int prefillChunk) {
        this.model = Objects.requireNonNull(model, "argument 'model' is null");
        if (prefillChunk < 1)
            throw new IllegalArgumentException("argument 'prefillChunk' must be >= 1, got " + prefillChunk);
        this.prefillChunk = prefillChunk;
    }

    /**
     * Generates for {@code prompts} (at most the session's batch, each non-empty) in slots 0.. of
     * {@code session}, which is reset first.
     */
    public Generation generate(Session session, List<int[]> prompts, GenerationConfig config) {
        return generate(session, prompts, config, Progress.quiet());
    }

    /** As {@link #generate(Session, List, GenerationConfig)}, advancing {@code progress} by each new token. */
    public Generation generate(Session session, List<int[]> prompts, GenerationConfig config, Progress progress) {
        Objects.requireNonNull(progress, "argument 'progress' is null");
        Objects.requireNonNull(session, "argument 'session' is null");
        Objects.requireNonNull(prompts, "argument 'prompts' is null");
        Objects.requireNonNull(config, "argument 'config' is null");
        int b = prompts.size();
        if (b > session.maxBatch())
            throw new IllegalArgumentException("argument 'prompts' holds " + b + " sequences, the session only "
                    + session.maxBatch());
        long promptTokens = 0;
        for (int i = 0; i < b; i++) {
            int[] p = Objects.requireNonNull(prompts.get(i), "prompt " + i + " is null");
            if (p.length == 0) throw new IllegalArgumentException("prompt " + i + " is empty");
            if (p.length >= session.maxSeqLen())
                throw new IllegalArgumentException("prompt " + i + " has " + p.length + " tokens; the session holds "
                        + session.maxSeqLen() + " per sequence (room for at least one more is needed)");
            promptTokens += p.length;
        }
        boolean mtp = config.mtp();
        if (mtp && !model.hasMtp())
            throw new IllegalArgumentException("MTP was asked for but the model has no MTP module (num_nextn_predict_layers"
                    + " = " + model.config().numNextnPredictLayers() + ", or it was not loaded)");
        session.reset();
        model.profile().reset();
        this.progress = progress;
        Sampler[] samplers = new Sampler[b];
        List<List<Integer>> out = new ArrayList<>();
        boolean[] done = new boolean[b];
        int[] last = new int[b], draft = new int[b];
        for (int i = 0; i < b; i++) {
            samplers[i] = new Sampler(config.temperature(), config.topP(), config.seed() + i);
            out.add(new ArrayList<>());
            done[i] = config.maxTokens() == 0;
        }
        long drafted = 0, accepted = 0, steps = 0, decodeTokens = 0;
        long t0 = System.nanoTime();
        // ---- prefill, in calls of at most prefillChunk tokens (bounded activation memory)
        try (Arena a = Arena.ofConfined()) {
            int d = model.config().hiddenSize();
            long total = 0;
            long[] base = new long[b]; // row of each prompt's first token in `hidden`
            for (int i = 0; i < b; i++) { base[i] = total; total += prompts.get(i).length; }
            // the last hidden states: with MTP those of every prompt position (each feeds a draft), else row i holds
            // the last one of prompt i
            Tensor hidden = model.act(a, mtp ? total : b, d);
            for (List<Model.Segment> call : chunks(prompts)) {
                try (Arena c = Arena.ofConfined()) {
                    Tensor h = model.forward(session, call, c);
                    long r = 0;
                    for (Model.Segment g : call) {
                        long n = g.tokens().length, at = base[g.slot()] + g.start();
                        if (mtp) model.context().copy(hidden.slice(at, at + n), h.slice(r, r + n));
                        else if (g.start() + n == prompts.get(g.slot()).length)
                            model.context().copy(hidden.slice(g.slot(), g.slot() + 1), h.slice(r + n - 1, r + n));
                        r += n;
                    }
                }
            }
            Tensor lastHidden = hidden;
            if (mtp) {
                int[] lastRows = new int[b];
                for (int i = 0; i < b; i++) lastRows[i] = (int) (base[i] + prompts.get(i).length - 1);
                lastHidden = rows(a, hidden, lastRows);
            }
            Tensor lg = model.logits(lastHidden, a);
            for (int i = 0; i < b; i++) {
                if (done[i]) continue;
                last[i] = sample(samplers[i], lg, i);
                done[i] = emit(out.get(i), last[i], config, session, i);
            }
            if (mtp) {
                // MTP entries 0..P-1: (hidden at j, token j+1), the last one pairing with the sampled token
                List<int[]> nexts = new ArrayList<>();
                for (int i = 0; i < b; i++) {
                    int[] p = prompts.get(i);
                    int[] next = new int[p.length];
                    System.arraycopy(p, 1, next, 0, p.length - 1);
                    next[p.length - 1] = last[i];
                    nexts.add(next);
                }
                for (List<Model.Segment> call : chunks(nexts)) {
                    try (Arena c = Arena.ofConfined()) {
                        int rowsN = 0;
                        for (Model.Segment g : call) rowsN += g.tokens().length;
                        int[] idx = new int[rowsN];
                        int r = 0;
                        for (Model.Segment g : call)
                            for (int j = 0; j < g.tokens().length; j++) idx[r++] = (int) (base[g.slot()] + g.start() + j);
                        // drafts of the sequences whose last entry is in this call (later calls overwrite earlier)
                        draftFrom(session, c, call, rows(c, hidden, idx), draft);
                    }
                }
            }
        }
        long t1 = System.nanoTime();
        // ---- decode
        while (true) {
            List<Integer> active = new ArrayList<>();
            for (int i = 0; i < b; i++) if (!done[i]) active.add(i);
            if (active.isEmpty()) break;
            steps++;
            try (Arena a = Arena.ofConfined()) {
                List<Model.Segment> segs = new ArrayList<>();
                boolean[] speculate = new boolean[b];
                for (int i : active) {
                    int n = session.length(i);
                    speculate[i] = mtp && n + 2 <= session.maxSeqLen()
                            && out.get(i).size() + 2 <= config.maxTokens();
                    segs.add(new Model.Segment(i, n, speculate[i] ? new int[] {last[i], draft[i]} : new int[] {last[i]}));
                }
                int[] starts = new int[b];
                for (Model.Segment s : segs) starts[s.slot()] = s.start();
                Tensor h = model.forward(session, segs, a);
                Tensor lg = model.logits(h, a);
                List<Model.Segment> ms = new ArrayList<>();
                List<Integer> hiddenRows = new ArrayList<>();
                int r = 0;
                for (Model.Segment s : segs) {
                    int i = s.slot(), n = starts[i];
                    int t1st = sample(samplers[i], lg, r);
                    int produced = 1;
                    int[] got;
                    if (speculate[i]) {
                        drafted++;
                        if (t1st == draft[i]) {
                            accepted++;
                            got = new int[] {t1st, -1};
                        } else {
                            got = new int[] {t1st};
                            session.length[i] = n + 1; // rewind the draft's cache entry
                        }
                    } else {
                        got = new int[] {t1st};
                    }
                    boolean fin = emit(out.get(i), t1st, config, session, i);
                    decodeTokens++;
                    if (got.length == 2 && !fin) {
                        got[1] = sample(samplers[i], lg, r + 1);
                        fin = emit(out.get(i), got[1], config, session, i);
                        decodeTokens++;
                        produced = 2;
                    } else if (got.length == 2) {
                        session.length[i] = n + 1; // stopped after the first: drop the second entry
                    }
                    last[i] = got[produced - 1];
                    done[i] = fin;
                    if (mtp && !fin) {
                        int[] next = produced == 2 ? new int[] {got[0], got[1]} : new int[] {got[0]};
                        ms.add(new Model.Segment(i, n, next));
                        for (int j = 0; j < produced; j++) hiddenRows.add(r + j);
                    }
                    r += s.tokens().length;
                }
                if (!ms.isEmpty()) {
                    int[] hr = hiddenRows.stream().mapToInt(Integer::intValue).toArray();
                    draftFrom(session, a, ms, rows(a, h, hr), draft);
                }
            }
        }
        long t2 = System.nanoTime();
        List<int[]> tokens = new ArrayList<>();
        for (List<Integer> l : out) tokens.add(l.stream().mapToInt(Integer::intValue).toArray());
        return new Generation(tokens, promptTokens, t1 - t0, decodeTokens, t2 - t1, steps, drafted, accepted,
                model.profile().nanos());
    }

    /**
     * Cuts sequences (slot i = list index) into forward calls of at most {@link #prefillChunk} tokens: pieces of a
     * sequence go in order, no call holds a slot twice. A call whose pieces all start at 0 runs the compute form.
     */
    List<List<Model.Segment>> chunks(List<int[]> seqs) {
        List<List<Model.Segment>> calls = new ArrayList<>();
        List<Model.Segment> cur = new ArrayList<>();
        java.util.Set<Integer> slots = new java.util.HashSet<>();
        int budget = prefillChunk;
        for (int i = 0; i < seqs.size(); i++) {
            int[] p = seqs.get(i);
            for (int s0 = 0; s0 < p.length; ) {
                if (budget == 0 || slots.contains(i)) {
                    calls.add(cur);
                    cur = new ArrayList<>();
                    slots.clear();
                    budget = prefillChunk;
                }
                int n = Math.min(budget, p.length - s0);
                cur.add(new Model.Segment(i, s0, java.util.Arrays.copyOfRange(p, s0, s0 + n)));
                slots.add(i);
                budget -= n;
                s0 += n;
            }
        }
        if (!cur.isEmpty()) calls.add(cur);
        return calls;
    }

    /** Runs the MTP module on {@code segs} (hidden rows given in order) and sets each slot's draft. */
    private void draftFrom(Session session, Arena a, List<Model.Segment> segs, Tensor hidden, int[] draft) {
        Tensor mh = model.mtpForward(session, segs, hidden, a);
        int[] lastRows = new int[segs.size()];
        int r = 0;
        for (int i = 0; i < segs.size(); i++) { r += segs.get(i).tokens().length; lastRows[i] = r - 1; }
        Tensor lg = model.mtpLogits(rows(a, mh, lastRows), a);
        for (int i = 0; i < segs.size(); i++) draft[segs.get(i).slot()] = Sampler.argmax(HostOps.row(lg, i));
    }

    private int sample(Sampler s, Tensor logits, int row) {
        long t0 = System.nanoTime();
        int tok = s.sample(HostOps.row(logits, row));
        model.profile().add(Profile.Family.SAMPLING, System.nanoTime() - t0);
        return tok;
    }

    /** Appends {@code tok}; true when the sequence is finished (stop token, max tokens, session full). */
    private boolean emit(List<Integer> out, int tok, GenerationConfig c, Session s, int slot) {
        out.add(tok);
        progress.advance(1);
        return c.stopTokens().contains(tok) || out.size() >= c.maxTokens() || s.length(slot) + 1 > s.maxSeqLen();
    }

    /** Rows {@code idx} of [R, D] {@code t} (the model's context memory) as a new tensor. */
    private Tensor rows(Arena a, Tensor t, int[] idx) {
        return model.rows(a, t, idx);
    }
}
