/**
 * Finds and loads a tokenizer from a file or a model directory.
 *
 * @module
 */

import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { HfJsonTokenizer } from "./hf_tokenizer_json.ts";
import { SentencePieceTokenizer } from "./sentencepiece.ts";
import type { Tokenizer } from "./tokenizer.ts";

/**
 * Loads a tokenizer. `path` may be a Hugging Face `tokenizer.json`, a
 * SentencePiece `.model` file (any name, e.g. Mistral's `tokenizer.model.v3`),
 * or a model directory: there `tokenizer.json` is preferred (with the special
 * tokens named in `tokenizer_config.json`), else `tokenizer.model`.
 */
export async function loadTokenizer(path: string): Promise<Tokenizer> {
  if (!existsSync(path)) throw new Error(`${path}: no such tokenizer file or directory`);
  if (statSync(path).isDirectory()) {
    if (existsSync(join(path, "tokenizer.json"))) return await HfJsonTokenizer.load(path);
    const model = join(path, "tokenizer.model");
    if (existsSync(model)) return await SentencePieceTokenizer.load(model);
    throw new Error(`${path}: no tokenizer.model in this directory (nor a tokenizer.json)`);
  }
  if (path.endsWith(".json")) return await HfJsonTokenizer.load(path);
  return await SentencePieceTokenizer.load(path);
}
