/**
 * Cross-entropy against a host-side target distribution, shared by `kl` and
 * `listnet`: −(1/R) Σ_r Σ_j p_rj · log softmax(x_r)_j with padded entries
 * excluded from both the target and the predicted softmax.
 *
 * @module
 */

import { logSoftmax, mul, scale, sum, type Tensor } from "@irforge/tensor";
import { maskLogits, upload } from "./compose.ts";

/**
 * Row-wise softmax (float64) of target logits over valid entries; padded
 * entries get probability 0. Returns the probabilities and Σ p·log p.
 */
export function targetDistribution(
  targetLogits: Float64Array,
  valid: Uint8Array,
  rows: number,
  width: number,
  loss: string,
): { probs: Float64Array; negEntropy: number } {
  const probs = new Float64Array(rows * width);
  let negEntropy = 0;
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let j = 0; j < width; j++) {
      if (valid[r * width + j]) m = Math.max(m, targetLogits[r * width + j]!);
    }
    if (m === -Infinity) throw new Error(`loss "${loss}": list ${r} has no unpadded entry`);
    let z = 0;
    for (let j = 0; j < width; j++) {
      if (valid[r * width + j]) z += Math.exp(targetLogits[r * width + j]! - m);
    }
    for (let j = 0; j < width; j++) {
      const i = r * width + j;
      if (!valid[i]) continue;
      const logP = targetLogits[i]! - m - Math.log(z);
      probs[i] = Math.exp(logP);
      if (probs[i]! > 0) negEntropy += probs[i]! * logP;
    }
  }
  return { probs, negEntropy };
}

/** −(1/R) Σ p · log softmax(masked logits) for `[R, W]` logits. */
export function softTargetCrossEntropy(
  logits: Tensor,
  probs: Float64Array,
  valid: Uint8Array,
): Tensor {
  const [R, W] = logits.shape as [number, number];
  const logQ = logSoftmax(maskLogits(logits, valid));
  return scale(sum(mul(logQ, upload(probs, [R, W]))), -1 / R);
}
