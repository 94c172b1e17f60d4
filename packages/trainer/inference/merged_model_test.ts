// A LoRA run merged with `mergeLoraCheckpoint` (what `deno task merge` runs) reranks and encodes
// as the run directory itself does.
import assert from "node:assert/strict";
import { join } from "node:path";
import { gpuTest } from "@irforge/tensor/testing";
import { mergeLoraCheckpoint } from "@irforge/model";
import { readBeirCorpus, readBeirQueries } from "@irforge/data";
import { readRun } from "@irforge/data/trec";
import { encodeCorpus } from "./encode.ts";
import { readManifest, readShard } from "./dense_index.ts";
import { loadReranker, rerankRun } from "./rerank.ts";
import { loadTrainedModel } from "./trained_model.ts";
import { HAS_SCIFACT, scifactSlice, sliceConfig, STORIES, trainQuietly } from "./testing.ts";

const LORA = ["model.use_lora=true", "model.lora_r=4"];
// A merged directory has no run configuration: the run's settings come as --set.
const SETTINGS = ["data.query_max_len=12", "data.passage_max_len=16"];

gpuTest(
  "merged model: a merged LoRA cross-encoder and bi-encoder score as their run directories",
  async () => {
    if (!HAS_SCIFACT) return console.warn("skipped: shared SciFact/stories260K absent");
    const dir = await Deno.makeTempDir({ prefix: "merged_model_test_" });
    try {
      const slice = await scifactSlice(dir, {
        trainQueries: 4,
        testQueries: 3,
        extraDocs: 10,
        k: 6,
      });
      const corpus = await readBeirCorpus(slice.corpus);
      const input = {
        run: await readRun(slice.bm25),
        corpus,
        queries: await readBeirQueries(slice.queries),
      };
      const merge = async (recipe: "crossencoder" | "biencoder") => {
        const runDir = join(dir, recipe);
        const sets = [
          ...LORA,
          ...(recipe === "crossencoder" ? [`data.run_path=${slice.bm25}`] : []),
        ];
        await trainQuietly(sliceConfig(slice, recipe, runDir, sets));
        const merged = join(dir, `${recipe}-merged`);
        const report = await mergeLoraCheckpoint({
          base: STORIES,
          adapter: join(runDir, "checkpoints", "checkpoint-2"),
          out: merged,
        });
        assert.ok(report.merged > 0);
        assert.deepEqual(report.carried, recipe === "crossencoder" ? ["score.weight"] : []);
        return { runDir, merged };
      };

      // Cross-encoder: the merged directory carries the head and is recognised by it.
      const cross = await merge("crossencoder");
      const scoresOf = async (path: string, sets: string[]) => {
        const reranker = await loadReranker(path, { sets });
        try {
          return await rerankRun(reranker, input, { batchSize: 3 });
        } finally {
          reranker.dispose();
        }
      };
      const fromRun = await scoresOf(cross.runDir, []);
      const fromMerged = await scoresOf(cross.merged, [...SETTINGS, "model.pooling=last"]);
      assert.equal(fromMerged.size, fromRun.size);
      for (const [qid, docs] of fromRun) {
        const mine = fromMerged.get(qid)!;
        assert.deepEqual(mine.map((d) => d.docid), docs.map((d) => d.docid), qid);
        docs.forEach((d, i) =>
          assert.ok(Math.abs(mine[i]!.score - d.score) <= 1e-5, `${qid} ${d.docid}`)
        );
      }

      // Bi-encoder: the same embeddings from the run and from the merged directory.
      const bi = await merge("biencoder");
      const embeddingsOf = async (path: string, sets: string[], out: string) => {
        const model = await loadTrainedModel(path, { recipe: "biencoder", sets });
        try {
          await encodeCorpus(model, corpus, out, { batchSize: 4, shardSize: 64 });
        } finally {
          model.dispose();
        }
        return await readShard(out, (await readManifest(out))!, 0);
      };
      const runEmbeddings = await embeddingsOf(bi.runDir, [], join(dir, "index-run"));
      const mergedEmbeddings = await embeddingsOf(
        bi.merged,
        [...SETTINGS, "model.pooling=mean", "model.normalize=true"],
        join(dir, "index-merged"),
      );
      assert.equal(mergedEmbeddings.length, runEmbeddings.length);
      assert.ok(runEmbeddings.length > 0);
      runEmbeddings.forEach((v, i) =>
        assert.ok(Math.abs(mergedEmbeddings[i]! - v) <= 1e-5, `embedding value ${i}`)
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
