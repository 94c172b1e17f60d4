/**
 * The shapes every loss shares: what `compute` takes ({@link LossInputs}) and
 * returns ({@link LossOutput}).
 *
 * @module
 */

import type { Tensor } from "@irforge/tensor";

/** Host-side numbers (labels, masks, targets), row-major. */
export type HostNumbers = ArrayLike<number>;

/**
 * Everything a loss may read. Each loss documents the fields it needs and
 * throws an error naming a missing or malformed one. Tensors are read, never
 * disposed; host arrays are uploaded by the loss.
 */
export interface LossInputs {
  /** Model scores: `[N, L]` lists (listwise/pairwise) or `[Q, W]` query×passage scores. */
  scores?: Tensor;
  /** Graded labels matching `scores` row-major (`[N·L]`), or `[Q·G]` per passage group. */
  labels?: HostNumbers;
  /** 1 = real entry, 0 = padding; same layout as `labels`. Padded entries are ignored entirely. */
  mask?: HostNumbers;
  /** Query embeddings `[Q, d]` (bi-encoder). */
  queryEmbeddings?: Tensor;
  /** Passage embeddings `[Q·G, d]`, group-major: query q owns rows `q·G … q·G+G−1`. */
  passageEmbeddings?: Tensor;
  /** Token logits `[..., V]` (already shifted by the caller for causal LM). */
  logits?: Tensor;
  /** Token targets (i32 tensor or host numbers), one per logits row; −100 = ignored. */
  targets?: Tensor | HostNumbers;
  /** Pre-softmax attention scores `[B, H, R, T]` (BlockRank auxiliary loss); −inf = masked. */
  attentionScores?: Tensor;
  /** Per batch item, the token span `[start, end)` of each document. */
  documentSpans?: ReadonlyArray<ReadonlyArray<readonly [number, number]>>;
  /** Per batch item, the indices of the relevant documents. */
  positives?: ReadonlyArray<ReadonlyArray<number>>;
  /** Student embeddings `[N, d]` (distillation). */
  student?: Tensor;
  /** Teacher embeddings `[N, d]` (distillation; a tensor or host numbers, no gradient). */
  teacher?: Tensor | HostNumbers;
}

/** What `compute` returns; every tensor belongs to the caller. */
export interface LossOutput {
  /** The scalar loss (shape `[]`), differentiable through the engine's autograd. */
  loss: Tensor;
  /** Unweighted component losses (scalars) of a mixed loss, by name. */
  parts?: Record<string, Tensor>;
  /** Extra numbers to log (e.g. attention top-1 accuracy). */
  metrics?: Record<string, number | Tensor>;
}

/** A configured loss. */
export interface Loss {
  /** Canonical registry name. */
  readonly name: string;
  /** The validated options, defaults filled in. */
  readonly options: Readonly<Record<string, unknown>>;
  /**
   * Computes the loss. Async because some losses read scores back to the
   * host (LambdaRank needs the predicted ranking; BlockRank reports accuracy).
   */
  compute(inputs: LossInputs): Promise<LossOutput>;
}
