// Hand-computed trec_eval cases: ties, unjudged and negative grades, queries
// only in the qrels or only in the run, cutoffs beyond the list, no
// relevant documents. Expected values are worked out by hand below.
import assert from "node:assert/strict";
import { parseQrels, parseRun } from "@irforge/data/trec";
import { evaluateRun, formatFixed, formatTrecEval } from "./evaluate.ts";
import { judgeRanking } from "./judged_ranking.ts";
import { compareBytes, rankTrecEval } from "./ranking.ts";
import { parseMeasureSpecs } from "./measure_spec.ts";

const close = (actual: number | undefined, expected: number, what: string) =>
  assert.ok(
    actual !== undefined && Math.abs(actual - expected) < 1e-12,
    `${what}: ${actual} != ${expected}`,
  );

const QRELS = parseQrels(
  [
    // q1: one relevant document among tied scores.
    "q1 0 d1 1",
    "q1 0 d9 0",
    // q2: graded, one negative grade, one grade 0.
    "q2 0 a 2",
    "q2 0 b -1",
    "q2 0 c 1",
    "q2 0 d 0",
    // q3: judged, nothing relevant.
    "q3 0 x 0",
    // q4: judged but absent from the run.
    "q4 0 y 1",
  ].join("\n"),
  "qrels",
);

const RUN = parseRun(
  [
    // Rank column deliberately wrong: trec_eval ignores it.
    "q1 Q0 d1 1 1.0 t",
    "q1 Q0 d10 2 1.0 t",
    "q1 Q0 d9 3 1.0 t",
    "q1 Q0 d4 4 0.5 t",
    "q2 Q0 e 1 0.5 t",
    "q2 Q0 c 2 1 t",
    "q2 Q0 a 3 2 t",
    "q2 Q0 b 4 3 t",
    "q3 Q0 x 1 7 t",
    // q5: no judgments at all, must be ignored.
    "q5 Q0 z 1 9 t",
  ].join("\n"),
  "run",
);

Deno.test("ties break by document id descending in byte order", () => {
  const ranked = rankTrecEval(RUN.queries.get("q1")!).map((d) => d.docid);
  // "d9" > "d10" > "d1" bytewise; all three share score 1.0.
  assert.deepEqual(ranked, ["d9", "d10", "d1", "d4"]);
  assert.ok(compareBytes("a", "b") < 0);
  assert.ok(compareBytes("ab", "a") > 0);
  // UTF-8 order puts U+FFFD before U+1F600 though UTF-16 units sort reversed.
  assert.ok(compareBytes("\uFFFD", "\u{1F600}") < 0);
});

Deno.test("negative grades count as unjudged, documents not in qrels as non-pool", () => {
  const r = judgeRanking(RUN.queries.get("q2")!, QRELS.get("q2"));
  // Ranking by score: b(3) a(2) c(1) e(0.5).
  assert.deepEqual([...r.rels], [-2, 2, 1, -1]);
  assert.deepEqual(r.relLevels, [1, 1, 1]);
  assert.equal(r.numRel, 2);
  assert.equal(r.numRelRet, 2);
});

Deno.test("per-query values match hand computation (level 1)", () => {
  const e = evaluateRun(QRELS, RUN, {
    measures: [
      "map",
      "Rprec",
      "recip_rank",
      "P.1,5",
      "recall.2,10",
      "ndcg_cut.1,3,10",
      "map_cut.2",
    ],
  });
  assert.deepEqual([...e.perQuery.keys()], ["q1", "q2", "q3"]);
  const q1 = e.perQuery.get("q1")!;
  // d1 is relevant at rank 3 (after d9, d10).
  close(q1.get("map"), 1 / 3, "q1 map");
  close(q1.get("recip_rank"), 1 / 3, "q1 rr");
  close(q1.get("Rprec"), 0, "q1 Rprec");
  close(q1.get("P_1"), 0, "q1 P1");
  close(q1.get("P_5"), 1 / 5, "q1 P5 (k beyond the list)");
  close(q1.get("recall_2"), 0, "q1 recall2");
  close(q1.get("recall_10"), 1, "q1 recall10");
  close(q1.get("ndcg_cut_3"), 1 / Math.log2(4), "q1 ndcg3");
  close(q1.get("map_cut_2"), 0, "q1 map_cut2");
  const q2 = e.perQuery.get("q2")!;
  // rels by rank: unjudged, 2, 1, non-pool; R = 2.
  close(q2.get("map"), (1 / 2 + 2 / 3) / 2, "q2 map");
  close(q2.get("Rprec"), 1 / 2, "q2 Rprec");
  close(q2.get("recip_rank"), 1 / 2, "q2 rr");
  close(q2.get("P_5"), 2 / 5, "q2 P5");
  close(q2.get("map_cut_2"), (1 / 2) / 2, "q2 map_cut2");
  const dcg3 = 2 / Math.log2(3) + 1 / Math.log2(4);
  const idcg3 = 2 + 1 / Math.log2(3);
  close(q2.get("ndcg_cut_3"), dcg3 / idcg3, "q2 ndcg3");
  close(q2.get("ndcg_cut_1"), 0, "q2 ndcg1 (unjudged at rank 1)");
  close(q2.get("ndcg_cut_10"), dcg3 / idcg3, "q2 ndcg10 (k beyond both lists)");
  const q3 = e.perQuery.get("q3")!;
  for (const [name, value] of q3) close(value, 0, `q3 ${name} (no relevant documents)`);
  // Mean over the 3 queries in both run and qrels (q4 missing, q5 unjudged).
  assert.equal(e.numQueries, 3);
  close(e.summary.get("map"), (1 / 3 + 7 / 12 + 0) / 3, "mean map");
});

Deno.test("-c averages over every judged query, missing ones scoring 0", () => {
  const e = evaluateRun(QRELS, RUN, {
    measures: ["map", "ndcg_cut.3", "num_ret", "num_rel"],
    complete: true,
  });
  assert.equal(e.numQueries, 4);
  assert.deepEqual([...e.perQuery.keys()], ["q1", "q2", "q3", "q4"]);
  close(e.perQuery.get("q4")!.get("map"), 0, "q4 map");
  close(e.perQuery.get("q4")!.get("num_ret"), 0, "q4 num_ret");
  close(e.perQuery.get("q4")!.get("num_rel"), 1, "q4 num_rel");
  close(e.summary.get("map"), (1 / 3 + 7 / 12) / 4, "mean map -c");
  // Counts are summed, not averaged.
  close(e.summary.get("num_ret"), 4 + 4 + 1, "num_ret sum");
  close(e.summary.get("num_rel"), 1 + 2 + 0 + 1, "num_rel sum");
});

Deno.test("-l 2: binary measures use the threshold, nDCG the raw grades", () => {
  const e = evaluateRun(QRELS, RUN, { measures: ["map", "ndcg_cut.3"], relevanceLevel: 2 });
  const q2 = e.perQuery.get("q2")!;
  close(q2.get("map"), 1 / 2, "q2 map at level 2 (only a, at rank 2)");
  close(
    q2.get("ndcg_cut_3"),
    (2 / Math.log2(3) + 1 / Math.log2(4)) / (2 + 1 / Math.log2(3)),
    "q2 ndcg unchanged",
  );
  close(e.perQuery.get("q1")!.get("map"), 0, "q1 has no grade-2 document");
});

Deno.test("-M keeps only the top documents", () => {
  const e = evaluateRun(QRELS, RUN, { measures: ["recall.10", "num_ret"], maxDocsPerTopic: 2 });
  close(e.perQuery.get("q1")!.get("recall_10"), 0, "d1 was rank 3");
  close(e.perQuery.get("q1")!.get("num_ret"), 2, "num_ret truncated");
});

Deno.test("measure specs: trec_eval order, first parameters win, errors", () => {
  const s = parseMeasureSpecs(["ndcg_cut.10,5", "map", "P.10", "P.20"]);
  assert.deepEqual(s.measures.map((m) => [m.definition.name, m.cutoffs]), [
    ["map", []],
    ["P", [10]],
    ["ndcg_cut", [5, 10]],
  ]);
  assert.throws(() => parseMeasureSpecs(["bogus"]), /unknown measure "bogus"/);
  assert.throws(() => parseMeasureSpecs(["P.0"]), /positive integer/);
  assert.throws(() => parseMeasureSpecs(["P.5,5"]), /duplicate cutoff/);
  assert.throws(() => parseMeasureSpecs(["map.3"]), /takes no parameters/);
  const official = parseMeasureSpecs([]);
  assert.equal(official.runid, true);
  assert.deepEqual(official.measures.at(-1)!.cutoffs, [5, 10, 15, 20, 30, 100, 200, 500, 1000]);
});

Deno.test("printf rounding: ties to even like glibc, otherwise nearest", () => {
  assert.equal(formatFixed(1 / 32, 4), "0.0312"); // 0.03125 exactly
  assert.equal(formatFixed(3 / 32, 4), "0.0938"); // 0.09375 exactly
  assert.equal(formatFixed(5 / 32, 4), "0.1562");
  assert.equal(formatFixed(1 / 3, 4), "0.3333");
  assert.equal(formatFixed(2 / 3, 4), "0.6667");
  assert.equal(formatFixed(1, 4), "1.0000");
  assert.equal(formatFixed(0, 4), "0.0000");
});

Deno.test("output format: %-22s, tab, qid, tab, value; counts as integers", () => {
  const e = evaluateRun(QRELS, RUN, { measures: ["num_q", "num_ret", "P.5"] });
  const text = formatTrecEval(e, { perQuery: true });
  const lines = text.trimEnd().split("\n");
  assert.equal(lines[0], "num_ret               \tq1\t4");
  assert.equal(lines[1], "P_5                   \tq1\t0.2000");
  assert.equal(lines.at(-3), "num_q                 \tall\t3");
  assert.equal(lines.at(-2), "num_ret               \tall\t9");
  assert.equal(
    lines.at(-1),
    // q3 retrieves only a grade-0 document: (1/5 + 2/5 + 0) / 3.
    "P_5                   \tall\t0.2000",
  );
});
