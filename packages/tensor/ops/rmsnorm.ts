/**
 * Fused RMSNorm with HF Llama/Mistral semantics: in f32,
 * `y = weight * to_input_dtype(x * rsqrt(mean(x²) + eps))`. The forward saves
 * the per-row `rstd`; the backward gives dx and dweight (f32 only).
 *
 * @module
 */

import { defineOp } from "../registry.ts";
import { defineKernel } from "../kernel.ts";
import { getRuntime, grid } from "../runtime.ts";
import { Tensor } from "../tensor.ts";
import { ROW_WG, rowArgs, rowId, rowReduce, rowSubgroups } from "./row_reduce_wgsl.ts";

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

/** RMSNorm over the last axis (HF Llama/Mistral semantics, see module docs). */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  return rmsNormOp([x, weight], { eps });
}
