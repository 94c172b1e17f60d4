/**
 * @irforge/eval: IR metrics identical to trec_eval, BM25, and model-agnostic
 * evaluators for the trainer. Pure TypeScript; needs no GPU.
 *
 * @module
 */

export { compareTrecEval, rankTrecEval, type ScoredDocument } from "./ranking.ts";
export { type JudgedRanking, type JudgeOptions, judgeRanking } from "./judged_ranking.ts";
export {
  type Aggregation,
  averagePrecision,
  averagePrecisionAt,
  dcgAt,
  idealDcgAt,
  type MeasureDefinition,
  MEASURES,
  ndcgAt,
  precisionAt,
  recallAt,
  reciprocalRank,
  rPrecision,
} from "./measures.ts";
export {
  MEASURE_NICKNAMES,
  measureNames,
  type MeasureSelection,
  MeasureSpecError,
  parseMeasureSpecs,
  type RequestedMeasure,
} from "./measure_spec.ts";
export {
  type EvaluateOptions,
  evaluateRun,
  type Evaluation,
  type FormatOptions,
  formatTrecEval,
  type RunInput,
} from "./evaluate.ts";
export { LUCENE_ENGLISH_STOP_WORDS } from "./stop_words.ts";
export { Analyzer, type AnalyzerOptions, TOKEN_SEPARATOR } from "./analyzer.ts";
export { type Scored, topK } from "./top_k.ts";
export {
  type Bm25Document,
  type Bm25Hit,
  Bm25Index,
  type Bm25Options,
  type Progress,
} from "./bm25.ts";
export { documentText, formatBm25Run, indexCorpus, retrieveAll } from "./bm25_collection.ts";
export { listwiseOutputToScores, parsePermutation, permutationToScores } from "./listwise.ts";
export {
  type Candidate,
  type CandidateList,
  evaluateReranker,
  formatScoredRun,
  type RerankOptions,
  type RerankResult,
  type Scorer,
} from "./rerank_evaluator.ts";
export {
  type Encoder,
  evaluateRetriever,
  exactTopKCpu,
  type RetrievalOptions,
  type RetrievalResult,
  type RetrievalTask,
  type Searcher,
} from "./retrieval_evaluator.ts";
export {
  answerContainment,
  answerTokenRecall,
  normalizeAnswer,
  type QaScores,
  scoreAnswers,
} from "./qa_metrics.ts";
