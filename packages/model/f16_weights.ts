/**
 * The f16 copies of f32 master weights under mixed precision
 * (`training.fp16`, `CausalLM.autocast = "f16"`): each weight is cast once
 * and reused by every forward until the weight changes, instead of once per
 * use. A trainable weight changes once per optimizer step (`AdamW.step`
 * advances its storage version, see `storageVersion`), so with gradient
 * accumulation the cast happens at the first micro-batch after each update
 * and the others reuse it; a frozen weight (a LoRA/QLoRA base kept in f32) is
 * cast once for the run. A step skipped on inf/NaN gradients leaves the
 * weights, and so the copies, as they were.
 *
 * A weight seen for the first time is cast on its own; after an update, the
 * first stale copy asked for refreshes every stale copy at once, in place,
 * with the multi-tensor `castF16Into` (a few dispatches per step instead of
 * one per weight, and no new buffers).
 *
 * The copies are ordinary pooled tensors, so they count in `memoryStats`
 * (the peak GPU memory of the train log and the benchmarks): half the bytes
 * of the weights they mirror, held between steps.
 *
 * Gradients still reach the master: {@link F16WeightCache.half} records an
 * op whose backward casts the f16 weight gradient to f32, exactly as `cast`'s
 * backward does, so values and gradients are bit for bit those of
 * `cast(weight, "f16")` at every use.
 *
 * @example
 * ```ts ignore
 * import { F16WeightCache } from "@irforge/model";
 * const cache = new F16WeightCache();
 * const w16 = cache.half(w); // casts; a second call before w changes does not
 * cache.clear();
 * ```
 *
 * @module
 */

import {
  cast,
  castF16Into,
  defineOp,
  keep,
  noGrad,
  storageVersion,
  type Tensor,
} from "@irforge/tensor";

interface Entry {
  half: Tensor;
  version: number;
}

// The cached copy as an op output: no dispatch forward, f16 → f32 gradient backward.
const cachedHalfOp = defineOp<{ half: Tensor }>({
  name: "f16_weight",
  forward: (_inputs, { half }) => ({ output: half.shareAs(half.shape) }),
  backward: (dy) => [cast(dy, "f32")],
});

/** f16 copies of f32 weights, refreshed when a weight's storage version moves. */
export class F16WeightCache {
  #entries = new Map<Tensor, Entry>();
  #casts = 0;

  /** Casts done so far (one per weight per change; a counter for tests and logs). */
  get casts(): number {
    return this.#casts;
  }

  /** Weights cached. */
  get size(): number {
    return this.#entries.size;
  }

  /** GPU bytes the copies hold (pool buffer sizes, as `memoryStats` counts them). */
  get bytes(): number {
    let total = 0;
    for (const { half } of this.#entries.values()) total += half.buffer.size;
    return total;
  }

  /**
   * `weight` as f16: the cached copy (cast now if absent or stale), through
   * an op that passes the gradient back to `weight` when it requires one.
   * An f16 weight is returned as is.
   */
  half(weight: Tensor): Tensor {
    if (weight.dtype === "f16") return weight;
    if (weight.dtype !== "f32") {
      throw new Error(`F16WeightCache: ${weight} is neither f32 nor f16`);
    }
    let entry = this.#entries.get(weight);
    if (!entry) {
      this.#sweep();
      entry = { half: noGrad(() => keep(cast(weight, "f16"))), version: storageVersion(weight) };
      this.#entries.set(weight, entry);
      this.#casts++;
    } else if (entry.version !== storageVersion(weight)) this.#refreshStale();
    return cachedHalfOp([weight], { half: entry.half });
  }

  /** Frees every copy. */
  clear(): void {
    for (const { half } of this.#entries.values()) half.dispose();
    this.#entries.clear();
  }

  /**
   * Re-casts every copy whose weight changed, in place. Safe because a copy
   * is only read by ops recorded since the last update, whose backward ran
   * before the optimizer step that made it stale.
   */
  #refreshStale(): void {
    this.#sweep();
    const stale: { source: Tensor; target: Tensor }[] = [];
    for (const [weight, entry] of this.#entries) {
      const version = storageVersion(weight);
      if (entry.version === version) continue;
      stale.push({ source: weight, target: entry.half });
      entry.version = version;
    }
    castF16Into(stale);
    this.#casts += stale.length;
  }

  /** Drops copies of weights that were disposed (a model whose parameters were replaced). */
  #sweep(): void {
    for (const [weight, { half }] of this.#entries) {
      if (!weight.disposed) continue;
      half.dispose();
      this.#entries.delete(weight);
    }
  }
}
