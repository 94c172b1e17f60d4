// BM25 (k1 0.9, b 0.4) on the shared classic collections and SciFact, read
// with @irforge/data's converters: regression checks of the numbers this
// implementation produced when written (README table). Sanity: SciFact's
// published BM25 nDCG@10 is 0.665 (BEIR, Anserini multifield) to 0.679
// (flat); ours lands at 0.6759.
import assert from "node:assert/strict";
import { readCranfield, readNpl, readSmart } from "@irforge/data/classic";
import { readBeir } from "@irforge/data/beir";
import type { BeirCollection } from "@irforge/data/beir";
import { hasShared, sharedPath } from "@irforge/data/shared-data";
import { indexCorpus, retrieveAll } from "./bm25_collection.ts";
import { evaluateRun } from "./evaluate.ts";

const data = (...parts: string[]) => sharedPath("data", ...parts);

interface Case {
  name: string;
  folder: string;
  load: () => Promise<BeirCollection>;
  /** Expected counts: documents, judged queries. */
  documents: number;
  judgedQueries: number;
  /** Expected trec_eval values (-c, level 1), measured when written. */
  expected: Record<string, number>;
}

const CASES: Case[] = [
  {
    name: "Cranfield (grades mapped to 5 − grade)",
    folder: "cranfield",
    load: () =>
      readCranfield({
        documents: data("cranfield/cran.all.1400"),
        queries: data("cranfield/cran.qry"),
        qrels: data("cranfield/cranqrel"),
      }),
    documents: 1400,
    judgedQueries: 225,
    expected: { ndcg_cut_10: 0.3515, map: 0.2877, recall_100: 0.7213 },
  },
  {
    name: "CISI",
    folder: "cisi",
    load: () =>
      readSmart({
        documents: data("cisi/CISI.ALL"),
        queries: data("cisi/CISI.QRY"),
        qrels: data("cisi/CISI.REL"),
      }),
    documents: 1460,
    judgedQueries: 76,
    expected: { ndcg_cut_10: 0.3577, map: 0.1965, recall_100: 0.4230 },
  },
  {
    name: "NPL (Vaswani)",
    folder: "vaswani-npl",
    load: () =>
      readNpl({
        documents: data("vaswani-npl/doc-text.trec"),
        queries: data("vaswani-npl/query-text.trec"),
        qrels: data("vaswani-npl/qrels"),
      }),
    documents: 11429,
    judgedQueries: 93,
    expected: { ndcg_cut_10: 0.4378, map: 0.2858, recall_100: 0.6186 },
  },
  {
    name: "SciFact test",
    folder: "scifact",
    load: () => readBeir(data("scifact"), "test"),
    documents: 5183,
    judgedQueries: 300,
    expected: { ndcg_cut_10: 0.6759, map: 0.6381, recall_100: 0.9287 },
  },
];

for (const c of CASES) {
  const available = hasShared("data", c.folder);
  if (!available) console.warn(`skipped BM25 on ${c.name}: ${data(c.folder)} is absent`);
  Deno.test({
    name: `BM25 regression: ${c.name}`,
    ignore: !available,
    fn: async () => {
      const collection = await c.load();
      assert.equal(collection.corpus.size, c.documents);
      assert.equal(collection.qrels.size, c.judgedQueries);
      const index = indexCorpus(collection.corpus);
      const run = retrieveAll(index, collection.queries, 1000, {
        onlyQueries: collection.qrels.keys(),
      });
      const evaluation = evaluateRun(collection.qrels, run, {
        measures: ["ndcg_cut.10", "map", "recall.100"],
        complete: true,
      });
      for (const [name, value] of Object.entries(c.expected)) {
        const got = evaluation.summary.get(name)!;
        assert.ok(Math.abs(got - value) <= 5e-5, `${c.name} ${name}: ${got} vs ${value}`);
      }
    },
  });
}
