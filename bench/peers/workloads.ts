/**
 * The workloads every framework in `bench/peers/` runs, so their rows line
 * up with each other and with `bench/reference/*.py`:
 *
 * - matmul `x·Wᵀ` with x `[M, K]`, W `[N, K]` (f32), 2·M·N·K FLOPs;
 * - an MLP training step: x `[B, d]` → relu(x·W1ᵀ) `[B, f]` → ·W2ᵀ `[B, d]`,
 *   loss mean((y − target)²), backward, Adam(lr 1e-3, no weight decay) on
 *   W1 `[f, d]` and W2 `[d, f]`; 6·2·B·d·f FLOPs (forward 2 matmuls,
 *   backward 4).
 *
 * Timing: wall clock from the call until the framework's own GPU sync
 * (`onSubmittedWorkDone` / `blockUntilReady`), median of the reps.
 *
 * @module
 */

import type { Row, ShapeChoice } from "../lib/report.ts";

/** Matmul shapes `[M, K, N]` (the kernel lab's). */
export function matmulShapes(shape: ShapeChoice): [number, number, number][] {
  return shape === "full"
    ? [[4096, 4096, 4096], [8192, 768, 2048], [8192, 2048, 768], [8192, 768, 32768]]
    : [[64, 64, 64], [128, 96, 64]];
}

/** MLP step shape: B rows, width d, hidden f (mistral-small's FFN at 8 × 1024 tokens in full). */
export function mlpShape(shape: ShapeChoice): { batch: number; width: number; hidden: number } {
  return shape === "full"
    ? { batch: 8192, width: 768, hidden: 2048 }
    : { batch: 64, width: 64, hidden: 128 };
}

/** FLOPs of one MLP step (forward + backward matmuls; the update is not counted). */
export function mlpStepFlops(s: { batch: number; width: number; hidden: number }): number {
  return 6 * 2 * s.batch * s.width * s.hidden;
}

/** A matmul result row. */
export function matmulRow(
  framework: string,
  version: string,
  [M, K, N]: [number, number, number],
  ms: number,
): Row {
  return {
    framework,
    version,
    workload: "matmul",
    shape: `${M}×${K}×${N}`,
    dtype: "f32",
    ms,
    tflops: (2 * M * N * K) / (ms / 1e3) / 1e12,
  };
}

/** An MLP-step result row. */
export function mlpRow(
  framework: string,
  version: string,
  s: { batch: number; width: number; hidden: number },
  ms: number,
  loss: number,
): Row {
  return {
    framework,
    version,
    workload: "mlp_step",
    shape: `${s.batch}×${s.width}×${s.hidden}`,
    dtype: "f32",
    ms,
    tflops: mlpStepFlops(s) / (ms / 1e3) / 1e12,
    loss,
  };
}

/** Deterministic values in [−bound, bound) (an LCG), the same in every framework. */
export function lcgArray(n: number, seed: number, bound: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s >>> 8) / 16777216 * 2 - 1) * bound;
  }
  return out;
}
