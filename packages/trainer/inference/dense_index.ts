/**
 * The on-disk dense index that `encode` writes and `search` and `mine`
 * read:
 *
 * ```
 * index/
 *   manifest.json                  model fingerprint, pooling, dims, shard list, complete flag
 *   docids.txt                     every document id, corpus order, one per line
 *   embeddings-00000.safetensors   tensor "embeddings" F32 [rows, dim], rows = shard_size
 *   embeddings-00001.safetensors   … (the last shard may be shorter)
 * ```
 *
 * Shard `i` holds documents `[i·shard_size, (i+1)·shard_size)` of
 * `docids.txt`. Each shard file is written whole (temporary file, then
 * rename), so a shard file that exists is complete; `manifest.json` says
 * `"complete": true` only once every shard is there.
 *
 * @module
 */

import { join } from "node:path";
import { openCheckpoint } from "@irforge/model/safetensors";
import { InputError } from "@irforge/data/input-error";

/** `manifest.json`'s `format`. */
export const INDEX_FORMAT = "irforge-dense-index";
/** Name of the embeddings tensor in every shard. */
export const EMBEDDINGS_TENSOR = "embeddings";
/** The manifest's file name. */
export const MANIFEST_FILE = "manifest.json";
/** The docid list's file name. */
export const DOCIDS_FILE = "docids.txt";

/** What `manifest.json` holds. */
export interface IndexManifest {
  /** Always {@link INDEX_FORMAT}. */
  format: typeof INDEX_FORMAT;
  /** Manifest version. */
  version: 1;
  /** The encoding model: fingerprint (SHA-256) and where it was loaded from. */
  model: { fingerprint: string; description: string };
  /** Pooling of the encoding model (`model.pooling`). */
  pooling: string;
  /** Whether embeddings are L2-normalised. */
  normalize: boolean;
  /** Tokens per passage (the recipe's `passage_max_len`). */
  max_length: number;
  /** Embedding width. */
  dim: number;
  /** Number of documents. */
  documents: number;
  /** Documents per shard. */
  shard_size: number;
  /** Number of shards (`ceil(documents / shard_size)`). */
  shards: number;
  /** Whether every shard is written. */
  complete: boolean;
}

/** File name of shard `i`. */
export function shardFile(i: number): string {
  return `embeddings-${String(i).padStart(5, "0")}.safetensors`;
}

/** Reads and checks `dir/manifest.json`; `null` when there is none. */
export async function readManifest(dir: string): Promise<IndexManifest | null> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InputError({ file: path }, `not JSON: ${(error as Error).message}`);
  }
  const m = value as Partial<IndexManifest>;
  if (typeof m !== "object" || m === null || m.format !== INDEX_FORMAT) {
    throw new InputError({ file: path, field: "format" }, `not an index made by deno task encode`);
  }
  if (m.version !== 1) {
    throw new InputError({ file: path, field: "version" }, `unknown version ${m.version}`);
  }
  for (const field of ["dim", "documents", "shard_size", "shards", "max_length"] as const) {
    if (!Number.isInteger(m[field]) || (m[field] as number) < 0) {
      throw new InputError({ file: path, field }, `expected a non-negative integer`);
    }
  }
  if (typeof m.model?.fingerprint !== "string") {
    throw new InputError({ file: path, field: "model.fingerprint" }, "missing");
  }
  return m as IndexManifest;
}

/** Reads `dir/docids.txt`. */
export async function readDocids(dir: string): Promise<string[]> {
  const text = await Deno.readTextFile(join(dir, DOCIDS_FILE));
  return text.length === 0 ? [] : text.replace(/\n$/, "").split("\n");
}

/**
 * Refuses an index that `fingerprint`'s model did not build, with a
 * sentence naming both models.
 */
export function checkIndexModel(
  dir: string,
  manifest: IndexManifest,
  model: { fingerprint: string; description: string },
): void {
  if (manifest.model.fingerprint !== model.fingerprint) {
    throw new InputError(
      { file: join(dir, MANIFEST_FILE), field: "model.fingerprint" },
      `this index was built by another model (${manifest.model.description}), not by ` +
        `${model.description}; encode the corpus with this model into another folder`,
    );
  }
}

/** Reads shard `i`'s embeddings, checking their shape against the manifest. */
export async function readShard(
  dir: string,
  manifest: IndexManifest,
  i: number,
): Promise<Float32Array> {
  const path = join(dir, shardFile(i));
  const rows = Math.min(manifest.shard_size, manifest.documents - i * manifest.shard_size);
  const checkpoint = await openCheckpoint(path);
  try {
    const info = checkpoint.info(EMBEDDINGS_TENSOR);
    if (info.shape[0] !== rows || info.shape[1] !== manifest.dim) {
      throw new InputError(
        { file: path, field: EMBEDDINGS_TENSOR },
        `shape [${info.shape.join(", ")}], the manifest says [${rows}, ${manifest.dim}]`,
      );
    }
    return await checkpoint.read(EMBEDDINGS_TENSOR, { as: "f32" });
  } finally {
    checkpoint.close();
  }
}
