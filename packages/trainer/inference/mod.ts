/**
 * `@irforge/trainer/inference`: use a trained model — rerank a first-stage
 * run, encode a corpus into a dense index, search it, and mine hard
 * negatives — from the library (the `deno task rerank | encode | search |
 * mine` commands are thin wrappers in `packages/trainer/cli/`).
 *
 * @example Rerank a BM25 run with a trained cross-encoder
 * ```ts ignore
 * import { readBeirCorpus, readBeirQueries, readRun } from "@irforge/data";
 * import { formatScoredRun } from "@irforge/eval";
 * import { loadReranker, rerankRun } from "@irforge/trainer/inference";
 *
 * const reranker = await loadReranker("runs/crossencoder-scifact");
 * const reranked = await rerankRun(reranker, {
 *   run: await readRun("bm25.txt"),
 *   corpus: await readBeirCorpus("corpus.jsonl"),
 *   queries: await readBeirQueries("queries.jsonl"),
 * }, { depth: 20 });
 * await Deno.writeTextFile("reranked.txt", formatScoredRun(reranked, "crossencoder"));
 * reranker.dispose();
 * ```
 *
 * @example Encode, search, mine
 * ```ts ignore
 * import { readBeirCorpus, readBeirQrels, readBeirQueries } from "@irforge/data";
 * import {
 *   encodeCorpus, loadTrainedModel, retrieveDenseForMining, searchIndex, selectNegatives,
 * } from "@irforge/trainer/inference";
 *
 * const model = await loadTrainedModel("runs/biencoder-scifact");
 * await encodeCorpus(model, await readBeirCorpus("corpus.jsonl"), "index/");
 * const queries = await readBeirQueries("queries.jsonl");
 * const hits = await searchIndex(model, "index/", queries, { k: 1000 });
 * const qrels = await readBeirQrels("qrels/train.tsv");
 * const retrieved = await retrieveDenseForMining(model, "index/", queries, qrels, 200);
 * const negatives = selectNegatives(retrieved, qrels, { skipTop: 3, sample: 30, seed: 42 });
 * model.dispose();
 * ```
 *
 * @module
 */

export * from "./trained_model.ts";
export * from "./rerank.ts";
export * from "./dense_index.ts";
export * from "./encode.ts";
export * from "./search.ts";
export * from "./mine.ts";
export * from "./output_file.ts";
