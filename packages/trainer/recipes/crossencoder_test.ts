import assert from "node:assert/strict";
import { join } from "node:path";
import { getDevice, memoryStats, noGrad, parameter, Tensor } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import { loadLoraAdapter } from "@irforge/model";
import { openCheckpoint } from "@irforge/model/safetensors";
import { collate, passageText, readBeirCorpus, readBeirQueries } from "@irforge/data";
import { createLoss } from "@irforge/losses";
import { formatBm25Run, indexCorpus, retrieveAll } from "@irforge/eval";
import { DEFAULT_CONFIG_PATH, DEFAULT_DIR } from "../default/mod.ts";
import { parseConfig } from "../config/parse.ts";
import type { Config } from "../config/schema.ts";
import { train } from "../loop.ts";
import { crossencoderTask, groupLoss, pairIds, SCORE_HEAD, scorePairs } from "./crossencoder.ts";
import { readRetrievalData } from "./retrieval_data.ts";
import { disposeLoaded, loadModel } from "./model_setup.ts";
import {
  assertPeftCheckpoint,
  assertSameLossAndGrads,
  hostValues,
  maxAbsDiff,
  microBatchLossAndGrads,
  recordAdapterModes,
} from "./recipe_testing.ts";

/** BM25 top-`k` of every default-collection query, written as a TREC run in `dir`. */
async function bm25Run(dir: string, k: number): Promise<string> {
  const corpus = await readBeirCorpus(join(DEFAULT_DIR, "data", "corpus.jsonl"));
  const queries = await readBeirQueries(join(DEFAULT_DIR, "data", "queries.jsonl"));
  const path = join(dir, "bm25.txt");
  await Deno.writeTextFile(
    path,
    formatBm25Run(retrieveAll(indexCorpus(corpus), queries, k), "bm25"),
  );
  return path;
}

/**
 * The judgments of the first `n` training queries: a cross-encoder from random init needs
 * hundreds of steps for the whole synthetic task, a few queries it learns in a dozen.
 */
async function fewQueries(dir: string, n: number): Promise<string> {
  const lines = (await Deno.readTextFile(join(DEFAULT_DIR, "data", "qrels", "train.tsv")))
    .trim().split("\n");
  const kept = new Set<string>();
  const out = [lines[0]!];
  for (const line of lines.slice(1)) {
    const qid = line.split("\t")[0]!;
    if (!kept.has(qid) && kept.size === n) continue;
    kept.add(qid);
    out.push(line);
  }
  const path = join(dir, "train-few.tsv");
  await Deno.writeTextFile(path, out.join("\n") + "\n");
  return path;
}

/** The default run's data and model as a cross-encoder config. */
async function crossConfig(runPath: string, sets: string[]): Promise<Config> {
  const text = (await Deno.readTextFile(DEFAULT_CONFIG_PATH))
    .replaceAll("$DEFAULT_DIR", DEFAULT_DIR)
    .replace("recipe: biencoder", "recipe: crossencoder")
    .replace("name: default-biencoder", "name: test-crossencoder");
  return parseConfig(text, DEFAULT_CONFIG_PATH, [
    `data.run_path=${runPath}`,
    "model.pooling=last",
    ...sets,
  ]);
}

async function readLosses(runPath: string): Promise<[number, number][]> {
  return (await Deno.readTextFile(join(runPath, "metrics.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l)).filter((r) => "train/loss" in r)
    .map((r) => [r.step, r["train/loss"]]);
}

const quiet = { log: () => {}, progress: false, handleSignals: false } as const;

/** A small LoRA: rank 4, dropout on (so masks must be seeded and replayed). */
const loraSets = ["model.use_lora=true", "model.lora_r=4", "model.lora_dropout=0.1"];

Deno.test("pairIds: [BOS] query [EOS] passage [EOS], each side truncated", () => {
  const tokenizer = {
    encode: (text: string) => text.split(" ").map((w) => w.length + 10),
    decode: () => "",
    bosId: 1,
    eosId: 2,
    padId: 0,
  };
  assert.deepEqual(pairIds(tokenizer, "ab c", "dddd e ff", 4, 3), [1, 12, 11, 2, 14, 11, 2]);
});

gpuTest("groupLoss: softmax CE per group, BCE and RankNet against float64 references", async () => {
  await getDevice();
  const Q = 3, G = 4;
  const scores = [0.3, -1.2, 2.0, 0.1, 1.5, 1.5, -0.5, 0.0, -2.0, 0.7, 0.2, 0.9];
  const labels = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2, 1];
  const close = (actual: number, expected: number, what: string) =>
    assert.ok(Math.abs(actual - expected) < 1e-5, `${what}: ${actual} vs ${expected}`);
  const run = async (name: string, options: Record<string, unknown>) => {
    const flat = Tensor.fromArray(Float32Array.from(scores), [Q * G]);
    const out = await groupLoss(createLoss(name, options), flat, Q, G, labels);
    const value = await out.loss.item();
    flat.dispose();
    out.loss.dispose();
    for (const t of Object.values(out.parts ?? {})) t.dispose();
    return value;
  };
  // Softmax cross-entropy of each group's positives (label > 0), temperature 0.5.
  let ce = 0;
  for (let q = 0; q < Q; q++) {
    const row = scores.slice(q * G, q * G + G).map((s) => s / 0.5);
    const lse = (xs: number[]) => {
      const m = Math.max(...xs);
      return m + Math.log(xs.reduce((a, x) => a + Math.exp(x - m), 0));
    };
    ce += lse(row) - lse(row.filter((_, j) => labels[q * G + j]! > 0));
  }
  close(await run("infonce", { temperature: 0.5, in_batch_negatives: false }), ce / Q, "infonce");
  let bce = 0;
  scores.forEach((s, i) => {
    const y = labels[i]! > 0 ? 1 : 0;
    bce += -(y * Math.log(1 / (1 + Math.exp(-s))) + (1 - y) * Math.log(1 / (1 + Math.exp(s))));
  });
  close(await run("binary_cross_entropy", {}), bce / scores.length, "bce");
  let pairs = 0, ranknet = 0;
  for (let q = 0; q < Q; q++) {
    for (let i = 0; i < G; i++) {
      for (let j = 0; j < G; j++) {
        if (labels[q * G + i]! > labels[q * G + j]!) {
          pairs++;
          ranknet += Math.log(1 + Math.exp(-(scores[q * G + i]! - scores[q * G + j]!)));
        }
      }
    }
  }
  close(await run("ranknet", {}), ranknet / pairs, "ranknet");
});

gpuTest(
  "crossencoder: training lowers the loss; eval reranks BM25; run directory complete",
  async () => {
    await getDevice();
    const dir = await Deno.makeTempDir();
    try {
      const config = await crossConfig(await bm25Run(dir, 10), [
        `training.output_dir=${join(dir, "run")}`,
        "training.max_steps=12",
        "training.logging_steps=6",
        "training.eval_steps=12",
        "training.save_steps=12",
        "training.per_device_train_batch_size=4",
        "training.per_device_eval_batch_size=40",
        "training.temperature=1",
        "data.negative_source=random",
        `data.qrels_path=${await fewQueries(dir, 4)}`,
      ]);
      const task = await crossencoderTask(config);
      try {
        // Scores do not depend on padding: one pair alone equals the same pair in a longer batch.
        const ids = pairIds(task.tokenizer, "a query", "a short passage", 8, 16);
        const long = pairIds(
          task.tokenizer,
          "another query here",
          "a much longer passage ".repeat(3),
          8,
          16,
        );
        const single = collate([{ inputIds: ids, labels: ids.map(() => -100) }], { padId: 0 });
        const both = collate([ids, long].map((x) => ({ inputIds: x, labels: x.map(() => -100) })), {
          padId: 0,
          padToMultipleOf: 8,
        });
        const a = noGrad(() => scorePairs(task.model, task.head, single));
        const b = noGrad(() => scorePairs(task.model, task.head, both));
        const [sa, sb] = [await a.toArray(), await b.toArray()];
        a.dispose(), b.dispose();
        assert.ok(Math.abs(sa[0]! - sb[0]!) < 1e-5, `${sa[0]} vs ${sb[0]}`);

        const result = await train({
          config,
          task,
          log: () => {},
          progress: false,
          handleSignals: false,
          evaluateFirst: true,
        });
        assert.equal(result.status, "finished", result.error?.message);
        const losses = await readLosses(result.runPath);
        assert.deepEqual(losses.map(([s]) => s), [6, 12]);
        assert.ok(
          losses[1]![1] < losses[0]![1],
          `loss did not decrease: ${JSON.stringify(losses)}`,
        );
        for (const step of [0, 12]) {
          const evalFile = JSON.parse(
            await Deno.readTextFile(join(result.runPath, "eval", `step-${step}.json`)),
          );
          const m = evalFile.metrics;
          assert.ok(m["ndcg@10"] >= 0 && m["ndcg@10"] <= 1);
          assert.ok(m["first_stage_ndcg@10"] > 0);
          assert.equal(Object.keys(evalFile.per_query).length, 48);
          const runText = await Deno.readTextFile(
            join(result.runPath, "eval", `step-${step}.run.txt`),
          );
          assert.equal(runText.trim().split("\n").length, 48 * 10);
        }
        const files = [...Deno.readDirSync(join(result.runPath, "checkpoints", "checkpoint-12"))]
          .map((e) => e.name).sort();
        assert.deepEqual(files, [
          "model.safetensors",
          "optimizer.safetensors",
          "trainer_state.json",
        ]);
      } finally {
        task.dispose();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

for (const lora of [false, true]) {
  gpuTest(
    `crossencoder${
      lora ? " + LoRA (dropout)" : ""
    }: 4 steps straight = 2, interrupt, resume 2 (head in the checkpoint)`,
    async () => {
      await getDevice();
      const dir = await Deno.makeTempDir();
      try {
        const runFile = await bm25Run(dir, 10);
        const sets = (name: string) => [
          `training.output_dir=${join(dir, name)}`,
          "training.max_steps=4",
          "training.logging_steps=1",
          "training.per_device_train_batch_size=4",
          "training.eval_strategy=no",
          "training.save_strategy=no",
          "training.loss=ranknet",
          "data.group_size=3",
          "data.negative_source=run",
          ...(lora ? loraSets : []),
        ];
        const lossesOf = async (path: string) =>
          (await Deno.readTextFile(join(path, "metrics.jsonl"))).trim().split("\n")
            .map((l) => JSON.parse(l)).filter((r) => "train/loss" in r)
            .map((r) => [r.step, r["train/loss"], r["train/grad_norm"]]);
        const straightConfig = await crossConfig(runFile, sets("straight"));
        const data = await readRetrievalData(straightConfig);
        const a = await crossencoderTask(straightConfig, { data });
        const full = await train({ config: straightConfig, task: a, ...quiet });
        a.dispose();
        assert.equal(full.status, "finished", full.error?.stack);
        const splitConfig = await crossConfig(runFile, sets("split"));
        const b = await crossencoderTask(splitConfig, { data });
        const half = await train({ config: splitConfig, task: b, ...quiet, interruptAfterStep: 2 });
        b.dispose();
        assert.equal(half.status, "interrupted");
        const c = await crossencoderTask(splitConfig, { data });
        const rest = await train({ config: splitConfig, task: c, ...quiet, resume: half.runPath });
        c.dispose();
        assert.equal(rest.status, "finished", rest.error?.stack);
        const expected = await lossesOf(full.runPath);
        assert.equal(expected.length, 4);
        assert.deepEqual(await lossesOf(half.runPath), expected);
        const files = [...Deno.readDirSync(join(half.runPath, "checkpoints", "checkpoint-2"))]
          .map((e) => e.name).sort();
        assert.deepEqual(
          files,
          lora
            ? [
              "adapter_config.json",
              "adapter_model.safetensors",
              "model.safetensors",
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
  "crossencoder + LoRA: checkpoint is a peft adapter plus the head; loading it back gives the trained scores",
  async () => {
    await getDevice();
    const dir = await Deno.makeTempDir();
    try {
      const sets = [
        `training.output_dir=${join(dir, "run")}`,
        ...loraSets,
        "training.max_steps=3",
        "training.learning_rate=0.01",
        "training.warmup_steps=0",
        "training.per_device_train_batch_size=4",
        "training.logging_steps=1",
        "training.eval_strategy=no",
        "training.save_strategy=steps",
        "training.save_steps=3",
        "data.group_size=2",
      ];
      const config = await crossConfig(await bm25Run(dir, 5), sets);
      const data = await readRetrievalData(config);
      const query = [...data.evalQueries!.values()][0]!;
      const passages = [...data.corpus.values()].slice(0, 6).map(passageText);

      const a = await crossencoderTask(config, { data });
      const before = await a.score(query, passages);
      const result = await train({ config, task: a, ...quiet });
      assert.equal(result.status, "finished", result.error?.stack);
      const trained = await a.score(query, passages);
      // Evaluation and score() run the adapter without dropout; training resumes with it.
      const adapter = a.loaded.adapter!;
      const modes = recordAdapterModes(adapter);
      const trainedEval = await a.evaluate!();
      assert.deepEqual(await a.score(query, passages), trained);
      assert.deepEqual([...modes], [false]);
      assert.equal(adapter.training, true);
      const trainedParams = await hostValues(a.parameters);
      a.dispose();
      // Training moved the scores, so equal scores below mean adapter and head came back.
      assert.ok(maxAbsDiff(before, trained) > 1e-3, "training did not change the scores");

      const checkpoint = join(result.runPath, "checkpoints", "checkpoint-3");
      await assertPeftCheckpoint(checkpoint, trainedParams, {
        r: 4,
        dropout: 0.1,
        extraFiles: ["model.safetensors"],
        adapterTensors: trainedParams.size - 1,
      });
      // model.safetensors: the head alone (the base model is not trained).
      const headFile = await openCheckpoint(join(checkpoint, "model.safetensors"));
      let headValues: Float32Array;
      try {
        assert.deepEqual(headFile.names(), [SCORE_HEAD]);
        headValues = await headFile.read(SCORE_HEAD, { as: "f32" });
        assert.deepEqual(headValues, trainedParams.get(SCORE_HEAD));
      } finally {
        headFile.close();
      }

      // Independently: the base model plus the saved adapter through peft's loader, and the head.
      const base = await loadModel(
        await crossConfig(config.data.run_path!, [
          ...sets,
          "model.use_lora=false",
        ]),
      );
      const head = parameter(headValues, [1, headValues.length]);
      try {
        const peftAdapter = await loadLoraAdapter(base.model, checkpoint);
        peftAdapter.training = false;
        const batch = collate(
          passages.map((p) => {
            const { query_max_len: q, passage_max_len: pl } = config.data;
            const ids = pairIds(base.tokenizer, query, p, q, pl);
            return { inputIds: ids, labels: ids.map(() => -100) };
          }),
          { padId: base.tokenizer.padId, padToMultipleOf: 8 },
        );
        const out = noGrad(() => scorePairs(base.model, head, batch));
        assert.ok(maxAbsDiff(await out.toArray(), trained) <= 1e-6);
        out.dispose();
        peftAdapter.dispose();
      } finally {
        head.dispose();
        disposeLoaded(base);
      }

      // And through the recipe's own checkpoint loading (what --resume does).
      const b = await crossencoderTask(config, { data });
      try {
        assert.deepEqual(await b.score(query, passages), before); // fresh adapter and head
        await b.loadWeights(checkpoint);
        assert.ok(maxAbsDiff(await b.score(query, passages), trained) <= 1e-6);
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
    `crossencoder${
      lora ? " + LoRA (dropout)" : ""
    }: gradient checkpointing gives the same loss and gradients; dispose frees all`,
    async () => {
      await getDevice();
      const dir = await Deno.makeTempDir();
      try {
        const runFile = await bm25Run(dir, 5);
        const run = async (checkpointing: boolean) => {
          const config = await crossConfig(runFile, [
            "training.per_device_train_batch_size=4",
            "data.group_size=2",
            `training.gradient_checkpointing=${checkpointing}`,
            ...(lora ? loraSets : []),
          ]);
          const data = await readRetrievalData(config);
          const liveBefore = memoryStats().liveBytes;
          const task = await crossencoderTask(config, { data });
          assert.equal(task.model.gradientCheckpointing, checkpointing);
          let result: { loss: number; grads: Map<string, Float32Array> };
          try {
            // As the training loop runs a micro-batch: backward after microBatch has returned.
            result = await microBatchLossAndGrads(task);
          } finally {
            task.dispose();
          }
          // The model, its adapter, the head and the inputs kept for backward are all freed.
          assert.equal(memoryStats().liveBytes, liveBefore, "GPU memory left after dispose()");
          return result;
        };
        const plain = await run(false);
        const checkpointed = await run(true);
        assertSameLossAndGrads(plain, checkpointed);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}
