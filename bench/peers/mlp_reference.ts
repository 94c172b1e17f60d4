/**
 * Float64 CPU reference of the peers' MLP training step (`workloads.ts`):
 * the loss before each of `steps` Adam steps, to check every framework
 * computes the same thing.
 *
 * @module
 */

import { lcgArray } from "./workloads.ts";

/** Adam hyper-parameters of the peers' step. */
export const MLP_ADAM = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;

/** Losses before each of `steps` steps for shape `s` and the workloads' data. */
export function referenceMlpLosses(
  s: { batch: number; width: number; hidden: number },
  steps: number,
): number[] {
  const { batch: B, width: d, hidden: f } = s;
  const x = Float64Array.from(lcgArray(B * d, 3, 1));
  const target = Float64Array.from(lcgArray(B * d, 4, 1));
  const w1 = Float64Array.from(lcgArray(f * d, 5, 1 / Math.sqrt(d)));
  const w2 = Float64Array.from(lcgArray(d * f, 6, 1 / Math.sqrt(f)));
  const state = [w1, w2].map((w) => ({
    w,
    m: new Float64Array(w.length),
    v: new Float64Array(w.length),
  }));
  const losses: number[] = [];
  for (let t = 1; t <= steps; t++) {
    const h = new Float64Array(B * f), y = new Float64Array(B * d);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < f; j++) {
        let acc = 0;
        for (let k = 0; k < d; k++) acc += x[b * d + k]! * w1[j * d + k]!;
        h[b * f + j] = Math.max(acc, 0);
      }
      for (let j = 0; j < d; j++) {
        let acc = 0;
        for (let k = 0; k < f; k++) acc += h[b * f + k]! * w2[j * f + k]!;
        y[b * d + j] = acc;
      }
    }
    let loss = 0;
    const dy = new Float64Array(B * d);
    for (let i = 0; i < B * d; i++) {
      const r = y[i]! - target[i]!;
      loss += r * r;
      dy[i] = (2 * r) / (B * d);
    }
    losses.push(loss / (B * d));
    const g1 = new Float64Array(f * d), g2 = new Float64Array(d * f);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < d; j++) {
        const g = dy[b * d + j]!;
        for (let k = 0; k < f; k++) g2[j * f + k]! += g * h[b * f + k]!;
      }
      for (let k = 0; k < f; k++) {
        if (h[b * f + k]! <= 0) continue;
        let dh = 0;
        for (let j = 0; j < d; j++) dh += dy[b * d + j]! * w2[j * f + k]!;
        for (let i = 0; i < d; i++) g1[k * d + i]! += dh * x[b * d + i]!;
      }
    }
    const { lr, beta1, beta2, eps } = MLP_ADAM;
    [g1, g2].forEach((g, p) => {
      const st = state[p]!;
      for (let i = 0; i < g.length; i++) {
        st.m[i] = beta1 * st.m[i]! + (1 - beta1) * g[i]!;
        st.v[i] = beta2 * st.v[i]! + (1 - beta2) * g[i]! * g[i]!;
        const mHat = st.m[i]! / (1 - beta1 ** t), vHat = st.v[i]! / (1 - beta2 ** t);
        st.w[i] = st.w[i]! - (lr * mHat) / (Math.sqrt(vHat) + eps);
      }
    });
  }
  return losses;
}

/**
 * Checks a framework's loss before step `steps` against the float64
 * reference when the shape is small enough to recompute here (≤ 2·10⁷
 * multiply-adds per step); returns the reference or `null` when skipped.
 *
 * @throws {Error} when the relative difference exceeds `tol` (default 1e-3).
 */
export function checkMlpLoss(
  framework: string,
  s: { batch: number; width: number; hidden: number },
  steps: number,
  loss: number,
  tol = 1e-3,
): number | null {
  if (s.batch * s.width * s.hidden > 2e7) return null;
  const expected = referenceMlpLosses(s, steps)[steps - 1]!;
  const rel = Math.abs(loss - expected) / Math.abs(expected);
  if (!(rel <= tol)) {
    throw new Error(
      `${framework}: MLP loss before step ${steps} is ${loss}, the float64 reference ${expected} (relative ${rel})`,
    );
  }
  return expected;
}
