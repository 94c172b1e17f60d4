/**
 * Checks the recipe tests share (not a test file itself): a micro-batch's
 * loss and gradients as the training loop computes them, their comparison
 * with gradient checkpointing on and off, the adapter's train/eval mode
 * during evaluation, and the contents of a LoRA checkpoint in peft's format.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { backward, type Tensor, tidyAsync, zeroGrad } from "@irforge/tensor";
import type { LoraAdapter } from "@irforge/model";
import { openCheckpoint } from "@irforge/model/safetensors";
import type { TrainingTask } from "../loop.ts";
import { Rng } from "../rng.ts";

/** Largest |a[i] − b[i]| (the lengths must agree). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Host copies of `params`, by name. */
export async function hostValues(
  params: ReadonlyMap<string, Tensor>,
): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of params) out.set(name, await t.toArray() as Float32Array);
  return out;
}

/** A micro-batch's loss and the gradients it gave every trainable parameter. */
export interface LossAndGrads {
  /** The loss value. */
  loss: number;
  /** Gradient of each parameter, by name. */
  grads: Map<string, Float32Array>;
}

/**
 * Runs micro-batch `index` of epoch 0 (RNG seed 7) as the training loop
 * does — backward after `microBatch` has returned — reads the loss and
 * every gradient, frees the outputs and zeroes the gradients.
 */
export async function microBatchLossAndGrads(
  task: Pick<TrainingTask, "microBatch" | "parameters">,
  index = 1,
): Promise<LossAndGrads> {
  const out = await tidyAsync(() => task.microBatch(0, index, Rng.seeded(7)));
  backward(out.loss);
  const [loss] = await out.loss.toArray();
  out.loss.dispose();
  for (const t of Object.values(out.parts ?? {})) t.dispose();
  for (const v of Object.values(out.metrics ?? {})) if (typeof v !== "number") v.dispose();
  const grads = new Map<string, Float32Array>();
  for (const [name, t] of task.parameters) {
    assert.ok(t.grad, `${name} has no gradient`);
    grads.set(name, await t.grad.toArray() as Float32Array);
  }
  zeroGrad(task.parameters.values());
  return { loss: loss!, grads };
}

/**
 * Asserts equal losses and gradients (within 1e-5) with and without
 * gradient checkpointing, and that the gradients are not all (nearly) zero,
 * so the comparison shows something. `what` prefixes the messages.
 */
export function assertSameLossAndGrads(
  plain: LossAndGrads,
  checkpointed: LossAndGrads,
  what = "",
): void {
  const prefix = what ? `${what}: ` : "";
  assert.ok(
    Math.abs(plain.loss - checkpointed.loss) <= 1e-5,
    `${prefix}${plain.loss} vs ${checkpointed.loss}`,
  );
  let largest = 0;
  for (const [name, g] of plain.grads) {
    const diff = maxAbsDiff(g, checkpointed.grads.get(name)!);
    assert.ok(diff <= 1e-5, `${prefix}${name}: gradients differ by ${diff}`);
    for (const v of g) largest = Math.max(largest, Math.abs(v));
  }
  assert.ok(
    largest > 1e-4,
    `${prefix}all gradients are (nearly) zero: the comparison shows nothing`,
  );
}

/** Records `adapter.training` at every adapter call from now on (eval mode checks). */
export function recordAdapterModes(adapter: LoraAdapter): Set<boolean> {
  const modes = new Set<boolean>();
  const delta = adapter.delta.bind(adapter);
  adapter.delta = (path, x) => (modes.add(adapter.training), delta(path, x));
  return modes;
}

/** What {@link assertPeftCheckpoint} expects besides the adapter. */
export interface PeftCheckpointExpectation {
  /** LoRA rank in `adapter_config.json`. */
  r: number;
  /** LoRA dropout in `adapter_config.json`. */
  dropout: number;
  /** Files beside the adapter, optimizer and trainer state (e.g. `model.safetensors` of a head). */
  extraFiles?: string[];
  /** Adapter tensors expected (default: every entry of `trained`). */
  adapterTensors?: number;
}

/**
 * Asserts that `checkpoint` holds a peft LoRA adapter (`adapter_config.json`
 * with `peft_type` LORA, r and dropout; `adapter_model.safetensors` with
 * peft's key names only, each equal to the trained values), the optimizer
 * and trainer state, and exactly the extra files named.
 */
export async function assertPeftCheckpoint(
  checkpoint: string,
  trained: ReadonlyMap<string, Float32Array>,
  expected: PeftCheckpointExpectation,
): Promise<void> {
  const files = [...Deno.readDirSync(checkpoint)].map((e) => e.name).sort();
  assert.deepEqual(
    files,
    [
      "adapter_config.json",
      "adapter_model.safetensors",
      ...(expected.extraFiles ?? []),
      "optimizer.safetensors",
      "trainer_state.json",
    ].sort(),
  );
  const peft = JSON.parse(await Deno.readTextFile(join(checkpoint, "adapter_config.json")));
  assert.equal(peft.peft_type, "LORA");
  assert.equal(peft.r, expected.r);
  assert.equal(peft.lora_dropout, expected.dropout);
  // peft's saved keys: base_model.model.<module path>.lora_A.weight, and nothing else.
  const saved = await openCheckpoint(join(checkpoint, "adapter_model.safetensors"));
  try {
    const names = saved.names().sort();
    assert.equal(names.length, expected.adapterTensors ?? trained.size);
    assert.ok(names.length > 0);
    for (const name of names) {
      assert.match(
        name,
        /^base_model\.model\.model\.layers\.\d+\.(self_attn|mlp)\.[a-z]+_proj\.lora_[AB]\.weight$/,
      );
      assert.deepEqual(await saved.read(name, { as: "f32" }), trained.get(name), name);
    }
  } finally {
    saved.close();
  }
}
