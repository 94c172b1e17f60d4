/**
 * A ranking joined with its judgments, as trec_eval's `te_form_res_rels`
 * builds it: the relevance value at each rank plus counts per grade. Every
 * measure is computed from this one structure.
 *
 * @module
 */

import { rankTrecEval, type ScoredDocument } from "./ranking.ts";

/** Relevance value of a retrieved document absent from the qrels. */
export const REL_NOT_IN_POOL = -1;
/** Relevance value of a retrieved document judged with a negative grade. */
export const REL_UNJUDGED = -2;

/** One query's ranking with the relevance of each retrieved document. */
export interface JudgedRanking {
  /**
   * Relevance per rank (index 0 is rank 1): the grade when judged ≥ 0,
   * {@link REL_NOT_IN_POOL} when not in the qrels, {@link REL_UNJUDGED}
   * when the qrels give a negative grade (trec_eval's "in pool, unjudged").
   */
  rels: Int32Array;
  /** Count of judged documents per non-negative grade (index = grade). */
  relLevels: number[];
  /** Number of retrieved documents evaluated. */
  numRet: number;
  /** Number of judged documents with grade ≥ the relevance level. */
  numRel: number;
  /** Retrieved documents with grade ≥ the relevance level. */
  numRelRet: number;
  /** The relevance level used for the binary measures. */
  relevanceLevel: number;
}

/** Options of {@link judgeRanking}. */
export interface JudgeOptions {
  /** Minimum grade counted as relevant (trec_eval `-l`, default 1). */
  relevanceLevel?: number;
  /** Evaluate at most this many documents per query (trec_eval `-M`). */
  maxDocsPerTopic?: number;
}

/**
 * Ranks `documents` the trec_eval way and looks each one up in
 * `judgments` (document id → grade; empty or undefined for none).
 */
export function judgeRanking(
  documents: readonly ScoredDocument[],
  judgments: ReadonlyMap<string, number> | undefined,
  options: JudgeOptions = {},
): JudgedRanking {
  const relevanceLevel = options.relevanceLevel ?? 1;
  const ranked = rankTrecEval(documents);
  const numRet = Math.min(ranked.length, options.maxDocsPerTopic ?? Infinity);
  const rels = new Int32Array(numRet);
  let numRelRet = 0;
  for (let i = 0; i < numRet; i++) {
    const grade = judgments?.get(ranked[i]!.docid);
    if (grade === undefined) rels[i] = REL_NOT_IN_POOL;
    else if (grade < 0) rels[i] = REL_UNJUDGED;
    else {
      rels[i] = grade;
      if (grade >= relevanceLevel) numRelRet++;
    }
  }
  const relLevels: number[] = [];
  if (judgments) {
    for (const grade of judgments.values()) {
      if (grade < 0) continue;
      while (relLevels.length <= grade) relLevels.push(0);
      relLevels[grade]!++;
    }
  }
  let numRel = 0;
  for (let grade = Math.max(0, relevanceLevel); grade < relLevels.length; grade++) {
    numRel += relLevels[grade]!;
  }
  return { rels, relLevels, numRet, numRel, numRelRet, relevanceLevel };
}
