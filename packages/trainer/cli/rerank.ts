/**
 * `deno task rerank --model DIR --run FIRST_STAGE --corpus corpus.jsonl
 *  --queries queries.jsonl --out run.txt [--depth 100] [--batch N]
 *  [--eval QRELS [-m MEASURE]... [-c] [-l N]]`
 *
 * Reranks the top `depth` candidates of each query of a TREC run with a
 * trained cross-encoder, BlockRank or listwise model (see
 * `@irforge/trainer/inference`'s `rerankRun`) and writes a TREC run in
 * trec_eval's order. With `--eval` it prints trec_eval-identical lines, as
 * `deno task eval` prints them for the written run.
 *
 * @module
 */

import { getDevice } from "@irforge/tensor";
import { readBeirCorpus, readBeirQrels, readBeirQueries } from "@irforge/data/beir";
import { readQrels, readRun } from "@irforge/data/trec";
import { evaluateRun, formatScoredRun, formatTrecEval, parseMeasureSpecs } from "@irforge/eval";
import type { Recipe } from "../config/schema.ts";
import { candidateLists, loadReranker } from "../inference/rerank.ts";
import { writeOutputFile } from "../inference/output_file.ts";
import { resolveModelSource } from "../inference/trained_model.ts";
import {
  nonNegativeInt,
  parseCommand,
  positiveInt,
  progressReporter,
  requireFile,
  runCli,
  UsageError,
} from "./cli_support.ts";

const USAGE =
  `usage: deno task rerank --model DIR --run FIRST_STAGE --corpus corpus.jsonl --queries queries.jsonl
       --out run.txt [--depth 100] [--batch N] [--tag TAG] [--overwrite]
       [--eval QRELS [-m MEASURE]... [-c] [-l LEVEL]] [--set key=value]... [--recipe NAME]
  --model    a run directory (its latest checkpoint), a checkpoint in it, or a merged model
  --run      the first-stage TREC run (e.g. from deno task bm25)
  --depth    candidates reranked per query, in trec_eval's order (default 100)
  --batch    pairs per forward pass (cross-encoder; default per_device_eval_batch_size)
  --eval     qrels (BEIR .tsv or TREC); prints what deno task eval prints for the new run,
             with its -m, -c and -l (default 1, trec_eval's; TREC DL's published MAP and
             recall use -l 2, as a run's data.eval_relevance_level: 2)
  --set      override the run's configuration (as deno task train --set)
  --recipe   recipe of a merged model directory (crossencoder when it holds score.weight)`;

async function main(): Promise<void> {
  const values = parseCommand(
    {
      model: { type: "string" },
      run: { type: "string" },
      corpus: { type: "string" },
      queries: { type: "string" },
      out: { type: "string" },
      depth: { type: "string" },
      batch: { type: "string" },
      tag: { type: "string" },
      overwrite: { type: "boolean" },
      eval: { type: "string" },
      measure: { type: "string", short: "m", multiple: true },
      complete: { type: "boolean", short: "c" },
      "level-for-rel": { type: "string", short: "l" },
      set: { type: "string", multiple: true },
      recipe: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    USAGE,
    ["model", "run", "corpus", "queries", "out"],
  );
  if (!values) return;
  const { model: modelPath, run: runPath, corpus: corpusPath, queries: queriesPath, out } = values;
  const depth = positiveInt("--depth", values.depth, 100);
  const batch = values.batch === undefined ? undefined : positiveInt("--batch", values.batch, 1);
  const level = values["level-for-rel"] === undefined
    ? undefined
    : nonNegativeInt("-l", values["level-for-rel"], 1);
  parseMeasureSpecs(values.measure ?? []); // a bad -m stops before any work
  await requireFile(runPath, "run file");
  await requireFile(corpusPath, "corpus");
  await requireFile(queriesPath, "queries file");
  if (values.eval) await requireFile(values.eval, "qrels file");
  const modelOptions = { sets: values.set ?? [], recipe: values.recipe as Recipe | undefined };
  await resolveModelSource(modelPath, modelOptions); // a wrong --model stops before any reading
  if (!values.overwrite) {
    try {
      await Deno.stat(out);
      throw new UsageError(`${out} exists; pass --overwrite to replace it`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }

  const corpus = await readBeirCorpus(corpusPath);
  const queries = await readBeirQueries(queriesPath);
  const run = await readRun(runPath);
  const qrels = values.eval === undefined
    ? undefined
    : values.eval.endsWith(".tsv")
    ? await readBeirQrels(values.eval)
    : await readQrels(values.eval);
  const lists = candidateLists(run, corpus, queries, { depth, runName: runPath });
  const passages = lists.reduce((n, l) => n + l.documents.length, 0);
  console.error(`${lists.length} queries, ${passages} candidates (depth ${depth}) from ${runPath}`);

  await getDevice();
  const reranker = await loadReranker(modelPath, {
    ...modelOptions,
    log: (line) => console.error(line),
  });
  let scores: number[][];
  const started = performance.now();
  try {
    scores = await reranker.score(lists, {
      batchSize: batch,
      progress: progressReporter("reranking", "queries"),
    });
  } finally {
    reranker.dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  const reranked = new Map(
    lists.map((list, q) => [
      list.qid,
      list.documents.map((doc, i) => ({ docid: doc.id, score: scores[q]![i]! })),
    ]),
  );
  await writeOutputFile(
    out,
    formatScoredRun(reranked, values.tag ?? reranker.source.config.recipe),
  );
  console.error(
    `wrote ${reranked.size} queries to ${out} (${passages} passages in ${seconds.toFixed(1)} s, ` +
      `${(passages / seconds).toFixed(1)} passages/s)`,
  );
  if (qrels) {
    const evaluation = evaluateRun(qrels, await readRun(out), {
      measures: values.measure ?? [],
      relevanceLevel: level,
      complete: values.complete ?? false,
    });
    await Deno.stdout.write(new TextEncoder().encode(formatTrecEval(evaluation)));
  }
}

if (import.meta.main) await runCli("rerank", main);
