/**
 * The minimal recipe of the trainer README's "Adding a recipe": a causal
 * language model on plain text, one passage per line of `data.data_path`,
 * part of it held out (`data.train_test_split`) and evaluated by its loss.
 *
 * The file holds only what makes the recipe: its data, its layout (BOS,
 * text, EOS; every token a target), its micro-batch loss and its
 * evaluation. Everything recipes share comes from {@link ModelSession}:
 * inputs kept for backward, evaluation mode, micro-batch slicing, token
 * counts, checkpoint weights and dispose. It is not a recipe of
 * `RECIPE_DEFINITIONS`: its test trains it through {@link TEXT_LM_RECIPE},
 * the entry the README adds to that table.
 *
 * @module
 */

import { noGrad, Tensor } from "@irforge/tensor";
import { CausalLM, disposeInputs, uploadInputs } from "@irforge/model";
import { collate, type CollatedBatch, encodeText } from "@irforge/data";
import type { Config } from "../config/schema.ts";
import type { EvalOutcome } from "../loop.ts";
import type { BuildOptions, BuiltTask, RecipeDefinition } from "./recipe.ts";
import {
  countTargets,
  countTokens,
  microBatchIndices,
  type ModelSession,
  withModelSession,
} from "./model_session.ts";
import { tokenBatchOf } from "./batches.ts";
import { splitHeldOut } from "./held_out.ts";

/** The non-empty lines of the text file at `path`. */
export async function readTextLines(path: string): Promise<string[]> {
  return (await Deno.readTextFile(path)).split("\n").map((l) => l.trim()).filter((l) => l);
}

/** Builds the text LM task of `config` (data first, so a data error loads no model). */
export async function textLmTask(config: Config, options: BuildOptions = {}): Promise<BuiltTask> {
  const d = config.data;
  const log = options.log ?? ((line: string) => console.log(line));
  if (!d.data_path) throw new Error("data.data_path is required for the text LM recipe");
  const lines = await readTextLines(d.data_path);
  if (lines.length === 0) throw new Error(`${d.data_path}: no text lines`);
  const [train, held] = splitHeldOut(lines, d.train_test_split, d.dataset_seed);
  log(`text_lm: ${train.length} training lines, ${held.length} held out`);
  return await withModelSession(config, (session) => textLmTaskOf(config, session, train, held));
}

function textLmTaskOf(
  config: Config,
  session: ModelSession,
  train: string[],
  held: string[],
): BuiltTask {
  const d = config.data, t = config.training;
  const { model, tokenizer } = session;
  const batchSize = t.per_device_train_batch_size;

  // Layout: BOS text EOS, every token a target (collate pads labels with -100).
  const batchOf = (texts: readonly string[]): CollatedBatch =>
    collate(
      texts.map((text) => {
        const ids = encodeText(tokenizer, text, {
          maxLength: d.max_seq_length,
          prependBos: true,
          appendEos: true,
        });
        return { inputIds: ids, labels: ids };
      }),
      { padId: tokenizer.padId, padToMultipleOf: d.pad_to_multiple_of ?? 8 },
    );

  // Mean next-token loss of `batch`; training keeps the inputs for backward.
  const batchLoss = (batch: CollatedBatch, training: boolean) => {
    const inputs = uploadInputs(tokenBatchOf(batch), model.config.slidingWindow);
    if (training) session.keep(inputs);
    try {
      const shifted = CausalLM.shiftedTargets(batch.labels, batch.rows, batch.length);
      const targets = Tensor.fromArray(shifted, [shifted.length], "i32");
      const { hidden } = model.forward(inputs, { output: "hidden" });
      const loss = model.causalLmLoss(hidden!, targets);
      hidden!.dispose();
      targets.dispose();
      return { loss, targets: countTargets(shifted) };
    } finally {
      if (!training) disposeInputs(inputs);
    }
  };

  const evaluate = (): Promise<EvalOutcome> =>
    session.inEvalMode(async () => {
      let lossSum = 0, targetSum = 0;
      for (let i = 0; i < held.length; i += t.per_device_eval_batch_size) {
        const batch = batchOf(held.slice(i, i + t.per_device_eval_batch_size));
        const out = noGrad(() => batchLoss(batch, false));
        lossSum += (await out.loss.toArray())[0]! * out.targets;
        targetSum += out.targets;
        out.loss.dispose();
      }
      return { metrics: { loss: targetSum ? lossSum / targetSum : 0 } };
    });

  return {
    recipe: config.recipe,
    parameters: session.trainable,
    batchesPerEpoch: Math.ceil(train.length / batchSize),
    microBatch(epoch, index, rng) {
      session.startMicroBatch(rng);
      const picked = microBatchIndices(train.length, d.dataset_seed, epoch, index, batchSize);
      const batch = batchOf(picked.map((i) => train[i]!));
      const out = batchLoss(batch, true);
      const tokens = countTokens(batch.attentionMask);
      return Promise.resolve({ loss: out.loss, tokens, metrics: { target_tokens: out.targets } });
    },
    evaluate: held.length > 0 ? evaluate : undefined,
    saveWeights: (dir) => session.saveWeights(dir),
    loadWeights: (dir) => session.loadWeights(dir),
    dispose: () => session.dispose(),
  };
}

/** The table entry of the text LM recipe, as `RECIPE_DEFINITIONS` would hold it. */
export const TEXT_LM_RECIPE: RecipeDefinition = {
  description: "causal LM on plain text lines (the README's example recipe)",
  requirements: [[["model.model_name_or_path"]], [["data.data_path"]]],
  checks: [],
  dataParallel: true,
  training: { kind: "task", build: (config, options) => textLmTask(config, options) },
};
