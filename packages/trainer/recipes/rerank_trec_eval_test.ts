// A reranking evaluation must print trec_eval's numbers: TREC DL19's BM25 top-100, put through
// the cross-encoder's data path (BEIR corpus of the candidates only, full qrels) and scored in
// its own order, gives trec_eval 10.0's own output file line for line. No GPU needed.
import assert from "node:assert/strict";
import { join } from "node:path";
import { readRun } from "@irforge/data/trec";
import { hasShared, sharedPath } from "@irforge/data/shared-data";
import { evaluateReranker, formatTrecEval } from "@irforge/eval";
import { parseConfig } from "../config/parse.ts";
import { judgedOutsideCorpus, readRetrievalData } from "./biencoder.ts";
import { rerankLists } from "./crossencoder.ts";

const DL19 = ["data", "trec-dl19"];

Deno.test({
  name: "rerank evaluation: DL19 BM25 top-100 in its own order gives trec_eval's -c output",
  ignore: !hasShared(...DL19, "trec_eval"),
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      // The BEIR files a user would make: the corpus holds only the 4,300 candidates.
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
      const runPath = sharedPath(...DL19, "trec_results_dl19.txt");
      const data = await readRetrievalData(parseConfig(
        `recipe: crossencoder\nmodel: {model_name_or_path: m}\ndata:\n` +
          `  corpus_path: ${join(dir, "corpus.jsonl")}\n` +
          `  queries_path: ${join(dir, "queries.jsonl")}\n` +
          `  qrels_path: ${join(dir, "train.tsv")}\n` +
          `  eval_qrels_path: ${join(dir, "test.tsv")}\n  run_path: ${runPath}\n`,
        "cfg.yaml",
      ));
      assert.equal(judgedOutsideCorpus(data.evalQrels!, data.corpus), 7003); // counted independently (python)
      const run = await readRun(runPath);
      const { lists: candidates, firstStage } = rerankLists(run, data);
      assert.equal(candidates.length, 43);
      const ownOrder = (qid: string) => firstStage.get(qid)!.map((d) => d.score);
      const byQuery = new Map(candidates.map((l) => [l.query, l.qid]));
      const result = await evaluateReranker(
        candidates,
        (query) => Promise.resolve(ownOrder(byQuery.get(query)!)),
        data.evalQrels!,
        {
          measures: [
            "ndcg_cut.1,3,5,10,100",
            "recall.10,100,1000",
            "map",
            "P.10",
            "recip_rank",
            "Rprec",
          ],
          complete: true,
        },
      );
      const expected = await Deno.readTextFile(sharedPath(...DL19, "trec_eval", "bm25.l1.txt"));
      assert.equal(formatTrecEval(result.evaluation), expected);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
