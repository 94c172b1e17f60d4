/**
 * Weighted sums of losses: `combined` from config (e.g.
 * `{weights: {lm: 1, blockrank_aux: 0.1}}` → lm + 0.1·blockrank_aux), each
 * part reported unweighted in `parts` and its metrics as `part/metric`.
 *
 * @module
 */

import { add, scale, type Tensor, tidy } from "@irforge/tensor";
import { defineOptions, type ResolvedOptions } from "./options.ts";
import { createLoss, resolveLossName } from "./registry.ts";
import type { Loss, LossInputs, LossOutput } from "./types.ts";

/** One weighted part. */
export interface WeightedPart {
  /** Name in `parts` and metric prefixes. */
  name: string;
  /** Weight (0 = computed and reported, left out of the total). */
  weight: number;
  /** The loss. */
  loss: Loss;
}

/** Σ weight·part over `parts`, all run on the same inputs. */
export async function computeWeighted(
  parts: readonly WeightedPart[],
  inputs: LossInputs,
): Promise<LossOutput> {
  const outParts: Record<string, Tensor> = {};
  const metrics: Record<string, number | Tensor> = {};
  const results: LossOutput[] = [];
  for (const part of parts) {
    const out = await part.loss.compute(inputs);
    results.push(out);
    outParts[part.name] = out.loss;
    for (const [k, v] of Object.entries(out.parts ?? {})) outParts[`${part.name}/${k}`] = v;
    for (const [k, v] of Object.entries(out.metrics ?? {})) metrics[`${part.name}/${k}`] = v;
  }
  const loss = tidy(() => {
    let total: Tensor | undefined;
    parts.forEach((part, i) => {
      if (part.weight === 0) return;
      // Always a new tensor (also for weight 1): the parts are handed out separately.
      const term = scale(results[i]!.loss, part.weight);
      total = total === undefined ? term : add(total, term);
    });
    if (total === undefined) throw new Error("a weighted loss needs at least one non-zero weight");
    return total;
  });
  return { loss, parts: outParts, metrics };
}

/** Options of `combined`. */
export const combinedOptions = defineOptions({
  weights: {
    kind: "weights",
    min: 0,
    required: true,
    description: "loss name (or alias) → weight, e.g. {lm: 1, blockrank_aux: 0.1}",
  },
  losses: {
    kind: "object",
    default: {},
    description: "loss name → its options, e.g. {blockrank_aux: {temperature: 0.05}}",
  },
});

/** Creates a `combined` loss from weights and per-part options. */
export function combined(options: ResolvedOptions<typeof combinedOptions>): Loss {
  const names = Object.keys(options.weights);
  if (names.length === 0) throw new Error(`loss "combined": option "weights" names no loss`);
  for (const key of Object.keys(options.losses)) {
    if (!names.includes(key)) {
      throw new Error(
        `loss "combined": option "losses" configures "${key}", which is not in "weights" ` +
          `(${names.join(", ")})`,
      );
    }
  }
  const parts = names.map((name) => {
    const partOptions = options.losses[name] ?? {};
    if (typeof partOptions !== "object" || partOptions === null || Array.isArray(partOptions)) {
      throw new TypeError(`loss "combined": options of part "${name}" must be a map`);
    }
    if (resolveLossName(name) === "combined") {
      throw new Error(`loss "combined": a part cannot itself be "combined"`);
    }
    return {
      name,
      weight: options.weights[name]!,
      loss: createLoss(name, partOptions as Record<string, unknown>),
    };
  });
  return {
    name: "combined",
    options,
    compute: (inputs) => computeWeighted(parts, inputs),
  };
}
