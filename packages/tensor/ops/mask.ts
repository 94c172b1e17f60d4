/**
 * `maskedFill` and `where` with numpy broadcasting. Masks/conditions are u32
 * (or i32) tensors: nonzero means true.
 *
 * @module
 */

import { defineOp } from "../registry.ts";
import type { Tensor } from "../tensor.ts";
import { mapRaw } from "./elementwise.ts";
import { broadcastShapes } from "./map_kernel.ts";
import { sumToShape } from "./reduce.ts";

function checkMask(op: string, m: Tensor): void {
  if (m.dtype !== "u32" && m.dtype !== "i32") {
    throw new Error(`${op}: mask must be u32/i32, got ${m}`);
  }
}

const maskedFillOp = defineOp<{ value: number }>({
  name: "masked_fill",
  forward: ([x, mask], { value }) => {
    const out = broadcastShapes("maskedFill", x!.shape, mask!.shape);
    if (out.join() !== x!.shape.join()) {
      throw new Error(`maskedFill: mask ${mask} is larger than ${x}`);
    }
    return {
      output: mapRaw("masked_fill", `select(a, s0, b != ${zero(mask!)})`, [x!, mask!], {
        scalars: [value],
      }),
      saved: [mask!],
    };
  },
  backward: (dy, { saved }) => [
    mapRaw("masked_fill-backward", `select(a, 0.0, b != ${zero(saved[0]!)})`, [dy, saved[0]!]),
    null,
  ],
});

function zero(m: Tensor): string {
  return m.dtype === "u32" ? "0u" : "0i";
}

/** Copy of `x` with `value` (may be ±Infinity) where `mask` is nonzero. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  checkMask("maskedFill", mask);
  return maskedFillOp([x, mask], { value });
}

const whereOp = defineOp<Record<string, never>>({
  name: "where",
  forward: ([cond, a, b]) => {
    if (a!.dtype !== b!.dtype) throw new Error(`where: ${a} and ${b} differ in dtype`);
    return {
      output: mapRaw("where", `select(b, a, c != ${zero(cond!)})`, [a!, b!, cond!]),
      saved: [cond!],
    };
  },
  backward: (dy, { saved, inputs }) => {
    const c = saved[0]!, z = zero(c);
    const ga = inputs[1]!.requiresGrad
      ? sumToShape(mapRaw("where-backward", `select(0.0, a, b != ${z})`, [dy, c]), inputs[1]!.shape)
      : null;
    const gb = inputs[2]!.requiresGrad
      ? sumToShape(mapRaw("where-backward", `select(a, 0.0, b != ${z})`, [dy, c]), inputs[2]!.shape)
      : null;
    return [null, ga, gb];
  },
});

/** Elementwise `cond ? a : b` (broadcasting). */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  checkMask("where", cond);
  return whereOp([cond, a, b], {});
}
