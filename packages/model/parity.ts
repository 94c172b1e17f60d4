/**
 * Parity with the reference implementation: run a fixture's inputs forward
 * and backward and compare logits, loss and gradients with the values
 * transformers (and peft) computed in float64.
 *
 * Tolerances: logits ≤ 1e-4 relative, loss ≤ 1e-4 absolute, each gradient
 * ≤ 1e-3 relative, where relative = max|a − b| / max|b|.
 *
 * Logits are compared where `attention_mask` is 1 (every position when the
 * fixture has no mask). At a pad position transformers' query still attends
 * to the real tokens before it (right padding) or, seeing no key, uniformly
 * to all (left padding, eager attention), while irforge's pad queries attend
 * to nothing; no loss or gradient reads those logits, so their difference is
 * reported (`logits_rel_err_incl_pads`) but not held to the tolerance.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { backward, Tensor } from "@irforge/tensor";
import { CausalLM } from "./causal_lm.ts";
import { causalInputs, disposeInputs } from "./model_inputs.ts";
import { openCheckpoint } from "./safetensors/checkpoint.ts";

/** Tolerances of the parity check. */
export const PARITY_TOLERANCE = { logits: 1e-4, loss: 1e-4, grad: 1e-3 } as const;

/** What {@link runParity} measured. */
export interface ParityReport {
  /** Relative logits error at the positions where `attention_mask` is 1. */
  logits_rel_err: number;
  /** Positions (rows of `vocab` logits) compared: those where `attention_mask` is 1. */
  logits_positions: number;
  /** Pad positions (`attention_mask` 0) left out of the comparison. */
  logits_pad_positions: number;
  /** Relative logits error over every position, pads included (information only). */
  logits_rel_err_incl_pads: number;
  /** Absolute difference of the losses. */
  loss_abs_err: number;
  /** Largest relative error over the compared gradients. */
  grad_max_rel_err: number;
  /** Name of the parameter whose gradient has that largest error. */
  worst_grad: string;
  /** Number of gradients compared. */
  grads_compared: number;
  /** Whether every error is within {@link PARITY_TOLERANCE}. */
  passed: boolean;
}

/** max|a − b| / max|b| (NaN anywhere counts as infinite error). */
export function relativeDifference(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let diff = 0, scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff === 0 ? 0 : diff / Math.max(scale, 1e-30);
}

/** The `[vocab]` rows of `logits` at positions where `mask` is 1 (all of them without a mask). */
export function realPositionLogits(
  logits: ArrayLike<number>,
  mask: readonly (readonly number[])[] | undefined,
  vocab: number,
): Float64Array {
  if (!mask) return Float64Array.from(logits);
  const length = mask[0]?.length ?? 0;
  const out: number[] = [];
  mask.forEach((row, b) =>
    row.forEach((m, t) => {
      if (m === 0) return;
      const at = (b * length + t) * vocab;
      for (let v = 0; v < vocab; v++) out.push(logits[at + v]!);
    })
  );
  return Float64Array.from(out);
}

function rows(data: ArrayLike<number>, batch: number, length: number): number[][] {
  return Array.from(
    { length: batch },
    (_, b) => Array.from({ length }, (_, t) => Number(data[b * length + t])),
  );
}

/**
 * Runs the fixture through `model` and compares. `gradients` maps each
 * fixture gradient name (without the `grad.` prefix) to the tensor whose
 * `.grad` should equal it; by default every model parameter by HF name.
 * The model's trainable parameters must already require gradients.
 */
export async function runParity(
  model: CausalLM,
  fixturePath: string,
  gradients: Map<string, Tensor> = model.params,
): Promise<ParityReport> {
  const fixture = await openCheckpoint(fixturePath);
  // peft's LoRA fixture keeps only logits, loss and gradients; its inputs are in fixture.safetensors beside it.
  const source = fixture.has("input_ids")
    ? fixture
    : await openCheckpoint(join(dirname(fixturePath), "fixture.safetensors"));
  try {
    const ids = await source.read("input_ids", { as: "native" });
    const [batch, length] = source.info("input_ids").shape as [number, number];
    const labels = source.has("labels") ? await source.read("labels", { as: "native" }) : ids;
    const attentionMask = source.has("attention_mask")
      ? rows(await source.read("attention_mask", { as: "native" }) as Int32Array, batch, length)
      : undefined;
    const inputs = causalInputs(rows(ids as Int32Array, batch, length), {
      attentionMask,
      window: model.config.slidingWindow,
    });
    const labelArray = Int32Array.from(labels as Int32Array, Number);
    const targets = Tensor.fromArray(
      CausalLM.shiftedTargets(labelArray, batch, length),
      [batch * length],
      "i32",
    );
    const { logits } = model.forward(inputs);
    const loss = CausalLM.lmLoss(logits!, targets);
    backward(loss);
    const expectedLogits = await fixture.read("logits", { as: "f32" });
    const actualLogits = await logits!.toArray();
    const vocab = model.config.vocabSize;
    const logitsRel = relativeDifference(
      realPositionLogits(actualLogits, attentionMask, vocab),
      realPositionLogits(expectedLogits, attentionMask, vocab),
    );
    const positions = attentionMask
      ? attentionMask.flat().filter((m) => m !== 0).length
      : batch * length;
    const lossValue = await loss.item();
    const expectedLoss = (await fixture.read("loss", { as: "f32" }))[0]!;
    let worst = "", worstErr = 0, compared = 0;
    for (const name of fixture.names()) {
      if (!name.startsWith("grad.")) continue;
      const key = name.slice(5);
      const param = gradients.get(key);
      if (!param) throw new Error(`${fixturePath}: gradient ${name} has no matching parameter`);
      const expected = await fixture.read(name, { as: "f32" });
      const actual = param.grad ? await param.grad.toArray() : new Float32Array(expected.length);
      const err = relativeDifference(actual, expected);
      compared++;
      if (err > worstErr || worst === "") {
        worstErr = Math.max(err, worstErr);
        if (err >= worstErr) worst = key;
      }
    }
    for (const t of [logits!, loss, targets]) t.dispose();
    disposeInputs(inputs);
    const lossErr = Math.abs(lossValue - expectedLoss);
    return {
      logits_rel_err: logitsRel,
      logits_positions: positions,
      logits_pad_positions: batch * length - positions,
      logits_rel_err_incl_pads: relativeDifference(actualLogits, expectedLogits),
      loss_abs_err: lossErr,
      grad_max_rel_err: worstErr,
      worst_grad: worst,
      grads_compared: compared,
      passed: positions > 0 && logitsRel <= PARITY_TOLERANCE.logits &&
        lossErr <= PARITY_TOLERANCE.loss &&
        worstErr <= PARITY_TOLERANCE.grad && compared > 0,
    };
  } finally {
    fixture.close();
    if (source !== fixture) source.close();
  }
}
