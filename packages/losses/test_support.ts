/**
 * Test helper: runs a loss on the GPU with trainable inputs, compares the
 * value with a float64 reference and each gradient with central finite
 * differences of that reference.
 *
 * @module
 */

import { assertClose, F32_TOL, GRAD_TOL, numericGrad, toF64 } from "@irforge/tensor/testing";
import { backward, randnArray, Tensor, variable } from "@irforge/tensor";
import assert from "node:assert/strict";
import type { Loss, LossInputs, LossOutput } from "./types.ts";

/** A trainable input: values (rounded to f32) and shape. */
export interface Param {
  /** Values. */
  data: ArrayLike<number>;
  /** Shape. */
  shape: number[];
}

/** What {@link checkLoss} runs. */
export interface LossCheck {
  /** The loss under test. */
  loss: Loss;
  /** Trainable tensors (gradients checked). */
  params: Param[];
  /** Builds the loss inputs from the uploaded params. */
  inputs: (params: Tensor[]) => LossInputs;
  /** Float64 reference of the loss value. */
  ref: (params: Float64Array[]) => number;
  /** Check gradients against finite differences (default true). */
  grad?: boolean;
  /** Value tolerance (default F32_TOL). */
  tol?: number;
  /** Absolute value tolerance, for references that are (near) zero (default 0). */
  atol?: number;
  /** Gradient tolerance (default GRAD_TOL). */
  gradTol?: number;
}

/** Result of {@link checkLoss}: the GPU value, gradients and full output. */
export interface LossCheckResult {
  /** GPU loss value. */
  value: number;
  /** GPU gradients per param. */
  grads: Float32Array[];
  /** Numbers of the output's metrics (tensors read back). */
  metrics: Record<string, number>;
  /** Values of the output's parts. */
  parts: Record<string, number>;
}

/** Runs the check; throws on a mismatch or any NaN/inf in the value or gradients. */
export async function checkLoss(check: LossCheck): Promise<LossCheckResult> {
  const values = check.params.map((p) => toF64(p.data));
  const tensors = check.params.map((p, k) => variable(tensorOf(values[k]!, p.shape)));
  let out: LossOutput | undefined;
  try {
    out = await check.loss.compute(check.inputs(tensors));
    assert.deepEqual(out.loss.shape, [], "loss must be a scalar");
    const value = await out.loss.item();
    const expected = check.ref(values);
    assert(Number.isFinite(value), `loss is ${value}`);
    if (!(Math.abs(value - expected) <= (check.atol ?? 0))) {
      assertClose([value], [expected], check.tol ?? F32_TOL, `${check.loss.name} value`);
    }
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(out.metrics ?? {})) {
      metrics[k] = typeof v === "number" ? v : await v.item();
    }
    const parts: Record<string, number> = {};
    for (const [k, v] of Object.entries(out.parts ?? {})) parts[k] = await v.item();
    backward(out.loss);
    const grads: Float32Array[] = [];
    for (const [k, t] of tensors.entries()) {
      const g = t.grad ? (await t.grad.toArray()) as Float32Array : new Float32Array(t.size);
      const bad = g.findIndex((v) => !Number.isFinite(v));
      assert(bad < 0, `${check.loss.name}: gradient of param ${k} [${bad}] is ${g[bad]}`);
      grads.push(g);
      if (check.grad ?? true) {
        const numeric = numericGrad(check.ref, values, k, 1e-6);
        assertClose(g, numeric, check.gradTol ?? GRAD_TOL, `${check.loss.name} grad of param ${k}`);
      }
    }
    return { value, grads, metrics, parts };
  } finally {
    out?.loss.dispose();
    for (const t of Object.values(out?.parts ?? {})) t.dispose();
    for (const t of tensors) {
      t.grad?.dispose();
      t.dispose();
    }
  }
}

function tensorOf(values: Float64Array, shape: number[]): Tensor {
  return Tensor.fromArray(values, shape);
}

/** Seeded normal values scaled by `std`. */
export function randomValues(n: number, seed: number, std = 1): Float64Array {
  return toF64(randnArray(n, seed, 0, std));
}
