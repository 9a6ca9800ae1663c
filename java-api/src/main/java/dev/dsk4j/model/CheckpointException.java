package dev.dsk4j.model;

/**
 * Malformed or inconsistent checkpoint content: a {@code .safetensors} file, a
 * {@code model.safetensors.index.json} or a tensor that is not what the caller expects. The message
 * always starts with the file it concerns and names the tensor where one is involved, e.g.
 * {@code "model-00001-of-00163.safetensors: tensor 'model.embed_tokens.weight': data_offsets [0, 12] span 12
 * bytes, BF16 [2, 4] needs 16"}. I/O failures are {@link java.io.IOException}s instead.
 */
public class CheckpointException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public CheckpointException(String message) {
        super(message);
    }

    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
