/**
 * Rerank evaluation: fixed candidate lists are scored by a callback the
 * trainer supplies (pointwise logits, BlockRank attention, listwise
 * generation through {@link listwiseOutputToScores}); the result is written
 * as a TREC run and evaluated with trec_eval semantics.
 *
 * @module
 */

import type { Qrels } from "@irforge/data/trec";
import { type EvaluateOptions, evaluateRun, type Evaluation } from "./evaluate.ts";
import { rankTrecEval, type ScoredDocument } from "./ranking.ts";

/** One candidate document. */
export interface Candidate {
  /** Document id. */
  docid: string;
  /** Text shown to the scorer. */
  text: string;
}

/** A query with its candidates (e.g. BM25 top-100). */
export interface CandidateList {
  /** Query id. */
  qid: string;
  /** Query text. */
  query: string;
  /** Candidates in first-stage order. */
  candidates: Candidate[];
}

/** Scores every candidate of one query; one number per candidate, higher better. */
export type Scorer = (query: string, docs: readonly Candidate[]) => Promise<number[]>;

/** Options of {@link evaluateReranker}. */
export interface RerankOptions extends EvaluateOptions {
  /** Run tag written in the TREC run (default "rerank"). */
  tag?: string;
  /** Called after each query. */
  progress?: (done: number, total: number) => void;
}

/** What {@link evaluateReranker} returns. */
export interface RerankResult {
  /** Scored documents per query (as `evaluateRun` takes them). */
  run: Map<string, ScoredDocument[]>;
  /** The run in TREC format, documents in trec_eval's rank order. */
  runText: string;
  /** Per-query and mean metrics. */
  evaluation: Evaluation;
}

/** Scores the candidate lists, writes a run and evaluates it. */
export async function evaluateReranker(
  lists: readonly CandidateList[],
  scorer: Scorer,
  qrels: Qrels,
  options: RerankOptions = {},
): Promise<RerankResult> {
  const run = new Map<string, ScoredDocument[]>();
  for (let i = 0; i < lists.length; i++) {
    const list = lists[i]!;
    const scores = await scorer(list.query, list.candidates);
    if (scores.length !== list.candidates.length) {
      throw new Error(
        `scorer returned ${scores.length} scores for ${list.candidates.length} candidates of query "${list.qid}"`,
      );
    }
    scores.forEach((score, j) => {
      if (!Number.isFinite(score)) {
        throw new Error(
          `scorer returned ${score} for document "${
            list.candidates[j]!.docid
          }" of query "${list.qid}"`,
        );
      }
    });
    run.set(list.qid, list.candidates.map((c, j) => ({ docid: c.docid, score: scores[j]! })));
    options.progress?.(i + 1, lists.length);
  }
  const evaluation = evaluateRun(qrels, run, options);
  return { run, runText: formatScoredRun(run, options.tag ?? "rerank"), evaluation };
}

/**
 * Formats scored documents as a TREC run, each query in trec_eval's order
 * (score descending, ties by docid descending) so the rank column agrees
 * with how trec_eval will read it.
 */
export function formatScoredRun(
  run: ReadonlyMap<string, readonly ScoredDocument[]>,
  tag: string,
): string {
  const out: string[] = [];
  for (const [qid, docs] of run) {
    const ranked = rankTrecEval(docs);
    ranked.forEach((d, i) => out.push(`${qid} Q0 ${d.docid} ${i + 1} ${d.score} ${tag}`));
  }
  return out.length ? out.join("\n") + "\n" : "";
}
