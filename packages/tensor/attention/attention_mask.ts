/**
 * Mask metadata uploaded to the GPU, together with the tile-skip tables of each
 * tiling it is used with (built on first use and cached).
 *
 * Buffer layout (i32 words): `[B·T·4]` per-token `(segment, block, kind, 0)`,
 * then the forward tile lists (offsets, entries), then the backward ones.
 * Offsets are absolute word indices into the same buffer.
 *
 * @module
 */

import { getRuntime, type Runtime } from "../runtime.ts";
import { type MaskMetadata, validateMaskMetadata } from "./mask_metadata.ts";
import { buildTileTable, type TileTable } from "./tile_table.ts";

/** A mask buffer laid out for one tiling. */
export interface MaskBufferForTiling {
  /** The storage buffer (metadata + tile lists). */
  buffer: GPUBuffer;
  /** The CPU tile table it holds. */
  table: TileTable;
  /** Word offset of the forward lists' offsets. */
  forwardTable: number;
  /** Word offset of the backward lists' offsets. */
  backwardTable: number;
}

/**
 * Mask metadata resident on the current device (its buffers come from the
 * tensor pool, so a mask per step creates no GPU buffer once warm); call
 * {@linkcode AttentionMask.destroy} when done.
 */
export class AttentionMask {
  /** The CPU metadata. */
  readonly meta: MaskMetadata;
  readonly #runtime: Runtime;
  readonly #byTiling = new Map<string, MaskBufferForTiling>();

  /** Validates `meta` and keeps it for upload on first use (after `await getDevice()`). */
  constructor(meta: MaskMetadata) {
    validateMaskMetadata(meta);
    this.#runtime = getRuntime();
    this.meta = meta;
  }

  /** Batch rows (B). */
  get batch(): number {
    return this.meta.batch;
  }

  /** Tokens per row (T). */
  get length(): number {
    return this.meta.length;
  }

  /** The buffer for tiles of `queryTile` × `keyTile` (0 × 0: metadata only). */
  forTiling(queryTile: number, keyTile: number): MaskBufferForTiling {
    const key = `${queryTile}x${keyTile}`;
    let entry = this.#byTiling.get(key);
    if (entry !== undefined) return entry;
    const { batch, length } = this.meta;
    const metaWords = 4 * batch * length;
    const table: TileTable = queryTile > 0 ? buildTileTable(this.meta, queryTile, keyTile) : {
      queryTile: 0,
      keyTile: 0,
      numQueryTiles: 0,
      numKeyTiles: 0,
      forward: { offsets: new Uint32Array(1), entries: new Uint32Array(0) },
      backward: { offsets: new Uint32Array(1), entries: new Uint32Array(0) },
      activeCount: 0,
      fullCount: 0,
    };
    const { forward, backward } = table;
    const forwardTable = metaWords;
    const forwardEntries = forwardTable + forward.offsets.length;
    const backwardTable = forwardEntries + forward.entries.length;
    const backwardEntries = backwardTable + backward.offsets.length;
    const words = new Uint32Array(backwardEntries + backward.entries.length);
    const asInt = new Int32Array(words.buffer);
    for (let t = 0; t < batch * length; t++) {
      asInt[4 * t] = this.meta.segment[t]!;
      asInt[4 * t + 1] = this.meta.block[t]!;
      asInt[4 * t + 2] = this.meta.kind[t]!;
    }
    forward.offsets.forEach((o, n) => words[forwardTable + n] = forwardEntries + o);
    words.set(forward.entries, forwardEntries);
    backward.offsets.forEach((o, n) => words[backwardTable + n] = backwardEntries + o);
    words.set(backward.entries, backwardEntries);
    const buffer = this.#runtime.pool.acquire(words.byteLength, "attention mask");
    this.#runtime.write(buffer, words);
    entry = { buffer, table, forwardTable, backwardTable };
    this.#byTiling.set(key, entry);
    return entry;
  }

  /** Returns every buffer made for this mask to the pool (queued work may still read them). */
  destroy(): void {
    for (const entry of this.#byTiling.values()) this.#runtime.pool.release(entry.buffer);
    this.#byTiling.clear();
  }
}
