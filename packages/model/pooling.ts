/**
 * Pooled sequence embeddings from a decoder's hidden states, as bi-encoders
 * (Trove, Tevatron, RepLLaMA) use them: the mean over real tokens, the last
 * real token (with an EOS appended, see {@link appendEos}), or the first real
 * token, optionally L2-normalised. Differentiable; works with left or right
 * padding.
 *
 * @module
 */

import {
  cast,
  indexSelect,
  l2Normalize,
  matmul,
  PAD_SEGMENT,
  reshape,
  Tensor,
  tidy,
} from "@irforge/tensor";

/** How a row of hidden states becomes one vector. */
export type PoolingMode = "mean" | "last" | "cls";

/** The pooling modes, for option parsing. */
export const POOLING_MODES: readonly PoolingMode[] = ["mean", "last", "cls"];

/**
 * Which tokens of a `[batch, length]` batch are real. Give one of
 * `attentionMask` (HF: 1 token, 0 pad), `segment` (−1 pad, as the collator
 * emits; one sequence per row) or `lengths` (right padding); with none, every
 * token is real.
 */
export interface PoolingBatch {
  /** Rows. */
  batch: number;
  /** Tokens per row. */
  length: number;
  /** HF attention mask, flat `[B·T]`. */
  attentionMask?: ArrayLike<number>;
  /** Segment id per token, flat `[B·T]`, negative for pads. */
  segment?: ArrayLike<number>;
  /** Real tokens per row, at the start of the row. */
  lengths?: ArrayLike<number>;
}

/** Per row: the positions of its real tokens (ascending). Throws on a row without any. */
export function realTokenPositions(info: PoolingBatch): number[][] {
  const { batch: B, length: T } = info;
  const given = [info.attentionMask, info.segment, info.lengths].filter((x) => x !== undefined);
  if (given.length > 1) {
    throw new Error("pooling: give one of attentionMask, segment or lengths, not several");
  }
  const flat = info.attentionMask ?? info.segment;
  if (flat !== undefined && flat.length !== B * T) {
    throw new Error(`pooling: mask has ${flat.length} entries for batch ${B} × length ${T}`);
  }
  if (info.lengths !== undefined && info.lengths.length !== B) {
    throw new Error(`pooling: ${info.lengths.length} lengths for batch ${B}`);
  }
  const rows: number[][] = [];
  for (let b = 0; b < B; b++) {
    const real: number[] = [];
    let segmentOfRow: number | undefined;
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      let isReal = true;
      if (info.attentionMask) isReal = info.attentionMask[i] !== 0;
      else if (info.segment) {
        const seg = info.segment[i]!;
        isReal = seg >= 0 && seg !== PAD_SEGMENT;
        if (isReal) {
          if (segmentOfRow !== undefined && seg !== segmentOfRow) {
            throw new Error(
              `pooling: row ${b} packs several sequences (segments ${segmentOfRow} and ${seg}); pooling takes one sequence per row`,
            );
          }
          segmentOfRow = seg;
        }
      } else if (info.lengths) isReal = t < info.lengths[b]!;
      if (isReal) real.push(t);
    }
    if (real.length === 0) throw new Error(`pooling: row ${b} has no real token`);
    rows.push(real);
  }
  return rows;
}

/**
 * Pools hidden states `[B, T, H]` into `[B, H]` (f32):
 * - `mean`: the average over the row's real tokens (a host-built `[B, 1, T]`
 *   weight matrix times the hidden states, one batched matmul);
 * - `last`: the row's last real token (the appended EOS with right padding,
 *   the final position with left padding);
 * - `cls`: the row's first real token.
 *
 * With `normalize`, each pooled row is scaled to unit L2 norm. Gradients flow
 * to `hidden`; the result is a new tensor owned by the caller.
 */
export function poolHidden(
  hidden: Tensor,
  info: PoolingBatch,
  mode: PoolingMode,
  normalize: boolean,
): Tensor {
  if (hidden.rank !== 3) throw new Error(`poolHidden: hidden must be [B, T, H], got ${hidden}`);
  const [B, T, H] = hidden.shape as [number, number, number];
  if (B !== info.batch || T !== info.length) {
    throw new Error(
      `poolHidden: hidden ${hidden} does not match the batch (${info.batch} × ${info.length})`,
    );
  }
  if (!POOLING_MODES.includes(mode)) {
    throw new Error(`poolHidden: unknown mode "${mode}" (expected ${POOLING_MODES.join(", ")})`);
  }
  const rows = realTokenPositions(info);
  return tidy(() => {
    const x = hidden.dtype === "f32" ? hidden : cast(hidden, "f32");
    let pooled: Tensor;
    if (mode === "mean") {
      const weights = new Float32Array(B * T);
      rows.forEach((real, b) => {
        for (const t of real) weights[b * T + t] = 1 / real.length;
      });
      const w = Tensor.fromArray(weights, [B, 1, T]);
      pooled = reshape(matmul(w, x), [B, H]);
    } else {
      const picks = Int32Array.from(
        rows.map((real, b) => b * T + (mode === "last" ? real[real.length - 1]! : real[0]!)),
      );
      pooled = indexSelect(reshape(x, [B * T, H]), 0, Tensor.fromArray(picks, [B], "i32"));
    }
    return normalize ? l2Normalize(pooled) : pooled;
  });
}

/**
 * Appends `eosId` to `ids` for last-token pooling, as Trove/Tevatron do
 * (the EOS hidden state summarises the sequence). With `maxLength`, the ids
 * are first cut to `maxLength − 1` so the EOS always fits. Returns a new
 * array.
 */
export function appendEos(ids: readonly number[], eosId: number, maxLength?: number): number[] {
  if (!Number.isInteger(eosId) || eosId < 0) throw new Error(`appendEos: bad eos id ${eosId}`);
  if (maxLength !== undefined && (!Number.isInteger(maxLength) || maxLength < 1)) {
    throw new Error(`appendEos: maxLength must be a positive integer, got ${maxLength}`);
  }
  const kept = maxLength === undefined ? ids : ids.slice(0, maxLength - 1);
  return [...kept, eosId];
}
