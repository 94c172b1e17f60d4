/**
 * Fused RMSNorm with HF Llama/Mistral semantics: in f32,
 * `y = weight * to_input_dtype(x * rsqrt(mean(x²) + eps))`. The forward saves
 * the per-row `rstd`; the backward gives dx and dweight (f32 only).
 *
 * {@link addRmsNorm} fuses the residual add before it (the pre-norm decoder's
 * `h = h + attn; x = norm(h)`): one kernel writes the sum and its norm, and
 * one backward kernel adds the sum's own gradient into dx.
 *
 * @module
 */

import { defineMultiOutputOp, defineOp } from "../registry.ts";
import { defineKernel } from "../kernel.ts";
import { getRuntime, grid } from "../runtime.ts";
import { Tensor } from "../tensor.ts";
import {
  ROW_ARGS,
  ROW_ID,
  ROW_REDUCE,
  ROW_WG,
  rowArgs,
  rowId,
  rowReduce,
  rowSubgroups,
} from "./row_reduce_wgsl.ts";

const FORWARD = defineKernel({
  name: "rms_norm",
  key: ({ t, wt, subgroups }: { t: string; wt: string; subgroups: boolean }) =>
    `${t} ${wt} ${subgroups ? "subgroups" : "workgroup"}`,
  uniforms: { rows: "u32", D: "u32", eps: "f32" },
  bindings: ({ t, wt }) => ({
    Y: { type: `array<${t}>`, access: "read_write" },
    RSTD: { type: "array<f32>", access: "read_write" },
    X: { type: `array<${t}>` },
    W: { type: `array<${wt}>` },
  }),
  source: ({ t, subgroups }) => `
${rowReduce(subgroups)}
@compute @workgroup_size(${ROW_WG})
fn main(${rowArgs(subgroups)}) {
  let rows = P.rows; let D = P.D; let eps = P.eps;
  ${rowId(subgroups)}
  if (row >= rows) { return; }
  let base = row * D;
  var s = 0.0;
  for (var j = l.x; j < D; j += ${ROW_WG}u) { let v = f32(X[base + j]); s += v * v; }
  s = wg_sum(s, l.x);
  let r = inverseSqrt(s / f32(D) + eps);
  if (l.x == 0u) { RSTD[row] = r; }
  for (var j = l.x; j < D; j += ${ROW_WG}u) {
    Y[base + j] = ${t}(f32(W[j]) * f32(${t}(f32(X[base + j]) * r)));
  }
}`,
});

const BACKWARD_X = defineKernel({
  name: "rms_norm-backward-x",
  key: ({ subgroups }: { subgroups: boolean }) => (subgroups ? "subgroups" : "workgroup"),
  uniforms: { rows: "u32", D: "u32" },
  bindings: () => ({
    DX: { type: "array<f32>", access: "read_write" },
    X: { type: "array<f32>" },
    W: { type: "array<f32>" },
    RSTD: { type: "array<f32>" },
    DY: { type: "array<f32>" },
  }),
  source: ({ subgroups }) => `
${rowReduce(subgroups)}
@compute @workgroup_size(${ROW_WG})
fn main(${rowArgs(subgroups)}) {
  let rows = P.rows; let D = P.D;
  ${rowId(subgroups)}
  if (row >= rows) { return; }
  let base = row * D;
  let r = RSTD[row];
  var s = 0.0;
  for (var j = l.x; j < D; j += ${ROW_WG}u) { s += W[j] * DY[base + j] * X[base + j]; }
  s = wg_sum(s, l.x);
  let c = r * r * r * s / f32(D);
  for (var j = l.x; j < D; j += ${ROW_WG}u) {
    DX[base + j] = r * W[j] * DY[base + j] - X[base + j] * c;
  }
}`,
});

// One thread per column, rows summed in order (deterministic).
const BACKWARD_W = defineKernel({
  name: "rms_norm-backward-w",
  key: () => "",
  uniforms: { rows: "u32", D: "u32" },
  bindings: () => ({
    DW: { type: "array<f32>", access: "read_write" },
    X: { type: "array<f32>" },
    RSTD: { type: "array<f32>" },
    DY: { type: "array<f32>" },
  }),
  source: () => `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let rows = P.rows; let D = P.D;
  let j = g.x;
  if (j >= D) { return; }
  var s = 0.0;
  for (var i = 0u; i < rows; i++) { s += DY[i * D + j] * X[i * D + j] * RSTD[i]; }
  DW[j] = s;
}`,
});

const rmsNormOp = defineOp<{ eps: number }>({
  name: "rms_norm",
  forward: ([x, w], { eps }) => {
    const D = x!.shape[x!.rank - 1]!, rows = x!.size / D;
    if (w!.rank !== 1 || w!.shape[0] !== D) {
      throw new Error(`rmsNorm: weight ${w} does not match ${x}`);
    }
    const y = Tensor.empty(x!.shape, x!.dtype);
    const rstd = Tensor.empty([rows], "f32");
    getRuntime().launch(
      FORWARD,
      { t: x!.dtype, wt: w!.dtype, subgroups: rowSubgroups() },
      { Y: y.buffer, RSTD: rstd.buffer, X: x!.buffer, W: w!.buffer },
      { rows, D, eps },
      grid(rows),
    );
    return { output: y, saved: [x!, w!, rstd] };
  },
  backward: (dy, { saved, inputs }) => {
    const [x, w, rstd] = saved as [Tensor, Tensor, Tensor];
    if (x.dtype !== "f32" || w.dtype !== "f32") {
      throw new Error("rmsNorm backward: only f32 is supported");
    }
    const D = x.shape[x.rank - 1]!, rows = x.size / D;
    const rt = getRuntime();
    let dx: Tensor | null = null, dw: Tensor | null = null;
    if (inputs[0]!.requiresGrad) {
      dx = Tensor.empty(x.shape, "f32");
      rt.launch(
        BACKWARD_X,
        { subgroups: rowSubgroups() },
        {
          DX: dx.buffer,
          X: x.buffer,
          W: w.buffer,
          RSTD: rstd.buffer,
          DY: dy.buffer,
        },
        { rows, D },
        grid(rows),
      );
    }
    if (inputs[1]!.requiresGrad) {
      dw = Tensor.empty([D], "f32");
      rt.launch(
        BACKWARD_W,
        undefined,
        { DW: dw.buffer, X: x.buffer, RSTD: rstd.buffer, DY: dy.buffer },
        { rows, D },
        [Math.ceil(D / 64)],
      );
    }
    return [dx, dw];
  },
});

const ADD_FORWARD = defineKernel({
  name: "add_rms_norm",
  key: ({ wt }: { wt: string }) => wt,
  uniforms: { rows: "u32", D: "u32", eps: "f32" },
  bindings: ({ wt }) => ({
    S: { type: "array<f32>", access: "read_write" },
    Y: { type: "array<f32>", access: "read_write" },
    RSTD: { type: "array<f32>", access: "read_write" },
    A: { type: "array<f32>" },
    B: { type: "array<f32>" },
    W: { type: `array<${wt}>` },
  }),
  source: () => `
${ROW_REDUCE}
@compute @workgroup_size(${ROW_WG})
fn main(${ROW_ARGS}) {
  let rows = P.rows; let D = P.D; let eps = P.eps;
  ${ROW_ID}
  if (row >= rows) { return; }
  let base = row * D;
  var s = 0.0;
  for (var j = l.x; j < D; j += ${ROW_WG}u) {
    let v = A[base + j] + B[base + j];
    S[base + j] = v;
    s += v * v;
  }
  s = wg_sum(s, l.x);
  let r = inverseSqrt(s / f32(D) + eps);
  if (l.x == 0u) { RSTD[row] = r; }
  // Each thread re-reads only the sums it wrote itself: no barrier needed.
  for (var j = l.x; j < D; j += ${ROW_WG}u) { Y[base + j] = f32(W[j]) * (S[base + j] * r); }
}`,
});

const ADD_BACKWARD_X = defineKernel({
  name: "add_rms_norm-backward-x",
  key: ({ wt, residual }: { wt: string; residual: boolean }) => `${wt} ${residual}`,
  uniforms: { rows: "u32", D: "u32" },
  bindings: ({ wt, residual }) => ({
    DX: { type: "array<f32>", access: "read_write" },
    X: { type: "array<f32>" },
    W: { type: `array<${wt}>` },
    RSTD: { type: "array<f32>" },
    DY: { type: "array<f32>" },
    DS: residual ? { type: "array<f32>" } : undefined,
  }),
  source: ({ residual }) => `
${ROW_REDUCE}
@compute @workgroup_size(${ROW_WG})
fn main(${ROW_ARGS}) {
  let rows = P.rows; let D = P.D;
  ${ROW_ID}
  if (row >= rows) { return; }
  let base = row * D;
  let r = RSTD[row];
  var s = 0.0;
  for (var j = l.x; j < D; j += ${ROW_WG}u) { s += f32(W[j]) * DY[base + j] * X[base + j]; }
  s = wg_sum(s, l.x);
  let c = r * r * r * s / f32(D);
  for (var j = l.x; j < D; j += ${ROW_WG}u) {
    DX[base + j] = r * f32(W[j]) * DY[base + j] - X[base + j] * c${
    residual ? " + DS[base + j]" : ""
  };
  }
}`,
});

// The norm is the main output and the sum the extra one: the final norm of a
// decoder uses only the norm, and its backward then skips the sum's gradient.
const addRmsNormOp = defineMultiOutputOp<{ eps: number }>({
  name: "add_rms_norm",
  forward: ([a, b, w], { eps }) => {
    const D = a!.shape[a!.rank - 1]!, rows = a!.size / D;
    const sum = Tensor.empty(a!.shape, "f32");
    const y = Tensor.empty(a!.shape, "f32");
    const rstd = Tensor.empty([rows], "f32");
    getRuntime().launch(
      ADD_FORWARD,
      { wt: w!.dtype },
      { S: sum.buffer, Y: y.buffer, RSTD: rstd.buffer, A: a!.buffer, B: b!.buffer, W: w!.buffer },
      { rows, D, eps },
      grid(rows),
    );
    return { output: y, extraOutputs: [sum], saved: [sum, w!, rstd] };
  },
  // `dy` is zeros when only the sum got a gradient; `dSum` null when only the norm did.
  backward: (dy, { saved, inputs }, [dSum]) => {
    const [x, w, rstd] = saved as [Tensor, Tensor, Tensor];
    const D = x.shape[x.rank - 1]!, rows = x.size / D;
    const rt = getRuntime();
    if (dy.dtype !== "f32" || (dSum && dSum.dtype !== "f32")) {
      throw new Error("addRmsNorm backward: only f32 gradients are supported");
    }
    const residual = dSum !== null && dSum !== undefined;
    const dx = Tensor.empty(x.shape, "f32");
    rt.launch(
      ADD_BACKWARD_X,
      { wt: w.dtype, residual },
      {
        DX: dx.buffer,
        X: x.buffer,
        W: w.buffer,
        RSTD: rstd.buffer,
        DY: dy.buffer,
        ...(residual ? { DS: dSum.buffer } : {}),
      },
      { rows, D },
      grid(rows),
    );
    let dw: Tensor | null = null;
    if (inputs[2]!.requiresGrad) {
      dw = Tensor.empty([D], "f32");
      rt.launch(
        BACKWARD_W,
        undefined,
        { DW: dw.buffer, X: x.buffer, RSTD: rstd.buffer, DY: dy.buffer },
        { rows, D },
        [Math.ceil(D / 64)],
      );
    }
    // Both addends get the same gradient; the tape takes its own reference to the second.
    return [
      inputs[0]!.requiresGrad ? dx : null,
      inputs[1]!.requiresGrad ? dx.shareAs(dx.shape, true) : null,
      dw,
    ];
  },
});

/**
 * The residual add and RMSNorm of a pre-norm block in one kernel: returns
 * `[a + b, rmsNorm(a + b, weight)]` (f32 residual stream; the weight may be
 * f16). Same values as `add` then {@link rmsNorm}. When only the norm is
 * used downstream (a decoder's final norm), its backward reads no gradient
 * of the sum.
 *
 * @example
 * ```ts
 * import { addRmsNorm, Tensor } from "@irforge/tensor";
 * const h = Tensor.fromArray([1, 2, 3, 4], [1, 4]);
 * const delta = Tensor.fromArray([0.5, 0.5, 0.5, 0.5], [1, 4]);
 * const [sum, normed] = addRmsNorm(h, delta, Tensor.fromArray([1, 1, 1, 1], [4]));
 * ```
 */
export function addRmsNorm(a: Tensor, b: Tensor, weight: Tensor, eps = 1e-6): [Tensor, Tensor] {
  if (a.shape.join() !== b.shape.join() || a.dtype !== "f32" || b.dtype !== "f32") {
    throw new Error(`addRmsNorm: ${a} and ${b} must be f32 of the same shape`);
  }
  const D = a.shape[a.rank - 1]!;
  if (weight.rank !== 1 || weight.shape[0] !== D) {
    throw new Error(`addRmsNorm: weight ${weight} does not match ${a}`);
  }
  const [y, sum] = addRmsNormOp([a, b, weight], { eps });
  return [sum!, y!];
}

/** RMSNorm over the last axis (HF Llama/Mistral semantics, see module docs). */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  return rmsNormOp([x, weight], { eps });
}
