/**
 * Hugging Face checkpoints of the DeepSeek-V2/V3 family: {@link dev.dsk4j.model.ModelConfig}
 * ({@code config.json}), {@link dev.dsk4j.model.Checkpoint} (a directory of memory-mapped
 * {@link dev.dsk4j.model.SafeTensors} files, zero copy), {@link dev.dsk4j.model.SafeTensorsWriter}
 * and {@link dev.dsk4j.model.Progress}. Malformed content is a
 * {@link dev.dsk4j.model.CheckpointException} (an {@link java.lang.IllegalArgumentException}) naming
 * the file and the tensor; I/O failures are {@link java.io.IOException}s.
 */
package dev.dsk4j.model;
