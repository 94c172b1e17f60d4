/**
 * The BEIR files a retrieval recipe (bi-encoder, cross-encoder, distill)
 * trains and evaluates on: corpus, queries and training qrels, plus the
 * evaluation queries and qrels (capped at `max_eval_samples`).
 *
 * @module
 */

import { join } from "node:path";
import {
  type Corpus,
  type Qrels,
  type Queries,
  readBeirCorpus,
  readBeirQrels,
  readBeirQueries,
} from "@irforge/data";
import type { Config } from "../config/schema.ts";
import { evalCapNote, firstEvalQueries } from "./eval_samples.ts";

/** The BEIR data a bi-encoder trains and evaluates on. */
export interface RetrievalData {
  /** Passages by id. */
  corpus: Corpus;
  /** Training queries by id. */
  queries: Queries;
  /** Training judgments. */
  trainQrels: Qrels;
  /** Evaluation queries (null: no evaluation data). */
  evalQueries: Queries | null;
  /** Evaluation judgments, capped at `max_eval_samples` queries (null: none). */
  evalQrels: Qrels | null;
}

/** Reads the BEIR files named in `config.data`. */
export function readRetrievalData(config: Config): Promise<RetrievalData> {
  const d = config.data;
  const dir = d.data_path;
  return readBeirFiles(config, {
    corpus: d.corpus_path ?? (dir ? join(dir, "corpus.jsonl") : null),
    queries: d.queries_path ?? (dir ? join(dir, "queries.jsonl") : null),
    qrels: d.qrels_path ?? (dir ? join(dir, "qrels", "train.tsv") : null),
  }, "the bi-encoder needs corpus_path, queries_path and qrels_path");
}

/**
 * Reads a BEIR corpus, queries and training qrels from resolved paths, plus
 * the evaluation queries/qrels of `config.data`; `missing` is the error
 * message when a path could not be resolved.
 */
export async function readBeirFiles(
  config: Config,
  paths: { corpus: string | null; queries: string | null; qrels: string | null },
  missing: string,
): Promise<RetrievalData> {
  const d = config.data;
  if (!paths.corpus || !paths.queries || !paths.qrels) throw new Error(`data: ${missing}`);
  const corpus = await readBeirCorpus(paths.corpus);
  const queries = await readBeirQueries(paths.queries);
  const trainQrels = await readBeirQrels(paths.qrels, { corpus, queries });
  let evalQueries: Queries | null = null, evalQrels: Qrels | null = null;
  if (d.eval_qrels_path) {
    evalQueries = d.eval_data_path ? await readBeirQueries(d.eval_data_path) : queries;
    // Judged documents outside the corpus are kept (TREC pools are larger than any top-k):
    // trec_eval counts them in the ideal ranking and in recall's denominator, and so do we.
    const allEvalQrels = await readBeirQrels(d.eval_qrels_path, { queries: evalQueries });
    evalQrels = firstEvalQueries(allEvalQrels, d.max_eval_samples);
    const note = evalCapNote(evalQrels.size, allEvalQrels.size, "queries");
    if (note) console.log(`data: ${note}`);
    const outside = judgedOutsideCorpus(evalQrels, corpus);
    if (outside > 0) {
      console.log(
        `data: ${outside} judged documents of ${d.eval_qrels_path} are not in the corpus; ` +
          `they count in the ideal ranking and in recall, as in trec_eval`,
      );
    }
  }
  return { corpus, queries, trainQrels, evalQueries, evalQrels };
}

/** Judgments of `qrels` whose document is not in `corpus`. */
export function judgedOutsideCorpus(qrels: Qrels, corpus: { has(id: string): boolean }): number {
  let count = 0;
  for (const docs of qrels.values()) {
    for (const docid of docs.keys()) if (!corpus.has(docid)) count++;
  }
  return count;
}
