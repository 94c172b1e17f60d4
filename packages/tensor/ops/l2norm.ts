/**
 * L2 normalisation along the last axis, `y = x / max(‖x‖, eps)` (as
 * `torch.nn.functional.normalize`), and cosine similarity of rows built on it.
 *
 * @module
 */

import { defineOp } from "../registry.ts";
import { defineKernel } from "../kernel.ts";
import { getRuntime, grid } from "../runtime.ts";
import { Tensor } from "../tensor.ts";
import { mul } from "./elementwise.ts";
import { sum } from "./reduce.ts";
import { ROW_WG, rowArgs, rowId, rowReduce, rowSubgroups } from "./row_reduce_wgsl.ts";

const L2_NORMALIZE = defineKernel({
  name: "l2_normalize",
  key: ({ backward, subgroups }: { backward: boolean; subgroups: boolean }) =>
    `${backward ? "backward" : "forward"} ${subgroups ? "subgroups" : "workgroup"}`,
  uniforms: { rows: "u32", D: "u32", eps: "f32" },
  bindings: ({ backward }) => ({
    OUT: { type: "array<f32>", access: "read_write" },
    X: { type: "array<f32>" },
    DY: backward ? { type: "array<f32>" } : undefined,
  }),
  source: ({ backward, subgroups }) => `
${rowReduce(subgroups)}
@compute @workgroup_size(${ROW_WG})
fn main(${rowArgs(subgroups)}) {
  let rows = P.rows; let D = P.D; let eps = P.eps;
  ${rowId(subgroups)}
  if (row >= rows) { return; }
  let base = row * D;
  var s = 0.0;
  for (var j = l.x; j < D; j += ${ROW_WG}u) { let v = X[base + j]; s += v * v; }
  let norm = sqrt(wg_sum(s, l.x));
  let d = max(norm, eps);
  ${
    backward
      ? `var t = 0.0;
  for (var j = l.x; j < D; j += ${ROW_WG}u) { t += DY[base + j] * X[base + j] / d; }
  t = wg_sum(t, l.x);
  for (var j = l.x; j < D; j += ${ROW_WG}u) {
    let y = X[base + j] / d;
    OUT[base + j] = select(DY[base + j] / d, (DY[base + j] - y * t) / d, norm > eps);
  }`
      : `for (var j = l.x; j < D; j += ${ROW_WG}u) { OUT[base + j] = X[base + j] / d; }`
  }
}`,
});

function run(x: Tensor, dy: Tensor, eps: number, backward: boolean): Tensor {
  const D = x.shape[x.rank - 1]!, rows = x.size / D;
  const out = Tensor.empty(x.shape, "f32");
  getRuntime().launch(
    L2_NORMALIZE,
    { backward, subgroups: rowSubgroups() },
    { OUT: out.buffer, X: x.buffer, DY: backward ? dy.buffer : undefined },
    { rows, D, eps },
    grid(rows),
  );
  return out;
}

const l2Op = defineOp<{ eps: number }>({
  name: "l2_normalize",
  forward: ([x], { eps }) => ({ output: run(x!, x!, eps, false), saved: [x!] }),
  backward: (dy, { saved, attrs }) => [run(saved[0]!, dy, attrs.eps, true)],
});

/** Normalises rows (last axis) to unit L2 norm; f32. */
export function l2Normalize(x: Tensor, eps = 1e-12): Tensor {
  if (x.dtype !== "f32") throw new Error(`l2Normalize: needs f32, got ${x}`);
  return l2Op([x], { eps });
}

/**
 * Cosine similarity of corresponding rows of `a` and `b` (last axis, shapes
 * broadcast): `Σ normalize(a)·normalize(b)`. Note: eps clamps each norm
 * separately (PyTorch's `cosine_similarity` clamps the product).
 */
export function cosineSimilarity(a: Tensor, b: Tensor, eps = 1e-8): Tensor {
  const na = l2Normalize(a, eps), nb = l2Normalize(b, eps);
  const p = mul(na, nb);
  const out = sum(p, -1);
  for (const t of [na, nb, p]) t.dispose();
  return out;
}
