/**
 * L2 normalisation along the last axis, `y = x / max(‖x‖, eps)` (as
 * `torch.nn.functional.normalize`), and cosine similarity of rows built on it.
 *
 * @module
 */

import { defineOp } from "../registry.ts";
import { getRuntime, grid, Params } from "../runtime.ts";
import { Tensor } from "../tensor.ts";
import { paramsBlock } from "../wgsl.ts";
import { mul } from "./elementwise.ts";
import { sum } from "./reduce.ts";
import { ROW_ARGS, ROW_ID, ROW_REDUCE, ROW_WG } from "./row_reduce_wgsl.ts";

const code = (backward: boolean) =>
  `${paramsBlock(3)}
@group(0) @binding(0) var<storage, read_write> OUT: array<f32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> DY: array<f32>;
${ROW_REDUCE}
@compute @workgroup_size(${ROW_WG})
fn main(${ROW_ARGS}) {
  let rows = pu(0u); let D = pu(1u); let eps = pf(2u);
  ${ROW_ID}
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
      : `for (var j = l.x; j < D; j += ${ROW_WG}u) { OUT[base + j] = X[base + j] / d; }
  let unusedDy = DY[0];`
  }
}`;

function run(x: Tensor, dy: Tensor, eps: number, backward: boolean): Tensor {
  const D = x.shape[x.rank - 1]!, rows = x.size / D;
  const out = Tensor.empty(x.shape, "f32");
  getRuntime().dispatch({
    op: backward ? "l2_normalize-backward" : "l2_normalize",
    code: code(backward),
    buffers: [out.buffer, x.buffer, dy.buffer],
    params: new Params().u32(rows, D).f32(eps).buffer,
    workgroups: grid(rows),
  });
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
