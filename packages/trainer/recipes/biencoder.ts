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

import { noGrad, type Tensor, tidy } from "@irforge/tensor";
import type { CausalLM, ModelInputs, PoolingMode } from "@irforge/model";
import { disposeInputs, poolHidden, uploadInputs } from "@irforge/model";
import {
  BinaryDataset,
  type BinaryDatasetOptions,
  collate,
  type CollatedBatch,
  collateRetrieval,
  encodeText,
  materializeQrels,
  passageText,
  readRun,
  type TextTokenizer,
} from "@irforge/data";
import { createLoss, type Loss, lossInfo } from "@irforge/losses";
import { evaluateRetriever } from "@irforge/eval";
import type { Config } from "../config/schema.ts";
import type { EvalOutcome, TrainingTask } from "../loop.ts";
import type { LoadedModel } from "./model_setup.ts";
import { countTokens, microBatchIndices, withModelSession } from "./model_session.ts";
import { evaluationToOutcome, retrievalEvalOptions } from "./metrics.ts";
import { exactTopKGpu } from "./top_k.ts";
import type { Collective } from "../distributed/collective.ts";
import { allGatherRows, shardedEncoder } from "../distributed/gather.ts";
import { readMinedNegatives } from "./mined_negatives.ts";
import { phasedEvalProgress } from "../eval_progress.ts";
import { poolingBatch, tokenBatchOf } from "./batches.ts";
import { readRetrievalData, type RetrievalData } from "./retrieval_data.ts";

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
  /** How hidden states become one vector (mean, last, cls). */
  pooling: PoolingMode;
  /** L2-normalise the embeddings. */
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
  return await withModelSession(config, (session): BiencoderTask => {
    const { loaded, model, tokenizer } = session;

    const encoder = (maxLength: number) => (texts: readonly string[]): Promise<Float32Array> =>
      embedTexts(model, tokenizer, texts, {
        maxLength,
        pooling,
        normalize,
        padToMultipleOf: collateOptions.padToMultipleOf,
      });

    const comm = options.distributed && options.distributed.size > 1 ? options.distributed : null;
    const evalEncoder = (maxLength: number) =>
      comm ? shardedEncoder(comm, encoder(maxLength)) : encoder(maxLength);

    const evaluate = (): Promise<EvalOutcome> =>
      session.inEvalMode(async () => {
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
      parameters: session.trainable,
      batchesPerEpoch,
      gradientReduction: comm ? "sum" : "mean",
      embed: (texts, maxLength) => session.inEvalMode(() => encoder(maxLength)(texts)),
      async microBatch(epoch, index, rng) {
        session.startMicroBatch(rng);
        const items = microBatchIndices(dataset.length, d.dataset_seed, epoch, index, batchSize)
          .map((i) => dataset.get(i, epoch));
        const batch = collateRetrieval(items, tokenizer, collateOptions);
        const q = embedBatch(model, batch.queries, pooling, normalize, session.live);
        const p = embedBatch(model, batch.passages, pooling, normalize, session.live);
        // Across ranks the loss is the global batch's; each rank's gradient reaches its own rows.
        const gathered = comm ? await allGatherRows(comm, [q, p], batch.labels) : null;
        const out = await loss.compute({
          queryEmbeddings: gathered ? gathered.tensors[0]! : q,
          passageEmbeddings: gathered ? gathered.tensors[1]! : p,
          labels: gathered ? concatArrays(gathered.extras) : batch.labels,
        });
        const tokens = countTokens(batch.queries.attentionMask) +
          countTokens(batch.passages.attentionMask);
        return { loss: out.loss, parts: out.parts, metrics: out.metrics, tokens };
      },
      evaluate: data.evalQrels ? evaluate : undefined,
      saveWeights: (dir) => session.saveWeights(dir),
      loadWeights: (dir) => session.loadWeights(dir),
      dispose: () => session.dispose(),
    };
  });
}

function concatArrays(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
}
