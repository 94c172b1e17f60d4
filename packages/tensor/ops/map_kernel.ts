/**
 * The generic strided element-map kernel behind elementwise ops, broadcasting,
 * casts, permute, slice and concat: it walks an iteration shape (rank ≤ 6),
 * reads up to 3 inputs and writes one output, each at `offset + Σ idx·stride`.
 *
 * @module
 */

import type { DType } from "../dtype.ts";
import { defineKernel, type UniformType } from "../kernel.ts";
import { getRuntime, grid } from "../runtime.ts";
import type { Tensor } from "../tensor.ts";
import { currentOpLabel } from "../op_label.ts";

/** Highest rank the map kernel iterates over. */
export const MAX_RANK = 6;

/** How a tensor is walked: element offset and per-dimension strides. */
export interface StridedView {
  /** The tensor read or written. */
  tensor: Tensor;
  /** Element offset of index 0. */
  offset?: number;
  /** Element strides per iteration dimension (0 = broadcast). */
  strides: readonly number[];
}

/** Normalises a possibly negative axis; throws naming the op when out of range. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new Error(`${op}: axis ${axis} out of range for rank ${rank}`);
  }
  return a;
}

/** Row-major strides of a contiguous shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** Numpy broadcast of two shapes; throws naming the op on mismatch. */
export function broadcastShapes(op: string, ...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const v = s[s.length - rank + i] ?? 1;
      if (v === 1) continue;
      if (d !== 1 && d !== v) {
        throw new Error(
          `${op}: shapes ${shapes.map((s) => `[${s.join(", ")}]`).join(" and ")} do not broadcast`,
        );
      }
      d = v;
    }
    out.push(d);
  }
  return out;
}

/** Strides reading `shape` broadcast to `outShape` (0 where broadcast). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const own = contiguousStrides(shape);
  const lead = outShape.length - shape.length;
  return outShape.map((d, i) => {
    if (i < lead) return 0;
    const v = shape[i - lead]!;
    return v === 1 && d !== 1 ? 0 : own[i - lead]!;
  });
}

/** Options of one map launch. */
export interface MapLaunch {
  /** Op name (errors, timing). */
  op: string;
  /** Iteration shape. */
  shape: readonly number[];
  /** Output view. */
  out: StridedView;
  /** Input views (≤ 3), named `a`, `b`, `c` in `expr`. */
  inputs: StridedView[];
  /**
   * WGSL expression of the output value. Float inputs are loaded as f32,
   * integer inputs as their own type; scalars are `s0..s3` (f32).
   */
  expr: string;
  /** Up to 4 f32 scalars. */
  scalars?: number[];
}

const NAMES = ["a", "b", "c"];

/** Scalar helper functions every map expression may call. */
export const MAP_HELPERS = `
fn sigmoid_(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
fn tanh_(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }
fn erf_(x: f32) -> f32 {
  // Abramowitz & Stegun 7.1.26, |error| < 1.5e-7 (WGSL has no erf).
  let t = 1.0 / (1.0 + 0.3275911 * abs(x));
  let y = 1.0 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t
    + 0.254829592) * t * exp(-x * x);
  return select(-y, y, x >= 0.0);
}
fn gelu_tanh(x: f32) -> f32 {
  return 0.5 * x * (1.0 + tanh_(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
fn gelu_tanh_grad(x: f32) -> f32 {
  let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  let t = tanh_(u);
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 0.134145 * x * x);
}
fn gelu_erf(x: f32) -> f32 { return 0.5 * x * (1.0 + erf_(x * 0.7071067811865476)); }
fn gelu_erf_grad(x: f32) -> f32 {
  return 0.5 * (1.0 + erf_(x * 0.7071067811865476)) + x * 0.3989422804014327 * exp(-0.5 * x * x);
}
fn pow_s(x: f32, p: f32) -> f32 {
  if (p == 0.0) { return 1.0; }
  if (p == round(p)) {
    let r = pow(abs(x), p);
    let odd = abs(p % 2.0) == 1.0;
    return select(r, -r, x < 0.0 && odd);
  }
  return pow(x, p);
}
`;

// Uniforms by name: the iteration shape, then offset and strides of the
// output and of each of the three possible inputs, then the scalars.
const MAP_UNIFORMS: Record<string, UniformType> = { total: "u32" };
for (let d = 0; d < MAX_RANK; d++) MAP_UNIFORMS[`dim${d}`] = "u32";
for (const view of ["out", "in0", "in1", "in2"]) {
  MAP_UNIFORMS[`${view}_offset`] = "u32";
  for (let d = 0; d < MAX_RANK; d++) MAP_UNIFORMS[`${view}_stride${d}`] = "u32";
}
for (let k = 0; k < 4; k++) MAP_UNIFORMS[`s${k}`] = "f32";

interface MapSpec {
  outType: DType;
  inTypes: DType[];
  expr: string;
}

const MAP = defineKernel({
  name: "map",
  key: (s: MapSpec) => `${s.outType}(${s.inTypes.join(",")}) ${s.expr}`,
  uniforms: MAP_UNIFORMS,
  bindings: (s) => {
    const b: Record<string, { type: string; access?: "read_write" }> = {
      OUT: { type: `array<${s.outType}>`, access: "read_write" },
    };
    s.inTypes.forEach((t, k) => (b[`IN${k}`] = { type: `array<${t}>` }));
    return b;
  },
  source: (s) => mapSource(s),
});

function mapSource({ outType, inTypes, expr }: MapSpec): string {
  const loads = inTypes.map((t, k) => {
    const raw = `IN${k}[o${k}]`;
    return `  let ${NAMES[k]} = ${t === "f32" || t === "f16" ? `f32(${raw})` : raw};`;
  }).join("\n");
  const offs = inTypes.map((_, k) => `  var o${k} = P.in${k}_offset;`).join("\n");
  // Innermost dimension first; dimensions the launch padded to rank 6 have size 1.
  const steps: string[] = [];
  for (let d = MAX_RANK - 1; d >= 0; d--) {
    steps.push(`  { let idx = rem % P.dim${d}; rem = rem / P.dim${d};
    oo += idx * P.out_stride${d};${
      inTypes.map((_, k) => ` o${k} += idx * P.in${k}_stride${d};`).join("")
    } }`);
  }
  return `
${MAP_HELPERS}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = g.x + g.y * nw.x * 256u;
  if (i >= P.total) { return; }
  let s0 = P.s0; let s1 = P.s1; let s2 = P.s2; let s3 = P.s3;
  var rem = i;
  var oo = P.out_offset;
${offs}
${steps.join("\n")}
${loads}
  OUT[oo] = ${outType}(${expr});
}`;
}

/** Runs the map kernel (no autograd; ops build on it). */
export function launchMap(m: MapLaunch): void {
  const rank = m.shape.length;
  if (rank > MAX_RANK) throw new Error(`${m.op}: rank ${rank} > ${MAX_RANK} is not supported`);
  if (m.inputs.length > 3) throw new Error(`${m.op}: the map kernel reads at most 3 inputs`);
  let total = 1;
  for (const d of m.shape) total *= d;
  if (total === 0) return;
  const pad = MAX_RANK - rank;
  const uniforms: Record<string, number> = { total };
  for (let d = 0; d < MAX_RANK; d++) uniforms[`dim${d}`] = d < pad ? 1 : m.shape[d - pad]!;
  const views: [string, StridedView | undefined][] = [
    ["out", m.out],
    ["in0", m.inputs[0]],
    ["in1", m.inputs[1]],
    ["in2", m.inputs[2]],
  ];
  for (const [name, v] of views) {
    uniforms[`${name}_offset`] = v?.offset ?? 0;
    for (let d = 0; d < MAX_RANK; d++) {
      uniforms[`${name}_stride${d}`] = v && d >= pad ? v.strides[d - pad]! : 0;
    }
  }
  const sc = m.scalars ?? [];
  for (let k = 0; k < 4; k++) uniforms[`s${k}`] = sc[k] ?? 0;
  const buffers: Record<string, GPUBuffer> = { OUT: m.out.tensor.buffer };
  m.inputs.forEach((v, k) => (buffers[`IN${k}`] = v.tensor.buffer));
  getRuntime().launch(
    MAP,
    { outType: m.out.tensor.dtype, inTypes: m.inputs.map((v) => v.tensor.dtype), expr: m.expr },
    buffers,
    uniforms,
    grid(Math.ceil(total / 256)),
    currentOpLabel() ?? m.op,
  );
}
