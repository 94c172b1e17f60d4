/**
 * WGSL shared by the attention kernels: the uniform parameter block, token
 * metadata access and the visibility rule (the GPU twin of `isVisible`).
 *
 * @module
 */

/** Bytes of the uniform parameter block. */
export const PARAMS_BYTES = 48;

/** Values of the uniform parameter block, see {@linkcode packParams}. */
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
}

/** Packs parameters in the layout of the WGSL `Params` struct. */
export function packParams(p: KernelParams): ArrayBuffer {
  const buffer = new ArrayBuffer(PARAMS_BYTES);
  const u32 = new Uint32Array(buffer);
  const f32 = new Float32Array(buffer);
  u32.set([
    p.heads,
    p.kvHeads,
    p.seqLen,
    p.window,
    p.numQueryTiles,
    p.numKeyTiles,
    p.forwardTable,
    p.backwardTable,
  ]);
  f32[8] = p.scale;
  u32[9] = 0xff800000; // bits of −∞, handed in because WGSL constant evaluation rejects infinities
  u32[10] = p.rowsPerBatch;
  u32[11] = p.batch;
  return buffer;
}

/** WGSL declaration of the `Params` uniform at binding 0 and the mask helpers. */
export const PARAMS_WGSL = /* wgsl */ `
struct Params {
  heads: u32,
  kvHeads: u32,
  seqLen: u32,
  window: u32,
  numQueryTiles: u32,
  numKeyTiles: u32,
  forwardTable: u32,
  backwardTable: u32,
  scale: f32,
  negInfBits: u32,
  rowsPerBatch: u32,
  batch: u32,
}
@group(0) @binding(0) var<uniform> params: Params;

// Score stored for a masked pair; anything at or below MASKED_LIMIT counts as masked.
const MASKED: f32 = -1.0e30;
const MASKED_LIMIT: f32 = -1.0e29;
const FULL_TILE_BIT: u32 = ${1 << 30}u;
`;

/**
 * WGSL helpers reading token metadata (segment, block, kind) from a buffer named
 * \`mask\` (array<i32>, 4 words per token) and testing visibility.
 */
export const MASK_WGSL = /* wgsl */ `
// (segment, block, kind, 0) of token t of batch row b; past the end, segment −2 so nothing matches.
fn tokenMeta(b: u32, t: u32) -> vec4<i32> {
  if (t >= params.seqLen) { return vec4<i32>(-2, -1, -1, 0); }
  let base = 4u * (b * params.seqLen + t);
  return vec4<i32>(mask[base], mask[base + 1u], mask[base + 2u], 0);
}

// Visible(i, j): same non-pad segment, causal by storage index, BlockRank block rule, window.
fn visible(query: vec4<i32>, i: u32, key: vec4<i32>, j: u32) -> bool {
  if (query.x < 0 || query.x != key.x || j > i) { return false; }
  if (params.window != 0u && i - j >= params.window) { return false; }
  return query.z == 2 || key.z == 0 || query.y == key.y;
}
`;
