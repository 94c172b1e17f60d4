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
import { getRuntime, grid, Params } from "../runtime.ts";
import { Tensor } from "../tensor.ts";
import { enables, paramsBlock } from "../wgsl.ts";
import { ROW_ARGS, ROW_ID, ROW_REDUCE, ROW_WG } from "./row_reduce_wgsl.ts";

/** How row losses are combined. */
export type Reduction = "mean" | "sum" | "none";

const rowCode = (t: string) =>
  `${enables(t)}${paramsBlock(4)}
@group(0) @binding(0) var<storage, read_write> LOSS: array<f32>;
@group(0) @binding(1) var<storage, read_write> LSE: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<${t}>;
@group(0) @binding(3) var<storage, read> TARGET: array<i32>;
${ROW_REDUCE}
@compute @workgroup_size(${ROW_WG})
fn main(${ROW_ARGS}) {
  let rows = pu(0u); let V = pu(1u); let ignore = pi(2u);
  ${ROW_ID}
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
}`;

const TOTAL = `${paramsBlock(4)}
@group(0) @binding(0) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(1) var<storage, read_write> COUNT: array<f32>;
@group(0) @binding(2) var<storage, read> LOSS: array<f32>;
@group(0) @binding(3) var<storage, read> TARGET: array<i32>;
${ROW_REDUCE}
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(local_invocation_id) l: vec3<u32>) {
  let rows = pu(0u); let ignore = pi(1u); let mean = pu(2u);
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
}`;

const backwardCode = (t: string) =>
  `${enables(t)}${paramsBlock(6)}
@group(0) @binding(0) var<storage, read_write> DX: array<f32>;
@group(0) @binding(1) var<storage, read> X: array<${t}>;
@group(0) @binding(2) var<storage, read> TARGET: array<i32>;
@group(0) @binding(3) var<storage, read> LSE: array<f32>;
@group(0) @binding(4) var<storage, read> DY: array<f32>;
@group(0) @binding(5) var<storage, read> COUNT: array<f32>;
@compute @workgroup_size(${ROW_WG})
fn main(${ROW_ARGS}) {
  let rows = pu(0u); let V = pu(1u); let ignore = pi(2u); let mode = pu(3u);
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
}`;

const MODES: Record<Reduction, number> = { mean: 0, sum: 1, none: 2 };

const crossEntropyOp = defineOp<{ reduction: Reduction; ignoreIndex: number }>({
  name: "cross_entropy",
  forward: ([logits, targets], { reduction, ignoreIndex }) => {
    const [N, V] = logits!.shape as [number, number];
    const rt = getRuntime();
    const rowLoss = Tensor.empty([N], "f32");
    const lse = Tensor.empty([N], "f32");
    rt.dispatch({
      op: "cross_entropy",
      code: rowCode(logits!.dtype),
      buffers: [rowLoss.buffer, lse.buffer, logits!.buffer, targets!.buffer],
      params: new Params().u32(N, V).i32(ignoreIndex).buffer,
      workgroups: grid(N),
    });
    const count = Tensor.empty([1], "f32");
    let output = rowLoss;
    if (reduction !== "none") {
      output = Tensor.empty([], "f32");
      rt.dispatch({
        op: "cross_entropy-reduce",
        code: TOTAL,
        buffers: [output.buffer, count.buffer, rowLoss.buffer, targets!.buffer],
        params: new Params().u32(N).i32(ignoreIndex).u32(reduction === "mean" ? 1 : 0).buffer,
        workgroups: [1],
      });
    }
    return { output, saved: [logits!, targets!, lse, count] };
  },
  backward: (dy, { saved, attrs }) => {
    const [logits, targets, lse, count] = saved as [Tensor, Tensor, Tensor, Tensor];
    const [N, V] = logits.shape as [number, number];
    const dx = Tensor.empty([N, V], "f32");
    getRuntime().dispatch({
      op: "cross_entropy-backward",
      code: backwardCode(logits.dtype),
      buffers: [dx.buffer, logits.buffer, targets.buffer, lse.buffer, dy.buffer, count.buffer],
      params: new Params().u32(N, V).i32(attrs.ignoreIndex).u32(MODES[attrs.reduction]).buffer,
      workgroups: grid(N),
    });
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
