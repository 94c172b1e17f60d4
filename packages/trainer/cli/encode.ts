/**
 * `deno task encode --model DIR --corpus corpus.jsonl --out index/ [--batch N]
 *  [--shard-size 4096]`
 *
 * Encodes a BEIR corpus with a trained bi-encoder into a sharded dense index
 * (safetensors shards + `docids.txt` + `manifest.json`), with progress and an
 * ETA; rerun the same command after an interruption to continue from the
 * last complete shard. Ctrl-C stops after the shard in progress.
 *
 * @module
 */

import { getDevice } from "@irforge/tensor";
import { readBeirCorpus } from "@irforge/data/beir";
import type { Recipe } from "../config/schema.ts";
import { encodeCorpus } from "../inference/encode.ts";
import { loadTrainedModel, resolveModelSource } from "../inference/trained_model.ts";
import { parseCommand, positiveInt, progressReporter, requireFile, runCli } from "./cli_support.ts";

const USAGE =
  `usage: deno task encode --model DIR --corpus corpus.jsonl --out index/ [--batch N] [--shard-size N]
       [--set key=value]... [--recipe NAME]
  --model       a bi-encoder run directory (latest checkpoint), a checkpoint, or a merged model
  --out         the index folder: new or empty, or an interrupted index of the same model and
                corpus (continued from its last complete shard)
  --batch       passages per forward pass (default per_device_eval_batch_size)
  --shard-size  passages per shard, rounded up to a multiple of --batch (default 4096)`;

async function main(): Promise<void> {
  const values = parseCommand(
    {
      model: { type: "string" },
      corpus: { type: "string" },
      out: { type: "string" },
      batch: { type: "string" },
      "shard-size": { type: "string" },
      set: { type: "string", multiple: true },
      recipe: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    USAGE,
    ["model", "corpus", "out"],
  );
  if (!values) return;
  const batch = values.batch === undefined ? undefined : positiveInt("--batch", values.batch, 1);
  const shardSize = positiveInt("--shard-size", values["shard-size"], 4096);
  await requireFile(values.corpus, "corpus");
  const modelOptions = { sets: values.set ?? [], recipe: values.recipe as Recipe | undefined };
  await resolveModelSource(values.model, modelOptions);
  const corpus = await readBeirCorpus(values.corpus);
  console.error(`read ${corpus.size} documents from ${values.corpus}`);
  await getDevice();
  const model = await loadTrainedModel(values.model, {
    ...modelOptions,
    log: (line) => console.error(line),
  });
  const stop = new AbortController();
  const onSignal = () => {
    console.error("\nencode: stopping after the shard in progress (rerun to continue)");
    stop.abort();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  const started = performance.now();
  let reporter: ((done: number, total: number) => void) | null = null;
  try {
    const result = await encodeCorpus(model, corpus, values.out, {
      batchSize: batch,
      shardSize,
      signal: stop.signal,
      log: (line) => console.error(line),
      progress: (done, total) => {
        reporter ??= progressReporter("encoding", "passages", done);
        reporter(done, total);
      },
    });
    const seconds = (performance.now() - started) / 1000;
    const m = result.manifest;
    const encoded = Math.min(m.documents, result.writtenShards * m.shard_size);
    console.error(
      `${values.out}: ${result.complete ? "complete" : "interrupted"}, ${
        result.resumedShards + result.writtenShards
      }/${m.shards} shards of ${m.documents} documents × ${m.dim} (${m.pooling}${
        m.normalize ? ", normalised" : ""
      }); this run wrote ${result.writtenShards} shards in ${seconds.toFixed(1)} s` +
        (result.writtenShards > 0 ? ` (~${(encoded / seconds).toFixed(1)} passages/s)` : ""),
    );
    if (!result.complete) Deno.exitCode = 130;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    model.dispose();
  }
}

if (import.meta.main) await runCli("encode", main);
