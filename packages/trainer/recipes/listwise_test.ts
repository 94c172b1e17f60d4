import assert from "node:assert/strict";
import { join } from "node:path";
import { getDevice, memoryStats, noGrad } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import {
  causalInputs,
  type CausalLM,
  disposeInputs,
  loadLoraAdapter,
  loadTokenizer,
} from "@irforge/model";
import {
  type CandidateList,
  HashWordTokenizer,
  identifierTokenIds,
  listwiseExamples,
  readCandidates,
  readQrels,
  sharedPathOrSkip,
  type TextTokenizer,
} from "@irforge/data";
import { parseConfig } from "../config/parse.ts";
import { train } from "../loop.ts";
import { disposeLoaded, loadModel, setAdapterTraining } from "./model_setup.ts";
import {
  checkDistinctIdentifiers,
  identifierLogits,
  type ListwiseData,
  listwiseTask,
  scoringPrompt,
  tokenizeListwiseItem,
  truncateTokens,
} from "./listwise.ts";
import {
  assertPeftCheckpoint,
  assertSameLossAndGrads,
  hostValues,
  maxAbsDiff,
  microBatchLossAndGrads,
  recordAdapterModes,
} from "./recipe_testing.ts";

const stories = sharedPathOrSkip("the listwise tests", "data", "stories260K");

/** A small LoRA: rank 4, dropout on (so masks must be seeded and replayed). */
const loraSets = ["model.use_lora=true", "model.lora_r=4", "model.lora_dropout=0.1"];

/** Logits of one row of ids, without gradients. */
async function logitsOf(model: CausalLM, ids: number[]): Promise<Float32Array> {
  const inputs = causalInputs([ids]);
  try {
    const logits = noGrad(() => model.forward(inputs)).logits!;
    const values = await logits.toArray() as Float32Array;
    logits.dispose();
    return values;
  } finally {
    disposeInputs(inputs);
  }
}
const novel = sharedPathOrSkip("the listwise tests", "data", "noveleval");

async function storiesTokenizer(): Promise<TextTokenizer> {
  const sp = await loadTokenizer(stories!);
  return {
    encode: (t) => sp.encode(t),
    decode: (ids) => sp.decode(ids),
    bosId: sp.bosId ?? undefined,
    eosId: sp.eosId ?? undefined,
    padId: sp.padId ?? sp.eosId ?? 0,
  };
}

Deno.test("listwise identifiers: first tokens under word and SentencePiece tokenizers", async () => {
  const words = new HashWordTokenizer(4096);
  assert.equal(new Set(checkDistinctIdentifiers(words, 20)).size, 20);
  if (!stories) return;
  const sp = await storiesTokenizer();
  // "[3]" is ▁ [ 3 ] under the Llama-style tokenizer: the digit, not the ▁ before "[".
  const ids = identifierTokenIds(sp, 9);
  assert.deepEqual(ids.map((id) => sp.decode!([id])), [
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
  ]);
  assert.throws(
    () => checkDistinctIdentifiers(sp, 10),
    /\[1\] and \[10\] start with the same token .* data\.window_size to 9 or less/,
  );
});

if (stories && novel) {
  const candidates = await readCandidates(join(novel, "data.json"));
  const qrels = await readQrels(join(novel, "qrels.txt"));
  const firstHits = (list: CandidateList, n: number): CandidateList => ({
    ...list,
    hits: list.hits.slice(0, n),
  });
  // Query 0's first six hits mix grades 0 and 2; query 1 is held out.
  const data: ListwiseData = {
    train: [firstHits(candidates[0]!, 6)],
    eval: [firstHits(candidates[1]!, 6)],
    qrels,
    evalQrels: qrels,
  };

  Deno.test("listwise tokens: score position predicts the first identifier; overflow names the query", async () => {
    const sp = await storiesTokenizer();
    const lists = [{
      ...data.train[0]!,
      hits: data.train[0]!.hits.map((h) => ({ ...h, content: truncateTokens(sp, h.content, 5) })),
    }];
    const [example] = listwiseExamples(lists, qrels, { windowSize: 6, stride: 6 });
    assert.deepEqual(example!.grades, [0, 0, 0, 2, 2, 0]);
    assert.deepEqual(example!.ranking.slice(0, 2), [3, 4]);
    const item = tokenizeListwiseItem(sp, example!, 1000);
    assert.equal(sp.decode!([item.inputIds[item.scorePosition + 1]!]), "4");
    assert.equal(
      sp.decode!(item.inputIds.slice(item.targetStart)).trim(),
      "[4] > [5] > [1] > [2] > [3] > [6]",
    );
    assert.deepEqual(scoringPrompt(item), item.inputIds.slice(0, item.scorePosition + 1));
    assert.throws(
      () => tokenizeListwiseItem(sp, example!, 50),
      new RegExp(
        `query "${
          example!.qid
        }" window \\[0, 6\\) needs \\d+ tokens, more than data.max_seq_length 50`,
      ),
    );
    assert.equal(truncateTokens(sp, "short", 10), "short");
    assert.ok(sp.encode(truncateTokens(sp, "a much longer passage about spiders", 4)).length <= 5);
  });

  const configOf = (sets: string[]) =>
    parseConfig(
      `recipe: listwise
model:
  model_name_or_path: ${stories}
  use_lora: false
data:
  data_path: ${join(novel, "data.json")}
  qrels_path: ${join(novel, "qrels.txt")}
  window_size: 6
  stride: 6
  passage_max_len: 5
  query_max_len: 12
  max_seq_length: 1024
  train_test_split: 0.3
training:
  learning_rate: 0.003
  lr_scheduler_type: constant
  per_device_train_batch_size: 1
  logging_steps: 1
  save_strategy: "no"
`,
      "listwise-test.yaml",
      sets,
    );
  const quiet = { log: () => {}, progress: false, handleSignals: false } as const;
  const lossesOf = async (path: string) =>
    (await Deno.readTextFile(join(path, "metrics.jsonl"))).trim().split("\n")
      .map((l) => JSON.parse(l)).filter((r) => "train/loss" in r)
      .map((r) => [r.step, r["train/loss"]]);

  gpuTest(
    "listwise ranking: first-token logits and the listnet loss match a float64 reference",
    async () => {
      await getDevice();
      const config = configOf(["training.objective=ranking", "training.max_steps=1"]);
      const task = await listwiseTask(config, { data, log: () => {} });
      try {
        const item = task.items[0]!;
        // Reference logits: the full forward's logits at the score position, identifier columns.
        const inputs = causalInputs([item.inputIds]);
        const full = noGrad(() => task.model.forward(inputs)).logits!;
        const all = await full.toArray();
        full.dispose();
        disposeInputs(inputs);
        const V = task.model.config.vocabSize;
        const reference = task.identifierIds.slice(0, 6).map((id) =>
          all[item.scorePosition * V + id]!
        );
        const inputs2 = causalInputs([item.inputIds]);
        const hidden = noGrad(() => task.model.forward(inputs2, { output: "hidden" })).hidden!;
        const picked = noGrad(() =>
          identifierLogits(task.model, hidden, [item.scorePosition], task.identifierIds.slice(0, 6))
        );
        const got = await picked.toArray();
        hidden.dispose();
        picked.dispose();
        disposeInputs(inputs2);
        reference.forEach((r, i) =>
          assert.ok(Math.abs(got[i]! - r) < 1e-4, `identifier ${i + 1}: ${got[i]} vs ${r}`)
        );
        // ListNet: −Σ softmax(grades)·log softmax(scores), in float64.
        const grades = item.example.grades;
        const softmax = (xs: number[]) => {
          const m = Math.max(...xs);
          const e = xs.map((x) => Math.exp(x - m));
          const s = e.reduce((a, b) => a + b, 0);
          return e.map((x) => x / s);
        };
        const target = softmax(grades);
        const logp = softmax(reference).map(Math.log);
        const expected = -target.reduce((acc, p, i) => acc + p * logp[i]!, 0);
        const out = await task.microBatch(0, 0, (await import("../rng.ts")).Rng.seeded(1));
        const value = (await out.loss.toArray())[0]!;
        out.loss.dispose();
        assert.ok(Math.abs(value - expected) < 1e-4, `listnet ${value} vs ${expected}`);
      } finally {
        task.dispose();
      }
    },
  );

  gpuTest(
    "listwise: ranking trains (loss falls), eval files with nDCG@10 vs first stage; eval is noise-free",
    async () => {
      await getDevice();
      const dir = await Deno.makeTempDir();
      try {
        const config = configOf([
          `training.output_dir=${join(dir, "run")}`,
          "training.objective=ranking",
          "training.noisy_embedding_alpha=5",
          "training.max_steps=5",
          "training.eval_strategy=steps",
          "training.eval_steps=5",
        ]);
        const task = await listwiseTask(config, { data, log: () => {} });
        const result = await train({ config, task, ...quiet, evaluateFirst: true });
        assert.equal(result.status, "finished", result.error?.message);
        const losses = result.losses.map((l) => l.loss);
        assert.equal(losses.length, 5);
        assert.ok(losses[4]! < losses[0]! * 0.7, `loss did not fall: ${losses}`);
        for (const step of [0, 5]) {
          const evalFile = JSON.parse(
            await Deno.readTextFile(join(result.runPath, "eval", `step-${step}.json`)),
          );
          const m = evalFile.metrics;
          assert.ok(m["ndcg@10"] >= 0 && m["ndcg@10"] <= 1, JSON.stringify(m));
          assert.ok(m["first_stage_ndcg@10"] >= 0 && m["first_stage_ndcg@10"] <= 1);
          assert.deepEqual(Object.keys(evalFile.per_query), [data.eval[0]!.qid]);
          const run = await Deno.readTextFile(join(result.runPath, "eval", `step-${step}.run.txt`));
          assert.equal(run.trim().split("\n").length, 6);
        }
        // Evaluation ignores NEFTune: the same weights evaluated by a task without noise agree exactly.
        const first = await task.evaluate!();
        const cleanConfig = configOf(["training.objective=ranking", "training.max_steps=5"]);
        const clean = await listwiseTask(cleanConfig, { data, log: () => {} });
        for (const [name, p] of task.parameters) {
          const values = await p.toArray();
          clean.parameters.get(name)!.write(values as Float32Array);
        }
        const second = await clean.evaluate!();
        assert.equal(second.runText, first.runText);
        assert.deepEqual(second.metrics, first.metrics);
        clean.dispose();
        task.dispose();
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  gpuTest(
    "listwise: combined logs both parts; generation eval parses the output; resume is exact",
    async () => {
      await getDevice();
      const dir = await Deno.makeTempDir();
      try {
        const combinedConfig = configOf([
          `training.output_dir=${join(dir, "combined")}`,
          "training.objective=combined",
          "training.loss=lambdarank",
          "training.max_steps=1",
        ]);
        const combined = await listwiseTask(combinedConfig, { data, log: () => {} });
        const r = await train({ config: combinedConfig, task: combined, ...quiet });
        combined.dispose();
        const record = JSON.parse(
          (await Deno.readTextFile(join(r.runPath, "metrics.jsonl"))).trim().split("\n")[0]!,
        );
        assert.ok(
          Number.isFinite(record["train/lm"]) && Number.isFinite(record["train/lambdarank"]),
          JSON.stringify(record),
        );
        assert.ok(
          Math.abs(record["train/loss"] - record["train/lm"] - record["train/lambdarank"]) < 1e-4,
        );

        const sets = (name: string) => [
          `training.output_dir=${join(dir, name)}`,
          "training.objective=generation",
          "training.noisy_embedding_alpha=5",
          "training.max_steps=4",
          "training.save_strategy=steps",
          "training.save_steps=100",
        ];
        const twoQueries: ListwiseData = {
          ...data,
          train: [data.train[0]!, firstHits(candidates[2]!, 6)],
        };
        const a = await listwiseTask(configOf(sets("straight")), {
          data: twoQueries,
          log: () => {},
        });
        const full = await train({ config: configOf(sets("straight")), task: a, ...quiet });
        // Generation-based reranking of the held-out query: a full permutation of its 6 candidates.
        const outcome = await a.evaluate!();
        assert.equal(outcome.runText!.trim().split("\n").length, 6);
        assert.ok(outcome.metrics["ndcg@10"]! >= 0 && outcome.metrics["ndcg@10"]! <= 1);
        a.dispose();
        const b = await listwiseTask(configOf(sets("split")), { data: twoQueries, log: () => {} });
        const half = await train({
          config: configOf(sets("split")),
          task: b,
          ...quiet,
          interruptAfterStep: 2,
        });
        b.dispose();
        assert.equal(half.status, "interrupted");
        const c = await listwiseTask(configOf(sets("split")), { data: twoQueries, log: () => {} });
        const rest = await train({
          config: configOf(sets("split")),
          task: c,
          ...quiet,
          resume: half.runPath,
        });
        c.dispose();
        assert.equal(rest.status, "finished");
        const expected = await lossesOf(full.runPath);
        assert.equal(expected.length, 4);
        assert.deepEqual(await lossesOf(half.runPath), expected);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  gpuTest(
    "listwise + LoRA (dropout): generation with NEFTune, 4 steps straight = 2, interrupt, resume 2",
    async () => {
      await getDevice();
      const dir = await Deno.makeTempDir();
      try {
        const sets = (name: string) => [
          `training.output_dir=${join(dir, name)}`,
          "training.objective=generation",
          "training.noisy_embedding_alpha=5",
          "training.max_steps=4",
          "training.save_strategy=steps",
          "training.save_steps=100",
          "training.learning_rate=0.01",
          ...loraSets,
        ];
        const twoQueries: ListwiseData = {
          ...data,
          train: [data.train[0]!, firstHits(candidates[2]!, 6)],
        };
        const withGradNorm = async (path: string) =>
          (await Deno.readTextFile(join(path, "metrics.jsonl"))).trim().split("\n")
            .map((l) => JSON.parse(l)).filter((r) => "train/loss" in r)
            .map((r) => [r.step, r["train/loss"], r["train/grad_norm"]]);
        const options = { data: twoQueries, log: () => {} };
        const a = await listwiseTask(configOf(sets("straight")), options);
        const full = await train({ config: configOf(sets("straight")), task: a, ...quiet });
        a.dispose();
        assert.equal(full.status, "finished", full.error?.stack);
        const b = await listwiseTask(configOf(sets("split")), options);
        const half = await train({
          config: configOf(sets("split")),
          task: b,
          ...quiet,
          interruptAfterStep: 2,
        });
        b.dispose();
        assert.equal(half.status, "interrupted");
        const c = await listwiseTask(configOf(sets("split")), options);
        const rest = await train({
          config: configOf(sets("split")),
          task: c,
          ...quiet,
          resume: half.runPath,
        });
        c.dispose();
        assert.equal(rest.status, "finished", rest.error?.stack);
        const expected = await withGradNorm(full.runPath);
        assert.equal(expected.length, 4);
        assert.deepEqual(await withGradNorm(half.runPath), expected);
        const files = [...Deno.readDirSync(join(half.runPath, "checkpoints", "checkpoint-2"))]
          .map((e) => e.name).sort();
        assert.deepEqual(files, [
          "adapter_config.json",
          "adapter_model.safetensors",
          "optimizer.safetensors",
          "trainer_state.json",
        ]);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  gpuTest(
    "listwise + LoRA: checkpoint is a peft adapter; loading it back gives the trained logits",
    async () => {
      await getDevice();
      const dir = await Deno.makeTempDir();
      const sets = [
        `training.output_dir=${join(dir, "run")}`,
        ...loraSets,
        "training.objective=ranking",
        "training.max_steps=3",
        "training.learning_rate=0.01",
        "training.save_strategy=steps",
        "training.save_steps=3",
      ];
      try {
        const config = configOf(sets);
        const a = await listwiseTask(config, { data, log: () => {} });
        const ids = a.items[0]!.inputIds;
        // Logits in evaluation mode (no adapter dropout).
        const evalLogits = async (task: typeof a) => {
          setAdapterTraining(task.loaded, false);
          try {
            return await logitsOf(task.model, ids);
          } finally {
            setAdapterTraining(task.loaded, true);
          }
        };
        const before = await evalLogits(a);
        const result = await train({ config, task: a, ...quiet });
        assert.equal(result.status, "finished", result.error?.stack);
        const trained = await evalLogits(a);
        // Evaluation and rerank run the adapter without dropout, and training resumes with it.
        const adapter = a.loaded.adapter!;
        const modes = recordAdapterModes(adapter);
        const trainedEval = await a.evaluate!();
        const list = data.eval[0]!;
        await a.rerank({
          ...list,
          hits: list.hits.map((h) => ({
            ...h,
            content: h.content.split(" ").slice(0, 5).join(" "),
          })),
        });
        assert.deepEqual([...modes], [false]);
        assert.equal(adapter.training, true);
        const trainedParams = await hostValues(a.parameters);
        a.dispose();
        // Training moved the logits, so equal logits below mean the adapter came back.
        assert.ok(maxAbsDiff(before, trained) > 1e-3, "training did not change the logits");

        const checkpoint = join(result.runPath, "checkpoints", "checkpoint-3");
        await assertPeftCheckpoint(checkpoint, trainedParams, { r: 4, dropout: 0.1 });

        // Independently: the base model plus the saved adapter through peft's loader.
        const base = await loadModel(configOf([...sets, "model.use_lora=false"]));
        try {
          const adapter = await loadLoraAdapter(base.model, checkpoint);
          adapter.training = false;
          assert.ok(maxAbsDiff(await logitsOf(base.model, ids), trained) <= 1e-5);
          adapter.dispose();
        } finally {
          disposeLoaded(base);
        }

        // And through the recipe's own checkpoint loading (what --resume does).
        const b = await listwiseTask(config, { data, log: () => {} });
        try {
          assert.deepEqual(await evalLogits(b), before); // a fresh adapter: the base model
          await b.loadWeights(checkpoint);
          assert.ok(maxAbsDiff(await evalLogits(b), trained) <= 1e-5);
          const reloadedEval = await b.evaluate!();
          assert.deepEqual(reloadedEval.metrics, trainedEval.metrics);
          assert.equal(reloadedEval.runText, trainedEval.runText);
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
      `listwise combined${
        lora ? " + LoRA (dropout, NEFTune)" : ""
      }: gradient checkpointing gives the same loss and gradients; dispose frees all`,
      async () => {
        await getDevice();
        const run = async (checkpointing: boolean) => {
          const config = configOf([
            "training.objective=combined",
            `training.gradient_checkpointing=${checkpointing}`,
            ...(lora ? [...loraSets, "training.noisy_embedding_alpha=5"] : []),
          ]);
          const liveBefore = memoryStats().liveBytes;
          const task = await listwiseTask(config, { data, log: () => {} });
          assert.equal(task.model.gradientCheckpointing, checkpointing);
          let result: { loss: number; grads: Map<string, Float32Array> };
          try {
            // As the training loop runs a micro-batch: backward after microBatch has returned.
            result = await microBatchLossAndGrads(task, 0);
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
}
