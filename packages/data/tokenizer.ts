/**
 * The minimal tokenizer interface the data package needs, so that it never
 * depends on the model package, plus two small deterministic tokenizers for
 * tests and benchmarks.
 *
 * @module
 */

/** What datasets and collators need from a tokenizer. */
export interface TextTokenizer {
  /** Token ids of `text`, without BOS/EOS (the layouts add those). */
  encode(text: string): number[];
  /** Text of `ids` (optional: only used for debugging output). */
  decode?(ids: number[]): string;
  /** Beginning-of-sequence id, prepended when defined and asked for. */
  bosId?: number;
  /** End-of-sequence id, appended when defined and asked for. */
  eosId?: number;
  /** Id used for padding (never attended to, never a label). */
  padId: number;
}

/**
 * One token per UTF-16 code unit, id = code + 3 (0 pad, 1 BOS, 2 EOS).
 * Exactly reversible; handy for tests that check layouts by decoding.
 */
export class CharTokenizer implements TextTokenizer {
  /** Padding id. */
  readonly padId = 0;
  /** BOS id. */
  readonly bosId = 1;
  /** EOS id. */
  readonly eosId = 2;

  /** Ids of the characters of `text`. */
  encode(text: string): number[] {
    const ids = new Array<number>(text.length);
    for (let i = 0; i < text.length; i++) ids[i] = text.charCodeAt(i) + 3;
    return ids;
  }

  /** Characters of `ids`; specials render as `<pad>`, `<s>`, `</s>`. */
  decode(ids: number[]): string {
    return ids.map((id) =>
      id === 0 ? "<pad>" : id === 1 ? "<s>" : id === 2 ? "</s>" : String.fromCharCode(id - 3)
    ).join("");
  }
}

/**
 * Words and punctuation marks hashed (FNV-1a) into `vocabSize` ids, ids 0–3
 * reserved (pad, BOS, EOS, unused). Deterministic, stateless apart from a
 * reverse table for {@link decode}; token counts are close to a subword
 * tokenizer's on English text, which makes it fit for length statistics.
 */
export class HashWordTokenizer implements TextTokenizer {
  /** Padding id. */
  readonly padId = 0;
  /** BOS id. */
  readonly bosId = 1;
  /** EOS id. */
  readonly eosId = 2;
  readonly #seen = new Map<number, string>();

  /** A tokenizer with ids in `[4, vocabSize)`. */
  constructor(readonly vocabSize = 32000) {
    if (vocabSize <= 4) throw new RangeError("vocabSize must exceed 4");
  }

  /** Ids of the words and punctuation of `text`. */
  encode(text: string): number[] {
    const pieces = text.match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) ?? [];
    return pieces.map((piece) => {
      let hash = 0x811c9dc5;
      for (let i = 0; i < piece.length; i++) {
        hash ^= piece.charCodeAt(i);
        hash = Math.imul(hash, 0x01000193) >>> 0;
      }
      const id = 4 + (hash % (this.vocabSize - 4));
      this.#seen.set(id, piece);
      return id;
    });
  }

  /** Words of `ids` seen by {@link encode}, joined by spaces. */
  decode(ids: number[]): string {
    return ids.map((id) => this.#seen.get(id) ?? `<${id}>`).join(" ");
  }
}
