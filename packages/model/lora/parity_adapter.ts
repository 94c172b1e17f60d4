/**
 * The hook `deno task parity --adapter DIR` uses: loads a peft adapter onto
 * the model (base frozen) and names its factors as peft's live parameters,
 * which is how the fixture's gradients are keyed
 * (`grad.base_model.model.<path>.lora_A.default.weight`).
 *
 * @module
 */

import type { Tensor } from "@irforge/tensor";
import type { CausalLM } from "../causal_lm.ts";
import { loadLoraAdapter } from "./io.ts";

/** Loads a peft adapter onto `model`; returns its parameters by fixture gradient name. */
export async function attachAdapterForParity(
  model: CausalLM,
  dir: string,
): Promise<Map<string, Tensor>> {
  const adapter = await loadLoraAdapter(model, dir);
  return adapter.namedParameters("default");
}
