package dev.dsk4j.conformance;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.dsk4j.Context;
import dev.dsk4j.Device;
import dev.dsk4j.Mla;
import dev.dsk4j.model.Generation;
import dev.dsk4j.model.GenerationConfig;
import dev.dsk4j.model.Generator;
import dev.dsk4j.model.Model;
import dev.dsk4j.model.Session;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code ./dsk4j generate --model DIR (--prompt TEXT | --ids 1,2,3) [--max-tokens N] [--mtp]
 * [--backend cpu|cuda:0] [--gemm fp8|dequant] [--temperature T] [--top-p P] [--seed S]
 * [--cache f32|bf16|fp8] [--resident]}: loads a Hugging Face DeepSeek-V2/V3 checkpoint and continues the prompt.
 * Text prompts need the checkpoint's {@code tokenizer.json} (read with DJL's tokenizers).
 */
public final class GenerateCommand {
    private GenerateCommand() {}

    static final String USAGE = """
            usage: ./dsk4j generate --model DIR (--prompt TEXT | --ids 1,2,3) [--max-tokens N] [--mtp]
                                    [--backend cpu|cuda:0] [--gemm fp8|dequant] [--temperature T] [--top-p P]
                                    [--seed S] [--cache f32|bf16|fp8] [--max-seq-len N] [--activations f32|bf16]
                                    [--resident]
              --model DIR      a Hugging Face checkpoint: config.json, *.safetensors (+ index), tokenizer.json
              --prompt TEXT    text, encoded with DIR/tokenizer.json (DJL tokenizers)
              --ids 1,2,3      token ids (no tokenizer needed); repeat --ids for a batch of sequences
              --max-tokens N   new tokens per sequence (default 32)
              --mtp            speculative decoding with the checkpoint's MTP layer; prints the acceptance rate
              --gemm MODE      fp8 (act_quant + FP8 GEMM, default) or dequant (bf16 weights, f32 GEMM)
              --temperature T  0 = greedy (default); with --top-p P (default 1) and --seed S (default 0)
              --cache FMT      the latent cache format (default bf16)
              --activations D  f32 (default) or bf16 activations between ops
              --backend DEV    cpu (default) or cuda:N: on CUDA the weights are uploaded to the device at load
              --resident       cpu: copy the weights into memory the model owns instead of reading the mapped
                               files in place (always so on CUDA)""";

    public static void main(String[] args) throws Exception {
        try {
            run(args);
        } catch (java.io.IOException | IllegalArgumentException | IllegalStateException | dev.dsk4j.Dsk4jException e) {
            // a missing file, a malformed checkpoint or config, an unsupported backend: one line, not a stack trace
            System.err.println("dsk4j generate: " + (e instanceof java.nio.file.NoSuchFileException ? "no such file: " : "")
                    + e.getMessage());
            System.exit(1);
        }
    }

    static void run(String[] args) throws Exception {
        Path model = null;
        String prompt = null;
        List<int[]> ids = new ArrayList<>();
        int maxTokens = 32, maxSeqLen = 0;
        boolean mtp = false, resident = false;
        String backend = "cpu", gemm = "fp8", cache = "bf16", activations = "f32";
        double temperature = 0, topP = 1;
        long seed = 0;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--model" -> model = Path.of(value(args, ++i));
                case "--prompt" -> prompt = value(args, ++i);
                case "--ids" -> ids.add(parseIds(value(args, ++i)));
                case "--max-tokens" -> maxTokens = Integer.parseInt(value(args, ++i));
                case "--max-seq-len" -> maxSeqLen = Integer.parseInt(value(args, ++i));
                case "--mtp" -> mtp = true;
                case "--resident" -> resident = true;
                case "--backend" -> backend = value(args, ++i);
                case "--gemm" -> gemm = value(args, ++i);
                case "--cache" -> cache = value(args, ++i);
                case "--activations" -> activations = value(args, ++i);
                case "--temperature" -> temperature = Double.parseDouble(value(args, ++i));
                case "--top-p" -> topP = Double.parseDouble(value(args, ++i));
                case "--seed" -> seed = Long.parseLong(value(args, ++i));
                case "-h", "--help" -> {
                    System.out.println(USAGE);
                    return;
                }
                default -> fail("unknown argument '" + args[i] + "'");
            }
        }
        if (model == null) fail("--model DIR is required");
        if ((prompt == null) == ids.isEmpty()) fail("give either --prompt TEXT or --ids 1,2,3");
        Model.GemmMode mode = switch (gemm) {
            case "fp8" -> Model.GemmMode.FP8;
            case "dequant" -> Model.GemmMode.DEQUANT;
            default -> throw fail("--gemm must be fp8 or dequant, got '" + gemm + "'");
        };
        Mla.CacheFormat format = switch (cache) {
            case "f32" -> Mla.CacheFormat.F32;
            case "bf16" -> Mla.CacheFormat.BF16;
            case "fp8" -> Mla.CacheFormat.FP8;
            default -> throw fail("--cache must be f32, bf16 or fp8, got '" + cache + "'");
        };
        dev.dsk4j.DType actType = switch (activations) {
            case "f32" -> dev.dsk4j.DType.F32;
            case "bf16" -> dev.dsk4j.DType.BF16;
            default -> throw fail("--activations must be f32 or bf16, got '" + activations + "'");
        };
        HuggingFaceTokenizer tok = null;
        if (prompt != null) {
            Path tj = model.resolve("tokenizer.json");
            if (!Files.isRegularFile(tj)) fail(model + " has no tokenizer.json: pass token ids with --ids");
            tok = HuggingFaceTokenizer.newInstance(tj);
            Encoding enc = tok.encode(prompt);
            long[] l = enc.getIds();
            int[] p = new int[l.length];
            for (int i = 0; i < l.length; i++) p[i] = Math.toIntExact(l[i]);
            ids.add(p);
        }
        try (Context ctx = Context.open(Device.parse(backend));
             Model m = Model.load(ctx, model, new Model.Options(mode, mtp, true, actType, resident))) {
            int longest = 0;
            for (int[] p : ids) longest = Math.max(longest, p.length);
            int seqLen = maxSeqLen > 0 ? maxSeqLen
                    : Math.min(m.config().maxPositionEmbeddings(), longest + maxTokens + 2);
            Set<Integer> stops = new HashSet<>(m.config().eosTokenIds());
            GenerationConfig gc = new GenerationConfig(maxTokens, temperature, topP, seed, stops, mtp);
            try (Session s = m.newSession(ids.size(), seqLen, format)) {
                Generation g;
                try (dev.dsk4j.model.Progress p = dev.dsk4j.model.Progress.start("generating",
                        (long) maxTokens * ids.size(), "tokens")) {
                    g = new Generator(m).generate(s, ids, gc, p);
                }
                for (int i = 0; i < ids.size(); i++) {
                    int[] out = g.tokens().get(i);
                    if (tok != null) {
                        long[] l = new long[out.length];
                        for (int j = 0; j < out.length; j++) l[j] = out[j];
                        System.out.println(prompt + " " + tok.decode(l));
                    } else {
                        System.out.println(join(out));
                    }
                }
                report(g, m, s);
            }
        } finally {
            if (tok != null) tok.close();
        }
    }

    /** Prints throughput, time per op family, memory and the MTP acceptance rate to stderr. */
    static void report(Generation g, Model m, Session s) {
        System.err.printf(Locale.ROOT, "prefill: %d tokens in %.3f s = %.1f tokens/s%n", g.promptTokens(),
                g.prefillNanos() / 1e9, g.prefillTokensPerSecond());
        System.err.printf(Locale.ROOT, "decode:  %d tokens in %.3f s = %.1f tokens/s (%d steps)%n", g.decodeTokens(),
                g.decodeNanos() / 1e9, g.decodeTokensPerSecond(), g.steps());
        if (g.drafted() > 0)
            System.err.printf(Locale.ROOT, "MTP: %d of %d drafts accepted (%.1f%%)%n", g.accepted(), g.drafted(),
                    100.0 * g.acceptanceRate());
        long total = 0;
        for (long v : g.profile().values()) total += v;
        StringBuilder sb = new StringBuilder("time per op family:");
        final long tot = Math.max(1, total);
        g.profile().entrySet().stream().sorted((a, b) -> Long.compare(b.getValue(), a.getValue())).forEach(e ->
                sb.append(String.format(Locale.ROOT, " %s %.1f%%", e.getKey().name().toLowerCase(Locale.ROOT),
                        100.0 * e.getValue() / tot)));
        System.err.println(sb);
        System.err.printf(Locale.ROOT, "memory: checkpoint %s (mapped), model-owned %s, cache %s, process RSS %s (peak %s)%n",
                bytes(m.checkpointBytes()), bytes(m.ownedBytes()), bytes(s.cacheBytes()), bytes(rss("VmRSS")),
                bytes(rss("VmHWM")));
    }

    /** A field of /proc/self/status in bytes, or -1 where there is none. */
    static long rss(String field) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status")))
                if (line.startsWith(field + ":")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        } catch (Exception e) {
            // not Linux
        }
        return -1;
    }

    static String bytes(long b) {
        if (b < 0) return "n/a";
        if (b < 1 << 20) return String.format(Locale.ROOT, "%.1f KiB", b / 1024.0);
        if (b < 1L << 30) return String.format(Locale.ROOT, "%.1f MiB", b / (1024.0 * 1024));
        return String.format(Locale.ROOT, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    }

    static String join(int[] v) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < v.length; i++) sb.append(i == 0 ? "" : ",").append(v[i]);
        return sb.toString();
    }

    static int[] parseIds(String s) {
        String[] parts = s.split(",");
        int[] out = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                out[i] = Integer.parseInt(parts[i].trim());
            } catch (NumberFormatException e) {
                throw fail("--ids: '" + parts[i] + "' is not a token id");
            }
        }
        return out;
    }

    private static String value(String[] args, int i) {
        if (i >= args.length) fail(args[i - 1] + " needs a value");
        return args[i];
    }

    private static IllegalArgumentException fail(String msg) {
        System.err.println("dsk4j generate: " + msg);
        System.err.println(USAGE);
        System.exit(2);
        return new IllegalArgumentException(msg);
    }
}
