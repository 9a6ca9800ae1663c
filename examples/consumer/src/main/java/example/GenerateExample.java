package example;

import dev.dsk4j.Context;
import dev.dsk4j.Device;
import dev.dsk4j.Mla;
import dev.dsk4j.model.Generation;
import dev.dsk4j.model.GenerationConfig;
import dev.dsk4j.model.Generator;
import dev.dsk4j.model.Model;
import dev.dsk4j.model.Session;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * Loads a Hugging Face DeepSeek-V2/V3 checkpoint directory (argument 1) with the model API and
 * continues two prompts of token ids greedily, with MTP speculative decoding when the checkpoint
 * has an MTP layer. Exits 1 if MTP changed the output.
 */
public final class GenerateExample {
    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args.length > 0 ? args[0] : "checkpoint");
        try (Context cpu = Context.open(Device.cpu());
             Model model = Model.load(cpu, dir, Model.Options.defaults());
             Session session = model.newSession(2, 64, Mla.CacheFormat.BF16)) {
            List<int[]> prompts = List.of(new int[] {11, 22, 33}, new int[] {5, 6, 7, 8, 9, 10, 11});
            Generator generator = new Generator(model);
            Generation plain = generator.generate(session, prompts, GenerationConfig.greedy(16));
            System.out.printf("example: %s, %d layers, prefill %.0f tokens/s, decode %.0f tokens/s%n", cpu.describe(),
                    model.config().numHiddenLayers(), plain.prefillTokensPerSecond(), plain.decodeTokensPerSecond());
            for (int[] t : plain.tokens()) System.out.println("example: " + Arrays.toString(t));
            if (model.hasMtp()) {
                Generation spec = generator.generate(session, prompts, GenerationConfig.greedy(16).withMtp(true));
                System.out.printf("example: MTP accepted %d of %d drafts%n", spec.accepted(), spec.drafted());
                for (int i = 0; i < prompts.size(); i++) {
                    if (!Arrays.equals(plain.tokens().get(i), spec.tokens().get(i))) {
                        System.err.println("example: MTP changed the greedy output of sequence " + i);
                        System.exit(1);
                    }
                }
            }
        }
    }
}
