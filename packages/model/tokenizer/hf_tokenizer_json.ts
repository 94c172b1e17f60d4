/**
 * Hugging Face `tokenizer.json` tokenizers, run by `@huggingface/tokenizers`
 * (the pure-JS port used by transformers.js), behind irforge's
 * {@link Tokenizer} interface; and {@link sentencePieceToTokenizerJson}, which
 * writes the "LlamaTokenizerFast" `tokenizer.json` for a SentencePiece BPE
 * model (BPE over the pieces with merges ranked by score, byte fallback,
 * `▁` dummy prefix), the layout transformers' `LlamaConverter` produces.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { PieceType, type SentencePieceModel } from "./sentencepiece_model.ts";
import type { DecodeOptions, EncodeOptions, Tokenizer } from "./tokenizer.ts";

const spaceSymbol = "\u2581";

/** One entry of `tokenizer.json`'s `added_tokens`. */
export interface TokenizerJsonAddedToken {
  /** Token id. */
  id: number;
  /** Token text. */
  content: string;
  /** Match only as a whole word. */
  single_word: boolean;
  /** Swallow whitespace on the left. */
  lstrip: boolean;
  /** Swallow whitespace on the right. */
  rstrip: boolean;
  /** Match in normalized (true) or raw (false) text. */
  normalized: boolean;
  /** Control token: skipped when decoding with `skipSpecial`. */
  special: boolean;
}

/** The parts of a `tokenizer.json` this module writes (a reader accepts any the library runs). */
export interface TokenizerJson {
  /** Format version ("1.0"). */
  version: string;
  /** Truncation settings (none). */
  truncation: null;
  /** Padding settings (none). */
  padding: null;
  /** Tokens matched before the model runs. */
  added_tokens: TokenizerJsonAddedToken[];
  /** Text normalizer. */
  normalizer: Record<string, unknown> | null;
  /** Pre-tokenizer (none for SentencePiece layouts). */
  pre_tokenizer: Record<string, unknown> | null;
  /** Adds BOS/EOS when a caller asks transformers for special tokens. */
  post_processor: Record<string, unknown> | null;
  /** Ids → text. */
  decoder: Record<string, unknown> | null;
  /** The BPE model. */
  model: {
    type: "BPE";
    dropout: null;
    unk_token: string | null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: [string, string][];
  };
}

/** Special-token strings, as `tokenizer_config.json` names them. */
export interface SpecialTokenNames {
  /** Beginning of sequence, e.g. `<s>`. */
  bos?: string | null;
  /** End of sequence, e.g. `</s>`. */
  eos?: string | null;
  /** Padding. */
  pad?: string | null;
  /** Unknown token. */
  unk?: string | null;
}

/**
 * Converts a SentencePiece BPE model into the HF "LlamaTokenizerFast"
 * `tokenizer.json` layout: every piece in the vocabulary; a merge for each
 * way of splitting a normal/user-defined/unused piece into two such pieces,
 * ordered by the merged piece's score (highest first), then its id, then the
 * halves' ids (transformers' `SentencePieceExtractor` order); control and
 * unknown pieces as special added tokens, user-defined pieces as non-special
 * added tokens; normalizer `Prepend("▁")` + `Replace(" ", "▁")` (plus the
 * whitespace clean-up when the model removes extra whitespace); decoder
 * `Replace("▁", " ")`, `ByteFallback`, `Fuse`, `Strip(" ", 1, 0)` (all leading spaces when the
 * model removes extra whitespace); a
 * `TemplateProcessing` post-processor adding BOS.
 *
 * Known differences from the SentencePiece library: user-defined pieces are
 * matched in the raw text and the text around them gets its own `▁` prefix
 * (HF's convention) where SentencePiece keeps one prefix for the whole text.
 */
export function sentencePieceToTokenizerJson(model: SentencePieceModel): TokenizerJson {
  if (model.modelType !== 2) {
    throw new Error(`only SentencePiece BPE models convert to a BPE tokenizer.json`);
  }
  if (model.hasCharsMap) {
    throw new Error(`a SentencePiece normalizer with a character map cannot be converted`);
  }
  if (model.treatWhitespaceAsSuffix) {
    throw new Error(`treat_whitespace_as_suffix cannot be converted`);
  }
  const vocab: Record<string, number> = {};
  const mergeable = new Map<string, number>();
  model.pieces.forEach((p, id) => {
    if (!(p.piece in vocab)) vocab[p.piece] = id;
    const canMerge = p.type === PieceType.NORMAL || p.type === PieceType.USER_DEFINED ||
      p.type === PieceType.UNUSED;
    if (canMerge && !mergeable.has(p.piece)) mergeable.set(p.piece, id);
  });
  const merges: { left: string; right: string; score: number; id: number; l: number; r: number }[] =
    [];
  for (const [piece, id] of mergeable) {
    const chars = Array.from(piece);
    for (let cut = 1; cut < chars.length; cut++) {
      const left = chars.slice(0, cut).join("");
      const right = chars.slice(cut).join("");
      const l = mergeable.get(left);
      const r = mergeable.get(right);
      if (l === undefined || r === undefined) continue;
      merges.push({ left, right, score: model.pieces[id]!.score, id, l, r });
    }
  }
  merges.sort((a, b) => b.score - a.score || a.id - b.id || a.l - b.l || a.r - b.r);

  const added_tokens: TokenizerJsonAddedToken[] = [];
  model.pieces.forEach((p, id) => {
    const special = p.type === PieceType.CONTROL || p.type === PieceType.UNKNOWN;
    if (!special && p.type !== PieceType.USER_DEFINED) return;
    added_tokens.push({
      id,
      content: p.piece,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special,
    });
  });

  const normalizers: Record<string, unknown>[] = [];
  // sentencepiece order: drop leading / repeated spaces, add the prefix, escape, drop trailing.
  if (model.removeExtraWhitespaces) {
    normalizers.push({ type: "Replace", pattern: { Regex: "\\A +" }, content: "" });
    normalizers.push({ type: "Replace", pattern: { Regex: " {2,}" }, content: " " });
  }
  if (model.addDummyPrefix) normalizers.push({ type: "Prepend", prepend: spaceSymbol });
  if (model.escapeWhitespaces) {
    normalizers.push({ type: "Replace", pattern: { String: " " }, content: spaceSymbol });
  }
  if (model.removeExtraWhitespaces) {
    const space = model.escapeWhitespaces ? spaceSymbol : " ";
    normalizers.push({ type: "Replace", pattern: { Regex: `${space}+\\z` }, content: "" });
  }

  const bos = model.pieces[model.bosId]?.piece;
  const unk = model.pieces[model.unkId]?.piece ?? null;
  const post_processor = bos === undefined ? null : {
    type: "TemplateProcessing",
    single: [
      { SpecialToken: { id: bos, type_id: 0 } },
      { Sequence: { id: "A", type_id: 0 } },
    ],
    pair: [
      { SpecialToken: { id: bos, type_id: 0 } },
      { Sequence: { id: "A", type_id: 0 } },
      { SpecialToken: { id: bos, type_id: 1 } },
      { Sequence: { id: "B", type_id: 1 } },
    ],
    special_tokens: { [bos]: { id: bos, ids: [model.bosId], tokens: [bos] } },
  };

  // sentencepiece drops the dummy prefix when decoding; with remove_extra_whitespaces, every
  // leading space (there can be none in encoded text).
  const leadingSpacesToStrip = model.removeExtraWhitespaces
    ? 2 ** 31 - 1
    : model.addDummyPrefix
    ? 1
    : 0;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens,
    normalizer: normalizers.length === 0 ? null : { type: "Sequence", normalizers },
    pre_tokenizer: null,
    post_processor,
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: spaceSymbol }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: leadingSpacesToStrip, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: model.byteFallback,
      ignore_merges: false,
      vocab,
      merges: merges.map((m) => [m.left, m.right]),
    },
  };
}

/**
 * The special-token names of a `tokenizer.json` converted from `model`, as a
 * `tokenizer_config.json` would list them.
 */
export function sentencePieceSpecialTokens(model: SentencePieceModel): SpecialTokenNames {
  const name = (id: number) => (id >= 0 ? model.pieces[id]?.piece ?? null : null);
  return {
    bos: name(model.bosId),
    eos: name(model.eosId),
    pad: name(model.padId),
    unk: name(model.unkId),
  };
}

interface JsonObject {
  [key: string]: unknown;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `"<s>"` or `{ "content": "<s>", ... }` (both appear in `tokenizer_config.json`). */
function tokenName(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (isObject(value) && typeof value.content === "string") return value.content;
  return null;
}

/** A tokenizer read from a Hugging Face `tokenizer.json`. */
export class HfJsonTokenizer implements Tokenizer {
  /** Where it was loaded from (for messages). */
  readonly source: string;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  readonly unkId: number | null;
  // With every added token matched in the text (parseSpecial) and with the non-special ones only.
  readonly #withSpecial: HfTokenizer;
  readonly #plain: HfTokenizer;
  readonly #idToPiece: (string | undefined)[];

  /**
   * Builds a tokenizer from a parsed `tokenizer.json`. `special` names the
   * BOS/EOS/pad/unk tokens (from `tokenizer_config.json`); names it leaves
   * out fall back to `<s>`, `</s>`, `<pad>` and the model's `unk_token` when
   * those are in the vocabulary.
   */
  constructor(json: unknown, source = "<memory>", special: SpecialTokenNames = {}) {
    if (!isObject(json) || !isObject(json.model)) {
      throw new Error(`${source}: not a tokenizer.json (no "model" object)`);
    }
    const added = json.added_tokens ?? [];
    if (!Array.isArray(added)) throw new Error(`${source}: "added_tokens" is not an array`);
    const config = { clean_up_tokenization_spaces: false };
    try {
      this.#withSpecial = new HfTokenizer(json, config);
      const plain = {
        ...json,
        added_tokens: added.filter((t) => !(isObject(t) && t.special === true)),
      };
      this.#plain = new HfTokenizer(plain, config);
    } catch (error) {
      throw new Error(
        `${source}: cannot build a tokenizer: ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
    }
    this.source = source;
    const vocab = this.#withSpecial.get_vocab(true);
    let size = 0;
    for (const id of vocab.values()) size = Math.max(size, id + 1);
    this.vocabSize = size;
    this.#idToPiece = new Array(size);
    for (const [piece, id] of vocab) this.#idToPiece[id] = piece;
    const modelUnk = tokenName(json.model.unk_token);
    const find = (name: string | null | undefined, fallback: string | null) => {
      const chosen = name === undefined ? fallback : name;
      if (chosen === null) return null;
      const id = vocab.get(chosen);
      if (id === undefined && name !== undefined) {
        throw new Error(
          `${source}: special token ${JSON.stringify(name)} is not in the vocabulary`,
        );
      }
      return id ?? null;
    };
    this.bosId = find(special.bos, "<s>");
    this.eosId = find(special.eos, "</s>");
    this.padId = find(special.pad, "<pad>");
    this.unkId = find(special.unk, modelUnk);
  }

  /**
   * Reads `tokenizer.json` (a file, or a directory holding one); special-token
   * names come from a `tokenizer_config.json` beside it when there is one.
   */
  static async load(path: string): Promise<HfJsonTokenizer> {
    const file = path.endsWith(".json") ? path : join(path, "tokenizer.json");
    let json: unknown;
    try {
      json = JSON.parse(await Deno.readTextFile(file));
    } catch (error) {
      throw new Error(
        `${file}: cannot read tokenizer.json: ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
    }
    const special: SpecialTokenNames = {};
    const configFile = join(dirname(file), "tokenizer_config.json");
    if (existsSync(configFile)) {
      let config: unknown;
      try {
        config = JSON.parse(await Deno.readTextFile(configFile));
      } catch (error) {
        throw new Error(
          `${configFile}: not valid JSON: ${
            error instanceof Error ? error.message : String(error)
          }`,
        );
      }
      if (isObject(config)) {
        for (const key of ["bos", "eos", "pad", "unk"] as const) {
          if (`${key}_token` in config) special[key] = tokenName(config[`${key}_token`]);
        }
      }
    }
    return new HfJsonTokenizer(json, file, special);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const inner = options.parseSpecial ? this.#withSpecial : this.#plain;
    const ids: number[] = [];
    if (options.addBos && this.bosId !== null) ids.push(this.bosId);
    if (text.length > 0) ids.push(...inner.encode(text, { add_special_tokens: false }).ids);
    if (options.addEos && this.eosId !== null) ids.push(this.eosId);
    return ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || this.#idToPiece[id] === undefined) {
        throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
      }
    }
    if (ids.length === 0) return "";
    return this.#withSpecial.decode([...ids], {
      skip_special_tokens: options.skipSpecial ?? true,
      clean_up_tokenization_spaces: false,
    });
  }

  idToPiece(id: number): string {
    const piece = this.#idToPiece[id];
    if (piece === undefined) {
      throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    }
    return piece;
  }

  pieceToId(piece: string): number | undefined {
    return this.#withSpecial.token_to_id(piece);
  }
}
