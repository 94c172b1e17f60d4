/**
 * Token cross-entropy for language modelling / SFT: mean over targets that
 * are not −100, wrapping the engine's fused `crossEntropy`.
 *
 * The caller does the causal shift (HF: logits[:, :-1] against
 * labels[:, 1:]); this loss pairs logits row n with targets[n]. Logits may be
 * `[N, V]` or `[B, T, V]` (flattened to `[B·T, V]`). When every target is
 * ignored the loss is 0 (the engine's choice; PyTorch gives NaN).
 *
 * @module
 */

import { crossEntropy, reshape, Tensor, tidy } from "@irforge/tensor";
import { need } from "./compose.ts";
import { defineOptions, type ResolvedOptions } from "./options.ts";
import type { Loss, LossInputs, LossOutput } from "./types.ts";

/** Options of `lm`. */
export const lmOptions = defineOptions({
  ignore_index: {
    kind: "integer",
    default: -100,
    description: "target value whose positions are skipped",
  },
});

/** Creates an `lm` loss. Inputs: `logits` `[..., V]`, `targets` (i32 tensor or host numbers). */
export function lm(options: ResolvedOptions<typeof lmOptions>): Loss {
  return {
    name: "lm",
    options,
    compute(inputs: LossInputs): Promise<LossOutput> {
      const logits = need(inputs, "logits", "lm");
      const given = need(inputs, "targets", "lm");
      const V = logits.shape[logits.rank - 1]!;
      const rows = logits.size / V;
      let tokens: number | undefined;
      const loss = tidy(() => {
        let targets: Tensor;
        if (given instanceof Tensor) targets = given;
        else {
          if (given.length !== rows) {
            throw new Error(`loss "lm": ${given.length} targets for ${rows} logits rows`);
          }
          const ids = Int32Array.from(given);
          ids.forEach((t, i) => {
            if (t !== options.ignore_index && (t < 0 || t >= V || !Number.isInteger(given[i]))) {
              throw new Error(`loss "lm": targets[${i}] = ${given[i]} is outside [0, ${V})`);
            }
          });
          tokens = ids.reduce((n, t) => n + (t === options.ignore_index ? 0 : 1), 0);
          targets = Tensor.fromArray(ids, [rows], "i32");
        }
        const flat = logits.rank === 2 ? logits : reshape(logits, [rows, V]);
        return crossEntropy(flat, targets, { ignoreIndex: options.ignore_index });
      });
      const metrics: Record<string, number> = {};
      if (tokens !== undefined) metrics.tokens = tokens;
      return Promise.resolve({ loss, metrics });
    },
  };
}
