/**
 * `deno task merge --base DIR --adapter DIR --out DIR [--max-shard-bytes N]`:
 * merges a peft LoRA adapter into its base model (W' = W + scaling·B·A in
 * float64) and writes a plain Hugging Face checkpoint. Prints a progress line
 * per tensor on stderr and a JSON summary on stdout.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { mergeLoraCheckpoint } from "../lora/merge.ts";

const usage = "usage: deno task merge --base DIR --adapter DIR --out DIR [--max-shard-bytes N]";

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      base: { type: "string" },
      adapter: { type: "string" },
      out: { type: "string" },
      "max-shard-bytes": { type: "string" },
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
  const started = performance.now();
  const report = await mergeLoraCheckpoint({
    base: values.base,
    adapter: values.adapter,
    out: values.out,
    maxShardBytes,
    onProgress: (done, total, name) => {
      const s = ((performance.now() - started) / 1000).toFixed(1);
      console.error(`merge: [${done}/${total}] ${name} (${s}s)`);
    },
  });
  console.log(JSON.stringify({ out: values.out, ...report }));
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    Deno.exit(1);
  }
}
