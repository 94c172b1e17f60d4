// A reranking evaluation must print trec_eval's numbers: TREC DL19's BM25 top-100, put through
// the cross-encoder's data path (BEIR corpus of the candidates only, full qrels) and scored in
// its own order, gives trec_eval 10.0's own output file line for line, at -l 1 and (TREC DL's
// convention, data.eval_relevance_level: 2) at -l 2. No GPU needed.
import assert from "node:assert/strict";
import { join } from "node:path";
import { readRun } from "@irforge/data/trec";
import { hasShared, sharedPath } from "@irforge/data/shared-data";
import { evaluateReranker, evaluateRun, formatTrecEval } from "@irforge/eval";
import { parseConfig } from "../config/parse.ts";
import { judgedOutsideCorpus, readRetrievalData, type RetrievalData } from "./retrieval_data.ts";
import { evaluateCrossencoder, rerankLists } from "./crossencoder.ts";
import { retrievalEvalOptions } from "./metrics.ts";

const DL19 = ["data", "trec-dl19"];

const SKIP = !hasShared(...DL19, "trec_eval");
const TREC_EVAL_MEASURES = [
  "ndcg_cut.1,3,5,10,100",
  "recall.10,100,1000",
  "map",
  "P.10",
  "recip_rank",
  "Rprec",
];

/** Writes the BEIR files a user would make for DL19's BM25 top-100 and reads them back. */
async function dl19Data(dir: string, extraData = ""): Promise<RetrievalData> {
  // The corpus holds only the 4,300 candidates.
  const lists = JSON.parse(
    await Deno.readTextFile(sharedPath(...DL19, "retrieve_results_dl19.json")),
  ) as {
    query: { qid: string | number; text: string };
    hits: { docid: string; content: string }[];
  }[];
  const corpus = new Map<string, string>();
  for (const list of lists) for (const h of list.hits) corpus.set(String(h.docid), h.content);
  await Deno.writeTextFile(
    join(dir, "corpus.jsonl"),
    [...corpus].map(([id, text]) => JSON.stringify({ _id: id, title: "", text })).join("\n"),
  );
  const topics = await Deno.readTextFile(sharedPath(...DL19, "topics.dl19-passage.txt"));
  await Deno.writeTextFile(
    join(dir, "queries.jsonl"),
    topics.trim().split("\n").map((l) => {
      const [id, ...text] = l.split("\t");
      return JSON.stringify({ _id: id, text: text.join(" ") });
    }).join("\n"),
  );
  const qrels = await Deno.readTextFile(sharedPath(...DL19, "qrels.dl19-passage.txt"));
  await Deno.writeTextFile(
    join(dir, "test.tsv"),
    "query-id\tcorpus-id\tscore\n" + qrels.trim().split("\n").map((l) => {
      const [qid, , docid, rel] = l.trim().split(/\s+/);
      return `${qid}\t${docid}\t${rel}`;
    }).join("\n") + "\n",
  );
  // Training qrels must name corpus documents; the evaluation qrels are whole.
  const inside = (await Deno.readTextFile(join(dir, "test.tsv"))).split("\n")
    .filter((l, i) => i === 0 || corpus.has(l.split("\t")[1] ?? ""));
  await Deno.writeTextFile(join(dir, "train.tsv"), inside.join("\n") + "\n");
  return await readRetrievalData(dl19Config(dir, extraData));
}

function dl19Config(dir: string, extraData = "") {
  return parseConfig(
    `recipe: crossencoder\nmodel: {model_name_or_path: m}\ndata:\n` +
      `  corpus_path: ${join(dir, "corpus.jsonl")}\n` +
      `  queries_path: ${join(dir, "queries.jsonl")}\n` +
      `  qrels_path: ${join(dir, "train.tsv")}\n` +
      `  eval_qrels_path: ${join(dir, "test.tsv")}\n` +
      `  run_path: ${sharedPath(...DL19, "trec_results_dl19.txt")}\n` + extraData,
    "cfg.yaml",
  );
}

/** trec_eval's summary lines as name → the printed value. */
function trecEvalValues(text: string): Map<string, string> {
  return new Map(
    text.trim().split("\n").map((l) => {
      const [name, , value] = l.split("\t");
      return [name!.trim(), value!];
    }),
  );
}

Deno.test({
  name: "rerank evaluation: DL19 BM25 top-100 in its own order gives trec_eval's -c output",
  ignore: SKIP,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const data = await dl19Data(dir);
      assert.equal(judgedOutsideCorpus(data.evalQrels!, data.corpus), 7003); // counted independently (python)
      const run = await readRun(sharedPath(...DL19, "trec_results_dl19.txt"));
      const { lists: candidates, firstStage } = rerankLists(run, data);
      assert.equal(candidates.length, 43);
      const ownOrder = (qid: string) => firstStage.get(qid)!.map((d) => d.score);
      const byQuery = new Map(candidates.map((l) => [l.query, l.qid]));
      const result = await evaluateReranker(
        candidates,
        (query) => Promise.resolve(ownOrder(byQuery.get(query)!)),
        data.evalQrels!,
        { measures: TREC_EVAL_MEASURES, complete: true },
      );
      const expected = await Deno.readTextFile(sharedPath(...DL19, "trec_eval", "bm25.l1.txt"));
      assert.equal(formatTrecEval(result.evaluation), expected);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "rerank evaluation: data.eval_relevance_level 2 gives DL19 BM25's trec_eval -l 2 numbers",
  ignore: SKIP,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const data = await dl19Data(dir, "  eval_relevance_level: 2\n");
      const config = dl19Config(dir, "  eval_relevance_level: 2\n");
      const run = await readRun(sharedPath(...DL19, "trec_results_dl19.txt"));
      const { lists, firstStage } = rerankLists(run, data);
      // The recipe's own evaluation, the model replaced by the first-stage order.
      const byQuery = new Map(lists.map((l) => [l.query, l.qid]));
      const lines: string[] = [];
      const outcome = await evaluateCrossencoder(
        run,
        data,
        config,
        (query, passages) => {
          const scores = firstStage.get(byQuery.get(query)!)!.map((d) => d.score);
          assert.equal(scores.length, passages.length);
          return Promise.resolve(scores);
        },
        (line) => lines.push(line),
      );
      const expectedText = await Deno.readTextFile(
        sharedPath(...DL19, "trec_eval", "bm25.l2.txt"),
      );
      const expected = trecEvalValues(expectedText);
      assert.equal(outcome.relevanceLevel, 2);
      const printed = (name: string) => outcome.metrics[name]!.toFixed(4);
      for (const prefix of ["", "first_stage_"]) {
        assert.equal(printed(`${prefix}ndcg@10`), expected.get("ndcg_cut_10")); // 0.5058
        assert.equal(printed(`${prefix}map`), expected.get("map")); // 0.2476
        assert.equal(printed(`${prefix}recall@100`), expected.get("recall_100"));
        assert.equal(printed(`${prefix}mrr`), expected.get("recip_rank"));
      }
      assert.match(lines.at(-1)!, /^eval: queries 43\/43 /);
      // Every measure of the file, at the level the config gives.
      const evaluation = evaluateRun(data.evalQrels!, firstStage, {
        measures: TREC_EVAL_MEASURES,
        relevanceLevel: retrievalEvalOptions(config).relevanceLevel,
        complete: true,
      });
      assert.equal(formatTrecEval(evaluation), expectedText);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("retrievalEvalOptions: data.eval_relevance_level, default 1 (trec_eval's)", () => {
  const parse = (data: string) =>
    retrievalEvalOptions(parseConfig(
      "recipe: crossencoder\nmodel: {model_name_or_path: m}\n" +
        `data: {data_path: d.jsonl${data ? ", " + data : ""}}\n`,
      "c.yaml",
    ));
  assert.equal(parse("").relevanceLevel, 1);
  assert.equal(parse("eval_relevance_level: 2").relevanceLevel, 2);
  assert.throws(() => parse("eval_relevance_level: -1"), /eval_relevance_level/);
});
