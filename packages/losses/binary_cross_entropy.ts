/**
 * Pointwise binary cross-entropy with logits (PyTorch
 * `BCEWithLogitsLoss`, mean): for each unpadded score s with label y ∈ [0, 1],
 *
 *   ℓ = −y·log σ(s) − (1 − y)·log σ(−s),   loss = mean ℓ.
 *
 * Both log-sigmoids come from a stable 2-way log-softmax against 0.
 *
 * @module
 */

import { add, mul, neg, scale, sum, tidy } from "@irforge/tensor";
import { hostArray, hostMask, need, upload } from "./compose.ts";
import { defineOptions, type ResolvedOptions } from "./options.ts";
import { pairLogSigmoid } from "./pairs.ts";
import type { Loss, LossInputs, LossOutput } from "./types.ts";

/** Options of `binary_cross_entropy` (none). */
export const binaryCrossEntropyOptions = defineOptions({});

/** Creates `binary_cross_entropy`. Inputs: `scores` (any shape), `labels` in [0, 1], optional `mask`. */
export function binaryCrossEntropy(
  options: ResolvedOptions<typeof binaryCrossEntropyOptions>,
): Loss {
  const name = "binary_cross_entropy";
  return {
    name,
    options,
    compute(inputs: LossInputs): Promise<LossOutput> {
      const loss = tidy(() => {
        const scores = need(inputs, "scores", name);
        const n = scores.size;
        const y = hostArray(need(inputs, "labels", name), n, "labels", name);
        const bad = y.findIndex((v) => v < 0 || v > 1);
        if (bad >= 0) {
          throw new Error(`loss "${name}": labels[${bad}] = ${y[bad]} is not in [0, 1]`);
        }
        const valid = hostMask(inputs.mask, n, name);
        const kept = [...valid.keys()].filter((i) => valid[i]);
        if (kept.length === 0) throw new Error(`loss "${name}": every entry is padded`);
        // Index −1 reads 0: (s, 0) gives log σ(s), (0, s) gives log σ(−s).
        const up = Int32Array.from(kept.flatMap((i) => [i, -1]));
        const down = Int32Array.from(kept.flatMap((i) => [-1, i]));
        const yk = Float64Array.from(kept, (i) => y[i]!);
        const total = add(
          mul(pairLogSigmoid(scores, up), upload(yk, [kept.length])),
          mul(pairLogSigmoid(scores, down), upload(yk.map((v) => 1 - v), [kept.length])),
        );
        return scale(neg(sum(total)), 1 / kept.length);
      });
      return Promise.resolve({ loss });
    },
  };
}
