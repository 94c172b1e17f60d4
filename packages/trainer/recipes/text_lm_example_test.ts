import assert from "node:assert/strict";
import { join } from "node:path";
import { getDevice, noGrad } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import { disposeInputs, uploadInputs } from "@irforge/model";
import { collate, encodeText, IGNORE_INDEX } from "@irforge/data";
import { parseConfig } from "../config/parse.ts";
import { train } from "../loop.ts";
import { DEFAULT_DIR } from "../default/mod.ts";
import type { BuiltTask } from "./recipe.ts";
import { tokenBatchOf } from "./batches.ts";
import { splitHeldOut } from "./held_out.ts";
import { microBatchIndices } from "./model_session.ts";
import { disposeLoaded, loadModel } from "./model_setup.ts";
import type { Config } from "../config/schema.ts";
import { readTextLines, TEXT_LM_RECIPE } from "./text_lm_example.ts";
import { microBatchLossAndGrads } from "./recipe_testing.ts";

const WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "to", "red", "ball"];

/** Sentences over a small vocabulary, so that held-out lines share the training distribution. */
function sentences(n: number): string[] {
  return Array.from(
    { length: n },
    (_, i) =>
      Array.from({ length: 4 + (i % 4) }, (_, j) => WORDS[(i * 7 + j * 3) % WORDS.length]).join(
        " ",
      ),
  );
}

/** The example recipe reads an sft-shaped configuration: it is not in `RECIPES`. */
function textConfig(dataPath: string, sets: string[]) {
  return parseConfig(
    `recipe: sft
model:
  model_name_or_path: random-init:${DEFAULT_DIR}/tiny-llama
  use_lora: false
data:
  data_path: ${dataPath}
  max_seq_length: 16
  train_test_split: 0.25
training:
  per_device_train_batch_size: 4
  learning_rate: 0.01
  lr_scheduler_type: constant
  save_strategy: no
`,
    "text-lm-test.yaml",
    sets,
  );
}

async function build(config: Config): Promise<BuiltTask> {
  const training = TEXT_LM_RECIPE.training;
  assert.equal(training.kind, "task");
  if (training.kind !== "task") throw new Error("unreachable");
  return await training.build(config, { log: () => {} });
}

gpuTest(
  "README's example recipe: its micro-batch loss is the float64 next-token loss of its layout; two steps train",
  async () => {
    await getDevice();
    const dir = await Deno.makeTempDir();
    try {
      const dataPath = join(dir, "text.txt");
      await Deno.writeTextFile(dataPath, sentences(16).join("\n") + "\n");
      const config = textConfig(dataPath, [
        `training.output_dir=${join(dir, "run")}`,
        "training.max_steps=2",
        "training.logging_steps=1",
        "training.eval_strategy=steps",
        "training.eval_steps=2",
      ]);
      const task = await build(config);
      try {
        // Reference: the same micro-batch laid out by hand, logits on the host, cross-entropy
        // in float64 over every real next token.
        const [trainLines] = splitHeldOut(
          await readTextLines(dataPath),
          config.data.train_test_split,
          config.data.dataset_seed,
        );
        assert.equal(trainLines.length, 12);
        const picked = microBatchIndices(trainLines.length, config.data.dataset_seed, 0, 1, 4)
          .map((i) => trainLines[i]!);
        // The same random-init weights (seeded by training.seed), loaded a second time.
        const reference = await referenceLoss(config, picked);
        const { loss } = await microBatchLossAndGrads(task, 1);
        assert.ok(
          Math.abs(loss - reference) < 1e-4,
          `loss ${loss}, float64 reference ${reference}`,
        );

        const result = await train({
          config,
          task,
          log: () => {},
          progress: false,
          handleSignals: false,
          evaluateFirst: true,
        });
        assert.equal(result.status, "finished");
        assert.equal(result.step, 2);
        assert.equal(result.losses.length, 2);
        const evalLoss = (step: number) =>
          JSON.parse(Deno.readTextFileSync(join(result.runPath, "eval", `step-${step}.json`)))
            .metrics.loss as number;
        assert.ok(evalLoss(2) < evalLoss(0), `held-out loss ${evalLoss(0)} → ${evalLoss(2)}`);
      } finally {
        task.dispose();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/**
 * Mean next-token cross-entropy (float64 on the host) of `texts` laid out as
 * BOS text EOS, from the model's logits, over every non-pad position.
 */
async function referenceLoss(config: Config, texts: string[]): Promise<number> {
  const loaded = await loadModel(config);
  const { model, tokenizer } = loaded;
  const maxLength = config.data.max_seq_length;
  const batch = collate(
    texts.map((text) => {
      const ids = encodeText(tokenizer, text, { maxLength, prependBos: true, appendEos: true });
      return { inputIds: ids, labels: ids.map(() => IGNORE_INDEX) };
    }),
    { padId: tokenizer.padId, padToMultipleOf: 8 },
  );
  const inputs = uploadInputs(tokenBatchOf(batch), model.config.slidingWindow);
  const logitsTensor = noGrad(() => model.forward(inputs, {}).logits!);
  const logits = await logitsTensor.toArray() as Float32Array;
  logitsTensor.dispose();
  disposeInputs(inputs);
  disposeLoaded(loaded);
  const V = model.config.vocabSize;
  let sum = 0, count = 0;
  for (let r = 0; r < batch.rows; r++) {
    for (let p = 0; p + 1 < batch.length; p++) {
      // Position p predicts token p + 1 when both are real tokens of the row.
      if (!batch.attentionMask[r * batch.length + p + 1]) continue;
      const target = batch.inputIds[r * batch.length + p + 1]!;
      const row = (r * batch.length + p) * V;
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, logits[row + v]!);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[row + v]! - max);
      sum += Math.log(z) + max - logits[row + target]!;
      count++;
    }
  }
  return sum / count;
}
