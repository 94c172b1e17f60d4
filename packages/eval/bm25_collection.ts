/**
 * BM25 over a {@link BeirCollection}: document text is `title + " " + text`
 * (the BEIR convention), every query retrieves its top k.
 *
 * @module
 */

import type { BeirCollection, Document } from "@irforge/data/beir";
import { type Bm25Hit, Bm25Index, type Bm25Options, type Progress } from "./bm25.ts";

/** The text BM25 indexes for a document: title and body joined by a space. */
export function documentText(doc: Document): string {
  return doc.title ? `${doc.title} ${doc.text}` : doc.text;
}

/** Indexes a corpus with {@link documentText}. */
export function indexCorpus(
  corpus: BeirCollection["corpus"],
  options: Bm25Options = {},
  progress?: Progress,
): Bm25Index {
  const docs = [...corpus.values()].map((doc) => ({ id: doc.id, text: documentText(doc) }));
  return Bm25Index.build(docs, options, progress);
}

/**
 * Retrieves the top `k` for each query (all queries, or only `onlyQueries`),
 * as a run usable by `evaluateRun`.
 */
export function retrieveAll(
  index: Bm25Index,
  queries: BeirCollection["queries"],
  k: number,
  options: { onlyQueries?: Iterable<string>; progress?: Progress } = {},
): Map<string, Bm25Hit[]> {
  const wanted = options.onlyQueries ? new Set(options.onlyQueries) : undefined;
  const list: { id: string; text: string }[] = [];
  for (const [id, text] of queries) if (!wanted || wanted.has(id)) list.push({ id, text });
  const hits = index.searchAll(list, k, options.progress);
  return hits;
}

/** Formats BM25 hits as a TREC run (rank from 1, score with full precision). */
export function formatBm25Run(hits: ReadonlyMap<string, readonly Bm25Hit[]>, tag: string): string {
  const out: string[] = [];
  for (const [qid, list] of hits) {
    list.forEach((hit, i) => out.push(`${qid} Q0 ${hit.docid} ${i + 1} ${hit.score} ${tag}`));
  }
  return out.length ? out.join("\n") + "\n" : "";
}
