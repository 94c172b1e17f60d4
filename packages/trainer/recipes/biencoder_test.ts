import assert from "node:assert/strict";
import { join } from "node:path";
import { getDevice, memoryStats } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import { loadLoraAdapter } from "@irforge/model";
import { passageText } from "@irforge/data";
import { defaultConfig } from "../default/mod.ts";
import { train } from "../loop.ts";
import { biencoderTask, embedTexts } from "./biencoder.ts";
import { readRetrievalData } from "./retrieval_data.ts";
import { disposeLoaded, loadModel } from "./model_setup.ts";
import {
  assertPeftCheckpoint,
  assertSameLossAndGrads,
  hostValues,
  maxAbsDiff,
  microBatchLossAndGrads,
} from "./recipe_testing.ts";

async function readLosses(runPath: string): Promise<[number, number][]> {
  return (await Deno.readTextFile(join(runPath, "metrics.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l)).filter((r) => "train/loss" in r)
    .map((r) => [r.step, r["train/loss"]]);
}

gpuTest("default run (shortened): run directory complete, loss decreases", async () => {
  await getDevice();
  const dir = await Deno.makeTempDir();
  const config = await defaultConfig([
    `training.output_dir=${join(dir, "run")}`,
    "training.max_steps=10",
    "training.logging_steps=5",
    "training.eval_steps=10",
    "training.save_steps=5",
    "training.save_total_limit=1",
  ]);
  const evalLines: string[] = [];
  const task = await biencoderTask(config, { log: (line) => evalLines.push(line) });
  try {
    const result = await train({
      config,
      task,
      log: () => {},
      progress: false,
      handleSignals: false,
      evaluateFirst: true,
    });
    assert.equal(result.status, "finished");
    // Evaluation progress: each evaluation (steps 0 and 10) embeds 288 documents in 5 batches
    // of 64 (the first batch's line has a rate and an ETA, the last one the time taken) and
    // 48 queries in one batch.
    const count = (pattern: RegExp) => evalLines.filter((l) => pattern.test(l)).length;
    const context = evalLines.join("\n");
    assert.equal(
      count(/^eval: documents 64\/288 \(22%\) [\d.]+k?\/s ETA \d+(s|m\d\ds)$/),
      2,
      context,
    );
    assert.equal(count(/^eval: documents 288\/288 in \d+(s|m\d\ds) \([\d.]+k?\/s\)$/), 2, context);
    assert.equal(count(/^eval: queries 48\/48 in \d+(s|m\d\ds) \([\d.]+k?\/s\)$/), 2, context);
    const losses = await readLosses(result.runPath);
    assert.deepEqual(losses.map(([s]) => s), [5, 10]);
    assert.ok(losses[1]![1] < losses[0]![1], `loss did not decrease: ${JSON.stringify(losses)}`);
    const summary = JSON.parse(await Deno.readTextFile(join(result.runPath, "run.json")));
    assert.equal(summary.status, "finished");
    assert.equal(summary.step, 10);
    assert.equal(summary.recipe, "biencoder");
    assert.match(await Deno.readTextFile(join(result.runPath, "config.yaml")), /recipe: biencoder/);
    const checkpoints = [...Deno.readDirSync(join(result.runPath, "checkpoints"))].map((e) =>
      e.name
    );
    assert.deepEqual(checkpoints, ["checkpoint-10"]); // save_total_limit 1 rotated checkpoint-5 out
    const files = [...Deno.readDirSync(join(result.runPath, "checkpoints", "checkpoint-10"))]
      .map((e) => e.name).sort();
    assert.deepEqual(files, ["model.safetensors", "optimizer.safetensors", "trainer_state.json"]);
    for (const step of [0, 10]) {
      const evalFile = JSON.parse(
        await Deno.readTextFile(join(result.runPath, "eval", `step-${step}.json`)),
      );
      assert.equal(evalFile.step, step);
      assert.ok(evalFile.metrics["ndcg@10"] >= 0 && evalFile.metrics["ndcg@10"] <= 1);
      assert.equal(Object.keys(evalFile.per_query).length, 48); // the held-out queries
      const runText = await Deno.readTextFile(join(result.runPath, "eval", `step-${step}.run.txt`));
      assert.equal(runText.trim().split("\n").length, 48 * 100);
    }
  } finally {
    task.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

async function readRecords(runPath: string): Promise<Record<string, number>[]> {
  return (await Deno.readTextFile(join(runPath, "metrics.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l));
}

const quiet = { log: () => {}, progress: false, handleSignals: false } as const;

/** A small LoRA bi-encoder: rank 4, dropout on (so masks must be seeded and replayed). */
const loraSets = ["model.use_lora=true", "model.lora_r=4", "model.lora_dropout=0.1"];

for (const lora of [false, true]) {
  gpuTest(
    `biencoder${
      lora ? " + LoRA" : ""
    }: 4 steps straight = 2 steps, interrupt, resume 2 (identical losses)`,
    async () => {
      await getDevice();
      const dir = await Deno.makeTempDir();
      const sets = (name: string) => [
        `training.output_dir=${join(dir, name)}`,
        "training.max_steps=4",
        "training.logging_steps=1",
        "training.gradient_accumulation_steps=2",
        "training.per_device_train_batch_size=4",
        "training.eval_strategy=no",
        "training.save_strategy=steps",
        "training.save_steps=2",
        "data.group_size=2",
        ...(lora ? loraSets : []),
      ];
      try {
        const straightConfig = await defaultConfig(sets("straight"));
        const data = await readRetrievalData(straightConfig);
        const a = await biencoderTask(straightConfig, { data });
        const full = await train({ config: straightConfig, task: a, ...quiet });
        a.dispose();
        assert.equal(full.status, "finished", full.error?.stack);
        const splitConfig = await defaultConfig(sets("split"));
        const b = await biencoderTask(splitConfig, { data });
        const half = await train({ config: splitConfig, task: b, ...quiet, interruptAfterStep: 2 });
        b.dispose();
        assert.equal(half.status, "interrupted");
        const c = await biencoderTask(splitConfig, { data });
        const rest = await train({ config: splitConfig, task: c, ...quiet, resume: half.runPath });
        c.dispose();
        assert.equal(rest.status, "finished", rest.error?.stack);
        const losses = async (path: string) =>
          (await readRecords(path)).filter((r) => "train/loss" in r)
            .map((r) => [r.step, r["train/loss"], r["train/grad_norm"]]);
        const expected = await losses(full.runPath);
        assert.equal(expected.length, 4);
        assert.deepEqual(await losses(half.runPath), expected);
        const files = [...Deno.readDirSync(join(half.runPath, "checkpoints", "checkpoint-4"))]
          .map((e) => e.name).sort();
        assert.deepEqual(
          files,
          lora
            ? [
              "adapter_config.json",
              "adapter_model.safetensors",
              "optimizer.safetensors",
              "trainer_state.json",
            ]
            : ["model.safetensors", "optimizer.safetensors", "trainer_state.json"],
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

gpuTest(
  "biencoder + LoRA: checkpoint is a peft adapter; loading it back gives the trained embeddings",
  async () => {
    await getDevice();
    const dir = await Deno.makeTempDir();
    const sets = [
      `training.output_dir=${join(dir, "run")}`,
      ...loraSets,
      "training.max_steps=3",
      "training.learning_rate=0.01",
      "training.per_device_train_batch_size=4",
      "training.logging_steps=1",
      "training.eval_strategy=no",
      "training.save_strategy=steps",
      "training.save_steps=3",
      "data.group_size=2",
    ];
    try {
      const config = await defaultConfig(sets);
      const data = await readRetrievalData(config);
      const queries = [...data.evalQueries!.values()].slice(0, 6);
      const passages = [...data.corpus.values()].slice(0, 6).map(passageText);
      const q = config.data.query_max_len, p = config.data.passage_max_len;

      const a = await biencoderTask(config, { data });
      const before = await a.embed(queries, q);
      const result = await train({ config, task: a, ...quiet });
      assert.equal(result.status, "finished", result.error?.stack);
      const trained = [await a.embed(queries, q), await a.embed(passages, p)];
      // Evaluation mode: no dropout, so embedding twice gives the same numbers.
      assert.deepEqual(await a.embed(queries, q), trained[0]);
      const trainedEval = await a.evaluate!();
      const trainedParams = await hostValues(a.parameters);
      a.dispose();
      // Training moved the embeddings, so equal embeddings below mean the adapter came back.
      assert.ok(maxAbsDiff(before, trained[0]!) > 1e-3, "training did not change the embeddings");

      const checkpoint = join(result.runPath, "checkpoints", "checkpoint-3");
      await assertPeftCheckpoint(checkpoint, trainedParams, { r: 4, dropout: 0.1 });

      // Independently: the base model plus the saved adapter through peft's loader.
      const base = await loadModel(await defaultConfig([...sets, "model.use_lora=false"]));
      try {
        const adapter = await loadLoraAdapter(base.model, checkpoint);
        adapter.training = false;
        const options = { pooling: config.model.pooling, normalize: config.model.normalize };
        const reloaded = [
          await embedTexts(base.model, base.tokenizer, queries, { ...options, maxLength: q }),
          await embedTexts(base.model, base.tokenizer, passages, { ...options, maxLength: p }),
        ];
        assert.ok(maxAbsDiff(reloaded[0]!, trained[0]!) <= 1e-6);
        assert.ok(maxAbsDiff(reloaded[1]!, trained[1]!) <= 1e-6);
        adapter.dispose();
      } finally {
        disposeLoaded(base);
      }

      // And through the recipe's own checkpoint loading (what --resume does).
      const b = await biencoderTask(config, { data });
      try {
        assert.deepEqual(await b.embed(queries, q), before); // a fresh adapter: the base model
        await b.loadWeights(checkpoint);
        assert.ok(maxAbsDiff(await b.embed(queries, q), trained[0]!) <= 1e-6);
        assert.ok(maxAbsDiff(await b.embed(passages, p), trained[1]!) <= 1e-6);
        assert.deepEqual((await b.evaluate!()).metrics, trainedEval.metrics);
      } finally {
        b.dispose();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

for (const lora of [false, true]) {
  gpuTest(
    `biencoder${
      lora ? " + LoRA" : ""
    }: gradient checkpointing gives the same loss and gradients; dispose frees all`,
    async () => {
      await getDevice();
      const run = async (checkpointing: boolean) => {
        const config = await defaultConfig([
          "training.per_device_train_batch_size=4",
          "data.group_size=2",
          `training.gradient_checkpointing=${checkpointing}`,
          ...(lora ? loraSets : []),
        ]);
        const liveBefore = memoryStats().liveBytes;
        const task = await biencoderTask(config);
        assert.equal(task.model.gradientCheckpointing, checkpointing);
        let result: { loss: number; grads: Map<string, Float32Array> };
        try {
          // As the training loop runs a micro-batch: backward after microBatch has returned.
          result = await microBatchLossAndGrads(task);
        } finally {
          task.dispose();
        }
        // The model, its adapter and the inputs kept for backward are all freed.
        assert.equal(memoryStats().liveBytes, liveBefore, "GPU memory left after dispose()");
        return result;
      };
      const plain = await run(false);
      const checkpointed = await run(true);
      assertSameLossAndGrads(plain, checkpointed);
    },
  );
}
