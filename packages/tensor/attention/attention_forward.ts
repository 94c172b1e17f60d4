/**
 * Dispatch of the fused attention forward.
 *
 * @module
 */

import type { AttentionMask } from "./attention_mask.ts";
import {
  type AttentionShape,
  CallScope,
  checkBuffer,
  checkGrid,
  checkShape,
} from "./dispatch_util.ts";
import { getRuntime } from "../runtime.ts";
import { ATTENTION_FORWARD } from "./kernels.ts";
import { type AttentionTiling, checkTiling, chooseTiling } from "./tiling.ts";

/** Inputs of {@linkcode attentionForward}. */
export interface AttentionForwardOptions extends AttentionShape {
  /** Queries, f32 `[B, Hq, T, D]` contiguous (RoPE already applied). */
  q: GPUBuffer;
  /** Keys, f32 `[B, Hkv, T, D]`. */
  k: GPUBuffer;
  /** Values, f32 `[B, Hkv, T, D]`. */
  v: GPUBuffer;
  /** Mask metadata on the device; supplies B and T. */
  mask: AttentionMask;
  /** Where to write the output `[B, Hq, T, D]`; allocated when absent. */
  out?: GPUBuffer;
  /** Where to write the logsumexp `[B, Hq, T]`; allocated when absent. */
  lse?: GPUBuffer;
  /** Tile sizes; default {@linkcode chooseTiling} for the device. */
  tiling?: AttentionTiling;
}

/** Result of {@linkcode attentionForward}. */
export interface AttentionForwardResult {
  /** Output `[B, Hq, T, D]`: softmax(scale·q·kᵀ + mask)·v; rows that see no key are 0. */
  out: GPUBuffer;
  /** Logsumexp of each row's visible scores `[B, Hq, T]` (0 for rows that see no key). */
  lse: GPUBuffer;
}

/**
 * Masked multi-head attention forward with grouped-query heads, in one fused
 * kernel that skips key tiles the mask hides entirely, recorded into the
 * runtime's command encoder (current device). Buffers created here have
 * STORAGE | COPY_SRC | COPY_DST usage and belong to the caller.
 *
 * @example Causal attention of one row of 4 tokens, 2 query heads sharing 1 key/value head
 * ```ts
 * import { getDevice, randn } from "@irforge/tensor";
 * import { AttentionMask, attentionForward, causalMask } from "@irforge/tensor/attention";
 *
 * await getDevice();
 * const [batch, length, heads, kvHeads, headDim] = [1, 4, 2, 1, 8];
 * const q = randn([batch, heads, length, headDim], { seed: 1 });
 * const k = randn([batch, kvHeads, length, headDim], { seed: 2 });
 * const v = randn([batch, kvHeads, length, headDim], { seed: 3 });
 * const mask = new AttentionMask(causalMask({ batch, length }));
 * const { out, lse } = attentionForward({
 *   q: q.buffer,
 *   k: k.buffer,
 *   v: v.buffer,
 *   mask,
 *   heads,
 *   kvHeads,
 *   headDim,
 * }); // out [1, 2, 4, 8], lse [1, 2, 4]; the `attention` op wraps this with autograd
 * out.destroy();
 * lse.destroy();
 * mask.destroy();
 * for (const t of [q, k, v]) t.dispose();
 * ```
 */
export function attentionForward(options: AttentionForwardOptions): AttentionForwardResult {
  const device = getRuntime().device;
  const scale = checkShape(options);
  const { heads, kvHeads, headDim, mask } = options;
  const { batch, length } = mask;
  const tiling = options.tiling ?? chooseTiling(device.limits, "forward", headDim);
  checkTiling(device.limits, "forward", headDim, tiling);
  checkBuffer("q", options.q, batch * heads * length * headDim, "[B, Hq, T, D]");
  checkBuffer("k", options.k, batch * kvHeads * length * headDim, "[B, Hkv, T, D]");
  checkBuffer("v", options.v, batch * kvHeads * length * headDim, "[B, Hkv, T, D]");
  if (options.out) {
    checkBuffer("out", options.out, batch * heads * length * headDim, "[B, Hq, T, D]");
  }
  if (options.lse) checkBuffer("lse", options.lse, batch * heads * length, "[B, Hq, T]");
  checkGrid("heads", heads);
  checkGrid("batch", batch);

  const maskBuffer = mask.forTiling(tiling.queryTile, tiling.keyTile);
  const { numQueryTiles, numKeyTiles } = maskBuffer.table;
  checkGrid("query tiles", numQueryTiles);
  const scope = new CallScope();
  const out = options.out ??
    scope.storage("attention out", batch * heads * length * headDim, false);
  const lse = options.lse ?? scope.storage("attention lse", batch * heads * length, false);
  scope.launch(ATTENTION_FORWARD, { headDim, tiling }, {
    q: options.q,
    k: options.k,
    v: options.v,
    mask: maskBuffer.buffer,
    out,
    lse,
  }, {
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
  }, [numQueryTiles, heads, batch]);
  scope.finish();
  return { out, lse };
}
