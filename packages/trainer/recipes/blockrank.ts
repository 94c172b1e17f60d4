/**
 * BlockRank in-context ranking (Gupta et al. 2025, google-deepmind
 * BlockRank): the prompt holds the query and `num_documents` candidate
 * documents as blocks; with `use_blockrank` the attention is structured
 * (documents see only themselves and the instruction block; the final query
 * block sees everything), otherwise plain causal over the same prompt.
 *
 * Training: LM loss on the answer tokens (`[3]</s>`) plus, with
 * `use_aux_loss`, BlockRank's auxiliary attention InfoNCE
 * (`blockrank_aux`) on layer `aux_layer_idx`'s (null: the middle layer)
 * attention of the answer's first token and the token before it, weighted
 * by `aux_loss_weight`, temperature `aux_temperature`. Logged as
 * `train/lm_loss`, `train/aux_loss`, `train/aux_accuracy`.
 *
 * Data: BlockRank JSONL (`data_path`), or rank_llm candidate lists
 * (`data_path`, e.g. TREC DL19 `retrieve_results_dl19.json`) with
 * `qrels_path`: a candidate graded `≥ min_score` (default 1) is relevant.
 * Candidate lists become one prompt per relevant document (BlockRank's
 * MS MARCO data has one positive per query): that document plus the
 * query's non-relevant candidates; the query's other relevant documents are
 * left out so they are never taught as negatives.
 *
 * Evaluation: the first `num_documents` candidates of each held-out query
 * (`train_test_split` with `dataset_seed`, else `eval_data_path`) are
 * ranked by attention at the auxiliary layer, scored exactly as the
 * auxiliary loss scores them (softmax over all document tokens per head and
 * row, a document's probability mass, mean over heads and the two rows);
 * the remaining candidates follow in first-stage order. Metrics via
 * `@irforge/eval` (trec_eval semantics) against `eval_qrels_path` (else
 * `qrels_path`, else the JSONL `answer_ids`), with the first-stage order's
 * own `first_stage_ndcg@10` on the same lists for comparison, and
 * `accuracy`: the share of queries whose top document is relevant.
 * `blockrank_eval: decode` (or `both`, then as `decode_*` metrics) ranks as
 * BlockRank's `eval_decode.py` does instead: greedy decoding of at most
 * `generation_max_length` tokens after the answer's `[` under plain causal
 * attention, the first standalone number is the predicted document
 * (`parse_predicted_id`); `accuracy` counts predictions that are relevant,
 * `invalid_rate` answers without a number in range. The predicted document
 * ranks first, the others follow in first-stage order (BlockRank scores them
 * all 0 and leaves the order to pytrec_eval's tie-breaking).
 *
 * @module
 */

import { indexSelect, noGrad, reshape, scale, Tensor, tidy } from "@irforge/tensor";
import { CausalLM, disposeInputs, generate, type TokenBatch, uploadInputs } from "@irforge/model";
import {
  BlockRankDataset,
  type BlockRankItem,
  blockRankMistralPrompt,
  type BlockRankOptions,
  type BlockRankPrompt,
  collate,
  type CollatedBatch,
  type Document,
  layoutBlockRank,
  type Qrels,
  type RankingExample,
  rankingExamplesFromCandidates,
  readCandidates,
  readQrels,
  readRankingExamples,
  type TextTokenizer,
  TokenKind,
} from "@irforge/data";
import { evalCapNote, firstEvalSamples } from "./eval_samples.ts";
import { evaluateRun, type ScoredDocument } from "@irforge/eval";
import { createLoss, type Loss } from "@irforge/losses";
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
import { evalProgress } from "../eval_progress.ts";
import type { Collective } from "../distributed/collective.ts";
import { evalCommunicator, shardedMap } from "./sharded_eval.ts";

/**
 * A short prompt for small `max_block_length` (tiny models and tokenizers
 * with few pieces): used, with a log line, when BlockRank's Mistral prompt
 * does not fit the blocks.
 */
export const blockRankCompactPrompt: BlockRankPrompt = {
  ...blockRankMistralPrompt,
  userPrefix: "",
  userSuffix: "",
  instruction: "Find the document that answers the query.",
  closing: "",
  answerPrefix: "\nAnswer: ",
};

/** Training and evaluation examples of a BlockRank run. */
export interface BlockRankData {
  /** Training prompts' examples (one positive each for candidate lists). */
  train: RankingExample[];
  /** Evaluation examples: documents in first-stage order (answers unused). */
  eval: RankingExample[];
  /** Graded judgments of the evaluation queries, or `null` without evaluation data. */
  evalQrels: Qrels | null;
  /** What reading decided (queries without a relevant candidate, split sizes). */
  notes: string[];
}

function isCandidateSource(path: string, qrelsPath: string | null): boolean {
  return qrelsPath !== null || path.endsWith(".json");
}

async function readSource(
  path: string,
  qrelsPath: string | null,
  minGrade: number,
  key: string,
): Promise<{ examples: RankingExample[]; qrels: Qrels; unanswered: RankingExample[] }> {
  if (!isCandidateSource(path, qrelsPath)) {
    const examples = await readRankingExamples(path);
    const qrels: Qrels = new Map();
    for (const e of examples) qrels.set(e.queryId, new Map(e.answerIds.map((id) => [id, 1])));
    return { examples, qrels, unanswered: [] };
  }
  if (qrelsPath === null) {
    throw new Error(
      `${key}: ${path} looks like rank_llm candidate lists (.json), which need data.qrels_path`,
    );
  }
  const lists = await readCandidates(path);
  const qrels = await readQrels(qrelsPath);
  const { examples, unanswered } = rankingExamplesFromCandidates(lists, qrels, minGrade);
  const missing = new Set(unanswered);
  const unansweredExamples = lists.filter((l) => missing.has(l.qid)).map((l) => ({
    queryId: l.qid,
    query: l.query,
    documents: l.hits.map((h) => ({ id: h.docid, title: "", text: h.content })),
    answerIds: [],
  }));
  return { examples, qrels, unanswered: unansweredExamples };
}

/**
 * One example per relevant document: it plus the non-relevant candidates
 * (first-stage order kept), the other relevant ones left out.
 */
export function singlePositiveExamples(examples: readonly RankingExample[]): RankingExample[] {
  const out: RankingExample[] = [];
  for (const e of examples) {
    const answers = new Set(e.answerIds);
    const negatives = e.documents.filter((d) => !answers.has(d.id));
    for (const positive of e.documents.filter((d) => answers.has(d.id))) {
      out.push({
        queryId: e.queryId,
        query: e.query,
        documents: [positive, ...negatives],
        answerIds: [positive.id],
      });
    }
  }
  return out;
}

/** Query ids held out by `train_test_split` (seeded by `dataset_seed`). */
export function heldOutQueries(
  ids: readonly string[],
  fraction: number,
  seed: number,
): Set<string> {
  if (fraction <= 0) return new Set();
  const count = Math.max(1, Math.round(ids.length * fraction));
  const order = Rng.seeded(seed).shuffle([...ids].sort());
  return new Set(order.slice(0, count));
}

/** Reads the training and evaluation data named by `config.data`. */
export async function readBlockRankData(config: Config): Promise<BlockRankData> {
  const d = config.data;
  if (d.data_path === null) throw new Error("data.data_path is required for blockrank");
  const minGrade = d.min_score ?? 1;
  const notes: string[] = [];
  const source = await readSource(d.data_path, d.qrels_path, minGrade, "data.data_path");
  const candidates = isCandidateSource(d.data_path, d.qrels_path);
  if (source.unanswered.length > 0) {
    notes.push(
      `${source.unanswered.length} queries of ${d.data_path} have no candidate graded ≥ ${minGrade} ` +
        `(not trained on): ${source.unanswered.map((e) => e.queryId).join(", ")}`,
    );
  }
  let trainExamples = source.examples;
  let evalExamples: RankingExample[] = [];
  let evalQrels: Qrels | null = null;
  if (d.train_test_split > 0) {
    const all = [...source.examples, ...source.unanswered];
    const held = heldOutQueries(all.map((e) => e.queryId), d.train_test_split, d.dataset_seed);
    trainExamples = source.examples.filter((e) => !held.has(e.queryId));
    evalExamples = all.filter((e) => held.has(e.queryId));
    evalQrels = d.eval_qrels_path ? await readQrels(d.eval_qrels_path) : source.qrels;
    notes.push(
      `train_test_split ${d.train_test_split}: ${trainExamples.length} training queries, ` +
        `${evalExamples.length} held out (${[...held].sort().join(", ")})`,
    );
  } else if (d.eval_data_path !== null) {
    const evalSource = await readSource(
      d.eval_data_path,
      d.eval_qrels_path ?? d.qrels_path,
      minGrade,
      "data.eval_data_path",
    );
    evalExamples = [...evalSource.examples, ...evalSource.unanswered];
    evalQrels = d.eval_qrels_path ? await readQrels(d.eval_qrels_path) : evalSource.qrels;
    if (d.eval_data_path === d.data_path) {
      notes.push("evaluating on the training queries (set data.train_test_split to hold some out)");
    }
  }
  const train = candidates ? singlePositiveExamples(trainExamples) : trainExamples;
  if (train.length === 0) throw new Error(`${d.data_path}: no training example has a positive`);
  const evalKept = firstEvalSamples(evalExamples, d.max_eval_samples);
  const capNote = evalCapNote(evalKept.length, evalExamples.length, "queries");
  if (capNote) notes.push(capNote);
  return { train, eval: evalKept, evalQrels, notes };
}

/**
 * The prompt that fits `options.maxBlockLength`: BlockRank's Mistral prompt,
 * else {@link blockRankCompactPrompt}. Probed with a worst case: an empty
 * query, `numDocuments` documents, the last `maxPositives` of them relevant.
 */
export function fittingPrompt(
  tokenizer: TextTokenizer,
  options: BlockRankOptions,
  maxPositives: number,
): { prompt: BlockRankPrompt; compact: boolean } {
  const n = Math.max(1, options.numDocuments);
  const documents: Document[] = Array.from({ length: n }, (_, i) => ({
    id: `d${i}`,
    title: "",
    text: "",
  }));
  const answerIds = documents.slice(n - Math.min(n, Math.max(1, maxPositives))).map((d) => d.id);
  const probe = (prompt: BlockRankPrompt) =>
    layoutBlockRank(
      tokenizer,
      { queryId: "probe", query: "", documents, answerIds },
      documents,
      { ...options, prompt, mode: "train" },
    );
  try {
    probe(blockRankMistralPrompt);
    return { prompt: blockRankMistralPrompt, compact: false };
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
  }
  try {
    probe(blockRankCompactPrompt);
    return { prompt: blockRankCompactPrompt, compact: true };
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new Error(
      `data.max_block_length ${options.maxBlockLength} is too short even for the compact prompt ` +
        `(${e.message}); raise it`,
    );
  }
}

/**
 * The token batch of collated BlockRank prompts. With `structured` the
 * block/kind metadata gives BlockRank's mask; without it every real token is
 * global (plain causal) and positions count the real tokens 0, 1, 2, …
 */
export function blockRankTokenBatch(batch: CollatedBatch, structured: boolean): TokenBatch {
  const base: TokenBatch = {
    batch: batch.rows,
    length: batch.length,
    inputIds: batch.inputIds,
    positionIds: batch.position,
    segment: batch.segment,
    block: batch.block,
    kind: batch.kind,
  };
  if (structured) return base;
  const positionIds = new Int32Array(batch.rows * batch.length);
  const kind = new Int32Array(batch.rows * batch.length).fill(TokenKind.global);
  for (let r = 0; r < batch.rows; r++) {
    let next = 0;
    for (let t = 0; t < batch.length; t++) {
      const i = r * batch.length + t;
      if (batch.segment[i]! >= 0) positionIds[i] = next++;
    }
  }
  return { ...base, positionIds, block: new Int32Array(batch.rows * batch.length), kind };
}

/**
 * Document scores from attention, exactly as `blockrank_aux` scores them:
 * for each head and row, softmax over all document tokens (masked −inf
 * entries get 0); a document's score is its tokens' probability mass,
 * averaged over heads and rows. `scores` is `[B, H, R, T]` row-major.
 * Computed in float64 on the host.
 */
export function attentionDocumentScores(
  scores: ArrayLike<number>,
  shape: readonly [number, number, number, number],
  documentSpans: ReadonlyArray<ReadonlyArray<readonly [number, number]>>,
): number[][] {
  const [B, H, R, T] = shape;
  if (documentSpans.length !== B) {
    throw new Error(`attention scores of ${B} items, document spans of ${documentSpans.length}`);
  }
  return documentSpans.map((spans, b) => {
    const out = new Array<number>(spans.length).fill(0);
    for (let h = 0; h < H; h++) {
      for (let r = 0; r < R; r++) {
        const row = ((b * H + h) * R + r) * T;
        let max = -Infinity;
        for (const [s, e] of spans) {
          for (let t = s; t < e; t++) max = Math.max(max, scores[row + t]!);
        }
        if (max === -Infinity) continue; // no visible document token in this row
        let total = 0;
        const mass = spans.map(([s, e]) => {
          let m = 0;
          for (let t = s; t < e; t++) m += Math.exp(scores[row + t]! - max);
          total += m;
          return m;
        });
        mass.forEach((m, d) => out[d] = out[d]! + m / total / (H * R));
      }
    }
    return out;
  });
}

/**
 * BlockRank's `parse_predicted_id`: the first standalone number of the
 * generated text (a 0-based prompt index), or null when there is none.
 */
export function parsePredictedIndex(text: string): number | null {
  const match = /\b\d+\b/.exec(text);
  return match ? Number(match[0]) : null;
}

/**
 * A decoded answer as a run over `documents`: the predicted document first,
 * the others in first-stage order; null (no valid prediction) keeps the
 * first-stage order.
 */
export function decodedRun(
  documents: readonly Document[],
  predicted: number | null,
): ScoredDocument[] {
  return documents.map((doc, i) => ({ docid: doc.id, score: i === predicted ? 1 : -(i + 1) }));
}

/** The first-stage order as a scored run (rank 1 scores highest). */
function firstStageRun(examples: readonly RankingExample[]): Map<string, ScoredDocument[]> {
  const run = new Map<string, ScoredDocument[]>();
  for (const e of examples) {
    run.set(e.queryId, e.documents.map((d, i) => ({ docid: d.id, score: -(i + 1) })));
  }
  return run;
}

/** Options of {@link blockrankTask}. */
export interface BlockRankTaskOptions {
  /** Data already read (default: read from the config). */
  data?: BlockRankData;
  /** Progress and notes (default console.log). */
  log?: (line: string) => void;
  /** Data-parallel ranks: evaluation works through a share per rank (`sharded_eval.ts`). */
  distributed?: Collective;
}

/** A built BlockRank task with its model. */
export type BlockRankTask = TrainingTask & {
  loaded: LoadedModel;
  /** Layer whose attention the auxiliary loss and evaluation read. */
  auxLayer: number;
  /** Scores the candidates of `examples` (first `num_documents` each) by attention. */
  scoreExamples(examples: readonly RankingExample[]): Promise<number[][]>;
  /** Greedy decoded prediction (prompt index or null) per example (`blockrank_eval: decode`). */
  decodeExamples(examples: readonly RankingExample[]): Promise<(number | null)[]>;
  dispose(): void;
};

/** Builds the BlockRank training task of `config`. */
export async function blockrankTask(
  config: Config,
  options: BlockRankTaskOptions = {},
): Promise<BlockRankTask> {
  const log = options.log ?? ((line: string) => console.log(line));
  const t = config.training;
  if (t.loss !== null && t.loss !== "cross_entropy") {
    throw new Error(
      `training.loss: blockrank trains with the LM loss (+ blockrank_aux), not "${t.loss}"`,
    );
  }
  const data = options.data ?? await readBlockRankData(config);
  for (const note of data.notes) log(note);
  return await withModelSession(
    config,
    (session) => blockrankTaskOf(config, session, data, log, options.distributed),
  );
}

function blockrankTaskOf(
  config: Config,
  session: ModelSession,
  data: BlockRankData,
  log: (line: string) => void,
  distributed?: Collective,
): BlockRankTask {
  const d = config.data, t = config.training, m = config.model;
  const { loaded, model, tokenizer } = session;
  const layers = model.config.numLayers;
  const auxLayer = t.aux_layer_idx ?? Math.floor(layers / 2);
  if (auxLayer >= layers) {
    throw new Error(`training.aux_layer_idx: ${auxLayer} but the model has ${layers} layers`);
  }
  const maxPositives = data.train.reduce((n, e) => Math.max(n, e.answerIds.length), 1);
  const layout: BlockRankOptions = {
    numDocuments: d.num_documents,
    maxBlockLength: d.max_block_length,
    seed: d.dataset_seed,
  };
  const { prompt, compact } = fittingPrompt(tokenizer, layout, maxPositives);
  if (compact) {
    log(
      `data.max_block_length ${d.max_block_length} cannot hold BlockRank's Mistral prompt ` +
        `with this tokenizer; using the compact prompt`,
    );
  }
  const trainLayout: BlockRankOptions = { ...layout, prompt, mode: "train" };
  const evalLayout: BlockRankOptions = { ...layout, prompt, mode: "eval" };
  const structured = m.use_blockrank;
  const loss: Loss = t.use_aux_loss
    ? createLoss("combined", {
      weights: { lm: 1, blockrank_aux: t.aux_loss_weight },
      losses: { blockrank_aux: { temperature: t.aux_temperature } },
    })
    : createLoss("lm");
  const batchSize = t.per_device_train_batch_size;
  const batchesPerEpoch = Math.ceil(data.train.length / batchSize);
  const pad = { padId: tokenizer.padId, padToMultipleOf: d.pad_to_multiple_of ?? 16 };
  const window = model.config.slidingWindow;

  const scoreItems = async (items: BlockRankItem[]): Promise<number[][]> => {
    const batch = collate(items, pad);
    const inputs = uploadInputs(blockRankTokenBatch(batch, structured), window);
    try {
      const rows = items.map((it) => [it.beforeAnswerIndex, it.answerIndex]);
      const scores = noGrad(() =>
        model.forward(inputs, {
          attentionScores: { layer: auxLayer, rows },
          stopAfterScores: true,
        }).attentionScores!
      );
      const values = await scores.toArray();
      const shape = scores.shape as [number, number, number, number];
      scores.dispose();
      return attentionDocumentScores(values, shape, items.map((it) => it.documentSpans));
    } finally {
      disposeInputs(inputs);
    }
  };

  const scoreExamples = async (examples: readonly RankingExample[]): Promise<number[][]> => {
    return await session.inEvalMode(async () => {
      const out: number[][] = [];
      const size = t.per_device_eval_batch_size;
      const progress = evalProgress("queries scored", examples.length, log);
      for (let i = 0; i < examples.length; i += size) {
        const items = examples.slice(i, i + size).map((e) => {
          const documents = e.documents.slice(0, d.num_documents);
          return layoutBlockRank(tokenizer, e, documents, evalLayout);
        });
        out.push(...await scoreItems(items));
        progress(out.length);
      }
      return out;
    });
  };

  /**
   * Greedy answers of `examples` under plain causal attention (BlockRank's
   * eval_decode): the predicted prompt index per example, null when the
   * answer holds no number in range.
   */
  const decodeExamples = async (
    examples: readonly RankingExample[],
  ): Promise<(number | null)[]> => {
    const decode = tokenizer.decode?.bind(tokenizer);
    if (!decode) {
      throw new Error(
        `training.blockrank_eval: ${t.blockrank_eval} needs a tokenizer that decodes`,
      );
    }
    const stopTokens = tokenizer.eosId !== undefined ? [tokenizer.eosId] : undefined;
    return await session.inEvalMode(async () => {
      const out: (number | null)[] = [];
      const progress = evalProgress("answers decoded", examples.length, log);
      for (const e of examples) {
        const documents = e.documents.slice(0, d.num_documents);
        const item = layoutBlockRank(tokenizer, e, documents, evalLayout);
        const prompt = item.inputIds.filter((_, i) => item.segment[i]! >= 0);
        const produced = await generate(model, prompt, {
          maxNewTokens: t.generation_max_length,
          stopTokens,
        });
        const index = parsePredictedIndex(decode(produced));
        out.push(index !== null && index < documents.length ? index : null);
        progress(out.length);
      }
      return out;
    });
  };

  const evalOptions = retrievalEvalOptions(config);
  const evalComm = evalCommunicator(distributed);
  const firstStage = data.evalQrels
    ? evaluateRun(data.evalQrels, firstStageRun(data.eval), evalOptions)
    : null;
  const relevant = (e: RankingExample, index: number | null) =>
    index !== null && e.answerIds.includes(e.documents[index]!.id) ? 1 : 0;

  const attentionOutcome = async (): Promise<EvalOutcome> => {
    // Each rank scores its share (whole evaluation batches); every rank gets all scores.
    const scores = await shardedMap(evalComm, data.eval, scoreExamples, {
      unit: t.per_device_eval_batch_size,
    });
    const run = new Map<string, ScoredDocument[]>();
    let correct = 0;
    data.eval.forEach((e, q) => {
      const reranked = scores[q]!.map((s, i) => ({ docid: e.documents[i]!.id, score: 1000 + s }));
      // Candidates beyond the prompt keep their first-stage order below the reranked ones.
      const rest = e.documents.slice(reranked.length).map((doc, i) => ({
        docid: doc.id,
        score: -(i + 1),
      }));
      run.set(e.queryId, [...reranked, ...rest]);
      const top = scores[q]!.reduce((best, s, i, all) => (s > all[best]! ? i : best), 0);
      correct += relevant(e, scores[q]!.length > 0 ? top : null);
    });
    const evaluation = evaluateRun(data.evalQrels!, run, evalOptions);
    const outcome = evaluationToOutcome(evaluation, run, "blockrank", d.eval_relevance_level);
    outcome.metrics.accuracy = correct / data.eval.length;
    return outcome;
  };

  const decodeOutcome = async (): Promise<EvalOutcome> => {
    const predicted = await shardedMap(evalComm, data.eval, decodeExamples);
    const run = new Map<string, ScoredDocument[]>();
    let correct = 0;
    data.eval.forEach((e, q) => {
      run.set(e.queryId, decodedRun(e.documents, predicted[q]!));
      correct += relevant(e, predicted[q]!);
    });
    const evaluation = evaluateRun(data.evalQrels!, run, evalOptions);
    const outcome = evaluationToOutcome(
      evaluation,
      run,
      "blockrank-decode",
      d.eval_relevance_level,
    );
    outcome.metrics.accuracy = correct / data.eval.length;
    outcome.metrics.invalid_rate = predicted.filter((p) => p === null).length / data.eval.length;
    return outcome;
  };

  const evaluate = async (): Promise<EvalOutcome> => {
    const started = performance.now();
    const mode = t.blockrank_eval;
    const outcome = mode === "decode" ? await decodeOutcome() : await attentionOutcome();
    if (mode === "both") {
      const decoded = await decodeOutcome();
      for (const [name, value] of Object.entries(decoded.metrics)) {
        outcome.metrics[`decode_${name}`] = value;
      }
      for (const [qid, row] of Object.entries(decoded.perQuery ?? {})) {
        const target = (outcome.perQuery ??= {})[qid] ??= {};
        for (const [name, value] of Object.entries(row)) target[`decode_${name}`] = value;
      }
    }
    for (const [name, value] of firstStage!.summary) {
      outcome.metrics[`first_stage_${metricName(name)}`] = value;
    }
    log(
      `eval (${mode}): ${data.eval.length} queries × ${d.num_documents} documents in ${
        ((performance.now() - started) / 1000).toFixed(1)
      }s`,
    );
    return outcome;
  };

  const dataset = new BlockRankDataset(data.train, tokenizer, trainLayout);

  return {
    recipe: "blockrank",
    loaded,
    auxLayer,
    scoreExamples,
    decodeExamples,
    parameters: loaded.trainable,
    batchesPerEpoch,
    async microBatch(epoch, index, rng) {
      session.startMicroBatch(rng);
      const items = microBatchIndices(data.train.length, d.dataset_seed, epoch, index, batchSize)
        .map((i) => dataset.get(i, epoch));
      const batch = collate(items, pad);
      const inputs = session.keep(uploadInputs(blockRankTokenBatch(batch, structured), window));
      const rows = items.map((it) => [it.beforeAnswerIndex, it.answerIndex]);
      const out = model.forward(inputs, {
        output: "hidden",
        attentionScores: t.use_aux_loss ? { layer: auxLayer, rows } : undefined,
      });
      // The LM head runs only where a label is (the answer tokens), not on the whole prompt.
      const targets = CausalLM.shiftedTargets(batch.labels, batch.rows, batch.length);
      const labeled: number[] = [];
      targets.forEach((target, i) => target !== -100 && labeled.push(i));
      const logits = tidy(() => {
        const flat = reshape(out.hidden!, [batch.rows * batch.length, model.config.hiddenSize]);
        const index = Tensor.fromArray(Int32Array.from(labeled), [labeled.length], "i32");
        return model.lmHead(indexSelect(flat, 0, index));
      });
      out.hidden!.dispose();
      const result = await loss.compute({
        logits,
        targets: labeled.map((i) => targets[i]!),
        attentionScores: out.attentionScores,
        documentSpans: items.map((it) => it.documentSpans),
        positives: items.map((it) => it.positives),
      });
      logits.dispose();
      out.attentionScores?.dispose();
      const parts: Record<string, Tensor> = {};
      const metrics: Record<string, number | Tensor> = {};
      if (t.use_aux_loss) {
        parts.lm_loss = result.parts!.lm!;
        parts.aux_loss = result.parts!.blockrank_aux!;
        metrics.aux_accuracy = result.metrics!["blockrank_aux/attention_accuracy"]!;
      } else {
        parts.lm_loss = noGrad(() => scale(result.loss, 1));
      }
      const tokens = countTokens(batch.attentionMask);
      return { loss: result.loss, parts, metrics, tokens };
    },
    evaluate: data.evalQrels && data.eval.length > 0 ? evaluate : undefined,
    saveWeights: (dir) => session.saveWeights(dir),
    loadWeights: (dir) => session.loadWeights(dir),
    dispose: () => session.dispose(),
  };
}
