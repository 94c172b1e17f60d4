/**
 * NEFTune (Jain et al. 2023, "NEFTune: Noisy Embeddings Improve Instruction
 * Finetuning"): during training only, the input embeddings get uniform
 * noise `uniform(−1, 1) · α / √(L·d)`, where `d` is the hidden size and `L`
 * the number of real (non-pad) tokens of the row, as the paper's reference
 * code computes it per sequence. Pads get no noise. Evaluation and
 * generation never call this, so they stay noise-free.
 *
 * The noise is drawn on the host from one 32-bit seed taken from the
 * trainer's checkpointed RNG, so a resumed run adds exactly the same noise.
 *
 * @module
 */

import { add, randArray, Tensor, tidy } from "@irforge/tensor";
import type { CausalLM, ModelInputs } from "@irforge/model";
import type { Rng } from "../rng.ts";

/** The noise bound `α / √(L·d)` of a row with `realTokens` tokens and hidden size `hidden`. */
export function neftuneMagnitude(alpha: number, realTokens: number, hidden: number): number {
  if (!(alpha > 0)) throw new RangeError(`NEFTune alpha must be > 0, got ${alpha}`);
  if (realTokens <= 0) return 0;
  return alpha / Math.sqrt(realTokens * hidden);
}

/** Shape and padding of a batch the noise is drawn for. */
export interface NoiseLayout {
  /** Rows. */
  batch: number;
  /** Tokens per row. */
  length: number;
  /** Hidden size `d`. */
  hidden: number;
  /** 1 for real tokens, 0 for pads, `[batch·length]` row-major. */
  attentionMask: ArrayLike<number>;
}

/**
 * Noise `[batch, length, hidden]` (flat): `uniform(−1, 1)` from `seed`,
 * scaled per row by {@link neftuneMagnitude}; zero on pads.
 */
export function neftuneNoise(layout: NoiseLayout, alpha: number, seed: number): Float32Array {
  const { batch, length, hidden, attentionMask } = layout;
  if (attentionMask.length !== batch * length) {
    throw new RangeError(
      `attentionMask has ${attentionMask.length} entries for ${batch}×${length}`,
    );
  }
  const unit = randArray(batch * length * hidden, seed, -1, 1);
  const noise = new Float32Array(unit.length);
  for (let b = 0; b < batch; b++) {
    let real = 0;
    for (let t = 0; t < length; t++) real += attentionMask[b * length + t]! > 0 ? 1 : 0;
    const magnitude = neftuneMagnitude(alpha, real, hidden);
    for (let t = 0; t < length; t++) {
      if (!(attentionMask[b * length + t]! > 0)) continue;
      const at = (b * length + t) * hidden;
      for (let k = 0; k < hidden; k++) noise[at + k] = unit[at + k]! * magnitude;
    }
  }
  return noise;
}

/**
 * Training-time input embeddings: `embed(ids)` plus NEFTune noise drawn
 * with a seed from `rng` (one draw per call). Pass the result as
 * `forward(inputs, {inputsEmbeds})`; the caller owns it.
 */
export function noisyEmbeddings(
  model: CausalLM,
  inputs: ModelInputs,
  attentionMask: ArrayLike<number>,
  alpha: number,
  rng: Rng,
): Tensor {
  const hidden = model.config.hiddenSize;
  const noise = neftuneNoise(
    { batch: inputs.batch, length: inputs.length, hidden, attentionMask },
    alpha,
    rng.next(),
  );
  return tidy(() =>
    add(
      model.embed(inputs.inputIds),
      Tensor.fromArray(noise, [inputs.batch, inputs.length, hidden], "f32"),
    )
  );
}
