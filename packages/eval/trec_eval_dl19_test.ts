// Reproduces trec_eval 10.0's own output files for the TREC DL 2019 BM25
// run, line by line (every measure, every query, all 4 printed decimals).
import assert from "node:assert/strict";
import { readQrels, readRun } from "@irforge/data/trec";
import { hasShared, sharedPath } from "@irforge/data/shared-data";
import { evaluateRun, formatTrecEval } from "./evaluate.ts";

const DL19 = ["data", "trec-dl19"];
const available = hasShared(...DL19, "trec_eval");
if (!available) console.warn(`skipped trec_eval DL19 parity: ${sharedPath(...DL19)} is absent`);

const MEASURES = [
  "ndcg_cut.1,3,5,10,100",
  "recall.10,100,1000",
  "map",
  "P.10",
  "recip_rank",
  "Rprec",
];

async function check(file: string, options: { level?: number; perQuery?: boolean }) {
  const qrels = await readQrels(sharedPath(...DL19, "qrels.dl19-passage.txt"));
  const run = await readRun(sharedPath(...DL19, "trec_results_dl19.txt"));
  const evaluation = evaluateRun(qrels, run, {
    measures: MEASURES,
    relevanceLevel: options.level,
    complete: true,
  });
  const ours = formatTrecEval(evaluation, { perQuery: options.perQuery });
  const expected = await Deno.readTextFile(sharedPath(...DL19, "trec_eval", file));
  const ourLines = ours.trimEnd().split("\n");
  const expectedLines = expected.trimEnd().split("\n");
  assert.equal(ourLines.length, expectedLines.length);
  for (let i = 0; i < expectedLines.length; i++) {
    assert.equal(ourLines[i], expectedLines[i], `line ${i + 1} of ${file}`);
  }
}

Deno.test({
  name: "trec_eval parity: DL19 BM25 -c -l 2 summary",
  ignore: !available,
  fn: () => check("bm25.l2.txt", { level: 2 }),
});

Deno.test({
  name: "trec_eval parity: DL19 BM25 -c summary (level 1)",
  ignore: !available,
  fn: () => check("bm25.l1.txt", {}),
});

Deno.test({
  name: "trec_eval parity: DL19 BM25 -q -c -l 2 per query",
  ignore: !available,
  fn: () => check("bm25.l2.perquery.txt", { level: 2, perQuery: true }),
});
