import assert from "node:assert/strict";
import { join } from "node:path";
import { gpuTest } from "@irforge/tensor/testing";
import {
  hasShared,
  readBeirCorpus,
  readBeirQueries,
  readCandidates,
  sharedPath,
} from "@irforge/data";
import { readBeirQrels } from "@irforge/data/beir";
import { readQrels, readRun } from "@irforge/data/trec";
import { parseConfig } from "../config/parse.ts";
import { DEFAULT_DIR } from "../default/mod.ts";
import { evaluateRun, formatScoredRun, type ScoredDocument } from "@irforge/eval";
import { metricName, RETRIEVAL_MEASURES } from "../recipes/metrics.ts";
import { candidateLists, loadReranker, rerankRun } from "./rerank.ts";
import { HAS_SCIFACT, scifactSlice, sliceConfig, STORIES, trainQuietly } from "./testing.ts";

Deno.test("candidateLists: trec_eval order, cut to depth, unknown documents named", () => {
  const doc = (id: string) => ({ id, title: "", text: id });
  const corpus = new Map(["a", "b", "c"].map((id) => [id, doc(id)]));
  const queries = new Map([["q1", "query one"]]);
  const run = {
    tag: "t",
    queries: new Map([["q1", [
      { docid: "a", rank: 1, score: 1 },
      { docid: "b", rank: 2, score: 3 },
      { docid: "c", rank: 3, score: 3 },
    ]]]),
  };
  // Score descending, ties by docid descending (c before b), then cut to 2.
  const [list] = candidateLists(run, corpus, queries, { depth: 2 });
  assert.deepEqual(list!.documents.map((d) => d.id), ["c", "b"]);
  run.queries.get("q1")!.push({ docid: "zz", rank: 4, score: 0 });
  assert.throws(
    () => candidateLists(run, corpus, queries, { runName: "bm25.txt" }),
    /bm25\.txt \(field "docid"\): document "zz" of query "q1" is not in the corpus/,
  );
  assert.throws(
    () => candidateLists(run, corpus, new Map(), { runName: "bm25.txt" }),
    /query "q1" is not in the queries file/,
  );
});

gpuTest(
  "rerank: a trained cross-encoder reproduces its run's own evaluation (SciFact)",
  async () => {
    if (!HAS_SCIFACT) return console.warn("skipped: shared SciFact/stories260K absent");
    const dir = await Deno.makeTempDir({ prefix: "rerank_test_" });
    try {
      const slice = await scifactSlice(dir, {
        trainQueries: 4,
        testQueries: 5,
        extraDocs: 40,
        k: 8,
      });
      const runDir = join(dir, "run");
      const config = sliceConfig(slice, "crossencoder", runDir, [`data.run_path=${slice.bm25}`]);
      const trained = await trainQuietly(config);
      const reranker = await loadReranker(runDir);
      try {
        assert.equal(reranker.source.checkpoint, join(runDir, "checkpoints", "checkpoint-2"));
        const reranked = await rerankRun(reranker, {
          run: await readRun(slice.bm25),
          corpus: await readBeirCorpus(slice.corpus),
          queries: await readBeirQueries(slice.queries),
        }, { depth: 100, batchSize: 3 });
        const qrels = await readBeirQrels(slice.testQrels);
        // Through the file, as deno task eval reads it.
        const written = join(dir, "reranked.txt");
        await Deno.writeTextFile(written, formatScoredRun(reranked, "crossencoder"));
        const evaluation = evaluateRun(qrels, await readRun(written), {
          measures: RETRIEVAL_MEASURES,
        });
        // The recipe's own evaluation of the same candidates (eval/step-2.json), metric by metric.
        const own = JSON.parse(await Deno.readTextFile(join(runDir, "eval", "step-2.json")));
        for (const [name, value] of evaluation.summary) {
          assert.equal(value, own.metrics[metricName(name)], name);
        }
        // The run the recipe's evaluation wrote: same documents, scores within f32 noise.
        const ownRun = await readRun(join(runDir, "eval", "step-2.run.txt"));
        assert.equal(reranked.size, ownRun.queries.size);
        for (const [qid, entries] of ownRun.queries) {
          const mine = new Map<string, number>(reranked.get(qid)!.map((d) => [d.docid, d.score]));
          assert.equal(mine.size, entries.length, qid);
          for (const e of entries) {
            assert.ok(
              Math.abs(mine.get(e.docid)! - e.score) <= 1e-5 * (1 + Math.abs(e.score)),
              qid,
            );
          }
        }
        assert.equal(evaluation.summary.get("ndcg_cut_10"), trained["ndcg@10"]);
      } finally {
        reranker.dispose();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest(
  "rerank: a trained BlockRank model reproduces its run's own evaluation (DL19)",
  async () => {
    if (!hasShared("data", "trec-dl19", "retrieve_results_dl19.json")) {
      return console.warn("skipped: shared DL19 data absent");
    }
    const dl19 = (file: string) => sharedPath("data", "trec-dl19", file);
    const dir = await Deno.makeTempDir({ prefix: "rerank_blockrank_test_" });
    try {
      const runDir = join(dir, "run");
      const config = parseConfig(
        [
          "recipe: blockrank",
          "model:",
          `  model_name_or_path: random-init:${DEFAULT_DIR}/tiny-llama`,
          "  use_blockrank: true",
          "  use_lora: false",
          "data:",
          `  data_path: ${dl19("retrieve_results_dl19.json")}`,
          `  qrels_path: ${dl19("qrels.dl19-passage.txt")}`,
          "  num_documents: 4",
          "  max_block_length: 32",
          "  train_test_split: 0.2",
          "  max_eval_samples: 3",
          "  min_score: 2",
          "training:",
          `  output_dir: ${runDir}`,
          "  max_steps: 2",
          "  per_device_train_batch_size: 2",
          "  learning_rate: 0.003",
          "  use_aux_loss: true",
          "  eval_strategy: steps",
          "  eval_steps: 2",
          "  save_strategy: steps",
          "  save_steps: 2",
        ].join("\n"),
        "blockrank.yaml",
      );
      await trainQuietly(config);
      // The held-out queries' candidates as BEIR files and a run in first-stage order.
      const ownRun = await readRun(join(runDir, "eval", "step-2.run.txt"));
      const lists = (await readCandidates(dl19("retrieve_results_dl19.json")))
        .filter((l) => ownRun.queries.has(l.qid));
      assert.equal(lists.length, 3);
      const corpus = new Map<string, { id: string; title: string; text: string }>();
      const queries = new Map<string, string>();
      const run = {
        tag: "bm25",
        queries: new Map<string, { docid: string; rank: number; score: number }[]>(),
      };
      for (const l of lists) {
        queries.set(l.qid, l.query);
        for (const h of l.hits) corpus.set(h.docid, { id: h.docid, title: "", text: h.content });
        run.queries.set(l.qid, l.hits.map((h, i) => ({ docid: h.docid, rank: i + 1, score: -i })));
      }
      const reranker = await loadReranker(runDir);
      let reranked: Map<string, ScoredDocument[]>;
      try {
        reranked = await rerankRun(reranker, { run, corpus, queries }, { depth: 100 });
      } finally {
        reranker.dispose();
      }
      for (const [qid, entries] of ownRun.queries) {
        const mine = new Map<string, number>(reranked.get(qid)!.map((d) => [d.docid, d.score]));
        assert.equal(mine.size, entries.length, qid);
        for (const e of entries) {
          assert.ok(Math.abs(mine.get(e.docid)! - e.score) <= 1e-4, `${qid} ${e.docid}`);
        }
      }
      const qrels = await readQrels(dl19("qrels.dl19-passage.txt"));
      const own = JSON.parse(await Deno.readTextFile(join(runDir, "eval", "step-2.json")));
      const evaluation = evaluateRun(qrels, reranked, { measures: RETRIEVAL_MEASURES });
      for (const [name, value] of evaluation.summary) {
        assert.ok(Math.abs(value - own.metrics[metricName(name)]) < 1e-12, name);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest(
  "rerank: a trained listwise reranker (sliding windows) reproduces its run's own evaluation",
  async () => {
    // A tiny FIRST-style listwise run on NovelEval (4 queries cut to 7 hits, 1 held-out query
    // evaluated), then rerankRun of that query's first-stage list with the run's checkpoint.
    if (!HAS_SCIFACT || !hasShared("data", "noveleval", "data.json")) {
      return console.warn("skipped: shared NovelEval/stories260K absent");
    }
    const novel = (file: string) => sharedPath("data", "noveleval", file);
    const dir = await Deno.makeTempDir({ prefix: "rerank_listwise_test_" });
    try {
      const raw = JSON.parse(await Deno.readTextFile(novel("data.json"))) as {
        query: string;
        hits: unknown[];
      }[];
      const dataPath = join(dir, "data.json");
      await Deno.writeTextFile(
        dataPath,
        JSON.stringify(raw.slice(0, 4).map((q) => ({ ...q, hits: q.hits.slice(0, 7) }))),
      );
      const runDir = join(dir, "run");
      const config = parseConfig(
        [
          "recipe: listwise",
          "model:",
          `  model_name_or_path: ${JSON.stringify(STORIES)}`,
          "  use_lora: false",
          "data:",
          `  data_path: ${JSON.stringify(dataPath)}`,
          `  qrels_path: ${JSON.stringify(novel("qrels.txt"))}`,
          // Windows [3, 7), [1, 5), [0, 4): the sliding window moves over every held-out list.
          "  window_size: 4",
          "  stride: 2",
          "  passage_max_len: 5",
          "  query_max_len: 12",
          "  max_seq_length: 1024",
          "  train_test_split: 0.5",
          "  max_eval_samples: 1",
          "training:",
          `  output_dir: ${JSON.stringify(runDir)}`,
          "  objective: ranking",
          "  max_steps: 2",
          "  per_device_train_batch_size: 1",
          "  learning_rate: 0.003",
          "  eval_strategy: steps",
          "  eval_steps: 2",
          "  save_strategy: steps",
          "  save_steps: 2",
        ].join("\n"),
        "listwise.yaml",
      );
      await trainQuietly(config);
      const ownRun = await readRun(join(runDir, "eval", "step-2.run.txt"));
      const lists = (await readCandidates(dataPath)).filter((l) => ownRun.queries.has(l.qid));
      assert.equal(lists.length, 1);
      // The held-out candidates as BEIR corpus and queries and a first-stage run in list order.
      const corpus = new Map<string, { id: string; title: string; text: string }>();
      const queries = new Map<string, string>();
      const run = {
        tag: "first",
        queries: new Map<string, { docid: string; rank: number; score: number }[]>(),
      };
      for (const l of lists) {
        queries.set(l.qid, l.query);
        for (const h of l.hits) corpus.set(h.docid, { id: h.docid, title: "", text: h.content });
        run.queries.set(l.qid, l.hits.map((h, i) => ({ docid: h.docid, rank: i + 1, score: -i })));
      }
      const reranker = await loadReranker(runDir);
      let reranked: Map<string, ScoredDocument[]>;
      try {
        reranked = await rerankRun(reranker, { run, corpus, queries }, { depth: 100 });
      } finally {
        reranker.dispose();
      }
      // The trained model reorders the list (so agreement is not the first-stage order twice).
      assert.notDeepEqual(reranked.get(lists[0]!.qid)!.map((d) => d.score), [7, 6, 5, 4, 3, 2, 1]);
      // Same scores (n − rank) for every document, hence the same order and measures.
      assert.equal(reranked.size, ownRun.queries.size);
      for (const [qid, entries] of ownRun.queries) {
        const mine = new Map<string, number>(reranked.get(qid)!.map((d) => [d.docid, d.score]));
        assert.equal(mine.size, entries.length, qid);
        for (const e of entries) assert.equal(mine.get(e.docid), e.score, `${qid} ${e.docid}`);
      }
      const qrels = await readQrels(novel("qrels.txt"));
      const own = JSON.parse(await Deno.readTextFile(join(runDir, "eval", "step-2.json")));
      const evaluation = evaluateRun(qrels, reranked, { measures: RETRIEVAL_MEASURES });
      for (const [name, value] of evaluation.summary) {
        assert.equal(value, own.metrics[metricName(name)], name);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
