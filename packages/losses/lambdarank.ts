/**
 * LambdaRank as NDCGLoss2 (Wang et al. 2018, "The LambdaLoss Framework for
 * Ranking Metric Optimization"), matching allRank's
 * `lambdaLoss(y_pred, y_true, weighing_scheme="ndcgLoss2_scheme")`
 * (allegro/allRank `allrank/models/losses/lambdaLoss.py`) including its eps
 * clamps and its default `reduction="sum"`, `reduction_log="binary"`:
 *
 * - sort each list by predicted score, descending; i, j are positions 1..L,
 * - G_i = (2^max(t_i,0) − 1) / maxDCG, maxDCG = Σ_{p ≤ k} (2^t_(p) − 1)/log2(1+p)
 *   over the ideal order, clamped at eps,
 * - D(n) = log2(1 + n), δ_ij = |1/D(|i−j|) − 1/D(|i−j|+1)|,
 *   w_ij = δ_ij · |G_i − G_j|,
 * - loss = −Σ_{t_i > t_j, i,j ≤ k} log2( clamp( clamp(σ(σ·(s_i − s_j)), eps)^w_ij, eps ) ).
 *
 * The ranking is read back to the host (it is piecewise constant, so no
 * gradient flows through it); weights are computed there in float64. Ties in
 * predicted scores keep list order (PyTorch's sort order for ties is
 * unspecified). Padded entries (`mask` 0) sort last and form no pairs, as
 * allRank's −inf padding. `(2^t − 1)` uses labels clamped at 0.
 *
 * @module
 */

import { mul, reshape, scale, sum, tidy } from "@irforge/tensor";
import { checkRank, clampMin, hostArray, hostMask, need, upload, zeroFrom } from "./compose.ts";
import { defineOptions, type ResolvedOptions } from "./options.ts";
import { pairLogSigmoid } from "./pairs.ts";
import type { Loss, LossInputs, LossOutput } from "./types.ts";

/** Options of `lambdarank`. */
export const lambdarankOptions = defineOptions({
  sigma: { kind: "number", greaterThan: 0, default: 1, description: "σ in σ(σ·(s_i − s_j))" },
  k: {
    kind: "integer",
    min: 1,
    description: "truncate at rank k (pairs and maxDCG); absent: whole list",
  },
  eps: { kind: "number", greaterThan: 0, default: 1e-10, description: "clamp floor (allRank)" },
  reduction: {
    kind: "string",
    choices: ["sum", "mean"],
    default: "sum",
    description: "sum (allRank default) or mean over the selected pairs",
  },
});

/** Pairs in predicted order with their NDCGLoss2 weights (host, float64). */
export function lambdaPairs(
  scores: ArrayLike<number>,
  labels: Float64Array,
  valid: Uint8Array,
  N: number,
  L: number,
  k: number | undefined,
  eps: number,
): { indices: Int32Array; weights: Float64Array } {
  const indices: number[] = [], weights: number[] = [];
  const cut = Math.min(k ?? L, L);
  const D = (n: number) => Math.log2(1 + n);
  for (let n = 0; n < N; n++) {
    const docs = Array.from({ length: L }, (_, i) => i).filter((i) => valid[n * L + i]);
    const byPred = [...docs].sort((a, b) => scores[n * L + b]! - scores[n * L + a]! || a - b);
    const t = byPred.map((i) => labels[n * L + i]!);
    const ideal = t.map((v) => Math.max(v, 0)).sort((a, b) => b - a);
    let maxDCG = 0;
    for (let p = 0; p < Math.min(cut, ideal.length); p++) {
      maxDCG += (2 ** ideal[p]! - 1) / D(p + 1);
    }
    maxDCG = Math.max(maxDCG, eps);
    const G = t.map((v) => (2 ** Math.max(v, 0) - 1) / maxDCG);
    const m = Math.min(cut, byPred.length);
    for (let a = 0; a < m; a++) {
      for (let b = 0; b < m; b++) {
        if (!(t[a]! > t[b]!)) continue;
        const delta = Math.abs(a - b);
        const w = Math.abs(1 / D(delta) - 1 / D(delta + 1)) * Math.abs(G[a]! - G[b]!);
        indices.push(n * L + byPred[a]!, n * L + byPred[b]!);
        weights.push(w);
      }
    }
  }
  return { indices: Int32Array.from(indices), weights: Float64Array.from(weights) };
}

/** Creates a `lambdarank` loss. Inputs: `scores` `[N, L]`, `labels` `[N·L]`, optional `mask`. */
export function lambdarank(options: ResolvedOptions<typeof lambdarankOptions>): Loss {
  return {
    name: "lambdarank",
    options,
    async compute(inputs: LossInputs): Promise<LossOutput> {
      const scores = need(inputs, "scores", "lambdarank");
      checkRank(scores, 2, "scores", "lambdarank");
      const [N, L] = scores.shape as [number, number];
      const labels = hostArray(need(inputs, "labels", "lambdarank"), N * L, "labels", "lambdarank");
      const valid = hostMask(inputs.mask, N * L, "lambdarank");
      const predicted = await scores.toArray();
      const { indices, weights } = lambdaPairs(
        predicted,
        labels,
        valid,
        N,
        L,
        options.k,
        options.eps,
      );
      const P = weights.length;
      const floor = Math.log2(options.eps);
      const loss = tidy(() => {
        if (P === 0) return zeroFrom(scores);
        // log2 of clamp(σ, eps), then w·(…) clamped at log2 eps: log2(clamp(p^w, eps)).
        const log2p = clampMin(
          scale(pairLogSigmoid(scores, indices, options.sigma), Math.LOG2E),
          floor,
        );
        const terms = clampMin(mul(log2p, upload(weights, [P])), floor);
        const total = reshape(sum(terms), []);
        return scale(total, options.reduction === "sum" ? -1 : -1 / P);
      });
      return { loss };
    },
  };
}
