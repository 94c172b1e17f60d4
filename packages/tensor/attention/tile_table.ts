/**
 * Tile-skip tables: for each (query tile, key tile) pair of a batch row, whether
 * any (query, key) pair in it is visible, and whether all are (so the kernel may
 * skip per-element mask evaluation). Built on the CPU from per-tile summaries,
 * with an exact pair scan only for tiles the summaries cannot decide, so the
 * cost grows with the number of partially-masked tiles (near-diagonal ones).
 *
 * @module
 */

import { BlockKind, isVisible, type MaskMetadata } from "./mask_metadata.ts";

/** Bit set in a table entry when every pair of the tile pair is visible. */
export const FULL_TILE_BIT = 1 << 30;

/**
 * Compressed lists of active tiles. For the forward table, list `b·numQueryTiles + qt`
 * holds the key tiles active for query tile `qt` of row `b`; for the backward
 * table, list `b·numKeyTiles + kt` holds the query tiles active for key tile `kt`.
 * List `n` is `entries[offsets[n] .. offsets[n+1])`; an entry is the tile index,
 * OR {@linkcode FULL_TILE_BIT} when the tile pair is fully visible.
 */
export interface TileLists {
  /** Start of each list in `entries`, plus one final end offset. */
  offsets: Uint32Array;
  /** Tile indices, ascending within each list, with the full bit. */
  entries: Uint32Array;
}

/** Both directions of the tile table for one tiling. */
export interface TileTable {
  /** Query rows per tile. */
  queryTile: number;
  /** Keys per tile. */
  keyTile: number;
  /** ⌈T / queryTile⌉. */
  numQueryTiles: number;
  /** ⌈T / keyTile⌉. */
  numKeyTiles: number;
  /** Query tile → active key tiles, per batch row. */
  forward: TileLists;
  /** Key tile → active query tiles, per batch row. */
  backward: TileLists;
  /** Number of active (query tile, key tile) pairs over the whole batch. */
  activeCount: number;
  /** Number of those that are fully visible. */
  fullCount: number;
}

/** Per-tile summary: ranges of the metadata of its in-range tokens. */
interface TileSummary {
  first: number;
  last: number;
  minSegment: number;
  maxSegment: number;
  minBlock: number;
  maxBlock: number;
  allGlobal: boolean;
  allPrefix: boolean;
  anyGlobal: boolean;
  anyPrefix: boolean;
  complete: boolean;
}

function summarize(meta: MaskMetadata, b: number, start: number, size: number): TileSummary {
  const last = Math.min(start + size, meta.length) - 1;
  const s: TileSummary = {
    first: start,
    last,
    minSegment: Infinity,
    maxSegment: -Infinity,
    minBlock: Infinity,
    maxBlock: -Infinity,
    allGlobal: true,
    allPrefix: true,
    anyGlobal: false,
    anyPrefix: false,
    complete: start + size <= meta.length,
  };
  for (let t = start; t <= last; t++) {
    const n = b * meta.length + t;
    s.minSegment = Math.min(s.minSegment, meta.segment[n]!);
    s.maxSegment = Math.max(s.maxSegment, meta.segment[n]!);
    s.minBlock = Math.min(s.minBlock, meta.block[n]!);
    s.maxBlock = Math.max(s.maxBlock, meta.block[n]!);
    s.allGlobal &&= meta.kind[n] === BlockKind.global;
    s.allPrefix &&= meta.kind[n] === BlockKind.prefix;
    s.anyGlobal ||= meta.kind[n] === BlockKind.global;
    s.anyPrefix ||= meta.kind[n] === BlockKind.prefix;
  }
  return s;
}

/** 0 = no pair visible, 1 = some, 2 = all (only for tiles wholly inside the row). */
function classify(
  meta: MaskMetadata,
  b: number,
  query: TileSummary,
  key: TileSummary,
): 0 | 1 | 2 {
  // Decided by summaries alone: no pair can be visible.
  if (query.maxSegment < 0 || key.maxSegment < 0) return 0;
  if (key.first > query.last) return 0;
  if (query.maxSegment < key.minSegment || key.maxSegment < query.minSegment) return 0;
  if (meta.window > 0 && query.first - key.last >= meta.window) return 0;
  const blocksApart = query.maxBlock < key.minBlock || key.maxBlock < query.minBlock;
  if (!query.anyGlobal && !key.anyPrefix && blocksApart) return 0;
  // Decided by summaries alone: every pair is visible.
  const oneSegment = query.minSegment >= 0 && query.minSegment === query.maxSegment &&
    key.minSegment === query.minSegment && key.maxSegment === query.minSegment;
  const causal = key.last <= query.first;
  const blocks = query.allGlobal || key.allPrefix ||
    (query.minBlock === query.maxBlock && key.minBlock === key.maxBlock &&
      key.minBlock === query.minBlock);
  const windowed = meta.window === 0 || query.last - key.first < meta.window;
  if (oneSegment && causal && blocks && windowed && key.complete && query.complete) return 2;
  // Undecided: scan pairs until one visible pair is found.
  for (let i = query.first; i <= query.last; i++) {
    for (let j = key.first; j <= Math.min(key.last, i); j++) {
      if (isVisible(meta, b, i, j)) return 1;
    }
  }
  return 0;
}

/** Builds both directions of the tile table for tiles of `queryTile` × `keyTile`. */
export function buildTileTable(
  meta: MaskMetadata,
  queryTile: number,
  keyTile: number,
): TileTable {
  const numQueryTiles = Math.ceil(meta.length / queryTile);
  const numKeyTiles = Math.ceil(meta.length / keyTile);
  const forwardLists: number[][] = [];
  const backwardLists: number[][] = Array.from(
    { length: meta.batch * numKeyTiles },
    () => [],
  );
  let activeCount = 0;
  let fullCount = 0;
  for (let b = 0; b < meta.batch; b++) {
    const keySummaries = Array.from(
      { length: numKeyTiles },
      (_, kt) => summarize(meta, b, kt * keyTile, keyTile),
    );
    for (let qt = 0; qt < numQueryTiles; qt++) {
      const query = summarize(meta, b, qt * queryTile, queryTile);
      const list: number[] = [];
      for (let kt = 0; kt < numKeyTiles; kt++) {
        const state = classify(meta, b, query, keySummaries[kt]!);
        if (state === 0) continue;
        activeCount++;
        if (state === 2) fullCount++;
        const fullBit = state === 2 ? FULL_TILE_BIT : 0;
        list.push(kt | fullBit);
        backwardLists[b * numKeyTiles + kt]!.push(qt | fullBit);
      }
      forwardLists.push(list);
    }
  }
  return {
    queryTile,
    keyTile,
    numQueryTiles,
    numKeyTiles,
    forward: compress(forwardLists),
    backward: compress(backwardLists),
    activeCount,
    fullCount,
  };
}

function compress(lists: number[][]): TileLists {
  const offsets = new Uint32Array(lists.length + 1);
  lists.forEach((list, n) => offsets[n + 1] = offsets[n]! + list.length);
  const entries = new Uint32Array(offsets[lists.length]!);
  lists.forEach((list, n) => entries.set(list, offsets[n]!));
  return { offsets, entries };
}
