import assert from "node:assert/strict";
import { join } from "node:path";
import {
  addScalar,
  getDevice,
  log,
  mean,
  mul,
  sub,
  type Tensor,
  Tensor as T,
  variable,
} from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import { parseConfig } from "./config/parse.ts";
import { type MicroBatchResult, train, type TrainingTask } from "./loop.ts";
import { lrMultiplier } from "./schedule.ts";
import { listCheckpoints } from "./run_dir.ts";

/** A quadratic problem: loss of micro-batch i = mean((w − target_i)²). */
function quadraticTask(targets: number[][], options: { nanAtStep?: number } = {}) {
  const w = variable(T.fromArray(new Float32Array(targets[0]!.length).fill(0.5), [4]).keep());
  let calls = 0;
  const task: TrainingTask = {
    recipe: "quadratic",
    parameters: new Map([["w", w]]),
    batchesPerEpoch: targets.length,
    microBatch(_epoch, index): Promise<MicroBatchResult> {
      calls++;
      const target = T.fromArray(Float32Array.from(targets[index]!), [4]);
      const d = sub(w, target);
      const loss = mean(mul(d, d));
      const parts: Record<string, Tensor> = { main_loss: mean(mul(d, d)) };
      // log(−1) = NaN in one named part at the chosen step (2 micro-batches per step).
      const step = Math.floor((calls - 1) / 2) + 1;
      if (options.nanAtStep === step) parts.aux_loss = log(addScalar(mean(w), -100));
      return Promise.resolve({ loss, parts, tokens: 4 });
    },
    saveWeights: () => Promise.resolve(),
    loadWeights: () => Promise.resolve(),
  };
  return { task, w };
}

const quadraticConfig = (dir: string, sets: string[] = []) =>
  parseConfig(
    `recipe: biencoder
model: {model_name_or_path: unused, use_lora: false}
data: {data_path: unused}
training:
  output_dir: ${dir}
  max_steps: 5
  gradient_accumulation_steps: 2
  learning_rate: 0.1
  warmup_steps: 2
  lr_scheduler_type: linear
  weight_decay: 0.01
  max_grad_norm: 0.5
  logging_steps: 1
  save_strategy: "no"
`,
    "test.yaml",
    sets,
  );

/** float64 reference of the loop on the quadratic task: accumulation, clipping, schedule, AdamW. */
function referenceQuadratic(targets: number[][], steps: number): { w: number[]; losses: number[] } {
  let w = [0.5, 0.5, 0.5, 0.5];
  const m = [0, 0, 0, 0], v = [0, 0, 0, 0];
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const grad = [0, 0, 0, 0];
    let loss = 0;
    for (let micro = 0; micro < 2; micro++) {
      const t = targets[(s * 2 + micro) % targets.length]!;
      loss += w.reduce((a, wi, i) => a + (wi - t[i]!) ** 2, 0) / 4 / 2;
      w.forEach((wi, i) => grad[i]! += (2 * (wi - t[i]!)) / 4 / 2);
    }
    losses.push(loss);
    const norm = Math.sqrt(grad.reduce((a, g) => a + g * g, 0));
    const factor = Math.min(1, 0.5 / (norm + 1e-6));
    const lr = 0.1 * lrMultiplier(s, { type: "linear", warmupSteps: 2, totalSteps: steps });
    const k = s + 1;
    w = w.map((wi, i) => {
      const g = grad[i]! * factor;
      m[i] = 0.9 * m[i]! + 0.1 * g;
      v[i] = 0.999 * v[i]! + 0.001 * g * g;
      const p = wi * (1 - lr * 0.01);
      return p -
        (lr / (1 - 0.9 ** k)) * m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(1 - 0.999 ** k) + 1e-8);
    });
  }
  return { w, losses };
}

const TARGETS = [[1, 2, 3, 4], [-1, 0, 1, 2], [2, 2, -2, -2], [0.5, -0.5, 1.5, 3]];

gpuTest("loop: accumulation, clipping, schedule and AdamW match a float64 reference", async () => {
  await getDevice();
  const dir = await Deno.makeTempDir();
  try {
    const { task, w } = quadraticTask(TARGETS);
    const result = await train({
      config: quadraticConfig(join(dir, "run")),
      task,
      log: () => {},
      progress: false,
      handleSignals: false,
    });
    assert.equal(result.status, "finished");
    const expected = referenceQuadratic(TARGETS, 5);
    const got = [...(await w.toArray())];
    got.forEach((x, i) =>
      assert.ok(Math.abs(x - expected.w[i]!) < 1e-5, `w[${i}] ${x} vs ${expected.w[i]}`)
    );
    result.losses.forEach(({ loss }, i) =>
      assert.ok(
        Math.abs(loss - expected.losses[i]!) < 1e-5,
        `loss ${i}: ${loss} vs ${expected.losses[i]}`,
      )
    );
    const records = (await Deno.readTextFile(join(result.runPath, "metrics.jsonl"))).trim()
      .split("\n").map((l) => JSON.parse(l));
    assert.equal(records.length, 5);
    assert.equal(records[0].step, 1);
    assert.equal(records[0]["train/learning_rate"], 0); // HF: the first warm-up step runs at lr 0
    assert.ok(Math.abs(records[2]["train/learning_rate"] - 0.1) < 1e-12);
    assert.ok(typeof records[0]["train/main_loss"] === "number");
    assert.ok(typeof records[0]["gpu_memory_bytes"] === "number");
    assert.equal(records[4].epoch, 2.5);
    w.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest("loop: a NaN loss term stops the run naming the step and the term", async () => {
  await getDevice();
  const dir = await Deno.makeTempDir();
  try {
    const { task, w } = quadraticTask(TARGETS, { nanAtStep: 3 });
    const result = await train({
      config: quadraticConfig(join(dir, "run"), ["training.logging_steps=2"]),
      task,
      log: () => {},
      progress: false,
      handleSignals: false,
    });
    assert.equal(result.status, "failed");
    assert.match(result.error!.message, /step 3: train\/aux_loss is NaN/);
    const summary = JSON.parse(await Deno.readTextFile(join(result.runPath, "run.json")));
    assert.equal(summary.status, "failed");
    assert.match(summary.error, /step 3/);
    w.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest("loop: interrupt saves a checkpoint; resume continues with identical losses", async () => {
  await getDevice();
  const dir = await Deno.makeTempDir();
  try {
    const extra = ["training.save_strategy=steps", "training.save_steps=100"];
    const straight = quadraticTask(TARGETS);
    const full = await train({
      config: quadraticConfig(join(dir, "straight"), extra),
      task: straight.task,
      log: () => {},
      progress: false,
      handleSignals: false,
    });
    const first = quadraticTask(TARGETS);
    // The quadratic task keeps its weights in memory only, so save/load them for real here.
    const persist = (t: ReturnType<typeof quadraticTask>) => {
      t.task.saveWeights = async (d) =>
        await Deno.writeTextFile(join(d, "w.json"), JSON.stringify([...(await t.w.toArray())]));
      t.task.loadWeights = async (d) => {
        const values = JSON.parse(await Deno.readTextFile(join(d, "w.json"))) as number[];
        t.w.write(Float32Array.from(values));
      };
    };
    persist(first);
    const half = await train({
      config: quadraticConfig(join(dir, "split"), extra),
      task: first.task,
      log: () => {},
      progress: false,
      handleSignals: false,
      interruptAfterStep: 2,
    });
    assert.equal(half.status, "interrupted");
    assert.deepEqual((await listCheckpoints(half.runPath)).map((c) => c.step), [2]);
    const second = quadraticTask(TARGETS);
    persist(second);
    const rest = await train({
      config: quadraticConfig(join(dir, "split"), extra),
      task: second.task,
      resume: half.runPath,
      log: () => {},
      progress: false,
      handleSignals: false,
    });
    assert.equal(rest.status, "finished");
    assert.equal(rest.runPath, half.runPath);
    const read = async (p: string) =>
      (await Deno.readTextFile(join(p, "metrics.jsonl"))).trim().split("\n").map((l) =>
        JSON.parse(l)
      ).filter((r) => "train/loss" in r).map((r) => [r.step, r["train/loss"]]);
    assert.deepEqual(await read(half.runPath), await read(full.runPath));
    straight.w.dispose();
    first.w.dispose();
    second.w.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest("loop: the evaluation log line names the relevance level the measures used", async () => {
  await getDevice();
  const dir = await Deno.makeTempDir();
  try {
    const { task } = quadraticTask(TARGETS);
    task.evaluate = () => Promise.resolve({ metrics: { map: 0.2476 }, relevanceLevel: 2 });
    const lines: string[] = [];
    await train({
      config: quadraticConfig(join(dir, "run"), [
        "training.max_steps=1",
        "training.eval_strategy=steps",
        "data.eval_qrels_path=unused",
      ]),
      task,
      log: (line) => lines.push(line),
      progress: false,
      handleSignals: false,
    });
    assert.ok(
      lines.some((l) => l.includes("eval step 1 (trec_eval -l 2): map 0.2476")),
      lines.join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
