/**
 * The second pass of a split-K matmul: the product kernel wrote one f32 slab
 * of partial sums per K range (`[splits, rows, cols]`, dense); this pass adds
 * them in fixed order (slab 0, 1, …), so the result is bit-identical from run
 * to run (no float atomics), then applies the epilogue the product skipped:
 * the old C when accumulating (split bindings along K), bias, activation.
 *
 * @module
 */

import { defineKernel } from "../kernel.ts";
import { getRuntime, grid } from "../runtime.ts";
import type { Activation } from "./matmul_kernels.ts";
import { REDUCE_THREADS } from "./matmul_counts.ts";

/** What determines one reduction kernel. */
export interface SplitReduceSpec {
  /** Four columns per thread (cols, ldc and cOffset are multiples of 4). */
  vec: boolean;
  /** Add a bias row. */
  bias: boolean;
  /** Epilogue activation. */
  activation: Activation;
}

const ACT: Record<Activation, string> = {
  none: "v",
  silu: "v / (1.0 + exp(-v))",
  gelu: "0.5 * v * (1.0 + tanh(clamp(0.7978845608028654 * (v + 0.044715 * v * v * v), " +
    "T(-15.0), T(15.0))))",
};

/** The reduction kernel: C[row, col] = (accumulate ? C : 0) + Σ_s S[s, row, col] (+ bias, activation). */
export const SPLITK_REDUCE_KERNEL = defineKernel({
  name: "matmul_splitk_reduce",
  key: (s: SplitReduceSpec) => `${s.vec ? "v4" : "scalar"} ${s.bias ? "bias" : ""} ${s.activation}`,
  uniforms: {
    rows: "u32",
    cols: "u32",
    splits: "u32",
    splitStride: "u32",
    ldc: "u32",
    cOffset: "u32",
    accumulate: "u32",
    biasBase: "u32",
  },
  bindings: (s: SplitReduceSpec) => ({
    C: { type: s.vec ? "array<vec4<f32>>" : "array<f32>", access: "read_write" as const },
    S: { type: s.vec ? "array<vec4<f32>>" : "array<f32>" },
    BIAS: s.bias ? { type: "array<f32>" } : undefined,
  }),
  source: (s: SplitReduceSpec) => {
    const w = s.vec ? 4 : 1;
    const T = s.vec ? "vec4<f32>" : "f32";
    const at = (i: string) => (s.vec ? `(${i}) >> 2u` : i);
    const bias = s.vec
      ? "v += vec4<f32>(BIAS[b], BIAS[b + 1u], BIAS[b + 2u], BIAS[b + 3u]);"
      : "v += BIAS[b];";
    return `
@compute @workgroup_size(${REDUCE_THREADS})
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nw: vec3<u32>,
  @builtin(local_invocation_index) tid: u32,
) {
  let groups = P.cols / ${w}u;
  let i = (wg.x + wg.y * nw.x) * ${REDUCE_THREADS}u + tid;
  if (i >= P.rows * groups) { return; }
  let row = i / groups; let col = (i % groups) * ${w}u;
  let si = row * P.cols + col;
  var v = ${T}(0.0);
  for (var s = 0u; s < P.splits; s++) { v += S[${at("s * P.splitStride + si")}]; }
  let ci = P.cOffset + row * P.ldc + col;
  if (P.accumulate != 0u) { v = C[${at("ci")}] + v; }
  let b = P.biasBase + col;
  ${s.bias ? bias : "let unusedBias = b;"}
  C[${at("ci")}] = ${ACT[s.activation].replaceAll("T(", `${T}(`)};
}`;
  },
});

/** Where a reduction reads and writes. */
export interface SplitReduceArgs {
  /** The output buffer. */
  out: GPUBuffer;
  /** The scratch slabs (`[splits, rows, cols]` f32). */
  scratch: GPUBuffer;
  /** Bias buffer, when the epilogue adds one. */
  bias?: GPUBuffer;
  /** Output rows (batch × M). */
  rows: number;
  /** Output columns written (N, or a column range of a split binding). */
  cols: number;
  /** Number of slabs. */
  splits: number;
  /** C's row stride (elements). */
  ldc: number;
  /** Element offset of C's first written element. */
  cOffset: number;
  /** Add C's old value (split bindings along K). */
  accumulate: boolean;
  /** Bias element of column 0. */
  biasBase: number;
  /** Epilogue activation. */
  activation: Activation;
}

/** Records the reduction pass of a split-K product. */
export function launchSplitReduce(r: SplitReduceArgs): void {
  const vec = r.cols % 4 === 0 && r.ldc % 4 === 0 && r.cOffset % 4 === 0;
  const threads = r.rows * (r.cols / (vec ? 4 : 1));
  const spec: SplitReduceSpec = {
    vec,
    bias: r.bias !== undefined,
    activation: r.activation,
  };
  getRuntime().launch(
    SPLITK_REDUCE_KERNEL,
    spec,
    { C: r.out, S: r.scratch, BIAS: r.bias },
    {
      rows: r.rows,
      cols: r.cols,
      splits: r.splits,
      splitStride: r.rows * r.cols,
      ldc: r.ldc,
      cOffset: r.cOffset,
      accumulate: r.accumulate ? 1 : 0,
      biasBase: r.biasBase,
    },
    grid(Math.ceil(threads / REDUCE_THREADS)),
  );
}
