/**
 * @irforge/eval: IR metrics identical to trec_eval, BM25, and model-agnostic
 * evaluators for the trainer. Pure TypeScript; needs no GPU.
 *
 * @module
 */

export * from "./ranking.ts";
export * from "./judged_ranking.ts";
export * from "./measures.ts";
export * from "./measure_spec.ts";
export * from "./evaluate.ts";
export * from "./stop_words.ts";
export * from "./analyzer.ts";
export * from "./top_k.ts";
export * from "./bm25.ts";
export * from "./bm25_collection.ts";
export * from "./listwise.ts";
export * from "./rerank_evaluator.ts";
export * from "./retrieval_evaluator.ts";
export * from "./qa_metrics.ts";
