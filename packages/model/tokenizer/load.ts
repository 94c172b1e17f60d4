/**
 * Finds and loads a tokenizer from a file or a model directory.
 *
 * @module
 */

import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { SentencePieceTokenizer } from "./sentencepiece.ts";
import type { Tokenizer } from "./tokenizer.ts";

/**
 * Loads a tokenizer. `path` may be a SentencePiece `.model` file (any name,
 * e.g. Mistral's `tokenizer.model.v3`) or a directory holding
 * `tokenizer.model`. A directory with only a `tokenizer.json` is refused with
 * a message saying so (HF `tokenizer.json` is not supported yet).
 */
export async function loadTokenizer(path: string): Promise<Tokenizer> {
  if (!existsSync(path)) throw new Error(`${path}: no such tokenizer file or directory`);
  if (statSync(path).isDirectory()) {
    const model = join(path, "tokenizer.model");
    if (existsSync(model)) return await SentencePieceTokenizer.load(model);
    if (existsSync(join(path, "tokenizer.json"))) {
      throw new Error(
        `${path}: only tokenizer.json found; irforge reads SentencePiece tokenizer.model files (add the tokenizer.model the model repository ships)`,
      );
    }
    throw new Error(`${path}: no tokenizer.model in this directory`);
  }
  if (path.endsWith(".json")) {
    throw new Error(
      `${path}: HF tokenizer.json is not supported; pass the SentencePiece tokenizer.model`,
    );
  }
  return await SentencePieceTokenizer.load(path);
}
