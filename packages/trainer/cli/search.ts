/**
 * `deno task search --index index/ --model DIR --queries queries.jsonl
 *  --out run.txt [--k 1000] [--batch N] [--qrels FILE]`
 *
 * Exact top-k dense retrieval over every shard of an index written by
 * `deno task encode` with the same model; writes a TREC run and, given
 * qrels, prints trec_eval lines (`-c`) like `deno task bm25`.
 *
 * @module
 */

import { getDevice } from "@irforge/tensor";
import { readBeirQrels, readBeirQueries } from "@irforge/data/beir";
import { readQrels } from "@irforge/data/trec";
import { evaluateRun, formatScoredRun, formatTrecEval } from "@irforge/eval";
import type { Recipe } from "../config/schema.ts";
import { writeOutputFile } from "../inference/output_file.ts";
import { openIndexFor, searchIndex } from "../inference/search.ts";
import { loadTrainedModel, resolveModelSource } from "../inference/trained_model.ts";
import {
  parseCommand,
  positiveInt,
  progressReporter,
  requireFile,
  runCli,
  UsageError,
} from "./cli_support.ts";

const USAGE =
  `usage: deno task search --index index/ --model DIR --queries queries.jsonl --out run.txt
       [--k 1000] [--batch N] [--qrels FILE] [--tag TAG] [--overwrite] [--set key=value]...
  --model   the model that built the index (another model's index is refused)
  --qrels   BEIR .tsv or TREC qrels: searches only the judged queries and prints nDCG@10,
            recall, MAP and MRR (trec_eval -c)`;

async function main(): Promise<void> {
  const values = parseCommand(
    {
      index: { type: "string" },
      model: { type: "string" },
      queries: { type: "string" },
      out: { type: "string" },
      k: { type: "string" },
      batch: { type: "string" },
      qrels: { type: "string" },
      tag: { type: "string" },
      overwrite: { type: "boolean" },
      set: { type: "string", multiple: true },
      recipe: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    USAGE,
    ["index", "model", "queries", "out"],
  );
  if (!values) return;
  const k = positiveInt("--k", values.k, 1000);
  const batch = values.batch === undefined ? undefined : positiveInt("--batch", values.batch, 1);
  await requireFile(values.queries, "queries file");
  if (values.qrels) await requireFile(values.qrels, "qrels file");
  if (!values.overwrite) {
    try {
      await Deno.stat(values.out);
      throw new UsageError(`${values.out} exists; pass --overwrite to replace it`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  const modelOptions = { sets: values.set ?? [], recipe: values.recipe as Recipe | undefined };
  await resolveModelSource(values.model, modelOptions);
  let queries = await readBeirQueries(values.queries);
  const qrels = values.qrels === undefined
    ? undefined
    : values.qrels.endsWith(".tsv")
    ? await readBeirQrels(values.qrels)
    : await readQrels(values.qrels);
  if (qrels) queries = new Map([...queries].filter(([qid]) => qrels.has(qid)));
  await getDevice();
  const model = await loadTrainedModel(values.model, {
    ...modelOptions,
    log: (line) => console.error(line),
  });
  try {
    await openIndexFor(values.index, model); // refuses another model's index before any work
    const started = performance.now();
    const hits = await searchIndex(model, values.index, queries, {
      k,
      batchSize: batch,
      progress: progressReporter("searching", "shards"),
    });
    await writeOutputFile(values.out, formatScoredRun(hits, values.tag ?? "dense"));
    console.error(
      `wrote ${hits.size} queries × top ${k} to ${values.out} in ${
        ((performance.now() - started) / 1000).toFixed(1)
      } s`,
    );
    if (qrels) {
      const evaluation = evaluateRun(qrels, hits, {
        measures: ["num_q", "ndcg_cut.10", "recall.100,1000", "map", "recip_rank"],
        complete: true,
      });
      await Deno.stdout.write(new TextEncoder().encode(formatTrecEval(evaluation)));
    }
  } finally {
    model.dispose();
  }
}

if (import.meta.main) await runCli("search", main);
