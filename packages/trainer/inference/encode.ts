/**
 * Encodes a corpus with a trained bi-encoder into a sharded dense index
 * (see `dense_index.ts`), with the model's pooling, normalisation and
 * `passage_max_len`, exactly as the recipe's evaluation embeds passages
 * (`embedTexts`: `[BOS] title text [EOS]`).
 *
 * Resumable: an interrupted run leaves the shards it finished; running
 * again with the same model and corpus continues from the first missing
 * shard. Batches start at shard boundaries, so a resumed index is
 * identical, bit for bit, to one encoded in a single go. An index of
 * another model or corpus is refused, never overwritten.
 *
 * @module
 */

import { join } from "node:path";
import { type Corpus, passageText } from "@irforge/data";
import { InputError } from "@irforge/data/input-error";
import { writeSafetensors } from "@irforge/model/safetensors";
import { embedTexts } from "../recipes/biencoder.ts";
import { writeAtomic } from "../run_dir.ts";
import {
  checkIndexModel,
  DOCIDS_FILE,
  EMBEDDINGS_TENSOR,
  INDEX_FORMAT,
  type IndexManifest,
  MANIFEST_FILE,
  readDocids,
  readManifest,
  shardFile,
} from "./dense_index.ts";
import type { TrainedModel } from "./trained_model.ts";

/** Options of {@link encodeCorpus}. */
export interface EncodeOptions {
  /** Passages per forward pass (default the run's `per_device_eval_batch_size`). */
  batchSize?: number;
  /** Passages per shard, rounded up to a multiple of the batch (default 4096). */
  shardSize?: number;
  /** Called after each batch with passages done (resumed shards included) and the total. */
  progress?: (done: number, total: number) => void;
  /** Stops after the shard in progress when aborted (the index stays resumable). */
  signal?: AbortSignal;
  /** One line per decision (resuming, already complete). */
  log?: (line: string) => void;
}

/** What {@link encodeCorpus} did. */
export interface EncodeResult {
  /** The index's manifest as written. */
  manifest: IndexManifest;
  /** Shards found complete and kept. */
  resumedShards: number;
  /** Shards written by this call. */
  writtenShards: number;
  /** Whether the index is complete (false when `signal` stopped it). */
  complete: boolean;
}

/** Recipes whose models encode. */
export const ENCODE_RECIPES = ["biencoder"] as const;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Prepares `dir`: a fresh index, or the one to resume (same model, corpus, shards). */
async function openIndex(
  dir: string,
  fresh: IndexManifest,
  docids: readonly string[],
  log: (line: string) => void,
): Promise<IndexManifest> {
  const existing = await readManifest(dir);
  if (existing) {
    checkIndexModel(dir, existing, fresh.model);
    const manifestPath = join(dir, MANIFEST_FILE);
    const stored = await readDocids(dir);
    if (stored.length !== docids.length || stored.some((id, i) => id !== docids[i])) {
      throw new InputError(
        { file: join(dir, DOCIDS_FILE) },
        `this index was built from another corpus (${stored.length} documents, here ` +
          `${docids.length}, or in another order); encode into another folder`,
      );
    }
    if (existing.shard_size !== fresh.shard_size) {
      log(
        `resuming with the index's shard size ${existing.shard_size} (not ${fresh.shard_size})`,
      );
    }
    if (existing.dim !== fresh.dim) {
      throw new InputError({ file: manifestPath, field: "dim" }, `differs from the model's`);
    }
    return existing;
  }
  await Deno.mkdir(dir, { recursive: true });
  for await (const entry of Deno.readDir(dir)) {
    throw new InputError(
      { file: dir },
      `the folder holds files (${entry.name}, …) but no index manifest; choose an empty or new folder`,
    );
  }
  await writeAtomic(join(dir, DOCIDS_FILE), docids.length ? docids.join("\n") + "\n" : "");
  await writeAtomic(join(dir, MANIFEST_FILE), JSON.stringify(fresh, null, 2) + "\n");
  return fresh;
}

/**
 * Encodes `corpus` (in its order) with `model` into `dir`, resuming an
 * interrupted index of the same model and corpus.
 */
export async function encodeCorpus(
  model: TrainedModel,
  corpus: Corpus,
  dir: string,
  options: EncodeOptions = {},
): Promise<EncodeResult> {
  const config = model.config;
  if (!(ENCODE_RECIPES as readonly string[]).includes(config.recipe)) {
    throw new InputError(
      { file: model.checkpoint ?? model.merged ?? "model" },
      `a ${config.recipe} model does not encode (encode takes bi-encoder models)`,
    );
  }
  const log = options.log ?? (() => {});
  const batch = options.batchSize ?? config.training.per_device_eval_batch_size;
  const shardSize = Math.ceil((options.shardSize ?? 4096) / batch) * batch;
  const docids = [...corpus.keys()];
  const d = config.data, m = config.model;
  const fresh: IndexManifest = {
    format: INDEX_FORMAT,
    version: 1,
    model: { fingerprint: model.fingerprint, description: model.description },
    pooling: m.pooling,
    normalize: m.normalize,
    max_length: d.passage_max_len,
    dim: model.loaded.model.config.hiddenSize,
    documents: docids.length,
    shard_size: shardSize,
    shards: Math.ceil(docids.length / shardSize),
    complete: false,
  };
  const manifest = await openIndex(dir, fresh, docids, log);
  if (manifest.complete) {
    log(`${dir} is already complete (${manifest.documents} documents)`);
    return { manifest, resumedShards: manifest.shards, writtenShards: 0, complete: true };
  }
  const size = manifest.shard_size;
  const done: boolean[] = [];
  for (let i = 0; i < manifest.shards; i++) done.push(await exists(join(dir, shardFile(i))));
  const resumedShards = done.filter((x) => x).length;
  if (resumedShards > 0) {
    log(`resuming: ${resumedShards}/${manifest.shards} shards already written`);
  }
  const rowsOf = (i: number) => Math.min(size, manifest.documents - i * size);
  let passagesDone = done.reduce((n, x, i) => n + (x ? rowsOf(i) : 0), 0);
  options.progress?.(passagesDone, manifest.documents);
  const { model: lm, tokenizer } = model.loaded;
  let writtenShards = 0;
  for (let i = 0; i < manifest.shards; i++) {
    if (done[i]) continue;
    if (options.signal?.aborted) break;
    const rows = rowsOf(i);
    const embeddings = new Float32Array(rows * manifest.dim);
    for (let start = 0; start < rows; start += batch) {
      const ids = docids.slice(i * size + start, i * size + Math.min(rows, start + batch));
      const texts = ids.map((id) => passageText(corpus.get(id)!));
      const values = await embedTexts(lm, tokenizer, texts, {
        maxLength: d.passage_max_len,
        pooling: m.pooling,
        normalize: m.normalize,
        padToMultipleOf: d.pad_to_multiple_of ?? 8,
      });
      embeddings.set(values, start * manifest.dim);
      passagesDone += ids.length;
      options.progress?.(passagesDone, manifest.documents);
    }
    await writeSafetensors(join(dir, shardFile(i)), {
      [EMBEDDINGS_TENSOR]: { dtype: "F32", shape: [rows, manifest.dim], data: embeddings },
    });
    writtenShards++;
  }
  const complete = resumedShards + writtenShards === manifest.shards;
  if (complete) {
    manifest.complete = true;
    await writeAtomic(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + "\n");
  }
  return { manifest, resumedShards, writtenShards, complete };
}
