/**
 * Building blocks composed from engine ops (so autograd gives every
 * backward): log-sum-exp, clamp-from-below, L2 normalisation, flat gathers,
 * plus checks of loss inputs that name the bad field.
 *
 * @module
 */

import {
  add,
  addScalar,
  exp,
  indexSelect,
  log,
  max,
  mul,
  neg,
  noGrad,
  relu,
  reshape,
  rsqrt,
  sub,
  sum,
  Tensor,
} from "@irforge/tensor";
import type { HostNumbers, LossInputs } from "./types.ts";

/**
 * Additive mask value for excluded entries. Finite (not −inf) so that
 * `0 · masked` stays 0 and softmax rows never become all −inf.
 */
export const MASKED: number = -1e30;

/**
 * log Σ exp(x) over the last axis, keepdim. The max is taken without
 * gradient: mathematically its gradient cancels, so this is exact.
 */
export function logSumExp(x: Tensor): Tensor {
  const m = noGrad(() => max(x, -1, true));
  const shifted = sub(x, m);
  return add(log(sum(exp(shifted), -1, true)), m);
}

/** max(x, c) elementwise as x + relu(c − x): exact (and gradient 1) wherever x ≥ c. */
export function clampMin(x: Tensor, c: number): Tensor {
  return add(x, relu(addScalar(neg(x), c)));
}

/** Rows scaled to unit L2 norm over the last axis (norm clamped at 1e-12, as F.normalize). */
export function l2Normalize(x: Tensor): Tensor {
  const squared = sum(mul(x, x), -1, true);
  return mul(x, rsqrt(clampMin(squared, 1e-24)));
}

/**
 * Gathers elements of `x` (any shape, viewed flat) at `indices` into a tensor
 * of `shape`. Index −1 reads 0 and sends no gradient, so padded entries
 * (even −inf or NaN) never reach the loss.
 */
export function gatherFlat(
  x: Tensor,
  indices: ArrayLike<number>,
  shape: readonly number[],
): Tensor {
  const flat = reshape(x, [1, x.size]);
  const ids = Tensor.fromArray(Int32Array.from(indices), [indices.length], "i32");
  return reshape(indexSelect(flat, -1, ids), shape);
}

/** A scalar 0 connected to `x` (gradient zero), safe even if `x` holds −inf. */
export function zeroFrom(x: Tensor): Tensor {
  return reshape(gatherFlat(x, [-1], [1]), []);
}

/** Uploads float64 host values as an f32 tensor. */
export function upload(values: ArrayLike<number>, shape: readonly number[]): Tensor {
  return Tensor.fromArray(Float32Array.from(values), shape, "f32");
}

/** A required tensor input, or an error naming the field and the loss. */
export function need<K extends keyof LossInputs>(
  inputs: LossInputs,
  field: K,
  loss: string,
): NonNullable<LossInputs[K]> {
  const v = inputs[field];
  if (v === undefined || v === null) throw new Error(`loss "${loss}" needs input "${field}"`);
  return v as NonNullable<LossInputs[K]>;
}

/** Checks a tensor's rank, naming the field. */
export function checkRank(t: Tensor, rank: number, field: string, loss: string): void {
  if (t.rank !== rank) {
    throw new Error(`loss "${loss}": input "${field}" must have rank ${rank}, got ${t}`);
  }
}

/** Checks a host array's length and finiteness; returns it as float64. */
export function hostArray(
  values: HostNumbers,
  length: number,
  field: string,
  loss: string,
): Float64Array {
  if (values.length !== length) {
    throw new Error(
      `loss "${loss}": input "${field}" has ${values.length} values, expected ${length}`,
    );
  }
  const out = Float64Array.from(values);
  const bad = out.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new Error(
      `loss "${loss}": input "${field}" [${bad}] is not a finite number (${out[bad]})`,
    );
  }
  return out;
}

/** The validity mask (1 = real) of `length` entries, all ones when absent. */
export function hostMask(
  mask: HostNumbers | undefined,
  length: number,
  loss: string,
): Uint8Array {
  if (mask === undefined) return new Uint8Array(length).fill(1);
  const m = hostArray(mask, length, "mask", loss);
  return Uint8Array.from(m, (v, i) => {
    if (v !== 0 && v !== 1) throw new Error(`loss "${loss}": input "mask" [${i}] must be 0 or 1`);
    return v;
  });
}

/**
 * `[R, W]` logits with masked entries replaced by {@link MASKED}: gathered
 * (padded positions read 0 and get no gradient) then offset additively.
 */
export function maskLogits(logits: Tensor, valid: Uint8Array): Tensor {
  if (valid.every((v) => v === 1)) return logits;
  const [R, W] = logits.shape as [number, number];
  const idx = Int32Array.from(valid, (v, i) => (v ? i : -1));
  const clean = gatherFlat(logits, idx, [R, W]);
  return add(clean, upload(Float64Array.from(valid, (v) => (v ? 0 : MASKED)), [R, W]));
}
