import assert from "node:assert/strict";
import { join } from "node:path";
import { materializeQrels, runAsQrels } from "./qrel_source.ts";
import { BinaryDataset } from "./binary_dataset.ts";
import { candidateGroups, MultiLevelDataset } from "./multilevel_dataset.ts";
import { collateRetrieval } from "./retrieval_collator.ts";
import { readCandidates } from "./candidates.ts";
import { readQrels, readRun } from "./trec.ts";
import type { Corpus } from "./beir.ts";
import { readBeir } from "./beir.ts";
import { HashWordTokenizer } from "./tokenizer.ts";
import { InputError } from "./input_error.ts";
import { sharedPathOrSkip } from "./shared_data.ts";

const corpus: Corpus = new Map(
  ["a", "b", "c", "d", "e"].map((id) => [id, { id, title: "", text: `doc ${id}` }]),
);
const queries = new Map([["q", "query"], ["r", "other"]]);

Deno.test("qrel sources: min/max filter, transforms, later source wins, unknown ids", () => {
  const qrels = new Map([["q", new Map([["a", 2.7], ["b", 1], ["c", 0]])]]);
  const base = { qrels, corpus, queries };
  const kept = materializeQrels([{ ...base, minScore: 1, maxScore: 2.7, scoreTransform: "floor" }]);
  assert.deepEqual([...kept.groups.get("q")!].map(([d, s]) => [d, s.score]), [["b", 1]]);
  assert.deepEqual(
    [...materializeQrels([{ ...base, scoreTransform: "binary" }]).groups.get("q")!.values()].map((
      s,
    ) => s.score),
    [1, 1, 0],
  );
  assert.equal(
    materializeQrels([{ ...base, scoreTransform: 5 }]).groups.get("q")!.get("c")!.score,
    5,
  );
  assert.equal(
    materializeQrels([{ ...base, scoreTransform: (s) => s * 2 }]).groups.get("q")!.get("a")!.score,
    5.4,
  );
  const merged = materializeQrels([
    base,
    {
      qrels: new Map([["q", new Map([["a", 9], ["d", 3]])], ["r", new Map([["e", 1]])]]),
      corpus,
      queries,
    },
  ]);
  assert.deepEqual([...merged.groups.get("q")!].map(([d, s]) => [d, s.score]), [
    ["a", 9],
    ["b", 1],
    ["c", 0],
    ["d", 3],
  ]);
  assert.equal(merged.groups.get("r")!.size, 1);
  assert.throws(
    () =>
      materializeQrels([{
        qrels: new Map([["q", new Map([["zz", 1]])]]),
        corpus,
        queries,
        name: "x.tsv",
      }]),
    (e: unknown) =>
      e instanceof InputError &&
      e.message.startsWith('x.tsv (field "docid"): unknown document id "zz"'),
  );
});

Deno.test("BinaryDataset: positive first, negatives exclude positives, seeded per epoch", () => {
  const positives = materializeQrels([{
    qrels: new Map([["q", new Map([["a", 1], ["b", 1]])]]),
    corpus,
    queries,
  }]);
  const negatives = materializeQrels([{
    qrels: new Map([["q", new Map([["c", 0]])]]),
    corpus,
    queries,
  }]);
  const run = {
    tag: "t",
    queries: new Map([[
      "q",
      ["a", "d", "e"].map((docid, i) => ({ docid, rank: i + 1, score: 3 - i })),
    ]]),
  };
  const dataset = new BinaryDataset({
    positives,
    negatives,
    runNegatives: { run, corpus },
    groupSize: 4,
    seed: 1,
  });
  assert.deepEqual(dataset.negativePool("q").map((d) => d.id), ["c", "d", "e"]);
  const item = dataset.get(0, 0);
  assert.deepEqual(item.labels, [1, 0, 0, 0]);
  assert.ok(["a", "b"].includes(item.passages[0]!.id));
  assert.deepEqual(item.passages.slice(1).map((d) => d.id).sort(), ["c", "d", "e"]);
  assert.deepEqual(dataset.get(0, 0), item);
  const firsts = new Set([0, 1, 2, 3, 4, 5, 6, 7].map((e) => dataset.get(0, e).passages[0]!.id));
  assert.equal(firsts.size, 2, "epochs draw different positives");
  const small = new BinaryDataset({ positives, negatives, groupSize: 3, seed: 1 });
  assert.deepEqual(small.get(0).passages.slice(1).map((d) => d.id), ["c", "c"]); // repeats
  const random = new BinaryDataset({ positives, randomCorpus: corpus, groupSize: 4 });
  const ids = random.get(0).passages.slice(1).map((d) => d.id);
  assert.equal(new Set(ids).size, 3);
  assert.ok(ids.every((id) => !["a", "b"].includes(id)));
  assert.throws(() => new BinaryDataset({ positives, groupSize: 2 }).get(0), /no negatives/);
});

Deno.test("MultiLevelDataset: most_relevant order, random selection, padding by duplication", () => {
  const source = materializeQrels([{
    qrels: new Map([["q", new Map([["a", 1], ["b", 3], ["c", 2]])]]),
    corpus,
    queries,
  }]);
  const top = new MultiLevelDataset({ source, groupSize: 2 }).get(0);
  assert.deepEqual(top.passages.map((d) => d.id), ["b", "c"]);
  assert.deepEqual(top.labels, [3, 2]);
  const padded = new MultiLevelDataset({ source, groupSize: 5 }).get(0);
  assert.deepEqual(padded.passages.map((d) => d.id), ["b", "c", "a", "b", "c"]);
  const random = new MultiLevelDataset({
    source,
    groupSize: 2,
    passageSelectionStrategy: "random",
    seed: 4,
  });
  assert.deepEqual(random.get(0, 3), random.get(0, 3));
  assert.equal(
    new Set([0, 1, 2, 3, 4, 5].map((e) => random.get(0, e).passages.map((d) => d.id).join())).size >
      1,
    true,
  );
});

Deno.test("TREC DL19: BM25 hard negatives, graded eval groups and collated batches", async () => {
  const dir = sharedPathOrSkip("DL19 retrieval datasets", "data", "trec-dl19");
  if (!dir) return;
  const lists = await readCandidates(join(dir, "retrieve_results_dl19.json"));
  const dlCorpus: Corpus = new Map();
  for (const l of lists) {
    for (const h of l.hits) dlCorpus.set(h.docid, { id: h.docid, title: "", text: h.content });
  }
  const dlQueries = new Map(lists.map((l) => [l.qid, l.query]));
  const qrels = await readQrels(join(dir, "qrels.dl19-passage.txt"));
  // qrels judge many passages outside the top-100 texts we have: keep the judged pairs we can see.
  const visible = new Map(
    [...qrels].map(([q, d]) => [q, new Map([...d].filter(([id]) => dlCorpus.has(id)))]),
  );
  const run = await readRun(join(dir, "trec_results_dl19.txt"));
  const positives = materializeQrels([{
    qrels: visible,
    corpus: dlCorpus,
    queries: dlQueries,
    minScore: 2,
  }]);
  const dataset = new BinaryDataset({
    positives,
    runNegatives: { run, corpus: dlCorpus, depthEnd: 100 },
    groupSize: 8,
  });
  assert.ok(dataset.length > 30);
  for (let i = 0; i < dataset.length; i++) {
    const item = dataset.get(i);
    assert.ok(qrels.get(item.qid)!.get(item.passages[0]!.id)! >= 2);
    for (const neg of item.passages.slice(1)) {
      assert.ok((qrels.get(item.qid)!.get(neg.id) ?? 0) < 2);
    }
  }
  const groups = candidateGroups(run, qrels, dlCorpus, dlQueries, 100, "trec_results_dl19.txt");
  assert.equal(groups.length, 43);
  assert.ok(groups.every((g) => g.passages.length === 100));
  const judgedInTop100 = groups.reduce(
    (n, g) => n + g.passages.filter((p) => qrels.get(g.qid)!.has(p.id)).length,
    0,
  );
  const expected = [...run.queries].reduce(
    (n, [q, es]) => n + es.filter((e) => qrels.get(q)!.has(e.docid)).length,
    0,
  );
  assert.equal(judgedInTop100, expected);
  const graded = new MultiLevelDataset({
    source: materializeQrels([{ qrels: runAsQrels(run), corpus: dlCorpus, queries: dlQueries }]),
    groupSize: 4,
  });
  assert.equal(graded.get(0).passages[0]!.id, run.queries.get(graded.qids[0]!)![0]!.docid);
  const tokenizer = new HashWordTokenizer();
  const batch = collateRetrieval([dataset.get(0), dataset.get(1)], tokenizer, {
    queryMaxLen: 16,
    passageMaxLen: 32,
  });
  assert.equal(batch.queries.rows, 2);
  assert.equal(batch.passages.rows, 16);
  assert.ok(batch.passages.length <= 32 && batch.passages.length % 8 === 0);
  assert.deepEqual([...batch.labels.slice(0, 8)], [1, 0, 0, 0, 0, 0, 0, 0]);
  // every passage row ends with EOS right before its padding
  for (let r = 0; r < batch.passages.rows; r++) {
    const row = batch.passages.inputIds.slice(
      r * batch.passages.length,
      (r + 1) * batch.passages.length,
    );
    const real = batch.passages.attentionMask.slice(
      r * batch.passages.length,
      (r + 1) * batch.passages.length,
    ).reduce((a, b) => a + b, 0);
    assert.equal(row[0], tokenizer.bosId);
    assert.equal(row[real - 1], tokenizer.eosId);
  }
});

Deno.test("SciFact: positives from train qrels with random negatives", async () => {
  const dir = sharedPathOrSkip("SciFact binary dataset", "data", "scifact");
  if (!dir) return;
  const beir = await readBeir(dir, "train");
  const positives = materializeQrels([{ ...beir, minScore: 1 }]);
  const dataset = new BinaryDataset({ positives, randomCorpus: beir.corpus, groupSize: 4 });
  assert.equal(dataset.length, 809);
  const item = dataset.get(0);
  assert.equal(item.query, "0-dimensional biomaterials lack inductive properties.");
  assert.equal(item.passages[0]!.id, "31715818");
});
