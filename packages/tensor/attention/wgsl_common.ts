/**
 * WGSL shared by the attention kernels: the uniform fields, token
 * metadata access and the visibility rule (the GPU twin of `isVisible`).
 *
 * @module
 */

import type { AttentionElement } from "./wgsl_blocks.ts";

/**
 * Storage types of a launch's `[rows, D]` tensors: `operand` for q, k, v and
 * their gradients dQ, dK, dV; `output` for the forward's out and the
 * backward's out and dOut. lse, row statistics and row scores stay f32.
 */
export interface AttentionTypes {
  /** q, k, v, dQ, dK, dV. */
  operand: AttentionElement;
  /** out, dOut. */
  output: AttentionElement;
}

/** Everything f32 (the default). */
export const F32_TYPES: AttentionTypes = { operand: "f32", output: "f32" };

/** Pipeline-key fragment of `types` (empty for all-f32, so f32 keys are unchanged). */
export function typesKey(types: AttentionTypes | undefined): string {
  const t = types ?? F32_TYPES;
  return t.operand === "f32" && t.output === "f32" ? "" : ` ${t.operand}>${t.output}`;
}

/** Values of the attention kernels' uniforms, see {@linkcode attentionUniforms}. */
export interface KernelParams {
  /** Query heads (Hq). */
  heads: number;
  /** Key/value heads (Hkv). */
  kvHeads: number;
  /** Tokens per batch row (T). */
  seqLen: number;
  /** Sliding window, 0 = none. */
  window: number;
  /** ⌈T / Br⌉. */
  numQueryTiles: number;
  /** ⌈T / Bc⌉. */
  numKeyTiles: number;
  /** Word offset of the forward tile lists in the mask buffer. */
  forwardTable: number;
  /** Word offset of the backward tile lists in the mask buffer. */
  backwardTable: number;
  /** Score scale. */
  scale: number;
  /** Selected rows per batch row (row-score kernels). */
  rowsPerBatch: number;
  /** Batch rows (B). */
  batch: number;
  /** Workgroups sharing one dK/dV key tile (split backward); default 1. */
  splits?: number;
}

/** The uniforms every attention kernel declares (read in WGSL as `P.<name>`). */
export const ATTENTION_UNIFORMS = {
  heads: "u32",
  kvHeads: "u32",
  seqLen: "u32",
  window: "u32",
  numQueryTiles: "u32",
  numKeyTiles: "u32",
  forwardTable: "u32",
  backwardTable: "u32",
  scale: "f32",
  negInfBits: "u32",
  rowsPerBatch: "u32",
  batch: "u32",
  splits: "u32",
} as const;

/** Uniform values by name (adds the bits of −∞, which WGSL constant evaluation rejects). */
export function attentionUniforms(
  p: KernelParams,
): Record<keyof typeof ATTENTION_UNIFORMS, number> {
  return { ...p, splits: p.splits ?? 1, negInfBits: 0xff800000 };
}

/** WGSL constants shared by the attention kernels (the uniforms come from the kernel API). */
export const PARAMS_WGSL = /* wgsl */ `
// Score stored for a masked pair; anything at or below MASKED_LIMIT counts as masked.
const MASKED: f32 = -1.0e30;
const MASKED_LIMIT: f32 = -1.0e29;
const FULL_TILE_BIT: u32 = ${1 << 30}u;
const LOG2E: f32 = 1.4426950408889634;
const LN2: f32 = 0.6931471805599453;
`;

/**
 * WGSL helpers reading token metadata (segment, block, kind) from a buffer named
 * \`mask\` (array<i32>, 4 words per token) and testing visibility.
 */
export const MASK_WGSL = /* wgsl */ `
// (segment, block, kind, 0) of token t of batch row b; past the end, segment −2 so nothing matches.
fn tokenMeta(b: u32, t: u32) -> vec4<i32> {
  if (t >= P.seqLen) { return vec4<i32>(-2, -1, -1, 0); }
  let base = 4u * (b * P.seqLen + t);
  return vec4<i32>(mask[base], mask[base + 1u], mask[base + 2u], 0);
}

// Visible(i, j): same non-pad segment, causal by storage index, BlockRank block rule, window.
fn visible(query: vec4<i32>, i: u32, key: vec4<i32>, j: u32) -> bool {
  if (query.x < 0 || query.x != key.x || j > i) { return false; }
  if (P.window != 0u && i - j >= P.window) { return false; }
  return query.z == 2 || key.z == 0 || query.y == key.y;
}
`;
