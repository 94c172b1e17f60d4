/**
 * Searches a dense index written by `encode`: queries are embedded with the
 * index's model (`query_max_len`, the same pooling and normalisation), and
 * every shard is scored exactly on the GPU (`exactTopKGpu`, inner product);
 * the per-shard top k merge into one top k per query (score descending,
 * ties by the lower corpus position).
 *
 * @module
 */

import { InputError } from "@irforge/data/input-error";
import type { Queries } from "@irforge/data";
import type { ScoredDocument } from "@irforge/eval";
import { embedTexts } from "../recipes/biencoder.ts";
import { exactTopKGpu, mergeTopK } from "../recipes/top_k.ts";
import {
  checkIndexModel,
  type IndexManifest,
  MANIFEST_FILE,
  readDocids,
  readManifest,
  readShard,
} from "./dense_index.ts";
import type { TrainedModel } from "./trained_model.ts";

/** Options of {@link searchIndex}. */
export interface SearchOptions {
  /** Documents per query (default 1000). */
  k?: number;
  /** Queries per forward pass (default the run's `per_device_eval_batch_size`). */
  batchSize?: number;
  /** Called after each shard. */
  progress?: (done: number, total: number) => void;
}

/** Opens the complete index in `dir` built by `model`; refuses anything else. */
export async function openIndexFor(
  dir: string,
  model: TrainedModel,
): Promise<{ manifest: IndexManifest; docids: string[] }> {
  const manifest = await readManifest(dir);
  if (!manifest) {
    throw new InputError(
      { file: dir },
      `no ${MANIFEST_FILE}: not an index made by deno task encode`,
    );
  }
  checkIndexModel(dir, manifest, model);
  if (!manifest.complete) {
    throw new InputError(
      { file: dir },
      "this index is incomplete (encode was interrupted); run deno task encode again to finish it",
    );
  }
  const docids = await readDocids(dir);
  if (docids.length !== manifest.documents) {
    throw new InputError(
      { file: dir },
      `docids.txt lists ${docids.length} documents, the manifest ${manifest.documents}`,
    );
  }
  return { manifest, docids };
}

/** Query embeddings `[queries, dim]` as the model's recipe embeds queries. */
export async function embedQueries(
  model: TrainedModel,
  texts: readonly string[],
  batchSize: number,
): Promise<Float32Array> {
  const { model: lm, tokenizer } = model.loaded;
  const d = model.config.data, m = model.config.model;
  const dim = lm.config.hiddenSize;
  const out = new Float32Array(texts.length * dim);
  for (let start = 0; start < texts.length; start += batchSize) {
    const values = await embedTexts(lm, tokenizer, texts.slice(start, start + batchSize), {
      maxLength: d.query_max_len,
      pooling: m.pooling,
      normalize: m.normalize,
      padToMultipleOf: d.pad_to_multiple_of ?? 8,
    });
    out.set(values, start * dim);
  }
  return out;
}

/**
 * The top `k` documents of the index in `dir` for every query, by inner
 * product of the model's embeddings.
 */
export async function searchIndex(
  model: TrainedModel,
  dir: string,
  queries: Queries,
  options: SearchOptions = {},
): Promise<Map<string, ScoredDocument[]>> {
  const { manifest, docids } = await openIndexFor(dir, model);
  const k = options.k ?? 1000;
  const qids = [...queries.keys()];
  const dim = manifest.dim;
  const vectors = await embedQueries(
    model,
    qids.map((q) => queries.get(q)!),
    options.batchSize ?? model.config.training.per_device_eval_batch_size,
  );
  let best = qids.map(() => [] as { index: number; score: number }[]);
  for (let i = 0; i < manifest.shards; i++) {
    const shard = await readShard(dir, manifest, i);
    const rows = shard.length / dim;
    const hits = await exactTopKGpu(vectors, qids.length, shard, rows, dim, k);
    const offset = i * manifest.shard_size;
    best = best.map((list, q) =>
      mergeTopK(list, hits[q]!.map((h) => ({ index: h.index + offset, score: h.score })), k)
    );
    options.progress?.(i + 1, manifest.shards);
  }
  return new Map(
    qids.map((qid, q) => [qid, best[q]!.map((h) => ({ docid: docids[h.index]!, score: h.score }))]),
  );
}
