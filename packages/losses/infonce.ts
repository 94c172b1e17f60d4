/**
 * InfoNCE with several positives, in-batch and hard negatives.
 *
 * For query q with own group g(q) = passages `q·G … q·G+G−1` (positives
 * first, then hard negatives, as Trove's `InfoNCELoss` in
 * BatsResearch/trove `trove/modeling/losses.py`) and candidate set C(q) =
 * every passage of the batch (in-batch negatives) or g(q) only:
 *
 *   loss_q = −log Σ_{p ∈ pos(q)} exp(s_qp/τ) + log Σ_{p ∈ C(q)} exp(s_qp/τ),
 *   loss = mean_q loss_q.
 *
 * With one positive per group this equals Trove's cross-entropy with target
 * `q·G`. Positives are passages with label > 0 when `labels` is given, else
 * the first passage of each group.
 *
 * @module
 */

import { add, mean, reshape, scale, sub, type Tensor, tidy } from "@irforge/tensor";
import { gatherFlat, hostArray, logSumExp, MASKED, upload } from "./compose.ts";
import { defineOptions, type ResolvedOptions } from "./options.ts";
import { groupSize, scoreMatrix } from "./scores.ts";
import type { Loss, LossInputs, LossOutput } from "./types.ts";

/** Options of `infonce`. */
export const infonceOptions = defineOptions({
  temperature: {
    kind: "number",
    greaterThan: 0,
    default: 0.05,
    description: "τ: scores are divided by it",
  },
  normalize: {
    kind: "boolean",
    default: false,
    description: "L2-normalise embeddings first (cosine similarity)",
  },
  in_batch_negatives: {
    kind: "boolean",
    default: true,
    description: "use other queries' passages as negatives (false: own group only)",
  },
});

/**
 * The per-query positive flags `[Q·G]` from labels (> 0) or "first of each
 * group"; throws naming the first query without a positive.
 */
export function groupPositives(
  labels: ArrayLike<number> | undefined,
  Q: number,
  G: number,
  loss: string,
): Uint8Array {
  const pos = new Uint8Array(Q * G);
  if (labels === undefined) {
    for (let q = 0; q < Q; q++) pos[q * G] = 1;
    return pos;
  }
  const l = hostArray(labels, Q * G, "labels", loss);
  for (let q = 0; q < Q; q++) {
    let any = false;
    for (let j = 0; j < G; j++) {
      if (l[q * G + j]! > 0) pos[q * G + j] = 1, any = true;
    }
    if (!any) {
      throw new Error(`loss "${loss}": query ${q} has no positive passage (no label > 0)`);
    }
  }
  return pos;
}

/** Computes InfoNCE (see module docs) on `[Q, Q·G]` scores. */
export function infonceFromScores(
  scores: Tensor,
  labels: ArrayLike<number> | undefined,
  options: ResolvedOptions<typeof infonceOptions>,
  loss = "infonce",
): Tensor {
  const [Q, W] = scores.shape as [number, number];
  const G = groupSize(scores, loss);
  const pos = groupPositives(labels, Q, G, loss);
  let candidates = scores, width = W;
  // Additive mask (0 = positive, MASKED = other) in the candidate layout.
  const posMask = new Float64Array(Q * (options.in_batch_negatives ? W : G)).fill(MASKED);
  if (options.in_batch_negatives) {
    for (let q = 0; q < Q; q++) {
      for (let j = 0; j < G; j++) if (pos[q * G + j]) posMask[q * W + q * G + j] = 0;
    }
  } else {
    width = G;
    const idx = new Int32Array(Q * G);
    for (let q = 0; q < Q; q++) {
      for (let j = 0; j < G; j++) {
        idx[q * G + j] = q * W + q * G + j;
        if (pos[q * G + j]) posMask[q * G + j] = 0;
      }
    }
    candidates = gatherFlat(scores, idx, [Q, G]);
  }
  const logits = scale(candidates, 1 / options.temperature);
  const all = logSumExp(logits);
  const positive = logSumExp(add(logits, upload(posMask, [Q, width])));
  return mean(reshape(sub(all, positive), [Q]));
}

/** Creates an `infonce` loss. Inputs: `scores` `[Q, Q·G]` or embeddings; optional `labels`. */
export function infonce(options: ResolvedOptions<typeof infonceOptions>): Loss {
  return {
    name: "infonce",
    options,
    compute(inputs: LossInputs): Promise<LossOutput> {
      const loss = tidy(() =>
        infonceFromScores(scoreMatrix(inputs, options.normalize, "infonce"), inputs.labels, options)
      );
      return Promise.resolve({ loss });
    },
  };
}
