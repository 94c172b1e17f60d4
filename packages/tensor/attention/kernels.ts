/**
 * The attention kernels declared through the kernel API: bindings by name,
 * the shared attention uniforms, and pipeline keys by head dimension and
 * tiling. The WGSL bodies live in the `*_kernel(s).ts` generators.
 *
 * @module
 */

import { type BindingDecl, defineKernel } from "../kernel.ts";
import {
  keyValueGradKernelSource,
  queryGradKernelSource,
  rowStatsKernelSource,
  splitSumKernelSource,
} from "./backward_kernels.ts";
import { forwardKernelSource } from "./forward_kernel.ts";
import {
  rowScoresKernelSource,
  rowScoresKeyGradKernelSource,
  rowScoresQueryGradKernelSource,
} from "./row_scores_kernels.ts";
import { type AttentionTiling, rowsPerThreadOf } from "./tiling.ts";
import { rowBinding } from "./wgsl_blocks.ts";
import { ATTENTION_UNIFORMS } from "./wgsl_common.ts";

/** A specialisation of a tiled attention kernel. */
export interface TiledSpec {
  /** Head dimension. */
  headDim: number;
  /** Tile sizes. */
  tiling: AttentionTiling;
}

/** A specialisation of an untiled attention kernel. */
export interface HeadSpec {
  /** Head dimension. */
  headDim: number;
}

const F32_IN: BindingDecl = { type: "array<f32>" };
const F32_OUT: BindingDecl = { type: "array<f32>", access: "read_write" };
const I32_IN: BindingDecl = { type: "array<i32>" };
const tiledKey = ({ headDim, tiling }: TiledSpec) =>
  `d${headDim} ${tiling.queryTile}x${tiling.keyTile} t${tiling.threadsPerRow} r${
    rowsPerThreadOf(tiling)
  }`;

/** Fused forward: one workgroup per (query tile, query head, batch row). */
export const ATTENTION_FORWARD = defineKernel({
  name: "attention-forward",
  key: tiledKey,
  uniforms: ATTENTION_UNIFORMS,
  bindings: ({ headDim }: TiledSpec) => ({
    q: rowBinding(headDim),
    k: rowBinding(headDim),
    v: rowBinding(headDim),
    mask: I32_IN,
    out: rowBinding(headDim, "read_write"),
    lse: F32_OUT,
  }),
  source: ({ headDim, tiling }: TiledSpec) => forwardKernelSource(headDim, tiling),
});

/** Backward pass 1: per-row (L, Δ). */
export const ATTENTION_ROW_STATS = defineKernel({
  name: "attention-row-stats",
  key: ({ headDim }: HeadSpec) => `d${headDim}`,
  uniforms: ATTENTION_UNIFORMS,
  bindings: () => ({
    out: F32_IN,
    dOut: F32_IN,
    lse: F32_IN,
    stats: { type: "array<vec2<f32>>", access: "read_write" },
  }),
  source: ({ headDim }: HeadSpec) => rowStatsKernelSource(headDim),
});

const backwardInputs = (headDim: number) => ({
  q: rowBinding(headDim),
  k: rowBinding(headDim),
  v: rowBinding(headDim),
  dOut: rowBinding(headDim),
  stats: { type: "array<vec2<f32>>" },
  mask: I32_IN,
});

/** Backward pass 2: dK and dV (or split partials) per (key tile, kv head, batch row · split). */
export const ATTENTION_DKDV = defineKernel({
  name: "attention-dkdv",
  key: tiledKey,
  uniforms: ATTENTION_UNIFORMS,
  bindings: ({ headDim }: TiledSpec) => ({
    ...backwardInputs(headDim),
    dK: rowBinding(headDim, "read_write"),
    dV: rowBinding(headDim, "read_write"),
  }),
  source: ({ headDim, tiling }: TiledSpec) => keyValueGradKernelSource(headDim, tiling),
});

/** Backward pass 2b (split dK/dV only): the partials added in split order. */
export const ATTENTION_SPLIT_SUM = defineKernel({
  name: "attention-dkdv-split-sum",
  key: ({ headDim }: HeadSpec) => `d${headDim}`,
  uniforms: ATTENTION_UNIFORMS,
  bindings: () => ({ dKParts: F32_IN, dVParts: F32_IN, dK: F32_OUT, dV: F32_OUT }),
  source: ({ headDim }: HeadSpec) => splitSumKernelSource(headDim),
});

/** Backward pass 3: dQ per (query tile, query head, batch row). */
export const ATTENTION_DQ = defineKernel({
  name: "attention-dq",
  key: tiledKey,
  uniforms: ATTENTION_UNIFORMS,
  bindings: ({ headDim }: TiledSpec) => ({
    ...backwardInputs(headDim),
    dQ: rowBinding(headDim, "read_write"),
  }),
  source: ({ headDim, tiling }: TiledSpec) => queryGradKernelSource(headDim, tiling),
});

/** Selected-row scores S = scale·q[rows]·kᵀ. */
export const ATTENTION_ROW_SCORES = defineKernel({
  name: "attention-row-scores",
  key: ({ headDim }: HeadSpec) => `d${headDim}`,
  uniforms: ATTENTION_UNIFORMS,
  bindings: () => ({ q: F32_IN, k: F32_IN, mask: I32_IN, rows: I32_IN, scores: F32_OUT }),
  source: ({ headDim }: HeadSpec) => rowScoresKernelSource(headDim),
});

/** Row scores backward into dQ. */
export const ATTENTION_ROW_SCORES_DQ = defineKernel({
  name: "attention-row-scores-dq",
  key: ({ headDim }: HeadSpec) => `d${headDim}`,
  uniforms: ATTENTION_UNIFORMS,
  bindings: () => ({ dScores: F32_IN, k: F32_IN, mask: I32_IN, rows: I32_IN, dQ: F32_OUT }),
  source: ({ headDim }: HeadSpec) => rowScoresQueryGradKernelSource(headDim),
});

/** Row scores backward into dK. */
export const ATTENTION_ROW_SCORES_DK = defineKernel({
  name: "attention-row-scores-dk",
  key: ({ headDim }: HeadSpec) => `d${headDim}`,
  uniforms: ATTENTION_UNIFORMS,
  bindings: () => ({ dScores: F32_IN, q: F32_IN, mask: I32_IN, rows: I32_IN, dK: F32_OUT }),
  source: ({ headDim }: HeadSpec) => rowScoresKeyGradKernelSource(headDim),
});
