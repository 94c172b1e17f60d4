/**
 * The tokenizer interface every loader returns.
 *
 * @module
 */

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /** Prepend the beginning-of-sequence id (default false). */
  addBos?: boolean;
  /** Append the end-of-sequence id (default false). */
  addEos?: boolean;
  /**
   * Recognise control tokens such as `<s>` or `[INST]` written in the text
   * (default false: they are encoded as ordinary characters, so user text
   * cannot inject them).
   */
  parseSpecial?: boolean;
}

/** Options of {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** Drop control tokens such as `<s>` (default true, as SentencePiece does). */
  skipSpecial?: boolean;
}

/** Text ↔ token ids. Satisfies the minimal `TextTokenizer` of `@irforge/data`. */
export interface Tokenizer {
  /** Token ids of `text`. */
  encode(text: string, options?: EncodeOptions): number[];
  /** Text of `ids`; throws a RangeError on an id outside the vocabulary. */
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /** Number of ids. */
  readonly vocabSize: number;
  /** Beginning-of-sequence id, or `null`. */
  readonly bosId: number | null;
  /** End-of-sequence id, or `null`. */
  readonly eosId: number | null;
  /** Padding id, or `null`. */
  readonly padId: number | null;
  /** Unknown-token id, or `null`. */
  readonly unkId: number | null;
  /** The piece (vocabulary string) of `id`. */
  idToPiece(id: number): string;
  /** The id of `piece`, or `undefined`. */
  pieceToId(piece: string): number | undefined;
}
