/**
 * A version number per tensor storage that advances whenever the storage is
 * overwritten in place by the host (`Tensor.write`) or by an optimizer step
 * (`AdamW.step`), so that something derived from a weight (the f16 copy of
 * an f32 master under mixed precision) can tell when it went stale without
 * reading the weight back. Views share their storage's version.
 *
 * Kernels that write into an existing tensor's buffer outside these two
 * paths must call {@link markUpdated} themselves.
 *
 * @example
 * ```ts
 * import { markUpdated, storageVersion, Tensor } from "@irforge/tensor";
 * const w = Tensor.fromArray([1, 2], [2]);
 * const seen = storageVersion(w);
 * w.write(new Float32Array([3, 4]));
 * console.log(storageVersion(w) !== seen); // true
 * ```
 *
 * @module
 */

import type { Tensor } from "./tensor.ts";

const versions = new WeakMap<GPUBuffer, number>();

/** The current version of `t`'s storage (0 until it is first overwritten). */
export function storageVersion(t: Tensor): number {
  return versions.get(t.buffer) ?? 0;
}

/** Advances the storage version of each of `tensors` (their data changed in place). */
export function markUpdated(tensors: Iterable<Tensor>): void {
  for (const t of tensors) versions.set(t.buffer, (versions.get(t.buffer) ?? 0) + 1);
}
