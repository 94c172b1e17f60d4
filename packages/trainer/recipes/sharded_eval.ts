/**
 * Evaluation sharded over data-parallel ranks: each rank works through a
 * contiguous share of the evaluation items (queries, examples, batches) and
 * every rank gets all results back, in the items' order, so the metrics
 * computed from them are one process's — bit for bit, since every item is
 * computed exactly as one process computes it and the results are merged in
 * the same order.
 *
 * Shares are cut on multiples of `unit` items, so a recipe that evaluates
 * in batches keeps one process's batches (the same padding, the same
 * arithmetic). Results travel as JSON text (numbers round-trip exactly) in
 * one all-gather. With no communicator, or one rank, the work runs on all
 * items here.
 *
 * @example
 * ```ts ignore
 * const scores = await shardedMap(comm, examples, (share) => scoreExamples(share), { unit: 8 });
 * ```
 *
 * @module
 */

import type { CandidateList, Scorer } from "@irforge/eval";
import type { Collective } from "../distributed/collective.ts";

/** Options of {@link shardedMap}. */
export interface ShardOptions {
  /** Shares start on multiples of this many items (an evaluation batch; default 1). */
  unit?: number;
}

/** The communicator to shard over: `comm` when it has more than one rank, else null. */
export function evalCommunicator(comm: Collective | undefined | null): Collective | null {
  return comm && comm.size > 1 ? comm : null;
}

/** The items `[start, end)` rank `rank` of `size` evaluates, cut on multiples of `unit`. */
export function evalShare(
  count: number,
  rank: number,
  size: number,
  unit = 1,
): { start: number; end: number } {
  const units = Math.ceil(count / unit);
  const at = (r: number) => Math.min(count, Math.floor((r * units) / size) * unit);
  return { start: at(rank), end: at(rank + 1) };
}

/**
 * Runs `work` on this rank's share of `items` (it must return one result per
 * item, in order) and returns every item's result on every rank.
 */
export async function shardedMap<T, R>(
  comm: Collective | null,
  items: readonly T[],
  work: (share: readonly T[]) => Promise<R[]>,
  options: ShardOptions = {},
): Promise<R[]> {
  if (!comm || comm.size === 1) return await work(items);
  const { start, end } = evalShare(items.length, comm.rank, comm.size, options.unit ?? 1);
  const mine = end > start ? await work(items.slice(start, end)) : [];
  if (mine.length !== end - start) {
    throw new Error(`sharded evaluation: ${mine.length} results for ${end - start} items`);
  }
  const parts = await comm.allgatherText(JSON.stringify(mine));
  const all = parts.flatMap((text) => JSON.parse(text) as R[]);
  if (all.length !== items.length) {
    throw new Error(`sharded evaluation: ${all.length} results for ${items.length} items`);
  }
  return all;
}

/**
 * A reranker {@link Scorer} for `evaluateReranker(lists, …)`: every list is
 * scored once by `score`, sharded over the ranks, and the scorer answers
 * from the merged scores (it must be asked about these `lists`' own
 * candidate arrays, as `evaluateReranker` does).
 */
export async function shardedScorer(
  comm: Collective | null,
  lists: readonly CandidateList[],
  score: (list: CandidateList) => Promise<number[]>,
  progress?: (total: number) => (done: number) => void,
): Promise<Scorer> {
  const scores = await shardedMap(comm, lists, async (share) => {
    const report = progress?.(share.length); // this rank's share
    const out: number[][] = [];
    for (const list of share) {
      out.push(await score(list));
      report?.(out.length);
    }
    return out;
  });
  const byCandidates = new Map<readonly unknown[], number[]>(
    lists.map((list, i) => [list.candidates, scores[i]!]),
  );
  return (_query, candidates) => {
    const found = byCandidates.get(candidates);
    if (!found) throw new Error("shardedScorer: asked about a list it was not given");
    return Promise.resolve(found);
  };
}
