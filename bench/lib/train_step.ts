/**
 * One language-model training step as the trainer runs it (forward, loss,
 * backward, AdamW, zero grads), with no readback; and a readback counter
 * that proves it.
 *
 * @module
 */

import { causalInputs, CausalLM, type ModelInputs } from "@irforge/model";
import { AdamW, backward, gradNormStats, scale, type Tensor, tensor, tidy } from "@irforge/tensor";
import { getRuntime } from "@irforge/tensor/lab";

/** Random ids `[batch, length]` below `vocab` from a small LCG (the same for every run). */
export function randomTokenIds(batch: number, length: number, vocab: number, seed = 1): number[][] {
  let s = seed >>> 0;
  return Array.from({ length: batch }, () =>
    Array.from({ length }, () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s % vocab;
    }));
}

/** Inputs and shifted targets (next token) of a random causal batch, on the GPU. */
export function randomLmBatch(
  batch: number,
  length: number,
  vocab: number,
): { inputs: ModelInputs; targets: Tensor } {
  const ids = randomTokenIds(batch, length, vocab);
  const inputs = causalInputs(ids);
  const targets = CausalLM.shiftedTargets(Int32Array.from(ids.flat()), batch, length);
  return { inputs, targets: tensor(targets, [batch * length], "i32").keep() };
}

/**
 * Records one step: forward, mean LM loss (the LM head fused into the
 * cross-entropy, as the sft recipe trains), backward, AdamW(`lr`), zero
 * grads. Returns the loss tensor (owned by the caller) without reading it.
 */
export function trainStep(
  model: CausalLM,
  inputs: ModelInputs,
  targets: Tensor,
  optimizer: AdamW,
  lr = 1e-4,
  lossScale?: number,
): Tensor {
  const loss = tidy(() => {
    const { hidden } = model.forward(inputs, { output: "hidden" });
    const l = model.causalLmLoss(hidden!, targets);
    backward(lossScale === undefined ? l : scale(l, lossScale));
    return l;
  });
  if (lossScale === undefined) {
    optimizer.step(lr);
  } else {
    // Unscaled as AdamW reads each gradient; the trainer's found-inf readback is left out.
    const { norm, factor } = gradNormStats(optimizer.params, Infinity, { lossScale });
    optimizer.step(lr, { gradFactor: factor });
    norm.dispose();
    factor.dispose();
  }
  optimizer.zeroGrad();
  return loss;
}

/**
 * Counts GPU → host reads made through the runtime while `fn` runs (the
 * tensor engine reads back only through `Runtime.read`).
 */
export async function countReadbacks<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; reads: number }> {
  const rt = getRuntime();
  const original = rt.read;
  let reads = 0;
  rt.read = function (this: typeof rt, ...args: Parameters<typeof original>) {
    reads++;
    return original.apply(this, args);
  };
  try {
    return { value: await fn(), reads };
  } finally {
    rt.read = original;
  }
}
