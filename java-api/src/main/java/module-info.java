/**
 * dsk4j: native kernels of DeepSeek-V3-style models for the JVM.
 *
 * <p>Start with {@link dev.dsk4j.Context} (a backend: {@code cpu} or {@code cuda:N}),
 * {@link dev.dsk4j.Tensor} (memory you own through an {@link java.lang.foreign.Arena}) and
 * the ops, such as {@link dev.dsk4j.Fp8}. Run with {@code --enable-native-access=dev.dsk4j,dev.dsk4j.bindings}
 * (or {@code ALL-UNNAMED} on the class path). {@link dev.dsk4j.model} reads Hugging Face checkpoints
 * ({@code config.json}, memory-mapped {@code .safetensors}).
 */
module dev.dsk4j {
    requires dev.dsk4j.bindings;
    exports dev.dsk4j;
    exports dev.dsk4j.model;
    // the one JSON reader/writer, shared with the conformance module (golden vectors, checkpoints it writes)
    exports dev.dsk4j.internal to dev.dsk4j.conformance;
}
