/**
 * Softmax and log-softmax over the last axis, numerically stable (max
 * subtracted), one workgroup per row, f32 math.
 *
 * @module
 */

import { defineOp } from "../registry.ts";
import { defineKernel } from "../kernel.ts";
import { getRuntime, grid } from "../runtime.ts";
import { Tensor } from "../tensor.ts";
import { ROW_WG, rowArgs, rowId, rowReduce, rowSubgroups } from "./row_reduce_wgsl.ts";

const FORWARD = defineKernel({
  name: "softmax",
  key: ({ log, t, subgroups }: { log: boolean; t: string; subgroups: boolean }) =>
    `${log ? "log" : "exp"} ${t} ${subgroups ? "subgroups" : "workgroup"}`,
  uniforms: { rows: "u32", D: "u32" },
  bindings: ({ t }) => ({
    Y: { type: `array<${t}>`, access: "read_write" },
    X: { type: `array<${t}>` },
  }),
  source: ({ log, t, subgroups }) => `
${rowReduce(subgroups)}
@compute @workgroup_size(${ROW_WG})
fn main(${rowArgs(subgroups)}) {
  let rows = P.rows; let D = P.D;
  ${rowId(subgroups)}
  if (row >= rows) { return; }
  let base = row * D;
  var m = neg_inf();
  for (var j = l.x; j < D; j += ${ROW_WG}u) { m = max(m, f32(X[base + j])); }
  m = wg_max(m, l.x);
  var s = 0.0;
  for (var j = l.x; j < D; j += ${ROW_WG}u) { s += exp(f32(X[base + j]) - m); }
  s = wg_sum(s, l.x);
  let lse = m + log(s);
  for (var j = l.x; j < D; j += ${ROW_WG}u) {
    let v = f32(X[base + j]);
    Y[base + j] = ${t}(${log ? "v - lse" : "exp(v - lse)"});
  }
}`,
});

const BACKWARD = defineKernel({
  name: "softmax-backward",
  key: ({ log, subgroups }: { log: boolean; subgroups: boolean }) =>
    `${log ? "log" : "exp"} ${subgroups ? "subgroups" : "workgroup"}`,
  uniforms: { rows: "u32", D: "u32" },
  bindings: () => ({
    DX: { type: "array<f32>", access: "read_write" },
    Y: { type: "array<f32>" },
    DY: { type: "array<f32>" },
  }),
  source: ({ log, subgroups }) => `
${rowReduce(subgroups)}
@compute @workgroup_size(${ROW_WG})
fn main(${rowArgs(subgroups)}) {
  let rows = P.rows; let D = P.D;
  ${rowId(subgroups)}
  if (row >= rows) { return; }
  let base = row * D;
  var s = 0.0;
  for (var j = l.x; j < D; j += ${ROW_WG}u) {
    s += ${log ? "DY[base + j]" : "DY[base + j] * Y[base + j]"};
  }
  s = wg_sum(s, l.x);
  for (var j = l.x; j < D; j += ${ROW_WG}u) {
    let y = Y[base + j]; let dy = DY[base + j];
    DX[base + j] = ${log ? "dy - exp(y) * s" : "y * (dy - s)"};
  }
}`,
});

function define(log: boolean) {
  const name = log ? "log_softmax" : "softmax";
  return defineOp<Record<string, never>>({
    name,
    forward: ([x]) => {
      if (x!.dtype !== "f32" && x!.dtype !== "f16") {
        throw new Error(`${name}: needs f32/f16, got ${x}`);
      }
      const D = x!.shape[x!.rank - 1] ?? 1, rows = x!.size / D;
      const y = Tensor.empty(x!.shape, x!.dtype);
      getRuntime().launch(
        FORWARD,
        { log, t: x!.dtype, subgroups: rowSubgroups() },
        { Y: y.buffer, X: x!.buffer },
        { rows, D },
        grid(rows),
      );
      return { output: y, saved: [y] };
    },
    backward: (dy, { saved }) => {
      const y = saved[0]!;
      if (y.dtype !== "f32") throw new Error(`${name} backward: only f32 is supported`);
      const D = y.shape[y.rank - 1] ?? 1, rows = y.size / D;
      const dx = Tensor.empty(y.shape, "f32");
      getRuntime().launch(
        BACKWARD,
        { log, subgroups: rowSubgroups() },
        { DX: dx.buffer, Y: y.buffer, DY: dy.buffer },
        { rows, D },
        grid(rows),
      );
      return [dx];
    },
  });
}

const softmaxOp = define(false);
const logSoftmaxOp = define(true);

/** Softmax over the last axis. */
export function softmax(x: Tensor): Tensor {
  return softmaxOp([x], {});
}

/** Log-softmax over the last axis. */
export function logSoftmax(x: Tensor): Tensor {
  return logSoftmaxOp([x], {});
}
