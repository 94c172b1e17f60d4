/**
 * Cosine distance between student and teacher embeddings, row-wise over the
 * last axis, averaged: mean_r (1 − cos(s_r, t_r)), with each norm clamped
 * at 1e-8 (PyTorch `cosine_similarity`'s eps).
 *
 * @module
 */

import { addScalar, mean, mul, rsqrt, scale, sum, type Tensor, tidy } from "@irforge/tensor";
import { clampMin } from "./compose.ts";
import { studentTeacher } from "./embedding_targets.ts";
import { defineOptions, type ResolvedOptions } from "./options.ts";
import type { Loss, LossInputs, LossOutput } from "./types.ts";

/** Options of `cosine` (none). */
export const cosineOptions = defineOptions({});

/** mean over rows of 1 − cos(a_r, b_r). */
export function cosineDistance(a: Tensor, b: Tensor): Tensor {
  const dot = sum(mul(a, b), -1);
  const inverseNorms = mul(
    rsqrt(clampMin(sum(mul(a, a), -1), 1e-16)),
    rsqrt(clampMin(sum(mul(b, b), -1), 1e-16)),
  );
  return addScalar(scale(mean(mul(dot, inverseNorms)), -1), 1);
}

/** Creates a `cosine` loss. Inputs: `student` `[N, d]`, `teacher` (tensor or host numbers). */
export function cosine(options: ResolvedOptions<typeof cosineOptions>): Loss {
  return {
    name: "cosine",
    options,
    compute(inputs: LossInputs): Promise<LossOutput> {
      const loss = tidy(() => cosineDistance(...studentTeacher(inputs, "cosine")));
      return Promise.resolve({ loss });
    },
  };
}
