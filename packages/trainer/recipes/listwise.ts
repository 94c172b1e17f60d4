/**
 * RankLLM-style listwise reranker training. Candidates (rank_llm JSON) and
 * qrels become prompts with `[1] … [n]` passages and the target permutation
 * `[3] > [1] > …` (grade descending, ties in first-stage order) over
 * sliding windows (`window_size`, `stride`), with `@irforge/data` listwise.
 *
 * `training.objective`:
 * - `generation`: the LM loss on the permutation tokens (RankZephyr/RankVicuna);
 * - `ranking` (FIRST-style): a listwise ranking loss (`listnet`, default, or
 *   `lambdarank` via `training.loss`) over the logits of the identifier tokens
 *   `1`…`n` at the position that predicts the first identifier of the answer,
 *   against the passages' qrels grades;
 * - `combined`: `combined` of `@irforge/losses` over both, weights from
 *   `training.loss_options.weights` (default `{lm: 1, <ranking loss>: 1}`).
 *
 * `training.noisy_embedding_alpha` adds NEFTune noise during training only.
 *
 * Passages are cut to `data.passage_max_len` tokens and queries to
 * `data.query_max_len` (through the tokenizer), so prompts stay short; a
 * prompt longer than `max_seq_length` is an error naming the query, since
 * cutting it would remove the target.
 *
 * Evaluation (`eval_data_path` + `eval_qrels_path`, or `train_test_split`
 * of the training queries): each held-out query's candidates are reranked
 * with rank_llm's sliding window (from the end of the list to the front);
 * a window is ordered by greedy generation parsed with
 * `listwiseOutputToScores` (objective `generation`) or by the first-token
 * identifier logits (`ranking`, `combined`). The final order becomes a TREC
 * run scored with trec_eval semantics; `first_stage_ndcg@10` is the input
 * order's nDCG@10 on the same queries.
 *
 * With `model.use_lora` only the adapter trains: its dropout is seeded from
 * the trainer's RNG per micro-batch (a resumed run draws the same masks) and
 * off during evaluation and `rerank`; checkpoints then hold the adapter in
 * peft's format (`adapter_config.json` + `adapter_model.safetensors`)
 * instead of `model.safetensors`. A micro-batch's uploaded inputs stay alive
 * until the next micro-batch, evaluation or dispose, since backward re-reads
 * them when `training.gradient_checkpointing` is on.
 *
 * @module
 */

import { indexSelect, noGrad, reshape, Tensor, tidy } from "@irforge/tensor";
import { CausalLM, disposeInputs, generate, uploadInputs } from "@irforge/model";
import {
  type CandidateList,
  collate,
  type CollatedBatch,
  identifierTokenIds,
  IGNORE_INDEX,
  type ListwiseExample,
  listwiseExamples,
  type Qrels,
  readCandidates,
  readQrels,
  slidingWindows,
  type TextTokenizer,
  tokenizeListwise,
} from "@irforge/data";
import {
  createLoss,
  type Loss,
  type LossInputs,
  rankLlmRankingLoss,
  resolveLossName,
} from "@irforge/losses";
import {
  evaluateReranker,
  evaluateRun,
  listwiseOutputToScores,
  type ScoredDocument,
} from "@irforge/eval";
import type { Config } from "../config/schema.ts";
import type { EvalOutcome, TrainingTask } from "../loop.ts";
import type { LoadedModel } from "./model_setup.ts";
import type { Rng } from "../rng.ts";
import {
  countTargets,
  countTokens,
  microBatchIndices,
  type ModelSession,
  withModelSession,
} from "./model_session.ts";
import { tokenBatchOf } from "./batches.ts";
import { noisyEmbeddings } from "./neftune.ts";
import { splitHeldOut } from "./held_out.ts";
import { evalCapNote, firstEvalSamples } from "./eval_samples.ts";
import { evaluationToOutcome, metricName, retrievalEvalOptions } from "./metrics.ts";
import { evalProgress } from "../eval_progress.ts";
import type { Collective } from "../distributed/collective.ts";
import { evalCommunicator, shardedScorer } from "./sharded_eval.ts";
import { combinedListwiseOptions, rankLlmCombinedLoss } from "./listwise_combined.ts";
import {
  conversationItems,
  type RankLlmConversation,
  readRankLlmConversations,
} from "./rankllm_conversations.ts";

/** Throws unless the `n` identifiers start with distinct tokens (FIRST scores one token each). */
export function checkDistinctIdentifiers(tokenizer: TextTokenizer, n: number): number[] {
  const ids = identifierTokenIds(tokenizer, n);
  const first = new Map<number, number>();
  ids.forEach((id, i) => {
    const earlier = first.get(id);
    if (earlier !== undefined) {
      throw new Error(
        `training.objective ranking/combined scores the first token of each identifier, but ` +
          `[${earlier + 1}] and [${i + 1}] start with the same token (${id}) under this ` +
          `tokenizer; set data.window_size to 9 or less`,
      );
    }
    first.set(id, i);
  });
  return ids;
}

/** A tokenised listwise example. */
export interface ListwiseItem {
  /** The example (query, window, docids, grades, target ranking). */
  example: ListwiseExample;
  /** Tokens; labels on the assistant permutation (+EOS) only. */
  inputIds: number[];
  /** Labels (−100 outside the target). */
  labels: number[];
  /** Index of the first target token. */
  targetStart: number;
  /** Position whose logits predict the first identifier token (FIRST). */
  scorePosition: number;
}

/** Cuts `text` to `maxTokens` tokens through the tokenizer (unchanged when it fits). */
export function truncateTokens(tokenizer: TextTokenizer, text: string, maxTokens: number): string {
  const ids = tokenizer.encode(text);
  if (ids.length <= maxTokens) return text;
  if (!tokenizer.decode) {
    return text.split(/\s+/).filter((w) => w).slice(0, maxTokens).join(" ");
  }
  return tokenizer.decode(ids.slice(0, maxTokens));
}

/** Candidate lists with queries and passages cut to the configured token lengths. */
export function shortenLists(
  lists: readonly CandidateList[],
  tokenizer: TextTokenizer,
  queryMaxLen: number,
  passageMaxLen: number,
): CandidateList[] {
  return lists.map((list) => ({
    ...list,
    query: truncateTokens(tokenizer, list.query, queryMaxLen),
    hits: list.hits.map((h) => ({
      ...h,
      content: truncateTokens(tokenizer, h.content, passageMaxLen),
    })),
  }));
}

/** Tokenises `example`; `maxSeqLength` overflow is an error naming the query and window. */
export function tokenizeListwiseItem(
  tokenizer: TextTokenizer,
  example: ListwiseExample,
  maxSeqLength: number,
): ListwiseItem {
  const tokens = tokenizeListwise(tokenizer, example);
  if (tokens.inputIds.length > maxSeqLength) {
    throw new Error(
      `listwise: query "${example.qid}" window [${example.window.join(", ")}) needs ` +
        `${tokens.inputIds.length} tokens, more than data.max_seq_length ${maxSeqLength}; ` +
        `lower data.passage_max_len or data.window_size, or raise max_seq_length`,
    );
  }
  return {
    example,
    inputIds: tokens.inputIds,
    labels: tokens.labels,
    targetStart: tokens.firstTargetIndex,
    scorePosition: tokens.scorePosition,
  };
}

/** The prompt of `item` that ends just before the answer (for generation). */
export function generationPrompt(item: ListwiseItem): number[] {
  return item.inputIds.slice(0, item.targetStart);
}

/** The prompt that ends where the first identifier is predicted (for first-token scoring). */
export function scoringPrompt(item: ListwiseItem): number[] {
  return item.inputIds.slice(0, item.scorePosition + 1);
}

/**
 * Identifier logits `[B, nMax]` at each row's score position: the hidden
 * state there through the LM head, then the identifier token columns.
 */
export function identifierLogits(
  model: CausalLM,
  hidden: Tensor,
  scorePositions: readonly number[],
  identifierIds: readonly number[],
): Tensor {
  return tidy(() => {
    const [B, T, H] = hidden.shape as [number, number, number];
    const rows = Int32Array.from(scorePositions.map((p, b) => b * T + p));
    const picked = indexSelect(
      reshape(hidden, [B * T, H]),
      0,
      tensorOfInts(rows),
    );
    return indexSelect(model.lmHead(picked), 1, tensorOfInts(Int32Array.from(identifierIds)));
  });
}

function tensorOfInts(values: Int32Array): Tensor {
  return Tensor.fromArray(values, [values.length], "i32");
}

/** The losses of an objective. */
export interface ListwiseLosses {
  /** Objective. */
  objective: "generation" | "ranking" | "combined";
  /** Loss over whatever inputs the objective feeds it. */
  loss: Loss;
  /** Name of the ranking loss (`listnet`, `lambdarank`, …) when ranking is trained. */
  rankingLoss: string | null;
}

/**
 * Creates the loss of `config.training.objective`. With `conversations`
 * (RankLLM's own training file) the ranking loss is upstream's
 * `compute_ranking_loss` (`rankLlmRankingLoss` of `@irforge/losses`):
 * targets are the model's own identifier logits reassigned by the
 * permutation, not the grades.
 */
export function listwiseLosses(
  config: Config,
  options: { conversations?: boolean } = {},
): ListwiseLosses {
  const t = config.training;
  const objective = t.objective;
  if (objective === "generation") {
    const name = t.loss ?? "lm";
    if (resolveLossName(name) !== "lm") {
      throw new Error(
        `training.loss "${name}": objective generation trains with the LM loss; ` +
          `use objective ranking or combined for a ranking loss`,
      );
    }
    return { objective, loss: createLoss("lm", t.loss_options), rankingLoss: null };
  }
  // An unknown name goes on to createLoss, which names the closest loss.
  const rankingLoss = resolveLossName(t.loss ?? "listnet") ?? t.loss!;
  if (rankingLoss === "lm") {
    throw new Error(`training.loss "${t.loss}": objective ${objective} needs a ranking loss`);
  }
  if (options.conversations) {
    const loss = objective === "ranking"
      ? rankLlmRankingLoss(rankingLoss, t.loss_options)
      : rankLlmCombinedLoss(rankingLoss, t.loss_options);
    return { objective, loss, rankingLoss };
  }
  if (objective === "ranking") {
    return { objective, loss: createLoss(rankingLoss, t.loss_options), rankingLoss };
  }
  return {
    objective,
    loss: createLoss("combined", combinedListwiseOptions(rankingLoss, t.loss_options)),
    rankingLoss,
  };
}

/** Data of the listwise recipe. */
export interface ListwiseData {
  /** Training candidate lists. */
  train: CandidateList[];
  /** Held-out candidate lists (empty: no evaluation). */
  eval: CandidateList[];
  /** Qrels of the training queries. */
  qrels: Qrels;
  /** Qrels of the held-out queries. */
  evalQrels: Qrels;
  /** RankLLM's own training file, when `data_path` is one (`rankllm_conversations.ts`). */
  conversations?: RankLlmConversation[];
}

/** Reads candidates and qrels named in `config.data`. */
export async function readListwiseData(config: Config): Promise<ListwiseData> {
  const d = config.data;
  if (!d.data_path) throw new Error("data.data_path (rank_llm candidates) is required");
  const conversations = await readRankLlmConversations(d.data_path);
  if (conversations) {
    return { train: [], eval: [], qrels: new Map(), evalQrels: new Map(), conversations };
  }
  if (!d.qrels_path) throw new Error("data.qrels_path is required for the listwise recipe");
  const lists = await readCandidates(d.data_path);
  const qrels = await readQrels(d.qrels_path);
  if (d.eval_data_path) {
    const evalQrels = d.eval_qrels_path ? await readQrels(d.eval_qrels_path) : qrels;
    return { train: lists, eval: await readCandidates(d.eval_data_path), qrels, evalQrels };
  }
  const [train, held] = splitHeldOut(lists, d.train_test_split, d.dataset_seed);
  return { train, eval: held, qrels, evalQrels: qrels };
}

/** Options of {@link listwiseTask}. */
export interface ListwiseTaskOptions {
  /** Data already read (default: from the config). */
  data?: ListwiseData;
  /** Progress lines (default console.log). */
  log?: (line: string) => void;
  /** Data-parallel ranks: evaluation works through a share per rank (`sharded_eval.ts`). */
  distributed?: Collective;
}

/** A built listwise task with its model. */
export type ListwiseTask = TrainingTask & {
  /** The model, tokenizer, trainable parameters and LoRA adapter (if any). */
  loaded: LoadedModel;
  model: CausalLM;
  tokenizer: TextTokenizer;
  /** The tokenized training windows. */
  items: ListwiseItem[];
  /** Token id of each window identifier ([1], [2], …), in order. */
  identifierIds: number[];
  /** rank_llm's sliding-window reranking of `list` (adapter dropout off): a score per hit. */
  rerank(list: CandidateList): Promise<number[]>;
  dispose(): void;
};

/** Builds the listwise training task of `config`. */
export async function listwiseTask(
  config: Config,
  options: ListwiseTaskOptions = {},
): Promise<ListwiseTask> {
  const log = options.log ?? ((line: string) => console.log(line));
  const data = options.data ?? await readListwiseData(config);
  const losses = listwiseLosses(config, { conversations: data.conversations !== undefined });
  return await withModelSession(
    config,
    (session) => listwiseTaskOf(config, data, losses, session, log, options.distributed),
  );
}

function listwiseTaskOf(
  config: Config,
  data: ListwiseData,
  losses: ListwiseLosses,
  session: ModelSession,
  log: (line: string) => void,
  distributed?: Collective,
): ListwiseTask {
  const d = config.data, t = config.training;
  const { loaded, model, tokenizer, trainable } = session;
  const windowSize = d.window_size, stride = d.stride;
  const fromConversations = data.conversations
    ? conversationItems(tokenizer, data.conversations, d.max_seq_length)
    : null;
  const identifierIds = fromConversations?.identifierIds ??
    (losses.objective === "generation"
      ? identifierTokenIds(tokenizer, windowSize)
      : checkDistinctIdentifiers(tokenizer, windowSize));
  const shorten = (lists: readonly CandidateList[]) =>
    shortenLists(lists, tokenizer, d.query_max_len, d.passage_max_len);
  const trainLists = shorten(data.train);
  const evalLists = shorten(firstEvalSamples(data.eval, d.max_eval_samples));
  const capNote = evalCapNote(evalLists.length, data.eval.length, "queries");
  if (capNote) log(`listwise: ${capNote}`);
  const examples = listwiseExamples(trainLists, data.qrels, {
    windowSize,
    stride,
    rankEnd: Infinity,
  });
  const items = fromConversations?.items ??
    examples.map((e) => tokenizeListwiseItem(tokenizer, e, d.max_seq_length));
  if (items.length === 0) throw new Error("data: no listwise training windows");
  const batchSize = t.per_device_train_batch_size;
  const batchesPerEpoch = Math.ceil(items.length / batchSize);
  const padOptions = { padId: tokenizer.padId, padToMultipleOf: d.pad_to_multiple_of ?? 8 };
  const longestTarget = Math.max(
    ...items.map((i) => i.labels.filter((l) => l !== IGNORE_INDEX).length),
  );
  log(
    `listwise: ${trainLists.length} training queries → ${items.length} windows ` +
      `(longest ${Math.max(...items.map((i) => i.inputIds.length))} tokens), ` +
      `${evalLists.length} held-out queries; objective ${losses.objective}`,
  );

  /** Loss of a training batch; the session keeps its inputs for backward. */
  const batchLoss = async (picked: ListwiseItem[], rng: Rng) => {
    const batch: CollatedBatch = collate(
      picked.map((i) => ({ inputIds: i.inputIds, labels: i.labels })),
      padOptions,
    );
    const inputs = session.keep(uploadInputs(tokenBatchOf(batch), model.config.slidingWindow));
    const alpha = t.noisy_embedding_alpha;
    const inputsEmbeds = alpha !== null
      ? noisyEmbeddings(model, inputs, batch.attentionMask, alpha, rng)
      : undefined;
    const { hidden } = model.forward(inputs, { output: "hidden", inputsEmbeds });
    inputsEmbeds?.dispose();
    const lossInputs: LossInputs = {};
    let targetCount = 0;
    if (losses.objective !== "ranking") {
      const shifted = CausalLM.shiftedTargets(batch.labels, batch.rows, batch.length);
      lossInputs.logits = model.lmHead(hidden!);
      lossInputs.targets = Tensor.fromArray(shifted, [shifted.length], "i32");
      targetCount = countTargets(shifted);
    }
    if (losses.objective !== "generation") {
      const n = Math.max(...picked.map((i) => i.example.docids.length));
      lossInputs.scores = identifierLogits(
        model,
        hidden!,
        picked.map((i) => i.scorePosition),
        identifierIds.slice(0, n),
      );
      lossInputs.labels = picked.flatMap((i) =>
        Array.from({ length: n }, (_, k) => i.example.grades[k] ?? 0)
      );
      lossInputs.mask = picked.flatMap((i) =>
        Array.from({ length: n }, (_, k) => k < i.example.docids.length ? 1 : 0)
      );
    }
    hidden!.dispose();
    const out = await losses.loss.compute(lossInputs);
    for (const v of Object.values(lossInputs)) if (v instanceof Tensor) v.dispose();
    const tokens = countTokens(batch.attentionMask);
    return { ...out, tokens, targetCount };
  };

  /** Orders one window: 0-based indices into `hits`, best first. */
  const orderWindow = async (query: string, qid: string, hits: CandidateList["hits"]) => {
    const [example] = listwiseExamples([{ qid, query, hits }], new Map(), {
      windowSize: hits.length,
      stride: hits.length,
      rankEnd: hits.length,
    });
    const item = tokenizeListwiseItem(tokenizer, example!, Number.MAX_SAFE_INTEGER);
    if (losses.objective === "generation") {
      const produced = await generate(model, generationPrompt(item), {
        maxNewTokens: longestTarget + 4,
        stopTokens: tokenizer.eosId !== undefined ? [tokenizer.eosId] : undefined,
      });
      const text = tokenizer.decode ? tokenizer.decode(produced) : "";
      // rank_llm's reading: identifiers in order, repeats dropped, the missing appended.
      const scores = listwiseOutputToScores(text, hits.length);
      return hits.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
    }
    const prompt = scoringPrompt(item);
    const batch = collate([{ inputIds: prompt, labels: prompt.map(() => IGNORE_INDEX) }], {
      padId: tokenizer.padId,
    });
    const inputs = uploadInputs(tokenBatchOf(batch), model.config.slidingWindow);
    try {
      const logits = noGrad(() => {
        const { hidden } = model.forward(inputs, { output: "hidden" });
        const out = identifierLogits(
          model,
          hidden!,
          [prompt.length - 1],
          identifierIds.slice(0, hits.length),
        );
        hidden!.dispose();
        return out;
      });
      const values = await logits.toArray();
      logits.dispose();
      return hits.map((_, i) => i).sort((a, b) => values[b]! - values[a]! || a - b);
    } finally {
      disposeInputs(inputs);
    }
  };

  /** rank_llm's sliding window over the whole list (end → front); scores n − rank. */
  const rerank = async (list: CandidateList): Promise<number[]> => {
    let order = list.hits.map((_, i) => i);
    for (const [a, b] of slidingWindows(0, order.length, windowSize, stride)) {
      const window = order.slice(a, b);
      const permutation = await orderWindow(
        list.query,
        list.qid,
        window.map((i) => list.hits[i]!),
      );
      order = [...order.slice(0, a), ...permutation.map((p) => window[p]!), ...order.slice(b)];
    }
    const scores = new Array<number>(order.length).fill(0);
    order.forEach((candidate, rank) => (scores[candidate] = order.length - rank));
    return scores;
  };

  const evaluateNow = async (): Promise<EvalOutcome> => {
    const lists = evalLists.map((l) => ({
      qid: l.qid,
      query: l.query,
      candidates: l.hits.map((h) => ({ docid: h.docid, text: h.content })),
    }));
    // Each rank reranks its share of the queries; every rank gets all orders.
    const scorer = await shardedScorer(
      evalCommunicator(distributed),
      lists,
      (list) => rerank(evalLists[lists.indexOf(list)]!),
      (total) => evalProgress("queries", total, log),
    );
    const result = await evaluateReranker(lists, scorer, data.evalQrels, {
      ...retrievalEvalOptions(config),
      tag: "listwise",
    });
    const outcome = evaluationToOutcome(
      result.evaluation,
      result.run,
      "listwise",
      d.eval_relevance_level,
    );
    const firstStage = new Map<string, ScoredDocument[]>(
      evalLists.map((l) => [
        l.qid,
        l.hits.map((h, i) => ({ docid: h.docid, score: l.hits.length - i })),
      ]),
    );
    const baseline = evaluateRun(data.evalQrels, firstStage, {
      measures: ["ndcg_cut.10"],
      relevanceLevel: d.eval_relevance_level,
    });
    for (const [name, value] of baseline.summary) {
      outcome.metrics[`first_stage_${metricName(name)}`] = value;
    }
    return outcome;
  };
  const evaluate = (): Promise<EvalOutcome> => session.inEvalMode(evaluateNow);

  return {
    recipe: "listwise",
    loaded,
    model,
    tokenizer,
    items,
    identifierIds,
    /** rank_llm's sliding-window reranking of `list` (adapter dropout off). */
    rerank: (list: CandidateList) => session.inEvalMode(() => rerank(list)),
    parameters: trainable,
    batchesPerEpoch,
    async microBatch(epoch: number, index: number, rng: Rng) {
      session.startMicroBatch(rng);
      const picked = microBatchIndices(items.length, d.dataset_seed, epoch, index, batchSize)
        .map((i) => items[i]!);
      const out = await batchLoss(picked, rng);
      const metrics: Record<string, number | Tensor> = { ...out.metrics };
      if (out.targetCount) metrics.target_tokens = out.targetCount;
      return { loss: out.loss, parts: out.parts, metrics, tokens: out.tokens };
    },
    evaluate: evalLists.length > 0 ? evaluate : undefined,
    saveWeights: (dir: string) => session.saveWeights(dir),
    loadWeights: (dir: string) => session.loadWeights(dir),
    dispose: () => session.dispose(),
  };
}
