/**
 * `@irforge/losses`: a registry of differentiable losses for every irforge
 * recipe (bi-encoders, rerankers, BlockRank, distillation, SFT), built from
 * `@irforge/tensor` ops so autograd supplies every backward.
 *
 * ```ts
 * import { getDevice, type Tensor } from "@irforge/tensor";
 * import { createLoss } from "@irforge/losses";
 *
 * declare const queryEmbeddings: Tensor, passageEmbeddings: Tensor; // [Q, d], [Q·G, d]
 * await getDevice();
 * const loss = createLoss("infonce", { temperature: 0.02, normalize: true });
 * const { loss: value } = await loss.compute({ queryEmbeddings, passageEmbeddings });
 * ```
 *
 * See README.md for every loss's formula, options and source.
 *
 * @module
 */

import "./builtin.ts";

export type { HostNumbers, Loss, LossInputs, LossOutput } from "./types.ts";
export {
  closest,
  defineOptions,
  editDistance,
  type OptionKind,
  type OptionSchema,
  type OptionSpec,
  type OptionValue,
  type ResolvedOptions,
  validateOptions,
} from "./options.ts";
export {
  availableLosses,
  createLoss,
  type LossFactory,
  type LossInfo,
  lossInfo,
  type LossRegistration,
  registerLoss,
  resolveLossName,
} from "./registry.ts";
export { clampMin, gatherFlat, l2Normalize, logSumExp, MASKED } from "./compose.ts";
export { scoreMatrix } from "./scores.ts";
export { computeWeighted, type WeightedPart } from "./combined.ts";
export {
  type PermutedTargets,
  permutedTargets,
  RANKLLM_RANKING_LOSSES,
  rankLlmRankingLoss,
} from "./rankllm_ranking.ts";
