/**
 * ListNet (Cao et al. 2007; allRank `allrank/models/losses/listNet.py`):
 *
 *   loss = mean_lists( −Σ_j softmax(t)_j · log softmax(s)_j ),
 *
 * over the unpadded entries of each list. allRank adds ε = 1e-10 inside the
 * log; we use the exact log-softmax (differences are ≤ 1e-10 per entry).
 *
 * @module
 */

import { tidy } from "@irforge/tensor";
import { checkRank, hostArray, hostMask, need } from "./compose.ts";
import { defineOptions, type ResolvedOptions } from "./options.ts";
import { softTargetCrossEntropy, targetDistribution } from "./soft_targets.ts";
import type { Loss, LossInputs, LossOutput } from "./types.ts";

/** Options of `listnet` (none). */
export const listnetOptions = defineOptions({});

/** Creates a `listnet` loss. Inputs: `scores` `[N, L]`, `labels` `[N·L]`, optional `mask`. */
export function listnet(options: ResolvedOptions<typeof listnetOptions>): Loss {
  return {
    name: "listnet",
    options,
    compute(inputs: LossInputs): Promise<LossOutput> {
      const loss = tidy(() => {
        const scores = need(inputs, "scores", "listnet");
        checkRank(scores, 2, "scores", "listnet");
        const [N, L] = scores.shape as [number, number];
        const labels = hostArray(need(inputs, "labels", "listnet"), N * L, "labels", "listnet");
        const valid = hostMask(inputs.mask, N * L, "listnet");
        const { probs } = targetDistribution(labels, valid, N, L, "listnet");
        return softTargetCrossEntropy(scores, probs, valid);
      });
      return Promise.resolve({ loss });
    },
  };
}
