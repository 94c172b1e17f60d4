/**
 * Embedding-distillation mixes (two-phase student training):
 *
 * - `distill_phase1`: mse_weight·MSE(student, teacher) + cosine_weight·(1 − cos(student, teacher)),
 * - `distill_phase2`: infonce_weight·InfoNCE(queries, passages) + mse_weight·MSE, where MSE is
 *   distill-for-retrieval's `Phase2Loss`: the mean of the query MSE and the passage MSE,
 *   `(MSE(q, t_q) + MSE(p, t_p)) / 2`; `student` is `concat([queries, passages])` and `teacher`
 *   the same rows (each part is a mean over its own elements, so a batch with more passages
 *   than queries still weighs both halves equally).
 *
 * Parts are reported as `mse`, `cosine`, `infonce`.
 *
 * @module
 */

import { add, scale, slice, tidy } from "@irforge/tensor";
import { computeWeighted } from "./combined.ts";
import { cosine } from "./cosine.ts";
import { infonce } from "./infonce.ts";
import { meanSquaredError, mse } from "./mse.ts";
import { need } from "./compose.ts";
import { studentTeacher } from "./embedding_targets.ts";
import { defineOptions, type ResolvedOptions } from "./options.ts";
import type { Loss, LossInputs, LossOutput } from "./types.ts";

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
 * Phase 2's MSE as distill-for-retrieval computes it: `student` holds the
 * `Q` query rows (as many as `queryEmbeddings`) then the passage rows, and
 * the result is `(MSE(queries) + MSE(passages)) / 2`.
 */
function queryPassageMse(): Loss {
  const name = "distill_phase2";
  return {
    name: "query_passage_mse",
    options: {},
    compute(inputs: LossInputs): Promise<LossOutput> {
      const queries = need(inputs, "queryEmbeddings", name).shape[0]!;
      const passages = need(inputs, "passageEmbeddings", name).shape[0]!;
      const rows = need(inputs, "student", name).shape[0]!;
      if (rows !== queries + passages) {
        throw new Error(
          `loss "${name}": "student" has ${rows} rows; expected the ${queries} query rows ` +
            `then the ${passages} passage rows (${queries + passages})`,
        );
      }
      const loss = tidy(() => {
        const [s, t] = studentTeacher(inputs, name);
        const q = meanSquaredError(slice(s, 0, 0, queries), slice(t, 0, 0, queries));
        const p = meanSquaredError(slice(s, 0, queries), slice(t, 0, queries));
        return scale(add(q, p), 0.5);
      });
      return Promise.resolve({ loss });
    },
  };
}

/**
 * Creates `distill_phase2`. Inputs: `queryEmbeddings`, `passageEmbeddings`
 * (optional `labels`) for InfoNCE; `student` (the query rows then the
 * passage rows) and `teacher` for the MSE part, `(MSE(q) + MSE(p)) / 2`.
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
    { name: "mse", weight: options.mse_weight, loss: queryPassageMse() },
  ];
  return { name: "distill_phase2", options, compute: (inputs) => computeWeighted(parts, inputs) };
}
