/**
 * `deno task bm25 --corpus corpus.jsonl --queries queries.jsonl --out run.txt
 *  [--k 1000] [--k1 0.9] [--b 0.4] [--qrels FILE] [--tag bm25] [--skip-bad] [--force]`
 *
 * BM25 retrieval over a BEIR-style corpus; writes a TREC run and, given
 * qrels (BEIR `.tsv` or TREC format), prints trec_eval lines (`-c`). The run
 * is written under a temporary name and renamed when complete; an existing
 * `--out` is replaced only with `--force`, and never when it is an input.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { readBeirCorpus, readBeirQrels, readBeirQueries } from "@irforge/data/beir";
import { SkipLog } from "@irforge/data/input-error";
import { checkOutput, writeFileAtomic } from "@irforge/data/safe-output";
import { readQrels } from "@irforge/data/trec";
import { formatBm25Run, indexCorpus, retrieveAll } from "../bm25_collection.ts";
import { evaluateRun, formatTrecEval } from "../evaluate.ts";
import { requireFile, runCli, UsageError } from "./cli_error.ts";

const USAGE = `usage: deno task bm25 --corpus corpus.jsonl --queries queries.jsonl --out run.txt
       [--k 1000] [--k1 0.9] [--b 0.4] [--qrels FILE] [--tag bm25] [--skip-bad] [--force]
  --qrels     BEIR qrels (.tsv) or TREC qrels; prints nDCG@10, recall, MAP
              (trec_eval -c) and retrieves only the judged queries
  --skip-bad  skip malformed records with a counted warning instead of stopping
  --force     replace an existing --out file (an input is never overwritten)`;

function number(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value)) {
    throw new UsageError(`${flag} expects a number, got "${text}"`);
  }
  return value;
}

function progressLine(what: string): (done: number, total: number) => void {
  return (done, total) => {
    const text = `\r${what}: ${done}/${total}`;
    Deno.stderr.writeSync(new TextEncoder().encode(done === total ? `${text}\n` : text));
  };
}

async function main(): Promise<void> {
  let values;
  try {
    values = parseArgs({
      args: Deno.args,
      options: {
        corpus: { type: "string" },
        queries: { type: "string" },
        out: { type: "string" },
        qrels: { type: "string" },
        k: { type: "string" },
        k1: { type: "string" },
        b: { type: "string" },
        tag: { type: "string" },
        "skip-bad": { type: "boolean" },
        force: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : error}\n${USAGE}`);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!values.corpus || !values.queries || !values.out) {
    throw new UsageError(`--corpus, --queries and --out are required\n${USAGE}`);
  }
  const k = number("--k", values.k, 1000);
  if (!Number.isInteger(k) || k <= 0) throw new UsageError(`--k must be a positive integer`);
  const k1 = number("--k1", values.k1, 0.9);
  const b = number("--b", values.b, 0.4);
  if (k1 < 0) throw new UsageError(`--k1 must be ≥ 0`);
  if (b < 0 || b > 1) throw new UsageError(`--b must be between 0 and 1`);
  await requireFile(values.corpus, "corpus");
  await requireFile(values.queries, "queries file");
  if (values.qrels) await requireFile(values.qrels, "qrels file");
  const inputs = [
    { flag: "--corpus", path: values.corpus },
    { flag: "--queries", path: values.queries },
    ...(values.qrels ? [{ flag: "--qrels", path: values.qrels }] : []),
  ];
  await checkOutput(values.out, { inputs, force: values.force });

  const skip = new SkipLog(values["skip-bad"] ?? false);
  const corpus = await readBeirCorpus(values.corpus, {
    skip,
    onProgress: (n) => Deno.stderr.writeSync(new TextEncoder().encode(`\rreading corpus: ${n}`)),
  });
  console.error(`\rread ${corpus.size} documents`);
  if (corpus.size === 0) {
    throw new UsageError(`corpus ${values.corpus} has no documents; nothing to retrieve from`);
  }
  const queries = await readBeirQueries(values.queries, { skip });
  if (queries.size === 0) {
    throw new UsageError(`queries file ${values.queries} has no queries; nothing to retrieve`);
  }
  const qrels = values.qrels === undefined
    ? undefined
    : values.qrels.endsWith(".tsv")
    ? await readBeirQrels(values.qrels, { skip, corpus, queries })
    : await readQrels(values.qrels, { skip, knownDocuments: corpus, knownQueries: queries });

  const started = performance.now();
  const index = indexCorpus(corpus, { k1, b }, progressLine("indexing"));
  console.error(
    `indexed ${index.size} documents, ${index.vocabularySize} terms in ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s`,
  );
  const hits = retrieveAll(index, queries, k, {
    onlyQueries: qrels?.keys(),
    progress: progressLine("searching"),
  });
  await writeFileAtomic(values.out, formatBm25Run(hits, values.tag ?? "bm25"));
  console.error(`wrote ${hits.size} queries to ${values.out}`);
  if (qrels) {
    const evaluation = evaluateRun(qrels, hits, {
      measures: ["num_q", "ndcg_cut.10", "recall.100,1000", "map", "recip_rank"],
      complete: true,
    });
    await Deno.stdout.write(new TextEncoder().encode(formatTrecEval(evaluation)));
  }
  const summary = skip.summary();
  if (summary) console.error(summary);
}

if (import.meta.main) await runCli("bm25", main);
