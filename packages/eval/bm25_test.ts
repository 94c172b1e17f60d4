// BM25 on a tiny corpus against a naive float64 evaluation of the formula.
import assert from "node:assert/strict";
import { Analyzer } from "./analyzer.ts";
import { Bm25Index } from "./bm25.ts";
import { topK } from "./top_k.ts";

const DOCS = [
  { id: "d1", text: "the quick brown fox jumps over the lazy dog" },
  { id: "d2", text: "a fox a fox a fox" },
  { id: "d3", text: "lazy dogs sleep all day long in the sun and the shade" },
  { id: "d4", text: "brown bears" },
  { id: "d5", text: "" },
];

/** The BM25 formula evaluated term by term over raw token lists. */
function reference(query: string, k1: number, b: number): Map<string, number> {
  const analyzer = new Analyzer();
  const tokens = DOCS.map((d) => analyzer.analyze(d.text));
  const avgdl = tokens.reduce((s, t) => s + t.length, 0) / tokens.length;
  const n = DOCS.length;
  const scores = new Map<string, number>();
  DOCS.forEach((doc, i) => {
    let score = 0;
    let matched = false;
    for (const term of analyzer.analyze(query)) {
      const tf = tokens[i]!.filter((t) => t === term).length;
      const df = tokens.filter((t) => t.includes(term)).length;
      if (tf === 0) continue;
      matched = true;
      const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5));
      score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * tokens[i]!.length / avgdl));
    }
    if (matched) scores.set(doc.id, score);
  });
  return scores;
}

for (const [k1, b] of [[0.9, 0.4], [1.2, 0.75], [0, 0], [2, 1]] as const) {
  Deno.test(`BM25 k1=${k1} b=${b} matches the formula on a tiny corpus`, () => {
    const index = Bm25Index.build(DOCS, { k1, b });
    for (const query of ["lazy fox", "brown dog", "fox fox sun", "unknown words", "dogs"]) {
      const expected = reference(query, k1, b);
      const hits = index.search(query, 10);
      assert.equal(hits.length, expected.size, query);
      for (const hit of hits) {
        const want = expected.get(hit.docid)!;
        assert.ok(
          Math.abs(hit.score - want) < 1e-12,
          `${query} ${hit.docid}: ${hit.score} vs ${want}`,
        );
      }
      for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1]!.score >= hits[i]!.score);
    }
  });
}

Deno.test("BM25: hand-computed idf, top-k truncation, searchAll, errors", () => {
  const index = Bm25Index.build(DOCS);
  assert.equal(index.size, 5);
  // "fox" is in d1 and d2: ln(1 + (5 - 2 + 0.5) / 2.5).
  assert.ok(Math.abs(index.idf("fox") - Math.log(1 + 3.5 / 2.5)) < 1e-15);
  assert.equal(index.documentFrequency("fox"), 2);
  assert.equal(index.documentFrequency("nothing"), 0);
  const top1 = index.search("fox", 1);
  assert.equal(top1.length, 1);
  // d2 has tf 3 in a 3-token document: it beats d1 (tf 1 in 7 tokens).
  assert.equal(top1[0]!.docid, "d2");
  const calls: number[] = [];
  const all = index.searchAll(
    [{ id: "q1", text: "fox" }, { id: "q2", text: "bears" }],
    5,
    (done) => calls.push(done),
  );
  assert.deepEqual([...all.keys()], ["q1", "q2"]);
  assert.deepEqual(all.get("q2")!.map((h) => h.docid), ["d4"]);
  assert.deepEqual(calls, [2]);
  assert.throws(() => Bm25Index.build([{ id: "x", text: "" }, { id: "x", text: "" }]), /twice/);
  assert.throws(() => Bm25Index.build(DOCS, { b: 2 }), /b must be/);
});

Deno.test("topK: exact selection with deterministic ties", () => {
  const scores = [0.5, 3, 1, 3, NaN, -2, 1];
  assert.deepEqual(topK(scores, 3).map((s) => s.index), [1, 3, 2]);
  assert.deepEqual(topK(scores, 10).map((s) => s.index), [1, 3, 2, 6, 0, 5]);
  assert.deepEqual(topK(scores, 2, [0, 2, 6]).map((s) => s.index), [2, 6]);
  assert.deepEqual(topK(scores, 0), []);
  // Against a full sort on random data.
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const many = Array.from({ length: 5000 }, () => Math.floor(random() * 100));
  const sorted = many.map((score, index) => ({ index, score }))
    .sort((a, b) => b.score - a.score || a.index - b.index).slice(0, 37);
  assert.deepEqual(topK(many, 37), sorted);
});
