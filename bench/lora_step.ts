/**
 * 7B-shaped LoRA training step (hidden 4096, 32 layers, 32 heads / 8 KV
 * heads of 128, FFN 14336, vocab 32768; LoRA r=16, α=32, no dropout, on
 * q,k,v,o; one sequence of 4,096 tokens; gradient checkpointing on) with
 * the frozen base in f16 and in NF4 (QLoRA, double-quantised scales). Both
 * bases are made on the GPU from random values layer by layer, so a 7B model
 * never sits in f32 anywhere (`lib/random_model.ts`). Reports ms/step,
 * tokens/s and peak GPU memory (tensor pool), and prints
 * `qloraMemory(MISTRAL_7B_SHAPE)`. Tiny config on CPU adapters.
 *
 * Also reports dispatches per step (counted over the timed steps).
 *
 * `--profile` adds one step per base timed dispatch by dispatch: GPU time per
 * op, sorted by share, with dispatch counts (saved with the result).
 *
 * `--fp16` runs the step as `training.fp16` does: f16 operands for every
 * projection and the LM head (`model.autocast`), the loss scaled by 65536
 * and unscaled as AdamW reads the gradients.
 *
 * Usage: deno run -A bench/lora_step.ts [--full | --shape tiny|full] [--reps N] [--warmup N] [--base f16,nf4] [--compute f32,f16,bf16] [--tokens N] [--profile] [--fp16]
 *
 * @module
 */

import {
  type CausalLM,
  disposeInputs,
  LoraAdapter,
  loraConfig,
  MISTRAL_7B_SHAPE,
  type ModelConfig,
  type Nf4ComputeDtype,
  qloraMemory,
} from "@irforge/model";
import {
  AdamW,
  emptyCache,
  memoryStats,
  resetPeakMemory,
  runtimeCounters,
  syncGpu,
  type Tensor,
} from "@irforge/tensor";
import { openDevice } from "./lib/device.ts";
import { modelBytes, randomCausalLM, randomNf4CausalLM } from "./lib/random_model.ts";
import {
  describeEnvironment,
  environment,
  formatBytes,
  parseSuiteArgs,
  printRows,
  type Row,
  writeResult,
} from "./lib/report.ts";
import { countReadbacks, randomLmBatch, trainStep } from "./lib/train_step.ts";
import { profileStep } from "./lib/profile_step.ts";
import type { OpProfile } from "@irforge/tensor";

/** The tiny stand-in for CPU adapters (same structure, 7B proportions not kept). */
export const LORA_TINY: ModelConfig = {
  ...MISTRAL_7B_SHAPE,
  hiddenSize: 64,
  intermediateSize: 224,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  vocabSize: 512,
  maxPositionEmbeddings: 256,
};

const device = await openDevice();
const args = parseSuiteArgs(
  Deno.args,
  device.isCpuAdapter,
  {
    base: { type: "string", default: "f16,nf4" },
    compute: { type: "string", default: "f32" },
    tokens: { type: "string" },
    profile: { type: "boolean", default: false },
    fp16: { type: "boolean", default: false },
  },
  device.isCpuAdapter ? { reps: 2, warmup: 1 } : { reps: 5, warmup: 1 },
);
const env = environment(device.adapter, {
  cpuAdapter: device.isCpuAdapter,
  timestamps: device.hasTimestamps,
});
console.log(`lora_step · ${describeEnvironment(env)} · shape ${args.shape}`);

const full = args.shape === "full";
const config = full ? MISTRAL_7B_SHAPE : LORA_TINY;
const tokens = Number(args.values.tokens ?? (full ? 4096 : 128));
const lora = loraConfig({
  r: 16,
  loraAlpha: 32,
  loraDropout: 0,
  targetModules: ["q_proj", "k_proj", "v_proj", "o_proj"],
});
const bases = String(args.values.base).split(",");
for (const b of bases) {
  if (b !== "f16" && b !== "nf4") throw new Error(`--base takes f16 and/or nf4, got "${b}"`);
}
const computeDtypes = String(args.values.compute).split(",") as Nf4ComputeDtype[];
for (const c of computeDtypes) {
  if (c !== "f32" && c !== "f16" && c !== "bf16") {
    throw new Error(`--compute takes f32, f16 and/or bf16 (the NF4 matmul's), got "${c}"`);
  }
}
// One variant per f16 base, one per NF4 compute dtype.
type Variant = { base: "f16" | "nf4"; compute: Nf4ComputeDtype | null };
const variants = bases.flatMap((base): Variant[] =>
  base === "nf4"
    ? computeDtypes.map((compute) => ({ base: "nf4", compute }))
    : [{ base: "f16", compute: null }]
);

for (const doubleQuant of [false, true]) {
  const m = qloraMemory(MISTRAL_7B_SHAPE, { doubleQuant });
  console.log(
    `  qloraMemory(MISTRAL_7B_SHAPE${doubleQuant ? ", double quant" : ""}): total ${
      formatBytes(m.totalBytes)
    } = NF4 codes ${formatBytes(m.nf4CodeBytes)} + scales ${formatBytes(m.nf4ScaleBytes)} + ` +
      `embedding ${formatBytes(m.embeddingBytes)} + LM head ${formatBytes(m.lmHeadBytes)} + norms ${
        formatBytes(m.normBytes)
      } (${(m.quantizedElements / 1e9).toFixed(3)} G quantised elements)`,
  );
}

function buildBase(base: "f16" | "nf4", computeDtype: Nf4ComputeDtype): CausalLM {
  const t0 = performance.now();
  const model = base === "f16"
    ? randomCausalLM(config, { seed: 11, weightDtype: "f16" })
    : randomNf4CausalLM(config, {
      seed: 11,
      doubleQuant: true,
      headDtype: "f16",
      computeDtype,
      onProgress: (done, total) => {
        if (done % 32 === 0 || done === total) {
          console.log(
            `    nf4 projections ${done}/${total} (${
              ((performance.now() - t0) / 1e3).toFixed(1)
            } s)`,
          );
        }
      },
    });
  console.log(
    `  ${base} base: ${formatBytes(modelBytes(model))} on the GPU, built in ${
      ((performance.now() - t0) / 1e3).toFixed(1)
    } s`,
  );
  return model;
}

const fp16 = args.values.fp16 === true;
const lossScale = fp16 ? 65536 : undefined;
const rows: Row[] = [];
const profiles: Record<string, OpProfile> = {};
for (const { base, compute } of variants) {
  if ((base === "f16" || compute === "f16") && !device.hasF16) {
    console.log(`  ${base} ${compute ?? ""} skipped: the adapter does not offer shader-f16`);
    continue;
  }
  const model = buildBase(base, compute ?? "f32");
  model.gradientCheckpointing = true;
  if (fp16) model.autocast = "f16";
  const adapter = LoraAdapter.create(config, lora, { seed: 3 }).attach(model);
  adapter.training = true;
  const optimizer = new AdamW([...adapter.parameters().values()], { weightDecay: 0 });
  const { inputs, targets } = randomLmBatch(1, tokens, config.vocabSize);
  await syncGpu();

  const step = () => trainStep(model, inputs, targets, optimizer, 1e-4, lossScale);
  for (let i = 0; i < args.warmup; i++) step().dispose();
  await syncGpu();
  resetPeakMemory();
  const losses: Tensor[] = [];
  const counted = runtimeCounters().dispatches;
  const { value: totalMs, reads } = await countReadbacks(async () => {
    const t0 = performance.now();
    for (let i = 0; i < args.reps; i++) losses.push(step());
    await syncGpu();
    return performance.now() - t0;
  });
  const dispatchesPerStep = (runtimeCounters().dispatches - counted) / args.reps;
  if (reads !== 0) throw new Error(`lora_step: ${reads} readbacks during the timed steps`);
  const mem = memoryStats();
  const lastLoss = (await losses[losses.length - 1]!.toArray())[0]!;
  for (const l of losses) l.dispose();
  if (!Number.isFinite(lastLoss)) throw new Error(`lora_step: loss is ${lastLoss}`);
  const msPerStep = totalMs / args.reps;
  rows.push({
    model: full ? "mistral-7b-shape" : "tiny",
    base,
    nf4ComputeDtype: compute,
    loraR: lora.r,
    targets: lora.targetModules.join(","),
    tokens,
    gradientCheckpointing: true,
    fp16,
    trainableParameters: adapter.parameterCount,
    baseBytes: modelBytes(model),
    steps: args.reps,
    msPerStep,
    tokensPerSecond: tokens / (msPerStep / 1e3),
    dispatchesPerStep,
    peakLiveBytes: mem.peakLiveBytes,
    peakReservedBytes: mem.peakReservedBytes,
    lastLoss,
  });
  console.log(
    `  ${base}${compute ? ` (compute ${compute})` : ""}: ${
      msPerStep.toFixed(1)
    } ms/step, peak live ${
      formatBytes(mem.peakLiveBytes)
    }, ${dispatchesPerStep} dispatches per step`,
  );
  if (args.values.profile) {
    profiles[base] = await profileStep(
      `lora_step ${base}`,
      step,
    );
  }
  disposeInputs(inputs);
  targets.dispose();
  optimizer.dispose();
  adapter.dispose();
  model.dispose();
  await syncGpu();
  emptyCache();
}
printRows(rows);
const file = await writeResult({
  suite: "lora_step",
  shape: args.shape,
  environment: env,
  rows,
  notes: {
    config,
    lora,
    qloraMemory: qloraMemory(MISTRAL_7B_SHAPE, { doubleQuant: true }),
    timing: `${args.reps} steps back to back after ${args.warmup} warm-up, one syncGpu at the end`,
    ...(Object.keys(profiles).length > 0 ? { profiles } : {}),
  },
});
console.log(`wrote ${file}`);
