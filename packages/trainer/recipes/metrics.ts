/**
 * Evaluation results in the run directory's vocabulary: trec_eval measure
 * names become `ndcg@10`, `recall@100`, `mrr`, `map`.
 *
 * @module
 */

import { type Evaluation, formatScoredRun, type ScoredDocument } from "@irforge/eval";
import type { Config } from "../config/schema.ts";
import type { EvalOutcome } from "../loop.ts";

/** trec_eval measures every ranking evaluation computes. */
export const RETRIEVAL_MEASURES = ["ndcg_cut.10", "recall.100", "recip_rank", "map"];

/**
 * `evaluateRun` options of every recipe's ranking evaluation: the
 * {@linkcode RETRIEVAL_MEASURES} at `data.eval_relevance_level` (trec_eval's
 * `-l`; TREC DL's published MAP and recall use 2).
 *
 * @example
 * ```ts
 * import { parseConfig } from "../config/parse.ts";
 * import { retrievalEvalOptions } from "./metrics.ts";
 *
 * const config = parseConfig(
 *   "recipe: crossencoder\nmodel: {model_name_or_path: m}\n" +
 *     "data: {data_path: d.jsonl, eval_relevance_level: 2}\n",
 *   "c.yaml",
 * );
 * retrievalEvalOptions(config); // { measures: [...], relevanceLevel: 2 }
 * ```
 */
export function retrievalEvalOptions(
  config: Config,
): { measures: string[]; relevanceLevel: number } {
  return { measures: RETRIEVAL_MEASURES, relevanceLevel: config.data.eval_relevance_level };
}

const RENAMED: Record<string, string> = {
  ndcg_cut_10: "ndcg@10",
  recall_100: "recall@100",
  recip_rank: "mrr",
  map: "map",
};

/** The run-directory name of a trec_eval measure (`ndcg_cut_10` → `ndcg@10`). */
export function metricName(trecName: string): string {
  return RENAMED[trecName] ?? trecName;
}

/** Summary, per-query metrics and the TREC run text of an evaluation. */
export function evaluationToOutcome(
  evaluation: Evaluation,
  run: ReadonlyMap<string, readonly ScoredDocument[]>,
  tag: string,
  relevanceLevel?: number,
): EvalOutcome {
  const metrics: Record<string, number> = {};
  for (const [name, value] of evaluation.summary) metrics[metricName(name)] = value;
  const perQuery: Record<string, Record<string, number>> = {};
  for (const [qid, values] of evaluation.perQuery) {
    const row: Record<string, number> = {};
    for (const [name, value] of values) row[metricName(name)] = value;
    perQuery[qid] = row;
  }
  return { metrics, perQuery, runText: formatScoredRun(run, tag), relevanceLevel };
}
