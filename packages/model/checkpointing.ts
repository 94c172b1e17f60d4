/**
 * Gradient (activation) checkpointing for {@link CausalLM}: the forward pass
 * keeps only each decoder layer's input hidden state on the tape and
 * recomputes the layer's activations during backward, so activation memory
 * grows with the number of layers × `[B, T, hidden]` instead of every
 * intermediate (q/k/v, attention output, the MLP's `[B, T, intermediate]`
 * tensors). Costs one extra forward per layer.
 *
 * @module
 */

import {
  checkpoint,
  isGradEnabled,
  isReplayableState,
  type ReplayableState,
  rmsNorm,
  type Tensor,
  tidy,
} from "@irforge/tensor";
import type { CausalLM, ForwardOptions, ForwardResult } from "./causal_lm.ts";
import { LoraAdapter } from "./lora/adapter.ts";
import type { ModelInputs } from "./model_inputs.ts";

/**
 * {@link CausalLM.forward} with each decoder layer run inside `checkpoint`:
 * same outputs and the same gradients (bit-identical on the same device).
 * The mask and position ids are closed over (they need no gradient); the
 * layer whose attention scores are asked for runs without checkpointing,
 * since its scores leave the layer. With grad mode off it is a plain forward.
 *
 * An adapter whose output depends on host state it advances (LoRA dropout
 * draws each mask's seed from a call counter) must implement
 * `ReplayableState` so that the recomputation sees the same masks; a
 * training LoRA adapter with dropout that does not is refused.
 */
export function forwardWithCheckpointing(
  model: CausalLM,
  inputs: ModelInputs,
  options: ForwardOptions = {},
): ForwardResult {
  const numLayers = model.config.numLayers;
  const wanted = options.attentionScores;
  if (wanted && (wanted.layer < 0 || wanted.layer >= numLayers)) {
    throw new Error(
      `model: attention scores asked for layer ${wanted.layer}, the model has ${numLayers}`,
    );
  }
  const norm = model.params.get("model.norm.weight");
  if (!norm) throw new Error("model: parameter model.norm.weight is missing");
  const adapter = model.adapter;
  const state: ReplayableState[] = isReplayableState(adapter) ? [adapter] : [];
  if (
    isGradEnabled() && state.length === 0 && adapter instanceof LoraAdapter &&
    adapter.training && adapter.config.loraDropout > 0
  ) {
    throw new Error(
      "gradient checkpointing: the LoRA adapter applies dropout with a running seed counter but cannot rewind it (no saveState/restoreState), so the recomputed layers would draw other masks; set lora dropout to 0 or turn checkpointing off",
    );
  }
  return tidy(() => {
    let h = model.embed(inputs.inputIds);
    let attentionScores: Tensor | undefined;
    for (let l = 0; l < numLayers; l++) {
      if (wanted?.layer === l) {
        const out = model.layer(l, h, inputs, wanted.rows);
        h = out.h;
        attentionScores = out.scores;
        if (options.stopAfterScores) return { attentionScores };
      } else {
        h = checkpoint(([x]) => model.layer(l, x!, inputs).h, [h], { state });
      }
    }
    const normed = rmsNorm(h, norm, model.config.rmsNormEps);
    if (options.output === "hidden") return { hidden: normed, attentionScores };
    return { logits: model.lmHead(normed), attentionScores };
  });
}
