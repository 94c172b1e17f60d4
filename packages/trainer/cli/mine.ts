/**
 * `deno task mine --qrels qrels.tsv --queries queries.jsonl --corpus corpus.jsonl
 *  (--bm25 | --index index/ --model DIR) --out negatives.tsv [--depth 200]
 *  [--skip-top 3] [--sample 30] [--seed 42] [--min-positive 1]`
 *
 * Trove-style hard-negative mining (see `@irforge/trainer/inference`'s
 * `selectNegatives`): writes a qrel-style TSV that the bi-encoder and
 * cross-encoder recipes take with `data.negative_source: mined` and
 * `data.mined_negatives_path`. Judged positives are never written.
 *
 * @module
 */

import { getDevice } from "@irforge/tensor";
import { readBeirCorpus, readBeirQrels, readBeirQueries } from "@irforge/data/beir";
import { readQrels } from "@irforge/data/trec";
import type { Recipe } from "../config/schema.ts";
import {
  formatMinedNegatives,
  queriesWithPositives,
  retrieveBm25ForMining,
  retrieveDenseForMining,
  selectNegatives,
} from "../inference/mine.ts";
import { writeOutputFile } from "../inference/output_file.ts";
import { openIndexFor } from "../inference/search.ts";
import { loadTrainedModel, resolveModelSource } from "../inference/trained_model.ts";
import {
  nonNegativeInt,
  parseCommand,
  positiveInt,
  progressReporter,
  requireFile,
  runCli,
  UsageError,
} from "./cli_support.ts";

const USAGE = `usage: deno task mine --qrels qrels.tsv --queries queries.jsonl --corpus corpus.jsonl
       (--bm25 | --index index/ --model DIR) --out negatives.tsv [--depth 200]
       [--skip-top 0] [--sample N] [--seed 42] [--min-positive 1] [--overwrite]
  --bm25          retrieve with BM25 (k1 0.9, b 0.4, as deno task bm25)
  --index/--model retrieve from a dense index with the model that built it
  --depth         retrieved documents considered per query (default 200)
  --skip-top      top ranks skipped before positives are removed (likely unjudged positives)
  --sample        keep a seeded random sample of N negatives per query (default: all)
  --min-positive  grade from which a judged document is a positive (default 1)
Writes query-id/corpus-id/score rows (score 0) for data.negative_source: mined.`;

async function main(): Promise<void> {
  const values = parseCommand(
    {
      qrels: { type: "string" },
      queries: { type: "string" },
      corpus: { type: "string" },
      bm25: { type: "boolean" },
      index: { type: "string" },
      model: { type: "string" },
      out: { type: "string" },
      depth: { type: "string" },
      "skip-top": { type: "string" },
      sample: { type: "string" },
      seed: { type: "string" },
      "min-positive": { type: "string" },
      overwrite: { type: "boolean" },
      set: { type: "string", multiple: true },
      recipe: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    USAGE,
    ["qrels", "queries", "corpus", "out"],
  );
  if (!values) return;
  const dense = values.index !== undefined || values.model !== undefined;
  if (values.bm25 === dense) {
    throw new UsageError(`give --bm25, or --index with --model (one retriever)\n${USAGE}`);
  }
  if (dense && (!values.index || !values.model)) {
    throw new UsageError(`a dense retriever needs both --index and --model\n${USAGE}`);
  }
  const depth = positiveInt("--depth", values.depth, 200);
  const skipTop = nonNegativeInt("--skip-top", values["skip-top"], 0);
  const sample = values.sample === undefined ? null : positiveInt("--sample", values.sample, 1);
  const seed = nonNegativeInt("--seed", values.seed, 42);
  const minPositive = values["min-positive"] === undefined ? 1 : Number(values["min-positive"]);
  if (!Number.isInteger(minPositive)) throw new UsageError("--min-positive expects an integer");
  await requireFile(values.qrels, "qrels file");
  await requireFile(values.queries, "queries file");
  await requireFile(values.corpus, "corpus");
  if (!values.overwrite) {
    try {
      await Deno.stat(values.out);
      throw new UsageError(`${values.out} exists; pass --overwrite to replace it`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  const modelOptions = { sets: values.set ?? [], recipe: values.recipe as Recipe | undefined };
  if (dense) await resolveModelSource(values.model!, modelOptions);

  const corpus = await readBeirCorpus(values.corpus);
  const queries = await readBeirQueries(values.queries);
  const qrels = values.qrels.endsWith(".tsv")
    ? await readBeirQrels(values.qrels, { corpus, queries })
    : await readQrels(values.qrels, { knownDocuments: corpus, knownQueries: queries });
  const judged = queriesWithPositives(qrels, minPositive);
  console.error(
    `${judged.length} queries with a positive (grade ≥ ${minPositive}) in ${values.qrels}, ` +
      `${corpus.size} documents`,
  );
  const wanted = new Map([...qrels].filter(([qid]) => judged.includes(qid)));
  let retrieved;
  if (dense) {
    await getDevice();
    const model = await loadTrainedModel(values.model!, {
      ...modelOptions,
      log: (line) => console.error(line),
    });
    try {
      await openIndexFor(values.index!, model);
      retrieved = await retrieveDenseForMining(
        model,
        values.index!,
        queries,
        wanted,
        depth,
        progressReporter("searching", "shards"),
      );
    } finally {
      model.dispose();
    }
  } else {
    retrieved = retrieveBm25ForMining(corpus, queries, wanted, depth);
  }
  const mined = selectNegatives(retrieved, qrels, { depth, skipTop, sample, seed, minPositive });
  await writeOutputFile(values.out, formatMinedNegatives(mined));
  const total = [...mined.values()].reduce((n, list) => n + list.length, 0);
  console.error(
    `wrote ${total} negatives for ${mined.size} queries to ${values.out} ` +
      `(depth ${depth}, skip-top ${skipTop}${sample ? `, sample ${sample}, seed ${seed}` : ""})`,
  );
}

if (import.meta.main) await runCli("mine", main);
