/**
 * The trec_eval measures this package implements, each a pure function of a
 * {@link JudgedRanking}, with trec_eval 10's exact definitions (files
 * `m_<name>.c` of usnistgov/trec_eval):
 *
 * - `map`: Σ over relevant retrieved docs of precision at their rank, / R.
 * - `Rprec`: relevant docs in the top R, / R (R = number relevant).
 * - `recip_rank`: 1 / rank of the first relevant document.
 * - `P_k`: relevant in the top k, / k (missing ranks count as non-relevant).
 * - `recall_k`: relevant in the top k, / R.
 * - `ndcg_cut_k`: DCG with gain = raw grade (grades ≤ 0, unjudged and
 *   unpooled documents give 0) and discount log2(rank + 1), over the ideal
 *   DCG of all judged documents sorted by grade, both cut at k. The
 *   relevance level (`-l`) does not affect it.
 * - `map_cut_k`: `map` counting only relevant docs within the top k.
 * - `num_ret`, `num_rel`, `num_rel_ret`: counts (summed, not averaged).
 *
 * "Relevant" means grade ≥ the relevance level. Every measure is 0 for a
 * query without relevant documents.
 *
 * @module
 */

import type { JudgedRanking } from "./judged_ranking.ts";

/** How a measure's per-query values become the summary value. */
export type Aggregation = "mean" | "sum";

/** A trec_eval measure: name, parameters and per-query computation. */
export interface MeasureDefinition {
  /** trec_eval's name (`ndcg_cut`, `P`, `map`). */
  name: string;
  /** Default cutoffs for a cutoff measure; undefined for single values. */
  defaultCutoffs?: readonly number[];
  /** Mean over queries, or sum (the `num_*` counts). */
  aggregation: Aggregation;
  /** Printed as an integer (`%ld`) rather than `%6.4f`. */
  integer: boolean;
  /** One value per cutoff (or a single value when not a cutoff measure). */
  compute(ranking: JudgedRanking, cutoffs: readonly number[]): number[];
}

const TREC_CUTOFFS = [5, 10, 15, 20, 30, 100, 200, 500, 1000] as const;

/** Average precision over all relevant documents (`map`). */
export function averagePrecision(r: JudgedRanking): number {
  if (r.numRel === 0) return 0;
  let relSoFar = 0;
  let sum = 0;
  for (let i = 0; i < r.numRet; i++) {
    if (r.rels[i]! >= r.relevanceLevel) {
      relSoFar++;
      sum += relSoFar / (i + 1);
    }
  }
  return sum / r.numRel;
}

/** Precision after R documents (`Rprec`). */
export function rPrecision(r: JudgedRanking): number {
  const look = Math.min(r.numRet, r.numRel);
  if (look === 0) return 0;
  let relSoFar = 0;
  for (let i = 0; i < look; i++) if (r.rels[i]! >= r.relevanceLevel) relSoFar++;
  return relSoFar / r.numRel;
}

/** Reciprocal rank of the first relevant document (`recip_rank`). */
export function reciprocalRank(r: JudgedRanking): number {
  for (let i = 0; i < r.numRet; i++) if (r.rels[i]! >= r.relevanceLevel) return 1 / (i + 1);
  return 0;
}

function relevantWithin(r: JudgedRanking, k: number): number {
  const n = Math.min(k, r.numRet);
  let count = 0;
  for (let i = 0; i < n; i++) if (r.rels[i]! >= r.relevanceLevel) count++;
  return count;
}

/** Precision at each cutoff (`P_k`). */
export function precisionAt(r: JudgedRanking, cutoffs: readonly number[]): number[] {
  return cutoffs.map((k) => relevantWithin(r, k) / k);
}

/** Recall at each cutoff (`recall_k`). */
export function recallAt(r: JudgedRanking, cutoffs: readonly number[]): number[] {
  return cutoffs.map((k) => (r.numRel === 0 ? 0 : relevantWithin(r, k) / r.numRel));
}

/** Average precision truncated at each cutoff (`map_cut_k`). */
export function averagePrecisionAt(r: JudgedRanking, cutoffs: readonly number[]): number[] {
  if (r.numRel === 0) return cutoffs.map(() => 0);
  return cutoffs.map((k) => {
    const n = Math.min(k, r.numRet);
    let relSoFar = 0;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      if (r.rels[i]! >= r.relevanceLevel) {
        relSoFar++;
        sum += relSoFar / (i + 1);
      }
    }
    return sum / r.numRel;
  });
}

/** Discounted cumulative gain of the ranking's top `k` (raw grades). */
export function dcgAt(r: JudgedRanking, k: number): number {
  const n = Math.min(k, r.numRet);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const gain = r.rels[i]!;
    if (gain > 0) sum += gain / Math.log2(i + 2);
  }
  return sum;
}

/** DCG of the ideal ranking of all judged documents, cut at `k`. */
export function idealDcgAt(r: JudgedRanking, k: number): number {
  let sum = 0;
  let i = 0;
  for (let grade = r.relLevels.length - 1; grade > 0 && i < k; grade--) {
    for (let c = 0; c < r.relLevels[grade]! && i < k; c++, i++) sum += grade / Math.log2(i + 2);
  }
  return sum;
}

/** nDCG at each cutoff (`ndcg_cut_k`), 0 when the ideal DCG is 0. */
export function ndcgAt(r: JudgedRanking, cutoffs: readonly number[]): number[] {
  return cutoffs.map((k) => {
    const ideal = idealDcgAt(r, k);
    const dcg = dcgAt(r, k);
    return ideal > 0 ? dcg / ideal : dcg;
  });
}

/**
 * The implemented measures in trec_eval's print order (its
 * `te_trec_measures` table).
 */
export const MEASURES: readonly MeasureDefinition[] = [
  { name: "num_ret", aggregation: "sum", integer: true, compute: (r) => [r.numRet] },
  { name: "num_rel", aggregation: "sum", integer: true, compute: (r) => [r.numRel] },
  { name: "num_rel_ret", aggregation: "sum", integer: true, compute: (r) => [r.numRelRet] },
  { name: "map", aggregation: "mean", integer: false, compute: (r) => [averagePrecision(r)] },
  { name: "Rprec", aggregation: "mean", integer: false, compute: (r) => [rPrecision(r)] },
  { name: "recip_rank", aggregation: "mean", integer: false, compute: (r) => [reciprocalRank(r)] },
  {
    name: "P",
    defaultCutoffs: TREC_CUTOFFS,
    aggregation: "mean",
    integer: false,
    compute: precisionAt,
  },
  {
    name: "recall",
    defaultCutoffs: TREC_CUTOFFS,
    aggregation: "mean",
    integer: false,
    compute: recallAt,
  },
  {
    name: "ndcg_cut",
    defaultCutoffs: TREC_CUTOFFS,
    aggregation: "mean",
    integer: false,
    compute: ndcgAt,
  },
  {
    name: "map_cut",
    defaultCutoffs: TREC_CUTOFFS,
    aggregation: "mean",
    integer: false,
    compute: averagePrecisionAt,
  },
];
