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

export { CheckpointError } from "./checkpoint_error.ts";
export {
  compareSafetensorsOrder,
  type Dtype,
  dtypeByteSize,
  elementCount,
  isDtype,
} from "./dtype.ts";
export {
  bf16ArrayToF16,
  bf16ArrayToF32,
  bf16BitsToF32,
  bitsToF32,
  f16ArrayToF32,
  f16BitsToF32,
  f32ArrayToBf16,
  f32ArrayToF16,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  f32ToBits,
  f64ArrayToBf16,
  f64ArrayToF16,
  f64ArrayToF32,
  f64ToBf16Bits,
  f64ToF16Bits,
} from "./half.ts";
export {
  type NativeArray,
  nativeView,
  parseSafetensorsHeader,
  type ReadAs,
  type ReadResult,
  SafetensorsFile,
  type TensorInfo,
} from "./reader.ts";
export {
  type Checkpoint,
  checkpointIndexName,
  openCheckpoint,
  singleCheckpointName,
} from "./checkpoint.ts";
export {
  planSafetensors,
  type SafetensorsLayout,
  saveCheckpoint,
  type SaveCheckpointOptions,
  type SavedCheckpoint,
  type TensorsToWrite,
  type TensorToWrite,
  writeSafetensors,
  type WriteSafetensorsOptions,
} from "./writer.ts";
