/**
 * The LM head and token cross-entropy in one op, without materialising the
 * logits of all rows: rows are processed in chunks; for each chunk the
 * logits `h·Wᵀ` are computed, one row kernel turns them in place into the
 * row losses and the unscaled gradient `softmax − onehot` (the same pass),
 * and that gradient is immediately multiplied into the chunk's share of
 * dhidden (`G·W`) and dW (`Gᵀ·h`). Peak memory holds one chunk of logits
 * instead of `[N, V]` logits plus their gradient. The backward only scales
 * the saved dhidden and dW by `dy / count` (mean over non-ignored targets).
 *
 * Semantics as {@link crossEntropy} with `mean` reduction: ignore index
 * −100, all rows ignored → loss 0 and zero gradient, an out-of-range target
 * makes the loss NaN. Gradients are computed in the forward only when one
 * is wanted (grad mode on and an input requiring grad).
 *
 * @example The causal-LM loss from final hidden states
 * ```ts ignore
 * const loss = lmHeadLoss(hidden2d, lmHeadWeight, shiftedTargets); // [N, H], [V, H], i32 [N]
 * backward(loss);
 * ```
 *
 * @module
 */

import { isGradEnabled } from "../autograd.ts";
import { defineOp } from "../registry.ts";
import { defineKernel } from "../kernel.ts";
import { getRuntime, grid } from "../runtime.ts";
import { Tensor } from "../tensor.ts";
import { ROW_ARGS, ROW_ID, ROW_REDUCE, ROW_WG } from "./row_reduce_wgsl.ts";
import { add, div, mul } from "./elementwise.ts";
import { linear, matmul } from "./matmul.ts";
import { concat, slice } from "./shape.ts";

const ROWS = defineKernel({
  name: "lm_head_ce",
  key: ({ grad }: { grad: boolean }) => String(grad),
  uniforms: { rows: "u32", V: "u32", ignore: "i32", first: "u32" },
  bindings: () => ({
    X: { type: "array<f32>", access: "read_write" },
    LOSS: { type: "array<f32>", access: "read_write" },
    TARGET: { type: "array<i32>" },
  }),
  source: ({ grad }) => `
${ROW_REDUCE}
@compute @workgroup_size(${ROW_WG})
fn main(${ROW_ARGS}) {
  let rows = P.rows; let V = P.V; let ignore = P.ignore;
  ${ROW_ID}
  if (row >= rows) { return; }
  let base = row * V;
  let t = TARGET[P.first + row];
  var m = neg_inf();
  for (var j = l.x; j < V; j += ${ROW_WG}u) { m = max(m, X[base + j]); }
  m = wg_max(m, l.x);
  var s = 0.0;
  for (var j = l.x; j < V; j += ${ROW_WG}u) { s += exp(X[base + j] - m); }
  s = wg_sum(s, l.x);
  let lse = m + log(s);
  if (l.x == 0u) {
    if (t == ignore) { LOSS[P.first + row] = 0.0; }
    else if (t < 0 || u32(t) >= V) { LOSS[P.first + row] = nan_f32(); }
    else { LOSS[P.first + row] = lse - X[base + u32(t)]; }
  }
  ${
    grad
      ? `// The target logit is read above before any thread overwrites it.
  workgroupBarrier();
  let valid = t != ignore && t >= 0 && u32(t) < V;
  for (var j = l.x; j < V; j += ${ROW_WG}u) {
    let g = exp(X[base + j] - lse) - select(0.0, 1.0, i32(j) == t);
    X[base + j] = select(0.0, g, valid);
  }`
      : ""
  }
}`,
});

const REDUCE = defineKernel({
  name: "lm_head_ce-reduce",
  key: () => "",
  uniforms: { rows: "u32", ignore: "i32" },
  bindings: () => ({
    OUT: { type: "array<f32>", access: "read_write" },
    DIVISOR: { type: "array<f32>", access: "read_write" },
    LOSS: { type: "array<f32>" },
    TARGET: { type: "array<i32>" },
  }),
  source: () => `
${ROW_REDUCE}
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(local_invocation_id) l: vec3<u32>) {
  var s = 0.0; var c = 0.0;
  for (var i = l.x; i < P.rows; i += ${ROW_WG}u) {
    s += LOSS[i];
    if (TARGET[i] != P.ignore) { c += 1.0; }
  }
  s = wg_sum(s, l.x);
  c = wg_sum(c, l.x);
  if (l.x == 0u) {
    // No counted row: every gradient row is zero already; 1 avoids 0/0.
    DIVISOR[0] = max(c, 1.0);
    if (c > 0.0) { OUT[0] = s / c; } else { OUT[0] = 0.0; }
  }
}`,
});

interface Attrs {
  ignoreIndex: number;
  chunkRows: number;
  gradHidden: boolean;
  gradWeight: boolean;
}

const lmHeadLossOp = defineOp<Attrs>({
  name: "lm_head_loss",
  forward: ([hidden, weight, targets], attrs) => {
    const [N] = hidden!.shape as [number, number];
    const V = weight!.shape[0]!;
    const rt = getRuntime();
    const rowLoss = Tensor.empty([N], "f32");
    const grad = attrs.gradHidden || attrs.gradWeight;
    const dHidden: Tensor[] = [];
    let dWeight = null as Tensor | null;
    for (let first = 0; first < N; first += attrs.chunkRows) {
      const rows = Math.min(attrs.chunkRows, N - first);
      const h = rows === N ? hidden! : slice(hidden!, 0, first, first + rows);
      const logits = linear(h, weight!); // [rows, V] f32, becomes the gradient in place
      rt.launch(
        ROWS,
        { grad },
        { X: logits.buffer, LOSS: rowLoss.buffer, TARGET: targets!.buffer },
        { rows, V, ignore: attrs.ignoreIndex, first },
        grid(rows),
      );
      if (attrs.gradHidden) dHidden.push(matmul(logits, weight!));
      if (attrs.gradWeight) {
        const part = matmul(logits, h, { transA: true });
        const previous: Tensor | null = dWeight;
        dWeight = previous ? add(previous, part) : part;
        if (previous) previous.dispose(), part.dispose();
      }
      // Freed now, not at the end of the op: only one chunk of logits is ever alive.
      logits.dispose();
      if (h !== hidden) h.dispose();
    }
    const loss = Tensor.empty([], "f32");
    const divisor = Tensor.empty([1], "f32");
    rt.launch(
      REDUCE,
      undefined,
      { OUT: loss.buffer, DIVISOR: divisor.buffer, LOSS: rowLoss.buffer, TARGET: targets!.buffer },
      { rows: N, ignore: attrs.ignoreIndex },
      [1],
    );
    const saved = [divisor];
    if (attrs.gradHidden) saved.push(dHidden.length === 1 ? dHidden[0]! : concat(dHidden, 0));
    if (attrs.gradWeight) saved.push(dWeight!);
    return { output: loss, saved };
  },
  backward: (dy, { saved, attrs }) => {
    const [divisor, ...grads] = saved as Tensor[];
    // mean: each row's gradient is (softmax − onehot)·dy/count (count ≥ 1 here; see REDUCE).
    const factor = div(dy, divisor!);
    const dh = attrs.gradHidden ? mul(grads.shift()!, factor) : null;
    const dw = attrs.gradWeight ? mul(grads.shift()!, factor) : null;
    return [dh, dw, null];
  },
});

/** Options of {@link lmHeadLoss}. */
export interface LmHeadLossOptions {
  /** Target value whose rows are skipped (default −100). */
  ignoreIndex?: number;
  /** Rows per chunk (default: as many as keep one chunk's logits under 64 MiB). */
  chunkRows?: number;
}

/**
 * Mean token cross-entropy of `hidden` `[N, H]` through the LM head
 * `weight` `[V, H]` (HF layout) against i32 `targets` `[N]`, without
 * materialising `[N, V]` logits (see module docs). Same value and gradients
 * as `crossEntropy(linear(hidden, weight), targets)`.
 */
export function lmHeadLoss(
  hidden: Tensor,
  weight: Tensor,
  targets: Tensor,
  options: LmHeadLossOptions = {},
): Tensor {
  if (hidden.rank !== 2 || weight.rank !== 2 || weight.shape[1] !== hidden.shape[1]) {
    throw new Error(`lmHeadLoss: hidden ${hidden} must be [N, H] and weight ${weight} [V, H]`);
  }
  const [N] = hidden.shape as [number, number];
  const V = weight.shape[0]!;
  if (targets.dtype !== "i32" || targets.size !== N) {
    throw new Error(`lmHeadLoss: targets must be i32 [${N}], got ${targets}`);
  }
  const recording = isGradEnabled();
  const chunkRows = options.chunkRows ?? Math.max(1, Math.floor((64 << 20) / (4 * V)));
  if (!Number.isInteger(chunkRows) || chunkRows < 1) {
    throw new Error(`lmHeadLoss: chunkRows must be a positive integer, got ${chunkRows}`);
  }
  return lmHeadLossOp([hidden, weight, targets], {
    ignoreIndex: options.ignoreIndex ?? -100,
    chunkRows: Math.min(chunkRows, Math.max(1, N)),
    gradHidden: recording && hidden.requiresGrad,
    gradWeight: recording && weight.requiresGrad,
  });
}
