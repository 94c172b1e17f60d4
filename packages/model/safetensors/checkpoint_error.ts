/**
 * The error every safetensors/checkpoint problem raises; its message names
 * the file and, when one is concerned, the tensor.
 *
 * @module
 */

/** A truncated, corrupt or inconsistent checkpoint: `file (tensor "x"): problem`. */
export class CheckpointError extends Error {
  /** Creates an error naming `file` and, when given, `tensor`. */
  constructor(readonly file: string, readonly tensor: string | undefined, problem: string) {
    super(`${file}${tensor === undefined ? "" : ` (tensor "${tensor}")`}: ${problem}`);
    this.name = "CheckpointError";
  }
}
