/**
 * `deno task generate --model DIR [--prompt TEXT] [--max-new-tokens N]
 * [--temperature T] [--top-k K] [--top-p P] [--seed S]`: decodes from a Hugging
 * Face Mistral/Llama directory with a KV cache, streaming text as it goes.
 * Without `--prompt` it starts from BOS alone.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { describeNoGpu, getDevice } from "@irforge/tensor";
import { generate } from "../generate.ts";
import { loadCausalLM } from "../load.ts";
import { loadTokenizer } from "../tokenizer/load.ts";

const usage =
  "usage: deno task generate --model DIR [--prompt TEXT] [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]";

function number(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new Error(`--${name}: "${value}" is not a number`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      model: { type: "string" },
      prompt: { type: "string" },
      "max-new-tokens": { type: "string" },
      temperature: { type: "string" },
      "top-k": { type: "string" },
      "top-p": { type: "string" },
      seed: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.model) {
    console.error(usage);
    return values.help ? 0 : 2;
  }
  await getDevice();
  const [model, tokenizer] = await Promise.all([
    loadCausalLM(values.model),
    loadTokenizer(values.model),
  ]);
  const prompt = tokenizer.encode(values.prompt ?? "", { addBos: true });
  const encoder = new TextEncoder();
  let shown = "";
  const produced: number[] = [];
  await Deno.stdout.write(encoder.encode(values.prompt ?? ""));
  await generate(model, prompt, {
    maxNewTokens: number(values["max-new-tokens"], "max-new-tokens", 64),
    temperature: number(values.temperature, "temperature", 0),
    topK: number(values["top-k"], "top-k", 0),
    topP: number(values["top-p"], "top-p", 1),
    seed: number(values.seed, "seed", 0),
    onToken: (id) => {
      produced.push(id);
      // Decode the whole continuation so multi-byte pieces print once complete.
      const text = tokenizer.decode(produced);
      const prefix = values.prompt ? " " : "";
      const full = (values.prompt && text.length > 0 ? prefix : "") + text;
      if (full.startsWith(shown) && !full.endsWith("\uFFFD")) {
        Deno.stdout.writeSync(encoder.encode(full.slice(shown.length)));
        shown = full;
      }
    },
  });
  console.log();
  model.dispose();
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(describeNoGpu(e) ?? (e instanceof Error ? e.message : String(e)));
    Deno.exit(1);
  }
}
