import assert from "node:assert/strict";
import { join } from "node:path";
import {
  BinaryDataset,
  hasShared,
  materializeQrels,
  readBeirCorpus,
  readBeirQrels,
  readBeirQueries,
  sharedPath,
} from "@irforge/data";
import { indexCorpus, retrieveAll } from "@irforge/eval";
import { parseConfig } from "../config/parse.ts";
import { readMinedNegatives } from "../recipes/mined_negatives.ts";
import {
  formatMinedNegatives,
  queriesWithPositives,
  retrieveBm25ForMining,
  selectNegatives,
} from "./mine.ts";

const SCIFACT = sharedPath("data", "scifact");

Deno.test({
  name: "mine (BM25, SciFact train): no positive, depth/skip-top respected, seeded sample",
  ignore: !hasShared("data", "scifact", "corpus.jsonl"),
  fn: async () => {
    const corpus = await readBeirCorpus(join(SCIFACT, "corpus.jsonl"));
    const queries = await readBeirQueries(join(SCIFACT, "queries.jsonl"));
    const qrels = await readBeirQrels(join(SCIFACT, "qrels", "train.tsv"), { corpus, queries });
    const depth = 30, skipTop = 2, sample = 5;
    const retrieved = retrieveBm25ForMining(corpus, queries, qrels, depth);
    // The BM25 lists are deno task bm25's (same index, same order).
    const reference = retrieveAll(indexCorpus(corpus), queries, depth, {
      onlyQueries: qrels.keys(),
    });
    assert.deepEqual(retrieved, reference);
    const options = { depth, skipTop, sample, seed: 7 };
    const mined = selectNegatives(retrieved, qrels, options);
    assert.deepEqual([...mined.keys()], queriesWithPositives(qrels));
    let total = 0;
    for (const [qid, negatives] of mined) {
      const allowed = reference.get(qid)!.slice(skipTop).filter((h) =>
        !qrels.get(qid)!.has(h.docid)
      )
        .map((h) => h.docid);
      assert.equal(negatives.length, Math.min(sample, allowed.length), qid);
      for (const n of negatives) {
        assert.ok(!(qrels.get(qid)!.get(n.docid)! >= 1), `positive ${n.docid} mined for ${qid}`);
        assert.ok(allowed.includes(n.docid), `${n.docid} outside ranks ${skipTop}..${depth}`);
      }
      // Kept in retrieval order.
      const positions = negatives.map((n) => allowed.indexOf(n.docid));
      assert.deepEqual(positions, [...positions].sort((a, b) => a - b), qid);
      total += negatives.length;
    }
    assert.ok(total > 4 * mined.size, `only ${total} negatives`);
    // Reproducible with the seed; another seed draws other samples.
    const text = formatMinedNegatives(mined);
    assert.equal(formatMinedNegatives(selectNegatives(retrieved, qrels, options)), text);
    assert.notEqual(
      formatMinedNegatives(selectNegatives(retrieved, qrels, { ...options, seed: 8 })),
      text,
    );
    assert.ok(text.startsWith("query-id\tcorpus-id\tscore\n"));

    // The file is a negatives source: BinaryDataset draws negatives from it only.
    const dir = await Deno.makeTempDir({ prefix: "mine_test_" });
    try {
      const path = join(dir, "negatives.tsv");
      await Deno.writeTextFile(path, text);
      const data = { corpus, queries, trainQrels: qrels, evalQueries: null, evalQrels: null };
      const negatives = await readMinedNegatives(path, data);
      const dataset = new BinaryDataset({
        positives: materializeQrels([{ qrels, corpus, queries, minScore: 1 }]),
        negatives,
        groupSize: 4,
        randomCorpus: corpus,
        seed: 3,
      });
      for (let i = 0; i < 50; i++) {
        const item = dataset.get(i);
        const pool = new Set(mined.get(item.qid)!.map((n) => n.docid));
        if (pool.size < 3) continue; // short pools are topped up with random documents
        for (const p of item.passages.slice(1)) assert.ok(pool.has(p.id), `${p.id} not mined`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("config: negative_source mined needs mined_negatives_path", () => {
  const text = `recipe: biencoder
model:
  model_name_or_path: m
data:
  corpus_path: c.jsonl
  queries_path: q.jsonl
  qrels_path: t.tsv
  negative_source: mined
`;
  assert.throws(
    () => parseConfig(text, "cfg.yaml"),
    /negative_source "mined" needs data\.mined_negatives_path/,
  );
  const config = parseConfig(text, "cfg.yaml", ["data.mined_negatives_path=neg.tsv"]);
  assert.equal(config.data.mined_negatives_path, "neg.tsv");
});
