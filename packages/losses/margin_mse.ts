/**
 * Margin-MSE (Hofstätter et al. 2020, "Improving Efficient Neural Ranking
 * Models with Cross-Architecture Knowledge Distillation"): for each list
 * whose entry 0 is the positive and entries 1.. are negatives,
 *
 *   loss = mean_{n, j ≥ 1} ( (s_n0 − s_nj) − (t_n0 − t_nj) )²,
 *
 * with t the teacher scores given as `labels`. With one negative per list
 * this is exactly the paper's MSE(s⁺ − s⁻, t⁺ − t⁻).
 *
 * @module
 */

import { mean, mul, slice, sub, tidy } from "@irforge/tensor";
import { checkRank, hostArray, need, upload } from "./compose.ts";
import { defineOptions, type ResolvedOptions } from "./options.ts";
import type { Loss, LossInputs, LossOutput } from "./types.ts";

/** Options of `margin_mse` (none). */
export const marginMseOptions = defineOptions({});

/** Creates `margin_mse`. Inputs: `scores` `[N, 1+k]` (positive first), `labels` = teacher scores. */
export function marginMse(options: ResolvedOptions<typeof marginMseOptions>): Loss {
  return {
    name: "margin_mse",
    options,
    compute(inputs: LossInputs): Promise<LossOutput> {
      const loss = tidy(() => {
        const scores = need(inputs, "scores", "margin_mse");
        checkRank(scores, 2, "scores", "margin_mse");
        const [N, L] = scores.shape as [number, number];
        if (L < 2) {
          throw new Error(`loss "margin_mse": scores ${scores} need a positive and ≥ 1 negative`);
        }
        const t = hostArray(need(inputs, "labels", "margin_mse"), N * L, "labels", "margin_mse");
        const teacherMargins = new Float64Array(N * (L - 1));
        for (let n = 0; n < N; n++) {
          for (let j = 1; j < L; j++) {
            teacherMargins[n * (L - 1) + j - 1] = t[n * L]! - t[n * L + j]!;
          }
        }
        const studentMargins = sub(slice(scores, 1, 0, 1), slice(scores, 1, 1, L));
        const d = sub(studentMargins, upload(teacherMargins, [N, L - 1]));
        return mean(mul(d, d));
      });
      return Promise.resolve({ loss });
    },
  };
}
