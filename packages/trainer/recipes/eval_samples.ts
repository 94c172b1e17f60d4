/**
 * `data.max_eval_samples` (Hugging Face's `max_eval_samples`): evaluation on
 * at most that many held-out examples or queries, the first in order (file
 * order, or the split's), so that generation- or reranking-based evaluation
 * stays affordable on a long held-out set.
 *
 * @module
 */

import type { Qrels } from "@irforge/data";

/** At most `max` of `items`, the first ones; all of them when `max` is null. */
export function firstEvalSamples<T>(items: readonly T[], max: number | null): T[] {
  return max === null ? [...items] : items.slice(0, max);
}

/** Qrels of at most `max` queries, the first in file order; `qrels` itself when `max` is null. */
export function firstEvalQueries(qrels: Qrels, max: number | null): Qrels {
  if (max === null || qrels.size <= max) return qrels;
  return new Map([...qrels].slice(0, max));
}

/** The note recipes log when the cap applies: `"evaluating on 50 of 120 held-out queries"`. */
export function evalCapNote(kept: number, total: number, what: string): string | null {
  return kept < total
    ? `evaluating on ${kept} of ${total} held-out ${what} (data.max_eval_samples)`
    : null;
}
