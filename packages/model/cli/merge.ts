/**
 * `deno task merge --base DIR --adapter DIR --out DIR [--max-shard-bytes N] [--force]`:
 * merges a peft LoRA adapter into its base model (W' = W + scaling·B·A in
 * float64) and writes a plain Hugging Face checkpoint. Tensors trained beside
 * the adapter that the base lacks (a cross-encoder checkpoint's `score.weight`
 * in its `model.safetensors`) are carried over. Prints a progress line
 * per tensor on stderr and a JSON summary on stdout.
 *
 * `--out` may not be `--base` or `--adapter` (nor hold them); an existing
 * non-empty `--out` is replaced only with `--force`. The checkpoint is built
 * in a temporary directory beside `--out` and renamed when complete.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { checkOutput, OutputError, writeDirectoryAtomic } from "@irforge/data/safe-output";
import { mergeLoraCheckpoint } from "../lora/merge.ts";

const usage =
  "usage: deno task merge --base DIR --adapter DIR --out DIR [--max-shard-bytes N] [--force]";

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      base: { type: "string" },
      adapter: { type: "string" },
      out: { type: "string" },
      "max-shard-bytes": { type: "string" },
      force: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.base || !values.adapter || !values.out) {
    console.error(usage);
    return values.help ? 0 : 2;
  }
  const maxShard = values["max-shard-bytes"];
  const maxShardBytes = maxShard === undefined ? undefined : Number(maxShard);
  if (maxShardBytes !== undefined && !(Number.isSafeInteger(maxShardBytes) && maxShardBytes > 0)) {
    console.error(`merge: --max-shard-bytes must be a positive integer, got ${maxShard}`);
    return 2;
  }
  await checkOutput(values.out, {
    inputs: [{ flag: "--base", path: values.base }, { flag: "--adapter", path: values.adapter }],
    force: values.force,
  });
  const started = performance.now();
  const report = await writeDirectoryAtomic(values.out, (tmp) =>
    mergeLoraCheckpoint({
      base: values.base!,
      adapter: values.adapter!,
      out: tmp,
      maxShardBytes,
      onProgress: (done, total, name) => {
        const s = ((performance.now() - started) / 1000).toFixed(1);
        console.error(`merge: [${done}/${total}] ${name} (${s}s)`);
      },
    }));
  for (const name of report.carried) {
    console.error(`merge: carried ${name} (not in the base) from the adapter's model.safetensors`);
  }
  console.log(JSON.stringify({ out: values.out, ...report }));
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    console.error(e instanceof OutputError ? `merge: error: ${message}` : message);
    Deno.exit(1);
  }
}
