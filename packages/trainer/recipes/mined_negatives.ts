/**
 * `data.negative_source: mined`: the hard negatives `deno task mine` wrote
 * (a BEIR qrels TSV) become the judged-negatives pool of the bi-encoder and
 * cross-encoder datasets. Every row is a negative whatever its grade
 * (Trove's `score_transform: 0` on a mined qrel source), judged positives are
 * never drawn from it, and queries whose pool runs short fall back to
 * random corpus documents.
 *
 * @module
 */

import { type MaterializedQrels, materializeQrels, readBeirQrels } from "@irforge/data";
import type { RetrievalData } from "./retrieval_data.ts";

/** Reads `path` (rows naming unknown queries or documents are errors naming the line). */
export async function readMinedNegatives(
  path: string,
  data: RetrievalData,
): Promise<MaterializedQrels> {
  const qrels = await readBeirQrels(path, { corpus: data.corpus, queries: data.queries });
  return materializeQrels([{
    qrels,
    corpus: data.corpus,
    queries: data.queries,
    scoreTransform: 0,
    name: path,
  }]);
}
