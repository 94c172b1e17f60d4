/**
 * Dense retrieval evaluation: queries and documents are embedded by
 * callbacks the trainer supplies (batches of texts → row-major Float32Array
 * embeddings), the top k documents per query are found by a searcher
 * callback (the trainer's exact GPU top-k; {@link exactTopKCpu} is the CPU
 * default for small corpora), and the run is evaluated like trec_eval.
 *
 * @module
 */

import type { Qrels } from "@irforge/data/trec";
import { type EvaluateOptions, evaluateRun, type Evaluation } from "./evaluate.ts";
import type { ScoredDocument } from "./ranking.ts";
import { type Scored, topK } from "./top_k.ts";

/** Embeds a batch of texts: `texts.length × dim` values, row-major. */
export type Encoder = (texts: readonly string[]) => Promise<Float32Array>;

/**
 * Finds, for each of `numQueries` query rows, the `k` best document rows
 * by inner product: best first, indices into the document matrix.
 */
export type Searcher = (
  queries: Float32Array,
  numQueries: number,
  documents: Float32Array,
  numDocuments: number,
  dim: number,
  k: number,
) => Promise<Scored[][]>;

/** Exact inner-product top-k on the CPU (float64 accumulation); small corpora only. */
export function exactTopKCpu(
  queries: Float32Array,
  numQueries: number,
  documents: Float32Array,
  numDocuments: number,
  dim: number,
  k: number,
): Promise<Scored[][]> {
  const scores = new Float64Array(numDocuments);
  const out: Scored[][] = [];
  for (let q = 0; q < numQueries; q++) {
    const qo = q * dim;
    for (let d = 0; d < numDocuments; d++) {
      const dof = d * dim;
      let dot = 0;
      for (let i = 0; i < dim; i++) dot += queries[qo + i]! * documents[dof + i]!;
      scores[d] = dot;
    }
    out.push(topK(scores, k));
  }
  return Promise.resolve(out);
}

/** Inputs of {@link evaluateRetriever}. */
export interface RetrievalTask {
  /** Query id → text (only judged queries are searched). */
  queries: ReadonlyMap<string, string>;
  /** Document id → text to embed. */
  documents: ReadonlyMap<string, string>;
  /** Judgments. */
  qrels: Qrels;
  /** Embeds queries. */
  encodeQueries: Encoder;
  /** Embeds documents. */
  encodeDocuments: Encoder;
  /** Top-k search (default {@link exactTopKCpu}). */
  search?: Searcher;
}

/** Options of {@link evaluateRetriever}. */
export interface RetrievalOptions extends EvaluateOptions {
  /** Documents retrieved per query (default 100). */
  k?: number;
  /** Texts per encoder call (default 64). */
  batchSize?: number;
  /** Called as texts are embedded (`phase` "documents" or "queries"). */
  progress?: (phase: string, done: number, total: number) => void;
}

/** What {@link evaluateRetriever} returns. */
export interface RetrievalResult {
  /** Retrieved documents per query. */
  run: Map<string, ScoredDocument[]>;
  /** Per-query and mean metrics. */
  evaluation: Evaluation;
  /** Embedding width found. */
  dim: number;
}

async function embedAll(
  texts: readonly string[],
  encode: Encoder,
  batchSize: number,
  phase: string,
  progress?: RetrievalOptions["progress"],
): Promise<{ matrix: Float32Array; dim: number }> {
  let matrix = new Float32Array(0);
  let dim = -1;
  for (let start = 0; start < texts.length; start += batchSize) {
    const batch = texts.slice(start, start + batchSize);
    const rows = await encode(batch);
    const width = rows.length / batch.length;
    if (!Number.isInteger(width) || width <= 0 || (dim >= 0 && width !== dim)) {
      throw new Error(
        `${phase} encoder returned ${rows.length} values for ${batch.length} texts` +
          (dim >= 0 ? ` (expected ${batch.length} × ${dim})` : ""),
      );
    }
    if (dim < 0) {
      dim = width;
      matrix = new Float32Array(texts.length * dim);
    }
    matrix.set(rows, start * dim);
    progress?.(phase, Math.min(start + batchSize, texts.length), texts.length);
  }
  return { matrix, dim: Math.max(dim, 0) };
}

/** Embeds, searches and evaluates. */
export async function evaluateRetriever(
  task: RetrievalTask,
  options: RetrievalOptions = {},
): Promise<RetrievalResult> {
  const k = options.k ?? 100;
  const batchSize = options.batchSize ?? 64;
  const docIds = [...task.documents.keys()];
  const queryIds = [...task.queries.keys()].filter((id) => task.qrels.has(id));
  const docs = await embedAll(
    docIds.map((id) => task.documents.get(id)!),
    task.encodeDocuments,
    batchSize,
    "documents",
    options.progress,
  );
  const queries = await embedAll(
    queryIds.map((id) => task.queries.get(id)!),
    task.encodeQueries,
    batchSize,
    "queries",
    options.progress,
  );
  if (docIds.length && queryIds.length && docs.dim !== queries.dim) {
    throw new Error(`query embeddings have ${queries.dim} dimensions, documents ${docs.dim}`);
  }
  const search = task.search ?? exactTopKCpu;
  const hits = await search(
    queries.matrix,
    queryIds.length,
    docs.matrix,
    docIds.length,
    docs.dim,
    k,
  );
  const run = new Map<string, ScoredDocument[]>();
  queryIds.forEach((qid, q) => {
    run.set(qid, (hits[q] ?? []).map((h) => ({ docid: docIds[h.index]!, score: h.score })));
  });
  return { run, evaluation: evaluateRun(task.qrels, run, options), dim: docs.dim };
}
