/**
 * Dispatch of the fused attention backward (row stats, dK/dV, dQ).
 *
 * @module
 */

import type { AttentionMask } from "./attention_mask.ts";
import {
  keyValueGradKernelSource,
  queryGradKernelSource,
  rowStatsKernelSource,
} from "./backward_kernels.ts";
import {
  type AttentionShape,
  CallScope,
  checkBuffer,
  checkGrid,
  checkShape,
} from "./dispatch_util.ts";
import { cachedPipeline } from "./pipeline_cache.ts";
import { type AttentionTiling, checkTiling, chooseTiling } from "./tiling.ts";

/** Inputs of {@linkcode attentionBackward}. */
export interface AttentionBackwardOptions extends AttentionShape {
  /** Queries, f32 `[B, Hq, T, D]`, as given to the forward. */
  q: GPUBuffer;
  /** Keys, f32 `[B, Hkv, T, D]`. */
  k: GPUBuffer;
  /** Values, f32 `[B, Hkv, T, D]`. */
  v: GPUBuffer;
  /** Forward output `[B, Hq, T, D]`. */
  out: GPUBuffer;
  /** Forward logsumexp `[B, Hq, T]`. */
  lse: GPUBuffer;
  /** Gradient of the loss with respect to `out`, `[B, Hq, T, D]`. */
  dOut: GPUBuffer;
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
  /** Record into this encoder instead of submitting; then call `dispose` after submitting. */
  encoder?: GPUCommandEncoder;
}

/** Result of {@linkcode attentionBackward}. */
export interface AttentionBackwardResult {
  /** dQ `[B, Hq, T, D]`. */
  dQ: GPUBuffer;
  /** dK `[B, Hkv, T, D]`, summed over the query heads of each kv group. */
  dK: GPUBuffer;
  /** dV `[B, Hkv, T, D]`, summed over the query heads of each kv group. */
  dV: GPUBuffer;
  /** Frees temporaries (the row-stats buffer); a no-op unless an encoder was passed in. */
  dispose: () => void;
}

/**
 * Gradients of masked attention with respect to q, k and v. Deterministic:
 * every output element is written by exactly one thread, in a fixed order.
 * Pad rows and keys nobody sees get exact zeros.
 */
export function attentionBackward(
  device: GPUDevice,
  options: AttentionBackwardOptions,
): AttentionBackwardResult {
  const scale = checkShape(options);
  const { heads, kvHeads, headDim, mask } = options;
  const { batch, length } = mask;
  const tiling = options.tiling ?? chooseTiling(device.limits, "backward", headDim);
  checkTiling(device.limits, "backward", headDim, tiling);
  const queryFloats = batch * heads * length * headDim;
  const keyFloats = batch * kvHeads * length * headDim;
  checkBuffer("q", options.q, queryFloats, "[B, Hq, T, D]");
  checkBuffer("k", options.k, keyFloats, "[B, Hkv, T, D]");
  checkBuffer("v", options.v, keyFloats, "[B, Hkv, T, D]");
  checkBuffer("out", options.out, queryFloats, "[B, Hq, T, D]");
  checkBuffer("dOut", options.dOut, queryFloats, "[B, Hq, T, D]");
  checkBuffer("lse", options.lse, batch * heads * length, "[B, Hq, T]");
  if (options.dQ) checkBuffer("dQ", options.dQ, queryFloats, "[B, Hq, T, D]");
  if (options.dK) checkBuffer("dK", options.dK, keyFloats, "[B, Hkv, T, D]");
  if (options.dV) checkBuffer("dV", options.dV, keyFloats, "[B, Hkv, T, D]");
  checkGrid("heads", heads);
  checkGrid("batch", batch);

  const tileKey = `d${headDim} ${tiling.queryTile}x${tiling.keyTile}x${tiling.threadsPerRow}`;
  const [statsPipeline, keyValuePipeline, queryPipeline] = [
    cachedPipeline(device, `attention-row-stats d${headDim}`, () => rowStatsKernelSource(headDim)),
    cachedPipeline(
      device,
      `attention-dkdv ${tileKey}`,
      () => keyValueGradKernelSource(headDim, tiling),
    ),
    cachedPipeline(device, `attention-dq ${tileKey}`, () => queryGradKernelSource(headDim, tiling)),
  ];
  const maskBuffer = mask.forTiling(tiling.queryTile, tiling.keyTile);
  const { numQueryTiles, numKeyTiles } = maskBuffer.table;
  checkGrid("query tiles", numQueryTiles);
  checkGrid("key tiles", numKeyTiles);

  const scope = new CallScope(device, options.encoder);
  const dQ = options.dQ ?? scope.storage("attention dQ", queryFloats, false);
  const dK = options.dK ?? scope.storage("attention dK", keyFloats, false);
  const dV = options.dV ?? scope.storage("attention dV", keyFloats, false);
  const stats = scope.storage("attention row stats", 2 * batch * heads * length, true);
  const params = scope.params({
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
  });
  scope.dispatchFlat(
    statsPipeline,
    [params, options.out, options.dOut, options.lse, stats],
    batch * heads * length,
  );
  const inputs = [params, options.q, options.k, options.v, options.dOut, stats, maskBuffer.buffer];
  scope.dispatch(keyValuePipeline, [...inputs, dK, dV], [numKeyTiles, kvHeads, batch]);
  scope.dispatch(queryPipeline, [...inputs, dQ], [numQueryTiles, heads, batch]);
  return { dQ, dK, dV, dispose: scope.finish() };
}
