/**
 * Safetensors I/O: a streaming, validating reader; a writer whose files are
 * byte-identical to the reference library's; sharded Hugging Face
 * checkpoints; and f16/bf16 conversions with round-to-nearest-even.
 *
 * ```ts
 * import { openCheckpoint } from "@irforge/model/safetensors";
 * const ckpt = await openCheckpoint("path/to/model_dir");
 * for (const name of ckpt.names()) {
 *   const { dtype, shape } = ckpt.info(name);
 *   const weights = await ckpt.read(name, { as: "f32" });
 * }
 * ckpt.close();
 * ```
 *
 * @module
 */

export * from "./checkpoint_error.ts";
export * from "./dtype.ts";
export * from "./half.ts";
export * from "./reader.ts";
export * from "./checkpoint.ts";
export * from "./writer.ts";
