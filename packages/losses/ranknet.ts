/**
 * RankNet (Burges et al. 2005; allRank `allrank/models/losses/rankNet.py`):
 * binary cross-entropy with logits on s_i − s_j, target 1, for every pair of
 * unpadded entries of a list with t_i > t_j, averaged over all pairs of the
 * batch:
 *
 *   loss = (1/|P|) Σ_{(i,j) ∈ P} w_ij · −log σ(s_i − s_j).
 *
 * `weighted` sets w_ij = 1/(r_i + r_j) with r the 1-based rank by target
 * (ties by position), the pair weighting of RankLLM/FIRST-style listwise
 * distillation; otherwise w = 1. Like PyTorch's weighted
 * `BCEWithLogitsLoss`, the mean divides by the number of pairs, not Σw. A
 * batch without any pair gives loss 0.
 *
 * @module
 */

import { mul, neg, scale, sum, tidy } from "@irforge/tensor";
import { checkRank, hostArray, hostMask, need, upload, zeroFrom } from "./compose.ts";
import { defineOptions, type ResolvedOptions } from "./options.ts";
import { pairLogSigmoid, ranksByTarget } from "./pairs.ts";
import type { Loss, LossInputs, LossOutput } from "./types.ts";

/** Options of `ranknet`. */
export const ranknetOptions = defineOptions({
  weighted: {
    kind: "boolean",
    default: false,
    description: "weight each pair by 1/(r_i + r_j), r = 1-based rank by target",
  },
});

/** Pairs (flat indices) with t_i > t_j within each list, and their weights. */
export function rankNetPairs(
  labels: Float64Array,
  valid: Uint8Array,
  N: number,
  L: number,
  weighted: boolean,
): { indices: Int32Array; weights: Float64Array } {
  const indices: number[] = [], weights: number[] = [];
  for (let n = 0; n < N; n++) {
    const t = labels.subarray(n * L, n * L + L), v = valid.subarray(n * L, n * L + L);
    const ranks = ranksByTarget(t, v);
    for (let i = 0; i < L; i++) {
      for (let j = 0; j < L; j++) {
        if (!v[i] || !v[j] || !(t[i]! > t[j]!)) continue;
        indices.push(n * L + i, n * L + j);
        weights.push(weighted ? 1 / (ranks[i]! + ranks[j]!) : 1);
      }
    }
  }
  return { indices: Int32Array.from(indices), weights: Float64Array.from(weights) };
}

/** Creates a `ranknet` loss. Inputs: `scores` `[N, L]`, `labels` `[N·L]`, optional `mask`. */
export function ranknet(options: ResolvedOptions<typeof ranknetOptions>): Loss {
  return {
    name: "ranknet",
    options,
    compute(inputs: LossInputs): Promise<LossOutput> {
      const loss = tidy(() => {
        const scores = need(inputs, "scores", "ranknet");
        checkRank(scores, 2, "scores", "ranknet");
        const [N, L] = scores.shape as [number, number];
        const labels = hostArray(need(inputs, "labels", "ranknet"), N * L, "labels", "ranknet");
        const valid = hostMask(inputs.mask, N * L, "ranknet");
        const { indices, weights } = rankNetPairs(labels, valid, N, L, options.weighted);
        const P = weights.length;
        if (P === 0) return zeroFrom(scores);
        let terms = neg(pairLogSigmoid(scores, indices));
        if (options.weighted) terms = mul(terms, upload(weights, [P]));
        return scale(sum(terms), 1 / P);
      });
      return Promise.resolve({ loss });
    },
  };
}
