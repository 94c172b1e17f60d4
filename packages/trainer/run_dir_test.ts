import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkpointsToDelete,
  findResumeCheckpoint,
  listCheckpoints,
  parseRunSummary,
  parseTrainerState,
  RunDir,
  serializeTrainerState,
  type TrainerState,
} from "./run_dir.ts";
import { Rng } from "./rng.ts";

/** A clock that advances one second per call, for reproducible timestamps. */
function fakeClock(start = Date.UTC(2026, 10, 23, 10, 0, 0)) {
  let t = start;
  return () => new Date(t += 1000);
}

function state(step: number, best: TrainerState["best"] = null): TrainerState {
  return {
    step,
    epoch: step / 100,
    data_position: { epoch: Math.floor(step / 100), index: (step % 100) * 8 },
    rng_state: Rng.seeded(step).state(),
    best,
  };
}

async function withTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "irforge-run-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function readJson(path: string) {
  return JSON.parse(await Deno.readTextFile(path));
}

Deno.test("checkpointsToDelete follows HF _rotate_checkpoints", () => {
  const steps = [300, 100, 500, 200, 400];
  assert.deepEqual(checkpointsToDelete(steps, null, null), []);
  assert.deepEqual(checkpointsToDelete(steps, 5, 200), []);
  assert.deepEqual(checkpointsToDelete(steps, 2, null), [100, 200, 300]);
  // Best moved to second-to-last: [100, 300, 400, 200, 500].
  assert.deepEqual(checkpointsToDelete(steps, 2, 200), [100, 300, 400]);
  // Limit 1 with an older best keeps two: the best and the newest.
  assert.deepEqual(checkpointsToDelete(steps, 1, 200), [100, 300, 400]);
  // Limit 1 with the newest as best keeps only it.
  assert.deepEqual(checkpointsToDelete(steps, 1, 500), [100, 200, 300, 400]);
  assert.deepEqual(checkpointsToDelete(steps, 3, 100), [200, 300]);
  assert.deepEqual(checkpointsToDelete(steps, 1, null), [100, 200, 300, 400]);
});

Deno.test("trainer_state.json: round trip and field-naming errors", () => {
  const s: TrainerState = {
    ...state(250, { metric: "eval/ndcg@10", value: 0.5, step: 200 }),
    log_history_tail: [{ step: 250, time: "2026-11-23T10:00:00.000Z", "train/loss": 1.5 }],
  };
  assert.deepEqual(parseTrainerState(serializeTrainerState(s), "ts.json"), s);
  const broken = { ...s, data_position: { epoch: 2, index: -1 } };
  assert.throws(
    () => parseTrainerState(JSON.stringify(broken), "ts.json"),
    /^InputError: ts\.json \(field "data_position\.index"\): expected an integer ≥ 0$/,
  );
  assert.throws(
    () => parseTrainerState(JSON.stringify({ ...s, rng_state: { s: [1, 2, 3] } }), "ts.json"),
    /field "rng_state"/,
  );
  assert.throws(() => parseTrainerState("{", "ts.json"), /^InputError: ts\.json: not valid JSON/);
});

Deno.test("RunDir.create: run.json, unique names, atomic writes", async () => {
  await withTempDir(async (root) => {
    const now = fakeClock();
    const base = join(root, "runs", "blockrank-dl19");
    const first = await RunDir.create(base, { recipe: "blockrank", totalSteps: 500, now });
    const second = await RunDir.create(base, { recipe: "blockrank", totalSteps: 500, now });
    const third = await RunDir.create(base, {
      recipe: "blockrank",
      totalSteps: 500,
      name: "dl19",
      now,
    });
    assert.equal(first.path, base);
    assert.equal(second.path, base + "-2");
    assert.equal(third.path, base + "-3");
    const run = await readJson(join(second.path, "run.json"));
    assert.deepEqual(run, {
      name: "blockrank-dl19-2",
      recipe: "blockrank",
      status: "running",
      started_at: "2026-11-23T10:00:02.000Z",
      updated_at: "2026-11-23T10:00:02.000Z",
      finished_at: null,
      step: 0,
      total_steps: 500,
      best: null,
      error: null,
      device: null,
    });
    assert.equal((await readJson(join(third.path, "run.json"))).name, "dl19-3");
    await first.writeConfig("recipe: blockrank\n");
    assert.equal(await Deno.readTextFile(join(base, "config.yaml")), "recipe: blockrank\n");
    const names = [];
    for await (const entry of Deno.readDir(base)) names.push(entry.name);
    assert.deepEqual(names.sort(), [
      "checkpoints",
      "config.yaml",
      "eval",
      "metrics.jsonl",
      "run.json",
    ]);
    for (const run of [first, second, third]) await run.finish("finished");
    const done = parseRunSummary(await Deno.readTextFile(join(base, "run.json")), "run.json");
    assert.equal(done.status, "finished");
    assert.ok(done.finished_at !== null);
  });
});

Deno.test("run.json records the device; absent or malformed device fields", async () => {
  await withTempDir(async (root) => {
    const device = {
      provider: "dawn",
      description: "NVIDIA H200",
      features: ["shader-f16", "subgroups"],
      subgroup_sizes: [32, 32],
    };
    const run = await RunDir.create(join(root, "r"), {
      recipe: "blockrank",
      totalSteps: 5,
      device,
      now: fakeClock(),
    });
    const text = await Deno.readTextFile(join(run.path, "run.json"));
    assert.deepEqual(parseRunSummary(text, "run.json").device, device);
    const old = JSON.parse(text);
    delete old.device;
    assert.equal(parseRunSummary(JSON.stringify(old), "run.json").device, null);
    assert.throws(
      () => parseRunSummary(JSON.stringify({ ...old, device: { provider: 3 } }), "r/run.json"),
      /r\/run\.json.*device/,
    );
    await run.finish("finished");
  });
});

Deno.test("RunDir.log: one JSON line per call, step/time first, NaN as null", async () => {
  await withTempDir(async (root) => {
    const run = await RunDir.create(join(root, "r"), {
      recipe: "sft",
      totalSteps: 20,
      now: fakeClock(),
    });
    await run.log(10, { "train/loss": 2.31, "train/learning_rate": 1e-4, tokens_per_s: 5400 });
    // Lines are on disk before the run ends (a dashboard may read them now).
    const partial = await Deno.readTextFile(join(root, "r", "metrics.jsonl"));
    assert.equal(partial.split("\n").length, 2);
    await run.log(20, { "train/loss": NaN, "eval/ndcg@10": 0.61 });
    assert.equal((await readJson(join(root, "r", "run.json"))).step, 20);
    await assert.rejects(() => run.log(1.5, {}), RangeError);
    await assert.rejects(() => run.log(3, { time: 1 }), /reserved/);
    await run.finish("interrupted");
    const lines = (await Deno.readTextFile(join(root, "r", "metrics.jsonl"))).trimEnd().split("\n");
    assert.equal(
      lines[0],
      '{"step":10,"time":"2026-11-23T10:00:02.000Z","train/loss":2.31,' +
        '"train/learning_rate":0.0001,"tokens_per_s":5400}',
    );
    assert.deepEqual(JSON.parse(lines[1]!), {
      step: 20,
      time: "2026-11-23T10:00:04.000Z",
      "train/loss": null,
      "eval/ndcg@10": 0.61,
    });
    assert.equal(lines.length, 2);
  });
});

Deno.test("RunDir checkpoints: commit, rotation keeps the best, eval files", async () => {
  await withTempDir(async (root) => {
    const run = await RunDir.create(join(root, "r"), {
      recipe: "blockrank",
      totalSteps: 500,
      saveTotalLimit: 2,
      bestMetric: { metric: "eval/ndcg@10" },
      now: fakeClock(),
    });
    const scores = [0.3, 0.6, 0.5, 0.4, 0.55];
    for (const [i, score] of scores.entries()) {
      const step = (i + 1) * 100;
      await run.writeEval(step, {
        metrics: { "ndcg@10": score },
        per_query: { q1: { "ndcg@10": score } },
      }, `q1 Q0 d1 1 ${score} run\n`);
      const tmp = await run.beginCheckpoint(step);
      await Deno.writeTextFile(join(tmp, "adapter_model.safetensors"), `weights ${step}`);
      const final = await run.commitCheckpoint(step, state(step, run.best));
      assert.equal(final, join(root, "r", "checkpoints", `checkpoint-${step}`));
    }
    // Best is step 200 (0.6): kept with the newest, as HF does.
    assert.deepEqual(run.best, { metric: "eval/ndcg@10", value: 0.6, step: 200 });
    assert.deepEqual((await run.listCheckpoints()).map((c) => c.step), [200, 500]);
    assert.equal(
      await Deno.readTextFile(
        join(root, "r", "checkpoints", "checkpoint-200", "adapter_model.safetensors"),
      ),
      "weights 200",
    );
    assert.deepEqual(await readJson(join(root, "r", "eval", "step-300.json")), {
      step: 300,
      metrics: { "ndcg@10": 0.5 },
      per_query: { q1: { "ndcg@10": 0.5 } },
    });
    assert.equal(
      await Deno.readTextFile(join(root, "r", "eval", "step-300.run.txt")),
      "q1 Q0 d1 1 0.5 run\n",
    );
    assert.deepEqual((await readJson(join(root, "r", "run.json"))).best, run.best);
    await assert.rejects(() => run.writeEval(600, { metrics: { "mrr@10": 1 } }), /not among/);
    // A half-written checkpoint is not listed and not resumed from.
    await run.beginCheckpoint(600);
    assert.equal((await findResumeCheckpoint(join(root, "r"))).step, 500);
    await run.finish("failed", new Error("out of memory"));
    const summary = await readJson(join(root, "r", "run.json"));
    assert.equal(summary.status, "failed");
    assert.equal(summary.error, "out of memory");
  });
});

Deno.test("RunDir: lower-is-better metrics pick the minimum", async () => {
  await withTempDir(async (root) => {
    const run = await RunDir.create(join(root, "r"), {
      recipe: "sft",
      totalSteps: 3,
      bestMetric: { metric: "loss" },
    });
    for (const [step, loss] of [[1, 2.0], [2, 1.5], [3, 1.7]]) {
      await run.writeEval(step!, { metrics: { loss: loss! } });
    }
    assert.deepEqual(run.best, { metric: "eval/loss", value: 1.5, step: 2 });
    await run.finish("finished");
  });
});

Deno.test("RunDir.resume: continues the run, drops metrics after the checkpoint", async () => {
  await withTempDir(async (root) => {
    const path = join(root, "r");
    const run = await RunDir.create(path, {
      recipe: "blockrank",
      totalSteps: 30,
      now: fakeClock(),
    });
    for (const step of [10, 20, 30]) await run.log(step, { "train/loss": step });
    await assert.rejects(() => run.commitCheckpoint(20, state(20)), Deno.errors.NotFound);
    assert.deepEqual(await listCheckpoints(path), []);
    await run.beginCheckpoint(20);
    await run.commitCheckpoint(20, state(20));
    await run.finish("interrupted");
    // A malformed line (e.g. a crash mid-write) is kept, not dropped.
    await Deno.writeTextFile(join(path, "metrics.jsonl"), '{"step": 31, "trai', { append: true });

    const checkpoint = await findResumeCheckpoint(path);
    assert.equal(checkpoint.step, 20);
    assert.deepEqual(await findResumeCheckpoint(checkpoint.path), checkpoint);
    const restored = parseTrainerState(
      await Deno.readTextFile(join(checkpoint.path, "trainer_state.json")),
      "trainer_state.json",
    );
    assert.deepEqual(restored, state(20));

    const resumed = await RunDir.resume(path, checkpoint.step, {
      recipe: "blockrank",
      totalSteps: 30,
    });
    assert.equal(resumed.summary.status, "running");
    assert.equal(resumed.summary.step, 20);
    await resumed.log(30, { "train/loss": 29 });
    await resumed.finish("finished");
    const lines = (await Deno.readTextFile(join(path, "metrics.jsonl"))).trimEnd().split("\n");
    assert.deepEqual(lines.map((l) => l.slice(0, 12)), [
      '{"step":10,"',
      '{"step":20,"',
      '{"step": 31,',
      '{"step":30,"',
    ]);
    await assert.rejects(() => findResumeCheckpoint(join(root, "nothing")), /nothing to resume/);
  });
});
