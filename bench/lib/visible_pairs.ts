/**
 * The attention FLOP convention of the benchmarks: only visible
 * (query, key) pairs count. Forward 4·D FLOPs per pair and query head
 * (q·k and p·v), backward 10·D (FlashAttention-2's count: it recomputes
 * q·k, then dV, dP, dQ and dK).
 *
 * @module
 */

import { BlockKind, type MaskMetadata, PAD_SEGMENT } from "@irforge/tensor";

/** FLOPs per visible pair, per query head and head dimension, of the forward. */
export const FORWARD_FLOPS_PER_PAIR_DIM = 4;
/** FLOPs per visible pair, per query head and head dimension, of the backward. */
export const BACKWARD_FLOPS_PER_PAIR_DIM = 10;

/**
 * Number of (query, key) pairs `meta` makes visible, summed over the batch,
 * in one pass over the tokens (no T² scan). Sliding windows are not handled.
 *
 * @throws {Error} when `meta.window` is not 0.
 */
export function visiblePairs(meta: MaskMetadata): number {
  if (meta.window !== 0) throw new Error("visiblePairs: sliding windows are not supported");
  let pairs = 0;
  for (let b = 0; b < meta.batch; b++) {
    // Per segment: tokens so far, prefix tokens so far, per block: tokens and prefix tokens so far.
    const seen = new Map<
      number,
      { all: number; prefix: number; block: Map<number, number>; blockPrefix: Map<number, number> }
    >();
    for (let t = 0; t < meta.length; t++) {
      const i = b * meta.length + t;
      const seg = meta.segment[i]!;
      if (seg === PAD_SEGMENT) continue;
      let s = seen.get(seg);
      if (!s) {
        s = { all: 0, prefix: 0, block: new Map(), blockPrefix: new Map() };
        seen.set(seg, s);
      }
      const kind = meta.kind[i]!, block = meta.block[i]!;
      s.all++;
      s.block.set(block, (s.block.get(block) ?? 0) + 1);
      if (kind === BlockKind.prefix) {
        s.prefix++;
        s.blockPrefix.set(block, (s.blockPrefix.get(block) ?? 0) + 1);
      }
      // Keys j ≤ i of the segment that are prefix or in the same block (inclusion–exclusion).
      pairs += kind === BlockKind.global
        ? s.all
        : s.prefix + s.block.get(block)! - (s.blockPrefix.get(block) ?? 0);
    }
  }
  return pairs;
}

/** Forward and backward FLOPs of attention over `pairs` visible pairs. */
export function attentionFlops(
  pairs: number,
  heads: number,
  headDim: number,
): { forward: number; backward: number } {
  return {
    forward: FORWARD_FLOPS_PER_PAIR_DIM * headDim * heads * pairs,
    backward: BACKWARD_FLOPS_PER_PAIR_DIM * headDim * heads * pairs,
  };
}
