/**
 * Gradient (activation) checkpointing for {@link CausalLM}: the forward pass
 * keeps only each decoder layer's input hidden state on the tape and
 * recomputes the layer's activations during backward, so activation memory
 * grows with the number of layers × `[B, T, hidden]` instead of every
 * intermediate (q/k/v, attention output, the MLP's `[B, T, intermediate]`
 * tensors). Costs one extra forward per layer.
 *
 * Every RMSNorm but layer 0's input norm is fused with the residual add
 * before it, so between layers the stream travels as two tensors (the
 * stream and the MLP output still to be added, `ResidualStream`); each
 * checkpoint keeps both, one more `[B, T, hidden]` per layer than a summed
 * stream would, so that the recomputation fuses the add with the norm too.
 *
 * @module
 */

import type { CausalLM, ForwardOptions, ForwardResult } from "./causal_lm.ts";
import type { ModelInputs } from "./model_inputs.ts";

/**
 * {@link CausalLM.forward} with each decoder layer run inside `checkpoint`
 * (see {@link CausalLM.gradientCheckpointing}): same outputs and the same
 * gradients (bit-identical on the same device). The mask and position ids
 * are closed over; the layer whose attention scores are asked for runs
 * without checkpointing, since its scores leave the layer. An adapter with
 * host state it advances (LoRA dropout seeds) is rewound for the re-run.
 */
export function forwardWithCheckpointing(
  model: CausalLM,
  inputs: ModelInputs,
  options: ForwardOptions = {},
): ForwardResult {
  const before = model.gradientCheckpointing;
  model.gradientCheckpointing = true;
  try {
    return model.forward(inputs, options);
  } finally {
    model.gradientCheckpointing = before;
  }
}
