/**
 * `@irforge/losses`: a registry of differentiable losses for every irforge
 * recipe (bi-encoders, rerankers, BlockRank, distillation, SFT), built from
 * `@irforge/tensor` ops so autograd supplies every backward.
 *
 * ```ts
 * import { createLoss } from "@irforge/losses";
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
export { infonce, infonceFromScores, infonceOptions } from "./infonce.ts";
export { kl, klOptions, klTargets } from "./kl.ts";
export { listnet, listnetOptions } from "./listnet.ts";
export { ranknet, ranknetOptions, rankNetPairs } from "./ranknet.ts";
export { lambdaPairs, lambdarank, lambdarankOptions } from "./lambdarank.ts";
export { lm, lmOptions } from "./lm.ts";
export { blockrankAux, blockrankAuxOptions } from "./blockrank_aux.ts";
export { meanSquaredError, mse, mseOptions } from "./mse.ts";
export { cosine, cosineDistance, cosineOptions } from "./cosine.ts";
export {
  distillPhase1,
  distillPhase1Options,
  distillPhase2,
  distillPhase2Options,
} from "./distill.ts";
export { marginMse, marginMseOptions } from "./margin_mse.ts";
export { binaryCrossEntropy, binaryCrossEntropyOptions } from "./binary_cross_entropy.ts";
export { matryoshka, matryoshkaOptions, prefixInputs } from "./matryoshka.ts";
export { combined, combinedOptions, computeWeighted, type WeightedPart } from "./combined.ts";
