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
