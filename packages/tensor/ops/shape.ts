/**
 * Shape ops: reshape (a view), permute/transpose, slice, concat and expand
 * (copies through the map kernel), each with its backward.
 *
 * @module
 */

import { defineOp } from "../registry.ts";
import { sizeOf, Tensor, zeros } from "../tensor.ts";
import {
  broadcastShapes,
  broadcastStrides,
  contiguousStrides,
  launchMap,
  normAxis,
} from "./map_kernel.ts";
import { sumToShape } from "./reduce.ts";

function resolveShape(shape: readonly number[], size: number): number[] {
  const out = [...shape];
  const hole = out.indexOf(-1);
  if (hole >= 0) {
    const rest = sizeOf(out.filter((_, i) => i !== hole));
    out[hole] = rest === 0 ? 0 : size / rest;
  }
  if (sizeOf(out) !== size || !out.every(Number.isInteger)) {
    throw new Error(`reshape: cannot view ${size} elements as [${shape.join(", ")}]`);
  }
  return out;
}

const reshapeOp = defineOp<{ shape: number[] }>({
  name: "reshape",
  forward: ([x], { shape }) => ({ output: x!.shareAs(shape) }),
  backward: (dy, { inputs }) => [dy.shareAs(inputs[0]!.shape)],
});

/** A view of `x` with another shape (one dim may be -1); shares storage. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  return reshapeOp([x], { shape: resolveShape(shape, x.size) });
}

/** Copies `x` into a new contiguous tensor (internal helper of ops). */
export function copyTensor(x: Tensor, shape = x.shape): Tensor {
  const out = Tensor.empty(shape, x.dtype);
  const strides = contiguousStrides(shape);
  launchMap({
    op: "copy",
    shape,
    out: { tensor: out, strides },
    inputs: [{ tensor: x, strides }],
    expr: "a",
  });
  return out;
}

function permuteRaw(x: Tensor, perm: readonly number[]): Tensor {
  const shape = perm.map((p) => x.shape[p]!);
  const inStrides = contiguousStrides(x.shape);
  const out = Tensor.empty(shape, x.dtype);
  launchMap({
    op: "permute",
    shape,
    out: { tensor: out, strides: contiguousStrides(shape) },
    inputs: [{ tensor: x, strides: perm.map((p) => inStrides[p]!) }],
    expr: "a",
  });
  return out;
}

const permuteOp = defineOp<{ perm: number[] }>({
  name: "permute",
  forward: ([x], { perm }) => ({ output: permuteRaw(x!, perm) }),
  backward: (dy, { attrs }) => {
    const inverse = new Array<number>(attrs.perm.length);
    attrs.perm.forEach((p, i) => inverse[p] = i);
    return [permuteRaw(dy, inverse)];
  },
});

/** Reorders dimensions: output dim i is input dim `perm[i]` (copies). */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const sorted = [...perm].sort((a, b) => a - b);
  if (perm.length !== x.rank || sorted.some((p, i) => p !== i)) {
    throw new Error(`permute: [${perm}] is not a permutation of ${x.rank} dims`);
  }
  return permuteOp([x], { perm: [...perm] });
}

/** Swaps two dimensions (copies). */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  const a = normAxis("transpose", dim0, x.rank);
  const b = normAxis("transpose", dim1, x.rank);
  const perm = x.shape.map((_, i) => i);
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

function sliceRaw(x: Tensor, axis: number, start: number, end: number): Tensor {
  const shape = [...x.shape];
  shape[axis] = end - start;
  const strides = contiguousStrides(x.shape);
  const out = Tensor.empty(shape, x.dtype);
  launchMap({
    op: "slice",
    shape,
    out: { tensor: out, strides: contiguousStrides(shape) },
    inputs: [{ tensor: x, offset: start * strides[axis]!, strides }],
    expr: "a",
  });
  return out;
}

/** Writes `src` into the region of `dst` starting at `start` along `axis` (internal). */
function writeRegion(dst: Tensor, src: Tensor, axis: number, start: number, op: string): void {
  const strides = contiguousStrides(dst.shape);
  launchMap({
    op,
    shape: src.shape,
    out: { tensor: dst, offset: start * strides[axis]!, strides },
    inputs: [{ tensor: src, strides: contiguousStrides(src.shape) }],
    expr: "a",
  });
}

const sliceOp = defineOp<{ axis: number; start: number; end: number }>({
  name: "slice",
  forward: ([x], { axis, start, end }) => ({ output: sliceRaw(x!, axis, start, end) }),
  backward: (dy, { inputs, attrs }) => {
    const dx = zeros(inputs[0]!.shape, dy.dtype);
    writeRegion(dx, dy, attrs.axis, attrs.start, "slice-backward");
    return [dx];
  },
});

/** Elements `start ≤ i < end` along `axis` (negative values count from the end). */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  const a = normAxis("slice", axis, x.rank);
  const n = x.shape[a]!;
  const s = start < 0 ? start + n : start;
  const e = end === undefined ? n : end < 0 ? end + n : end;
  if (!(0 <= s && s <= e && e <= n)) {
    throw new Error(`slice: [${start}, ${end}) out of range for dim ${a} of size ${n}`);
  }
  return sliceOp([x], { axis: a, start: s, end: e });
}

const concatOp = defineOp<{ axis: number }>({
  name: "concat",
  forward: (xs, { axis }) => {
    const shape = [...xs[0]!.shape];
    shape[axis] = xs.reduce((acc, t) => acc + t.shape[axis]!, 0);
    const out = Tensor.empty(shape, xs[0]!.dtype);
    let at = 0;
    for (const t of xs) {
      writeRegion(out, t, axis, at, "concat");
      at += t.shape[axis]!;
    }
    return { output: out };
  },
  backward: (dy, { inputs, attrs }) => {
    let at = 0;
    return inputs.map((m) => {
      const len = m.shape[attrs.axis]!;
      const g = m.requiresGrad ? sliceRaw(dy, attrs.axis, at, at + len) : null;
      at += len;
      return g;
    });
  },
});

/** Joins tensors along `axis`; all other dims and the dtype must agree. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  const first = xs[0];
  if (!first) throw new Error("concat: no tensors");
  const a = normAxis("concat", axis, first.rank);
  for (const t of xs) {
    const ok = t.rank === first.rank && t.dtype === first.dtype &&
      t.shape.every((d, i) => i === a || d === first.shape[i]);
    if (!ok) throw new Error(`concat: ${t} does not match ${first} outside axis ${a}`);
  }
  return concatOp(xs, { axis: a });
}

const expandOp = defineOp<{ shape: number[] }>({
  name: "expand",
  forward: ([x], { shape }) => {
    const out = Tensor.empty(shape, x!.dtype);
    launchMap({
      op: "expand",
      shape,
      out: { tensor: out, strides: contiguousStrides(shape) },
      inputs: [{ tensor: x!, strides: broadcastStrides(x!.shape, shape) }],
      expr: "a",
    });
    return { output: out };
  },
  backward: (dy, { inputs }) => [sumToShape(dy, inputs[0]!.shape)],
});

/** Broadcasts `x` to `shape` (numpy rules) into a new tensor, e.g. GQA head repeat. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const out = broadcastShapes("expand", x.shape, shape);
  if (out.join() !== shape.join()) {
    throw new Error(`expand: [${x.shape}] cannot expand to [${shape}]`);
  }
  return expandOp([x], { shape: [...shape] });
}
