/**
 * Query × passage score matrix from a bi-encoder's embeddings (dot product,
 * or cosine when normalised), or the caller's own `scores`.
 *
 * @module
 */

import { matmul, type Tensor } from "@irforge/tensor";
import { checkRank, l2Normalize, need } from "./compose.ts";
import type { LossInputs } from "./types.ts";

/**
 * `[Q, P]` scores: `inputs.scores` when given, else
 * `queryEmbeddings · passageEmbeddingsᵀ` (rows L2-normalised first when
 * `normalize`, i.e. cosine similarity).
 */
export function scoreMatrix(inputs: LossInputs, normalize: boolean, loss: string): Tensor {
  if (inputs.scores) {
    checkRank(inputs.scores, 2, "scores", loss);
    return inputs.scores;
  }
  const q = need(inputs, "queryEmbeddings", loss);
  const p = need(inputs, "passageEmbeddings", loss);
  checkRank(q, 2, "queryEmbeddings", loss);
  checkRank(p, 2, "passageEmbeddings", loss);
  if (q.shape[1] !== p.shape[1]) {
    throw new Error(`loss "${loss}": queryEmbeddings ${q} and passageEmbeddings ${p} differ in d`);
  }
  return normalize
    ? matmul(l2Normalize(q), l2Normalize(p), { transB: true })
    : matmul(q, p, { transB: true });
}

/** Group size G of a `[Q, Q·G]` in-batch score matrix, or an error. */
export function groupSize(scores: Tensor, loss: string): number {
  const [Q, W] = scores.shape as [number, number];
  if (Q === 0 || W % Q !== 0 || W === 0) {
    throw new Error(
      `loss "${loss}": scores ${scores} must be [Q, Q·G] (each query owns G passages, group-major)`,
    );
  }
  return W / Q;
}
