/**
 * Reductions over one axis (or the whole tensor): sum, mean, max, with
 * keepdim. Accumulation is in f32; one workgroup per output element.
 *
 * `max` backward sends the gradient to the maximal position(s): with ties it
 * is split evenly between them (as `torch.amax`).
 *
 * @module
 */

import { defineOp } from "../registry.ts";
import { defineKernel } from "../kernel.ts";
import { getRuntime, grid } from "../runtime.ts";
import { Tensor } from "../tensor.ts";
import { broadcastStrides, contiguousStrides, launchMap, normAxis } from "./map_kernel.ts";

/** Reduction kind. */
export type ReduceMode = "sum" | "mean" | "max";

const WG = 256;

interface ReduceSpec {
  mode: ReduceMode;
  inType: string;
  outType: string;
}

const REDUCE = defineKernel({
  name: "reduce",
  key: (s: ReduceSpec) => `${s.mode} ${s.inType} ${s.outType}`,
  uniforms: { outer: "u32", len: "u32", inner: "u32" },
  bindings: (s) => ({
    OUT: { type: `array<${s.outType}>`, access: "read_write" },
    X: { type: `array<${s.inType}>` },
  }),
  source: (s) => reduceSource(s),
});

function reduceSource({ mode, outType }: ReduceSpec): string {
  const init = mode === "max" ? "neg_inf()" : "0.0";
  const combine = (a: string, b: string) => mode === "max" ? `max(${a}, ${b})` : `${a} + ${b}`;
  const final = mode === "mean" ? "sh[0] / f32(len)" : "sh[0]";
  return `
var<workgroup> sh: array<f32, ${WG}>;
fn neg_inf() -> f32 { var bits = 0xff800000u; return bitcast<f32>(bits); }
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_id) l: vec3<u32>) {
  let outer = P.outer; let len = P.len; let inner = P.inner;
  let o = w.x + w.y * nw.x;
  if (o >= outer * inner) { return; }
  let base = (o / inner) * len * inner + o % inner;
  var acc = ${init};
  for (var k = l.x; k < len; k += ${WG}u) { acc = ${combine("acc", "f32(X[base + k * inner])")}; }
  sh[l.x] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (l.x < s) { sh[l.x] = ${combine("sh[l.x]", "sh[l.x + s]")}; }
    workgroupBarrier();
  }
  if (l.x == 0u) { OUT[o] = ${outType}(${final}); }
}`;
}

/** Splits a shape around `axis` into outer × len × inner. */
function split(shape: readonly number[], axis: number): [number, number, number] {
  let outer = 1, inner = 1;
  shape.forEach((d, i) => {
    if (i < axis) outer *= d;
    if (i > axis) inner *= d;
  });
  return [outer, shape[axis]!, inner];
}

/** Reduces without autograd (internal; `axis` null = all elements). */
export function reduceRaw(
  x: Tensor,
  mode: ReduceMode,
  axis: number | null,
  keepdim: boolean,
): Tensor {
  const [outer, len, inner] = axis === null ? [1, x.size, 1] : split(x.shape, axis);
  const shape = axis === null
    ? (keepdim ? x.shape.map(() => 1) : [])
    : keepdim
    ? x.shape.map((d, i) => i === axis ? 1 : d)
    : x.shape.filter((_, i) => i !== axis);
  if (len === 0 && mode !== "sum") throw new Error(`${mode}: cannot reduce an empty axis`);
  const out = Tensor.empty(shape, x.dtype === "f16" ? "f16" : "f32");
  getRuntime().launch(
    REDUCE,
    { mode, inType: x.dtype, outType: out.dtype },
    { OUT: out.buffer, X: x.buffer },
    { outer, len, inner },
    grid(outer * inner),
  );
  return out;
}

/** Broadcasts a keepdim-shaped gradient back over the input (internal). */
function spread(
  dy: Tensor,
  inShape: readonly number[],
  axis: number | null,
  scale: number,
): Tensor {
  const keepShape = axis === null
    ? inShape.map(() => 1)
    : inShape.map((d, i) => i === axis ? 1 : d);
  const dx = Tensor.empty(inShape, dy.dtype);
  launchMap({
    op: "reduce-backward",
    shape: inShape,
    out: { tensor: dx, strides: contiguousStrides(inShape) },
    inputs: [{ tensor: dy, strides: broadcastStrides(keepShape, inShape) }],
    expr: "a * s0",
    scalars: [scale],
  });
  return dx;
}

interface ReduceAttrs {
  axis: number | null;
  keepdim: boolean;
}

const sumOp = defineOp<ReduceAttrs>({
  name: "sum",
  forward: ([x], { axis, keepdim }) => ({ output: reduceRaw(x!, "sum", axis, keepdim) }),
  backward: (dy, { inputs, attrs }) => [spread(dy, inputs[0]!.shape, attrs.axis, 1)],
});

const meanOp = defineOp<ReduceAttrs>({
  name: "mean",
  forward: ([x], { axis, keepdim }) => ({ output: reduceRaw(x!, "mean", axis, keepdim) }),
  backward: (dy, { inputs, attrs }) => {
    const shape = inputs[0]!.shape;
    const len = attrs.axis === null ? shape.reduce((a, b) => a * b, 1) : shape[attrs.axis]!;
    return [spread(dy, shape, attrs.axis, 1 / len)];
  },
});

const MAX_BACKWARD = defineKernel({
  name: "max-backward",
  key: () => "",
  uniforms: { outer: "u32", len: "u32", inner: "u32" },
  bindings: () => ({
    DX: { type: "array<f32>", access: "read_write" },
    X: { type: "array<f32>" },
    M: { type: "array<f32>" },
    DY: { type: "array<f32>" },
  }),
  source: () => `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let outer = P.outer; let len = P.len; let inner = P.inner;
  let o = g.x + g.y * nw.x * 64u;
  if (o >= outer * inner) { return; }
  let base = (o / inner) * len * inner + o % inner;
  let m = M[o];
  var ties = 0.0;
  for (var k = 0u; k < len; k++) { if (X[base + k * inner] == m) { ties += 1.0; } }
  let share = DY[o] / ties;
  for (var k = 0u; k < len; k++) {
    let i = base + k * inner;
    DX[i] = select(0.0, share, X[i] == m);
  }
}`,
});

const maxOp = defineOp<ReduceAttrs>({
  name: "max",
  forward: ([x], { axis, keepdim }) => {
    if (x!.dtype !== "f32") throw new Error("max: only f32 is supported");
    const output = reduceRaw(x!, "max", axis, keepdim);
    return { output, saved: [x!, output] };
  },
  backward: (dy, { inputs, saved, attrs }) => {
    const shape = inputs[0]!.shape;
    const [outer, len, inner] = attrs.axis === null
      ? [1, shape.reduce((a, b) => a * b, 1), 1]
      : split(shape, attrs.axis);
    const dx = Tensor.empty(shape, "f32");
    getRuntime().launch(
      MAX_BACKWARD,
      undefined,
      { DX: dx.buffer, X: saved[0]!.buffer, M: saved[1]!.buffer, DY: dy.buffer },
      { outer, len, inner },
      grid(Math.ceil(outer * inner / 64)),
    );
    return [dx];
  },
});

function reducer(
  op: (inputs: readonly Tensor[], attrs: ReduceAttrs) => Tensor,
  name: string,
) {
  return (x: Tensor, axis?: number, keepdim = false): Tensor =>
    op([x], { axis: axis === undefined ? null : normAxis(name, axis, x.rank), keepdim });
}

/** Sum over `axis` (all elements when omitted); f32 accumulation. */
export const sum: (x: Tensor, axis?: number, keepdim?: boolean) => Tensor = reducer(sumOp, "sum");
/** Mean over `axis` (all elements when omitted). */
export const mean: (x: Tensor, axis?: number, keepdim?: boolean) => Tensor = reducer(
  meanOp,
  "mean",
);
/** Maximum over `axis` (all elements when omitted); gradient split among ties. */
export const max: (x: Tensor, axis?: number, keepdim?: boolean) => Tensor = reducer(maxOp, "max");

/**
 * Sums a broadcast gradient `g` down to `shape` (the inverse of numpy
 * broadcasting; no autograd). Returns `g` itself when shapes already match.
 */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.join() === shape.join()) return g;
  const lead = g.rank - shape.length;
  let cur = g;
  for (let axis = 0; axis < g.rank; axis++) {
    const target = axis < lead ? 1 : shape[axis - lead]!;
    if (target === 1 && g.shape[axis] !== 1) {
      const next = reduceRaw(cur, "sum", axis, true);
      if (cur !== g) cur.dispose();
      cur = next;
    }
  }
  const out = cur.shareAs(shape);
  if (cur !== g) cur.dispose();
  return out;
}
