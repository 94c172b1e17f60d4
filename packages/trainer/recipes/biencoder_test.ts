import assert from "node:assert/strict";
import { join } from "node:path";
import { getDevice } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import { defaultConfig } from "../default/mod.ts";
import { train } from "../loop.ts";
import { biencoderTask, readRetrievalData } from "./biencoder.ts";
import { poolingWeights } from "./pooling.ts";

Deno.test("pooling weights: mean, last and cls for either padding side", () => {
  // Row 0 right-padded (3 real of 4), row 1 left-padded (2 real).
  const mask = [1, 1, 1, 0, 0, 0, 1, 1];
  assert.deepEqual(
    [...poolingWeights(mask, 2, 4, "mean")],
    [
      1 / 3,
      1 / 3,
      1 / 3,
      0,
      0,
      0,
      0.5,
      0.5,
    ].map((x) => Math.fround(x)),
  );
  assert.deepEqual([...poolingWeights(mask, 2, 4, "last")], [0, 0, 1, 0, 0, 0, 0, 1]);
  assert.deepEqual([...poolingWeights(mask, 2, 4, "cls")], [1, 0, 0, 0, 0, 0, 1, 0]);
  assert.throws(() => poolingWeights([0, 0], 1, 2, "mean"), /row 0 has no real token/);
});

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
  const task = await biencoderTask(config);
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

gpuTest(
  "biencoder: 4 steps straight = 2 steps, interrupt, resume 2 (identical losses)",
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
      "training.save_strategy=no",
      "data.group_size=2",
    ];
    const quiet = { log: () => {}, progress: false, handleSignals: false } as const;
    try {
      const straightConfig = await defaultConfig(sets("straight"));
      const data = await readRetrievalData(straightConfig);
      const a = await biencoderTask(straightConfig, { data });
      const full = await train({ config: straightConfig, task: a, ...quiet });
      a.dispose();
      const splitConfig = await defaultConfig(sets("split"));
      const b = await biencoderTask(splitConfig, { data });
      const half = await train({ config: splitConfig, task: b, ...quiet, interruptAfterStep: 2 });
      b.dispose();
      assert.equal(half.status, "interrupted");
      const c = await biencoderTask(splitConfig, { data });
      const rest = await train({ config: splitConfig, task: c, ...quiet, resume: half.runPath });
      c.dispose();
      assert.equal(rest.status, "finished");
      const expected = await readLosses(full.runPath);
      assert.equal(expected.length, 4);
      assert.deepEqual(await readLosses(half.runPath), expected);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
