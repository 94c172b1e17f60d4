/**
 * Learning-rate schedules, matching HF transformers' `get_scheduler` exactly.
 *
 * Step indexing follows torch's `LambdaLR`: optimizer step `k` (counting from
 * 0) uses `base * lambda(k)`. With warm-up the very first step therefore runs
 * at lr 0, as in HF.
 *
 * @module
 */

import type { SchedulerType } from "./config/schema.ts";

/** What a schedule needs. */
export interface ScheduleOptions {
  /** Schedule shape (HF `lr_scheduler_type`). */
  type: SchedulerType;
  /** Peak learning rate (`learning_rate`). */
  base: number;
  /** Linear warm-up steps from 0 (see {@linkcode warmupSteps}). */
  warmupSteps: number;
  /** Total optimizer steps of the run (see {@linkcode totalTrainingSteps}). */
  totalSteps: number;
}

/**
 * The multiplier of the base learning rate at optimizer step `step` (from 0):
 * HF's `_get_{linear,cosine,constant}_schedule_with_warmup_lr_lambda`, cosine
 * with `num_cycles = 0.5`.
 */
export function lrMultiplier(step: number, options: Omit<ScheduleOptions, "base">): number {
  const { type, warmupSteps, totalSteps } = options;
  if (type === "constant") return 1;
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  switch (type) {
    case "constant_with_warmup":
      return 1;
    case "linear":
      return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
    case "cosine": {
      const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
      const numCycles = 0.5;
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
    }
  }
}

/** The learning rate for optimizer step `step` (from 0). */
export function learningRateAt(step: number, options: ScheduleOptions): number {
  return options.base * lrMultiplier(step, options);
}

/**
 * Warm-up steps as HF `TrainingArguments.get_warmup_steps` computes them:
 * `warmup_steps` when positive, else `ceil(totalSteps * warmup_ratio)`.
 */
export function warmupSteps(
  totalSteps: number,
  training: { warmup_steps: number; warmup_ratio: number },
): number {
  return training.warmup_steps > 0
    ? training.warmup_steps
    : Math.ceil(totalSteps * training.warmup_ratio);
}

/**
 * Total optimizer steps as HF `Trainer` computes them: `max_steps` when
 * positive, else `ceil(num_train_epochs * stepsPerEpoch)` where an epoch has
 * `max(1, floor(microBatches / gradient_accumulation_steps))` steps.
 *
 * @param microBatchesPerEpoch Batches the data loader yields per epoch.
 */
export function totalTrainingSteps(
  microBatchesPerEpoch: number,
  training: { max_steps: number; num_train_epochs: number; gradient_accumulation_steps: number },
): number {
  if (training.max_steps > 0) return training.max_steps;
  return Math.ceil(training.num_train_epochs * stepsPerEpoch(microBatchesPerEpoch, training));
}

/** Optimizer steps per epoch (HF: `max(1, len(dataloader) // gradient_accumulation_steps)`). */
export function stepsPerEpoch(
  microBatchesPerEpoch: number,
  training: { gradient_accumulation_steps: number },
): number {
  return Math.max(1, Math.floor(microBatchesPerEpoch / training.gradient_accumulation_steps));
}
