/**
 * The listwise recipe's `combined` objective from flat `training.loss_options`
 * (configuration options are scalars): `lm_weight` and `ranking_weight`
 * (default 1 each) weigh the LM loss and the ranking loss, and every other
 * option goes to the ranking loss, e.g. RankLLM's FIRST training
 * (`--objective combined --ranking_loss ranknet --weighted`):
 * `loss: ranknet`, `loss_options: {ranking_weight: 10, weighted: true}`.
 *
 * On RankLLM's own conversations file {@link rankLlmCombinedLoss} builds the
 * same sum with upstream's ranking loss (`rankLlmRankingLoss`).
 *
 * @example
 * ```ts
 * import { combinedListwiseOptions } from "./listwise_combined.ts";
 * const options = combinedListwiseOptions("ranknet", { ranking_weight: 10, weighted: true });
 * // { weights: { lm: 1, ranknet: 10 }, losses: { ranknet: { weighted: true } } }
 * ```
 *
 * @module
 */

import { computeWeighted, createLoss, type Loss, rankLlmRankingLoss } from "@irforge/losses";

/** Options of the `combined` loss for LM + `rankingLoss`, from flat `loss_options`. */
export function combinedListwiseOptions(
  rankingLoss: string,
  flat: Readonly<Record<string, unknown>>,
): { weights: Record<string, number>; losses: Record<string, Record<string, unknown>> } {
  const { lm_weight: lm = 1, ranking_weight: ranking = 1, ...rest } = flat;
  for (const [name, value] of [["lm_weight", lm], ["ranking_weight", ranking]] as const) {
    if (typeof value !== "number" || !(value >= 0)) {
      throw new Error(`training.loss_options.${name}: expected a number ≥ 0, got ${value}`);
    }
  }
  return {
    weights: { lm: lm as number, [rankingLoss]: ranking as number },
    losses: Object.keys(rest).length > 0 ? { [rankingLoss]: rest } : {},
  };
}

/**
 * `lm_weight`·LM + `ranking_weight`·RankLLM's ranking loss (upstream's
 * `compute_ranking_loss`, targets the model's own permuted scores), from the
 * same flat `loss_options` as {@link combinedListwiseOptions}; both parts
 * are reported unweighted as `lm` and `rankingLoss`.
 */
export function rankLlmCombinedLoss(
  rankingLoss: string,
  flat: Readonly<Record<string, unknown>>,
): Loss {
  const options = combinedListwiseOptions(rankingLoss, flat);
  const parts = [
    { name: "lm", weight: options.weights.lm!, loss: createLoss("lm") },
    {
      name: rankingLoss,
      weight: options.weights[rankingLoss]!,
      loss: rankLlmRankingLoss(rankingLoss, options.losses[rankingLoss] ?? {}),
    },
  ];
  return { name: "combined", options, compute: (inputs) => computeWeighted(parts, inputs) };
}
