/**
 * Dispatch of selected-row attention scores and their backward, for the
 * BlockRank auxiliary loss and attention-based ranking.
 *
 * @module
 */

import type { AttentionMask } from "./attention_mask.ts";
import {
  type AttentionShape,
  CallScope,
  checkBuffer,
  checkElement,
  checkShape,
} from "./dispatch_util.ts";
import { getRuntime } from "../runtime.ts";
import { flatRowLanes } from "./subgroups.ts";
import type { AttentionElement } from "./wgsl_blocks.ts";
import {
  ATTENTION_ROW_SCORES,
  ATTENTION_ROW_SCORES_DK,
  ATTENTION_ROW_SCORES_DQ,
} from "./kernels.ts";
import type { KernelParams } from "./wgsl_common.ts";

/** Inputs common to the row-score functions. */
export interface RowScoresCommon extends AttentionShape {
  /** Queries `[B, Hq, T, D]`, stored as `dtype`. */
  q: GPUBuffer;
  /** Keys `[B, Hkv, T, D]`, stored as `dtype`. */
  k: GPUBuffer;
  /**
   * Storage of q, k (and of dQ, dK in the backward): `f32` (default) or `f16`
   * (needs `shader-f16`); products and sums are f32, scores f32.
   */
  dtype?: AttentionElement;
  /** Mask metadata on the device; supplies B and T. */
  mask: AttentionMask;
  /**
   * Selected query rows: one list of R token indices per batch row (all the same
   * length R); −1 marks an unused slot. Indices within a batch row must be distinct.
   */
  rows: ArrayLike<number>[];
}

/** Checks `rows` and flattens it to i32 `[B, R]`; returns R too. */
export function flattenRows(
  rows: ArrayLike<number>[],
  batch: number,
  length: number,
): { flat: Int32Array; rowsPerBatch: number } {
  if (rows.length !== batch) {
    throw new RangeError(
      `attention row scores: rows has ${rows.length} lists, expected B = ${batch}`,
    );
  }
  const rowsPerBatch = rows[0]?.length ?? 0;
  if (rowsPerBatch < 1) throw new RangeError("attention row scores: rows[0] is empty");
  const flat = new Int32Array(batch * rowsPerBatch);
  rows.forEach((list, b) => {
    if (list.length !== rowsPerBatch) {
      throw new RangeError(
        `attention row scores: rows[${b}] has ${list.length} entries, expected R = ${rowsPerBatch} like rows[0]`,
      );
    }
    const seen = new Set<number>();
    for (let r = 0; r < rowsPerBatch; r++) {
      const row = list[r]!;
      if (!Number.isInteger(row) || row < -1 || row >= length) {
        throw new RangeError(
          `attention row scores: rows[${b}][${r}] = ${row}, expected −1 or an index in 0..${
            length - 1
          }`,
        );
      }
      if (row >= 0 && seen.has(row)) {
        throw new RangeError(`attention row scores: rows[${b}] lists token ${row} twice`);
      }
      seen.add(row);
      flat[b * rowsPerBatch + r] = row;
    }
  });
  return { flat, rowsPerBatch };
}

/** Inputs of {@linkcode attentionRowScores}. */
export interface RowScoresOptions extends RowScoresCommon {
  /** Where to write S `[B, Hq, R, T]`; allocated when absent. */
  scores?: GPUBuffer;
}

/**
 * S `[B, Hq, R, T]` = scale·q[rows]·kᵀ (pre-softmax), masked entries and unused
 * slots −∞, with the same visibility rule as the fused attention.
 */
export function attentionRowScores(options: RowScoresOptions): { scores: GPUBuffer } {
  const scale = checkShape(options);
  const { heads, kvHeads, headDim, mask } = options;
  const { batch, length } = mask;
  const { flat, rowsPerBatch } = flattenRows(options.rows, batch, length);
  const element = checkElement("dtype", options.dtype, getRuntime().device.hasF16);
  checkBuffer("q", options.q, batch * heads * length * headDim, "[B, Hq, T, D]", element);
  checkBuffer("k", options.k, batch * kvHeads * length * headDim, "[B, Hkv, T, D]", element);
  const count = batch * heads * rowsPerBatch * length;
  const lanes = flatRowLanes();
  if (options.scores) checkBuffer("scores", options.scores, count, "[B, Hq, R, T]");
  const scope = new CallScope();
  const scores = options.scores ?? scope.storage("attention row scores", count, false);
  const rows = scope.int32("attention rows", flat);
  scope.launchFlat(
    ATTENTION_ROW_SCORES,
    { headDim, element, lanes },
    {
      q: options.q,
      k: options.k,
      mask: mask.forTiling(0, 0).buffer,
      rows,
      scores,
    },
    untiledParams(options, mask, scale, rowsPerBatch),
    count * lanes,
  );
  scope.finish();
  return { scores };
}

/** The attention uniforms of the untiled row-score kernels. */
function untiledParams(
  shape: { heads: number; kvHeads: number },
  mask: AttentionMask,
  scale: number,
  rowsPerBatch: number,
): KernelParams {
  return {
    heads: shape.heads,
    kvHeads: shape.kvHeads,
    seqLen: mask.length,
    window: mask.meta.window,
    numQueryTiles: 0,
    numKeyTiles: 0,
    forwardTable: 0,
    backwardTable: 0,
    scale,
    rowsPerBatch,
    batch: mask.batch,
  };
}

/** Inputs of {@linkcode attentionRowScoresBackward}. */
export interface RowScoresBackwardOptions extends RowScoresCommon {
  /** Gradient with respect to S, `[B, Hq, R, T]`; masked entries are ignored. */
  dScores: GPUBuffer;
  /** dQ `[B, Hq, T, D]` to add into (e.g. the attention backward's); fresh zeros when absent. */
  dQ?: GPUBuffer;
  /** dK `[B, Hkv, T, D]` to add into; fresh zeros when absent. */
  dK?: GPUBuffer;
}

/**
 * Backward of {@linkcode attentionRowScores}: adds scale·dS·k into the selected
 * rows of dQ and scale·dSᵀ·q (summed over each kv group's query heads) into dK.
 * Deterministic: each element has one writer.
 */
export function attentionRowScoresBackward(
  options: RowScoresBackwardOptions,
): { dQ: GPUBuffer; dK: GPUBuffer } {
  const scale = checkShape(options);
  const { heads, kvHeads, headDim, mask } = options;
  const { batch, length } = mask;
  const { flat, rowsPerBatch } = flattenRows(options.rows, batch, length);
  const queryFloats = batch * heads * length * headDim;
  const keyFloats = batch * kvHeads * length * headDim;
  const element = checkElement("dtype", options.dtype, getRuntime().device.hasF16);
  checkBuffer("q", options.q, queryFloats, "[B, Hq, T, D]", element);
  checkBuffer("k", options.k, keyFloats, "[B, Hkv, T, D]", element);
  checkBuffer("dScores", options.dScores, batch * heads * rowsPerBatch * length, "[B, Hq, R, T]");
  if (options.dQ) checkBuffer("dQ", options.dQ, queryFloats, "[B, Hq, T, D]", element);
  if (options.dK) checkBuffer("dK", options.dK, keyFloats, "[B, Hkv, T, D]", element);
  const scope = new CallScope();
  // Created (not pooled) buffers start zeroed.
  const dQ = options.dQ ?? scope.storage("attention row-scores dQ", queryFloats, false, element);
  const dK = options.dK ?? scope.storage("attention row-scores dK", keyFloats, false, element);
  const params = untiledParams(options, mask, scale, rowsPerBatch);
  const rows = scope.int32("attention rows", flat);
  const maskBuffer = mask.forTiling(0, 0).buffer;
  const lanes = flatRowLanes();
  scope.launchFlat(
    ATTENTION_ROW_SCORES_DQ,
    { headDim, element, lanes },
    {
      dScores: options.dScores,
      k: options.k,
      mask: maskBuffer,
      rows,
      dQ,
    },
    params,
    batch * heads * rowsPerBatch * headDim * lanes,
  );
  scope.launchFlat(
    ATTENTION_ROW_SCORES_DK,
    { headDim, element },
    {
      dScores: options.dScores,
      q: options.q,
      mask: maskBuffer,
      rows,
      dK,
    },
    params,
    keyFloats,
  );
  scope.finish();
  return { dQ, dK };
}
