/**
 * log σ(σ·(s_i − s_j)) for a list of score pairs, computed stably as the
 * first column of a 2-way log-softmax over (σ·s_i, σ·s_j): exact gradients
 * everywhere (also at s_i = s_j) and no overflow for large differences.
 *
 * @module
 */

import { logSoftmax, reshape, scale, slice, type Tensor } from "@irforge/tensor";
import { gatherFlat } from "./compose.ts";

/** `[P]` values log σ(sigma·(x[i] − x[j])) for flat index pairs `[i0, j0, i1, j1, …]`. */
export function pairLogSigmoid(x: Tensor, pairIndices: Int32Array, sigma = 1): Tensor {
  const P = pairIndices.length / 2;
  let both = gatherFlat(x, pairIndices, [P, 2]);
  if (sigma !== 1) both = scale(both, sigma);
  return reshape(slice(logSoftmax(both), 1, 0, 1), [P]);
}

/**
 * Ranks (1-based) of the valid entries of one list by descending target,
 * ties by position (stable); padded entries get 0.
 */
export function ranksByTarget(targets: ArrayLike<number>, valid: ArrayLike<number>): Int32Array {
  const order = Array.from({ length: targets.length }, (_, i) => i)
    .filter((i) => valid[i])
    .sort((a, b) => targets[b]! - targets[a]! || a - b);
  const ranks = new Int32Array(targets.length);
  order.forEach((i, r) => ranks[i] = r + 1);
  return ranks;
}
