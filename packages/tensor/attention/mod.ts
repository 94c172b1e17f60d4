/**
 * Fused flash-attention kernels for WebGPU with mask metadata instead of dense
 * masks: forward, backward, selected-row scores and their backward, grouped-query
 * heads, tile skipping; plus a float64 CPU reference of all of them.
 *
 * Layouts: q `[B, Hq, T, D]`, k and v `[B, Hkv, T, D]`, out `[B, Hq, T, D]`,
 * lse `[B, Hq, T]`, row scores `[B, Hq, R, T]`; f32, contiguous, row-major.
 *
 * @module
 */

export {
  BlockKind,
  type BlockRankLayout,
  blockRankMask,
  causalMask,
  isVisible,
  type MaskBuilderOptions,
  maskFromArrays,
  type MaskMetadata,
  packedMask,
  PAD_SEGMENT,
  validateMaskMetadata,
} from "./mask_metadata.ts";
export { buildTileTable, FULL_TILE_BIT, type TileLists, type TileTable } from "./tile_table.ts";
export {
  type AttentionKernelName,
  type AttentionTiling,
  checkTiling,
  chooseTiling,
  type KernelLayout,
  kernelLayout,
  kernelWorkgroupBytes,
  loopLoadsPerFma,
  rowsPerThreadOf,
  type TilingKernel,
  type TilingLimits,
  workgroupBytes,
  workgroupThreads,
} from "./tiling.ts";
export { AttentionMask, type MaskBufferForTiling } from "./attention_mask.ts";
export type { AttentionShape } from "./dispatch_util.ts";
export {
  attentionForward,
  type AttentionForwardOptions,
  type AttentionForwardResult,
} from "./attention_forward.ts";
export {
  attentionBackward,
  type AttentionBackwardOptions,
  type AttentionBackwardResult,
  chooseKeySplits,
  MAX_KEY_SPLITS,
} from "./attention_backward.ts";
export {
  attentionRowScores,
  attentionRowScoresBackward,
  flattenRows,
  type RowScoresBackwardOptions,
  type RowScoresCommon,
  type RowScoresOptions,
} from "./row_scores.ts";
export {
  type Floats,
  referenceAttentionBackward,
  referenceAttentionForward,
  type ReferenceAttentionInputs,
  referenceDenseMask,
  referenceRowScores,
  referenceRowScoresBackward,
  type ReferenceRowScoresInputs,
  type ReferenceShape,
} from "./reference.ts";
export {
  attentionCounts,
  type AttentionKernelCounts,
  type AttentionPassCounts,
  type AttentionProblem,
} from "./counts.ts";
