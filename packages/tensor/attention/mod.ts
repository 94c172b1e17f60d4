/**
 * Fused flash-attention kernels for WebGPU with mask metadata instead of dense
 * masks: forward, backward, selected-row scores and their backward, grouped-query
 * heads, tile skipping; plus a float64 CPU reference of all of them.
 *
 * Layouts: q `[B, Hq, T, D]`, k and v `[B, Hkv, T, D]`, out `[B, Hq, T, D]`,
 * lse `[B, Hq, T]`, row scores `[B, Hq, R, T]`; contiguous, row-major; f32,
 * or f16 storage of q/k/v/gradients and of out/dOut (f32 arithmetic). Row
 * reductions use subgroups where the device has them.
 *
 * @module
 */

export * from "./mask_metadata.ts";
export * from "./tile_table.ts";
export * from "./tiling.ts";
export { AttentionMask, type MaskBufferForTiling } from "./attention_mask.ts";
export type { AttentionShape } from "./dispatch_util.ts";
export * from "./attention_forward.ts";
export * from "./attention_backward.ts";
export * from "./row_scores.ts";
export * from "./reference.ts";
export * from "./counts.ts";
export { attentionSubgroups, flatRowLanes } from "./subgroups.ts";
export type { AttentionElement } from "./wgsl_blocks.ts";
