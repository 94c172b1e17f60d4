import assert from "node:assert/strict";
import { join } from "node:path";
import { backward, getDevice, memoryStats, noGrad, type Tensor, zeroGrad } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import { CausalLM, disposeInputs, loadLoraAdapter, uploadInputs } from "@irforge/model";
import {
  CharTokenizer,
  collate,
  type CollatedBatch,
  hotpotToSft,
  IGNORE_INDEX,
  packSequences,
  readHotpotQa,
  type SftRecord,
  sharedPathOrSkip,
  type TokenSequence,
} from "@irforge/data";
import { createLoss } from "@irforge/losses";
import { parseConfig } from "../config/parse.ts";
import { train } from "../loop.ts";
import { disposeLoaded, loadModel, setAdapterTraining } from "./model_setup.ts";
import { tokenBatchOf } from "./batches.ts";
import { causalLmLoss, fitRecord, readSftRecords, sftTask } from "./sft.ts";
import {
  assertPeftCheckpoint,
  assertSameLossAndGrads,
  hostValues,
  maxAbsDiff,
  microBatchLossAndGrads,
} from "./recipe_testing.ts";

Deno.test("sft: chat records parse; bad records name file, line and field", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = join(dir, "good.jsonl");
    await Deno.writeTextFile(
      good,
      [
        {
          id: "a",
          messages: [{ role: "user", content: "Q?" }, { role: "assistant", content: "A." }],
        },
        {
          messages: [{ role: "system", content: "S" }, { role: "user", content: "Q" }, {
            role: "assistant",
            content: "B",
          }],
        },
      ].map((r) => JSON.stringify(r)).join("\n") + "\n",
    );
    const records = await readSftRecords(good);
    assert.deepEqual(records.map((r) => r.id), ["a", "#1"]);
    assert.equal(records[1]!.messages.length, 3);
    const cases: [unknown, RegExp][] = [
      [
        { messages: [{ role: "bot", content: "x" }] },
        /bad\.jsonl:2 \(field "messages\[0\]\.role"\): expected "system", "user" or "assistant"/,
      ],
      [
        { messages: [{ role: "user", content: "x" }] },
        /bad\.jsonl:2 \(field "messages"\): the last message must be the assistant's answer/,
      ],
      [
        { messages: [{ role: "user" }, { role: "assistant", content: "y" }] },
        /bad\.jsonl:2 \(field "messages\[0\]\.content"\): missing field/,
      ],
      [{ messages: "hi" }, /bad\.jsonl:2 \(field "messages"\): expected a JSON array/],
    ];
    for (const [record, message] of cases) {
      const bad = join(dir, "bad.jsonl");
      await Deno.writeTextFile(
        bad,
        `${
          JSON.stringify(JSON.parse(await Deno.readTextFile(good).then((t) => t.split("\n")[0]!)))
        }\n${JSON.stringify(record)}\n`,
      );
      await assert.rejects(() => readSftRecords(bad), message);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sft: a long record is shortened in the user turn and keeps its whole answer", () => {
  const tokenizer = new CharTokenizer();
  const record: SftRecord = {
    id: "x",
    messages: [
      { role: "user", content: "context ".repeat(40) + "Question: who?" },
      { role: "assistant", content: "Marie Curie" },
    ],
  };
  const fitted = fitRecord(tokenizer, record, 64);
  assert.ok(fitted.shortened);
  assert.ok(fitted.sequence.inputIds.length <= 64);
  const labelled = fitted.sequence.labels.filter((l) => l !== IGNORE_INDEX);
  assert.equal(tokenizer.decode(labelled), "Marie Curie</s>");
  assert.equal(fitted.answerStart, fitted.sequence.inputIds.length - labelled.length);
  const short = fitRecord(tokenizer, {
    id: "y",
    messages: [{ role: "user", content: "Q" }, { role: "assistant", content: "A" }],
  }, 64);
  assert.equal(short.shortened, false);
});

const stories = sharedPathOrSkip("the sft GPU tests", "data", "stories260K");
const hotpot = sharedPathOrSkip(
  "the sft GPU tests",
  "data",
  "hotpotqa-dev-100",
  "hotpot_dev_distractor_v1.json",
);

function sftConfig(sets: string[]) {
  return parseConfig(
    `recipe: sft
model:
  model_name_or_path: ${stories}
  use_lora: false
data:
  data_path: ${hotpot}
  max_seq_length: 48
training:
  learning_rate: 0.003
  lr_scheduler_type: constant
  save_strategy: no
`,
    "sft-test.yaml",
    sets,
  );
}

/** Per-token cross-entropy (float64) of every labelled token, from host logits. */
function tokenLosses(logits: Float32Array, batch: CollatedBatch, vocab: number): number[] {
  const targets = CausalLM.shiftedTargets(batch.labels, batch.rows, batch.length);
  const out = new Array<number>(targets.length).fill(NaN);
  targets.forEach((target, i) => {
    if (target === IGNORE_INDEX) return;
    let max = -Infinity;
    for (let v = 0; v < vocab; v++) max = Math.max(max, logits[i * vocab + v]!);
    let sum = 0;
    for (let v = 0; v < vocab; v++) sum += Math.exp(logits[i * vocab + v]! - max);
    out[i] = max + Math.log(sum) - logits[i * vocab + target]!;
  });
  return out;
}

async function forwardLogits(model: CausalLM, batch: CollatedBatch): Promise<Float32Array> {
  const inputs = uploadInputs(tokenBatchOf(batch), model.config.slidingWindow);
  try {
    const { logits } = noGrad(() => model.forward(inputs));
    const values = await logits!.toArray() as Float32Array;
    logits!.dispose();
    return values;
  } finally {
    disposeInputs(inputs);
  }
}

/** Mean loss of each source record, from per-token losses of rows whose columns map to records. */
function perRecordLoss(losses: number[], owner: number[]): Map<number, number> {
  const sums = new Map<number, [number, number]>();
  losses.forEach((l, i) => {
    if (Number.isNaN(l)) return;
    const [s, n] = sums.get(owner[i]!) ?? [0, 0];
    sums.set(owner[i]!, [s + l, n + 1]);
  });
  return new Map([...sums].map(([k, [s, n]]) => [k, s / n]));
}

async function gradientsOf(model: CausalLM, batch: CollatedBatch, names: string[]) {
  const params = model.parameters();
  zeroGrad(params.values());
  const { loss } = await causalLmLoss(model, batch, createLoss("lm", {}));
  backward(loss);
  const value = (await loss.toArray())[0]!;
  loss.dispose();
  const grads = [];
  for (const name of names) grads.push(await (params.get(name)!.grad as Tensor).toArray());
  zeroGrad(params.values());
  return { value, grads };
}

const quiet = { log: () => {}, progress: false, handleSignals: false } as const;

/** Closed-book HotpotQA chats (question → answer): short enough to pack several per row. */
async function closedBookRecords(): Promise<SftRecord[]> {
  return (await readHotpotQa(hotpot!)).slice(0, 11).map((e) => ({
    id: e.id,
    messages: [
      { role: "user", content: `Question: ${e.question}` },
      { role: "assistant", content: e.answer },
    ],
  }));
}

/** A small LoRA: rank 4, dropout on (so masks must be seeded and replayed). */
const loraSets = ["model.use_lora=true", "model.lora_r=4", "model.lora_dropout=0.1"];

if (stories && hotpot) {
  gpuTest(
    "sft packing: per-record losses and gradients equal unpacked (no cross-contamination)",
    async () => {
      await getDevice();
      const config = sftConfig([]);
      const { model, tokenizer } = await loadModel(config);
      try {
        const examples = (await readHotpotQa(hotpot)).slice(0, 3);
        const sequences: TokenSequence[] = examples.map((e, i) =>
          fitRecord(tokenizer, hotpotToSft(e), [40, 56, 72][i]!).sequence
        );
        const total = sequences.reduce((n, s) => n + s.inputIds.length, 0);
        const { rows } = packSequences(sequences, { maxSeqLength: total });
        assert.equal(rows.length, 1);
        const row = rows[0]!;
        const packed = collate([row], { padId: tokenizer.padId });
        const unpacked = collate(sequences, { padId: tokenizer.padId });
        const V = model.config.vocabSize;

        // Column → source record, for the packed row and for the unpacked rows.
        const packedOwner: number[] = [];
        for (const source of row.sources) {
          for (let t = 0; t < sequences[source]!.inputIds.length; t++) packedOwner.push(source);
        }
        packedOwner.push(...new Array(packed.length - packedOwner.length).fill(-1));
        const unpackedOwner = Array.from(
          { length: 3 * unpacked.length },
          (_, i) => Math.floor(i / unpacked.length),
        );
        const packedLoss = perRecordLoss(
          tokenLosses(await forwardLogits(model, packed), packed, V),
          packedOwner,
        );
        const plainLoss = perRecordLoss(
          tokenLosses(await forwardLogits(model, unpacked), unpacked, V),
          unpackedOwner,
        );
        assert.equal(packedLoss.size, 3);
        for (const [record, loss] of plainLoss) {
          assert.ok(
            Math.abs(packedLoss.get(record)! - loss) < 1e-4,
            `record ${record}: packed ${packedLoss.get(record)} vs unpacked ${loss}`,
          );
        }

        // Negative control: the same row concatenated without segments/restarted positions
        // lets later records see earlier ones, and their losses move.
        const leaky = collate([{ inputIds: row.inputIds, labels: row.labels }], {
          padId: tokenizer.padId,
        });
        const leakyLoss = perRecordLoss(
          tokenLosses(await forwardLogits(model, leaky), leaky, V),
          packedOwner,
        );
        const moved = [...plainLoss].filter(([r, l]) => Math.abs(leakyLoss.get(r)! - l) > 1e-3);
        assert.ok(
          moved.length >= 2,
          `concatenation without segments should change losses: ${[...leakyLoss]}`,
        );

        // One training step's loss and gradients are the same packed or not.
        const names = ["model.embed_tokens.weight", "model.layers.4.mlp.down_proj.weight"];
        const a = await gradientsOf(model, packed, names);
        const b = await gradientsOf(model, unpacked, names);
        assert.ok(Math.abs(a.value - b.value) < 1e-4, `loss ${a.value} vs ${b.value}`);
        names.forEach((name, k) => {
          const ga = a.grads[k]!, gb = b.grads[k]!;
          let worst = 0, scale = 0;
          for (let i = 0; i < ga.length; i++) {
            worst = Math.max(worst, Math.abs(ga[i]! - gb[i]!));
            scale = Math.max(scale, Math.abs(gb[i]!));
          }
          assert.ok(
            scale > 0 && worst <= 1e-3 * scale,
            `${name}: max diff ${worst} (scale ${scale})`,
          );
        });
      } finally {
        model.dispose();
      }
    },
  );

  gpuTest(
    "sft: packed training lowers the loss; run directory, eval QA metrics",
    async () => {
      await getDevice();
      const dir = await Deno.makeTempDir();
      const records = await closedBookRecords();
      try {
        const sets = [
          `training.output_dir=${join(dir, "run")}`,
          "data.packing=true",
          "data.max_seq_length=192",
          "training.max_steps=6",
          "training.logging_steps=1",
          "training.per_device_train_batch_size=8",
          "training.eval_strategy=steps",
          "training.eval_steps=6",
          `data.eval_data_path=${hotpot}`,
          // Three held-out records, the first two evaluated.
          "data.max_eval_samples=2",
        ];
        const config = sftConfig(sets);
        const task = await sftTask(config, {
          train: records.slice(0, 8),
          eval: records.slice(8),
          log: () => {},
        });
        // 8 short records pack into fewer rows of 192 tokens than records.
        assert.ok(task.rows.length < 8 && task.rows.length >= 4, `${task.rows.length} rows`);
        const result = await train({ config, task, ...quiet, evaluateFirst: true });
        task.dispose();
        assert.equal(result.status, "finished");
        const losses = result.losses.map((l) => l.loss);
        assert.equal(losses.length, 6);
        assert.ok(losses[5]! < losses[0]! - 0.3, `loss did not decrease: ${losses}`);
        for (const step of [0, 6]) {
          const evalFile = JSON.parse(
            await Deno.readTextFile(join(result.runPath, "eval", `step-${step}.json`)),
          );
          for (const m of ["loss", "token_recall", "containment"]) {
            assert.ok(Number.isFinite(evalFile.metrics[m]), `${m} at step ${step}`);
          }
          assert.deepEqual(
            Object.keys(evalFile.per_query).sort(),
            records.slice(8, 10).map((r) => r.id).sort(),
          );
        }
        const evalLoss = (s: number) =>
          JSON.parse(Deno.readTextFileSync(join(result.runPath, "eval", `step-${s}.json`))).metrics
            .loss;
        assert.ok(evalLoss(6) < evalLoss(0), `held-out loss ${evalLoss(0)} → ${evalLoss(6)}`);
        assert.match(await Deno.readTextFile(join(result.runPath, "config.yaml")), /recipe: sft/);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  for (const lora of [false, true]) {
    gpuTest(
      `sft${lora ? " + LoRA (dropout)" : ""}: resume with NEFTune is exact (4 straight = 2 + 2)`,
      async () => {
        await getDevice();
        const dir = await Deno.makeTempDir();
        const records = await closedBookRecords();
        try {
          // Resume: 4 steps straight = 2 + interrupt + 2, with NEFTune noise (and LoRA dropout
          // masks) drawn from the checkpointed RNG.
          const resumeSets = (name: string) => [
            `training.output_dir=${join(dir, name)}`,
            "data.packing=true",
            "data.max_seq_length=64",
            "training.max_steps=4",
            "training.logging_steps=1",
            "training.per_device_train_batch_size=2",
            "training.noisy_embedding_alpha=5",
            "training.save_strategy=steps",
            "training.save_steps=100",
            ...(lora ? [...loraSets, "training.learning_rate=0.01"] : []),
          ];
          const lossesOf = async (path: string) =>
            (await Deno.readTextFile(join(path, "metrics.jsonl"))).trim().split("\n")
              .map((l) => JSON.parse(l)).filter((r) => "train/loss" in r)
              .map((r) => [r.step, r["train/loss"], r["train/grad_norm"]]);
          const straightConfig = sftConfig(resumeSets("straight"));
          const a = await sftTask(straightConfig, { train: records, eval: [], log: () => {} });
          const full = await train({ config: straightConfig, task: a, ...quiet });
          a.dispose();
          assert.equal(full.status, "finished", full.error?.stack);
          const splitConfig = sftConfig(resumeSets("split"));
          const b = await sftTask(splitConfig, { train: records, eval: [], log: () => {} });
          const half = await train({
            config: splitConfig,
            task: b,
            ...quiet,
            interruptAfterStep: 2,
          });
          b.dispose();
          assert.equal(half.status, "interrupted");
          const c = await sftTask(splitConfig, { train: records, eval: [], log: () => {} });
          const rest = await train({
            config: splitConfig,
            task: c,
            ...quiet,
            resume: half.runPath,
          });
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
                "optimizer.safetensors",
                "trainer_state.json",
              ]
              : ["model.safetensors", "optimizer.safetensors", "trainer_state.json"],
          );
          if (lora) return;
          // NEFTune is on: the same run without it has other losses.
          const cleanConfig = sftConfig([
            ...resumeSets("clean"),
            "training.noisy_embedding_alpha=null",
          ]);
          const d = await sftTask(cleanConfig, { train: records, eval: [], log: () => {} });
          const clean = await train({ config: cleanConfig, task: d, ...quiet });
          d.dispose();
          assert.notDeepEqual(await lossesOf(clean.runPath), expected);
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    );
  }

  gpuTest(
    "sft + LoRA: checkpoint is a peft adapter; loading it back gives the trained logits",
    async () => {
      await getDevice();
      const dir = await Deno.makeTempDir();
      const records = await closedBookRecords();
      const sets = [
        `training.output_dir=${join(dir, "run")}`,
        ...loraSets,
        "data.max_seq_length=64",
        "data.max_eval_samples=2",
        "training.max_steps=3",
        "training.learning_rate=0.01",
        "training.per_device_train_batch_size=4",
        "training.logging_steps=1",
        "training.save_strategy=steps",
        "training.save_steps=3",
      ];
      const options = { train: records.slice(0, 8), eval: records.slice(8), log: () => {} };
      try {
        const config = sftConfig(sets);
        const a = await sftTask(config, options);
        const probe = collate(a.rows.slice(0, 3), { padId: a.tokenizer.padId });
        // Logits in evaluation mode (no adapter dropout).
        const logitsOf = async (task: typeof a) => {
          setAdapterTraining(task.loaded, false);
          try {
            return await forwardLogits(task.model, probe);
          } finally {
            setAdapterTraining(task.loaded, true);
          }
        };
        const before = await logitsOf(a);
        const result = await train({ config, task: a, ...quiet });
        assert.equal(result.status, "finished", result.error?.stack);
        const trained = await logitsOf(a);
        const trainedEval = await a.evaluate!();
        // Evaluation mode: no dropout, so evaluating twice gives the same numbers.
        assert.deepEqual((await a.evaluate!()).metrics, trainedEval.metrics);
        const trainedParams = await hostValues(a.parameters);
        a.dispose();
        // Training moved the logits, so equal logits below mean the adapter came back.
        assert.ok(maxAbsDiff(before, trained) > 1e-3, "training did not change the logits");

        const checkpoint = join(result.runPath, "checkpoints", "checkpoint-3");
        await assertPeftCheckpoint(checkpoint, trainedParams, { r: 4, dropout: 0.1 });

        // Independently: the base model plus the saved adapter through peft's loader.
        const base = await loadModel(sftConfig([...sets, "model.use_lora=false"]));
        try {
          const adapter = await loadLoraAdapter(base.model, checkpoint);
          adapter.training = false;
          assert.ok(maxAbsDiff(await forwardLogits(base.model, probe), trained) <= 1e-5);
          adapter.dispose();
        } finally {
          disposeLoaded(base);
        }

        // And through the recipe's own checkpoint loading (what --resume does).
        const b = await sftTask(config, options);
        try {
          assert.deepEqual(await logitsOf(b), before); // a fresh adapter: the base model
          await b.loadWeights(checkpoint);
          assert.ok(maxAbsDiff(await logitsOf(b), trained) <= 1e-5);
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
      `sft${
        lora ? " + LoRA (dropout, NEFTune)" : ""
      }: gradient checkpointing gives the same loss and gradients; dispose frees all`,
      async () => {
        await getDevice();
        const records = await closedBookRecords();
        const run = async (checkpointing: boolean) => {
          const config = sftConfig([
            "data.max_seq_length=64",
            "training.per_device_train_batch_size=3",
            `training.gradient_checkpointing=${checkpointing}`,
            ...(lora ? [...loraSets, "training.noisy_embedding_alpha=5"] : []),
          ]);
          const liveBefore = memoryStats().liveBytes;
          const task = await sftTask(config, { train: records, eval: [], log: () => {} });
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
}
