/**
 * Matryoshka representation learning (Kusupati et al. 2022): an inner loss
 * applied at several prefix sizes of the embeddings, weighted sum
 *
 *   loss = Σ_k weights_k · inner(embeddings[..., :dims_k]).
 *
 * Every embedding input (`queryEmbeddings`, `passageEmbeddings`, `student`,
 * `teacher`) is cut to its first `dims_k` features. Renormalisation: an inner
 * loss that normalises (`normalize: true`, `cosine`) does so after the cut,
 * so each prefix is renormalised. Parts are reported as `dim_<d>`.
 *
 * @module
 */

import { slice, Tensor } from "@irforge/tensor";
import { computeWeighted } from "./combined.ts";
import { defineOptions, type ResolvedOptions } from "./options.ts";
import { createLoss, resolveLossName } from "./registry.ts";
import type { HostNumbers, Loss, LossInputs } from "./types.ts";

/** Options of `matryoshka`. */
export const matryoshkaOptions = defineOptions({
  loss: { kind: "string", required: true, description: "inner loss name, e.g. infonce" },
  loss_options: { kind: "object", default: {}, description: "options of the inner loss" },
  dims: {
    kind: "numbers",
    min: 1,
    required: true,
    description: "prefix sizes, e.g. [64, 128, 256, 4096]",
  },
  weights: { kind: "numbers", min: 0, description: "weight per dim (default: all 1)" },
});

const FIELDS = ["queryEmbeddings", "passageEmbeddings", "student", "teacher"] as const;

function cutHost(values: HostNumbers, width: number, dim: number): Float64Array {
  const rows = values.length / width;
  const out = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < dim; j++) out[r * dim + j] = values[r * width + j]!;
  }
  return out;
}

/** The inputs with every embedding cut to its first `dim` features. */
export function prefixInputs(inputs: LossInputs, dim: number): LossInputs {
  const out: LossInputs = { ...inputs };
  let any = false;
  for (const field of FIELDS) {
    const v = inputs[field];
    if (v === undefined) continue;
    if (v instanceof Tensor) {
      const width = v.shape[v.rank - 1]!;
      if (dim > width) {
        throw new Error(`loss "matryoshka": dim ${dim} exceeds ${field} ${v}`);
      }
      out[field] = slice(v, -1, 0, dim);
      any = true;
    } else {
      const width = inputs.student?.shape[inputs.student.rank - 1];
      if (width === undefined) {
        throw new Error(`loss "matryoshka": host "${field}" needs "student"`);
      }
      (out as Record<string, unknown>)[field] = cutHost(v as HostNumbers, width, dim);
    }
  }
  if (!any) throw new Error(`loss "matryoshka" needs embedding inputs (${FIELDS.join(", ")})`);
  return out;
}

/** Creates a `matryoshka` loss around an inner loss. */
export function matryoshka(options: ResolvedOptions<typeof matryoshkaOptions>): Loss {
  if (options.dims.length === 0) throw new Error(`loss "matryoshka": option "dims" is empty`);
  if (!options.dims.every(Number.isInteger)) {
    throw new TypeError(`loss "matryoshka": option "dims" must be integers, got ${options.dims}`);
  }
  const weights = options.weights ?? options.dims.map(() => 1);
  if (weights.length !== options.dims.length) {
    throw new Error(
      `loss "matryoshka": ${weights.length} weights for ${options.dims.length} dims`,
    );
  }
  if (resolveLossName(options.loss) === "matryoshka") {
    throw new Error(`loss "matryoshka": the inner loss cannot be "matryoshka"`);
  }
  const inner = options.dims.map(() => createLoss(options.loss, options.loss_options));
  return {
    name: "matryoshka",
    options,
    async compute(inputs: LossInputs) {
      const parts = options.dims.map((d, k) => ({
        name: `dim_${d}`,
        weight: weights[k]!,
        loss: {
          name: inner[k]!.name,
          options: inner[k]!.options,
          async compute(x: LossInputs) {
            const cut = prefixInputs(x, d);
            try {
              return await inner[k]!.compute(cut);
            } finally {
              // The slices are ours; the autograd tape keeps what it needs.
              for (const field of FIELDS) {
                const t = cut[field];
                if (t instanceof Tensor && t !== x[field]) t.dispose();
              }
            }
          },
        } satisfies Loss,
      }));
      return await computeWeighted(parts, inputs);
    },
  };
}
