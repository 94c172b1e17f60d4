/**
 * Parses a SentencePiece `.model` file (`sentencepiece_model.proto`
 * `ModelProto`): the pieces with their scores and types, and the parts of
 * `TrainerSpec` and `NormalizerSpec` that change how text is encoded.
 *
 * @module
 */

import { ProtoError, protoFields, protoFloat, protoInt32, protoString } from "./protobuf.ts";

/** `SentencePiece.Type`. */
export const PieceType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** `TrainerSpec.ModelType`. */
export const SentencePieceModelType = { UNIGRAM: 1, BPE: 2, WORD: 3, CHAR: 4 } as const;

/** One vocabulary entry. */
export interface SentencePiece {
  /** The piece text (`▁` stands for a space; byte pieces read `<0x0A>`). */
  piece: string;
  /** Merge priority for BPE (higher merges first) or log-probability for unigram. */
  score: number;
  /** One of {@link PieceType}. */
  type: number;
}

/** The fields of a `.model` file that encoding and decoding depend on. */
export interface SentencePieceModel {
  /** Pieces, indexed by id. */
  pieces: SentencePiece[];
  /** One of {@link SentencePieceModelType}. */
  modelType: number;
  /** Whether unknown characters become their UTF-8 byte pieces. */
  byteFallback: boolean;
  /** Id of `<unk>`. */
  unkId: number;
  /** Id of `<s>`, or -1. */
  bosId: number;
  /** Id of `</s>`, or -1. */
  eosId: number;
  /** Id of the padding piece, or -1. */
  padId: number;
  /** Text `<unk>` decodes to (default " ⁇ "). */
  unkSurface: string;
  /** Whether whitespace ends a piece instead of starting it (unsupported when true). */
  treatWhitespaceAsSuffix: boolean;
  /** Normalizer rule name (`identity` for Llama/Mistral). */
  normalizerName: string;
  /** Whether a compiled normalization map is present (unsupported when non-empty). */
  hasCharsMap: boolean;
  /** Whether a `▁` is prepended to the text. */
  addDummyPrefix: boolean;
  /** Whether leading, trailing and repeated spaces are removed. */
  removeExtraWhitespaces: boolean;
  /** Whether spaces are replaced by `▁`. */
  escapeWhitespaces: boolean;
}

/** Parses the bytes of a `.model` file. `file` names it in errors. */
export function parseSentencePieceModel(bytes: Uint8Array, file: string): SentencePieceModel {
  const model: SentencePieceModel = {
    pieces: [],
    modelType: SentencePieceModelType.UNIGRAM,
    byteFallback: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    unkSurface: " \u2047 ",
    treatWhitespaceAsSuffix: false,
    normalizerName: "nmt_nfkc",
    hasCharsMap: false,
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
  try {
    for (const top of protoFields(bytes, `${file} ModelProto`)) {
      if (top.field === 1 && top.wire === 2) {
        const piece: SentencePiece = { piece: "", score: 0, type: PieceType.NORMAL };
        for (const f of protoFields(top.value, `${file} piece ${model.pieces.length}`)) {
          if (f.field === 1 && f.wire === 2) piece.piece = protoString(f.value);
          else if (f.field === 2 && f.wire === 5) piece.score = protoFloat(f.value);
          else if (f.field === 3 && f.wire === 0) piece.type = protoInt32(f.value);
        }
        model.pieces.push(piece);
      } else if (top.field === 2 && top.wire === 2) {
        for (const f of protoFields(top.value, `${file} TrainerSpec`)) {
          if (f.wire === 0) {
            const v = protoInt32(f.value);
            if (f.field === 3) model.modelType = v;
            else if (f.field === 35) model.byteFallback = v !== 0;
            else if (f.field === 24) model.treatWhitespaceAsSuffix = v !== 0;
            else if (f.field === 40) model.unkId = v;
            else if (f.field === 41) model.bosId = v;
            else if (f.field === 42) model.eosId = v;
            else if (f.field === 43) model.padId = v;
          } else if (f.wire === 2 && f.field === 44) {
            model.unkSurface = protoString(f.value);
          }
        }
      } else if (top.field === 3 && top.wire === 2) {
        for (const f of protoFields(top.value, `${file} NormalizerSpec`)) {
          if (f.wire === 2 && f.field === 1) model.normalizerName = protoString(f.value);
          else if (f.wire === 2 && f.field === 2) model.hasCharsMap = f.value.length > 0;
          else if (f.wire === 0 && f.field === 3) model.addDummyPrefix = f.value !== 0n;
          else if (f.wire === 0 && f.field === 4) model.removeExtraWhitespaces = f.value !== 0n;
          else if (f.wire === 0 && f.field === 5) model.escapeWhitespaces = f.value !== 0n;
        }
      }
    }
  } catch (error) {
    if (error instanceof ProtoError) {
      throw new Error(`${error.message} (not a SentencePiece .model file?)`);
    }
    throw error;
  }
  if (model.pieces.length === 0) {
    throw new Error(`${file}: no pieces found (not a SentencePiece .model file?)`);
  }
  return model;
}
