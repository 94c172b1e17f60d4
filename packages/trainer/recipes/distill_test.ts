import assert from "node:assert/strict";
import { join } from "node:path";
import { getDevice, memoryStats, noGrad } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import { loadLoraAdapter } from "@irforge/model";
import { openCheckpoint, writeSafetensors } from "@irforge/model/safetensors";
import { passageText } from "@irforge/data";
import { DEFAULT_DIR } from "../default/mod.ts";
import { parseConfig } from "../config/parse.ts";
import type { Config } from "../config/schema.ts";
import { distillTasks, loadStudent, loadTeacher, PROJECTION, readDistillData } from "./distill.ts";
import { trainDistill } from "./distill_run.ts";
import { listCheckpoints } from "../run_dir.ts";
import {
  assertPeftCheckpoint,
  assertSameLossAndGrads,
  hostValues,
  maxAbsDiff,
  microBatchLossAndGrads,
  recordAdapterModes,
} from "./recipe_testing.ts";

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

/** A small LoRA student: rank 4, dropout on (so masks must be seeded and replayed). */
const loraSets = ["model.use_lora=true", "model.lora_r=4", "model.lora_dropout=0.1"];

/** [loss, grad_norm] of every logged step. */
async function lossesAndNorms(path: string): Promise<number[][]> {
  return (await Deno.readTextFile(join(path, "metrics.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l)).filter((r) => "train/loss" in r)
    .map((r) => [r["train/loss"], r["train/grad_norm"]]);
}

const checkpointFiles = (path: string) => [...Deno.readDirSync(path)].map((e) => e.name).sort();

const LORA_FILES = [
  "adapter_config.json",
  "adapter_model.safetensors",
  "model.safetensors",
  "optimizer.safetensors",
  "trainer_state.json",
];

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

for (const lora of [false, true]) {
  gpuTest(
    `distill${
      lora ? " + LoRA (dropout)" : ""
    }: interrupted in phase 2, resumed: same losses as straight through; phase 2 from phase 1's checkpoint`,
    async () => {
      await getDevice();
      const dir = await Deno.makeTempDir();
      try {
        const sets = [
          "phase1.max_steps=2",
          "phase2.max_steps=4",
          "training.per_device_train_batch_size=8",
          ...(lora ? loraSets : []),
        ];
        const config = await distillConfig(dir, TEACHER, sets);
        const straight = await trainDistill({ config, ...quiet });
        assert.equal(straight.status, "finished", straight.phase2?.error?.stack);
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
            await lossesAndNorms(join(half.runPath, phase)),
            await lossesAndNorms(join(straight.runPath, phase)),
            phase,
          );
          const summary = JSON.parse(
            await Deno.readTextFile(join(straight.runPath, phase, "run.json")),
          );
          assert.deepEqual(
            checkpointFiles(
              join(straight.runPath, phase, "checkpoints", `checkpoint-${summary.step}`),
            ),
            lora
              ? LORA_FILES
              : ["model.safetensors", "optimizer.safetensors", "trainer_state.json"],
          );
        }

        // Phase 1 alone, then a resume that starts phase 2 from phase 1's last checkpoint:
        // the same phase 2 as one that continued from phase 1's weights in memory.
        const phase1Only = await trainDistill({
          config: await distillConfig(dir, TEACHER, [...sets, "training.skip_phase2=true"]),
          runPath: join(dir, "phase1-only"),
          ...quiet,
        });
        assert.equal(phase1Only.phase2, null);
        const continued = await trainDistill({ config, resume: phase1Only.runPath, ...quiet });
        assert.equal(continued.status, "finished", continued.phase2?.error?.message);
        assert.equal(continued.phase1, null);
        assert.deepEqual(
          await lossesAndNorms(join(continued.runPath, "phase2")),
          await lossesAndNorms(join(straight.runPath, "phase2")),
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

gpuTest(
  "distill + LoRA: checkpoints are peft adapters plus the projection; loading one back gives the trained embeddings",
  async () => {
    await getDevice();
    const dir = await Deno.makeTempDir();
    try {
      const sets = [
        ...loraSets,
        "phase1.max_steps=2",
        "phase2.max_steps=2",
        "training.per_device_train_batch_size=8",
        "training.learning_rate=0.01",
      ];
      const config = await distillConfig(dir, TEACHER, sets);
      const data = await readDistillData(config);
      const texts = [...data.corpus.values()].slice(0, 6).map(passageText);
      const tasks = await distillTasks(config, { data });
      const before = await tasks.embed(texts, 16);
      const result = await trainDistill({ config, tasks, ...quiet });
      assert.equal(result.status, "finished", result.phase2?.error?.stack);
      const trained = await tasks.embed(texts, 16);
      // Evaluation and embed() run the adapter without dropout; training resumes with it.
      const adapter = tasks.student.loaded.adapter!;
      const modes = recordAdapterModes(adapter);
      const trainedEval = await tasks.phase2.evaluate!();
      assert.deepEqual(await tasks.embed(texts, 16), trained);
      assert.deepEqual([...modes], [false]);
      assert.equal(adapter.training, true);
      const trainedParams = await hostValues(tasks.student.parameters);
      tasks.dispose();
      // Training moved the embeddings, so equal embeddings below mean adapter and projection came back.
      assert.ok(maxAbsDiff(before, trained) > 1e-3, "training did not change the embeddings");

      const checkpoint = join(result.runPath, "phase2", "checkpoints", "checkpoint-2");
      await assertPeftCheckpoint(checkpoint, trainedParams, {
        r: 4,
        dropout: 0.1,
        extraFiles: ["model.safetensors"],
        adapterTensors: trainedParams.size - 1,
      });
      // model.safetensors: the projection alone (the base model is not trained).
      const projectionFile = await openCheckpoint(join(checkpoint, "model.safetensors"));
      let projection: Float32Array;
      try {
        assert.deepEqual(projectionFile.names(), [PROJECTION]);
        projection = await projectionFile.read(PROJECTION, { as: "f32" });
        assert.deepEqual(projection, trainedParams.get(PROJECTION));
      } finally {
        projectionFile.close();
      }

      // Independently: the base student plus the saved adapter through peft's loader, and the
      // saved projection.
      const base = await loadStudent(
        await distillConfig(dir, TEACHER, [...sets, "model.use_lora=false"]),
        32,
      );
      try {
        base.projection!.write(projection);
        const peftAdapter = await loadLoraAdapter(base.model, checkpoint);
        peftAdapter.training = false;
        const out = noGrad(() => base.embed(texts, 16));
        assert.ok(maxAbsDiff(await out.toArray(), trained) <= 1e-6);
        out.dispose();
        peftAdapter.dispose();
      } finally {
        base.dispose();
      }

      // And through the recipe's own checkpoint loading (what resume does).
      const fresh = await distillTasks(config, { data });
      try {
        assert.deepEqual(await fresh.embed(texts, 16), before); // fresh adapter and projection
        await fresh.phase2.loadWeights(checkpoint);
        assert.ok(maxAbsDiff(await fresh.embed(texts, 16), trained) <= 1e-6);
        assert.deepEqual((await fresh.phase2.evaluate!()).metrics, trainedEval.metrics);
      } finally {
        fresh.dispose();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

for (const lora of [false, true]) {
  gpuTest(
    `distill${
      lora ? " + LoRA (dropout)" : ""
    }: gradient checkpointing gives the same losses and gradients in both phases; dispose frees all`,
    async () => {
      await getDevice();
      const dir = await Deno.makeTempDir();
      try {
        const run = async (checkpointing: boolean) => {
          const config = await distillConfig(dir, TEACHER, [
            "training.per_device_train_batch_size=4",
            `training.gradient_checkpointing=${checkpointing}`,
            ...(lora ? loraSets : []),
          ]);
          const liveBefore = memoryStats().liveBytes;
          const tasks = await distillTasks(config);
          assert.equal(tasks.student.model.gradientCheckpointing, checkpointing);
          const results: { loss: number; grads: Map<string, Float32Array> }[] = [];
          try {
            for (const task of [tasks.phase1, tasks.phase2]) {
              // As the training loop runs a micro-batch: backward after microBatch has returned.
              results.push(await microBatchLossAndGrads(task));
            }
          } finally {
            tasks.dispose();
          }
          // Student, adapter, projection, teacher and the inputs kept for backward are all freed.
          assert.equal(memoryStats().liveBytes, liveBefore, "GPU memory left after dispose()");
          return results;
        };
        const plain = await run(false);
        const checkpointed = await run(true);
        plain.forEach((p, phase) =>
          assertSameLossAndGrads(p, checkpointed[phase]!, `phase ${phase + 1}`)
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

gpuTest(
  "distill: with save_strategy no, the artifacts copy holds the final weights (same files as a checkpointed run)",
  async () => {
    await getDevice();
    const dir = await Deno.makeTempDir();
    try {
      const short = ["phase1.max_steps=2", "phase2.max_steps=2"];
      const artifactsOf = async (name: string, sets: string[]) => {
        const config = await distillConfig(join(dir, name), TEACHER, [
          ...short,
          `training.artifacts_dir=${join(dir, name, "artifacts")}`,
          ...sets,
        ]);
        const result = await trainDistill({ config, ...quiet });
        assert.equal(result.status, "finished", result.phase2?.error?.message);
        return join(dir, name, "artifacts");
      };
      const kept = await artifactsOf("kept", []);
      const unsaved = await artifactsOf("unsaved", ["training.save_strategy=no"]);
      // No checkpoint was kept, so the old copy (from the last checkpoint) had nothing to copy.
      assert.equal((await listCheckpoints(join(dir, "unsaved", "run", "phase2"))).length, 0);
      // Same seed, same steps: the weights written from memory equal the final checkpoint's.
      const weights = (path: string) => Deno.readFileSync(join(path, "model.safetensors"));
      assert.deepEqual(weights(unsaved), weights(kept));
      assert.ok(checkpointFiles(unsaved).includes("config.yaml"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
