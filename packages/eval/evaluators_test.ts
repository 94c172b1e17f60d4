// Rerank and retrieval evaluators, the listwise permutation parser and the
// qa-expert answer metrics.
import assert from "node:assert/strict";
import { readCandidates } from "@irforge/data/candidates";
import { hasShared, sharedPath } from "@irforge/data/shared-data";
import { parseQrels, readQrels } from "@irforge/data/trec";
import { formatTrecEval } from "./evaluate.ts";
import { listwiseOutputToScores, parsePermutation, permutationToScores } from "./listwise.ts";
import {
  answerContainment,
  answerTokenRecall,
  normalizeAnswer,
  scoreAnswers,
} from "./qa_metrics.ts";
import { evaluateReranker, formatScoredRun } from "./rerank_evaluator.ts";
import { evaluateRetriever, exactTopKCpu } from "./retrieval_evaluator.ts";

Deno.test("listwise output → permutation, rank_llm's rules", () => {
  assert.deepEqual(parsePermutation("[3] > [1] > [2]", 3), [2, 0, 1]);
  // Repeats keep the first occurrence, out-of-range ids are dropped,
  // missing candidates follow in original order.
  assert.deepEqual(parsePermutation("[2] > [2] > [9] > [0] > [4]", 5), [1, 3, 0, 2, 4]);
  assert.deepEqual(parsePermutation("I cannot rank these.", 3), [0, 1, 2]);
  assert.deepEqual(parsePermutation("[10]>[1]", 10), [9, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(permutationToScores([2, 0, 1]), [2, 1, 3]);
  assert.deepEqual(listwiseOutputToScores("[2] > [1]", 3), [2, 3, 1]);
});

Deno.test("QA metrics follow qa-expert's definitions", () => {
  assert.equal(normalizeAnswer("The  Eiffel-Tower, in Paris!"), "eiffeltower in paris");
  assert.equal(normalizeAnswer("An apple a day"), "apple day");
  assert.equal(normalizeAnswer("theater"), "theater"); // articles only as whole words
  // Gold "the United States" → ["united", "states"]; prediction has "united".
  assert.equal(answerTokenRecall("It is united.", "the United States"), 1 / 2);
  // Recall divides by the gold token count, repeats included.
  assert.equal(answerTokenRecall("new", "New York New"), 1 / 3);
  assert.equal(answerTokenRecall("", ""), 1);
  assert.equal(answerTokenRecall("the", "x"), 0);
  assert.equal(answerContainment("He was born in New York City.", "new york"), 1);
  assert.equal(answerContainment("He was born in Boston.", "new york"), 0);
  // Substring, not token containment (as in qa-expert).
  assert.equal(answerContainment("yorkshire", "york"), 1);
  const mean = scoreAnswers([
    { prediction: "Paris", gold: "Paris" },
    { prediction: "Lyon", gold: "Paris France" },
  ]);
  assert.deepEqual(mean, { recall: 0.5, containment: 0.5, count: 2 });
});

const DL19 = hasShared("data", "trec-dl19", "retrieve_results_dl19.json");

Deno.test({
  name: "rerank evaluator: the BM25 scores as scorer reproduce trec_eval's BM25 numbers",
  ignore: !DL19,
  fn: async () => {
    const lists = await readCandidates(
      sharedPath("data", "trec-dl19", "retrieve_results_dl19.json"),
    );
    const qrels = await readQrels(sharedPath("data", "trec-dl19", "qrels.dl19-passage.txt"));
    const byDoc = new Map(
      lists.map((l) => [l.qid, new Map(l.hits.map((h) => [h.docid, h.score]))]),
    );
    const progress: number[] = [];
    const result = await evaluateReranker(
      lists.map((l) => ({
        qid: l.qid,
        query: l.query,
        candidates: l.hits.map((h) => ({ docid: h.docid, text: h.content })),
      })),
      (query, docs) => {
        const list = lists.find((l) => l.query === query)!;
        return Promise.resolve(docs.map((d) => byDoc.get(list.qid)!.get(d.docid)!));
      },
      qrels,
      {
        measures: ["ndcg_cut.10", "map"],
        relevanceLevel: 2,
        complete: true,
        progress: (done) => progress.push(done),
      },
    );
    assert.equal(progress.length, 43);
    const text = formatTrecEval(result.evaluation);
    // trec_eval 10.0, bm25.l2.txt.
    assert.match(text, /^map +\tall\t0\.2476$/m);
    assert.match(text, /^ndcg_cut_10 +\tall\t0\.5058$/m);
    assert.equal(result.runText.trimEnd().split("\n").length, 4300);
  },
});

Deno.test("rerank evaluator: reversed scorer, ties and bad scorers", async () => {
  const qrels = parseQrels("q 0 a 1\nq 0 b 0\n", "qrels");
  const lists = [{
    qid: "q",
    query: "x",
    candidates: [{ docid: "a", text: "" }, { docid: "b", text: "" }, { docid: "c", text: "" }],
  }];
  const reversed = await evaluateReranker(
    lists,
    (_q, docs) => Promise.resolve(docs.map((_, i) => i)),
    qrels,
    { measures: ["recip_rank"] },
  );
  assert.equal(reversed.evaluation.perQuery.get("q")!.get("recip_rank"), 1 / 3);
  // Equal scores: trec_eval order is docid descending, and the run says so.
  const tied = await evaluateReranker(
    lists,
    (_q, docs) => Promise.resolve(docs.map(() => 1)),
    qrels,
    {
      measures: ["recip_rank"],
      tag: "t",
    },
  );
  assert.equal(tied.runText, "q Q0 c 1 1 t\nq Q0 b 2 1 t\nq Q0 a 3 1 t\n");
  assert.equal(tied.evaluation.perQuery.get("q")!.get("recip_rank"), 1 / 3);
  await assert.rejects(
    evaluateReranker(lists, () => Promise.resolve([1, 2]), qrels),
    /returned 2 scores for 3 candidates of query "q"/,
  );
  await assert.rejects(
    evaluateReranker(lists, () => Promise.resolve([1, NaN, 2]), qrels),
    /returned NaN for document "b"/,
  );
  assert.equal(
    formatScoredRun(new Map([["q", [{ docid: "z", score: 0.5 }]]]), "r"),
    "q Q0 z 1 0.5 r\n",
  );
});

Deno.test("retrieval evaluator: bag-of-letters encoder, CPU exact top-k", async () => {
  // Each text is embedded as letter counts a..d; inner product ranks docs.
  const letters = "abcd";
  const encode = (texts: readonly string[]) => {
    const out = new Float32Array(texts.length * letters.length);
    texts.forEach((t, i) => {
      for (const ch of t) {
        const j = letters.indexOf(ch);
        if (j >= 0) out[i * letters.length + j]!++;
      }
    });
    return Promise.resolve(out);
  };
  const documents = new Map([["d1", "aaa"], ["d2", "bb"], ["d3", "ab"], ["d4", "cd"]]);
  const queries = new Map([["q1", "a"], ["q2", "bd"], ["q3", "unjudged"]]);
  const qrels = parseQrels("q1 0 d1 1\nq2 0 d4 1\n", "qrels");
  const calls: string[] = [];
  const result = await evaluateRetriever(
    { queries, documents, qrels, encodeQueries: encode, encodeDocuments: encode },
    {
      k: 2,
      batchSize: 3,
      measures: ["recip_rank", "num_ret"],
      progress: (p, done) => calls.push(`${p}:${done}`),
    },
  );
  assert.equal(result.dim, 4);
  // q1 "a": d1 (3) > d3 (1). q2 "bd": d2 (2) > d3 (1) = d4 (1) → d3 by index.
  assert.deepEqual(result.run.get("q1")!.map((d) => [d.docid, d.score]), [["d1", 3], ["d3", 1]]);
  assert.deepEqual(result.run.get("q2")!.map((d) => d.docid), ["d2", "d3"]);
  assert.equal(result.evaluation.perQuery.get("q1")!.get("recip_rank"), 1);
  assert.equal(result.evaluation.perQuery.get("q2")!.get("recip_rank"), 0);
  assert.ok(!result.run.has("q3"));
  assert.deepEqual(calls, ["documents:3", "documents:4", "queries:2"]);
  const hits = await exactTopKCpu(
    new Float32Array([1, 0]),
    1,
    new Float32Array([0, 1, 2, 0, 1, 0]),
    3,
    2,
    5,
  );
  assert.deepEqual(hits[0]!.map((h) => h.index), [1, 2, 0]);
  await assert.rejects(
    evaluateRetriever({
      queries,
      documents,
      qrels,
      encodeQueries: encode,
      encodeDocuments: (texts) => Promise.resolve(new Float32Array(texts.length * 4 + 1)),
    }),
    /documents encoder returned 17 values for 4 texts/,
  );
});
