/**
 * Cross-encoder reranker: the decoder reads `[BOS] query [EOS] passage
 * [EOS]` (the tokenizer's EOS doubles as the separator, since Llama-style
 * vocabularies have no `[SEP]`), the final hidden state of the last real
 * token goes through a learned linear head `score.weight` `[1, hidden]`
 * (HF `LlamaForSequenceClassification`'s name and shape, no bias), and the
 * resulting score is trained together with the model.
 *
 * Training groups: per query 1 positive + `group_size − 1` negatives from
 * `BinaryDataset` (negatives per `negative_source`, as in the bi-encoder);
 * with `negative_source: qrels` and a graded loss (`listnet`, `ranknet`,
 * `lambdarank`) the groups come from `MultiLevelDataset` with the qrels
 * grades as labels. Loss (`training.loss`): `infonce` (default: softmax
 * cross-entropy over each query's own group, temperature
 * `training.temperature`), `listnet`, `ranknet`, `lambdarank` (listwise /
 * pairwise on the group) or `binary_cross_entropy` (pointwise, label > 0 is
 * relevant).
 *
 * Evaluation reranks, for every query of `eval_qrels_path`, all its
 * candidates in the run `run_path` (e.g. BM25 top-20 from `deno task
 * bm25 --k 20`) and reports nDCG@10, recall@100, MRR and MAP, plus the same
 * metrics of the first-stage order as `first_stage_<metric>`.
 *
 * With `model.use_lora` the adapter and the head train: the adapter's
 * dropout is seeded from the trainer's RNG per micro-batch (a resumed run
 * draws the same masks) and off during evaluation; checkpoints then hold the
 * adapter in peft's format (`adapter_config.json` +
 * `adapter_model.safetensors`) and `model.safetensors` holds the head alone
 * (without LoRA it holds the model and the head). A micro-batch's uploaded
 * inputs stay alive until the next micro-batch, evaluation or dispose, since
 * backward re-reads them when `training.gradient_checkpointing` is on.
 *
 * @module
 */

import { expand, matmul, noGrad, parameter, reshape, type Tensor, tidy } from "@irforge/tensor";
import type { CausalLM, ModelInputs } from "@irforge/model";
import { disposeInputs, poolHidden, uploadInputs } from "@irforge/model";
import {
  BinaryDataset,
  type BinaryDatasetOptions,
  collate,
  type CollatedBatch,
  type Document,
  encodeText,
  type GradedItem,
  type MaterializedQrels,
  materializeQrels,
  MultiLevelDataset,
  passageText,
  readRun,
  type Run,
  type TextTokenizer,
} from "@irforge/data";
import { createLoss, type Loss } from "@irforge/losses";
import { type CandidateList, evaluateReranker, evaluateRun } from "@irforge/eval";
import type { Config } from "../config/schema.ts";
import type { EvalOutcome, TrainingTask } from "../loop.ts";
import { Rng } from "../rng.ts";
import type { LoadedModel } from "./model_setup.ts";
import {
  countTokens,
  microBatchIndices,
  type ModelSession,
  withModelSession,
} from "./model_session.ts";
import { evaluationToOutcome, metricName, retrievalEvalOptions } from "./metrics.ts";
import { poolingBatch, tokenBatchOf } from "./batches.ts";
import { readRetrievalData, type RetrievalData } from "./retrieval_data.ts";
import { evalProgress } from "../eval_progress.ts";
import type { Collective } from "../distributed/collective.ts";
import { evalCommunicator, shardedScorer } from "./sharded_eval.ts";
import { readMinedNegatives } from "./mined_negatives.ts";

/** Name of the scoring head in `model.safetensors` (HF sequence classification). */
export const SCORE_HEAD = "score.weight";

/** Losses the cross-encoder trains with. */
export const CROSSENCODER_LOSSES = [
  "infonce",
  "listnet",
  "ranknet",
  "lambdarank",
  "binary_cross_entropy",
] as const;

/** Token ids of one (query, passage) pair: `[BOS] query [EOS] passage [EOS]`. */
export function pairIds(
  tokenizer: TextTokenizer,
  query: string,
  passage: string,
  queryMaxLen: number,
  passageMaxLen: number,
): number[] {
  const q = encodeText(tokenizer, query, {
    maxLength: queryMaxLen,
    prependBos: true,
    appendEos: true,
  });
  const p = encodeText(tokenizer, passage, { maxLength: passageMaxLen, appendEos: true });
  return [...q, ...p];
}

/**
 * Scores collated pairs: last real token's final hidden state · head → `[rows]`.
 * The uploaded inputs are freed on return, unless `live` is given: then they
 * are pushed onto it and the caller frees them (`disposeInputs`) after
 * backward, which re-reads them when layers are checkpointed.
 */
export function scorePairs(
  model: CausalLM,
  head: Tensor,
  batch: CollatedBatch,
  live?: ModelInputs[],
): Tensor {
  const inputs = uploadInputs(tokenBatchOf(batch), model.config.slidingWindow);
  live?.push(inputs);
  try {
    const { hidden } = model.forward(inputs, { output: "hidden" });
    return tidy(() => {
      const last = poolHidden(hidden!, poolingBatch(batch), "last", false);
      return reshape(matmul(last, head, { transB: true }), [batch.rows]);
    });
  } finally {
    if (!live) disposeInputs(inputs);
  }
}

/** The candidate lists of `run` for the queries of `qrels` (every run entry kept). */
export function rerankLists(
  run: Run,
  data: RetrievalData,
): { lists: CandidateList[]; firstStage: Map<string, { docid: string; score: number }[]> } {
  const queries = data.evalQueries ?? data.queries;
  const lists: CandidateList[] = [];
  const firstStage = new Map<string, { docid: string; score: number }[]>();
  for (const qid of data.evalQrels?.keys() ?? []) {
    const entries = run.queries.get(qid);
    const query = queries.get(qid);
    if (!entries || query === undefined) continue;
    const candidates = entries.map((e) => {
      const doc = data.corpus.get(e.docid);
      if (!doc) {
        throw new Error(`run: document "${e.docid}" of query "${qid}" is not in the corpus`);
      }
      return { docid: e.docid, text: passageText(doc) };
    });
    lists.push({ qid, query, candidates });
    firstStage.set(qid, entries.map((e) => ({ docid: e.docid, score: e.score })));
  }
  return { lists, firstStage };
}

/**
 * The cross-encoder's evaluation: reranks every evaluation query's
 * candidates of `run` with `score` and evaluates the result and the
 * first-stage order (`first_stage_<metric>`) like trec_eval at
 * `data.eval_relevance_level`, over the full evaluation qrels.
 */
export async function evaluateCrossencoder(
  run: Run,
  data: RetrievalData,
  config: Config,
  score: (query: string, passages: readonly string[]) => Promise<number[]>,
  log: (line: string) => void,
  distributed?: Collective,
): Promise<EvalOutcome> {
  const { lists, firstStage } = rerankLists(run, data);
  if (lists.length === 0) {
    throw new Error("evaluation: no query of eval_qrels_path has candidates in run_path");
  }
  // Each rank scores its share of the queries; every rank gets all scores.
  const rerank = await shardedScorer(
    evalCommunicator(distributed),
    lists,
    (list) => score(list.query, list.candidates.map((doc) => doc.text)),
    (total) => evalProgress("queries", total, log),
  );
  const options = retrievalEvalOptions(config);
  const result = await evaluateReranker(lists, rerank, data.evalQrels!, {
    ...options,
    tag: "crossencoder",
  });
  const outcome = evaluationToOutcome(
    result.evaluation,
    result.run,
    "crossencoder",
    options.relevanceLevel,
  );
  for (const [name, value] of evaluateRun(data.evalQrels!, firstStage, options).summary) {
    outcome.metrics[`first_stage_${metricName(name)}`] = value;
  }
  return outcome;
}

interface Groups {
  length: number;
  get(index: number, epoch: number): { query: string; passages: Document[]; labels: number[] };
}

function trainingGroups(
  config: Config,
  data: RetrievalData,
  run: Run | null,
  mined: MaterializedQrels | null,
): Groups {
  const d = config.data;
  const lossName = config.training.loss ?? "infonce";
  const minScore = d.min_score ?? 1;
  const source = (range: { minScore?: number; maxScore?: number }) =>
    materializeQrels([{
      qrels: data.trainQrels,
      corpus: data.corpus,
      queries: data.queries,
      ...range,
      name: d.qrels_path ?? d.data_path ?? "qrels",
    }]);
  if (d.negative_source === "qrels" && ["listnet", "ranknet", "lambdarank"].includes(lossName)) {
    const graded = new MultiLevelDataset({
      source: source({}),
      groupSize: d.group_size,
      passageSelectionStrategy: d.passage_selection_strategy === "random"
        ? "random"
        : "most_relevant",
      seed: d.dataset_seed,
    });
    return { length: graded.length, get: (i, e): GradedItem => graded.get(i, e) };
  }
  if (d.negative_source === "in_batch") {
    throw new Error(
      'data.negative_source "in_batch": a cross-encoder scores pairs, it has no ' +
        "in-batch negatives; use random, run or qrels",
    );
  }
  const options: BinaryDatasetOptions = {
    positives: source({ minScore, maxScore: d.max_score ?? undefined }),
    groupSize: d.group_size,
    seed: d.dataset_seed,
    randomCorpus: data.corpus,
  };
  if (d.negative_source === "qrels") options.negatives = source({ maxScore: minScore });
  if (d.negative_source === "mined") options.negatives = mined!;
  if (d.negative_source === "run") {
    if (!run) throw new Error('data.negative_source "run" needs data.run_path');
    options.runNegatives = { run, corpus: data.corpus };
  }
  return new BinaryDataset(options);
}

function crossencoderLoss(config: Config): Loss {
  const name = config.training.loss ?? "infonce";
  if (!(CROSSENCODER_LOSSES as readonly string[]).includes(name)) {
    throw new Error(
      `training.loss "${name}" does not apply to the cross-encoder (use one of ${
        CROSSENCODER_LOSSES.join(", ")
      })`,
    );
  }
  const extra = config.training.loss_options;
  if (name === "infonce") {
    // Each query's own group only: the scores of other queries' passages are not comparable pairs.
    return createLoss("infonce", {
      temperature: config.training.temperature,
      ...extra,
      in_batch_negatives: false,
    });
  }
  return createLoss(name, extra);
}

/**
 * The loss of `Q` groups of `G` pair scores (`flat`, `[Q·G]`, group-major)
 * with host `labels`: `infonce` is softmax cross-entropy over each group,
 * `binary_cross_entropy` binarises labels (> 0 relevant), the others get
 * the graded labels as they are.
 */
export function groupLoss(
  loss: Loss,
  flat: Tensor,
  Q: number,
  G: number,
  labels: readonly number[],
): ReturnType<Loss["compute"]> {
  if (loss.name === "infonce") {
    // infonce reads [Q, Q·G]; without in-batch negatives only each row's own block counts.
    const scores = reshape(expand(reshape(flat, [Q, 1, G]), [Q, Q, G]), [Q, Q * G]);
    return loss.compute({ scores, labels });
  }
  const scores = reshape(flat, [Q, G]);
  if (loss.name === "binary_cross_entropy") {
    return loss.compute({ scores, labels: labels.map((l) => l > 0 ? 1 : 0) });
  }
  return loss.compute({ scores, labels });
}

/** Options of {@link crossencoderTask}. */
export interface CrossencoderOptions {
  /** Data already read (default: read from the config). */
  data?: RetrievalData;
  /** Progress lines of evaluation (default console.log). */
  log?: (line: string) => void;
  /** Data-parallel ranks: evaluation scores a share of the queries per rank. */
  distributed?: Collective;
}

/** A built cross-encoder task with its model and head. */
export type CrossencoderTask = TrainingTask & {
  /** The model, tokenizer, trainable model parameters and LoRA adapter (if any). */
  loaded: LoadedModel;
  model: CausalLM;
  tokenizer: TextTokenizer;
  /** The scoring head `score.weight` `[1, hidden]`. */
  head: Tensor;
  /** Scores of (query, passage) pairs as evaluation computes them (adapter dropout off). */
  score(query: string, passages: readonly string[]): Promise<number[]>;
  dispose(): void;
};

/** Builds the cross-encoder training task of `config`. */
export async function crossencoderTask(
  config: Config,
  options: CrossencoderOptions = {},
): Promise<CrossencoderTask> {
  const data = options.data ?? await readRetrievalData(config);
  const log = options.log ?? ((line: string) => console.log(line));
  const d = config.data;
  const run = d.run_path ? await readRun(d.run_path) : null;
  const mined = d.negative_source === "mined"
    ? await readMinedNegatives(d.mined_negatives_path!, data)
    : null;
  const groups = trainingGroups(config, data, run, mined);
  if (groups.length === 0) throw new Error("data: no training query has a judged document");
  const loss = crossencoderLoss(config);
  // Loaded last, so that a data or loss error above leaves nothing on the GPU.
  return await withModelSession(
    config,
    (session) =>
      crossencoderTaskOf(config, session, data, run, groups, loss, log, options.distributed),
  );
}

function crossencoderTaskOf(
  config: Config,
  session: ModelSession,
  data: RetrievalData,
  run: Run | null,
  groups: Groups,
  loss: Loss,
  log: (line: string) => void,
  distributed?: Collective,
): CrossencoderTask {
  const d = config.data, t = config.training;
  const { loaded, model, tokenizer, trainable } = session;
  const hiddenSize = model.config.hiddenSize;
  // HF initialises the classification head like every linear layer: N(0, 0.02).
  const headRng = Rng.seeded(t.seed + 1);
  const head = parameter(
    Float32Array.from({ length: hiddenSize }, () => headRng.normal(0, 0.02)),
    [1, hiddenSize],
  );
  const parameters = new Map([...trainable, [SCORE_HEAD, head]]);
  // model.safetensors holds the head beside the adapter, or after the model's weights.
  const headFile = new Map([[SCORE_HEAD, head]]);
  const batchSize = t.per_device_train_batch_size;
  const batchesPerEpoch = Math.ceil(groups.length / batchSize);
  const padToMultipleOf = d.pad_to_multiple_of ?? 8;

  const collatePairs = (pairs: { query: string; passage: string }[]) =>
    collate(
      pairs.map(({ query, passage }) => {
        const ids = pairIds(tokenizer, query, passage, d.query_max_len, d.passage_max_len);
        return { inputIds: ids, labels: ids.map(() => -100) };
      }),
      { padId: tokenizer.padId, padToMultipleOf },
    );

  const scorer = async (query: string, passages: readonly string[]) => {
    const scores: number[] = [];
    for (let start = 0; start < passages.length; start += t.per_device_eval_batch_size) {
      const batch = collatePairs(
        passages.slice(start, start + t.per_device_eval_batch_size)
          .map((passage) => ({ query, passage })),
      );
      const out = noGrad(() => scorePairs(model, head, batch));
      scores.push(...await out.toArray().finally(() => out.dispose()));
    }
    return scores;
  };

  const evaluateNow = (): Promise<EvalOutcome> => {
    if (!run) throw new Error("crossencoder evaluation needs data.run_path (the candidates)");
    return evaluateCrossencoder(run, data, config, scorer, log, distributed);
  };
  const evaluate = (): Promise<EvalOutcome> => session.inEvalMode(evaluateNow);

  return {
    recipe: "crossencoder",
    loaded,
    model,
    tokenizer,
    head,
    parameters,
    batchesPerEpoch,
    score: (query, passages) => session.inEvalMode(() => scorer(query, passages)),
    async microBatch(epoch, index, rng) {
      session.startMicroBatch(rng);
      const items = microBatchIndices(groups.length, d.dataset_seed, epoch, index, batchSize)
        .map((i) => groups.get(i, epoch));
      const Q = items.length, G = d.group_size;
      const batch = collatePairs(
        items.flatMap((it) =>
          it.passages.map((p) => ({ query: it.query, passage: passageText(p) }))
        ),
      );
      const labels = items.flatMap((it) => it.labels);
      const flat = scorePairs(model, head, batch, session.live);
      const out = await groupLoss(loss, flat, Q, G, labels);
      const tokens = countTokens(batch.attentionMask);
      return { loss: out.loss, parts: out.parts, metrics: out.metrics, tokens };
    },
    evaluate: data.evalQrels && run ? evaluate : undefined,
    saveWeights: (dir) => session.saveWeights(dir, headFile),
    loadWeights: (dir) => session.loadWeights(dir, headFile),
    dispose: () => {
      head.dispose();
      session.dispose();
    },
  };
}
