/**
 * Trove-style hard-negative mining: retrieve the top `depth` documents of
 * every judged query (BM25, or a dense index with its model), drop the
 * first `skipTop` ranks (likely unjudged positives), drop every judged
 * positive (grade ≥ `minPositive`), optionally keep a seeded random sample
 * of `sample` of the rest, and write them as a qrel-style TSV
 * (`query-id  corpus-id  score`, BEIR's header, grade 0: a mined
 * non-relevant judgment, in retrieval order; qrels grades are integers, so
 * the retrieval score is not kept).
 *
 * The file is a negatives source for the `biencoder` and `crossencoder`
 * recipes: `data.negative_source: mined` with `data.negatives_path`, where
 * every row is a negative whatever its score (Trove's `score_transform: 0`
 * on a mined qrel source).
 *
 * @module
 */

import type { Corpus, Qrels, Queries } from "@irforge/data";
import { sampleWithoutReplacement, seededRandom } from "@irforge/data/random";
import { indexCorpus, rankTrecEval, retrieveAll, type ScoredDocument } from "@irforge/eval";
import { searchIndex } from "./search.ts";
import type { TrainedModel } from "./trained_model.ts";

/** Options of {@link selectNegatives}. */
export interface MineOptions {
  /** Retrieved documents considered per query (default 200). */
  depth?: number;
  /** Ranks skipped at the top of each list, before positives are removed (default 0). */
  skipTop?: number;
  /** Negatives kept per query, a seeded random sample (default: all that remain). */
  sample?: number | null;
  /** Seed of the sample (default 42). */
  seed?: number;
  /** Grade from which a judged document is a positive (default 1). */
  minPositive?: number;
}

/** The queries of `qrels` with at least one positive, in qrels order. */
export function queriesWithPositives(qrels: Qrels, minPositive = 1): string[] {
  return [...qrels].filter(([, docs]) => [...docs.values()].some((g) => g >= minPositive))
    .map(([qid]) => qid);
}

/**
 * Picks each query's negatives from its retrieved list: trec_eval order,
 * the top `depth`, minus the first `skipTop`, minus judged positives, then
 * (with `sample`) a random sample drawn from `seed` and the query's
 * position in `qrels`, kept in retrieval order.
 */
export function selectNegatives(
  retrieved: ReadonlyMap<string, readonly ScoredDocument[]>,
  qrels: Qrels,
  options: MineOptions = {},
): Map<string, ScoredDocument[]> {
  const depth = options.depth ?? 200, skip = options.skipTop ?? 0;
  const minPositive = options.minPositive ?? 1;
  const out = new Map<string, ScoredDocument[]>();
  queriesWithPositives(qrels, minPositive).forEach((qid, q) => {
    const judged = qrels.get(qid)!;
    const pool = rankTrecEval(retrieved.get(qid) ?? []).slice(0, depth).slice(skip)
      .filter((d) => !((judged.get(d.docid) ?? -Infinity) >= minPositive));
    if (options.sample === null || options.sample === undefined || pool.length <= options.sample) {
      out.set(qid, pool);
      return;
    }
    const chosen = new Set(
      sampleWithoutReplacement(seededRandom(options.seed ?? 42, 0, q), pool, options.sample),
    );
    out.set(qid, pool.filter((d) => chosen.has(d)));
  });
  return out;
}

/** Mined negatives as a BEIR qrels TSV (header, then `qid\tdocid\t0`, retrieval order). */
export function formatMinedNegatives(
  mined: ReadonlyMap<string, readonly ScoredDocument[]>,
): string {
  const lines = ["query-id\tcorpus-id\tscore"];
  for (const [qid, docs] of mined) for (const d of docs) lines.push(`${qid}\t${d.docid}\t0`);
  return lines.join("\n") + "\n";
}

/** BM25 (k1 0.9, b 0.4, as `deno task bm25`) top `depth` of the judged queries. */
export function retrieveBm25ForMining(
  corpus: Corpus,
  queries: Queries,
  qrels: Qrels,
  depth: number,
): Map<string, ScoredDocument[]> {
  const index = indexCorpus(corpus);
  return retrieveAll(index, queries, depth, { onlyQueries: qrels.keys() });
}

/** Dense top `depth` of the judged queries from an index built by `model`. */
export function retrieveDenseForMining(
  model: TrainedModel,
  indexDir: string,
  queries: Queries,
  qrels: Qrels,
  depth: number,
  progress?: (done: number, total: number) => void,
): Promise<Map<string, ScoredDocument[]>> {
  const judged = new Map([...queries].filter(([qid]) => qrels.has(qid)));
  return searchIndex(model, indexDir, judged, { k: depth, progress });
}
