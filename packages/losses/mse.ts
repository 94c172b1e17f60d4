/**
 * Mean squared error between student and teacher embeddings (PyTorch
 * `MSELoss`, mean over all elements): (1/n) Σ (s − t)².
 *
 * @module
 */

import { mean, mul, sub, type Tensor, tidy } from "@irforge/tensor";
import { studentTeacher } from "./embedding_targets.ts";
import { defineOptions, type ResolvedOptions } from "./options.ts";
import type { Loss, LossInputs, LossOutput } from "./types.ts";

/** Options of `mse` (none). */
export const mseOptions = defineOptions({});

/** (1/n) Σ (a − b)² as a scalar. */
export function meanSquaredError(a: Tensor, b: Tensor): Tensor {
  const d = sub(a, b);
  return mean(mul(d, d));
}

/** Creates an `mse` loss. Inputs: `student` `[N, d]`, `teacher` (tensor or host numbers). */
export function mse(options: ResolvedOptions<typeof mseOptions>): Loss {
  return {
    name: "mse",
    options,
    compute(inputs: LossInputs): Promise<LossOutput> {
      const loss = tidy(() => meanSquaredError(...studentTeacher(inputs, "mse")));
      return Promise.resolve({ loss });
    },
  };
}
