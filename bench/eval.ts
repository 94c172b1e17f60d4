/**
 * Speed of @irforge/eval (printed, never asserted):
 * - trec_eval measures over 10,000 queries × 1,000 documents (synthetic,
 *   seeded): target < 2 s on a 2-core CPU;
 * - BM25 indexing of NPL (11,429 documents): target < 5 s.
 *
 * Run: `deno run -A bench/eval.ts`
 *
 * @module
 */

import { readNpl } from "@irforge/data/classic";
import { hasShared, sharedPath } from "@irforge/data/shared-data";
import type { Qrels } from "@irforge/data/trec";
import { evaluateRun, indexCorpus, retrieveAll, type ScoredDocument } from "@irforge/eval";

function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

/**
 * Per query: 1,000 distinct documents from a 2,000-document pool with
 * scores rounded to 0.01 (so ties occur and the trec_eval sort runs), and
 * 100 judged documents with grades 0..3.
 */
function synthetic(queries: number, depth: number, seed: number) {
  const random = lcg(seed);
  const qrels: Qrels = new Map();
  const run = new Map<string, ScoredDocument[]>();
  for (let q = 0; q < queries; q++) {
    const qid = `q${q}`;
    const offset = Math.floor(random() * 2000);
    const judged = new Map<string, number>();
    for (let j = 0; j < 100; j++) {
      judged.set(`d${Math.floor(random() * 2000)}`, Math.floor(random() * 4));
    }
    qrels.set(qid, judged);
    const docs: ScoredDocument[] = [];
    let score = 100;
    for (let r = 0; r < depth; r++) {
      score -= random() * 0.02;
      // 7 is coprime with 2000, so the ids are distinct.
      docs.push({ docid: `d${(offset + 7 * r) % 2000}`, score: Math.round(score * 100) / 100 });
    }
    run.set(qid, docs);
  }
  return { qrels, run };
}

const measures = ["ndcg_cut.10,100", "map", "recall.100,1000", "P.10", "recip_rank", "Rprec"];
const { qrels, run } = synthetic(10_000, 1_000, 42);
let retrieved = 0;
for (const docs of run.values()) retrieved += docs.length;
// The first pass is "cold": it also pays for hashing the freshly built
// docid strings and for GC of the ~1 GB of synthetic data, as a real first
// evaluation after reading a run file would.
const times: number[] = [];
let ndcg = 0;
for (let i = 0; i < 4; i++) {
  const start = performance.now();
  const evaluation = evaluateRun(qrels, run, { measures, complete: true });
  times.push(performance.now() - start);
  ndcg = evaluation.summary.get("ndcg_cut_10")!;
}
const seconds = (t: number) => (t / 1000).toFixed(2);
console.log(
  `metrics: 10,000 queries × 1,000 documents (${retrieved.toLocaleString("en")} retrieved), ` +
    `${measures.join(" ")}: cold ${seconds(times[0]!)} s, warm best ` +
    `${seconds(Math.min(...times.slice(1)))} s (target < 2 s; nDCG@10 ${ndcg.toFixed(4)})`,
);

if (hasShared("data", "vaswani-npl")) {
  const dir = (f: string) => sharedPath("data", "vaswani-npl", f);
  const npl = await readNpl({
    documents: dir("doc-text.trec"),
    queries: dir("query-text.trec"),
    qrels: dir("qrels"),
  });
  const indexTimes: number[] = [];
  let index = indexCorpus(npl.corpus);
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    index = indexCorpus(npl.corpus);
    indexTimes.push(performance.now() - start);
  }
  const start = performance.now();
  retrieveAll(index, npl.queries, 1000);
  const search = performance.now() - start;
  console.log(
    `BM25 NPL: ${index.size} documents, ${index.vocabularySize} terms, indexing best ` +
      `${(Math.min(...indexTimes) / 1000).toFixed(2)} s (target < 5 s); ` +
      `${npl.queries.size} queries top-1000 in ${(search / 1000).toFixed(2)} s`,
  );
} else {
  console.log(`BM25 NPL: skipped, ${sharedPath("data", "vaswani-npl")} is absent`);
}
