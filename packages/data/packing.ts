/**
 * Sequence packing: several sequences share one row of `maxSeqLength`
 * tokens. Each keeps its own segment id (renumbered 0, 1, … per row) and its
 * positions restart at 0 (or keep their own layout positions), so attention
 * never crosses sequences; the first label of each packed sequence is −100
 * so no sequence learns to predict its first token from the previous one.
 *
 * Two algorithms: next-fit (stream order, one open row) and
 * first-fit-decreasing (longest first, each into the first row with room;
 * O(n log n) with a max segment tree over the rows' free space).
 *
 * @module
 */

import { IGNORE_INDEX, type TokenSequence, withDefaults } from "./sequence.ts";

/** Packing algorithm. */
export type PackingStrategy = "next-fit" | "first-fit-decreasing";

/** Which input sequences go into each row. */
export interface PackingPlan {
  /** Row → indices of the input sequences it holds, in placement order. */
  rows: number[][];
  /** Row capacity. */
  maxSeqLength: number;
}

/** Real tokens over slots, for a plan or for plain padding. */
export interface PackingReport {
  /** Sequences packed. */
  sequences: number;
  /** Rows used. */
  rows: number;
  /** Real tokens. */
  realTokens: number;
  /** `rows × maxSeqLength`. */
  slots: number;
  /** `realTokens / slots`. */
  efficiency: number;
}

/** Plans rows for sequences of the given lengths. Lengths above `maxSeqLength` are an error. */
export function planPacking(
  lengths: readonly number[],
  maxSeqLength: number,
  strategy: PackingStrategy,
): PackingPlan {
  lengths.forEach((n, i) => {
    if (n > maxSeqLength) {
      throw new RangeError(
        `sequence ${i} has ${n} tokens, more than maxSeqLength ${maxSeqLength}; truncate first`,
      );
    }
  });
  if (strategy === "next-fit") return { rows: nextFit(lengths, maxSeqLength), maxSeqLength };
  return { rows: firstFitDecreasing(lengths, maxSeqLength), maxSeqLength };
}

function nextFit(lengths: readonly number[], capacity: number): number[][] {
  const rows: number[][] = [];
  let current: number[] = [];
  let used = 0;
  lengths.forEach((n, i) => {
    if (current.length > 0 && used + n > capacity) {
      rows.push(current);
      current = [];
      used = 0;
    }
    current.push(i);
    used += n;
  });
  if (current.length > 0) rows.push(current);
  return rows;
}

function firstFitDecreasing(lengths: readonly number[], capacity: number): number[][] {
  // Stable sort: equal lengths keep input order, so the plan is deterministic.
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const n = Math.max(1, lengths.length);
  let size = 1;
  while (size < n) size *= 2;
  // tree[k] = max free space among the rows below node k; rows not yet
  // opened have the full capacity, so the leftmost fitting leaf is the
  // first open row with room, or the next new row.
  const tree = new Float64Array(2 * size).fill(capacity);
  const rows: number[][] = [];
  for (const i of order) {
    const need = lengths[i]!;
    let k = 1;
    while (k < size) k = tree[2 * k]! >= need ? 2 * k : 2 * k + 1;
    const row = k - size;
    (rows[row] ??= []).push(i);
    tree[k] = tree[k]! - need;
    for (k >>= 1; k >= 1; k >>= 1) tree[k] = Math.max(tree[2 * k]!, tree[2 * k + 1]!);
  }
  return rows;
}

/** Efficiency of a plan. */
export function packingReport(lengths: readonly number[], plan: PackingPlan): PackingReport {
  const realTokens = lengths.reduce((a, b) => a + b, 0);
  const slots = plan.rows.length * plan.maxSeqLength;
  return {
    sequences: lengths.length,
    rows: plan.rows.length,
    realTokens,
    slots,
    efficiency: slots === 0 ? 1 : realTokens / slots,
  };
}

/** Efficiency of padding each batch of `batchSize` (in order) to its longest sequence. */
export function paddingReport(lengths: readonly number[], batchSize: number): PackingReport {
  let slots = 0;
  for (let start = 0; start < lengths.length; start += batchSize) {
    const batch = lengths.slice(start, start + batchSize);
    slots += Math.max(...batch) * batch.length;
  }
  const realTokens = lengths.reduce((a, b) => a + b, 0);
  return {
    sequences: lengths.length,
    rows: lengths.length,
    realTokens,
    slots,
    efficiency: slots === 0 ? 1 : realTokens / slots,
  };
}

/** Options of {@link packSequences}. */
export interface PackOptions {
  /** Row capacity. */
  maxSeqLength: number;
  /** Algorithm (default first-fit-decreasing). */
  strategy?: PackingStrategy;
  /**
   * Keep the sequences' own position ids (BlockRank layouts) instead of
   * restarting 0, 1, 2, … per sequence (default false: restart).
   */
  keepPositions?: boolean;
}

/** A packed row (unpadded; collate it to pad to `maxSeqLength`) and where its pieces came from. */
export interface PackedRow extends Required<TokenSequence> {
  /** Input index of each packed sequence, in row order. */
  sources: number[];
}

/** Packs sequences into rows; every input appears in exactly one row, unsplit. */
export function packSequences(
  sequences: readonly TokenSequence[],
  options: PackOptions,
): { rows: PackedRow[]; report: PackingReport } {
  const full = sequences.map(withDefaults);
  const lengths = full.map((s) => s.inputIds.length);
  const plan = planPacking(
    lengths,
    options.maxSeqLength,
    options.strategy ?? "first-fit-decreasing",
  );
  const rows = plan.rows.map((members) => {
    const row: PackedRow = {
      inputIds: [],
      labels: [],
      segment: [],
      block: [],
      kind: [],
      position: [],
      sources: members,
    };
    let nextSegment = 0;
    for (const index of members) {
      const s = full[index]!;
      // A sequence's own segment ids (0, 1, … or −1 for pads) shift so
      // segments of different sequences never collide.
      const base = nextSegment;
      s.inputIds.forEach((id, t) => {
        row.inputIds.push(id);
        row.labels.push(t === 0 ? IGNORE_INDEX : s.labels[t]!);
        const own = s.segment[t]!;
        row.segment.push(own < 0 ? -1 : base + own);
        row.block.push(s.block[t]!);
        row.kind.push(s.kind[t]!);
        row.position.push(options.keepPositions ? s.position[t]! : t);
        if (own >= 0) nextSegment = Math.max(nextSegment, base + own + 1);
      });
    }
    return row;
  });
  return { rows, report: packingReport(lengths, plan) };
}
