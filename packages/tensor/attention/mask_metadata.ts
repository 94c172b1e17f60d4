/**
 * Per-token mask metadata for fused attention: instead of a dense T×T mask,
 * every token carries a segment id, a block id and a block kind, and the
 * visibility of key `j` to query `i` follows from those (see {@linkcode isVisible}).
 *
 * @module
 */

/** Block kind of a token in the BlockRank layout. */
export const BlockKind = {
  /** Instruction block: seen by every token of the segment, causal within itself. */
  prefix: 0,
  /** Document block: sees the prefix and, causally, its own block. */
  local: 1,
  /** Query block (and plain causal LM tokens): sees everything before it in the segment. */
  global: 2,
} as const;

/** Segment id of a pad token: attends to nothing, is attended by nothing. */
export const PAD_SEGMENT: number = -1;

/**
 * Mask metadata for a batch of `batch` rows of `length` tokens each. Arrays are
 * flat, row-major `[batch, length]`.
 *
 * Visible(i, j) ⇔ segment[i] = segment[j] ≠ −1 ∧ j ≤ i
 *   ∧ (kind[i] = global ∨ kind[j] = prefix ∨ block[j] = block[i])
 *   ∧ (window = 0 ∨ i − j < window).
 */
export interface MaskMetadata {
  /** Number of batch rows. */
  batch: number;
  /** Tokens per row (T). */
  length: number;
  /** Packed-sequence id per token; −1 marks padding. */
  segment: Int32Array;
  /** Block id per token (documents in BlockRank); any value when unused. */
  block: Int32Array;
  /** {@linkcode BlockKind} per token. */
  kind: Int32Array;
  /** Sliding window in storage positions (Mistral `sliding_window`); 0 = none. */
  window: number;
}

/**
 * Whether key `j` is visible to query `i` in batch row `b`.
 * This is the one definition of the mask rule used by the tile table.
 */
export function isVisible(meta: MaskMetadata, b: number, i: number, j: number): boolean {
  const base = b * meta.length;
  const segmentI = meta.segment[base + i]!;
  if (segmentI < 0 || segmentI !== meta.segment[base + j] || j > i) return false;
  if (meta.window > 0 && i - j >= meta.window) return false;
  return meta.kind[base + i] === BlockKind.global || meta.kind[base + j] === BlockKind.prefix ||
    meta.block[base + i] === meta.block[base + j];
}

/** Checks array sizes and values; throws a `RangeError` naming field and index. */
export function validateMaskMetadata(meta: MaskMetadata): void {
  const { batch, length } = meta;
  if (!Number.isInteger(batch) || batch < 1) {
    throw new RangeError(`mask metadata: batch must be a positive integer, got ${batch}`);
  }
  if (!Number.isInteger(length) || length < 1) {
    throw new RangeError(`mask metadata: length must be a positive integer, got ${length}`);
  }
  if (!Number.isInteger(meta.window) || meta.window < 0) {
    throw new RangeError(`mask metadata: window must be an integer ≥ 0, got ${meta.window}`);
  }
  for (const field of ["segment", "block", "kind"] as const) {
    if (meta[field].length !== batch * length) {
      throw new RangeError(
        `mask metadata: field "${field}" has ${
          meta[field].length
        } entries, expected batch·length = ${batch * length}`,
      );
    }
  }
  for (let t = 0; t < batch * length; t++) {
    const where = `row ${Math.floor(t / length)}, token ${t % length}`;
    if (meta.segment[t]! < PAD_SEGMENT) {
      throw new RangeError(
        `mask metadata (${where}, field "segment"): ${meta.segment[t]} < −1; use −1 for padding`,
      );
    }
    const kind = meta.kind[t]!;
    if (kind !== BlockKind.prefix && kind !== BlockKind.local && kind !== BlockKind.global) {
      throw new RangeError(`mask metadata (${where}, field "kind"): ${kind} is not 0, 1 or 2`);
    }
  }
}

/** Options shared by the metadata builders. */
export interface MaskBuilderOptions {
  /** Sliding window in storage positions; 0 or absent = no window. */
  window?: number;
}

/**
 * Causal language-model mask, optionally with an HF-style `attentionMask`
 * (one array per batch row, 1 = token, 0 = pad; left or right padding alike).
 * Every real token is kind global in block 0 of segment 0, so this is exactly causal.
 */
export function causalMask(
  options: MaskBuilderOptions & {
    batch: number;
    length: number;
    attentionMask?: ArrayLike<number>[];
  },
): MaskMetadata {
  const { batch, length } = options;
  const meta = emptyMetadata(batch, length, options.window ?? 0);
  if (options.attentionMask !== undefined && options.attentionMask.length !== batch) {
    throw new RangeError(
      `causalMask: attentionMask has ${options.attentionMask.length} rows, expected ${batch}`,
    );
  }
  for (let b = 0; b < batch; b++) {
    const rowMask = options.attentionMask?.[b];
    if (rowMask !== undefined && rowMask.length !== length) {
      throw new RangeError(
        `causalMask: attentionMask row ${b} has ${rowMask.length} entries, expected ${length}`,
      );
    }
    for (let t = 0; t < length; t++) {
      const keep = rowMask === undefined ? 1 : rowMask[t]!;
      if (keep !== 0 && keep !== 1) {
        throw new RangeError(`causalMask: attentionMask[${b}][${t}] = ${keep}, expected 0 or 1`);
      }
      meta.segment[b * length + t] = keep === 1 ? 0 : PAD_SEGMENT;
    }
  }
  validateMaskMetadata(meta);
  return meta;
}

/**
 * Packed sequences: row `b` holds segments of lengths `segmentLengths[b]`
 * one after another (segment ids 0, 1, …), the rest of the row is padding.
 * Each segment is causal on its own.
 */
export function packedMask(
  options: MaskBuilderOptions & { length: number; segmentLengths: number[][] },
): MaskMetadata {
  const { length, segmentLengths } = options;
  const meta = emptyMetadata(segmentLengths.length, length, options.window ?? 0);
  meta.segment.fill(PAD_SEGMENT);
  segmentLengths.forEach((lengths, b) => {
    let t = 0;
    lengths.forEach((n, s) => {
      if (!Number.isInteger(n) || n < 1) {
        throw new RangeError(`packedMask: segmentLengths[${b}][${s}] = ${n}, expected ≥ 1`);
      }
      if (t + n > length) {
        throw new RangeError(
          `packedMask: segments of row ${b} need ${
            lengths.reduce((a, c) => a + c, 0)
          } tokens but length is ${length}`,
        );
      }
      meta.segment.fill(s, b * length + t, b * length + t + n);
      t += n;
    });
  });
  validateMaskMetadata(meta);
  return meta;
}

/** Block lengths of one BlockRank sequence. */
export interface BlockRankLayout {
  /** Tokens of the instruction (prefix) block; may be 0. */
  instruction: number;
  /** Tokens of each document block, in storage order. */
  documents: number[];
  /** Tokens of the final query (global) block. */
  query: number;
  /** Pad tokens before the sequence (left padding); default 0. */
  leftPad?: number;
}

/**
 * BlockRank mask: per batch row, `[leftPad pads][instruction][doc 1]…[doc n][query][pads]`.
 * Instruction tokens are kind prefix (block 0), document d is kind local (block d+1),
 * the query is kind global (block n+1); everything after is padding.
 */
export function blockRankMask(
  options: MaskBuilderOptions & { length: number; rows: BlockRankLayout[] },
): MaskMetadata {
  const { length, rows } = options;
  const meta = emptyMetadata(rows.length, length, options.window ?? 0);
  meta.segment.fill(PAD_SEGMENT);
  rows.forEach((row, b) => {
    const parts: [number, number, string][] = [[row.instruction, BlockKind.prefix, "instruction"]];
    row.documents.forEach((n, d) => parts.push([n, BlockKind.local, `documents[${d}]`]));
    parts.push([row.query, BlockKind.global, "query"]);
    const leftPad = row.leftPad ?? 0;
    const total = parts.reduce((a, [n]) => a + n, leftPad);
    if (total > length) {
      throw new RangeError(`blockRankMask: row ${b} needs ${total} tokens but length is ${length}`);
    }
    let t = b * length + leftPad;
    parts.forEach(([n, kind, name], blockId) => {
      if (!Number.isInteger(n) || n < 0 || (n === 0 && name !== "instruction")) {
        throw new RangeError(`blockRankMask: rows[${b}].${name} = ${n}, expected ≥ 1`);
      }
      meta.segment.fill(0, t, t + n);
      meta.kind.fill(kind, t, t + n);
      meta.block.fill(blockId, t, t + n);
      t += n;
    });
  });
  validateMaskMetadata(meta);
  return meta;
}

/**
 * Metadata from explicit per-token arrays (one array per batch row for each field).
 * `block` and `kind` default to one global block (plain causal within each segment).
 */
export function maskFromArrays(
  options: MaskBuilderOptions & {
    segment: ArrayLike<number>[];
    block?: ArrayLike<number>[];
    kind?: ArrayLike<number>[];
  },
): MaskMetadata {
  const batch = options.segment.length;
  const length = options.segment[0]?.length ?? 0;
  const meta = emptyMetadata(batch, length, options.window ?? 0);
  for (const field of ["segment", "block", "kind"] as const) {
    const rows = options[field];
    if (rows === undefined) continue;
    if (rows.length !== batch) {
      throw new RangeError(`maskFromArrays: "${field}" has ${rows.length} rows, expected ${batch}`);
    }
    rows.forEach((row, b) => {
      if (row.length !== length) {
        throw new RangeError(
          `maskFromArrays: "${field}" row ${b} has ${row.length} entries, expected ${length}`,
        );
      }
      for (let t = 0; t < length; t++) {
        const value = row[t]!;
        if (!Number.isInteger(value)) {
          throw new RangeError(`maskFromArrays: ${field}[${b}][${t}] = ${value} is not an integer`);
        }
        meta[field][b * length + t] = value;
      }
    });
  }
  validateMaskMetadata(meta);
  return meta;
}

function emptyMetadata(batch: number, length: number, window: number): MaskMetadata {
  if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(length) || length < 1) {
    throw new RangeError(`mask metadata: batch ${batch} and length ${length} must be ≥ 1`);
  }
  return {
    batch,
    length,
    segment: new Int32Array(batch * length),
    block: new Int32Array(batch * length),
    kind: new Int32Array(batch * length).fill(BlockKind.global),
    window,
  };
}
