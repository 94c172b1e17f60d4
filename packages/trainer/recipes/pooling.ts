/**
 * Pooling hidden states into one vector per sequence (Trove/Tevatron:
 * `mean`, `last`, `cls`), written as a batched matmul with host-built
 * weights so it works for either padding side and autograd covers it.
 *
 * @module
 */

import { l2Normalize, matmul, reshape, Tensor } from "@irforge/tensor";

/** How a sequence becomes one vector. */
export type Pooling = "mean" | "last" | "cls";

/**
 * Per-row pooling weights `[B, 1, T]` from an attention mask `[B·T]`
 * (1 = real token): mean = 1/n on real tokens, last = 1 on the last real
 * token, cls = 1 on the first real token.
 */
export function poolingWeights(
  attentionMask: ArrayLike<number>,
  batch: number,
  length: number,
  pooling: Pooling,
): Float32Array {
  const weights = new Float32Array(batch * length);
  for (let b = 0; b < batch; b++) {
    const real: number[] = [];
    for (let t = 0; t < length; t++) if (attentionMask[b * length + t]) real.push(t);
    if (real.length === 0) throw new Error(`pooling: row ${b} has no real token`);
    if (pooling === "mean") { for (const t of real) weights[b * length + t] = 1 / real.length; }
    else if (pooling === "last") weights[b * length + real[real.length - 1]!] = 1;
    else weights[b * length + real[0]!] = 1;
  }
  return weights;
}

/** Pools `hidden` `[B, T, H]` into `[B, H]`, L2-normalised when asked. */
export function pool(
  hidden: Tensor,
  attentionMask: ArrayLike<number>,
  pooling: Pooling,
  normalize: boolean,
): Tensor {
  const [B, T, H] = hidden.shape as [number, number, number];
  const weights = Tensor.fromArray(poolingWeights(attentionMask, B, T, pooling), [B, 1, T]);
  const pooled = reshape(matmul(weights, hidden), [B, H]);
  return normalize ? l2Normalize(pooled) : pooled;
}
