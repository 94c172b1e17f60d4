/**
 * Token sequences with per-token metadata, and the collator that pads a
 * batch of them into `Int32Array`s ready for upload.
 *
 * Label convention (Hugging Face): `labels[i]` is the id the model should
 * predict *at* position i, i.e. from the logits of position i − 1; −100
 * means "no loss". The trainer shifts.
 *
 * Attention rule the metadata encodes (see {@link attentionAllowed}): token
 * i may attend to token j iff both are real (`segment ≥ 0`), same segment,
 * j ≤ i in layout order, and (same block, or j is a prefix token (`kind`
 * 0), or i is a global token (`kind` 2)). A plain causal sequence is one
 * block of kind 0; BlockRank uses kind 0 for the instruction, 1 for
 * documents, 2 for the final query block.
 *
 * @module
 */

/** Token kinds of the attention rule. */
export const TokenKind = {
  /** Causal within the segment; visible to every later token of it. */
  prefix: 0,
  /** Sees the segment's prefix tokens and its own block only. */
  local: 1,
  /** Sees everything before it in the segment. */
  global: 2,
} as const;

/** Label value that means "no loss here". */
export const IGNORE_INDEX: number = -100;

/** One tokenised sequence; optional metadata defaults to a plain causal sequence. */
export interface TokenSequence {
  /** Token ids. */
  inputIds: number[];
  /** Labels (same length; {@link IGNORE_INDEX} where no loss). */
  labels: number[];
  /** Segment id per token (−1 = pad); default all 0. */
  segment?: number[];
  /** Block id per token; default all 0. */
  block?: number[];
  /** {@link TokenKind} per token; default all prefix (plain causal). */
  kind?: number[];
  /** Position id per token; default 0, 1, 2, … */
  position?: number[];
}

/** A padded batch: every array is `rows × length`, row-major. */
export interface CollatedBatch {
  /** Number of rows. */
  rows: number;
  /** Tokens per row. */
  length: number;
  /** Token ids (pads are the tokenizer's pad id). */
  inputIds: Int32Array;
  /** Labels (−100 on pads and unlabeled tokens). */
  labels: Int32Array;
  /** 1 for real tokens, 0 for pads. */
  attentionMask: Int32Array;
  /** Segment ids (−1 for pads). */
  segment: Int32Array;
  /** Block ids (−1 for pads). */
  block: Int32Array;
  /** Token kinds (−1 for pads). */
  kind: Int32Array;
  /** Position ids (0 for pads). */
  position: Int32Array;
}

/** Padding options shared by the collators. */
export interface PadOptions {
  /** Pad id of the tokenizer. */
  padId: number;
  /** Where pads go (default `right`). */
  side?: "left" | "right";
  /** Round the row length up to a multiple of this (default 1). */
  padToMultipleOf?: number;
  /** Fixed row length (rows longer than it are an error); default: longest row. */
  length?: number;
}

/** Fills missing metadata of `sequence` with the plain-causal defaults. */
export function withDefaults(sequence: TokenSequence): Required<TokenSequence> {
  const n = sequence.inputIds.length;
  if (sequence.labels.length !== n) {
    throw new RangeError(`labels has ${sequence.labels.length} entries for ${n} tokens`);
  }
  const fill = (values: number[] | undefined, name: string, value: (i: number) => number) => {
    if (values === undefined) return Array.from({ length: n }, (_, i) => value(i));
    if (values.length !== n) {
      throw new RangeError(`${name} has ${values.length} entries for ${n} tokens`);
    }
    return values;
  };
  return {
    inputIds: sequence.inputIds,
    labels: sequence.labels,
    segment: fill(sequence.segment, "segment", () => 0),
    block: fill(sequence.block, "block", () => 0),
    kind: fill(sequence.kind, "kind", () => TokenKind.prefix),
    position: fill(sequence.position, "position", (i) => i),
  };
}

/** Rounds `n` up to a multiple of `m`. */
export function roundUp(n: number, m: number): number {
  return m <= 1 ? n : Math.ceil(n / m) * m;
}

/** Pads `sequences` into one batch of typed arrays. */
export function collate(sequences: TokenSequence[], options: PadOptions): CollatedBatch {
  const full = sequences.map(withDefaults);
  const longest = full.reduce((m, s) => Math.max(m, s.inputIds.length), 0);
  const length = options.length ?? roundUp(longest, options.padToMultipleOf ?? 1);
  if (longest > length) {
    throw new RangeError(`a sequence has ${longest} tokens, more than ${length}`);
  }
  const rows = full.length;
  const size = rows * length;
  const batch: CollatedBatch = {
    rows,
    length,
    inputIds: new Int32Array(size).fill(options.padId),
    labels: new Int32Array(size).fill(IGNORE_INDEX),
    attentionMask: new Int32Array(size),
    segment: new Int32Array(size).fill(-1),
    block: new Int32Array(size).fill(-1),
    kind: new Int32Array(size).fill(-1),
    position: new Int32Array(size),
  };
  full.forEach((s, r) => {
    const n = s.inputIds.length;
    const offset = r * length + (options.side === "left" ? length - n : 0);
    batch.inputIds.set(s.inputIds, offset);
    batch.labels.set(s.labels, offset);
    batch.attentionMask.fill(1, offset, offset + n);
    batch.segment.set(s.segment, offset);
    batch.block.set(s.block, offset);
    batch.kind.set(s.kind, offset);
    batch.position.set(s.position, offset);
  });
  return batch;
}

/**
 * The attention rule as a predicate over one row of a batch: may the token
 * at column `i` attend to the token at column `j`? (Reference for kernels.)
 */
export function attentionAllowed(batch: CollatedBatch, row: number, i: number, j: number): boolean {
  const base = row * batch.length;
  const si = batch.segment[base + i]!;
  const sj = batch.segment[base + j]!;
  if (si < 0 || sj < 0 || si !== sj || j > i) return false;
  if (batch.block[base + i] === batch.block[base + j]) return true;
  return batch.kind[base + j] === TokenKind.prefix || batch.kind[base + i] === TokenKind.global;
}

/** Options of {@link encodeText}. */
export interface EncodeOptions {
  /** Keep at most this many tokens (BOS/EOS included). */
  maxLength?: number;
  /** Prepend the tokenizer's BOS id. */
  prependBos?: boolean;
  /** Append the tokenizer's EOS id (kept even when truncating). */
  appendEos?: boolean;
}

/** Tokenises `text`, truncating the content (not BOS/EOS) to `maxLength`. */
export function encodeText(
  tokenizer: { encode(text: string): number[]; bosId?: number; eosId?: number },
  text: string,
  options: EncodeOptions = {},
): number[] {
  const bos = options.prependBos && tokenizer.bosId !== undefined ? [tokenizer.bosId] : [];
  const eos = options.appendEos && tokenizer.eosId !== undefined ? [tokenizer.eosId] : [];
  let ids = tokenizer.encode(text);
  if (options.maxLength !== undefined) {
    const room = options.maxLength - bos.length - eos.length;
    if (room < 0) throw new RangeError(`maxLength ${options.maxLength} leaves no room for BOS/EOS`);
    if (ids.length > room) ids = ids.slice(0, room);
  }
  return [...bos, ...ids, ...eos];
}
