/**
 * Parity with the reference implementation: run a fixture's inputs forward
 * and backward and compare logits, loss and gradients with the values
 * transformers (and peft) computed in float64.
 *
 * Tolerances: logits ≤ 1e-4 relative, loss ≤ 1e-4 absolute, each gradient
 * ≤ 1e-3 relative, where relative = max|a − b| / max|b|.
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
  logits_rel_err: number;
  loss_abs_err: number;
  grad_max_rel_err: number;
  worst_grad: string;
  /** Number of gradients compared. */
  grads_compared: number;
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
    const logitsRel = relativeDifference(await logits!.toArray(), expectedLogits);
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
      loss_abs_err: lossErr,
      grad_max_rel_err: worstErr,
      worst_grad: worst,
      grads_compared: compared,
      passed: logitsRel <= PARITY_TOLERANCE.logits && lossErr <= PARITY_TOLERANCE.loss &&
        worstErr <= PARITY_TOLERANCE.grad && compared > 0,
    };
  } finally {
    fixture.close();
    if (source !== fixture) source.close();
  }
}
