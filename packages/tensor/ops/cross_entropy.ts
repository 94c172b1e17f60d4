/**
 * Fused cross-entropy over a vocabulary: logits `[N, V]`, i32 targets `[N]`,
 * ignore index −100 (default).
 *
 * Forward: one workgroup per row computes max, log-sum-exp and the row loss
 * (the softmax is never stored); a second kernel reduces the rows in order
 * (deterministic). Backward: one kernel writes `(softmax − onehot)·scale`.
 *
 * Choices: when every row is ignored the mean loss is 0 with zero gradient
 * (HF/PyTorch give NaN). A target outside `[0, V)` that is not the ignore
 * index makes that row's loss NaN (the GPU cannot throw; NaN is loud).
 *
 * @module
 */

import { defineOp } from "../registry.ts";
import { defineKernel } from "../kernel.ts";
import { getRuntime, grid } from "../runtime.ts";
import { Tensor } from "../tensor.ts";
import {
  ROW_ARGS,
  ROW_ID,
  ROW_WG,
  rowArgs,
  rowId,
  rowReduce,
  rowSubgroups,
  subgroupArgs,
  subgroupInit,
} from "./row_reduce_wgsl.ts";

/** How row losses are combined. */
export type Reduction = "mean" | "sum" | "none";

const ROWS = defineKernel({
  name: "cross_entropy",
  key: ({ t, subgroups }: { t: string; subgroups: boolean }) =>
    `${t} ${subgroups ? "subgroups" : "workgroup"}`,
  uniforms: { rows: "u32", V: "u32", ignore: "i32" },
  bindings: ({ t }) => ({
    LOSS: { type: "array<f32>", access: "read_write" },
    LSE: { type: "array<f32>", access: "read_write" },
    X: { type: `array<${t}>` },
    TARGET: { type: "array<i32>" },
  }),
  source: ({ subgroups }) => `
${rowReduce(subgroups)}
@compute @workgroup_size(${ROW_WG})
fn main(${rowArgs(subgroups)}) {
  let rows = P.rows; let V = P.V; let ignore = P.ignore;
  ${rowId(subgroups)}
  if (row >= rows) { return; }
  let base = row * V;
  var m = neg_inf();
  for (var j = l.x; j < V; j += ${ROW_WG}u) { m = max(m, f32(X[base + j])); }
  m = wg_max(m, l.x);
  var s = 0.0;
  for (var j = l.x; j < V; j += ${ROW_WG}u) { s += exp(f32(X[base + j]) - m); }
  s = wg_sum(s, l.x);
  if (l.x == 0u) {
    let lse = m + log(s);
    LSE[row] = lse;
    let t = TARGET[row];
    if (t == ignore) { LOSS[row] = 0.0; }
    else if (t < 0 || u32(t) >= V) { LOSS[row] = nan_f32(); }
    else { LOSS[row] = lse - f32(X[base + u32(t)]); }
  }
}`,
});

const TOTAL = defineKernel({
  name: "cross_entropy-reduce",
  key: ({ subgroups }: { subgroups: boolean }) => (subgroups ? "subgroups" : "workgroup"),
  uniforms: { rows: "u32", ignore: "i32", mean: "u32" },
  bindings: () => ({
    OUT: { type: "array<f32>", access: "read_write" },
    COUNT: { type: "array<f32>", access: "read_write" },
    LOSS: { type: "array<f32>" },
    TARGET: { type: "array<i32>" },
  }),
  source: ({ subgroups }) => `
${rowReduce(subgroups)}
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(local_invocation_id) l: vec3<u32>${subgroupArgs(subgroups)}) {
  ${subgroupInit(subgroups)}
  let rows = P.rows; let ignore = P.ignore; let mean = P.mean;
  var s = 0.0; var c = 0.0;
  for (var i = l.x; i < rows; i += ${ROW_WG}u) {
    s += LOSS[i];
    if (TARGET[i] != ignore) { c += 1.0; }
  }
  s = wg_sum(s, l.x);
  c = wg_sum(c, l.x);
  if (l.x == 0u) {
    COUNT[0] = c;
    if (mean == 0u) { OUT[0] = s; } else if (c > 0.0) { OUT[0] = s / c; } else { OUT[0] = 0.0; }
  }
}`,
});

const BACKWARD = defineKernel({
  name: "cross_entropy-backward",
  key: ({ t }: { t: string }) => t,
  uniforms: { rows: "u32", V: "u32", ignore: "i32", mode: "u32" },
  bindings: ({ t }) => ({
    DX: { type: "array<f32>", access: "read_write" },
    X: { type: `array<${t}>` },
    TARGET: { type: "array<i32>" },
    LSE: { type: "array<f32>" },
    DY: { type: "array<f32>" },
    COUNT: { type: "array<f32>" },
  }),
  source: () => `
@compute @workgroup_size(${ROW_WG})
fn main(${ROW_ARGS}) {
  let rows = P.rows; let V = P.V; let ignore = P.ignore; let mode = P.mode;
  ${ROW_ID}
  if (row >= rows) { return; }
  let t = TARGET[row];
  var g = 0.0;
  if (mode == 2u) { g = DY[row]; }                       // none: per-row upstream
  else if (mode == 1u) { g = DY[0]; }                    // sum
  else if (COUNT[0] > 0.0) { g = DY[0] / COUNT[0]; }     // mean
  if (t == ignore || t < 0 || u32(t) >= V) { g = 0.0; }
  let lse = LSE[row];
  let base = row * V;
  for (var j = l.x; j < V; j += ${ROW_WG}u) {
    let p = exp(f32(X[base + j]) - lse);
    DX[base + j] = g * (p - select(0.0, 1.0, i32(j) == t));
  }
}`,
});

const MODES: Record<Reduction, number> = { mean: 0, sum: 1, none: 2 };

const crossEntropyOp = defineOp<{ reduction: Reduction; ignoreIndex: number }>({
  name: "cross_entropy",
  forward: ([logits, targets], { reduction, ignoreIndex }) => {
    const [N, V] = logits!.shape as [number, number];
    const rt = getRuntime();
    const rowLoss = Tensor.empty([N], "f32");
    const lse = Tensor.empty([N], "f32");
    rt.launch(
      ROWS,
      { t: logits!.dtype, subgroups: rowSubgroups() },
      { LOSS: rowLoss.buffer, LSE: lse.buffer, X: logits!.buffer, TARGET: targets!.buffer },
      { rows: N, V, ignore: ignoreIndex },
      grid(N),
    );
    const count = Tensor.empty([1], "f32");
    let output = rowLoss;
    if (reduction !== "none") {
      output = Tensor.empty([], "f32");
      rt.launch(
        TOTAL,
        { subgroups: rowSubgroups() },
        { OUT: output.buffer, COUNT: count.buffer, LOSS: rowLoss.buffer, TARGET: targets!.buffer },
        { rows: N, ignore: ignoreIndex, mean: reduction === "mean" ? 1 : 0 },
        [1],
      );
    }
    return { output, saved: [logits!, targets!, lse, count] };
  },
  backward: (dy, { saved, attrs }) => {
    const [logits, targets, lse, count] = saved as [Tensor, Tensor, Tensor, Tensor];
    const [N, V] = logits.shape as [number, number];
    const dx = Tensor.empty([N, V], "f32");
    getRuntime().launch(
      BACKWARD,
      { t: logits.dtype },
      {
        DX: dx.buffer,
        X: logits.buffer,
        TARGET: targets.buffer,
        LSE: lse.buffer,
        DY: dy.buffer,
        COUNT: count.buffer,
      },
      { rows: N, V, ignore: attrs.ignoreIndex, mode: MODES[attrs.reduction] },
      grid(N),
    );
    return [dx, null];
  },
});

/** Options of {@link crossEntropy}. */
export interface CrossEntropyOptions {
  /** `mean` over non-ignored rows (default), `sum`, or `none` (per-row `[N]`). */
  reduction?: Reduction;
  /** Target value whose rows are skipped (default −100). */
  ignoreIndex?: number;
}

/** Cross-entropy of `logits` `[N, V]` against i32 `targets` `[N]` (see module docs). */
export function crossEntropy(
  logits: Tensor,
  targets: Tensor,
  options: CrossEntropyOptions = {},
): Tensor {
  if (logits.rank !== 2) throw new Error(`crossEntropy: logits must be [N, V], got ${logits}`);
  if (targets.dtype !== "i32" || targets.size !== logits.shape[0]) {
    throw new Error(`crossEntropy: targets must be i32 [${logits.shape[0]}], got ${targets}`);
  }
  return crossEntropyOp([logits, targets], {
    reduction: options.reduction ?? "mean",
    ignoreIndex: options.ignoreIndex ?? -100,
  });
}
