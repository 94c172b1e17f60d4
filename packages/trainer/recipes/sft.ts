/**
 * Supervised fine-tuning, qa-expert style: chat records (or HotpotQA
 * questions turned into chats with `hotpotToSft`) become tokens whose
 * labels cover only the assistant turns; the model learns them with the
 * causal LM loss (`lm` of `@irforge/losses`).
 *
 * - `data.packing: true` packs several records into one row of
 *   `max_seq_length` tokens with `@irforge/data` `packSequences`: each record
 *   keeps its own segment id and positions restarting at 0, so attention never
 *   crosses records, and the first label of each packed record is masked.
 * - A record longer than `max_seq_length` has its longest user message
 *   shortened (token by token, through the tokenizer) so that the answer
 *   survives; the number of shortened records is logged.
 * - `training.noisy_embedding_alpha` adds NEFTune noise to the input
 *   embeddings during training only.
 * - Evaluation (`eval_data_path`, or `train_test_split` of the training
 *   records): teacher-forced LM loss on the held-out records, then greedy
 *   generation of each held-out answer scored with qa-expert's token recall
 *   and containment (`@irforge/eval` QA metrics).
 *
 * With `model.use_lora` only the adapter trains: its dropout is seeded from
 * the trainer's RNG per micro-batch (a resumed run draws the same masks) and
 * off during evaluation; checkpoints then hold the adapter in peft's format
 * (`adapter_config.json` + `adapter_model.safetensors`) instead of
 * `model.safetensors`. A micro-batch's uploaded inputs stay alive until the
 * next micro-batch, evaluation or dispose, since backward re-reads them when
 * `training.gradient_checkpointing` is on.
 *
 * Data files: a JSON array or JSONL of either chat records
 * `{"id"?, "messages": [{"role": "system"|"user"|"assistant", "content"}]}`
 * (the last message is the assistant answer), HotpotQA questions (either
 * layout; recognised by `question` and `context`), qa-expert's multi-hop QA
 * records (`sub_questions` + `final_answer`) or RankLLM's ShareGPT
 * `conversations` records (`@irforge/data` `sft_formats.ts`).
 *
 * @module
 */

import { noGrad, Tensor } from "@irforge/tensor";
import { CausalLM, disposeInputs, generate, type ModelInputs, uploadInputs } from "@irforge/model";
import {
  asArray,
  asObject,
  type ChatMessage,
  collate,
  type CollatedBatch,
  conversationsToSft,
  describe,
  fieldLocation,
  hotpotToSft,
  IGNORE_INDEX,
  InputError,
  isConversationsRecord,
  isQaExpertRecord,
  type LocatedRecord,
  packSequences,
  parseHotpotExample,
  qaExpertToSft,
  readJsonRecords,
  recordWhere,
  type SftRecord,
  SkipLog,
  stringField,
  type TextTokenizer,
  tokenizeChat,
  type TokenSequence,
} from "@irforge/data";
import { createLoss, type Loss, resolveLossName } from "@irforge/losses";
import { answerContainment, answerTokenRecall } from "@irforge/eval";
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
import { splitHeldOut } from "./held_out.ts";
import { noisyEmbeddings } from "./neftune.ts";
import { evalCapNote, firstEvalSamples } from "./eval_samples.ts";
import { evalProgress } from "../eval_progress.ts";
import type { Collective } from "../distributed/collective.ts";
import { evalCommunicator, shardedMap } from "./sharded_eval.ts";

const ROLES = new Set(["system", "user", "assistant"]);

/** Parses one chat record `{id?, messages: [{role, content}]}` ending with an assistant turn. */
export function parseChatRecord(record: LocatedRecord, index: number): SftRecord {
  const where = recordWhere(record);
  const object = asObject(record.value, where);
  const id = object["id"] === undefined
    ? `#${index}`
    : stringField(object, "id", where, { numberAllowed: true, nonEmpty: true });
  const raw = asArray(object["messages"], where, "messages");
  const messages: ChatMessage[] = raw.map((value, i) => {
    const messageWhere = recordWhere(record, `messages[${i}]`);
    const message = asObject(value, messageWhere);
    const role = stringField(message, "role", messageWhere);
    if (!ROLES.has(role)) {
      throw new InputError(
        fieldLocation(messageWhere, "role"),
        `expected "system", "user" or "assistant", found ${describe(role)}`,
      );
    }
    return {
      role: role as ChatMessage["role"],
      content: stringField(message, "content", messageWhere),
    };
  });
  if (messages.at(-1)?.role !== "assistant") {
    throw new InputError(
      fieldLocation(where, "messages"),
      "the last message must be the assistant's answer (the SFT target)",
    );
  }
  if (!messages.some((m) => m.role === "user")) {
    throw new InputError(fieldLocation(where, "messages"), "no user message");
  }
  return { id, messages };
}

/** Reads SFT records: chat records, or HotpotQA questions made into chats by `hotpotToSft`. */
export async function readSftRecords(
  file: string,
  skip: SkipLog = new SkipLog(false),
): Promise<SftRecord[]> {
  const records: SftRecord[] = [];
  (await readJsonRecords(file, skip)).forEach((record, index) => {
    try {
      const value = record.value as Record<string, unknown> | null;
      const isHotpot = value !== null && typeof value === "object" && "question" in value &&
        "context" in value;
      records.push(
        isHotpot
          ? hotpotToSft(parseHotpotExample(record, index))
          : isQaExpertRecord(value)
          ? qaExpertToSft(record, index)
          : isConversationsRecord(value)
          ? conversationsToSft(record, index)
          : parseChatRecord(record, index),
      );
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      skip.report(error);
    }
  });
  return records;
}

/** A record tokenised to fit `max_seq_length`. */
export interface FittedRecord {
  /** Record id. */
  id: string;
  /** Tokens and assistant-only labels. */
  sequence: TokenSequence;
  /** Whether a user message had to be shortened. */
  shortened: boolean;
  /** Index of the first labelled token (where the answer starts). */
  answerStart: number;
  /** The last assistant message (the gold answer). */
  answer: string;
}

/**
 * Tokenises `record` with assistant-only labels. When it is longer than
 * `maxSeqLength`, the longest user message is cut (at token granularity,
 * through `tokenizer.decode`) until the whole conversation fits, so the
 * answer is kept; if the answer alone does not fit, the end is cut.
 */
export function fitRecord(
  tokenizer: TextTokenizer,
  record: SftRecord,
  maxSeqLength: number,
): FittedRecord {
  let messages = record.messages;
  let sequence = tokenizeChat(tokenizer, messages);
  let shortened = false;
  for (let attempt = 0; attempt < 8 && sequence.inputIds.length > maxSeqLength; attempt++) {
    if (!tokenizer.decode) break;
    let longest = -1;
    messages.forEach((m, i) => {
      if (
        m.role === "user" && (longest < 0 || m.content.length > messages[longest]!.content.length)
      ) {
        longest = i;
      }
    });
    if (longest < 0) break;
    const ids = tokenizer.encode(messages[longest]!.content);
    // Re-encoding decoded text can shift a token or two; cut a little extra.
    const keep = Math.max(0, ids.length - (sequence.inputIds.length - maxSeqLength) - attempt - 1);
    if (keep >= ids.length) break;
    messages = messages.map((m, i) =>
      i === longest ? { ...m, content: tokenizer.decode!(ids.slice(0, keep)) } : m
    );
    sequence = tokenizeChat(tokenizer, messages);
    shortened = true;
  }
  if (sequence.inputIds.length > maxSeqLength) {
    sequence = tokenizeChat(tokenizer, messages, { maxSeqLength });
    shortened = true;
  }
  return {
    id: record.id,
    sequence,
    shortened,
    answerStart: sequence.labels.findIndex((l) => l !== IGNORE_INDEX),
    answer: record.messages.at(-1)!.content,
  };
}

/** Training rows: packed (several records per row) or one record per row. */
export function sftRows(
  sequences: readonly TokenSequence[],
  packing: boolean,
  maxSeqLength: number,
): TokenSequence[] {
  if (!packing) return [...sequences];
  return packSequences(sequences, { maxSeqLength, strategy: "first-fit-decreasing" }).rows;
}

/** NEFTune settings of a training forward pass. */
export interface NoiseSettings {
  /** `noisy_embedding_alpha`. */
  alpha: number;
  /** The trainer's RNG (one draw per batch). */
  rng: Rng;
}

/**
 * Causal LM loss of a collated batch (mean over labelled tokens, HF shift),
 * with NEFTune noise when `noise` is given. Returns the loss and the number
 * of tokens it averages over; the caller owns the loss. The uploaded inputs
 * are freed on return, unless `live` is given: then they are pushed onto it
 * and the caller frees them (`disposeInputs`) after backward, which re-reads
 * them when layers are checkpointed.
 */
export async function causalLmLoss(
  model: CausalLM,
  batch: CollatedBatch,
  loss: Loss,
  noise?: NoiseSettings,
  live?: ModelInputs[],
): Promise<{ loss: Tensor; targets: number }> {
  const inputs = uploadInputs(tokenBatchOf(batch), model.config.slidingWindow);
  live?.push(inputs);
  try {
    const inputsEmbeds = noise
      ? noisyEmbeddings(model, inputs, batch.attentionMask, noise.alpha, noise.rng)
      : undefined;
    const shifted = CausalLM.shiftedTargets(batch.labels, batch.rows, batch.length);
    const targets = Tensor.fromArray(shifted, [shifted.length], "i32");
    // The plain LM loss fuses the LM head into the cross-entropy: no [tokens, vocab] logits.
    if (loss.name === "lm" && loss.options.ignore_index === -100) {
      const { hidden } = model.forward(inputs, { inputsEmbeds, output: "hidden" });
      inputsEmbeds?.dispose();
      const fused = model.causalLmLoss(hidden!, targets);
      hidden!.dispose();
      targets.dispose();
      return { loss: fused, targets: countTargets(shifted) };
    }
    const { logits } = model.forward(inputs, { inputsEmbeds });
    inputsEmbeds?.dispose();
    const out = await loss.compute({ logits: logits!, targets });
    logits!.dispose();
    targets.dispose();
    return { loss: out.loss, targets: countTargets(shifted) };
  } finally {
    if (!live) disposeInputs(inputs);
  }
}

/** The `lm` loss, refusing a configured loss that is something else. */
export function lmLossOf(config: Config): Loss {
  const name = config.training.loss ?? "lm";
  if (resolveLossName(name) !== "lm") {
    throw new Error(
      `training.loss "${name}": the ${config.recipe} recipe trains with the LM loss ` +
        `(leave training.loss unset or use cross_entropy)`,
    );
  }
  return createLoss("lm", config.training.loss_options);
}

/** Most tokens generated per held-out answer (HotpotQA answers are a few words). */
export const MAX_ANSWER_TOKENS = 32;

/** Options of {@link sftTask}. */
export interface SftOptions {
  /** Training records already read (default: `data.data_path`). */
  train?: SftRecord[];
  /** Held-out records already read (default: `eval_data_path` or the split). */
  eval?: SftRecord[];
  /** Progress lines (default console.log). */
  log?: (line: string) => void;
  /** Data-parallel ranks: evaluation works through a share per rank (`sharded_eval.ts`). */
  distributed?: Collective;
}

/** A built SFT task with its model. */
export type SftTask = TrainingTask & {
  /** The model, tokenizer, trainable parameters and LoRA adapter (if any). */
  loaded: LoadedModel;
  model: CausalLM;
  tokenizer: TextTokenizer;
  /** The training rows: packed (several records per row) or one record per row. */
  rows: TokenSequence[];
  dispose(): void;
};

/** Builds the SFT training task of `config`. */
export async function sftTask(config: Config, options: SftOptions = {}): Promise<SftTask> {
  const log = options.log ?? ((line: string) => console.log(line));
  const d = config.data;
  let trainRecords = options.train;
  let evalRecords = options.eval;
  if (!trainRecords) {
    if (!d.data_path) throw new Error("data.data_path is required for the sft recipe");
    trainRecords = await readSftRecords(d.data_path);
  }
  if (!evalRecords) {
    if (d.eval_data_path) evalRecords = await readSftRecords(d.eval_data_path);
    else {
      [trainRecords, evalRecords] = splitHeldOut(trainRecords, d.train_test_split, d.dataset_seed);
    }
  }
  if (trainRecords.length === 0) throw new Error("data: no SFT training records");
  return await withModelSession(
    config,
    (session) => sftTaskOf(config, session, trainRecords, evalRecords, log, options.distributed),
  );
}

function sftTaskOf(
  config: Config,
  session: ModelSession,
  trainRecords: SftRecord[],
  evalRecords: SftRecord[],
  log: (line: string) => void,
  distributed?: Collective,
): SftTask {
  const d = config.data, t = config.training;
  const { loaded, model, tokenizer, trainable } = session;
  const maxSeqLength = d.max_seq_length;
  const fit = (records: readonly SftRecord[]) =>
    records.map((r) => fitRecord(tokenizer, r, maxSeqLength));
  const fittedTrain = fit(trainRecords).filter((f) => f.answerStart >= 0);
  const evaluable = fit(evalRecords).filter((f) => f.answerStart > 0);
  const fittedEval = firstEvalSamples(evaluable, d.max_eval_samples);
  const shortened = fittedTrain.filter((f) => f.shortened).length;
  const droppedTrain = trainRecords.length - fittedTrain.length;
  const droppedEval = evalRecords.length - evaluable.length;
  const capNote = evalCapNote(fittedEval.length, evaluable.length, "examples");
  if (capNote) log(`sft: ${capNote}`);
  if (shortened > 0) {
    log(
      `sft: ${shortened} of ${trainRecords.length} training records shortened to fit max_seq_length ${maxSeqLength}`,
    );
  }
  if (droppedTrain + droppedEval > 0) {
    log(
      `sft: warning: ${droppedTrain} training and ${droppedEval} held-out records have no answer ` +
        `token left within max_seq_length ${maxSeqLength} and are not used`,
    );
  }
  if (fittedTrain.length === 0) {
    throw new Error("data: no SFT record keeps its answer within max_seq_length");
  }
  const rows = sftRows(fittedTrain.map((f) => f.sequence), d.packing, maxSeqLength);
  const batchSize = t.per_device_train_batch_size;
  const batchesPerEpoch = Math.ceil(rows.length / batchSize);
  const loss = lmLossOf(config);
  const padOptions = { padId: tokenizer.padId, padToMultipleOf: d.pad_to_multiple_of ?? 8 };
  log(
    `sft: ${fittedTrain.length} training records in ${rows.length} rows` +
      `${d.packing ? " (packed)" : ""}, ${fittedEval.length} held-out`,
  );
  // Room for the longest training answer (labelled tokens, EOS included), at most
  // MAX_ANSWER_TOKENS: greedy decoding of a model that never says EOS costs every step.
  const maxNewTokens = Math.min(
    MAX_ANSWER_TOKENS,
    Math.max(
      1,
      ...fittedTrain.map((f) => f.sequence.labels.filter((l) => l !== IGNORE_INDEX).length),
    ),
  );
  const stopTokens = tokenizer.eosId !== undefined ? [tokenizer.eosId] : undefined;

  const evaluateNow = async (): Promise<EvalOutcome> => {
    let lossSum = 0, targetSum = 0;
    const evalBatch = t.per_device_eval_batch_size;
    // Each rank takes a share (whole batches, then whole answers); sums run in one order.
    const comm = evalCommunicator(distributed);
    const batchLosses = await shardedMap(comm, fittedEval, async (share) => {
      const lossProgress = evalProgress("examples scored", share.length, log);
      const out: ({ value: number; targets: number } | null)[] = [];
      for (let i = 0; i < share.length; i += evalBatch) {
        const batch = collate(share.slice(i, i + evalBatch).map((f) => f.sequence), padOptions);
        const result = await noGrad(() => causalLmLoss(model, batch, loss));
        const value = (await result.loss.toArray())[0]!;
        result.loss.dispose();
        // One entry per example (shardedMap's contract); the batch's on its first.
        out.push({ value, targets: result.targets });
        for (let k = 1; k < Math.min(evalBatch, share.length - i); k++) {
          out.push(null);
        }
        lossProgress(Math.min(i + evalBatch, share.length));
      }
      return out;
    }, { unit: evalBatch });
    for (const entry of batchLosses) {
      if (entry === null) continue;
      lossSum += entry.value * entry.targets;
      targetSum += entry.targets;
    }
    const perQuery: Record<string, Record<string, number>> = {};
    let recall = 0, containment = 0;
    const answers = await shardedMap(comm, fittedEval, async (share) => {
      const generated = evalProgress("answers generated", share.length, log);
      const out: { token_recall: number; containment: number }[] = [];
      for (const f of share) {
        const produced = await generate(model, f.sequence.inputIds.slice(0, f.answerStart), {
          maxNewTokens,
          stopTokens,
        });
        if (stopTokens && stopTokens.includes(produced.at(-1)!)) produced.pop();
        const prediction = tokenizer.decode ? tokenizer.decode(produced) : produced.join(" ");
        out.push({
          token_recall: answerTokenRecall(prediction, f.answer),
          containment: answerContainment(prediction, f.answer),
        });
        generated(out.length);
      }
      return out;
    });
    fittedEval.forEach((f, i) => {
      const scores = answers[i]!;
      recall += scores.token_recall;
      containment += scores.containment;
      perQuery[f.id] = scores;
    });
    const n = fittedEval.length;
    return {
      metrics: {
        loss: targetSum ? lossSum / targetSum : 0,
        token_recall: n ? recall / n : 0,
        containment: n ? containment / n : 0,
      },
      perQuery,
    };
  };
  const evaluate = (): Promise<EvalOutcome> => session.inEvalMode(evaluateNow);

  return {
    recipe: "sft",
    loaded,
    model,
    tokenizer,
    rows,
    parameters: trainable,
    batchesPerEpoch,
    async microBatch(epoch: number, index: number, rng: Rng) {
      session.startMicroBatch(rng);
      const picked = microBatchIndices(rows.length, d.dataset_seed, epoch, index, batchSize)
        .map((i) => rows[i]!);
      const batch = collate(picked, padOptions);
      const noise = t.noisy_embedding_alpha !== null
        ? { alpha: t.noisy_embedding_alpha, rng }
        : undefined;
      const out = await causalLmLoss(model, batch, loss, noise, session.live);
      const tokens = countTokens(batch.attentionMask);
      return { loss: out.loss, tokens, metrics: { target_tokens: out.targets } };
    },
    evaluate: fittedEval.length > 0 ? evaluate : undefined,
    saveWeights: (dir: string) => session.saveWeights(dir),
    loadWeights: (dir: string) => session.loadWeights(dir),
    dispose: () => session.dispose(),
  };
}
