/**
 * Collated rows as the model takes them: the token batch `uploadInputs`
 * uploads and the real-token mask `poolHidden` pools over.
 *
 * @module
 */

import type { PoolingBatch, TokenBatch } from "@irforge/model";
import type { CollatedBatch } from "@irforge/data";

/** Token batch of collated rows (what `uploadInputs` takes). */
export function tokenBatchOf(batch: CollatedBatch): TokenBatch {
  return {
    batch: batch.rows,
    length: batch.length,
    inputIds: batch.inputIds,
    positionIds: batch.position,
    segment: batch.segment,
    block: batch.block,
    kind: batch.kind,
  };
}

/** Which tokens of a collated batch are real, for `poolHidden`. */
export function poolingBatch(batch: CollatedBatch): PoolingBatch {
  return { batch: batch.rows, length: batch.length, attentionMask: batch.attentionMask };
}
