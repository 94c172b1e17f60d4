/**
 * `deno task eval --qrels FILE --run FILE [-m measure ...] [-l N] [-c] [-q]`
 * (or trec_eval's positional `QRELS RUN`): prints trec_eval-identical lines.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { readBeirQrels } from "@irforge/data/beir";
import { readQrels, readRun } from "@irforge/data/trec";
import { evaluateRun, formatTrecEval } from "../evaluate.ts";
import { parseMeasureSpecs } from "../measure_spec.ts";
import { requireFile, runCli, UsageError } from "./cli_error.ts";

const USAGE =
  `usage: deno task eval --qrels FILE --run FILE [-m MEASURE]... [-l LEVEL] [-c] [-q] [-n] [-M N]
       deno task eval [options] QRELS RUN      (QRELS: TREC, or BEIR .tsv)
  -m  measure, trec_eval syntax: map, Rprec, recip_rank, P.10, recall.10,100,
      ndcg_cut.1,3,5,10,100, map_cut.10, num_ret, num_rel, num_rel_ret,
      num_q, runid, or the sets official (default) and all_trec
  -l  minimum grade counted as relevant (default 1)
  -c  average over every judged query; a query missing from the run scores 0
  -q  also print each query's values
  -n  no summary
  -M  evaluate at most N documents per query`;

function parseInteger(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value)) throw new UsageError(`${flag} expects an integer, got "${text}"`);
  return value;
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: Deno.args,
      allowPositionals: true,
      options: {
        qrels: { type: "string" },
        run: { type: "string" },
        measure: { type: "string", short: "m", multiple: true },
        "level-for-rel": { type: "string", short: "l" },
        complete: { type: "boolean", short: "c" },
        "query-eval": { type: "boolean", short: "q" },
        "no-summary": { type: "boolean", short: "n" },
        "max-docs": { type: "string", short: "M" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : error}\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return;
  }
  let qrelsPath = values.qrels;
  let runPath = values.run;
  const rest = [...positionals];
  if (qrelsPath === undefined) qrelsPath = rest.shift();
  if (runPath === undefined) runPath = rest.shift();
  if (qrelsPath === undefined || runPath === undefined || rest.length > 0) {
    throw new UsageError(`give one qrels file and one run file\n${USAGE}`);
  }
  const maxDocs = parseInteger("-M", values["max-docs"]);
  if (maxDocs !== undefined && maxDocs <= 0) throw new UsageError("-M must be positive");
  parseMeasureSpecs(values.measure ?? []); // reject a bad -m before reading files
  await requireFile(qrelsPath, "qrels file");
  await requireFile(runPath, "run file");
  // BEIR qrels (`.tsv`) are accepted too, so BEIR folders evaluate directly.
  const qrels = qrelsPath.endsWith(".tsv")
    ? await readBeirQrels(qrelsPath)
    : await readQrels(qrelsPath);
  const run = await readRun(runPath);
  const evaluation = evaluateRun(qrels, run, {
    measures: values.measure ?? [],
    relevanceLevel: parseInteger("-l", values["level-for-rel"]),
    complete: values.complete ?? false,
    maxDocsPerTopic: maxDocs,
  });
  if (evaluation.numQueries === 0) {
    throw new UsageError(
      `no query of ${runPath} has judgments in ${qrelsPath} (query ids must match)`,
    );
  }
  await Deno.stdout.write(
    new TextEncoder().encode(
      formatTrecEval(evaluation, {
        perQuery: values["query-eval"] ?? false,
        noSummary: values["no-summary"] ?? false,
      }),
    ),
  );
}

if (import.meta.main) await runCli("eval", main);
