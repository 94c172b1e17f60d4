/**
 * QLoRA's base model: the seven projections of every decoder layer become
 * {@link Nf4Linear}s; embeddings, norms and the LM head stay float.
 *
 * @module
 */

import { type CausalLM, projectionPath, PROJECTIONS } from "../causal_lm.ts";
import { Nf4Linear } from "./nf4_linear.ts";
import { type Nf4Options, quantizeNf4Weight } from "./nf4_weight.ts";

/** Options of {@link quantizeModelNf4}. */
export interface QuantizeModelOptions extends Nf4Options {
  /** Called after each projection with (done, total, module path). */
  onProgress?: (done: number, total: number, path: string) => void;
}

/**
 * Replaces every projection weight of `model` by an NF4 {@link Nf4Linear} in
 * `model.quantized`, disposing the float weight and removing it from
 * `model.params` (so `parameters()` no longer lists it). Quantisation runs on
 * the host, one weight at a time.
 */
export async function quantizeModelNf4(
  model: CausalLM,
  options: QuantizeModelOptions = {},
): Promise<void> {
  const total = model.config.numLayers * PROJECTIONS.length;
  let done = 0;
  for (let l = 0; l < model.config.numLayers; l++) {
    for (const proj of PROJECTIONS) {
      const path = projectionPath(l, proj);
      const name = `${path}.weight`;
      const w = model.params.get(name);
      if (!w) {
        if (model.quantized.has(path)) continue;
        throw new Error(`quantizeModelNf4: ${name} is missing`);
      }
      const values = (await w.toArray()) as Float32Array;
      const q = quantizeNf4Weight(values, w.shape as [number, number], options);
      model.quantized.set(path, Nf4Linear.upload(q, options));
      w.grad?.dispose();
      w.dispose();
      model.params.delete(name);
      options.onProgress?.(++done, total, path);
    }
  }
}
