/**
 * Dispatch of the fused attention backward (row stats, dK/dV, dQ).
 *
 * @module
 */

import type { AttentionMask } from "./attention_mask.ts";
import { getRuntime } from "../runtime.ts";
import {
  type AttentionShape,
  CallScope,
  checkBuffer,
  checkElement,
  checkGrid,
  checkShape,
} from "./dispatch_util.ts";
import { flatRowLanes } from "./subgroups.ts";
import type { AttentionElement } from "./wgsl_blocks.ts";
import {
  ATTENTION_DKDV,
  ATTENTION_DQ,
  ATTENTION_ROW_STATS,
  ATTENTION_SPLIT_SUM,
} from "./kernels.ts";
import { estimateWave } from "../lab/counts.ts";
import type { Device } from "../device.ts";
import {
  type AttentionTiling,
  checkTiling,
  chooseTiling,
  workgroupBytes,
  workgroupThreads,
} from "./tiling.ts";

/** Inputs of {@linkcode attentionBackward}. */
export interface AttentionBackwardOptions extends AttentionShape {
  /** Queries `[B, Hq, T, D]`, as given to the forward (stored as `dtype`). */
  q: GPUBuffer;
  /** Keys `[B, Hkv, T, D]` (stored as `dtype`). */
  k: GPUBuffer;
  /** Values `[B, Hkv, T, D]` (stored as `dtype`). */
  v: GPUBuffer;
  /** Forward output `[B, Hq, T, D]` (stored as `outDtype`). */
  out: GPUBuffer;
  /** Forward logsumexp `[B, Hq, T]` (f32). */
  lse: GPUBuffer;
  /** Gradient of the loss with respect to `out`, `[B, Hq, T, D]` (stored as `outDtype`). */
  dOut: GPUBuffer;
  /**
   * Storage of q, k, v and of the gradients dQ, dK, dV: `f32` (default) or
   * `f16` (needs `shader-f16`; every product and sum is f32, the gradients
   * are rounded once, when written).
   */
  dtype?: AttentionElement;
  /** Storage of out and dOut: `f32` (default) or `f16`. */
  outDtype?: AttentionElement;
  /** The mask used in the forward. */
  mask: AttentionMask;
  /** Where to write dQ `[B, Hq, T, D]` (overwritten); allocated when absent. */
  dQ?: GPUBuffer;
  /** Where to write dK `[B, Hkv, T, D]` (overwritten); allocated when absent. */
  dK?: GPUBuffer;
  /** Where to write dV `[B, Hkv, T, D]` (overwritten); allocated when absent. */
  dV?: GPUBuffer;
  /** Tile sizes of the dK/dV and dQ kernels; default {@linkcode chooseTiling}. */
  tiling?: AttentionTiling;
  /**
   * Workgroups sharing each dK/dV key tile (1..64): each adds up its share of
   * the (query head, query tile) items into a partial, and a second pass adds
   * the partials in order. Default {@linkcode chooseKeySplits}.
   */
  keySplits?: number;
}

/** Most dK/dV splits {@linkcode chooseKeySplits} picks. */
export const MAX_KEY_SPLITS = 8;

/**
 * dK/dV splits for a grid of `baseWorkgroups` (key tiles × kv heads × batch)
 * whose workgroups each walk `items` (query head, query tile) items: enough
 * to fill two waves of the adapter (its estimate, see `lab/counts.ts`), at
 * most {@linkcode MAX_KEY_SPLITS} and at most `items / 2` (a split should keep
 * a few items to amortise its K/V staging). 1 on a CPU adapter.
 */
export function chooseKeySplits(
  device: Pick<Device, "adapter" | "isCpuAdapter">,
  baseWorkgroups: number,
  items: number,
  threads: number,
  bytes: number,
): number {
  if (device.isCpuAdapter) return 1;
  const wave = estimateWave(
    { description: device.adapter.description, isCpuAdapter: false },
    threads,
    bytes,
  ).workgroupsPerWave;
  const wanted = Math.ceil((2 * wave) / Math.max(1, baseWorkgroups));
  return Math.max(1, Math.min(MAX_KEY_SPLITS, wanted, Math.floor(items / 2)));
}

/** Result of {@linkcode attentionBackward}. */
export interface AttentionBackwardResult {
  /** dQ `[B, Hq, T, D]`. */
  dQ: GPUBuffer;
  /** dK `[B, Hkv, T, D]`, summed over the query heads of each kv group. */
  dK: GPUBuffer;
  /** dV `[B, Hkv, T, D]`, summed over the query heads of each kv group. */
  dV: GPUBuffer;
}

/**
 * Gradients of masked attention with respect to q, k and v. Deterministic:
 * every output element is written by exactly one thread, in a fixed order.
 * Pad rows and keys nobody sees get exact zeros. Recorded into the runtime's
 * command encoder (current device).
 */
export function attentionBackward(options: AttentionBackwardOptions): AttentionBackwardResult {
  const device = getRuntime().device;
  const scale = checkShape(options);
  const { heads, kvHeads, headDim, mask } = options;
  const { batch, length } = mask;
  const tiling = options.tiling ?? chooseTiling(device.limits, "backward", headDim);
  checkTiling(device.limits, "backward", headDim, tiling);
  const queryFloats = batch * heads * length * headDim;
  const keyFloats = batch * kvHeads * length * headDim;
  const operand = checkElement("dtype", options.dtype, device.hasF16);
  const output = checkElement("outDtype", options.outDtype, device.hasF16);
  checkBuffer("q", options.q, queryFloats, "[B, Hq, T, D]", operand);
  checkBuffer("k", options.k, keyFloats, "[B, Hkv, T, D]", operand);
  checkBuffer("v", options.v, keyFloats, "[B, Hkv, T, D]", operand);
  checkBuffer("out", options.out, queryFloats, "[B, Hq, T, D]", output);
  checkBuffer("dOut", options.dOut, queryFloats, "[B, Hq, T, D]", output);
  checkBuffer("lse", options.lse, batch * heads * length, "[B, Hq, T]");
  if (options.dQ) checkBuffer("dQ", options.dQ, queryFloats, "[B, Hq, T, D]", operand);
  if (options.dK) checkBuffer("dK", options.dK, keyFloats, "[B, Hkv, T, D]", operand);
  if (options.dV) checkBuffer("dV", options.dV, keyFloats, "[B, Hkv, T, D]", operand);
  checkGrid("heads", heads);
  checkGrid("batch", batch);

  const maskBuffer = mask.forTiling(tiling.queryTile, tiling.keyTile);
  const { numQueryTiles, numKeyTiles } = maskBuffer.table;
  checkGrid("query tiles", numQueryTiles);
  checkGrid("key tiles", numKeyTiles);

  const baseWorkgroups = numKeyTiles * kvHeads * batch;
  const splits = options.keySplits ?? chooseKeySplits(
    device,
    baseWorkgroups,
    (heads / kvHeads) * maskBuffer.table.activeCount / Math.max(1, numKeyTiles * batch),
    workgroupThreads(tiling, "backward", headDim),
    workgroupBytes("backward", headDim, tiling),
  );
  if (!Number.isInteger(splits) || splits < 1 || splits > 64) {
    throw new RangeError(`attention: keySplits must be an integer in 1..64, got ${splits}`);
  }
  checkGrid("batch × key splits", batch * splits);

  const scope = new CallScope();
  const dQ = options.dQ ?? scope.storage("attention dQ", queryFloats, false, operand);
  const dK = options.dK ?? scope.storage("attention dK", keyFloats, false, operand);
  const dV = options.dV ?? scope.storage("attention dV", keyFloats, false, operand);
  const types = { operand, output };
  const lanes = flatRowLanes();
  const stats = scope.storage("attention row stats", 2 * batch * heads * length, true);
  const params = {
    heads,
    kvHeads,
    seqLen: length,
    window: mask.meta.window,
    numQueryTiles,
    numKeyTiles,
    forwardTable: maskBuffer.forwardTable,
    backwardTable: maskBuffer.backwardTable,
    scale,
    rowsPerBatch: 0,
    batch,
    splits,
  };
  scope.launchFlat(
    ATTENTION_ROW_STATS,
    { headDim, element: output, lanes },
    {
      out: options.out,
      dOut: options.dOut,
      lse: options.lse,
      stats,
    },
    params,
    batch * heads * length * lanes,
  );
  const inputs = {
    q: options.q,
    k: options.k,
    v: options.v,
    dOut: options.dOut,
    stats,
    mask: maskBuffer.buffer,
  };
  if (splits === 1) {
    scope.launch(ATTENTION_DKDV, { headDim, tiling, types }, { ...inputs, dK, dV }, params, [
      numKeyTiles,
      kvHeads,
      batch,
    ]);
  } else {
    const dKParts = scope.storage("attention dK partials", splits * keyFloats, true);
    const dVParts = scope.storage("attention dV partials", splits * keyFloats, true);
    scope.launch(
      ATTENTION_DKDV,
      { headDim, tiling, types, partials: true },
      { ...inputs, dK: dKParts, dV: dVParts },
      params,
      [numKeyTiles, kvHeads, batch * splits],
    );
    scope.launchFlat(
      ATTENTION_SPLIT_SUM,
      { headDim, element: operand },
      { dKParts, dVParts, dK, dV },
      params,
      keyFloats,
    );
  }
  scope.launch(ATTENTION_DQ, { headDim, tiling, types }, { ...inputs, dQ }, params, [
    numQueryTiles,
    heads,
    batch,
  ]);
  scope.finish();
  return { dQ, dK, dV };
}
