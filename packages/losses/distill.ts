/**
 * Embedding-distillation mixes (two-phase student training):
 *
 * - `distill_phase1`: mse_weight·MSE(student, teacher) + cosine_weight·(1 − cos(student, teacher)),
 * - `distill_phase2`: infonce_weight·InfoNCE(queries, passages) + mse_weight·MSE(student, teacher).
 *
 * Parts are reported as `mse`, `cosine`, `infonce`.
 *
 * @module
 */

import { computeWeighted } from "./combined.ts";
import { cosine } from "./cosine.ts";
import { infonce } from "./infonce.ts";
import { mse } from "./mse.ts";
import { defineOptions, type ResolvedOptions } from "./options.ts";
import type { Loss } from "./types.ts";

/** Options of `distill_phase1`. */
export const distillPhase1Options = defineOptions({
  mse_weight: { kind: "number", min: 0, default: 1, description: "weight w of MSE" },
  cosine_weight: { kind: "number", min: 0, default: 1, description: "weight w′ of 1 − cos" },
});

/** Creates `distill_phase1`. Inputs: `student`, `teacher`. */
export function distillPhase1(options: ResolvedOptions<typeof distillPhase1Options>): Loss {
  const parts = [
    { name: "mse", weight: options.mse_weight, loss: mse({}) },
    { name: "cosine", weight: options.cosine_weight, loss: cosine({}) },
  ];
  return { name: "distill_phase1", options, compute: (inputs) => computeWeighted(parts, inputs) };
}

/** Options of `distill_phase2`. */
export const distillPhase2Options = defineOptions({
  infonce_weight: { kind: "number", min: 0, default: 1, description: "weight w of InfoNCE" },
  mse_weight: { kind: "number", min: 0, default: 1, description: "weight w′ of MSE" },
  temperature: { kind: "number", greaterThan: 0, default: 0.05, description: "InfoNCE τ" },
  normalize: { kind: "boolean", default: false, description: "InfoNCE on cosine similarity" },
  in_batch_negatives: {
    kind: "boolean",
    default: true,
    description: "InfoNCE uses other queries' passages as negatives",
  },
});

/**
 * Creates `distill_phase2`. Inputs: `queryEmbeddings`, `passageEmbeddings`
 * (optional `labels`) for InfoNCE; `student`, `teacher` for MSE.
 */
export function distillPhase2(options: ResolvedOptions<typeof distillPhase2Options>): Loss {
  const parts = [
    {
      name: "infonce",
      weight: options.infonce_weight,
      loss: infonce({
        temperature: options.temperature,
        normalize: options.normalize,
        in_batch_negatives: options.in_batch_negatives,
      }),
    },
    { name: "mse", weight: options.mse_weight, loss: mse({}) },
  ];
  return { name: "distill_phase2", options, compute: (inputs) => computeWeighted(parts, inputs) };
}
