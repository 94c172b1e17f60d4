/**
 * Tokenizers: SentencePiece BPE models (Llama 1/2, Mistral v1/v3, llama2.c)
 * read from their `.model` protobuf, encoding and decoding exactly as the
 * `sentencepiece` library does, with byte fallback and optional parsing of
 * control tokens written in the text.
 *
 * ```ts
 * import { loadTokenizer } from "@irforge/model/tokenizer";
 * const tok = await loadTokenizer("path/to/model_dir");
 * const ids = tok.encode("Hello world", { addBos: true }); // Llama 2: [1, 15043, 3186]
 * tok.decode(ids); // "Hello world"
 * ```
 *
 * @module
 */

export type { DecodeOptions, EncodeOptions, Tokenizer } from "./tokenizer.ts";
export { decodeUtf8PerByte, SentencePieceTokenizer } from "./sentencepiece.ts";
export {
  parseSentencePieceModel,
  PieceType,
  type SentencePiece,
  type SentencePieceModel,
  SentencePieceModelType,
} from "./sentencepiece_model.ts";
export {
  ProtoError,
  type ProtoField,
  protoFields,
  protoFloat,
  protoInt32,
  protoString,
} from "./protobuf.ts";
export { loadTokenizer } from "./load.ts";
export {
  HfJsonTokenizer,
  sentencePieceSpecialTokens,
  sentencePieceToTokenizerJson,
  type SpecialTokenNames,
  type TokenizerJson,
  type TokenizerJsonAddedToken,
} from "./hf_tokenizer_json.ts";
