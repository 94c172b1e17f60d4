/**
 * Fused RMSNorm with HF Llama/Mistral semantics: in f32,
 * `y = weight * to_input_dtype(x * rsqrt(mean(x²) + eps))`. The forward saves
 * the per-row `rstd`; the backward gives dx and dweight (f32 only).
 *
 * @module
 */

import { defineOp } from "../registry.ts";
import { getRuntime, grid, Params } from "../runtime.ts";
import { Tensor } from "../tensor.ts";
import { enables, paramsBlock } from "../wgsl.ts";
import { ROW_ARGS, ROW_ID, ROW_REDUCE, ROW_WG } from "./row_reduce_wgsl.ts";

function forwardCode(t: string, wt: string): string {
  return `${enables(t, wt)}${paramsBlock(4)}
@group(0) @binding(0) var<storage, read_write> Y: array<${t}>;
@group(0) @binding(1) var<storage, read_write> RSTD: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<${t}>;
@group(0) @binding(3) var<storage, read> W: array<${wt}>;
${ROW_REDUCE}
@compute @workgroup_size(${ROW_WG})
fn main(${ROW_ARGS}) {
  let rows = pu(0u); let D = pu(1u); let eps = pf(2u);
  ${ROW_ID}
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
}`;
}

const BACKWARD_X = `${paramsBlock(5)}
@group(0) @binding(0) var<storage, read_write> DX: array<f32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> W: array<f32>;
@group(0) @binding(3) var<storage, read> RSTD: array<f32>;
@group(0) @binding(4) var<storage, read> DY: array<f32>;
${ROW_REDUCE}
@compute @workgroup_size(${ROW_WG})
fn main(${ROW_ARGS}) {
  let rows = pu(0u); let D = pu(1u);
  ${ROW_ID}
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
}`;

// One thread per column, rows summed in order (deterministic).
const BACKWARD_W = `${paramsBlock(4)}
@group(0) @binding(0) var<storage, read_write> DW: array<f32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> RSTD: array<f32>;
@group(0) @binding(3) var<storage, read> DY: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let rows = pu(0u); let D = pu(1u);
  let j = g.x;
  if (j >= D) { return; }
  var s = 0.0;
  for (var i = 0u; i < rows; i++) { s += DY[i * D + j] * X[i * D + j] * RSTD[i]; }
  DW[j] = s;
}`;

const rmsNormOp = defineOp<{ eps: number }>({
  name: "rms_norm",
  forward: ([x, w], { eps }) => {
    const D = x!.shape[x!.rank - 1]!, rows = x!.size / D;
    if (w!.rank !== 1 || w!.shape[0] !== D) {
      throw new Error(`rmsNorm: weight ${w} does not match ${x}`);
    }
    const y = Tensor.empty(x!.shape, x!.dtype);
    const rstd = Tensor.empty([rows], "f32");
    getRuntime().dispatch({
      op: "rms_norm",
      code: forwardCode(x!.dtype, w!.dtype),
      buffers: [y.buffer, rstd.buffer, x!.buffer, w!.buffer],
      params: new Params().u32(rows, D).f32(eps).buffer,
      workgroups: grid(rows),
    });
    return { output: y, saved: [x!, w!, rstd] };
  },
  backward: (dy, { saved, inputs }) => {
    const [x, w, rstd] = saved as [Tensor, Tensor, Tensor];
    if (x.dtype !== "f32" || w.dtype !== "f32") {
      throw new Error("rmsNorm backward: only f32 is supported");
    }
    const D = x.shape[x.rank - 1]!, rows = x.size / D;
    const rt = getRuntime();
    const params = new Params().u32(rows, D).buffer;
    let dx: Tensor | null = null, dw: Tensor | null = null;
    if (inputs[0]!.requiresGrad) {
      dx = Tensor.empty(x.shape, "f32");
      rt.dispatch({
        op: "rms_norm-backward-x",
        code: BACKWARD_X,
        buffers: [dx.buffer, x.buffer, w.buffer, rstd.buffer, dy.buffer],
        params,
        workgroups: grid(rows),
      });
    }
    if (inputs[1]!.requiresGrad) {
      dw = Tensor.empty([D], "f32");
      rt.dispatch({
        op: "rms_norm-backward-w",
        code: BACKWARD_W,
        buffers: [dw.buffer, x.buffer, rstd.buffer, dy.buffer],
        params,
        workgroups: [Math.ceil(D / 64)],
      });
    }
    return [dx, dw];
  },
});

/** RMSNorm over the last axis (HF Llama/Mistral semantics, see module docs). */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  return rmsNormOp([x, weight], { eps });
}
