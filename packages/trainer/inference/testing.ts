/**
 * Test support for the inference modules: a small slice of BEIR SciFact
 * (shared real data) written to a temporary folder, and tiny training runs
 * on it with the stories260K model.
 *
 * @module
 */

import { join } from "node:path";
import { hasShared, passageText, readBeirCorpus, readBeirQueries, sharedPath } from "@irforge/data";
import { readBeirQrels } from "@irforge/data/beir";
import { formatBm25Run, indexCorpus, retrieveAll } from "@irforge/eval";
import { parseConfig } from "../config/parse.ts";
import type { Config } from "../config/schema.ts";
import { train } from "../loop.ts";
import { buildTask } from "../recipes/mod.ts";

/** `true` when SciFact and stories260K are in the shared folder. */
export const HAS_SCIFACT = hasShared("data", "scifact", "corpus.jsonl") &&
  hasShared("data", "stories260K", "model.safetensors");

/** The stories260K model directory. */
export const STORIES = sharedPath("data", "stories260K");

/** Paths of a SciFact slice. */
export interface ScifactSlice {
  dir: string;
  corpus: string;
  queries: string;
  trainQrels: string;
  testQrels: string;
  /** BM25 top-`k` of the test queries over the slice's corpus. */
  bm25: string;
}

/**
 * A SciFact slice: the first `trainQueries` train and `testQueries` test
 * queries, every judged document of them plus the first `extraDocs`
 * documents of the corpus; BM25 top `k` of the test queries over it.
 */
export async function scifactSlice(
  dir: string,
  options: { trainQueries: number; testQueries: number; extraDocs: number; k: number },
): Promise<ScifactSlice> {
  const root = sharedPath("data", "scifact");
  const corpus = await readBeirCorpus(join(root, "corpus.jsonl"));
  const queries = await readBeirQueries(join(root, "queries.jsonl"));
  const pick = async (file: string, n: number) => {
    const all = await readBeirQrels(join(root, "qrels", file));
    return new Map([...all].slice(0, n));
  };
  const train = await pick("train.tsv", options.trainQueries);
  const test = await pick("test.tsv", options.testQueries);
  const docids = new Set([...corpus.keys()].slice(0, options.extraDocs));
  for (const qrels of [train, test]) {
    for (const docs of qrels.values()) for (const id of docs.keys()) docids.add(id);
  }
  const paths: ScifactSlice = {
    dir,
    corpus: join(dir, "corpus.jsonl"),
    queries: join(dir, "queries.jsonl"),
    trainQrels: join(dir, "train.tsv"),
    testQrels: join(dir, "test.tsv"),
    bm25: join(dir, "bm25.txt"),
  };
  const sliceCorpus = new Map([...corpus].filter(([id]) => docids.has(id)));
  await Deno.writeTextFile(
    paths.corpus,
    [...sliceCorpus.values()].map((d) =>
      JSON.stringify({ _id: d.id, title: d.title, text: d.text })
    )
      .join("\n") + "\n",
  );
  const qids = new Set([...train.keys(), ...test.keys()]);
  await Deno.writeTextFile(
    paths.queries,
    [...qids].map((q) => JSON.stringify({ _id: q, text: queries.get(q)! })).join("\n") + "\n",
  );
  const qrelsText = (qrels: Map<string, Map<string, number>>) =>
    "query-id\tcorpus-id\tscore\n" +
    [...qrels].flatMap(([q, docs]) => [...docs].map(([d, s]) => `${q}\t${d}\t${s}`)).join("\n") +
    "\n";
  await Deno.writeTextFile(paths.trainQrels, qrelsText(train));
  await Deno.writeTextFile(paths.testQrels, qrelsText(test));
  const testQueries = new Map([...test.keys()].map((q) => [q, queries.get(q)!]));
  await Deno.writeTextFile(
    paths.bm25,
    formatBm25Run(retrieveAll(indexCorpus(sliceCorpus), testQueries, options.k), "bm25"),
  );
  return paths;
}

/** A config for `recipe` on the slice (stories260K, tiny lengths), plus `sets`. */
export function sliceConfig(
  slice: ScifactSlice,
  recipe: "crossencoder" | "biencoder",
  runDir: string,
  sets: string[] = [],
): Config {
  const text = `recipe: ${recipe}
name: test-${recipe}
model:
  model_name_or_path: ${JSON.stringify(STORIES)}
  use_lora: false
  pooling: ${recipe === "crossencoder" ? "last" : "mean"}
  normalize: true
data:
  corpus_path: ${JSON.stringify(slice.corpus)}
  queries_path: ${JSON.stringify(slice.queries)}
  qrels_path: ${JSON.stringify(slice.trainQrels)}
  eval_qrels_path: ${JSON.stringify(slice.testQrels)}
  negative_source: random
  group_size: 2
  query_max_len: 12
  passage_max_len: 16
training:
  output_dir: ${JSON.stringify(runDir)}
  max_steps: 2
  per_device_train_batch_size: 2
  per_device_eval_batch_size: 4
  learning_rate: 0.01
  logging_steps: 1
  eval_strategy: steps
  eval_steps: 2
  save_strategy: steps
  save_steps: 2
`;
  return parseConfig(text, "test-config.yaml", sets);
}

/** Trains `config` quietly; returns the last evaluation's metrics. */
export async function trainQuietly(config: Config): Promise<Record<string, number>> {
  const task = await buildTask(config, { log: () => {} });
  try {
    const result = await train({
      config,
      task,
      log: () => {},
      progress: false,
      handleSignals: false,
    });
    if (result.status !== "finished") throw new Error(`training ${result.status}`);
    return result.lastEval!.metrics;
  } finally {
    task.dispose();
  }
}

/** The texts of a corpus file, by docid (for CPU references). */
export async function corpusTexts(path: string): Promise<Map<string, string>> {
  const corpus = await readBeirCorpus(path);
  return new Map([...corpus].map(([id, doc]) => [id, passageText(doc)]));
}
