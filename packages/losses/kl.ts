/**
 * KL divergence to graded labels (Trove's `KLDivergenceLoss`, alias "kl",
 * BatsResearch/trove `trove/modeling/losses.py`):
 *
 *   target = softmax(labels) (labels used as logits, as given),
 *   loss = (1/Q) Σ_q KL(target_q ‖ softmax(s_q/τ)).
 *
 * With in-batch scores (`[Q, Q·K]` while labels are `[Q, K]`) the labels are
 * spread block-diagonally as Trove does (`torch.block_diag` of the label
 * rows): passages of other queries get label **0**, i.e. target weight
 * e⁰ = 1 before normalisation, not probability 0. Padded entries (`mask` 0)
 * are excluded from both distributions; in-batch columns inherit the mask of
 * the passage they are.
 *
 * @module
 */

import { addScalar, scale, type Tensor, tidy } from "@irforge/tensor";
import { hostArray, hostMask } from "./compose.ts";
import { defineOptions, type ResolvedOptions } from "./options.ts";
import { scoreMatrix } from "./scores.ts";
import { softTargetCrossEntropy, targetDistribution } from "./soft_targets.ts";
import type { Loss, LossInputs, LossOutput } from "./types.ts";

/** Options of `kl`. */
export const klOptions = defineOptions({
  temperature: {
    kind: "number",
    greaterThan: 0,
    default: 1,
    description: "τ: student scores are divided by it",
  },
  normalize: {
    kind: "boolean",
    default: false,
    description: "L2-normalise embeddings first (when scores come from embeddings)",
  },
});

/** Target logits and validity in the layout of `[Q, W]` scores (block-diagonal when W = Q·K). */
export function klTargets(
  Q: number,
  W: number,
  labels: ArrayLike<number>,
  mask: ArrayLike<number> | undefined,
  loss = "kl",
): { logits: Float64Array; valid: Uint8Array } {
  if (Q === 0 || labels.length % Q !== 0) {
    throw new Error(`loss "${loss}": ${labels.length} labels do not split into ${Q} queries`);
  }
  const K = labels.length / Q;
  const l = hostArray(labels, Q * K, "labels", loss);
  const m = hostMask(mask, Q * K, loss);
  if (W === K) return { logits: l, valid: m };
  if (W !== Q * K) {
    throw new Error(
      `loss "${loss}": scores have ${W} columns; labels give ${K} per query ` +
        `(expected ${K}, or ${Q * K} with in-batch passages)`,
    );
  }
  const logits = new Float64Array(Q * W), valid = new Uint8Array(Q * W);
  for (let q = 0; q < Q; q++) {
    for (let c = 0; c < W; c++) {
      const owner = Math.floor(c / K);
      valid[q * W + c] = m[c]!; // column c is passage c of the batch
      if (owner === q) logits[q * W + c] = l[q * K + (c % K)]!;
    }
  }
  return { logits, valid };
}

/** Creates a `kl` loss. Inputs: `scores` `[Q, K]`/`[Q, Q·K]` or embeddings, `labels` `[Q·K]`, optional `mask`. */
export function kl(options: ResolvedOptions<typeof klOptions>): Loss {
  return {
    name: "kl",
    options,
    compute(inputs: LossInputs): Promise<LossOutput> {
      const loss = tidy(() => {
        const scores: Tensor = scoreMatrix(inputs, options.normalize, "kl");
        const [Q, W] = scores.shape as [number, number];
        if (!inputs.labels) throw new Error(`loss "kl" needs input "labels"`);
        const t = klTargets(Q, W, inputs.labels, inputs.mask);
        const { probs, negEntropy } = targetDistribution(t.logits, t.valid, Q, W, "kl");
        const crossEntropy = softTargetCrossEntropy(
          scale(scores, 1 / options.temperature),
          probs,
          t.valid,
        );
        return addScalar(crossEntropy, negEntropy / Q);
      });
      return Promise.resolve({ loss });
    },
  };
}
