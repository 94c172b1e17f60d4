/**
 * Model inputs on the GPU: token ids, RoPE position ids and the attention
 * mask metadata (segments, blocks, kinds) the fused kernel reads.
 *
 * @module
 */

import { AttentionMask, BlockKind, type MaskMetadata, PAD_SEGMENT, Tensor } from "@irforge/tensor";

/** A batch ready for {@link CausalLM.forward}. Owns its tensors and mask. */
export interface ModelInputs {
  /** i32 `[B, T]`. */
  inputIds: Tensor;
  /** i32 `[B, T]` RoPE positions. */
  positionIds: Tensor;
  /** Mask metadata resident on the device. */
  mask: AttentionMask;
  /** Batch rows. */
  batch: number;
  /** Tokens per row. */
  length: number;
  /** The largest position id (RoPE tables must cover it). */
  maxPosition: number;
}

/** Per-token arrays of a batch, flat `[B·T]` (what `@irforge/data`'s collator emits). */
export interface TokenBatch {
  /** Rows (B). */
  batch: number;
  /** Tokens per row (T). */
  length: number;
  /** Token ids, `[B·T]` row-major. */
  inputIds: Int32Array;
  /** Defaults to 0..T−1 in every row. */
  positionIds?: Int32Array;
  /** Packed-sequence id per token, −1 for pads; defaults to 0 (or from `attentionMask`). */
  segment?: Int32Array;
  /** BlockRank block id per token; default 0. */
  block?: Int32Array;
  /** BlockRank kind per token (0 prefix, 1 local, 2 global); default global (causal). */
  kind?: Int32Array;
  /** HF attention_mask (1 token, 0 pad), used when `segment` is absent. */
  attentionMask?: Int32Array;
}

/**
 * Builds the mask metadata of a batch: causal within each segment, with the
 * BlockRank visibility rule where kinds say so. Pads (segment −1) get kind
 * global and block 0: they attend to nothing whatever their kind.
 */
export function maskMetadataOf(batch: TokenBatch, window: number | null): MaskMetadata {
  const n = batch.batch * batch.length;
  const segment = new Int32Array(n);
  const block = new Int32Array(n);
  const kind = new Int32Array(n).fill(BlockKind.global);
  for (let i = 0; i < n; i++) {
    const seg = batch.segment
      ? batch.segment[i]!
      : batch.attentionMask && batch.attentionMask[i] === 0
      ? PAD_SEGMENT
      : 0;
    segment[i] = seg < 0 ? PAD_SEGMENT : seg;
    if (seg < 0) continue;
    if (batch.block) block[i] = batch.block[i]!;
    if (batch.kind) kind[i] = batch.kind[i]!;
  }
  return { batch: batch.batch, length: batch.length, segment, block, kind, window: window ?? 0 };
}

/** Uploads a token batch. The caller disposes the result with {@link disposeInputs}. */
export function uploadInputs(batch: TokenBatch, window: number | null): ModelInputs {
  const { batch: B, length: T } = batch;
  if (batch.inputIds.length !== B * T) {
    throw new Error(`inputs: ${batch.inputIds.length} ids for batch ${B} × length ${T}`);
  }
  let positions = batch.positionIds;
  if (!positions) {
    positions = new Int32Array(B * T);
    for (let i = 0; i < B * T; i++) positions[i] = i % T;
  }
  const meta = maskMetadataOf(batch, window);
  return {
    inputIds: Tensor.fromArray(batch.inputIds, [B, T], "i32").keep(),
    positionIds: Tensor.fromArray(positions, [B, T], "i32").keep(),
    mask: new AttentionMask(meta),
    batch: B,
    length: T,
    maxPosition: positions.reduce((m, p) => Math.max(m, p), 0),
  };
}

/** Plain causal inputs from rows of ids (all the same length), with an optional HF attention mask. */
export function causalInputs(
  ids: number[][],
  options: { attentionMask?: number[][]; window?: number | null } = {},
): ModelInputs {
  const B = ids.length, T = ids[0]?.length ?? 0;
  const flat = new Int32Array(B * T);
  ids.forEach((row, b) => {
    if (row.length !== T) throw new Error(`inputs: row ${b} has ${row.length} ids, expected ${T}`);
    flat.set(row, b * T);
  });
  const attentionMask = options.attentionMask
    ? Int32Array.from(options.attentionMask.flat())
    : undefined;
  return uploadInputs(
    { batch: B, length: T, inputIds: flat, attentionMask },
    options.window ?? null,
  );
}

/** Frees the tensors and the mask of `inputs`. */
export function disposeInputs(inputs: ModelInputs): void {
  inputs.inputIds.dispose();
  inputs.positionIds.dispose();
  inputs.mask.destroy();
}
