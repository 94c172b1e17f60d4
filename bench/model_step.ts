/**
 * Full training step of `mistral-small` (vocab 32768, hidden 768, 12 layers,
 * 12 heads / 4 KV heads of 64, FFN 2048, f32, random weights): forward, LM
 * loss, backward, AdamW over every parameter, batch 8 × 1024 tokens.
 * Reports ms/step, tokens/s and peak GPU memory of the tensor pool, and the
 * host overhead of a warm step: dispatches, pipelines, buffers and uniform
 * buffers created, submits, and the host time to record the step.
 *
 * `--reps` steps run back to back with no readback (counted and checked);
 * the only wait is one `syncGpu()` after the last step, so ms/step is the
 * total over `--reps`. Tiny config on CPU adapters.
 *
 * `--profile` adds one more step timed dispatch by dispatch and prints GPU
 * time per op (forward and backward of each registered op, the optimizer's
 * kernels), sorted by share, with dispatch counts; the profile is saved with
 * the result.
 *
 * `--fp16` runs the step as `training.fp16` does: f16 operands for every
 * projection and the LM head (`model.autocast`), f32 masters and AdamW
 * state, the loss scaled by 65536 and unscaled as AdamW reads the gradients
 * (the trainer's once-per-step found-inf readback is not part of it).
 *
 * Usage: deno run -A bench/model_step.ts [--full | --shape tiny|full] [--reps N] [--warmup N] [--batch B] [--length T] [--profile] [--fp16]
 *
 * @module
 */

import { disposeInputs, type ModelConfig } from "@irforge/model";
import {
  AdamW,
  memoryStats,
  resetPeakMemory,
  runtimeCounters,
  syncGpu,
  type Tensor,
} from "@irforge/tensor";
import { openDevice } from "./lib/device.ts";
import { modelBytes, randomCausalLM } from "./lib/random_model.ts";
import {
  describeEnvironment,
  environment,
  formatBytes,
  parseSuiteArgs,
  printRows,
  writeResult,
} from "./lib/report.ts";
import { countReadbacks, randomLmBatch, trainStep } from "./lib/train_step.ts";
import { profileStep } from "./lib/profile_step.ts";

/** The `mistral-small` shape of the issue. */
export const MISTRAL_SMALL: ModelConfig = {
  modelType: "mistral",
  hiddenSize: 768,
  intermediateSize: 2048,
  numLayers: 12,
  numHeads: 12,
  numKvHeads: 4,
  headDim: 64,
  ropeTheta: 10000,
  rmsNormEps: 1e-5,
  slidingWindow: null,
  tieWordEmbeddings: false,
  vocabSize: 32768,
  maxPositionEmbeddings: 1024,
  bosTokenId: 1,
  eosTokenIds: [2],
  padTokenId: null,
  dtype: "float32",
};

/** The tiny stand-in run on CPU adapters. */
export const MISTRAL_TINY: ModelConfig = {
  ...MISTRAL_SMALL,
  hiddenSize: 64,
  intermediateSize: 128,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  vocabSize: 512,
  maxPositionEmbeddings: 128,
};

if (import.meta.main) {
  const device = await openDevice();
  const args = parseSuiteArgs(
    Deno.args,
    device.isCpuAdapter,
    {
      batch: { type: "string" },
      length: { type: "string" },
      profile: { type: "boolean", default: false },
      fp16: { type: "boolean", default: false },
    },
    // Two warm-up steps: under --fp16 the first casts each weight on first use and only the
    // second refreshes the cached f16 copies (its own pipeline) as every later step does.
    device.isCpuAdapter ? { reps: 3, warmup: 2 } : { reps: 10, warmup: 2 },
  );
  const env = environment(device.adapter, {
    cpuAdapter: device.isCpuAdapter,
    timestamps: device.hasTimestamps,
  });
  console.log(`model_step · ${describeEnvironment(env)} · shape ${args.shape}`);
  const full = args.shape === "full";
  const config = full ? MISTRAL_SMALL : MISTRAL_TINY;
  const batch = Number(args.values.batch ?? (full ? 8 : 2));
  const length = Number(args.values.length ?? (full ? 1024 : 64));

  const model = randomCausalLM(config, { seed: 7 });
  model.setTrainable(true);
  const fp16 = args.values.fp16 === true;
  if (fp16) model.autocast = "f16";
  const lossScale = fp16 ? 65536 : undefined;
  const step = () => trainStep(model, inputs, targets, optimizer, 1e-4, lossScale);
  const params = [...model.parameters().values()];
  const paramCount = params.reduce((n, p) => n + p.size, 0);
  const optimizer = new AdamW(params, { weightDecay: 0.01 });
  const { inputs, targets } = randomLmBatch(batch, length, config.vocabSize);
  await syncGpu();
  console.log(
    `  ${(paramCount / 1e6).toFixed(1)} M parameters (${formatBytes(modelBytes(model))} f32), ` +
      `batch ${batch} × ${length}`,
  );

  // Warm-up compiles every pipeline and allocates the pool's working set.
  for (let i = 0; i < args.warmup; i++) step().dispose();
  await syncGpu();
  resetPeakMemory();

  // Host overhead first, on warm steps: what one step records and creates, and how long
  // the host takes to record it (each step waited for, so recording does not overlap GPU work).
  const recordMs: number[] = [];
  const before = runtimeCounters();
  for (let i = 0; i < args.reps; i++) {
    const t0 = performance.now();
    const loss = step();
    recordMs.push(performance.now() - t0);
    await syncGpu();
    loss.dispose();
  }
  const after = runtimeCounters();
  const perStep = (k: keyof typeof after) => (after[k] - before[k]) / args.reps;
  recordMs.sort((a, b) => a - b);
  const host = {
    dispatchesPerStep: perStep("dispatches"),
    pipelinesCreatedPerStep: perStep("pipelinesCreated"),
    buffersCreatedPerStep: perStep("buffersCreated"),
    uniformBuffersCreatedPerStep: perStep("uniformBuffersCreated"),
    submitsPerStep: perStep("submits"),
    hostRecordMs: recordMs[recordMs.length >> 1]!,
  };
  console.log(
    `  dispatches per step ${host.dispatchesPerStep}, pipelines created per step ${host.pipelinesCreatedPerStep}, ` +
      `buffers created per step ${host.buffersCreatedPerStep} (uniform ${host.uniformBuffersCreatedPerStep}), ` +
      `submits per step ${host.submitsPerStep}, host time to record a step ${
        host.hostRecordMs.toFixed(1)
      } ms (median)`,
  );

  const losses: Tensor[] = [];
  const { value: totalMs, reads } = await countReadbacks(async () => {
    const t0 = performance.now();
    for (let i = 0; i < args.reps; i++) losses.push(step());
    await syncGpu();
    return performance.now() - t0;
  });
  if (reads !== 0) throw new Error(`model_step: ${reads} readbacks during the timed steps`);
  const mem = memoryStats();
  const lastLoss = await losses[losses.length - 1]!.toArray();
  for (const l of losses) l.dispose();
  if (!Number.isFinite(lastLoss[0]!)) throw new Error(`model_step: loss is ${lastLoss[0]}`);

  const msPerStep = totalMs / args.reps;
  const row = {
    model: full ? "mistral-small" : "mistral-tiny",
    dtype: fp16 ? "fp16 (f16 matmul operands, f32 masters)" : "f32",
    batch,
    length,
    parameters: paramCount,
    steps: args.reps,
    msPerStep,
    tokensPerSecond: (batch * length) / (msPerStep / 1e3),
    peakLiveBytes: mem.peakLiveBytes,
    peakReservedBytes: mem.peakReservedBytes,
    readbacks: reads,
    lastLoss: lastLoss[0]!,
    ...host,
  };
  printRows([row]);
  console.log(
    `  peak live ${formatBytes(mem.peakLiveBytes)}, peak reserved ${
      formatBytes(mem.peakReservedBytes)
    } (tensor pool; ${args.reps} steps, no readback)`,
  );
  const profile = args.values.profile ? await profileStep(row.model, () => step()) : undefined;
  const file = await writeResult({
    suite: "model_step",
    shape: args.shape,
    environment: env,
    rows: [row],
    notes: {
      config,
      timing:
        `${args.reps} steps back to back after ${args.warmup} warm-up, one syncGpu at the end`,
      ...(profile ? { profile } : {}),
    },
  });
  console.log(`wrote ${file}`);
  disposeInputs(inputs);
  targets.dispose();
  optimizer.dispose();
  model.dispose();
}
