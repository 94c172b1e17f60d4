/**
 * Trove-style bi-encoder: queries and passages are embedded by the same
 * decoder (hidden states pooled mean/last/cls, optionally L2-normalised),
 * trained with InfoNCE (or KL) over in-batch and hard negatives on BEIR
 * data, and evaluated by exact top-k retrieval over the corpus (GPU
 * scores, `exactTopKGpu`) with
 * trec_eval-exact metrics.
 *
 * Data: `queries_path`, `corpus_path`, `qrels_path` (or `data_path`, a BEIR
 * folder with `qrels/train.tsv`); negatives per `negative_source`: `random`
 * corpus documents, `run` (hard negatives from `run_path`), `qrels` (judged
 * grades below `min_score`, default 1), or `in_batch` only (`group_size` 1).
 * Evaluation: `eval_qrels_path` (queries from `eval_data_path` or the same
 * queries file) against the whole corpus.
 *
 * With `use_lora` only the adapter trains (its dropout is off during
 * evaluation and seeded from the trainer's RNG per micro-batch, so a
 * resumed run draws the same masks); checkpoints then hold the adapter in
 * peft's format (`adapter_config.json` + `adapter_model.safetensors`)
 * instead of `model.safetensors`.
 *
 * @module
 */

import { join } from "node:path";
import { noGrad, type Tensor, tidy } from "@irforge/tensor";
import type { CausalLM, ModelInputs, PoolingBatch, PoolingMode, TokenBatch } from "@irforge/model";
import { disposeInputs, poolHidden, uploadInputs } from "@irforge/model";
import {
  BinaryDataset,
  type BinaryDatasetOptions,
  collate,
  type CollatedBatch,
  collateRetrieval,
  type Corpus,
  encodeText,
  materializeQrels,
  passageText,
  type Qrels,
  type Queries,
  readBeirCorpus,
  readBeirQrels,
  readBeirQueries,
  readRun,
  type TextTokenizer,
} from "@irforge/data";
import { createLoss, type Loss, lossInfo } from "@irforge/losses";
import { evaluateRetriever } from "@irforge/eval";
import type { Config } from "../config/schema.ts";
import { epochPermutation, type EvalOutcome, type TrainingTask } from "../loop.ts";
import {
  disposeLoaded,
  loadCheckpointWeights,
  type LoadedModel,
  loadModel,
  saveCheckpointWeights,
  seedAdapterDropout,
  setAdapterTraining,
} from "./model_setup.ts";
import { evaluationToOutcome, retrievalEvalOptions } from "./metrics.ts";
import { exactTopKGpu } from "./top_k.ts";
import type { Collective } from "../distributed/collective.ts";
import { allGatherRows, shardedEncoder } from "../distributed/gather.ts";
import { readMinedNegatives } from "./mined_negatives.ts";
import { evalCapNote, firstEvalQueries } from "./eval_samples.ts";
import { phasedEvalProgress } from "../eval_progress.ts";

/** Token batch of collated rows (what `uploadInputs` takes). */
export function tokenBatchOf(batch: CollatedBatch): TokenBatch {
  return {
    batch: batch.rows,
    length: batch.length,
    inputIds: batch.inputIds,
    positionIds: batch.position,
    segment: batch.segment,
    block: batch.block,
    kind: batch.kind,
  };
}

/** Which tokens of a collated batch are real, for `poolHidden`. */
export function poolingBatch(batch: CollatedBatch): PoolingBatch {
  return { batch: batch.rows, length: batch.length, attentionMask: batch.attentionMask };
}

/**
 * Embeds collated rows: forward to the final hidden state, then pooling.
 * The uploaded inputs are freed on return, unless `live` is given: then they
 * are pushed onto it and the caller frees them (`disposeInputs`) after
 * backward, which re-reads them when layers are checkpointed.
 */
export function embedBatch(
  model: CausalLM,
  batch: CollatedBatch,
  pooling: PoolingMode,
  normalize: boolean,
  live?: ModelInputs[],
): Tensor {
  const inputs = uploadInputs(tokenBatchOf(batch), model.config.slidingWindow);
  live?.push(inputs);
  try {
    const { hidden } = model.forward(inputs, { output: "hidden" });
    return tidy(() => poolHidden(hidden!, poolingBatch(batch), pooling, normalize));
  } finally {
    if (!live) disposeInputs(inputs);
  }
}

/** How {@link embedTexts} tokenizes and pools. */
export interface EmbedTextsOptions {
  /** Tokens per text (BOS and EOS included). */
  maxLength: number;
  pooling: PoolingMode;
  normalize: boolean;
  /** Padded length is a multiple of this (default 8). */
  padToMultipleOf?: number;
}

/**
 * Embeddings `[texts, hidden]` (row-major) of `texts`, each encoded with BOS
 * and EOS, without gradients. The model runs in whatever mode it is in (a
 * LoRA adapter's dropout is the caller's business).
 */
export async function embedTexts(
  model: CausalLM,
  tokenizer: TextTokenizer,
  texts: readonly string[],
  options: EmbedTextsOptions,
): Promise<Float32Array> {
  const { maxLength, pooling, normalize } = options;
  const batch = collate(
    texts.map((text) => {
      const ids = encodeText(tokenizer, text, { maxLength, appendEos: true, prependBos: true });
      return { inputIds: ids, labels: ids.map(() => -100) };
    }),
    { padId: tokenizer.padId, padToMultipleOf: options.padToMultipleOf ?? 8 },
  );
  const embeddings = noGrad(() => tidy(() => embedBatch(model, batch, pooling, normalize)));
  try {
    return await embeddings.toArray() as Float32Array;
  } finally {
    embeddings.dispose();
  }
}

/** The BEIR data a bi-encoder trains and evaluates on. */
export interface RetrievalData {
  corpus: Corpus;
  queries: Queries;
  trainQrels: Qrels;
  evalQueries: Queries | null;
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

/** Creates the configured ranking loss, passing `temperature` when the loss takes one. */
export function configuredLoss(config: Config, fallback: string): Loss {
  const name = config.training.loss ?? fallback;
  const options: Record<string, unknown> = {};
  if ("temperature" in lossInfo(name).options) options.temperature = config.training.temperature;
  return createLoss(name, { ...options, ...config.training.loss_options });
}

/** Options of {@link biencoderTask}. */
export interface BiencoderOptions {
  /** Data already read (default: read from the config). */
  data?: RetrievalData;
  /** Progress lines of evaluation (default console.log). */
  log?: (line: string) => void;
  /**
   * Data-parallel ranks: in-batch negatives come from every rank (Trove's
   * cross-device negatives) and evaluation encodes a share per rank.
   */
  distributed?: Collective;
}

/** A built bi-encoder task with its model. */
export type BiencoderTask = TrainingTask & {
  /** The model, tokenizer, trainable parameters and LoRA adapter (if any). */
  loaded: LoadedModel;
  model: CausalLM;
  tokenizer: TextTokenizer;
  /**
   * Embeddings `[texts, hidden]` of `texts` truncated to `maxLength` tokens,
   * as evaluation computes them (adapter dropout off).
   */
  embed(texts: readonly string[], maxLength: number): Promise<Float32Array>;
  dispose(): void;
};

/** Builds the bi-encoder training task of `config`. */
export async function biencoderTask(
  config: Config,
  options: BiencoderOptions = {},
): Promise<BiencoderTask> {
  const data = options.data ?? await readRetrievalData(config);
  const log = options.log ?? ((line: string) => console.log(line));
  const d = config.data, t = config.training;
  const pooling = config.model.pooling;
  const normalize = config.model.normalize;
  const minScore = d.min_score ?? 1;
  const positives = materializeQrels([{
    qrels: data.trainQrels,
    corpus: data.corpus,
    queries: data.queries,
    minScore,
    maxScore: d.max_score ?? undefined,
    name: d.qrels_path ?? d.data_path ?? "qrels",
  }]);
  const datasetOptions: BinaryDatasetOptions = {
    positives,
    groupSize: d.negative_source === "in_batch" ? 1 : d.group_size,
    seed: d.dataset_seed,
  };
  if (d.negative_source === "random") datasetOptions.randomCorpus = data.corpus;
  if (d.negative_source === "qrels") {
    datasetOptions.negatives = materializeQrels([{
      qrels: data.trainQrels,
      corpus: data.corpus,
      queries: data.queries,
      maxScore: minScore,
    }]);
    datasetOptions.randomCorpus = data.corpus;
  }
  if (d.negative_source === "run") {
    if (!d.run_path) throw new Error('data.negative_source "run" needs data.run_path');
    datasetOptions.runNegatives = { run: await readRun(d.run_path), corpus: data.corpus };
    datasetOptions.randomCorpus = data.corpus;
  }
  if (d.negative_source === "mined") {
    datasetOptions.negatives = await readMinedNegatives(d.mined_negatives_path!, data);
    datasetOptions.randomCorpus = data.corpus;
  }
  const dataset = new BinaryDataset(datasetOptions);
  if (dataset.length === 0) throw new Error("data: no training query has a positive document");
  const batchSize = t.per_device_train_batch_size;
  const batchesPerEpoch = Math.ceil(dataset.length / batchSize);
  const loss = configuredLoss(config, "infonce");
  const collateOptions = {
    queryMaxLen: d.query_max_len,
    passageMaxLen: d.passage_max_len,
    padToMultipleOf: d.pad_to_multiple_of ?? 8,
  };
  // Loaded last, so that a data or loss error above leaves nothing on the GPU.
  const loaded = await loadModel(config);
  const { model, tokenizer, trainable } = loaded;

  // Inputs live until the next micro-batch (or evaluation): backward runs after microBatch
  // returns and re-reads them when layers are checkpointed.
  const liveInputs: ModelInputs[] = [];
  const release = () => {
    for (const inputs of liveInputs.splice(0)) disposeInputs(inputs);
  };

  const encoder = (maxLength: number) => (texts: readonly string[]): Promise<Float32Array> =>
    embedTexts(model, tokenizer, texts, {
      maxLength,
      pooling,
      normalize,
      padToMultipleOf: collateOptions.padToMultipleOf,
    });

  // Evaluation mode (no adapter dropout) for the duration of `fn`.
  const inEvalMode = async <T>(fn: () => Promise<T>): Promise<T> => {
    release();
    setAdapterTraining(loaded, false);
    try {
      return await fn();
    } finally {
      setAdapterTraining(loaded, true);
    }
  };

  const comm = options.distributed && options.distributed.size > 1 ? options.distributed : null;
  const evalEncoder = (maxLength: number) =>
    comm ? shardedEncoder(comm, encoder(maxLength)) : encoder(maxLength);

  const evaluate = (): Promise<EvalOutcome> =>
    inEvalMode(async () => {
      if (!data.evalQrels || !data.evalQueries) throw new Error("no evaluation data");
      const documents = new Map<string, string>();
      for (const [id, doc] of data.corpus) documents.set(id, passageText(doc));
      const result = await evaluateRetriever({
        queries: data.evalQueries,
        documents,
        qrels: data.evalQrels,
        encodeQueries: evalEncoder(d.query_max_len),
        encodeDocuments: evalEncoder(d.passage_max_len),
        search: exactTopKGpu,
      }, {
        k: 100,
        batchSize: t.per_device_eval_batch_size,
        ...retrievalEvalOptions(config),
        progress: phasedEvalProgress(log),
      });
      return evaluationToOutcome(
        result.evaluation,
        result.run,
        "biencoder",
        d.eval_relevance_level,
      );
    });

  return {
    recipe: "biencoder",
    loaded,
    model,
    tokenizer,
    parameters: trainable,
    batchesPerEpoch,
    gradientReduction: comm ? "sum" : "mean",
    embed: (texts, maxLength) => inEvalMode(() => encoder(maxLength)(texts)),
    async microBatch(epoch, index, rng) {
      release();
      seedAdapterDropout(loaded, rng);
      const order = epochPermutation(dataset.length, d.dataset_seed, epoch);
      const items = order.slice(index * batchSize, (index + 1) * batchSize)
        .map((i) => dataset.get(i, epoch));
      const batch = collateRetrieval(items, tokenizer, collateOptions);
      const q = embedBatch(model, batch.queries, pooling, normalize, liveInputs);
      const p = embedBatch(model, batch.passages, pooling, normalize, liveInputs);
      // Across ranks the loss is the global batch's; each rank's gradient reaches its own rows.
      const gathered = comm ? await allGatherRows(comm, [q, p], batch.labels) : null;
      const out = await loss.compute({
        queryEmbeddings: gathered ? gathered.tensors[0]! : q,
        passageEmbeddings: gathered ? gathered.tensors[1]! : p,
        labels: gathered ? concatArrays(gathered.extras) : batch.labels,
      });
      const tokens = sumOf(batch.queries.attentionMask) + sumOf(batch.passages.attentionMask);
      return { loss: out.loss, parts: out.parts, metrics: out.metrics, tokens };
    },
    evaluate: data.evalQrels ? evaluate : undefined,
    saveWeights: (dir) => saveCheckpointWeights(dir, loaded),
    loadWeights: (dir) => loadCheckpointWeights(dir, loaded),
    dispose: () => {
      release();
      disposeLoaded(loaded);
    },
  };
}

function concatArrays(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
}

function sumOf(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s;
}
