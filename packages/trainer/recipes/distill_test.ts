import assert from "node:assert/strict";
import { join } from "node:path";
import { getDevice } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import { writeSafetensors } from "@irforge/model/safetensors";
import { passageText } from "@irforge/data";
import { DEFAULT_DIR } from "../default/mod.ts";
import { parseConfig } from "../config/parse.ts";
import type { Config } from "../config/schema.ts";
import { distillTasks, loadTeacher, readDistillData, trainDistill } from "./distill.ts";

/** A student smaller than the default tiny Llama: 1 layer, hidden 16. */
async function studentDir(dir: string): Promise<string> {
  const config = JSON.parse(
    await Deno.readTextFile(join(DEFAULT_DIR, "tiny-llama", "config.json")),
  );
  Object.assign(config, {
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
  });
  const path = join(dir, "student");
  await Deno.mkdir(path, { recursive: true });
  await Deno.writeTextFile(join(path, "config.json"), JSON.stringify(config));
  return path;
}

async function distillConfig(dir: string, teacher: string, sets: string[]): Promise<Config> {
  const data = join(DEFAULT_DIR, "data");
  const text = `recipe: distill
name: test-distill
model:
  model_name_or_path: random-init:${await studentDir(dir)}
  teacher_model_name_or_path: ${teacher}
  use_lora: false
  pooling: mean
  normalize: true
  projection_dim: 32
data:
  data_path: ${data}/corpus.jsonl
  queries_path: ${data}/queries.jsonl
  qrels_path: ${data}/qrels/train.tsv
  eval_qrels_path: ${data}/qrels/test.tsv
  query_max_len: 8
  passage_max_len: 16
training:
  output_dir: ${join(dir, "run")}
  per_device_train_batch_size: 16
  per_device_eval_batch_size: 64
  learning_rate: 0.003
  temperature: 0.1
  logging_steps: 1
  eval_strategy: "no"
  save_strategy: steps
  save_steps: 100
phase1:
  max_steps: 6
phase2:
  max_steps: 4
`;
  return parseConfig(text, "distill-test.yaml", sets);
}

async function losses(path: string): Promise<number[]> {
  return (await Deno.readTextFile(join(path, "metrics.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l)).filter((r) => "train/loss" in r).map((r) => r["train/loss"]);
}

const quiet = { log: () => {}, progress: false, handleSignals: false } as const;
const TEACHER = `random-init:${join(DEFAULT_DIR, "tiny-llama")}`;

gpuTest("distill: phase 1 then phase 2 into <run>/phase1, <run>/phase2; losses fall", async () => {
  await getDevice();
  const dir = await Deno.makeTempDir();
  try {
    const config = await distillConfig(dir, TEACHER, [
      "phase2.eval_strategy=steps",
      "phase2.eval_steps=4",
    ]);
    const result = await trainDistill({ config, ...quiet });
    assert.equal(result.status, "finished", result.phase1?.error?.message);
    assert.equal(result.phase2?.status, "finished", result.phase2?.error?.message);
    const p1 = await losses(join(result.runPath, "phase1"));
    assert.equal(p1.length, 6);
    assert.ok(p1[5]! < p1[0]! * 0.8, `phase 1 loss did not fall: ${p1}`);
    const records = (await Deno.readTextFile(join(result.runPath, "phase1", "metrics.jsonl")))
      .trim().split("\n").map((l) => JSON.parse(l));
    assert.ok("train/mse" in records[0] && "train/cosine" in records[0]);
    const p2 = await losses(join(result.runPath, "phase2"));
    assert.equal(p2.length, 4);
    const phase2Records = (await Deno.readTextFile(join(result.runPath, "phase2", "metrics.jsonl")))
      .trim().split("\n").map((l) => JSON.parse(l));
    assert.ok("train/infonce" in phase2Records[0] && "train/mse" in phase2Records[0]);
    const evalFile = JSON.parse(
      await Deno.readTextFile(join(result.runPath, "phase2", "eval", "step-4.json")),
    );
    assert.ok(evalFile.metrics["ndcg@10"] >= 0 && evalFile.metrics["ndcg@10"] <= 1);
    assert.equal(Object.keys(evalFile.per_query).length, 48);
    for (const phase of ["phase1", "phase2"]) {
      const summary = JSON.parse(
        await Deno.readTextFile(join(result.runPath, phase, "run.json")),
      );
      assert.equal(summary.status, "finished");
      const files = [
        ...Deno.readDirSync(
          join(result.runPath, phase, "checkpoints", `checkpoint-${summary.step}`),
        ),
      ].map((e) => e.name).sort();
      assert.deepEqual(files, ["model.safetensors", "optimizer.safetensors", "trainer_state.json"]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest(
  "distill: precomputed teacher embeddings give the same phase-1 losses as the teacher model",
  async () => {
    await getDevice();
    const dir = await Deno.makeTempDir();
    try {
      const modelConfig = await distillConfig(dir, TEACHER, ["training.skip_phase2=true"]);
      const data = await readDistillData(modelConfig);
      // Table: every corpus passage and training query, embedded by the teacher as phase 1 does.
      const teacher = (await loadTeacher(modelConfig))!;
      const items = [
        ...[...data.corpus].map(([id, doc]) => ({ id, text: passageText(doc) })),
        ...[...data.trainQrels.keys()].map((id) => ({ id, text: data.queries.get(id)! })),
      ];
      const table = new Float32Array(items.length * teacher.dim);
      for (let i = 0; i < items.length; i += 64) {
        table.set(await teacher.embed(items.slice(i, i + 64), 16), i * teacher.dim);
      }
      teacher.dispose();
      const tablePath = join(dir, "teacher.safetensors");
      await writeSafetensors(
        tablePath,
        [["embeddings", { dtype: "F32", shape: [items.length, teacher.dim], data: table }]],
        { metadata: { ids: JSON.stringify(items.map((i) => i.id)) } },
      );
      const fromModel = await trainDistill({ config: modelConfig, ...quiet });
      const tableConfig = await distillConfig(dir, tablePath, [
        "training.skip_phase2=true",
        `training.output_dir=${join(dir, "run-table")}`,
      ]);
      const fromTable = await trainDistill({ config: tableConfig, ...quiet });
      assert.equal(fromTable.status, "finished", fromTable.phase1?.error?.message);
      assert.equal(fromTable.phase2, null);
      const a = await losses(join(fromModel.runPath, "phase1"));
      const b = await losses(join(fromTable.runPath, "phase1"));
      assert.equal(a.length, 6);
      a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) < 1e-5 * Math.abs(x), `${a} vs ${b}`));

      const missing = await distillTasks(
        await distillConfig(dir, tablePath, ["model.projection_dim=8"]),
      ).catch((e) => e as Error);
      assert.match(String(missing), /projection_dim 8 must equal the teacher's width 32/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest("distill: interrupted in phase 2, resumed: same losses as straight through", async () => {
  await getDevice();
  const dir = await Deno.makeTempDir();
  try {
    const config = await distillConfig(dir, TEACHER, [
      "phase1.max_steps=2",
      "phase2.max_steps=4",
      "training.per_device_train_batch_size=8",
    ]);
    const straight = await trainDistill({ config, ...quiet });
    const tasks = await distillTasks(config);
    // Interrupt phase 2 after its step 2 (a fresh task set, as a new process would have).
    const phase2 = tasks.phase2;
    let calls = 0;
    const interrupting = {
      ...phase2,
      microBatch: async (...args: Parameters<typeof phase2.microBatch>) => {
        calls++;
        if (calls === 3) Deno.kill(Deno.pid, "SIGTERM");
        return await phase2.microBatch(...args);
      },
    };
    const half = await trainDistill({
      config,
      tasks: { ...tasks, phase2: interrupting },
      runPath: join(dir, "split"),
      log: () => {},
      progress: false,
    });
    tasks.dispose();
    assert.equal(half.status, "interrupted");
    const rest = await trainDistill({ config, resume: half.runPath, ...quiet });
    assert.equal(rest.status, "finished", rest.phase2?.error?.message);
    assert.equal(rest.phase1, null); // phase 1 was finished: skipped
    for (const phase of ["phase1", "phase2"]) {
      assert.deepEqual(
        await losses(join(half.runPath, phase)),
        await losses(join(straight.runPath, phase)),
        phase,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
