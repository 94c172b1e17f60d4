/**
 * The training loop every recipe uses: gradient accumulation, global
 * grad-norm clipping, AdamW with the HF learning-rate schedule, logging to
 * `metrics.jsonl`, periodic evaluation, checkpoints with rotation, exact
 * resume, Ctrl-C / SIGTERM handling and divergence detection.
 *
 * A recipe supplies a {@link TrainingTask}: the trainable parameters, how
 * many micro-batches an epoch has, a function computing the loss of one
 * micro-batch, and optionally an evaluation. The loop owns everything else.
 *
 * Losses stay on the GPU: per-step losses are gathered into one tensor and
 * read back only when a `logging_steps` record is due (or before a
 * checkpoint/evaluation, so a diverged model is never saved as good).
 *
 * @module
 */

import { join } from "node:path";
import {
  AdamW,
  type AdamWState,
  add,
  backward,
  concat,
  currentDevice,
  describeDevice,
  deviceFacts,
  memoryStats,
  noGrad,
  resetPeakMemory,
  reshape,
  runtimeCounters,
  scale,
  type Tensor,
  tidyAsync,
} from "@irforge/tensor";
import { openCheckpoint, writeSafetensors } from "@irforge/model/safetensors";
import type { Config, TrainingConfig } from "./config/schema.ts";
import { resolvedConfigYaml } from "./config/resolved_yaml.ts";
import { runDirectory, runName } from "./config/run_location.ts";
import { learningRateAt, totalTrainingSteps, warmupSteps } from "./schedule.ts";
import {
  type EvalResult,
  parseTrainerState,
  type RunDevice,
  RunDir,
  type RunDirOptions,
  type RunStatus,
  type TrainerState,
} from "./run_dir.ts";
import { Rng } from "./rng.ts";
import { Progress } from "./progress.ts";
import { RunLock } from "./run_lock.ts";
import { openResume } from "./resume.ts";
import type { DataParallel, TrainingTaskReduction } from "./distributed/data_parallel.ts";
import type { RunWriter } from "./distributed/follower_run.ts";
import { LossScaler, SCALER_FILE } from "./loss_scaler.ts";
import { optimizerStep } from "./optimizer_step.ts";
import { finishProfile, maybeStartProfile } from "./profile.ts";

/** What a recipe computes for one micro-batch. Every tensor belongs to the loop. */
export interface MicroBatchResult {
  /** Scalar training loss (differentiable). */
  loss: Tensor;
  /** Unweighted scalar loss components, logged as `train/<name>` (e.g. `lm_loss`). */
  parts?: Record<string, Tensor>;
  /** Extra scalars to log as `train/<name>` (e.g. `aux_accuracy`), averaged per window. */
  metrics?: Record<string, number | Tensor>;
  /** Real (non-pad) tokens processed, for `tokens_per_s`. */
  tokens: number;
}

/** What an evaluation produces. */
export interface EvalOutcome {
  /** Aggregate metrics without the `eval/` prefix, e.g. `{"ndcg@10": 0.61}`. */
  metrics: Record<string, number>;
  /** Per-query metrics. */
  perQuery?: Record<string, Record<string, number>>;
  /** The TREC run that was scored. */
  runText?: string;
  /** trec_eval's `-l` the ranking measures were computed at (shown in the log line). */
  relevanceLevel?: number;
}

/** A recipe as the loop sees it. */
export interface TrainingTask {
  /** Recipe name for `run.json`. */
  recipe: string;
  /** Trainable parameters by name (f32, `requiresGrad`); the optimiser steps these. */
  parameters: Map<string, Tensor>;
  /** Micro-batches per epoch. */
  batchesPerEpoch: number;
  /**
   * Forward pass and loss of micro-batch `index` of `epoch`. `rng` is the
   * trainer's stream (dropout seeds, noise); it is checkpointed, so a
   * resumed run draws the same numbers.
   */
  microBatch(epoch: number, index: number, rng: Rng): Promise<MicroBatchResult>;
  /** Evaluates the current model (no gradients). */
  evaluate?(): Promise<EvalOutcome>;
  /** Writes the weights of a checkpoint into `dir` (model or adapter safetensors). */
  saveWeights(dir: string): Promise<void>;
  /** Loads weights written by {@link TrainingTask.saveWeights} from `dir`. */
  loadWeights(dir: string): Promise<void>;
  /**
   * How gradients combine over data-parallel ranks (default `mean`; `sum`
   * when the loss already is the global batch's, e.g. cross-rank negatives).
   */
  gradientReduction?: TrainingTaskReduction;
}

/** Options of {@link train}. */
export interface TrainOptions {
  /** The resolved configuration (written to `config.yaml`). */
  config: Config;
  /** Training settings (default `config.training`; a distill phase passes its own). */
  training?: TrainingConfig;
  /** The recipe. */
  task: TrainingTask;
  /** Run directory (default `runDirectory(config)`, made unique). */
  runPath?: string;
  /** A checkpoint or run directory to continue from. */
  resume?: string | null;
  /** Output lines (default console.log). */
  log?: (line: string) => void;
  /** Draw the progress bar / progress lines (default true). */
  progress?: boolean;
  /** Install the SIGINT/SIGTERM handlers (default true). */
  handleSignals?: boolean;
  /**
   * Behave as if Ctrl-C arrived right after this optimizer step (tests of
   * interruption and resume).
   */
  interruptAfterStep?: number;
  /** Evaluate once before the first step (written as step 0; skipped when resuming). */
  evaluateFirst?: boolean;
  /**
   * Data-parallel training over MPI ranks (see `distributed/data_parallel.ts`):
   * sharded batches, gradients all-reduced per step, rank 0 alone writes.
   */
  distributed?: DataParallel;
}

/** What {@link train} returns. */
export interface TrainResult {
  /** The run directory. */
  runPath: string;
  /** How the run ended. */
  status: Exclude<RunStatus, "running">;
  /** Last optimizer step completed. */
  step: number;
  /** Planned optimizer steps. */
  totalSteps: number;
  /** `train/loss` of every logged record, in order. */
  losses: { step: number; loss: number }[];
  /** The last evaluation, if any ran. */
  lastEval: EvalOutcome | null;
  /** The error of a failed run. */
  error?: Error;
}

/** A non-finite loss: names the step and the offending loss term. */
export class DivergenceError extends Error {
  /** Builds the message `step N: train/x is NaN (…)`. */
  constructor(
    readonly step: number,
    readonly term: string,
    readonly values: Record<string, number>,
  ) {
    const shown = Object.entries(values).map(([k, v]) => `${k} = ${v}`).join(", ");
    super(`training diverged at step ${step}: ${term} is ${values[term]} (${shown})`);
    this.name = "DivergenceError";
  }
}

/** The order of examples in `epoch`: a seeded permutation of `0..n-1`. */
export function epochPermutation(n: number, seed: number, epoch: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  return Rng.seeded(seed * 1_000_003 + epoch).shuffle(order);
}

/** Name of the optimiser state file in a checkpoint. */
export const OPTIMIZER_FILE = "optimizer.safetensors";

/** Writes AdamW moments (`exp_avg.<name>`, `exp_avg_sq.<name>`) and step counts. */
export async function saveOptimizerState(
  path: string,
  names: readonly string[],
  shapes: readonly (readonly number[])[],
  state: AdamWState,
): Promise<void> {
  const tensors: [string, { dtype: "F32"; shape: readonly number[]; data: Float32Array }][] = [];
  names.forEach((name, i) => {
    tensors.push([`exp_avg.${name}`, { dtype: "F32", shape: shapes[i]!, data: state.m[i]! }]);
    tensors.push([`exp_avg_sq.${name}`, { dtype: "F32", shape: shapes[i]!, data: state.v[i]! }]);
  });
  const steps: Record<string, number> = {};
  names.forEach((name, i) => steps[name] = state.step[i]!);
  await writeSafetensors(path, tensors, { metadata: { steps: JSON.stringify(steps) } });
}

/** Reads what {@link saveOptimizerState} wrote, in the order of `names`. */
export async function loadOptimizerState(
  path: string,
  names: readonly string[],
): Promise<AdamWState> {
  const checkpoint = await openCheckpoint(path);
  try {
    const state: AdamWState = { step: [], m: [], v: [] };
    const metadata = await readMetadata(path);
    const steps = JSON.parse(metadata.steps ?? "{}") as Record<string, number>;
    for (const name of names) {
      for (const key of [`exp_avg.${name}`, `exp_avg_sq.${name}`]) {
        if (!checkpoint.has(key)) {
          throw new Error(
            `${path}: optimiser state lacks "${key}" (different trainable parameters?)`,
          );
        }
      }
      state.m.push(await checkpoint.read(`exp_avg.${name}`, { as: "f32" }));
      state.v.push(await checkpoint.read(`exp_avg_sq.${name}`, { as: "f32" }));
      state.step.push(steps[name] ?? 0);
    }
    return state;
  } finally {
    checkpoint.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function readMetadata(path: string): Promise<Record<string, string>> {
  const file = await Deno.open(path);
  try {
    const head = new Uint8Array(8);
    await file.read(head);
    const length = Number(new DataView(head.buffer).getBigUint64(0, true));
    const header = new Uint8Array(length);
    let read = 0;
    while (read < length) read += (await file.read(header.subarray(read))) ?? length;
    const json = JSON.parse(new TextDecoder().decode(header)) as Record<string, unknown>;
    return (json.__metadata__ ?? {}) as Record<string, string>;
  } finally {
    file.close();
  }
}

interface PendingStep {
  step: number;
  /** Scalars of this step: loss, parts, tensor metrics, grad norm (in `names` order). */
  scalars: Tensor[];
  names: string[];
  /** Host-side metrics already known. */
  host: Record<string, number>;
  lr: number;
  tokens: number;
}

/**
 * Runs training to the end (or until interrupted / diverged). Never throws
 * for a failed run: the run directory records the failure and the result
 * carries the error.
 *
 * @example Two optimizer steps of the embedded default run (a tiny bi-encoder)
 * ```ts
 * import { buildTask, defaultConfig, train } from "@irforge/trainer";
 *
 * export async function twoSteps(): Promise<number> {
 *   const config = await defaultConfig(["training.max_steps=2"]);
 *   const task = await buildTask(config);
 *   try {
 *     const result = await train({ config, task, progress: false });
 *     return result.step; // 2 when the run finished
 *   } finally {
 *     task.dispose();
 *   }
 * }
 * ```
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const { config, task } = options;
  const training = options.training ?? config.training;
  const log = options.log ?? ((line: string) => console.log(line));
  const accumulation = training.gradient_accumulation_steps;
  const dp = options.distributed ?? null;
  const batchesPerEpoch = dp ? dp.batchesPerEpoch(task.batchesPerEpoch) : task.batchesPerEpoch;
  const totalSteps = totalTrainingSteps(batchesPerEpoch, training);
  const schedule = {
    type: training.lr_scheduler_type,
    base: training.learning_rate,
    warmupSteps: warmupSteps(totalSteps, training),
    totalSteps,
  };
  const names = [...task.parameters.keys()];
  const params = [...task.parameters.values()];
  const optimizer = new AdamW(params, {
    beta1: training.adam_beta1,
    beta2: training.adam_beta2,
    eps: training.adam_epsilon,
    weightDecay: training.weight_decay,
  });
  const runOptions: RunDirOptions = {
    recipe: task.recipe,
    totalSteps,
    device: deviceFacts(currentDevice()) as unknown as RunDevice,
    name: training.run_name ?? runName(config),
    saveTotalLimit: training.save_total_limit,
    bestMetric: training.metric_for_best_model === null ? null : {
      metric: training.metric_for_best_model,
      greaterIsBetter: training.greater_is_better,
    },
  };

  // fp16: dynamic loss scaling (GradScaler); the recipe casts matmul operands to f16.
  const scaler = training.fp16 ? new LossScaler() : null;
  let step = 0;
  let rng = Rng.seeded(training.seed);
  let run: RunWriter;
  // One process per run directory (rank 0 of a data-parallel job holds the lock): a second
  // `--resume` is refused before it touches anything.
  const leads = !dp || dp.leader;
  let lock: RunLock | undefined;
  let opened: string;
  if (options.resume) {
    const resumed = await openResume(options.resume, task.recipe, log, { lock: leads });
    lock = resumed.lock;
    const checkpoint = resumed.checkpoint;
    try {
      const statePath = `${checkpoint.path}/trainer_state.json`;
      const state = parseTrainerState(await Deno.readTextFile(statePath), statePath);
      await task.loadWeights(checkpoint.path);
      optimizer.importState(
        await loadOptimizerState(`${checkpoint.path}/${OPTIMIZER_FILE}`, names),
      );
      rng = Rng.fromState(state.rng_state);
      step = state.step;
      const scalerPath = `${checkpoint.path}/${SCALER_FILE}`;
      if (scaler && await exists(scalerPath)) {
        scaler.restore(JSON.parse(await Deno.readTextFile(scalerPath)), scalerPath);
      }
      const resume = () => RunDir.resume(resumed.runPath, step, runOptions);
      run = dp ? await dp.openRun(resume) : await resume();
    } catch (error) {
      lock?.release();
      throw error;
    }
    opened = `resumed ${run.path} from step ${step} (${checkpoint.path})`;
  } else {
    const create = () => RunDir.create(options.runPath ?? runDirectory(config), runOptions);
    run = dp ? await dp.openRun(create) : await create();
    if (leads) lock = await RunLock.acquire(run.path);
    opened = `run directory: ${run.path}`;
  }
  log(describeDevice(currentDevice()));

  let interrupted = false;
  const onSignal = () => {
    if (interrupted) {
      // A second signal: stop now. Checkpoints are renamed into place only when complete,
      // so the newest complete one is intact; a half-written `.tmp` one is ignored on resume.
      log("\nsecond interrupt: exiting now; the newest complete checkpoint is kept");
      if (run instanceof RunDir) markInterruptedSync(run, step);
      lock?.release();
      Deno.exit(130);
    }
    interrupted = true;
    log(
      "\ninterrupt: stopping after the current optimizer step and saving a checkpoint " +
        "(interrupt again to exit at once)",
    );
  };
  // Under data parallelism a signal is shared at the next step, so every rank stops together.
  const handleSignals = (options.handleSignals ?? true) && !dp;
  if (dp && (options.handleSignals ?? true)) dp.listenForSignals();
  // SIGTERM (kill, a scheduler's stop) is handled like Ctrl-C, so a killed run is never left
  // `running`: it checkpoints and ends `interrupted`.
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  if (handleSignals) { for (const signal of signals) Deno.addSignalListener(signal, onSignal); }
  log(opened); // after the handlers: from here on, Ctrl-C is handled

  const progress = options.progress === false ? null : new Progress({
    total: totalSteps,
    loggingSteps: training.logging_steps,
    startStep: step,
  });
  const losses: TrainResult["losses"] = [];
  let lastEval: EvalOutcome | null = null;
  let lastLoss: number | undefined;
  let pending: PendingStep[] = [];
  let windowStart = performance.now();
  const evalEvery = training.eval_steps ?? training.logging_steps;
  const epochOf = (s: number) => (s * accumulation) / batchesPerEpoch;

  // Reads every pending scalar back in one transfer, checks them, writes one record.
  const flush = async (force: boolean) => {
    if (pending.length === 0) return;
    const last = pending[pending.length - 1]!;
    if (!force && last.step % training.logging_steps !== 0 && last.step !== totalSteps) return;
    const all = pending.flatMap((p) => p.scalars);
    const joined = noGrad(() => concat(all.map((t) => reshape(t, [1])), 0));
    const values = await joined.toArray();
    joined.dispose();
    for (const t of all) t.dispose();
    const sums: Record<string, number> = {};
    let at = 0, tokens = 0;
    for (const p of pending) {
      const stepValues: Record<string, number> = { ...p.host };
      for (const name of p.names) stepValues[name] = values[at++]!;
      const bad = Object.keys(stepValues).find((k) =>
        k !== "train/grad_norm" && !Number.isFinite(stepValues[k])
      );
      if (bad !== undefined) {
        // Name the component that went bad first, not the total it poisoned.
        const part = Object.keys(stepValues).find((k) =>
          k !== "train/loss" && k !== "train/grad_norm" && !Number.isFinite(stepValues[k])
        );
        pending = [];
        await run.log(p.step, { ...stepValues, epoch: epochOf(p.step) });
        throw new DivergenceError(p.step, part ?? bad, stepValues);
      }
      for (const [k, v] of Object.entries(stepValues)) sums[k] = (sums[k] ?? 0) + v;
      tokens += p.tokens;
    }
    const seconds = (performance.now() - windowStart) / 1000;
    const record: Record<string, number> = { epoch: epochOf(last.step) };
    for (const [k, v] of Object.entries(sums)) record[k] = v / pending.length;
    record["train/learning_rate"] = last.lr;
    record["tokens_per_s"] = seconds > 0 ? tokens / seconds : 0;
    // Peak over this record's steps: the pool's peak restarts after each record.
    record["gpu_memory_bytes"] = memoryStats().peakLiveBytes;
    resetPeakMemory();
    await run.log(last.step, record);
    lastLoss = record["train/loss"];
    losses.push({ step: last.step, loss: record["train/loss"]! });
    pending = [];
    windowStart = performance.now();
  };

  const evaluate = async () => {
    if (!task.evaluate) return;
    await flush(true);
    progress?.finish(); // evaluation's progress lines start below the bar, not on it
    const outcome = await task.evaluate();
    lastEval = outcome;
    const result: EvalResult = { metrics: outcome.metrics, per_query: outcome.perQuery };
    await run.writeEval(step, result, outcome.runText);
    const prefixed: Record<string, number> = {};
    for (const [k, v] of Object.entries(outcome.metrics)) prefixed[`eval/${k}`] = v;
    await run.log(step, prefixed);
    log(
      `\neval step ${step}` +
        (outcome.relevanceLevel === undefined ? "" : ` (trec_eval -l ${outcome.relevanceLevel})`) +
        ": " +
        Object.entries(outcome.metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(" "),
    );
  };

  const checkpoint = async () => {
    await flush(true);
    if (dp && !dp.leader) return; // rank 0 alone writes; every rank holds the same weights
    const dir = await run.beginCheckpoint(step);
    await task.saveWeights(dir);
    await saveOptimizerState(
      `${dir}/${OPTIMIZER_FILE}`,
      names,
      params.map((p) => p.shape),
      await optimizer.exportState(),
    );
    if (scaler) {
      await Deno.writeTextFile(`${dir}/${SCALER_FILE}`, JSON.stringify(scaler.state()) + "\n");
    }
    const consumed = step * accumulation;
    const state: TrainerState = {
      step,
      epoch: epochOf(step),
      data_position: {
        epoch: Math.floor(consumed / batchesPerEpoch),
        index: consumed % batchesPerEpoch,
      },
      rng_state: rng.state(),
      best: run.best,
    };
    await run.commitCheckpoint(step, state);
  };

  let status: Exclude<RunStatus, "running"> = "finished";
  let error: Error | undefined;
  try {
    await run.writeConfig(resolvedConfigYaml(config));
    if (options.evaluateFirst && !options.resume) await evaluate();
    let dispatchesPerStep = 0;
    while (step < totalSteps) {
      const stepStart = runtimeCounters().dispatches;
      const profiling = maybeStartProfile(training.profile_steps, step + 1, dispatchesPerStep, log);
      let stepLoss: Tensor | null = null;
      const partSums = new Map<string, Tensor>();
      const metricSums = new Map<string, Tensor>();
      const hostSums: Record<string, number> = {};
      let tokens = 0;
      for (let micro = 0; micro < accumulation; micro++) {
        const global = step * accumulation + micro;
        const epoch = Math.floor(global / batchesPerEpoch);
        const index = global % batchesPerEpoch;
        // Data-parallel: this rank's shard, with its own random stream.
        const out = dp
          ? await tidyAsync(() =>
            task.microBatch(
              epoch,
              dp.shardIndex(index, task.batchesPerEpoch),
              dp.microBatchRng(rng),
            )
          )
          : await tidyAsync(() => task.microBatch(epoch, index, rng));
        tokens += out.tokens;
        const scaled = scale(out.loss, (scaler?.scale ?? 1) / accumulation);
        backward(scaled);
        noGrad(() => {
          const accumulate = (into: Map<string, Tensor>, name: string, t: Tensor) => {
            const s = scale(t, 1 / accumulation);
            const prev = into.get(name);
            if (prev) {
              into.set(name, add(prev, s));
              prev.dispose();
              s.dispose();
            } else into.set(name, s);
          };
          const detached = scale(out.loss, 1 / accumulation);
          if (stepLoss) {
            const next = add(stepLoss, detached);
            stepLoss.dispose();
            detached.dispose();
            stepLoss = next;
          } else stepLoss = detached;
          for (const [k, t] of Object.entries(out.parts ?? {})) accumulate(partSums, k, t);
          for (const [k, v] of Object.entries(out.metrics ?? {})) {
            if (typeof v === "number") hostSums[k] = (hostSums[k] ?? 0) + v / accumulation;
            else accumulate(metricSums, k, v);
          }
        });
        scaled.dispose();
        out.loss.dispose();
        for (const t of Object.values(out.parts ?? {})) t.dispose();
        for (const v of Object.values(out.metrics ?? {})) if (typeof v !== "number") v.dispose();
      }
      let scalarNames = ["train/loss"];
      let scalars: Tensor[] = stepLoss ? [stepLoss] : [];
      for (const [k, t] of partSums) scalarNames.push(`train/${k}`), scalars.push(t);
      for (const [k, t] of metricSums) scalarNames.push(`train/${k}`), scalars.push(t);
      let host: Record<string, number> = {};
      for (const [k, v] of Object.entries(hostSums)) host[`train/${k}`] = v;
      if (dp) {
        // Gradients and step scalars of all ranks, in one packed all-reduce.
        interrupted = await dp.agreeInterrupt();
        const totals = await dp.reduceStep({
          params,
          names: scalarNames,
          scalars,
          host,
          tokens,
          reduction: task.gradientReduction ?? "mean",
        });
        host = totals.host;
        tokens = totals.tokens;
        scalarNames = [];
        scalars = [];
      }
      // Skipped (overflowed) steps do not advance the schedule, as in HF's Trainer.
      const lr = learningRateAt(step - (scaler?.skippedSteps ?? 0), schedule);
      const { gradNorm, skipped, lossScale } = await optimizerStep(params, optimizer, {
        lr,
        maxGradNorm: training.max_grad_norm,
        scaler,
      });
      optimizer.zeroGrad();
      step++;
      dispatchesPerStep = runtimeCounters().dispatches - stepStart;
      if (profiling) await finishProfile(profiling, step, leads ? run.path : null, log);
      if (skipped) {
        log(
          `\nstep ${step}: inf/NaN gradients at loss scale ${lossScale}; update skipped, ` +
            `loss scale now ${scaler!.scale}`,
        );
      }
      scalarNames.push("train/grad_norm");
      scalars.push(gradNorm);
      if (scaler) {
        host["train/loss_scale"] = lossScale, host["train/skipped_step"] = skipped ? 1 : 0;
      }
      pending.push({ step, scalars, names: scalarNames, host, lr, tokens });
      await flush(false);
      // Let the event loop deliver signals: without a macrotask turn a Ctrl-C would wait
      // for the next read-back (the next logging step).
      await new Promise((resolve) => setTimeout(resolve, 0));
      progress?.update(step, { loss: lastLoss, lr, tokens });

      const epochEnded = Math.floor(epochOf(step)) > Math.floor(epochOf(step - 1));
      if (
        (training.eval_strategy === "steps" && step % evalEvery === 0) ||
        (training.eval_strategy === "epoch" && epochEnded)
      ) await evaluate();
      const saveDue = (training.save_strategy === "steps" && step % training.save_steps === 0) ||
        (training.save_strategy === "epoch" && epochEnded);
      if (options.interruptAfterStep === step) interrupted = true;
      if (interrupted) {
        await checkpoint();
        status = "interrupted";
        break;
      }
      if (saveDue) await checkpoint();
    }
    if (status === "finished") {
      await flush(true);
      const evaluatedLast = training.eval_strategy === "steps" && step % evalEvery === 0;
      if (training.eval_strategy !== "no" && !evaluatedLast) await evaluate();
      const saved = (await run.listCheckpoints()).some((c) => c.step === step);
      if (training.save_strategy !== "no" && !saved) await checkpoint();
    }
  } catch (e) {
    status = "failed";
    error = e instanceof Error ? e : new Error(String(e));
    for (const p of pending) for (const t of p.scalars) t.dispose();
    pending = [];
  } finally {
    progress?.finish();
    if (handleSignals) {
      for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
    }
    dp?.stopListening();
    optimizer.zeroGrad();
    optimizer.dispose();
  }
  try {
    await run.finish(status, error);
  } finally {
    lock?.release();
  }
  if (status === "interrupted") {
    log(`interrupted at step ${step}; resume with --resume ${run.path}`);
  }
  if (error) log(`training failed: ${error.message}`);
  return { runPath: run.path, status, step, totalSteps, losses, lastEval, error };
}

/**
 * Marks `run.json` interrupted synchronously, for a process that exits from a
 * signal handler; best effort (the run may be mid-write elsewhere).
 */
function markInterruptedSync(run: RunDir, step: number): void {
  try {
    const summary = run.summary;
    const now = new Date().toISOString();
    Object.assign(summary, { status: "interrupted", finished_at: now, updated_at: now });
    summary.step = Math.max(summary.step, step);
    const path = join(run.path, "run.json");
    const tmp = `${path}.tmp-${Deno.pid}-exit`;
    Deno.writeTextFileSync(tmp, JSON.stringify(summary, null, 2) + "\n");
    Deno.renameSync(tmp, path);
  } catch {
    // exiting anyway
  }
}
