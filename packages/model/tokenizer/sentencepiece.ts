/**
 * SentencePiece BPE tokenizer (Llama 1/2, Mistral v1/v3, llama2.c models),
 * reproducing `sentencepiece`'s `bpe_model.cc`: the text is normalized
 * (optional dummy-prefix `▁`, spaces → `▁`), split into characters
 * (user-defined pieces kept whole), then the adjacent pair whose merged piece
 * has the highest score is merged, leftmost first on ties, until no pair is
 * in the vocabulary. A priority queue over pairs, with stale entries
 * skipped, makes this O(n log n). Pieces outside the vocabulary fall back to
 * their UTF-8 bytes (`<0x0A>`) when the model has byte fallback.
 *
 * @module
 */

import {
  parseSentencePieceModel,
  PieceType,
  type SentencePieceModel,
  SentencePieceModelType,
} from "./sentencepiece_model.ts";
import type { DecodeOptions, EncodeOptions, Tokenizer } from "./tokenizer.ts";

const spaceSymbol = "\u2581";
const utf8Encoder = new TextEncoder();

interface Pair {
  left: number;
  right: number;
  score: number;
  size: number;
}

/** Binary max-heap of pairs: higher score first, then leftmost (sentencepiece's order). */
class PairQueue {
  readonly #items: Pair[] = [];
  get size(): number {
    return this.#items.length;
  }
  #before(a: Pair, b: Pair): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }
  push(pair: Pair): void {
    const items = this.#items;
    items.push(pair);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }
  pop(): Pair {
    const items = this.#items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && this.#before(items[l]!, items[best]!)) best = l;
        if (r < items.length && this.#before(items[r]!, items[best]!)) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best]!, items[i]!];
        i = best;
      }
    }
    return top;
  }
}

/** A SentencePiece BPE model ready to encode and decode. */
export class SentencePieceTokenizer implements Tokenizer {
  /** The parsed model. */
  readonly model: SentencePieceModel;
  /** Where it was loaded from (for messages). */
  readonly source: string;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  readonly unkId: number | null;
  // NORMAL, USER_DEFINED and UNUSED pieces: what merges may produce.
  readonly #mergeable = new Map<string, number>();
  // CONTROL, UNKNOWN and BYTE pieces.
  readonly #reserved = new Map<string, number>();
  readonly #byteIds: number[] = new Array(256).fill(-1);
  readonly #userDefined: string[];
  readonly #special: string[];

  /** Builds a tokenizer from a parsed model; throws for features it does not implement. */
  constructor(model: SentencePieceModel, source = "<memory>") {
    if (model.modelType !== SentencePieceModelType.BPE) {
      const name = Object.entries(SentencePieceModelType).find(([, v]) => v === model.modelType)
        ?.[0];
      throw new Error(
        `${source}: SentencePiece model type ${
          name ?? model.modelType
        } is not supported (only BPE)`,
      );
    }
    if (model.hasCharsMap) {
      throw new Error(
        `${source}: normalizer "${model.normalizerName}" with a compiled character map is not supported (only identity)`,
      );
    }
    if (model.treatWhitespaceAsSuffix) {
      throw new Error(`${source}: treat_whitespace_as_suffix is not supported`);
    }
    this.model = model;
    this.source = source;
    this.vocabSize = model.pieces.length;
    const idOrNull = (id: number) => (id >= 0 && id < this.vocabSize ? id : null);
    this.bosId = idOrNull(model.bosId);
    this.eosId = idOrNull(model.eosId);
    this.padId = idOrNull(model.padId);
    this.unkId = idOrNull(model.unkId);
    const userDefined: string[] = [];
    const special: string[] = [];
    model.pieces.forEach((p, id) => {
      if (
        p.type === PieceType.NORMAL || p.type === PieceType.USER_DEFINED ||
        p.type === PieceType.UNUSED
      ) {
        if (!this.#mergeable.has(p.piece)) this.#mergeable.set(p.piece, id);
      } else if (!this.#reserved.has(p.piece)) {
        this.#reserved.set(p.piece, id);
      }
      if (p.type === PieceType.USER_DEFINED) userDefined.push(p.piece);
      if (p.type === PieceType.CONTROL || p.type === PieceType.USER_DEFINED) special.push(p.piece);
      if (p.type === PieceType.BYTE) {
        const match = /^<0x([0-9A-Fa-f]{2})>$/.exec(p.piece);
        if (match) this.#byteIds[parseInt(match[1]!, 16)] = id;
      }
    });
    if (model.byteFallback && this.#byteIds.includes(-1)) {
      throw new Error(
        `${source}: byte_fallback is on but some of the 256 <0xXX> pieces are missing`,
      );
    }
    // Longest first, so the longest match wins.
    this.#userDefined = userDefined.filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
    this.#special = special.filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  }

  /** Reads a `.model` file. */
  static async load(path: string): Promise<SentencePieceTokenizer> {
    return new SentencePieceTokenizer(
      parseSentencePieceModel(await Deno.readFile(path), path),
      path,
    );
  }

  idToPiece(id: number): string {
    const piece = this.model.pieces[id];
    if (piece === undefined) {
      throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    }
    return piece.piece;
  }

  pieceToId(piece: string): number | undefined {
    return this.#reserved.get(piece) ?? this.#mergeable.get(piece);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    if (options.addBos && this.bosId !== null) ids.push(this.bosId);
    if (options.parseSpecial) {
      let rest = text;
      while (rest.length > 0) {
        const [index, token] = this.#findSpecial(rest);
        if (index < 0) {
          this.#encodeText(rest, ids);
          break;
        }
        if (index > 0) this.#encodeText(rest.slice(0, index), ids);
        ids.push(this.pieceToId(token)!);
        rest = rest.slice(index + token.length);
      }
    } else {
      this.#encodeText(text, ids);
    }
    if (options.addEos && this.eosId !== null) ids.push(this.eosId);
    return ids;
  }

  /** First (then longest) control/user-defined piece occurring in `text`. */
  #findSpecial(text: string): [number, string] {
    let best: [number, string] = [-1, ""];
    for (const token of this.#special) {
      const index = text.indexOf(token);
      if (index >= 0 && (best[0] < 0 || index < best[0])) best = [index, token];
    }
    return best;
  }

  /** sentencepiece's normalizer for the identity rule set. */
  #normalize(text: string): string {
    if (text.length === 0) return "";
    let out = text;
    if (this.model.removeExtraWhitespaces) out = out.replace(/^ +/, "").replace(/ {2,}/g, " ");
    if (this.model.addDummyPrefix) out = " " + out;
    if (this.model.escapeWhitespaces) out = out.replaceAll(" ", spaceSymbol);
    // Like sentencepiece, trailing whitespace is stripped after escaping (so a literal ▁ goes too).
    if (this.model.removeExtraWhitespaces) {
      const space = this.model.escapeWhitespaces ? spaceSymbol : " ";
      while (out.endsWith(space)) out = out.slice(0, -space.length);
    }
    return out;
  }

  #encodeText(text: string, ids: number[]): void {
    const normalized = this.#normalize(text);
    if (normalized.length === 0) return;
    // Symbols: [start, end) ranges of `normalized`, in a doubly linked list.
    const start: number[] = [];
    const end: number[] = [];
    const frozen: boolean[] = [];
    for (let i = 0; i < normalized.length;) {
      let length = 0;
      let freeze = false;
      for (const symbol of this.#userDefined) {
        if (normalized.startsWith(symbol, i)) {
          length = symbol.length;
          freeze = true;
          break;
        }
      }
      if (length === 0) {
        const code = normalized.charCodeAt(i);
        length = code >= 0xd800 && code <= 0xdbff && i + 1 < normalized.length ? 2 : 1;
      }
      start.push(i);
      end.push(i + length);
      frozen.push(freeze);
      i += length;
    }
    const count = start.length;
    const prev = Array.from({ length: count }, (_, i) => i - 1);
    const next = Array.from({ length: count }, (_, i) => (i + 1 < count ? i + 1 : -1));
    const queue = new PairQueue();
    const reverseMerge = new Map<string, [string, string]>();
    const addPair = (left: number, right: number) => {
      if (left < 0 || right < 0 || frozen[left] || frozen[right]) return;
      const piece = normalized.slice(start[left]!, end[right]!);
      const id = this.#mergeable.get(piece);
      if (id === undefined) return;
      queue.push({ left, right, score: this.model.pieces[id]!.score, size: piece.length });
      if (this.model.pieces[id]!.type === PieceType.UNUSED) {
        reverseMerge.set(piece, [
          normalized.slice(start[left]!, end[left]!),
          normalized.slice(start[right]!, end[right]!),
        ]);
      }
    };
    for (let i = 1; i < count; i++) addPair(i - 1, i);
    while (queue.size > 0) {
      const top = queue.pop();
      const { left, right } = top;
      const leftSize = end[left]! - start[left]!;
      const rightSize = end[right]! - start[right]!;
      // Stale: one side was merged away or grew since this pair was queued.
      if (leftSize === 0 || rightSize === 0 || leftSize + rightSize !== top.size) continue;
      end[left] = end[right]!;
      end[right] = start[right]!; // emptied
      next[left] = next[right]!;
      if (next[right]! >= 0) prev[next[right]!] = left;
      addPair(prev[left]!, left);
      addPair(left, next[left]!);
    }
    const emit = (piece: string) => {
      const id = this.#mergeable.get(piece) ?? this.#reserved.get(piece);
      if (id !== undefined && this.model.pieces[id]!.type === PieceType.UNUSED) {
        const parts = reverseMerge.get(piece);
        if (parts) {
          emit(parts[0]);
          emit(parts[1]);
          return;
        }
      }
      if (id !== undefined && id !== this.unkId) {
        ids.push(id);
      } else if (this.model.byteFallback) {
        for (const byte of utf8Encoder.encode(piece)) ids.push(this.#byteIds[byte]!);
      } else if (this.unkId !== null) {
        ids.push(this.unkId);
      }
    };
    for (let i = 0; i >= 0; i = next[i]!) emit(normalized.slice(start[i]!, end[i]!));
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skipSpecial = options.skipSpecial ?? true;
    let out = "";
    let bytes: number[] = [];
    // sentencepiece's rule: strip the leading ▁ of the first piece that starts the text; with
    // remove_extra_whitespaces, keep stripping until some text has been produced.
    let bosSpace = true;
    let bosSpaceSeen = false;
    let produced = false; // text other than shown control tokens
    const flush = () => {
      if (bytes.length === 0) return;
      out += decodeUtf8PerByte(bytes);
      produced = true;
      bytes = [];
    };
    const stripsBosSpace = this.model.addDummyPrefix || this.model.removeExtraWhitespaces;
    for (const id of ids) {
      const piece = this.model.pieces[id];
      if (piece === undefined || !Number.isInteger(id)) {
        throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
      }
      if (piece.type === PieceType.BYTE) {
        bytes.push(parseInt(piece.piece.slice(3, 5), 16));
        continue;
      }
      flush();
      if (bosSpaceSeen || produced) bosSpace = false;
      bosSpaceSeen = false;
      if (piece.type === PieceType.CONTROL) {
        if (!skipSpecial) out += piece.piece;
        continue;
      }
      if (piece.type === PieceType.UNKNOWN) {
        out += this.model.unkSurface;
        produced = this.model.unkSurface.length > 0 || produced;
        continue;
      }
      let text = piece.piece;
      if (bosSpace && stripsBosSpace && text.startsWith(spaceSymbol)) {
        text = text.slice(spaceSymbol.length);
        bosSpaceSeen = !this.model.removeExtraWhitespaces;
      }
      out += text.replaceAll(spaceSymbol, " ");
      produced = text.length > 0 || produced;
    }
    flush();
    return out;
  }
}

/**
 * UTF-8 → string as sentencepiece decodes byte pieces: each byte that does
 * not start a valid, complete sequence becomes one U+FFFD (TextDecoder would
 * replace a maximal invalid subpart with a single U+FFFD instead).
 */
export function decodeUtf8PerByte(bytes: readonly number[]): string {
  let out = "";
  for (let i = 0; i < bytes.length;) {
    const lead = bytes[i]!;
    let length = 0;
    let min = 0;
    if (lead < 0x80) length = 1;
    else if (lead >= 0xc2 && lead <= 0xdf) [length, min] = [2, 0x80];
    else if (lead >= 0xe0 && lead <= 0xef) [length, min] = [3, 0x800];
    else if (lead >= 0xf0 && lead <= 0xf4) [length, min] = [4, 0x10000];
    let code = length === 1
      ? lead
      : length === 2
      ? lead & 0x1f
      : length === 3
      ? lead & 0x0f
      : lead & 0x07;
    let valid = length > 0 && i + length <= bytes.length;
    for (let k = 1; valid && k < length; k++) {
      const byte = bytes[i + k]!;
      if ((byte & 0xc0) !== 0x80) valid = false;
      code = (code << 6) | (byte & 0x3f);
    }
    if (valid && (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))) {
      valid = false;
    }
    if (valid) {
      out += String.fromCodePoint(code);
      i += length;
    } else {
      out += "\ufffd";
      i += 1;
    }
  }
  return out;
}
