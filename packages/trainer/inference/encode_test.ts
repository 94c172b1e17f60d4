import assert from "node:assert/strict";
import { join } from "node:path";
import { gpuTest } from "@irforge/tensor/testing";
import { passageText, readBeirCorpus, readBeirQueries } from "@irforge/data";
import { biencoderTask } from "../recipes/biencoder.ts";
import { encodeCorpus } from "./encode.ts";
import { readDocids, readManifest, readShard, shardFile } from "./dense_index.ts";
import { searchIndex } from "./search.ts";
import { loadTrainedModel } from "./trained_model.ts";
import { HAS_SCIFACT, scifactSlice, sliceConfig, trainQuietly } from "./testing.ts";

async function filesOf(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const entry of Deno.readDir(dir)) {
    out.set(entry.name, await Deno.readFile(join(dir, entry.name)));
  }
  return out;
}

gpuTest(
  "encode → search (SciFact, trained bi-encoder): CPU brute force, resume, refusals",
  async () => {
    if (!HAS_SCIFACT) return console.warn("skipped: shared SciFact/stories260K absent");
    const dir = await Deno.makeTempDir({ prefix: "encode_test_" });
    try {
      const slice = await scifactSlice(dir, {
        trainQueries: 4,
        testQueries: 5,
        extraDocs: 40,
        k: 8,
      });
      const runDir = join(dir, "run");
      const config = sliceConfig(slice, "biencoder", runDir);
      await trainQuietly(config);
      const corpus = await readBeirCorpus(slice.corpus);
      const queries = await readBeirQueries(slice.queries);
      const model = await loadTrainedModel(runDir);
      try {
        // An index in one go: 48 documents, shards of 16, batches of 8.
        const whole = join(dir, "whole");
        const result = await encodeCorpus(model, corpus, whole, { batchSize: 8, shardSize: 16 });
        assert.equal(result.complete, true);
        assert.equal(result.manifest.shards, Math.ceil(corpus.size / 16));
        assert.deepEqual(await readDocids(whole), [...corpus.keys()]);
        const manifest = (await readManifest(whole))!;
        const docs = new Float32Array(corpus.size * manifest.dim);
        for (let i = 0; i < manifest.shards; i++) {
          docs.set(await readShard(whole, manifest, i), i * 16 * manifest.dim);
        }

        // The stored embeddings are the recipe's own (its evaluation embeds passages this way).
        const task = await biencoderTask(config);
        try {
          await task.loadWeights(model.checkpoint!);
          const texts = [...corpus.values()].map(passageText);
          const own = await task.embed(texts, config.data.passage_max_len);
          for (let i = 0; i < own.length; i++) {
            assert.ok(Math.abs(own[i]! - docs[i]!) <= 1e-5, `embedding value ${i}`);
          }
        } finally {
          task.dispose();
        }

        // search = float64 brute force over the stored embeddings (ties: lower corpus position).
        const k = 7;
        const hits = await searchIndex(model, whole, queries, { k, batchSize: 3 });
        const task2 = await biencoderTask(config);
        let queryVectors: Float32Array;
        try {
          await task2.loadWeights(model.checkpoint!);
          queryVectors = await task2.embed([...queries.values()], config.data.query_max_len);
        } finally {
          task2.dispose();
        }
        const docids = [...corpus.keys()];
        const dim = manifest.dim;
        [...queries.keys()].forEach((qid, q) => {
          const scores = docids.map((_, j) => {
            let s = 0;
            for (let c = 0; c < dim; c++) s += queryVectors[q * dim + c]! * docs[j * dim + c]!;
            return { j, s };
          }).sort((a, b) => b.s - a.s || a.j - b.j).slice(0, k);
          const got = hits.get(qid)!;
          assert.equal(got.length, k);
          got.forEach((hit, r) => {
            assert.ok(Math.abs(hit.score - scores[r]!.s) <= 1e-5, `${qid} rank ${r} score`);
            // Equal docids unless two scores are within float noise of each other.
            if (hit.docid !== docids[scores[r]!.j]) {
              assert.ok(Math.abs(scores[r]!.s - (scores[r + 1]?.s ?? -Infinity)) < 1e-5, qid);
            }
          });
        });

        // Interrupted after the first shard, with a stray half-written shard: resumes to the same bytes.
        const resumed = join(dir, "resumed");
        const stop = new AbortController();
        const first = await encodeCorpus(model, corpus, resumed, {
          batchSize: 8,
          shardSize: 16,
          signal: stop.signal,
          progress: (done) => done >= 8 && stop.abort(),
        });
        assert.equal(first.complete, false);
        assert.equal(first.writtenShards, 1);
        assert.equal((await readManifest(resumed))!.complete, false);
        await Deno.writeTextFile(join(resumed, `${shardFile(1)}.partial`), "half a shard");
        await assert.rejects(
          () => searchIndex(model, resumed, queries),
          /this index is incomplete \(encode was interrupted\)/,
        );
        const second = await encodeCorpus(model, corpus, resumed, { batchSize: 8, shardSize: 16 });
        assert.deepEqual([second.resumedShards, second.complete], [1, true]);
        const a = await filesOf(whole), b = await filesOf(resumed);
        b.delete(`${shardFile(1)}.partial`);
        assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
        for (const [name, bytes] of a) assert.deepEqual(b.get(name), bytes, name);

        // Another corpus, or a non-empty folder that is no index: refused, nothing overwritten.
        const fewer = new Map([...corpus].slice(1));
        await assert.rejects(
          () => encodeCorpus(model, fewer, whole, { batchSize: 8, shardSize: 16 }),
          /this index was built from another corpus/,
        );
        await assert.rejects(
          () => encodeCorpus(model, corpus, dir, { batchSize: 8 }),
          /holds files .* but no index manifest/,
        );
      } finally {
        model.dispose();
      }

      // Another model (same weights, last-token pooling): its fingerprint differs, so it is refused.
      const other = await loadTrainedModel(runDir, { sets: ["model.pooling=last"] });
      try {
        await assert.rejects(
          () => searchIndex(other, join(dir, "whole"), queries),
          /this index was built by another model \(biencoder run .*\), not by biencoder run/,
        );
        await assert.rejects(
          () => encodeCorpus(other, corpus, join(dir, "whole")),
          /built by another model/,
        );
      } finally {
        other.dispose();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
