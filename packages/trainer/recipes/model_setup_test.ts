import assert from "node:assert/strict";
import { join } from "node:path";
import { getDevice, Tensor } from "@irforge/tensor";
import { gpuTest } from "@irforge/tensor/testing";
import {
  causalInputs,
  CausalLM,
  disposeInputs,
  type Nf4Linear,
  readLoraAdapter,
} from "@irforge/model";
import { defaultConfig } from "../default/mod.ts";
import { train, type TrainingTask } from "../loop.ts";
import { Rng } from "../rng.ts";
import type { Config } from "../config/schema.ts";
import {
  checkAdapterSettings,
  disposeLoaded,
  loadCheckpointWeights,
  type LoadedModel,
  loadModel,
  saveCheckpointWeights,
  seedAdapterDropout,
} from "./model_setup.ts";

/** A next-token task on fixed random rows: enough to train an adapter. */
function lmTask(loaded: LoadedModel, rows = 2, length = 12): TrainingTask {
  const rng = Rng.seeded(7);
  const vocab = loaded.model.config.vocabSize;
  const batches = [0, 1].map(() =>
    Array.from({ length: rows }, () => Array.from({ length }, () => rng.int(vocab)))
  );
  // Inputs live until the next micro-batch: backward (after microBatch returns)
  // re-runs checkpointed layers on them.
  let previous: ReturnType<typeof causalInputs> | null = null;
  return {
    recipe: "lm-test",
    parameters: loaded.trainable,
    batchesPerEpoch: batches.length,
    microBatch(_epoch, index, trainerRng) {
      seedAdapterDropout(loaded, trainerRng);
      const ids = batches[index]!;
      if (previous) disposeInputs(previous);
      const inputs = previous = causalInputs(ids);
      const { logits } = loaded.model.forward(inputs);
      const targets = CausalLM.shiftedTargets(Int32Array.from(ids.flat()), rows, length);
      const loss = CausalLM.lmLoss(logits!, Tensor.fromArray(targets, [rows * length], "i32"));
      return Promise.resolve({ loss, tokens: rows * length });
    },
    saveWeights: (dir) => saveCheckpointWeights(dir, loaded),
    loadWeights: (dir) => loadCheckpointWeights(dir, loaded),
  };
}

async function baseArrays(model: CausalLM): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of model.params) out.set(name, (await t.toArray()) as Float32Array);
  return out;
}

async function readLosses(runPath: string): Promise<number[]> {
  return (await Deno.readTextFile(join(runPath, "metrics.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l)).filter((r) => "train/loss" in r).map((r) => r["train/loss"]);
}

/** The task alternates two batches: each step beats the step two before (same batch). */
function assertDecreasing(losses: number[]): void {
  for (let i = 2; i < losses.length; i++) {
    assert.ok(losses[i]! < losses[i - 2]!, `loss did not decrease: ${losses}`);
  }
}

const quiet = { log: () => {}, progress: false, handleSignals: false } as const;

function loraSets(dir: string, name: string): string[] {
  return [
    `training.output_dir=${join(dir, name)}`,
    "model.use_lora=true",
    "model.lora_r=4",
    "model.lora_alpha=8",
    "model.lora_dropout=0.1",
    "model.lora_target_modules=[q_proj, v_proj, down_proj]",
    "training.max_steps=6",
    "training.learning_rate=0.02",
    "training.warmup_steps=0",
    "training.logging_steps=1",
    "training.eval_strategy=no",
    "training.save_strategy=steps",
    "training.save_steps=3",
  ];
}

/** Trains `loaded` for `config`: the loss falls and no base weight moves; then frees it. */
async function assertAdapterTrainsBaseFrozen(config: Config, loaded: LoadedModel): Promise<void> {
  const before = await baseArrays(loaded.model);
  const result = await train({ config, task: lmTask(loaded), ...quiet });
  assert.equal(result.status, "finished", result.error?.stack);
  assertDecreasing(await readLosses(result.runPath));
  const after = await baseArrays(loaded.model);
  for (const [name, values] of before) assert.deepEqual(after.get(name), values, name);
  disposeLoaded(loaded);
}

gpuTest(
  "LoRA: only the adapter trains (base bit-identical), peft checkpoint, exact resume",
  async () => {
    await getDevice();
    const dir = await Deno.makeTempDir();
    try {
      const config = await defaultConfig(loraSets(dir, "straight"));
      const loaded = await loadModel(config);
      assert.ok(loaded.adapter);
      assert.equal(loaded.trainable.size, 2 * 3 * 2); // A and B of 3 modules in 2 layers
      for (const name of loaded.trainable.keys()) {
        assert.match(name, /^base_model\.model\.model\.layers\.\d\.(self_attn|mlp)\..*lora_[AB]/);
      }
      for (const t of loaded.model.params.values()) assert.equal(t.requiresGrad, false);
      const before = await baseArrays(loaded.model);
      const full = await train({ config, task: lmTask(loaded), ...quiet });
      assert.equal(full.status, "finished");
      const after = await baseArrays(loaded.model);
      for (const [name, values] of before) assert.deepEqual(after.get(name), values, name);
      const losses = await readLosses(full.runPath);
      assert.equal(losses.length, 6);
      assertDecreasing(losses);

      const checkpoint = join(full.runPath, "checkpoints", "checkpoint-6");
      const files = [...Deno.readDirSync(checkpoint)].map((e) => e.name).sort();
      assert.deepEqual(files, [
        "adapter_config.json",
        "adapter_model.safetensors",
        "optimizer.safetensors",
        "trainer_state.json",
      ]);
      const peft = JSON.parse(await Deno.readTextFile(join(checkpoint, "adapter_config.json")));
      assert.equal(peft.peft_type, "LORA");
      assert.equal(peft.r, 4);
      assert.deepEqual(peft.target_modules, ["q_proj", "v_proj", "down_proj"]);
      const saved = await readLoraAdapter(checkpoint, loaded.model.config);
      const live = await loaded.adapter.toArrays();
      for (const [path, arrays] of live) assert.deepEqual(saved.modules.get(path), arrays, path);
      assert.ok(live.values().next().value!.b.some((v) => v !== 0), "B stayed zero");
      disposeLoaded(loaded);

      // Interrupted at step 3 and resumed from its checkpoint: identical losses and adapter.
      const splitConfig = await defaultConfig(loraSets(dir, "split"));
      const first = await loadModel(splitConfig);
      const half = await train({
        config: splitConfig,
        task: lmTask(first),
        ...quiet,
        interruptAfterStep: 3,
      });
      disposeLoaded(first);
      assert.equal(half.status, "interrupted");
      const second = await loadModel(splitConfig);
      const rest = await train({
        config: splitConfig,
        task: lmTask(second),
        ...quiet,
        resume: half.runPath,
      });
      assert.equal(rest.status, "finished");
      assert.deepEqual(await readLosses(half.runPath), losses);
      const resumed = await second.adapter!.toArrays();
      for (const [path, arrays] of live) assert.deepEqual(resumed.get(path), arrays, path);
      disposeLoaded(second);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest("LoRA: a checkpoint of another rank is refused naming the file", async () => {
  await getDevice();
  const dir = await Deno.makeTempDir();
  try {
    const a = await loadModel(await defaultConfig(loraSets(dir, "a")));
    await saveCheckpointWeights(join(dir, "ckpt"), a);
    disposeLoaded(a);
    const b = await loadModel(await defaultConfig([...loraSets(dir, "b"), "model.lora_r=2"]));
    await assert.rejects(
      () => loadCheckpointWeights(join(dir, "ckpt"), b),
      /adapter_config\.json: r 4 \/ lora_alpha 8 differ from the configured r 2/,
    );
    disposeLoaded(b);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest(
  "QLoRA: NF4 base with f16 compute, adapter trains, checkpointing flag; compute dtypes reach the layers",
  async () => {
    await getDevice();
    const dir = await Deno.makeTempDir();
    try {
      const sets = [
        ...loraSets(dir, "q"),
        "model.load_in_4bit=true",
        "model.bnb_4bit_use_double_quant=true",
        "training.gradient_checkpointing=true",
        "training.max_steps=4",
        "training.save_strategy=no",
      ];
      // float32 is the default compute dtype; each setting reaches every NF4 layer.
      assert.equal((await defaultConfig(sets)).model.bnb_4bit_compute_dtype, "float32");
      const bf16 = await loadModel(
        await defaultConfig([...sets, "model.bnb_4bit_compute_dtype=bfloat16"]),
      );
      assert.deepEqual(
        new Set([...bf16.model.quantized.values()].map((q) => (q as Nf4Linear).computeDtype)),
        new Set(["bf16"]),
      );
      disposeLoaded(bf16);
      const config = await defaultConfig([...sets, "model.bnb_4bit_compute_dtype=float16"]);
      const loaded = await loadModel(config);
      assert.equal(loaded.model.quantized.size, 2 * 7);
      assert.deepEqual(
        new Set([...loaded.model.quantized.values()].map((q) => (q as Nf4Linear).computeDtype)),
        new Set(["f16"]),
      );
      assert.equal(loaded.model.gradientCheckpointing, true);
      assert.ok([...loaded.model.params.keys()].every((k) => !/_proj\.weight$/.test(k)));
      await assertAdapterTrainsBaseFrozen(config, loaded);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest(
  "model.dtype: float16 keeps a frozen f16 base under LoRA; bfloat16 and full f16 are refused",
  async () => {
    await getDevice();
    const dir = await Deno.makeTempDir();
    try {
      const sets = [
        ...loraSets(dir, "q"),
        "training.max_steps=4",
        "training.save_strategy=no",
      ];
      const bf16 = await defaultConfig([...sets, "model.dtype=bfloat16"]);
      assert.throws(
        () => checkAdapterSettings(bf16),
        /model\.dtype: "bfloat16" has no WebGPU storage type/,
      );
      const full = await defaultConfig([...sets, "model.dtype=float16", "model.use_lora=false"]);
      assert.throws(
        () => checkAdapterSettings(full),
        /model\.dtype: "float16" keeps frozen weights in f16, but a full fine-tune/,
      );
      const config = await defaultConfig([...sets, "model.torch_dtype=float16"]);
      const loaded = await loadModel(config);
      const dtypes = new Map([...loaded.model.params].map(([n, t]) => [n, t.dtype]));
      assert.equal(dtypes.get("model.embed_tokens.weight"), "f16");
      assert.equal(dtypes.get("model.layers.0.self_attn.q_proj.weight"), "f16");
      assert.equal(dtypes.get("model.layers.0.input_layernorm.weight"), "f32");
      await assertAdapterTrainsBaseFrozen(config, loaded);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
