/**
 * Placeholder-free hook for `deno task parity --adapter`: until the LoRA
 * module lands, asking for an adapter is a clear error.
 *
 * @module
 */

import type { CausalLM } from "../causal_lm.ts";
import type { Tensor } from "@irforge/tensor";

/** Loads a peft adapter onto `model`; returns its parameters by fixture gradient name. */
export function attachAdapterForParity(
  _model: CausalLM,
  dir: string,
): Promise<Map<string, Tensor>> {
  return Promise.reject(
    new Error(`parity: LoRA adapters are not supported yet (asked for ${dir})`),
  );
}
