/**
 * The attention kernels declared through the kernel API: bindings by name,
 * the shared attention uniforms, and pipeline keys by head dimension,
 * tiling, storage types (f32 or f16 operands/outputs) and the subgroup
 * choice. The WGSL bodies live in the `*_kernel(s).ts` generators.
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
import { type AttentionElement, rowBinding } from "./wgsl_blocks.ts";
import { ATTENTION_UNIFORMS, type AttentionTypes, F32_TYPES, typesKey } from "./wgsl_common.ts";

/** A specialisation of a tiled attention kernel. */
export interface TiledSpec {
  /** Head dimension. */
  headDim: number;
  /** Tile sizes. */
  tiling: AttentionTiling;
  /** Storage types; default all f32. */
  types?: AttentionTypes;
  /** Subgroup exchanges (forward only; see `subgroups.ts`); default false. */
  subgroups?: boolean;
  /** dK/dV only: write f32 split partials instead of the gradients. */
  partials?: boolean;
}

/** A specialisation of an untiled attention kernel. */
export interface HeadSpec {
  /** Head dimension. */
  headDim: number;
  /**
   * Storage of the tensors the kernel reads or writes besides f32 statistics
   * and scores (row stats: out and dOut; split sum: dK, dV; row scores: q, k
   * and their gradients); default f32.
   */
  element?: AttentionElement;
  /** Invocations per row (row stats, row scores), > 1 only with subgroups; default 1. */
  lanes?: number;
}

const F32_IN: BindingDecl = { type: "array<f32>" };
const F32_OUT: BindingDecl = { type: "array<f32>", access: "read_write" };
const I32_IN: BindingDecl = { type: "array<i32>" };
const flat = (element: AttentionElement | undefined, access: "read" | "read_write" = "read") => ({
  type: `array<${element ?? "f32"}>`,
  access,
});
const tiledKey = ({ headDim, tiling, types, subgroups, partials }: TiledSpec) =>
  `d${headDim} ${tiling.queryTile}x${tiling.keyTile} t${tiling.threadsPerRow} r${
    rowsPerThreadOf(tiling)
  }${typesKey(types)}${subgroups ? " sg" : ""}${partials ? " parts" : ""}`;
const headKey = ({ headDim, element, lanes }: HeadSpec) =>
  `d${headDim}${element === "f16" ? " f16" : ""}${(lanes ?? 1) > 1 ? ` sg${lanes}` : ""}`;

/** Fused forward: one workgroup per (query tile, query head, batch row). */
export const ATTENTION_FORWARD = defineKernel({
  name: "attention-forward",
  key: tiledKey,
  uniforms: ATTENTION_UNIFORMS,
  bindings: ({ headDim, types = F32_TYPES }: TiledSpec) => ({
    q: rowBinding(headDim, "read", types.operand),
    k: rowBinding(headDim, "read", types.operand),
    v: rowBinding(headDim, "read", types.operand),
    mask: I32_IN,
    out: rowBinding(headDim, "read_write", types.output),
    lse: F32_OUT,
  }),
  source: ({ headDim, tiling, types, subgroups }: TiledSpec) =>
    forwardKernelSource(headDim, tiling, types, subgroups),
});

/** Backward pass 1: per-row (L, Δ). */
export const ATTENTION_ROW_STATS = defineKernel({
  name: "attention-row-stats",
  key: headKey,
  uniforms: ATTENTION_UNIFORMS,
  bindings: ({ element }: HeadSpec) => ({
    out: flat(element),
    dOut: flat(element),
    lse: F32_IN,
    stats: { type: "array<vec2<f32>>", access: "read_write" },
  }),
  source: ({ headDim, element, lanes }: HeadSpec) => rowStatsKernelSource(headDim, element, lanes),
});

const backwardInputs = (headDim: number, types: AttentionTypes) => ({
  q: rowBinding(headDim, "read", types.operand),
  k: rowBinding(headDim, "read", types.operand),
  v: rowBinding(headDim, "read", types.operand),
  dOut: rowBinding(headDim, "read", types.output),
  stats: { type: "array<vec2<f32>>" },
  mask: I32_IN,
});

/** Backward pass 2: dK and dV (or split partials) per (key tile, kv head, batch row · split). */
export const ATTENTION_DKDV = defineKernel({
  name: "attention-dkdv",
  key: tiledKey,
  uniforms: ATTENTION_UNIFORMS,
  bindings: ({ headDim, types = F32_TYPES, partials }: TiledSpec) => ({
    ...backwardInputs(headDim, types),
    dK: rowBinding(headDim, "read_write", partials ? "f32" : types.operand),
    dV: rowBinding(headDim, "read_write", partials ? "f32" : types.operand),
  }),
  source: ({ headDim, tiling, types, partials }: TiledSpec) =>
    keyValueGradKernelSource(headDim, tiling, types, partials),
});

/** Backward pass 2b (split dK/dV only): the partials added in split order. */
export const ATTENTION_SPLIT_SUM = defineKernel({
  name: "attention-dkdv-split-sum",
  key: headKey,
  uniforms: ATTENTION_UNIFORMS,
  bindings: ({ element }: HeadSpec) => ({
    dKParts: F32_IN,
    dVParts: F32_IN,
    dK: flat(element, "read_write"),
    dV: flat(element, "read_write"),
  }),
  source: ({ headDim, element }: HeadSpec) => splitSumKernelSource(headDim, element),
});

/** Backward pass 3: dQ per (query tile, query head, batch row). */
export const ATTENTION_DQ = defineKernel({
  name: "attention-dq",
  key: tiledKey,
  uniforms: ATTENTION_UNIFORMS,
  bindings: ({ headDim, types = F32_TYPES }: TiledSpec) => ({
    ...backwardInputs(headDim, types),
    dQ: rowBinding(headDim, "read_write", types.operand),
  }),
  source: ({ headDim, tiling, types }: TiledSpec) => queryGradKernelSource(headDim, tiling, types),
});

/** Selected-row scores S = scale·q[rows]·kᵀ. */
export const ATTENTION_ROW_SCORES = defineKernel({
  name: "attention-row-scores",
  key: headKey,
  uniforms: ATTENTION_UNIFORMS,
  bindings: ({ element }: HeadSpec) => ({
    q: flat(element),
    k: flat(element),
    mask: I32_IN,
    rows: I32_IN,
    scores: F32_OUT,
  }),
  source: ({ headDim, element, lanes }: HeadSpec) => rowScoresKernelSource(headDim, element, lanes),
});

/** Row scores backward into dQ. */
export const ATTENTION_ROW_SCORES_DQ = defineKernel({
  name: "attention-row-scores-dq",
  key: headKey,
  uniforms: ATTENTION_UNIFORMS,
  bindings: ({ element }: HeadSpec) => ({
    dScores: F32_IN,
    k: flat(element),
    mask: I32_IN,
    rows: I32_IN,
    dQ: flat(element, "read_write"),
  }),
  source: ({ headDim, element, lanes }: HeadSpec) =>
    rowScoresQueryGradKernelSource(headDim, element, lanes),
});

/** Row scores backward into dK. */
export const ATTENTION_ROW_SCORES_DK = defineKernel({
  name: "attention-row-scores-dk",
  key: headKey,
  uniforms: ATTENTION_UNIFORMS,
  bindings: ({ element }: HeadSpec) => ({
    dScores: F32_IN,
    q: flat(element),
    mask: I32_IN,
    rows: I32_IN,
    dK: flat(element, "read_write"),
  }),
  source: ({ headDim, element }: HeadSpec) => rowScoresKeyGradKernelSource(headDim, element),
});
